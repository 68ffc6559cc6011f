"""The frequency grid: octave edges, bin centres, hops per band and note names.

Everything here is a pure function of the sample rate and the
:class:`~msfreq.params.TransformParams`; nothing depends on the length of the audio.

Bands
-----
A grid is a tuple of :class:`Band` objects ordered by frequency:

* ``residual_low``: everything below the first bin centre of the lowest octave (down to 0 Hz);
* ``octave_00`` ... ``octave_NN``: ``bins_per_octave`` bins each, centres on the tuning grid
  ``tuning * 2**(k / B)`` inside ``[fmin * 2**j, fmin * 2**(j+1))``;
* ``residual_high``: everything above the last bin centre of the top octave, up to Nyquist.

Every hop is an integer number of samples that divides the hop of the lowest octave (the
*hop unit*), so that all bands share one time grid starting at t = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from msfreq.errors import ParameterError
from msfreq.params import MAX_SAMPLE_RATE, TransformParams, is_integer

__all__ = [
    "Band",
    "Grid",
    "make_grid",
    "bin_frequency",
    "note_name",
    "smooth_number_at_most",
]

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: Largest prime factor allowed in the top octave's hop (keeps every FFT size smooth).
_HOP_PRIMES = (2, 3, 5)


@dataclass(frozen=True)
class Band:
    """One band of the grid: an octave or a residual band.

    Attributes
    ----------
    name : str
        ``"residual_low"``, ``"octave_00"`` ... or ``"residual_high"``.
    kind : str
        ``"octave"`` or ``"residual"``.
    octave : int
        Octave number (0 = lowest); -1 for ``residual_low`` and ``n_octaves`` for
        ``residual_high``.
    bins : tuple of int
        Global bin indices ``k`` (centre ``tuning * 2**(k / B)``); for a residual band the
        index of the bin whose window it complements.
    lower, upper : float
        Nominal band edges in Hz (octave boundaries; 0 and Nyquist for the residuals).
    hop : int
        Time step in samples.
    """

    name: str
    kind: str
    octave: int
    bins: tuple[int, ...]
    lower: float
    upper: float
    hop: int

    @property
    def n_bins(self) -> int:
        """Number of rows this band stores (1 for a residual band)."""
        return len(self.bins)

    @property
    def is_residual(self) -> bool:
        """Whether this is one of the two real residual bands."""
        return self.kind == "residual"

    @property
    def is_low_residual(self) -> bool:
        """Whether this is ``residual_low`` (everything below the first bin)."""
        return self.kind == "residual" and self.octave < 0

    def coefficient_dtype(self, complex_dtype: np.dtype | str) -> np.dtype:
        """The dtype of this band's coefficients for a transform in ``complex_dtype``:
        that complex type for an octave, its real type for a residual band."""
        complex_dtype = np.dtype(complex_dtype)
        return np.finfo(complex_dtype).dtype if self.is_residual else complex_dtype

    def frames(self, length: int) -> int:
        """Number of frames this band has in a transform of ``length`` samples."""
        return int(length) // self.hop


@dataclass(frozen=True)
class Grid:
    """The bands for one sample rate and one set of transform parameters.

    Attributes
    ----------
    sample_rate : int
    params : TransformParams
    bands : tuple of Band
        Ordered by frequency: ``residual_low``, the octaves, ``residual_high``.
    hop_unit : int
        Hop of the lowest octave in samples; every other hop divides it, and a transform's
        length is always a whole number of hop units.
    """

    sample_rate: int
    params: TransformParams
    bands: tuple[Band, ...]
    hop_unit: int

    @property
    def octaves(self) -> tuple[Band, ...]:
        """The octave bands, lowest first."""
        return tuple(band for band in self.bands if not band.is_residual)

    @property
    def n_octaves(self) -> int:
        """Number of full octaves."""
        return len(self.octaves)

    @property
    def first_bin(self) -> int:
        """Global index k of octave 0's first row (row r of octave j is bin
        ``first_bin + j * bins_per_octave + r``, centred on ``tuning * 2 ** (k / bins_per_octave)``)."""
        return self.octaves[0].bins[0]

    def frequencies(self, band: Band) -> np.ndarray:
        """Return the bin centre frequencies of ``band`` in Hz, shape ``(n_bins,)``.

        For a residual band the value is the middle of its nominal range.
        """
        if band.is_residual:
            return np.array([0.5 * (band.lower + band.upper)])
        return bin_frequency(np.array(band.bins), self.params)

    def coefficient_rate(self) -> float:
        """Stored numbers per input sample and channel, counting a complex one as two.

        The redundancy of the representation: real numbers stored per real input sample.
        """
        return sum(
            band.n_bins / band.hop * (1 if band.is_residual else 2) for band in self.bands
        )


def bin_frequency(k: np.ndarray | int | float, params: TransformParams) -> np.ndarray:
    """Return the centre frequency in Hz of global bin index ``k``.

    Parameters
    ----------
    k : array_like
        Bin indices (0 = the tuning frequency; may be fractional).
    params : TransformParams

    Returns
    -------
    ndarray
        ``params.tuning * 2 ** (k / params.bins_per_octave)``.
    """
    return params.tuning * np.exp2(np.asarray(k, dtype=float) / params.bins_per_octave)


def note_name(frequency: float, tuning: float = 440.0) -> str:
    """Return the nearest note name of ``frequency`` with the deviation in cents.

    Parameters
    ----------
    frequency : float
        Frequency in Hz (> 0).
    tuning : float
        Frequency of A4 in Hz.

    Returns
    -------
    str
        For example ``"A4"``, ``"C#2+12c"`` or ``"0 Hz"`` for zero.
    """
    if frequency <= 0:
        return "0 Hz"
    midi = 69.0 + 12.0 * math.log2(frequency / tuning)
    nearest = round(midi)
    cents = round(100 * (midi - nearest))
    name = f"{_NOTE_NAMES[nearest % 12]}{nearest // 12 - 1}"
    if cents:
        name += f"{cents:+d}c"
    return name


def smooth_number_at_most(limit: float, primes: tuple[int, ...] = _HOP_PRIMES) -> int:
    """Return the largest integer ``<= limit`` whose prime factors are all in ``primes``.

    Parameters
    ----------
    limit : float
        Upper bound (>= 1).
    primes : tuple of int

    Returns
    -------
    int
    """
    best = 1
    candidates = [1]
    for prime in primes:
        grown = []
        for value in candidates:
            while value * prime <= limit:
                value *= prime
                grown.append(value)
        candidates += grown
    for value in candidates:
        best = max(best, value)
    return best


def _largest_divisor_at_most(number: int, limit: float) -> int:
    """Return the largest divisor of ``number`` that is ``<= limit`` (at least 1)."""
    best = 1
    for divisor in range(1, math.isqrt(number) + 1):
        if number % divisor == 0:
            for candidate in (divisor, number // divisor):
                if best < candidate <= limit:
                    best = candidate
    return best


def _first_bin_at_or_above(frequency: float, params: TransformParams) -> int:
    """Global index of the first grid frequency ``>= frequency`` (robust to rounding)."""
    position = params.bins_per_octave * math.log2(frequency / params.tuning)
    return math.ceil(position - 1e-9)


@lru_cache(maxsize=64)
def make_grid(sample_rate: int, params: TransformParams) -> Grid:
    """Return the bands of the transform for ``sample_rate`` and ``params``.

    Parameters
    ----------
    sample_rate : int
        Samples per second, 1 to :data:`~msfreq.params.MAX_SAMPLE_RATE`.
    params : TransformParams

    Returns
    -------
    Grid

    Raises
    ------
    ParameterError
        If the sample rate is out of range, leaves room for no full octave above ``params.fmin``, or more
        octaves are asked for than fit below the Nyquist frequency.
    """
    if not is_integer(sample_rate):
        raise ParameterError(f"sample_rate must be an integer, got {sample_rate!r}")
    if not 1 <= sample_rate <= MAX_SAMPLE_RATE:
        raise ParameterError(f"sample_rate must be in 1..{MAX_SAMPLE_RATE:,} Hz, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    nyquist = sample_rate / 2
    bins = params.bins_per_octave

    # An octave fits when the window of its top bin (which reaches ``span`` grid points up)
    # ends below Nyquist, so that the high residual band keeps a positive width.
    span = params.span
    fitting = 0
    while True:
        first_of_next = _first_bin_at_or_above(params.fmin * 2 ** (fitting + 1), params)
        if bin_frequency(first_of_next - 1 + span, params) >= nyquist:
            break
        fitting += 1
    if fitting == 0:
        raise ParameterError(
            f"sample_rate {sample_rate} Hz is too low for one octave above "
            f"fmin = {params.fmin:g} Hz (the Nyquist frequency must exceed "
            f"{float(bin_frequency(_first_bin_at_or_above(params.fmin * 2, params), params)):.1f} Hz)"
        )
    n_octaves = fitting if params.n_octaves is None else params.n_octaves
    if n_octaves > fitting:
        raise ParameterError(
            f"n_octaves = {params.n_octaves} do not fit below the Nyquist frequency of "
            f"{sample_rate} Hz with fmin = {params.fmin:g} Hz (at most {fitting})"
        )

    first_bins = [
        _first_bin_at_or_above(params.fmin * 2**j, params) for j in range(n_octaves)
    ]
    top_first = first_bins[-1]
    # Widest window of the top octave: its top bin, reaching from ``span`` grid points below
    # to ``span`` above.  A hop of at most sample_rate / width samples the band without
    # aliasing (the "painless" condition).
    top_bin = top_first + bins - 1
    width = float(bin_frequency(top_bin + span, params) - bin_frequency(top_bin - span, params))
    top_hop = smooth_number_at_most(sample_rate / width / params.oversampling)
    hop_unit = top_hop * 2 ** (n_octaves - 1)

    def residual_hop(band_width: float) -> int:
        # A residual band is real: its window, mirrored about DC (or Nyquist), covers
        # 2 * band_width Hz plus one FFT sample; this bound keeps it within one period for
        # every multiple of hop_unit.
        return _largest_divisor_at_most(
            hop_unit, 1.0 / (2.0 * band_width / sample_rate + 1.0 / hop_unit) / params.oversampling
        )

    low_bin = first_bins[0]
    high_bin = top_bin
    bands = [
        Band(
            name="residual_low",
            kind="residual",
            octave=-1,
            bins=(low_bin,),
            lower=0.0,
            upper=params.fmin,
            # up to where the octaves' windows sum to one: span - 1 grid points above
            hop=residual_hop(float(bin_frequency(low_bin + span - 1, params))),
        )
    ]
    for j, first in enumerate(first_bins):
        bands.append(
            Band(
                name=f"octave_{j:02d}",
                kind="octave",
                octave=j,
                bins=tuple(range(first, first + bins)),
                lower=params.fmin * 2**j,
                upper=params.fmin * 2 ** (j + 1),
                hop=top_hop * 2 ** (n_octaves - 1 - j),
            )
        )
    bands.append(
        Band(
            name="residual_high",
            kind="residual",
            octave=n_octaves,
            bins=(high_bin,),
            lower=params.fmin * 2**n_octaves,
            upper=nyquist,
            hop=residual_hop(nyquist - float(bin_frequency(high_bin - span + 1, params))),
        )
    )
    return Grid(sample_rate=sample_rate, params=params, bands=tuple(bands), hop_unit=hop_unit)
