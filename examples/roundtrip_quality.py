"""Compare original audio files with their decoded copies: SNR and bit-identity.

    python examples/roundtrip_quality.py ORIGINALS_FOLDER DECODED_FOLDER

Files are matched by name without extension (``house_beat.wav`` with ``house_beat.wav``,
``techno_bassline.flac`` with ``techno_bassline.flac``).  Exit status 1 if any file is worse
than 120 dB SNR or missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

THRESHOLD_DB = 120.0


def compare(original: Path, decoded: Path) -> tuple[float, bool, float]:
    """Return (SNR in dB, bit-identical, largest error in LSB of the original's bit depth)."""
    a, rate_a = sf.read(original, dtype="int32", always_2d=True)
    b, rate_b = sf.read(decoded, dtype="int32", always_2d=True)
    if rate_a != rate_b or a.shape != b.shape:
        return float("-inf"), False, float("inf")
    identical = bool(np.array_equal(a, b))
    x = a.astype(np.float64)
    error = x - b.astype(np.float64)
    energy = float(np.sum(x**2))
    noise = float(np.sum(error**2))
    snr = float("inf") if noise == 0 else 10 * np.log10(energy / noise)
    bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "PCM_S8": 8, "PCM_U8": 8}.get(sf.info(str(original)).subtype, 32)
    lsb = 2.0 ** (32 - bits)
    return snr, identical, float(np.max(np.abs(error))) / lsb


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    originals, decoded = Path(argv[1]), Path(argv[2])
    status = 0
    print(f"{'file':<28}{'SNR (dB)':>10}  {'max error':>10}  bit-identical")
    for original in sorted(p for p in originals.rglob("*") if p.is_file() and p.suffix != ".py"):
        relative = original.relative_to(originals)
        matches = sorted((decoded / relative.parent).glob(relative.stem + ".*"))
        if not matches:
            print(f"{str(relative):<28}{'missing':>10}")
            status = 1
            continue
        snr, identical, worst = compare(original, matches[0])
        shown = "exact" if snr == float("inf") else f"{snr:.1f}"
        print(f"{str(relative):<28}{shown:>10}  {worst:>7.2f} LSB  {'yes' if identical else 'no'}")
        if snr < THRESHOLD_DB:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
