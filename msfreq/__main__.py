"""``python -m msfreq``: the command-line tool."""

from msfreq.cli import main

main()
