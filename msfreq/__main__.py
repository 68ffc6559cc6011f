"""``python -m msfreq``: the command-line tool."""

from msfreq.cli import main

if __name__ == "__main__":  # worker processes import this module again: do nothing then
    main()
