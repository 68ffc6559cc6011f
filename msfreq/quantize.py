"""Storage precision: coefficients rounded to a grid fine enough for an exact decode.

An integer-PCM source has a known noise floor, its least significant bit (LSB).  Rounding
every coefficient to a step well below it changes the decoded samples by far less than half
an LSB, so they still round back to exactly the source's integers, while small coefficients
(silence, the padding of short files) become exact zeros and the rest become small integers
that compress well.  Steps are powers of two, so ``integer * step`` is exact in floating point.

Each band gets its own step, ``fraction * lsb * sqrt(2 / hop)``: weighting the bands by
``sqrt(hop / 2)`` makes the frame tight (see :meth:`msfreq.frames.Plan.frame_bounds`), so this
gives every coefficient the same share of the decoded error.  With ``fraction = 1/4`` the
decoded error measured 0.087 LSB RMS and at most 0.39 LSB (16-bit music, drums and noise at
44.1 kHz): every sample rounds back by itself, and an encode checks that.

Coarser steps cost fewer bits but leave some samples a level or more off.  Such a file also
stores one small **correction code** per sample (:func:`correction_codes`): the distance from
the rounded decode to the source sample, so the decode is exact again
(:func:`apply_corrections`).  A decode elsewhere (another FFT build, another block layout)
differs by float rounding; a sample whose decode lies near a rounding boundary (within
``guard`` of a half level) would then round either way, so its code counts from the level
below (``floor``), which no such difference can change.  With
:data:`CORRECTED_FRACTION` the decoded error measured 0.23 LSB RMS, below the source's own
rounding noise (1 / sqrt(12) LSB), and the coefficients plus codes took 9-11 % fewer bytes
(16-bit music and drums, 44.1 kHz).

Pure functions; nothing here knows about files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from msfreq.errors import ParameterError
from msfreq.params import is_integer
from msfreq.scales import Band

__all__ = [
    "STEP_FRACTIONS",
    "CORRECTED_FRACTION",
    "MAX_LEVEL",
    "MAX_CODE",
    "FILL_CODE",
    "lsb",
    "band_steps",
    "to_levels",
    "from_levels",
    "round_mantissa",
    "correction_codes",
    "apply_corrections",
]

#: Fractions of the source's LSB tried in turn (per band, scaled by sqrt(2 / hop)); after
#: the last, coefficients are stored unrounded.  Each finer step costs about one bit per
#: coefficient; the first holds for most files (decoded error 0.087 LSB RMS, measured).
STEP_FRACTIONS = (0.25, 0.125, 1.0 / 32.0)
#: Fraction of the source's LSB for steps whose decode is made exact by correction codes:
#: the decoded error (0.23 LSB RMS, measured) stays below the source's own rounding noise.
CORRECTED_FRACTION = 0.7
#: Largest correction code magnitude (int8; the most negative value is the fill marker):
#: codes count half levels, so a decode may be up to 63 levels off.
MAX_CODE = 127
#: Fill value of the correction dataset: never a code.
FILL_CODE = -128
#: Largest integer level stored (int32, leaving the most negative value as the fill marker).
MAX_LEVEL = 2**31 - 1


def lsb(bits: int) -> float:
    """Return the step between integer levels of ``bits``-bit PCM on a full scale of 1.

    Examples
    --------
    >>> lsb(16) == 2.0 ** -15
    True
    """
    if not is_integer(bits) or not 1 <= bits <= 32:
        raise ParameterError(f"bits must be an integer in 1..32, got {bits!r}")
    return 2.0 ** (1 - int(bits))


def band_steps(bands: Sequence[Band], unit: float, fraction: float) -> tuple[float, ...]:
    """Return the rounding step of every band: the power of two nearest
    ``fraction * unit * sqrt(2 / hop)``.

    Parameters
    ----------
    bands : sequence of Band
    unit : float
        The source's LSB (see :func:`lsb`).
    fraction : float

    Returns
    -------
    tuple of float

    Examples
    --------
    >>> from msfreq.params import TransformParams
    >>> from msfreq.scales import make_grid
    >>> grid = make_grid(44100, TransformParams())
    >>> steps = band_steps(grid.bands, lsb(16), 0.25)
    >>> [math.log2(step) for step in steps[1:3]]
    [-24.0, -24.0]
    """
    if not (unit > 0 and fraction > 0):
        raise ParameterError(f"unit and fraction must be > 0, got {unit!r}, {fraction!r}")
    return tuple(
        2.0 ** round(math.log2(fraction * unit * math.sqrt(2.0 / band.hop))) for band in bands
    )


def to_levels(values: np.ndarray, step: float) -> np.ndarray | None:
    """Round ``values`` to integer multiples of ``step``; return the integers.

    Complex values give a trailing axis of length 2 (real, imaginary).

    Returns
    -------
    ndarray of int32, or None
        None if a level would not fit in int32 (the caller stores the values unrounded).
    """
    values = np.ascontiguousarray(values)
    complex_values = np.iscomplexobj(values)
    out = np.empty(values.shape + ((2,) if complex_values else ()), dtype=np.int32)
    # (real, imaginary) pairs are the complex array's own memory layout
    flat = (values.view(values.real.dtype) if complex_values else values).reshape(-1)
    scale = flat.dtype.type(1.0 / step)  # a power of two: exact
    into = out.reshape(-1)
    for part in _slabs(flat.shape[0]):
        scaled = flat[part] * scale
        np.rint(scaled, out=scaled)
        if scaled.size and max(-float(scaled.min()), float(scaled.max())) > MAX_LEVEL:
            return None
        into[part] = scaled
    return out


def from_levels(levels: np.ndarray, step: float, dtype: np.dtype) -> np.ndarray:
    """Return the coefficients that ``levels`` (from :func:`to_levels`) stand for.

    Parameters
    ----------
    levels : ndarray of int
        With a trailing axis of 2 (real, imaginary) when ``dtype`` is complex.
    step : float
    dtype : numpy dtype
        dtype of the result: complex, or real for a residual band.

    Examples
    --------
    >>> values = np.array([[[0.5 + 0.25j, -1.0]]], dtype=np.complex64)
    >>> from_levels(to_levels(values, 0.125), 0.125, np.complex64)
    array([[[ 0.5+0.25j, -1. +0.j  ]]], dtype=complex64)
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        scale = np.finfo(dtype).dtype.type(step)
        out = np.empty(levels.shape[:-1], dtype=dtype)
        # (real, imaginary) pairs are the complex array's own memory layout: one pass over
        # both (measured: half the time of two strided passes)
        pairs = out.view(scale.dtype).reshape(levels.shape)
        # computed in the result's precision (float32: 0.6x the time of numpy's default
        # float64 loop), with the same result: a level rounded to the float, then scaled by
        # a power of two (exact), is the exact product rounded once
        np.multiply(levels, scale, out=pairs, dtype=scale.dtype, casting="unsafe")
        return out
    out = np.empty(levels.shape, dtype=dtype)
    np.multiply(levels, dtype.type(step), out=out, dtype=dtype, casting="unsafe")
    return out


