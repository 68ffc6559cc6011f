"""Peak memory of one tool's encode + decode, in a process of its own.

    python benchmarks/measure.py TOOL SIGNAL.npy RATE

Prints JSON: ``{"baseline_mb": ..., "peak_mb": ...}``: the peak resident set size (VmHWM)
after imports, loading the signal and preparing, and over the whole run.  (``ru_maxrss`` is not
used: Linux carries it over from the parent across fork and exec.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools import TOOLS  # noqa: E402


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    name, path, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
    x = np.load(path)
    encode, decode, _ = TOOLS[name](x, rate)
    baseline = peak_mb()
    decode(encode())
    peak = peak_mb()
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak}))


if __name__ == "__main__":
    main()
