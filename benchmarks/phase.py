"""Phase reconstruction benchmark: msfreq against librosa's griffinlim_cqt.

    python benchmarks/phase.py [--quick]

Writes ``benchmarks/PHASE.md`` and ``benchmarks/phase.png``.  Quality is the spectral
convergence of the rebuilt audio against the original, with a Hann 2048-sample STFT and hop
512: ``20 log10(|| |STFT(y)| - |STFT(x)| || / || |STFT(x)| ||)`` (lower is better).  The
excerpt is 20 s of the shipped samples, one channel, 44.1 kHz, run one after another.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402
import soundfile as sf  # noqa: E402

import msfreq  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def convergence(x: np.ndarray, y: np.ndarray) -> float:
    n = min(len(x), len(y))
    _, _, a = scipy.signal.stft(x[:n], nperseg=2048, noverlap=1536)
    _, _, b = scipy.signal.stft(y[:n], nperseg=2048, noverlap=1536)
    return float(20 * np.log10(np.linalg.norm(np.abs(b) - np.abs(a)) / np.linalg.norm(np.abs(a))))


def excerpt(seconds: float) -> tuple[np.ndarray, int]:
    pieces, rate = [], 44100
    for name in ("bach_counterpoint.wav", "gliding_raga.wav", "house_beat.wav"):
        samples, rate = sf.read(str(ROOT / "sample_audio" / name), always_2d=True)
        pieces.append(samples.mean(axis=1))
    x = np.concatenate(pieces)[: int(seconds * rate)]
    return x.astype(np.float64), rate


def _librosa(x: np.ndarray, rate: int, iterations: int) -> np.ndarray:
    import librosa

    fmin = librosa.note_to_hz("C0")
    cqt = np.abs(librosa.cqt(x, sr=rate, hop_length=512, fmin=fmin, n_bins=480, bins_per_octave=48))
    return librosa.griffinlim_cqt(cqt, sr=rate, hop_length=512, fmin=fmin, bins_per_octave=48,
                                  n_iter=iterations)


def _msfreq(x: np.ndarray, rate: int, span: int, oversampling: int, init: str, iterations: int,
            history: list | None = None) -> np.ndarray:
    rep = msfreq.encode(x, rate, oversampling=oversampling, span=span)
    rebuilt = msfreq.reconstruct_phase(rep.abs(), n_iter=iterations, init=init, seed=0,
                                       history=history)
    return msfreq.decode(rebuilt)[:, 0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    iterations = 20 if args.quick else 100
    x, rate = excerpt(5.0 if args.quick else 20.0)
    rows = ["| method | span | oversampling | init | SC (dB) | time (s) |", "|---|---|---|---|---|---|"]
    try:
        import librosa

        began = time.perf_counter()
        y = _librosa(x, rate, iterations)
        rows.append(f"| librosa {librosa.__version__} griffinlim_cqt | - | hop 512 | random | "
                    f"{convergence(x, y):.1f} | {time.perf_counter() - began:.1f} |")
        print(rows[-1], flush=True)
        have_librosa = True
    except ImportError:
        rows.append("| librosa | - | - | - | not installed | - |")
        have_librosa = False
    configs = [(1, oversampling, init) for oversampling in (1, 2, 4, 8) for init in msfreq.phase.INITS]
    configs += [(span, oversampling, "pghi") for span in (2, 3, 4) for oversampling in (1, 2, 4)]
    configs += [(3, 1, init) for init in msfreq.phase.INITS if init != "pghi"]
    curves = {}
    for span, oversampling, init in configs:
        history: list[float] = []
        began = time.perf_counter()
        y = _msfreq(x, rate, span, oversampling, init, iterations, history)
        rows.append(f"| msfreq fast Griffin-Lim | {span} | {oversampling} | {init} | "
                    f"{convergence(x, y):.1f} | {time.perf_counter() - began:.1f} |")
        curves[(span, oversampling, init)] = history
        print(rows[-1], flush=True)
    # spectral convergence against iterations (each point a run of its own)
    steps = (5, 10) if args.quick else (10, 25, 50, 100)
    progress = {f"msfreq span {span}, x{oversampling}": [convergence(x, _msfreq(x, rate, span, oversampling, "pghi", n))
                                                         for n in steps]
                for span, oversampling in ((1, 4), (3, 1), (3, 4))}
    if have_librosa:
        progress["librosa griffinlim_cqt"] = [convergence(x, _librosa(x, rate, n)) for n in steps]
    lines = ["# Phase reconstruction benchmark", "",
             f"`python benchmarks/phase.py`: {len(x) / rate:.0f} s of the shipped samples (mono, "
             f"44.1 kHz), {iterations} iterations, spectral convergence against the original "
             "(Hann 2048 / hop 512; lower is better), one core.  `span`: each window reaches that "
             "many bins to either side (every frequency in 2 x span windows); `oversampling`: "
             "hops divided by about that.", ""] + rows
    lines += ["", "Spectral convergence (dB) against iterations (init pghi for msfreq):", "",
              "| method | " + " | ".join(str(n) for n in steps) + " |",
              "|---|" + "---|" * len(steps)]
    lines += [f"| {name} | " + " | ".join(f"{value:.1f}" for value in values) + " |"
              for name, values in progress.items()]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
        for name, values in progress.items():
            right.plot(steps, values, marker="o", label=name)
        right.set_xlabel("iterations")
        right.set_ylabel("spectral convergence (dB, STFT 2048/512)")
        right.legend(fontsize=8)
        for (span, oversampling, init), history in curves.items():
            if init == "pghi" and oversampling in (1, 4):
                left.plot(20 * np.log10(np.maximum(history, 1e-12)), label=f"span {span}, x{oversampling}")
        left.set_xlabel("iteration")
        left.set_ylabel("inconsistency (dB, msfreq domain)")
        left.legend(ncol=2, fontsize=8)
        figure.tight_layout()
        figure.savefig(HERE / "phase.png", dpi=100)
        lines += ["", "![inconsistency and spectral convergence against iterations](phase.png)"]
    except ImportError:
        pass
    (HERE / "PHASE.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
