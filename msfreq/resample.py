"""Rational resampling by a polyphase FIR filter.

A signal is resampled by ``up / down`` (coprime) as if it were upsampled by ``up`` (zeros
between the samples), low-pass filtered with a zero-phase FIR and kept every ``down``-th
sample, with zeros beyond both ends.  The filter is a windowed sinc of ``2 * 10 * max(up,
down) + 1`` taps at the upsampled rate (Kaiser window, beta 5), cut off at the lower of the
two Nyquist frequencies: the design that :func:`scipy.signal.resample_poly` documents as its
default, which msfreq 0.9.0 called, so that both resample the same way (the tests compare
them).  Each output sample is the inner product of one polyphase branch's taps with a run of
input samples.  For ratios of few branches (44.1 <-> 48 kHz: 160) each branch is one
matrix-vector product over a strided view of the input, no sample copied; for ratios of many
(44,100 -> 44,101 Hz), whose branches hold few outputs each, the runs and taps of a slab of
consecutive outputs are gathered instead.

msfreq's own, not scipy's: importing :mod:`scipy.signal` takes 0.75 s here, more than
encoding a 30-second file, and it was paid by every encode with ``--sample-rate``.

Pure functions; nothing here knows about files.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

from msfreq.errors import ParameterError
from msfreq.params import is_integer

__all__ = ["KAISER_BETA", "HALF_WIDTH", "reduced_ratio", "input_reach", "resampling_filter", "resample",
           "resampled_length"]

#: Kaiser window parameter of the resampling filter.
KAISER_BETA = 5.0
#: The filter reaches this many periods of the higher rate's Nyquist ratio to either side:
#: ``HALF_WIDTH * max(up, down)`` taps at the upsampled rate.
HALF_WIDTH = 10


def reduced_ratio(up: int, down: int) -> tuple[int, int]:
    """``up / down`` in lowest terms.

    Examples
    --------
    >>> reduced_ratio(48000, 44100)
    (160, 147)
    """
    if not (is_integer(up) and is_integer(down) and up >= 1 and down >= 1):
        raise ParameterError(f"up and down must be integers >= 1, got {up!r}, {down!r}")
    up, down = int(up), int(down)
    common = gcd(up, down)
    return up // common, down // common


def resampled_length(n: int, up: int, down: int) -> int:
    """Samples that ``n`` input samples become: ``ceil(n * up / down)``.

    Examples
    --------
    >>> resampled_length(44100, 160, 147), resampled_length(5, 1, 2)
    (48000, 3)
    """
    up, down = reduced_ratio(up, down)
    return -(-int(n) * up // down)


def input_reach(up: int, down: int) -> int:
    """Input samples beyond either end of a range that its outputs depend on (the filter's
    half length at the input rate, and two for rounding): a block read with this margin
    resamples as the whole signal does.

    Examples
    --------
    >>> input_reach(160, 147), input_reach(1, 2)
    (12, 22)
    """
    up, down = reduced_ratio(up, down)
    return HALF_WIDTH * max(up, down) // up + 2


@lru_cache(maxsize=4)  # a batch meets a few ratios; an odd one's filter can take megabytes
def resampling_filter(up: int, down: int) -> np.ndarray:
    """The filter's taps at the upsampled rate, gain ``up`` (a unit DC gain after the zeros
    that upsampling puts between samples), ``2 * HALF_WIDTH * max(up, down) + 1`` of them,
    centred.

    Examples
    --------
    >>> taps = resampling_filter(1, 2)
    >>> taps.shape, round(float(taps.sum()), 12), int(np.argmax(taps))
    ((41,), 1.0, 20)
    """
    up, down = reduced_ratio(up, down)
    half = HALF_WIDTH * max(up, down)
    cutoff = 1.0 / max(up, down)  # of the upsampled rate's Nyquist frequency
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    taps = cutoff * np.sinc(cutoff * offsets) * np.kaiser(2 * half + 1, KAISER_BETA)
    taps *= up / taps.sum()
    taps.setflags(write=False)
    return taps


def resample(samples: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample ``samples`` by ``up / down`` along the first axis.

    Parameters
    ----------
    samples : ndarray, shape (n,) or (n, channels)
        Real samples; zeros are taken beyond both ends.
    up, down : int
        The rate ratio (reduced here if they share a factor).

    Returns
    -------
    ndarray of float64, shape (ceil(n * up / down),) or (that, channels)
        Output sample ``m`` lies at input time ``m * down / up``.

    Examples
    --------
    >>> x = np.sin(2 * np.pi * 440 * np.arange(4410) / 44100)
    >>> y = resample(x, 160, 147)
    >>> y.shape
    (4800,)
    >>> t = np.arange(4800) / 48000
    >>> bool(np.abs(y[200:-200] - np.sin(2 * np.pi * 440 * t[200:-200])).max() < 1e-3)
    True
    """
    up, down = reduced_ratio(up, down)
    x = np.asarray(samples, dtype=np.float64)
    single = x.ndim == 1
    if single:
        x = x[:, None]
    if x.ndim != 2:
        raise ParameterError(f"samples must have 1 or 2 dimensions, got shape {np.shape(samples)}")
    n, channels = x.shape
    n_out = resampled_length(n, up, down)
    out = np.zeros((n_out, channels))
    if n_out == 0:
        return out[:, 0] if single else out
    taps = resampling_filter(up, down)
    width = -(-taps.shape[0] // up)  # taps per branch
    if up * _BRANCH_COST > n_out * width:
        _by_output(x, out, taps, up, down)
    else:
        _by_branch(x, out, taps, up, down)
    return out[:, 0] if single else out


#: A branch's call costs about as much as this many multiply-adds gathered by output (6 us
#: against 3 ns, measured).  Branches that hold few outputs each (a ratio of many branches,
#: or a short signal) are computed by output instead: 5 s of stereo from 44,100 to 44,101 Hz
#: (44,101 branches) took 0.53 s by branch, 0.034 s by output (scipy's resample_poly 0.096 s);
#: from 44.1 to 48 kHz (160 branches) 0.006 s by branch, 0.034 s by output (scipy 0.007 s).
_BRANCH_COST = 2000
#: Output samples per slab of :func:`_by_output` (its temporaries: this times the taps per
#: branch, a few MB).
_SLAB = 8192


def _by_branch(x: np.ndarray, out: np.ndarray, taps: np.ndarray, up: int, down: int) -> None:
    """Fill ``out`` one polyphase branch at a time.  Output ``m = r + k * up`` (branch ``r``)
    is ``sum_i taps[phase + i * up] * x[first + k * down - i]``, with ``phase, first`` the
    remainder and quotient of ``(r * down + half) / up``: the branch's taps, reversed, against
    rows of a strided view of the padded input."""
    n, channels = x.shape
    n_out = out.shape[0]
    half = (taps.shape[0] - 1) // 2
    branches = []
    for r in range(min(up, n_out)):
        first, phase = divmod(r * down + half, up)
        branch = taps[phase::up][::-1].copy()
        count = -(-(n_out - r) // up)
        branches.append((r, branch, first - branch.shape[0] + 1, count))
    before = max(0, -min(start for _, _, start, _ in branches))
    end = max(start + (count - 1) * down + branch.shape[0]
              for _, branch, start, count in branches)
    padded = np.zeros(before + max(end, n))
    for channel in range(channels):
        padded[before : before + n] = x[:, channel]
        for r, branch, start, count in branches:
            rows = np.lib.stride_tricks.as_strided(
                padded[before + start :], shape=(count, branch.shape[0]),
                strides=(down * padded.strides[0], padded.strides[0]), writeable=False)
            out[r::up, channel] = rows @ branch


def _by_output(x: np.ndarray, out: np.ndarray, taps: np.ndarray, up: int, down: int) -> None:
    """Fill ``out`` in slabs of consecutive outputs, each output's run of inputs and its
    branch's taps gathered (the same sums as :func:`_by_branch`, for many branches)."""
    n, channels = x.shape
    n_out = out.shape[0]
    half = (taps.shape[0] - 1) // 2
    width = -(-taps.shape[0] // up)  # taps per branch, the last ones zero where it has fewer
    table = np.zeros(width * up)
    table[: taps.shape[0]] = taps
    table = table.reshape(width, up).T  # table[phase, i] = taps[phase + i * up]
    offsets = np.arange(width)
    before = width
    padded = np.zeros(before + n + width + down)
    for channel in range(channels):
        padded[before : before + n] = x[:, channel]
        for low in range(0, n_out, _SLAB):
            m = np.arange(low, min(low + _SLAB, n_out), dtype=np.int64)
            first, phase = np.divmod(m * down + half, up)
            runs = padded[before + first[:, None] - offsets[None, :]]
            out[low : low + m.shape[0], channel] = np.einsum("mi,mi->m", runs, table[phase])