def round_mantissa(values: np.ndarray, keep_bits: int) -> np.ndarray:
    """Round the float mantissas of ``values`` to ``keep_bits`` bits (ties to even), in place.

    A relative rounding: the error of each number is at most ``2**-(keep_bits + 1)`` of it.

    Parameters
    ----------
    values : ndarray of float32, float64, complex64 or complex128
    keep_bits : int
        Mantissa bits kept (1 .. 23 for single precision, 1 .. 52 for double).
    """
    real = values.real.dtype if np.iscomplexobj(values) else values.dtype
    mantissa = np.finfo(real).nmant
    if not is_integer(keep_bits) \
            or not 1 <= keep_bits <= mantissa:
        raise ParameterError(f"keep_bits must be in 1..{mantissa} for {real}, got {keep_bits!r}")
    if keep_bits == mantissa:
        return values
    unsigned = np.uint32 if real.itemsize == 4 else np.uint64
    bits = values.view(unsigned)
    drop = mantissa - int(keep_bits)
    one = unsigned(1)
    half = unsigned((1 << (drop - 1)) - 1)
    odd = (bits >> unsigned(drop)) & one
    bits += half + odd
    bits &= ~unsigned((1 << drop) - 1)
    return values


#: Samples per slab in :func:`correction_codes` and :func:`apply_corrections`: temporaries of
#: 128 kB stay in cache (whole-array temporaries measured 5x slower on fresh memory).
_SLAB = 16384


