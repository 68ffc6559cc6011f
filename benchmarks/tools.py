"""The transforms compared, behind one interface: ``prepare(x, rate)`` returns
``(encode, decode, coefficients)`` where ``decode(encode())`` rebuilds ``x``."""

from __future__ import annotations

import numpy as np
import scipy.fft as sp_fft

import msfreq
from msfreq.params import C0_HZ, TransformParams
from msfreq.scales import make_grid
from msfreq.transform import transform_units

BINS = 48
OCTAVES = 10


def msfreq_tool(dtype: str):
    def prepare(x: np.ndarray, rate: int):
        holder = {}

        def encode():
            holder["rep"] = msfreq.encode(x, rate, bins_per_octave=BINS, dtype=dtype)
            return holder["rep"]

        def decode(rep):
            return msfreq.decode(rep)[:, 0]

        grid = make_grid(rate, TransformParams(bins_per_octave=BINS))
        units = transform_units(x.size, grid)
        # complex coefficients; a real residual sample counts as half of one
        count = sum(units * grid.hop_unit // band.hop * band.n_bins * (0.5 if band.kind == "residual" else 1)
                    for band in grid.bands)
        return encode, decode, count

    return prepare


def fft_floor(x: np.ndarray, rate: int):
    """The FFT work of msfreq's layout done with plain scipy calls, as issue #14 defines it:
    analysis = one float32 real FFT of the padded signal and batched complex64 inverse FFTs
    with the shapes of the octave bands; synthesis = the batched forward FFTs of those shapes
    and one inverse real FFT of the signal's length.  (msfreq also computes the two residual
    bands, which this reference leaves out.)"""
    grid = make_grid(rate, TransformParams(bins_per_octave=BINS))
    length = transform_units(x.size, grid) * grid.hop_unit
    signal = np.zeros(length, dtype=np.float32)
    signal[: x.size] = x
    spectrum = sp_fft.rfft(signal)
    shapes = [(band.n_bins, length // band.hop) for band in grid.octaves]
    buffers = [np.ones(shape, dtype=np.complex64) for shape in shapes]

    def encode():
        sp_fft.rfft(signal)
        return [sp_fft.ifft(buffer, axis=1) for buffer in buffers]

    def decode(arrays):
        for array in arrays:
            sp_fft.fft(array, axis=1)
        return sp_fft.irfft(spectrum, n=length)[: x.size]

    count = sum(band.n_bins * length // band.hop * (0.5 if band.kind == "residual" else 1)
                for band in grid.bands)
    return encode, decode, count


def librosa_tool(x: np.ndarray, rate: int):
    import librosa

    hop = 2 ** (OCTAVES - 1)  # librosa needs the hop divisible by 2**(octaves - 1)
    kwargs = {"sr": rate, "hop_length": hop, "fmin": C0_HZ, "bins_per_octave": BINS}
    n_bins = BINS * OCTAVES
    signal = x.astype(np.float64)

    def encode():
        return librosa.cqt(signal, n_bins=n_bins, **kwargs)

    def decode(coefficients):
        return librosa.icqt(coefficients, length=signal.size, **kwargs)

    frames = 1 + signal.size // hop
    return encode, decode, n_bins * frames


def essentia_tool(x: np.ndarray, rate: int):
    import essentia.standard as es

    params = {
        "inputSize": int(x.size), "minFrequency": C0_HZ, "maxFrequency": C0_HZ * 2**OCTAVES * 0.99,
        "binsPerOctave": BINS, "sampleRate": float(rate), "rasterize": "piecewise",
        "phaseMode": "global", "gamma": 0, "normalize": "none",
    }
    forward = es.NSGConstantQ(**params)
    inverse = es.NSGIConstantQ(**params)
    signal = x.astype(np.float32)
    counts = {}

    def encode():
        constantq, dc, nyquist = forward(signal)
        counts["n"] = sum(len(row) for row in constantq) + len(dc) + len(nyquist)
        return constantq, dc, nyquist

    def decode(parts):
        return np.asarray(inverse(*parts), dtype=np.float64)[: signal.size]

    return encode, decode, counts


TOOLS = {
    "msfreq": msfreq_tool("complex64"),
    # right after msfreq: each repeat times the two back to back, and their ratio is taken
    # per repeat (benchmarks/run.py), so a slow phase of this shared machine hits both
    "FFT floor": fft_floor,
    "msfreq (float64)": msfreq_tool("complex128"),
    "librosa": librosa_tool,
    "Essentia NSGCQ": essentia_tool,
}
