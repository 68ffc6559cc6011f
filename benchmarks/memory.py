"""Memory budget benchmark: CLI encode and decode time and peak memory against ``--memory``.

    python benchmarks/memory.py [--quick]

Writes ``benchmarks/MEMORY.md``.  The margins of the block-wise transform span a fixed time
(32 lowest-octave hops on each side, about a minute in all), so at high sample rates the
default budget leaves room for short blocks only and most of the work goes into margins; a
larger budget buys longer blocks (or one block per channel).  One job, one core for the FFTs;
each figure the median of alternating rounds; peak memory is the largest resident set of the
command's processes (``ru_maxrss`` of the waited-for children, measured in a wrapper process
of its own so that one run's peak does not carry into the next).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import soundfile as sf  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from signals import music_mix  # noqa: E402

import msfreq  # noqa: E402
from msfreq.params import BLOCK_BYTES  # noqa: E402

WORK = HERE / "_work" / "memory"
BUDGETS = (None, "1200M", "2G")
# (what, seconds, rate, channels, subtype)
FILES = (
    ("96 kHz 24-bit stereo", 120.0, 96000, 2, "PCM_24"),
    ("192 kHz 24-bit stereo", 150.0, 192000, 2, "PCM_24"),
    ("44.1 kHz 16-bit stereo", 600.0, 44100, 2, "PCM_16"),
)

# Runs one command and prints its wall time and the peak resident set of its processes.
_WRAPPER = """
import json, resource, subprocess, sys, time
began = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
print(json.dumps({"seconds": time.perf_counter() - began,
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def cli(*args: str) -> dict:
    """Run ``msfreq ARGS`` (one job, quiet) in a wrapper; return its seconds and peak MB."""
    command = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "msfreq", *args,
               "-j", "1", "-q", "--overwrite"]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, shorter files")
    arguments = parser.parse_args()
    rounds = 1 if arguments.quick else 2
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    rows = []
    for what, seconds, rate, channels, subtype in FILES:
        seconds = seconds / 4 if arguments.quick else seconds
        label = f"{seconds:g} s, {what}"
        source = WORK / f"{rate}_{subtype}.wav"
        sf.write(source, music_mix(seconds, rate=rate, channels=channels), rate, subtype=subtype)
        encoded, decoded = WORK / "x.h5", WORK / "x.wav"
        times = {budget: {"encode": [], "decode": [], "encode_mb": [], "decode_mb": []}
                 for budget in BUDGETS}
        for _ in range(rounds):
            for budget in BUDGETS:
                flag = [] if budget is None else ["--memory", budget]
                run = cli("encode", str(source), "-o", str(encoded), *flag)
                times[budget]["encode"].append(run["seconds"])
                times[budget]["encode_mb"].append(run["peak_mb"])
                header = msfreq.read_header(encoded)
                assert header.exact, f"{label}: not exact with --memory {budget}"
                run = cli("decode", str(encoded), "-o", str(decoded), *flag)
                times[budget]["decode"].append(run["seconds"])
                times[budget]["decode_mb"].append(run["peak_mb"])
                if sf.read(decoded, dtype="int32")[0].tobytes() != sf.read(source, dtype="int32")[0].tobytes():
                    raise AssertionError(f"{label}: decode differs with --memory {budget}")
        base = statistics.median(times[None]["encode"])
        for budget in BUDGETS:
            got = {key: statistics.median(values) for key, values in times[budget].items()}
            rows.append(f"| {label} | {budget or f'{BLOCK_BYTES >> 20}M (default)'} "
                        f"| {got['encode']:.2f} | {got['encode_mb']:.0f} | {got['decode']:.2f} "
                        f"| {got['decode_mb']:.0f} | {base / got['encode']:.2f}x |")
            print(rows[-1], flush=True)
    text = [
        "# Memory budget benchmark",
        "",
        f"`python benchmarks/memory.py{' --quick' if arguments.quick else ''}`, msfreq "
        f"{msfreq.__version__}, music-like mixes (benchmarks/signals.py), CLI with `-j 1`, "
        f"medians of {rounds} alternating round{'s' if rounds > 1 else ''}; every encode "
        "exact and every decode bit-identical to its source (checked).",
        "",
        "| file | --memory | encode (s) | encode peak (MB) | decode (s) | decode peak (MB) "
        "| encode speed-up |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    (HERE / "MEMORY.md").write_text("\n".join(text))
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
