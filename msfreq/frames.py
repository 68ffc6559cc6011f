"""Frequency windows, the transform plan for one signal length, and the frame bounds.

The transform is a *painless* nonstationary Gabor frame computed in the frequency domain
(Balazs, Dörfler, Jaillet, Holighaus, Velasco, "Theory, implementation and applications of
nonstationary Gabor frames", 2011; Velasco, Holighaus, Dörfler, Grill, "Constructing an
invertible constant-Q transform with nonstationary Gabor frames", DAFx 2011): every bin has a
compactly supported frequency window ``g_k`` no wider than the number of time frames of its
band, so the frame operator is diagonal in frequency and its inverse is exact.

Windows
-------
On the log-frequency axis ``u = B * log2(f / tuning)`` every bin ``k`` has the same window
``h(u - k)`` with support ``(-1, 1)``:

    h(t) = cos(pi/2 * s(|t|)),   s = a smoothstep with s(t) + s(1 - t) = 1,

so neighbouring windows satisfy ``h(t)**2 + h(t - 1)**2 = 1``: the squares of all windows
(plus the two residual windows, which are 1 beyond the outermost bins) sum to exactly 1 at
every frequency.  The windows are identical up to translation in ``u``, so a pitch shift by
``m`` bins moves the magnitudes by exactly ``m`` rows.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock

import numpy as np

from msfreq.errors import ParameterError
from msfreq.scales import Band, Grid

__all__ = [
    "smoothstep",
    "bin_window",
    "BandLayout",
    "Plan",
    "get_plan",
]


def smoothstep(t: np.ndarray, dtype: np.dtype | type = float) -> np.ndarray:
    """Return the symmetric smoothstep ``s(t)`` on ``[0, 1]``.

    The degree-11 Hermite smoothstep: ``s(0) = 0``, ``s(1) = 1``, ``s(t) + s(1 - t) = 1`` and
    five derivatives vanish at both ends, so the windows built from it are smooth and their
    time-domain atoms decay like ``|t|**-7`` (measured: the energy of the lowest octave's
    atom beyond 32 lowest-octave hops is 129 dB below its total).

    Parameters
    ----------
    t : ndarray
        Values in ``[0, 1]``.
    dtype : numpy dtype
        Precision of the evaluation (default float64).
    """
    t = np.asarray(t, dtype=dtype)
    value = np.full_like(t, -252.0)
    for coefficient in (1386.0, -3080.0, 3465.0, -1980.0, 462.0):  # Horner, in place
        value *= t
        value += coefficient
    square = t * t
    value *= square * square * square
    return value


def bin_window(t: np.ndarray) -> np.ndarray:
    """Return ``h(t)``, the window of one bin on the log-frequency axis (in bins).

    Parameters
    ----------
    t : ndarray
        Distance from the bin centre in bins.

    Returns
    -------
    ndarray
        ``cos(pi/2 * s(|t|))`` for ``|t| < 1``, else 0.
    """
    distance = np.abs(t)
    outside = distance >= 1.0
    np.minimum(distance, 1.0, out=distance)
    # For distances past 0.5 evaluate the complementary form cos(pi/2 * (1 - s(1 - d))), so
    # that the two windows overlapping at any frequency use the same s value and their
    # squares sum to 1 up to a rounding or two (not up to the polynomial's cancellation error).
    far = distance > 0.5
    np.subtract(1.0, distance, out=distance, where=far)
    ramp = smoothstep(distance)
    np.subtract(1.0, ramp, out=ramp, where=far)
    ramp *= 0.5 * np.pi
    np.cos(ramp, out=ramp)
    ramp[outside] = 0.0  # cos(pi/2) is 6e-17, not 0: the support must end exactly
    return ramp


#: Values computed at once while planning: the temporaries of one chunk stay in cache
#: (measured on the 4.4 M frequencies of a 200-s plan: 0.066 s in chunks of 65,536, 0.075 s
#: in chunks of 262,144, 0.082 s in chunks of 4,096).
_PLAN_CHUNK = 1 << 16


@dataclass(frozen=True)
class _Pairs:
    """Every FFT frequency lies between two grid points: ``floor(u[m]) <= u[m] < floor(u[m])
    + 1`` on the log-frequency axis.  ``lower[m]`` is the window of bin ``floor(u[m])`` there
    and ``upper[m]`` that of the bin above; ``lower**2 + upper**2 = 1``.  Computing each pair
    once, from one ``u``, makes the partition of unity exact to rounding.  ``position`` holds
    ``u + shift`` (see :func:`_positions`)."""

    position: np.ndarray
    shift: int
    lower: np.ndarray
    upper: np.ndarray


def _octave_fill(arrays: Sequence[np.ndarray], offsets: Sequence[float], top: int) -> None:
    """Fill positions ``1 .. top - 1`` of each array from the positions above: ``a[m] =
    a[2 m] + offset``, an octave at a time (``top`` is the first position whose double is
    past the arrays' end, so every position below has its double set before it is read)."""
    high = top
    while high > 1:
        low = (high + 1) // 2
        for array, offset in zip(arrays, offsets, strict=True):
            if offset:
                np.add(array[2 * low : 2 * high : 2], offset, out=array[low:high])
            else:
                array[low:high] = array[2 * low : 2 * high : 2]
        high = low


def _positions(grid: Grid, length: int) -> tuple[np.ndarray, int]:
    """Position of every FFT frequency on the bin axis plus an integer ``shift``: ``B *
    log2(f / tuning) + shift`` (-inf at DC); returns ``(position, shift)``.

    Frequency ``m`` lies exactly one octave (``B`` bins) below frequency ``2 m``, so only the
    frequencies whose double is past Nyquist (the top half) take a logarithm; every one below
    is its double's position minus ``B``.  The shift makes every position non-negative, so
    that subtraction is exact in float64 (a multiple of a number's last place, smaller than the
    number): a frequency and its octaves share one offset between grid points, hence identical
    window values, and the planning costs half the logarithms and half the window evaluations.
    """
    n_freq = length // 2 + 1
    params = grid.params
    bins = params.bins_per_octave
    per_index = grid.sample_rate / length / params.tuning
    shift = max(0, math.ceil(1.0 - bins * math.log2(per_index)))  # position of m = 1 >= 1
    top = (n_freq + 1) // 2
    position = np.empty(n_freq)
    position[0] = -np.inf
    direct = position[top:]
    np.log2(np.arange(top, n_freq, dtype=np.float64), out=direct)
    direct *= bins
    direct += bins * math.log2(per_index) + shift
    _octave_fill([position], [-float(bins)], top)
    return position, shift


def _pairs(grid: Grid, length: int, real: np.dtype) -> _Pairs:
    position, shift = _positions(grid, length)
    n_freq = position.size
    top = (n_freq + 1) // 2
    lower = np.empty(n_freq, dtype=real)
    upper = np.empty(n_freq, dtype=real)
    lower[0], upper[0] = 1.0, 0.0
    for first in range(top, n_freq, _PLAN_CHUNK):
        piece = slice(first, min(first + _PLAN_CHUNK, n_freq))
        offset = position[piece] - np.floor(position[piece])  # in [0, 1)
        near = offset <= 0.5
        # The window values are computed in the plan's precision (float32 for complex64):
        # the pair still shares one angle, so lower**2 + upper**2 = 1 to that precision.
        angle = smoothstep(np.where(near, offset, 1.0 - offset), dtype=real)
        angle *= real.type(0.5 * np.pi)
        cosine, sine = np.cos(angle), np.sin(angle)
        lower[piece] = np.where(near, cosine, sine)
        upper[piece] = np.where(near, sine, cosine)
    _octave_fill([lower, upper], [0.0, 0.0], top)  # an octave down: the same offset
    return _Pairs(position=position, shift=shift, lower=lower, upper=upper)


def _sample_windows(
    band: Band, pairs: _Pairs, real: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample the windows of ``band`` on the FFT grid described by ``pairs``.

    Returns
    -------
    starts, widths : ndarray of int64, shape (n_bins,)
        First FFT index and number of FFT indices of each row's support (the open interval
        from the grid point below the row's bin to the grid point above it).
    weights : ndarray of ``real``, shape (n_bins, max(widths))
        The window values, zero-padded beyond each row's width.
    """
    n_freq = pairs.position.size
    bins = np.asarray(band.bins, dtype=np.int64) + pairs.shift  # on the shifted axis
    if not band.is_residual:
        starts = np.searchsorted(pairs.position, bins - 1, side="right")
        stops = np.searchsorted(pairs.position, bins + 1, side="left")
    elif band.is_low_residual:  # residual_low: everything below its bin (the first bin's centre)
        starts = np.zeros_like(bins)
        stops = np.searchsorted(pairs.position, bins, side="left")
    else:  # residual_high: everything above its bin (the last bin's centre)
        starts = np.searchsorted(pairs.position, bins, side="right")
        stops = np.full_like(bins, n_freq)
    widths = np.maximum(stops - starts, 0).astype(np.int64)
    starts = starts.astype(np.int64)
    weights = np.zeros((band.n_bins, max(int(widths.max(initial=0)), 1)), dtype=real)
    # Every frequency lies between grid points floor[m] and floor[m] + 1, in the windows of
    # exactly those two bins: a row's values are slices of ``upper`` (below its bin) and of
    # ``lower`` (from its bin up), split where the position reaches a grid point.
    for row, k in enumerate(bins):
        start, stop = int(starts[row]), int(starts[row] + widths[row])
        if stop <= start:
            continue
        if not band.is_residual:
            middle = int(np.searchsorted(pairs.position, k, side="left"))
            below, above = pairs.upper[start:middle], pairs.lower[middle:stop]
        elif band.is_low_residual:  # acts as bin (k - 1), extended down to DC with 1
            middle = int(np.searchsorted(pairs.position, k - 1, side="left"))
            below, above = np.ones(middle - start), pairs.lower[middle:stop]
        else:  # acts as bin (k + 1), extended up to Nyquist with 1
            middle = int(np.searchsorted(pairs.position, k + 1, side="left"))
            below, above = pairs.upper[start:middle], np.ones(stop - middle)
        middle = min(max(middle, start), stop)
        weights[row, : middle - start] = below[: middle - start]
        weights[row, middle - start : stop - start] = above[: stop - middle]
    return starts, widths, weights


def _wide_window(position: np.ndarray, k: np.ndarray, span: int) -> np.ndarray:
    """Window of bin ``k`` reaching ``span`` grid points to either side: ``h((u - k) / span)
    / sqrt(span)``, whose squares over all integer ``k`` sum to one (``span`` interleaved
    partitions of unity)."""
    return bin_window((position - k) / span) / np.sqrt(span)


def _pair_values(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``h(t)`` and ``h(t - 1)`` for ``t`` in ``[0, 1)``, from one angle (float64), so their
    squares sum to one to rounding."""
    near = t <= 0.5
    angle = smoothstep(np.where(near, t, 1.0 - t)) * (0.5 * np.pi)
    cosine, sine = np.cos(angle), np.sin(angle)
    return np.where(near, cosine, sine), np.where(near, sine, cosine)


def _sample_wide_windows(
    band: Band, position: np.ndarray, shift: int, real: np.dtype, span: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_sample_windows`, for windows reaching ``span > 1`` grid points to either
    side.  The residual bands take what the octaves' windows leave, ``sqrt(1 - sum of
    squares)``, below the first bin + span - 1 and above the last bin - span + 1."""
    n_freq = position.size
    bins = np.asarray(band.bins, dtype=np.int64) + shift  # on the shifted axis of _positions
    if not band.is_residual:
        starts = np.searchsorted(position, bins - span, side="right")
        stops = np.searchsorted(position, bins + span, side="left")
    elif band.is_low_residual:
        starts = np.zeros_like(bins)
        stops = np.searchsorted(position, bins + span - 1, side="left")
    else:
        starts = np.searchsorted(position, bins - span + 1, side="right")
        stops = np.full_like(bins, n_freq)
    widths = np.maximum(stops - starts, 0).astype(np.int64)
    starts = starts.astype(np.int64)
    weights = np.zeros((band.n_bins, max(int(widths.max(initial=0)), 1)), dtype=real)
    if not band.is_residual:
        # The window of bin b on [b, b + span) and that of bin b + span there are a pair whose
        # squares sum to one (h(t)**2 + h(t - 1)**2 = 1): one angle gives both, as for span 1.
        scale = 1.0 / np.sqrt(span)
        for base in range(int(bins[0]) - span, int(bins[-1]) + 1):
            low = int(np.searchsorted(position, base, side="left"))
            high = int(np.searchsorted(position, base + span, side="left"))
            if high <= low:
                continue
            lower, upper = _pair_values((position[low:high] - base) / span)
            row, partner = base - int(bins[0]), base + span - int(bins[0])
            if 0 <= row < band.n_bins:  # its window from its bin up
                weights[row, low - starts[row] : high - starts[row]] = lower * scale
            if 0 <= partner < band.n_bins:  # its window below its bin (open at base)
                skip = int(np.searchsorted(position, base, side="right")) - low
                first = low + skip - starts[partner]
                weights[partner, first : first + high - low - skip] = upper[skip:] * scale
        return starts, widths, weights
    for row in range(band.n_bins):  # a residual band: what the octaves' windows leave
        where = position[starts[row] : starts[row] + widths[row]]
        near = (np.arange(bins[row], bins[row] + 2 * span - 1) if band.is_low_residual
                else np.arange(bins[row] - 2 * span + 2, bins[row] + 1))
        cover = np.zeros(where.size)
        for k in near:
            cover += _wide_window(where, k, span) ** 2
        weights[row, : widths[row]] = np.sqrt(np.clip(1.0 - cover, 0.0, None))
    return starts, widths, weights


#: Row groups are a multiple of this: pocketfft's vector loops take 2, 4 or 8 rows at a time,
#: depending on how scipy was built, and each row left over runs alone.
_ROW_BATCH = 8


@dataclass(frozen=True)
class BandLayout:
    """Where one band's windows sit on the FFT grid of a plan.

    Attributes
    ----------
    band : Band
    frames : int
        Number of time frames ``M = length / band.hop`` (also the IFFT size).
    starts : ndarray of int, shape (n_bins,)
        First FFT index of each row's window support.
    widths : ndarray of int, shape (n_bins,)
        Number of FFT indices in each row's support (all ``<= frames``).
    weights : ndarray of float, shape (n_bins, max(widths))
        Window values, zero-padded beyond each row's width.

    A residual band is *real*: its window is mirrored onto the negative frequencies (about
    DC for ``residual_low``, about Nyquist for ``residual_high``), so its atom is a real,
    smooth low-pass (high-pass) filter and its coefficients are real samples.
    """

    band: Band
    frames: int
    starts: np.ndarray
    widths: np.ndarray
    weights: np.ndarray

    def source_index(self, trash: int, rows: slice = slice(None)) -> np.ndarray:
        """FFT indices of every weight of ``rows``; padding points at ``trash``.

        Returns
        -------
        ndarray of int, shape ``weights[rows].shape``
        """
        offsets = np.arange(self.weights.shape[1])
        index = self.starts[rows, None] + offsets
        return np.where(offsets < self.widths[rows, None], index, trash)

    def frame_index(self, rows: slice = slice(None)) -> np.ndarray:
        """Position of every weight of ``rows`` in its row's length-``frames`` periodic
        spectrum.  Within a row the positions are distinct because no support is wider than
        ``frames``."""
        offsets = np.arange(self.weights.shape[1])
        index = (self.starts[rows] % self.frames)[:, None] + offsets
        index[index >= self.frames] -= self.frames  # widths <= frames: one wrap at most
        return index

    def row_groups(self, limit: int) -> list[slice]:
        """Slices of rows with at most about ``limit`` coefficients each (at least one row),
        so that the transform's temporary arrays stay small whatever the length.

        Groups of more than 8 rows hold a multiple of 8: pocketfft transforms a batch several
        rows at a time in vector registers, and a remainder row goes alone (measured on the
        top octave of a 200-s signal, rows of 98,304 frames: 0.047 s in groups of 21 rows,
        0.041 s in groups of 24 or 8)."""
        per_group = max(1, limit // max(self.frames, 1))
        if per_group > _ROW_BATCH:
            per_group -= per_group % _ROW_BATCH
        n_rows = self.band.n_bins
        return [slice(first, min(first + per_group, n_rows)) for first in range(0, n_rows, per_group)]

    @property
    def real(self) -> bool:
        """Whether the band's coefficients are real (the residual bands)."""
        return self.band.is_residual

    @property
    def analysis_scale(self) -> float:
        """Factor on the inverse FFT so that a sinusoid of amplitude 1 gives magnitude 1."""
        return (1.0 if self.real else 2.0) / self.band.hop

    @property
    def synthesis_scale(self) -> float:
        """Factor of the dual (inverse) windows: ``1 / analysis_scale``."""
        return 1.0 / self.analysis_scale


class Plan:
    """Precomputed windows for transforming signals of one length on one grid.

    Like :class:`scipy.signal.ShortTimeFFT`, the plan validates its inputs once, computes the
    window tables once and exposes read-only properties; the transform functions in
    :mod:`msfreq.transform` take a plan and an array.

    Parameters
    ----------
    grid : Grid
    length : int
        Signal length in samples; a positive multiple of ``grid.hop_unit``.
    dtype : numpy dtype
        Complex dtype of the coefficients (``complex64`` computes in single precision).
    """

    def __init__(self, grid: Grid, length: int, dtype: np.dtype) -> None:
        if length < 1 or length % grid.hop_unit:
            raise ParameterError(
                f"length must be a positive multiple of the hop unit {grid.hop_unit}, got {length!r}"
            )
        self._grid = grid
        self._length = int(length)
        self._dtype = np.dtype(dtype)
        real = np.finfo(self._dtype).dtype
        n_freq = self._length // 2 + 1
        layouts = []
        span = grid.params.span
        pairs = _pairs(grid, self._length, real) if span == 1 else None
        position, shift = _positions(grid, self._length) if span > 1 else (None, 0)
        for band in grid.bands:
            frames = self._length // band.hop
            if span == 1:
                starts, widths, weights = _sample_windows(band, pairs, real)
            else:
                starts, widths, weights = _sample_wide_windows(band, position, shift, real, span)
            occupied = widths.copy()
            if band.is_residual:  # mirrored: both sides, self-conjugate points once
                ends = starts + widths - 1
                occupied = 2 * widths - (starts == 0) - ((self._length % 2 == 0) & (ends == n_freq - 1))
            if occupied.max(initial=0) > frames:
                raise RuntimeError(
                    f"internal: band {band.name} window ({occupied.max()} FFT samples) wider "
                    f"than its {frames} frames"
                )
            layouts.append(
                BandLayout(band=band, frames=frames, starts=starts, widths=widths, weights=weights)
            )
        self._layouts = tuple(layouts)

    @property
    def grid(self) -> Grid:
        """The frequency grid."""
        return self._grid

    @property
    def length(self) -> int:
        """Signal length in samples."""
        return self._length

    @property
    def dtype(self) -> np.dtype:
        """Complex dtype of the coefficients."""
        return self._dtype

    @property
    def nbytes(self) -> int:
        """Bytes the plan's tables take."""
        return sum(layout.weights.nbytes + layout.starts.nbytes + layout.widths.nbytes
                   for layout in self._layouts)

    @property
    def layouts(self) -> tuple[BandLayout, ...]:
        """One :class:`BandLayout` per band, in the grid's order."""
        return self._layouts

    def window_power(self) -> np.ndarray:
        """Return the sum over all rows of the squared windows at every FFT frequency.

        Exactly 1 everywhere for this construction (up to rounding); the tests check it.

        Returns
        -------
        ndarray, shape (length // 2 + 1,)
        """
        total = np.zeros(self._length // 2 + 2)
        for layout in self._layouts:
            index = layout.source_index(trash=total.size - 1)
            np.add.at(total, index.ravel(), layout.weights.astype(float).ravel() ** 2)
        return total[:-1]

    def frame_operator(self) -> np.ndarray:
        """Return the diagonal of the frame operator, per FFT frequency.

        For a real signal ``x`` with spectrum ``X``, the coefficient energy is
        ``sum |c|**2 = sum_m lam[m] * w[m] * |X[m]|**2 / length`` with ``w = 1`` at DC and
        Nyquist and 2 elsewhere, while ``sum x**2 = sum_m w[m] |X[m]|**2 / length``; so
        ``lam`` is the ratio of coefficient energy to signal energy of a pure tone at FFT
        frequency ``m``.

        Returns
        -------
        ndarray, shape (length // 2 + 1,)
        """
        real_rows = np.zeros(self._length // 2 + 2)
        complex_rows = np.zeros(self._length // 2 + 2)
        for layout in self._layouts:
            index = layout.source_index(trash=real_rows.size - 1)
            target = real_rows if layout.real else complex_rows
            weights = layout.weights.astype(float) ** 2 / layout.band.hop
            np.add.at(target, index.ravel(), weights.ravel())
        # A real row contributes g**2 / hop at every frequency (it sees m and -m); a complex
        # row 4 g**2 / hop per unit of |X|**2, which is 2 g**2 / hop of the energy of an
        # interior frequency (counted at m and -m) and 4 g**2 / hop at DC and Nyquist.
        once = np.full(self._length // 2 + 1, 0.5)
        once[0] = 1.0
        if self._length % 2 == 0:
            once[-1] = 1.0
        return real_rows[:-1] + 4.0 * complex_rows[:-1] * once

    def frame_bounds(self) -> tuple[float, float]:
        """Return the lower and upper frame bounds ``(A, B)`` of the analysis operator.

        ``A * sum(x**2) <= sum(|c|**2) <= B * sum(x**2)`` for every real signal of this
        length.  The coefficients are scaled so that a sinusoid of amplitude 1 at a bin
        centre has magnitude 1, so bands with a smaller hop have proportionally more energy
        and ``B / A`` is about the ratio of the largest to the smallest hop.  Weighting each
        band by ``sqrt(hop / 2)`` gives a tight frame (``A = B``, away from DC and Nyquist).
        """
        lam = self.frame_operator()
        return float(lam.min()), float(lam.max())


_PLANS: OrderedDict[tuple, Plan] = OrderedDict()
_PLANS_LOCK = Lock()
_PLAN_CACHE_SIZE = 4
#: Plans kept beyond the most recent one may hold this many bytes together: a batch of files
#: of different lengths must not keep a plan per length (measured: +220 MB in a worker after
#: ten 2-minute files).
_PLAN_CACHE_BYTES = 48 * 2**20


def get_plan(grid: Grid, length: int, dtype: np.dtype) -> Plan:
    """Return a cached :class:`Plan` for ``(grid, length, dtype)``.

    Plans hold about one weight per coefficient, so only the few most recent are kept, and
    older ones only while they are small (:data:`_PLAN_CACHE_BYTES`).
    """
    key = (grid, int(length), np.dtype(dtype).str)
    with _PLANS_LOCK:
        plan = _PLANS.get(key)
        if plan is not None:
            _PLANS.move_to_end(key)
            return plan
    plan = Plan(grid, length, dtype)
    with _PLANS_LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > _PLAN_CACHE_SIZE or (
            len(_PLANS) > 1 and sum(item.nbytes for item in _PLANS.values()) - plan.nbytes
            > _PLAN_CACHE_BYTES
        ):
            _PLANS.popitem(last=False)
    return plan