def _slabs(size: int):
    for first in range(0, size, _SLAB):
        yield slice(first, min(first + _SLAB, size))


def correction_codes(decoded: np.ndarray, source: np.ndarray, unit: float,
                     guard: float) -> np.ndarray | None:
    """Return the int8 codes that turn ``decoded`` into exactly ``source``
    (see :func:`apply_corrections`).

    A sample whose decode, in levels, rounds unambiguously (at least ``guard`` from a half
    level) gets ``2 * (source - round(decoded))``; one nearer a half level gets
    ``2 * (source - floor(decoded)) + 1``, counted from a level that a decode differing by
    less than ``guard`` still finds.

    Parameters
    ----------
    decoded : ndarray of float
        Decoded samples (full scale 1); the last axis is time.
    source : ndarray of float
        The source samples, same shape, on the grid of ``unit``.
    unit : float
        The grid's step (a power of two, see :func:`lsb`).
    guard : float
        In levels, ``0 < guard < 0.5``.

    Returns
    -------
    ndarray of int8, or None
        None if a sample is more than :data:`MAX_CODE` half levels off.

    Examples
    --------
    >>> unit = lsb(16)
    >>> decoded = np.array([3.2, 4.49, -7.9]) * unit
    >>> codes = correction_codes(decoded, np.array([3.0, 5.0, -8.0]) * unit, unit, 0.05)
    >>> codes
    array([0, 3, 0], dtype=int8)
    >>> apply_corrections(decoded + 0.02 * unit, codes, unit) / unit
    array([ 3.,  5., -8.])
    """
    decoded, source = np.asarray(decoded), np.asarray(source)
    out = np.empty(decoded.shape, dtype=np.int8)
    scale = 1.0 / unit  # a power of two: exact
    for part in _slabs(decoded.shape[-1]):
        levels = np.multiply(decoded[..., part], scale, dtype=np.float64)
        base = np.rint(levels)
        near_half = np.abs(levels - base) > 0.5 - guard
        np.floor(levels, out=base, where=near_half)
        codes = np.multiply(source[..., part], scale, dtype=np.float64)
        codes -= base
        codes *= 2.0
        codes += near_half
        if codes.size and max(-float(codes.min()), float(codes.max())) > MAX_CODE:
            return None
        out[..., part] = codes
    return out


def apply_corrections(decoded: np.ndarray, codes: np.ndarray, unit: float, *,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Return the samples that ``decoded`` and its correction ``codes`` stand for:
    ``(round(decoded / unit) + code / 2) * unit`` for even codes, ``(floor(decoded / unit) +
    (code - 1) / 2) * unit`` for odd ones (see :func:`correction_codes`).

    Parameters
    ----------
    decoded : ndarray of float
        The last axis is time.
    codes : ndarray of int8
        Same shape.
    unit : float
    out : ndarray of float, optional
        Where to put them (float32 holds every sample of a grid up to 24 bits exactly);
        default a new float64 array.
    """
    decoded, codes = np.asarray(decoded), np.asarray(codes)
    if out is None:
        out = np.empty(decoded.shape, dtype=np.float64)
    # In single precision where both are (a complex64 file's decode): the same numbers, as
    # scaling by a power of two is exact and commutes with the one rounding, to the result,
    # of ``level + code``; measured 0.05 against 0.07-0.17 s for 16 million samples.
    work = np.result_type(decoded.dtype, out.dtype, np.float32)
    scale = work.type(1.0 / unit)
    for part in _slabs(decoded.shape[-1]):
        levels = np.multiply(decoded[..., part], scale, dtype=work)
        odd = (codes[..., part] & 1).astype(bool)
        base = np.rint(levels)
        np.floor(levels, out=base, where=odd)
        base += codes[..., part] >> 1  # arithmetic shift: (code - odd) / 2, also when negative
        np.multiply(base, work.type(unit), out=out[..., part])
    return out
