"""Long real FFTs by the four-step method, for the whole-signal transform.

A real FFT of millions of points through :mod:`scipy.fft` walks the whole array once per
radix pass and is bound by memory, not arithmetic: measured here, one float32 ``rfft`` of
8,847,360 points takes 0.13 s while the same number of points in batched FFTs of 32,768
takes 0.02 s.  The four-step method (Bailey, "FFTs in external or hierarchical memory",
1990) computes the same transform of length ``L = L1 * L2`` as short FFTs that stay in
cache: ``L2`` FFTs of length ``L1`` (down the columns of the signal laid out as an
``L1 x L2`` array), a multiplication by twiddle factors, ``L1 / 2 + 1`` FFTs of length
``L2`` along the rows, and a reordering.  For real input only half of the column FFTs are
needed (they are Hermitian); the inverse runs the same steps backwards.  The result is the
DFT itself, with the rounding of the batched FFTs instead of scipy's.

The twiddle factors ``exp(-2 pi i k1 n2 / L)`` are not tabulated in full (that would be half
the signal's size): with ``n2 = q c + r`` they are the product of a factor in ``r`` and one in
``q``, two tables of about ``L1 * sqrt(L2)`` values each.

Every FFT runs in scipy's pocketfft, called directly (:func:`pocketfft`): importing
:mod:`scipy.fft` costs more than a short file's whole encode.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import os
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["FOUR_STEP_MIN", "rfft", "irfft", "split", "next_fast_len", "pocketfft"]


def pocketfft():
    """The FFTs msfreq runs (``fft``, ``ifft``, ``rfft``, ``irfft``, with :mod:`scipy.fft`'s
    signatures and results), loaded on first use (see :func:`_load_pocketfft`)."""
    global _BACKEND
    if _BACKEND is None:
        _BACKEND = _load_pocketfft()
    return _BACKEND


_BACKEND = None


class _Pocketfft:
    """scipy's pocketfft extension, called as :mod:`scipy.fft` calls it (the same arguments
    after the same conversions: the same results, bit for bit).  Only what msfreq uses:
    1-D transforms along one axis."""

    def __init__(self, module) -> None:
        self._module = module

    def fft(self, x, n=None, axis=-1, norm=None, overwrite_x=False, workers=None):
        return self._c2c(True, x, n, axis, norm, overwrite_x, workers)

    def ifft(self, x, n=None, axis=-1, norm=None, overwrite_x=False, workers=None):
        return self._c2c(False, x, n, axis, norm, overwrite_x, workers)

    def rfft(self, x, n=None, axis=-1, norm=None, overwrite_x=False, workers=None):
        values = _floating(x)
        if values.dtype.kind != "f":
            raise TypeError("x must be a real sequence")
        if n is not None:
            values, _ = _fit(values, n, axis)
        return self._module.r2c(values, (axis,), True, _norm(norm, True), None, _workers(workers))

    def irfft(self, x, n=None, axis=-1, norm=None, overwrite_x=False, workers=None):
        values = _floating(x)
        if values.dtype.kind == "f":
            values = values + 0j
        if n is None:
            n = 2 * (values.shape[axis] - 1)
        else:
            values, _ = _fit(values, n // 2 + 1, axis)
        if n < 1:
            raise ValueError(f"invalid number of data points ({n})")
        return self._module.c2r(values, (axis,), n, False, _norm(norm, False), None,
                                _workers(workers))

    def _c2c(self, forward, x, n, axis, norm, overwrite_x, workers):
        values = _floating(x)
        # a copy made here may be overwritten (scipy: ``_datacopied``)
        overwrite_x = overwrite_x or (values is not x and values.base is None
                                      and (isinstance(x, np.ndarray) or not hasattr(x, "__array__")))
        if n is not None:
            values, copied = _fit(values, n, axis)
            overwrite_x = overwrite_x or copied
        if values.shape[axis] < 1:
            raise ValueError(f"invalid number of data points ({values.shape[axis]})")
        out = values if overwrite_x and values.dtype.kind == "c" else None
        return self._module.c2c(values, (axis,), forward, _norm(norm, forward), out,
                                _workers(workers))


def _floating(x) -> np.ndarray:
    """``x`` as an aligned, native-order float or complex array (float16 as float32, other
    kinds as float64), as scipy.fft converts its input."""
    x = np.asarray(x)
    if x.dtype == np.float16:
        return x.astype(np.float32)
    if x.dtype.kind not in "fc":
        return x.astype(np.float64)
    dtype = x.dtype.newbyteorder("=")
    if x.dtype != dtype or not x.flags.aligned:
        return np.array(x, dtype=dtype)
    return x


def _fit(values: np.ndarray, n: int, axis: int) -> tuple[np.ndarray, bool]:
    """``values`` cut or zero-padded to ``n`` along ``axis``; whether that copied them."""
    if n < 1:
        raise ValueError(f"invalid number of data points ({n})")
    have = values.shape[axis]
    index = [slice(None)] * values.ndim
    index[axis] = slice(0, min(n, have))
    if have >= n:
        return values[tuple(index)], False
    shape = list(values.shape)
    shape[axis] = n
    padded = np.zeros(shape, dtype=values.dtype)
    padded[tuple(index)] = values
    return padded, True


_NORMS = {None: 0, "backward": 0, "ortho": 1, "forward": 2}


def _norm(norm, forward: bool) -> int:
    """pocketfft's normalization code (0: none, 1: 1/sqrt(n), 2: 1/n) for ``norm``."""
    try:
        code = _NORMS[norm]
    except KeyError:
        raise ValueError(f"norm must be 'backward', 'ortho' or 'forward', got {norm!r}") from None
    return code if forward else 2 - code


def _workers(workers) -> int:
    if workers is None:
        return 1
    workers = int(workers)
    if workers < 0:
        count = os.cpu_count() or 1
        if workers < -count:
            raise ValueError(f"workers must be at least {-count}, got {workers}")
        workers += 1 + count
    elif workers == 0:
        raise ValueError("workers must not be zero")
    return workers


def _load_pocketfft():
    """scipy's pocketfft extension module, loaded by itself: importing :mod:`scipy.fft` takes
    0.15-0.2 s here (its array-API layer loads numpy.testing, numpy.f2py and scipy.special),
    more than a 3-minute track's whole synthesis; the extension alone takes 1 ms.  It is the
    code scipy.fft runs, with the same arguments (:class:`_Pocketfft`), so results are the
    same bits (tested).

    This is msfreq's one use of another library's private parts, and it is guarded: the
    module is checked against a plain DFT in every form msfreq calls it
    (:func:`_answers_as_a_dft`) before it is used, and where it cannot be found, fails to
    load or answers otherwise (a later scipy's layout), :mod:`scipy.fft` itself is used: the
    start-up is then slower, the results the same.  The tests fail when the fast path is
    lost."""
    name = "scipy.fft._pocketfft.pypocketfft"
    try:
        module = sys.modules.get(name)  # scipy.fft imported already: its own module
        if module is None:
            module = _extension(name)
        backend = _Pocketfft(module)
        if not _answers_as_a_dft(backend):
            raise ValueError("unexpected results")
        return backend
    except Exception:  # noqa: BLE001 - any surprise: the public module
        import scipy.fft

        return scipy.fft


def _answers_as_a_dft(backend) -> bool:
    """Whether ``backend``'s four transforms, in every form msfreq calls them (axis, norm,
    ``n``, ``overwrite_x``, single and double precision), agree with a plain DFT on a small
    signal: a changed signature or meaning fails here, not in a file."""
    signal = np.random.default_rng(0).standard_normal((3, 12))
    spectrum = signal @ np.exp(-2j * np.pi * np.outer(np.arange(12), np.arange(12)) / 12)
    half = spectrum[:, :7]
    for real, complex_, tolerance in ((np.float32, np.complex64, 1e-4),
                                      (np.float64, np.complex128, 1e-10)):
        for norm, scale in (("backward", 1.0), ("forward", 1 / 12)):
            pairs = [
                (backend.fft(signal.astype(complex_), axis=1, norm=norm), spectrum * scale),
                (backend.ifft((spectrum * scale).astype(complex_), axis=1, norm=norm,
                              overwrite_x=True), signal),
                (backend.rfft(signal.astype(real), axis=1, norm=norm), half * scale),
                (backend.rfft(signal.T.astype(real), axis=0, norm=norm), (half * scale).T),
                (backend.irfft((half * scale).astype(complex_), n=12, axis=1, norm=norm), signal),
            ]
            for got, wanted in pairs:
                if np.shape(got) != wanted.shape or not np.allclose(got, wanted, rtol=0,
                                                                     atol=12 * tolerance):
                    return False
    return True


def _extension(name: str):
    """The extension module ``name`` of the scipy installed, loaded from its file without
    importing the packages above it."""
    spec = importlib.util.find_spec("scipy")  # finds the package, runs none of it
    folder = Path(spec.submodule_search_locations[0], *name.split(".")[1:-1])
    stem = name.rsplit(".", 1)[1]
    path = next(folder / f"{stem}{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES
                if (folder / f"{stem}{suffix}").is_file())
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path, loader=loader))
    loader.exec_module(module)
    return module


#: The primes a fast length may have (pocketfft's complex transforms, what
#: :func:`scipy.fft.next_fast_len` finds for complex input).
_FAST_PRIMES = (11, 7, 5, 3)


@lru_cache(maxsize=256)
def next_fast_len(target: int) -> int:
    """The smallest integer ``>= target`` with no prime factor above 11.

    The same as :func:`scipy.fft.next_fast_len` for complex transforms today, but msfreq's
    own: a file's length (``transform_units``) follows from it, so a file must not depend on
    which lengths a later scipy calls fast.

    Examples
    --------
    >>> next_fast_len(13), next_fast_len(121), next_fast_len(143), next_fast_len(1)
    (14, 121, 144, 1)
    """
    target = int(target)
    if target <= 1:
        return 1
    best = 1 << (target - 1).bit_length()  # a power of two always qualifies

    def search(value: int, index: int) -> None:
        nonlocal best
        if index == len(_FAST_PRIMES):  # the smallest power of two that reaches target
            if value < best:
                power = -(-target // value)
                candidate = value << (power - 1).bit_length()
                best = min(best, candidate)
            return
        while value < best:
            search(value, index + 1)
            value *= _FAST_PRIMES[index]

    search(1, 0)
    return best


def _is_fast(length: int) -> bool:
    """Whether ``length`` has no prime factor above 11 (``next_fast_len(length) == length``)."""
    for prime in (2, *_FAST_PRIMES):
        while length % prime == 0:
            length //= prime
    return length == 1

#: Below this length scipy's own FFT is as fast or faster.  Measured here (float32, minima of
#: 15, the split of :func:`split`): at 1,105,920 points (24 hop units at 44.1 kHz) the four-step
#: real FFT takes 0.0054 s against scipy's 0.0072 s and its inverse 0.0052 against 0.0064 s;
#: at 8,847,360, 0.054 against 0.144 s and 0.057 against 0.158 s.  (At 2**21 the inverse is
#: 10 % slower than scipy's; the transform's lengths are multiples of 3 and 5 as well.)
FOUR_STEP_MIN = 1_000_000


#: The column length the split aims at.  The column FFTs run down the strided axis, where
#: short columns stay in cache; the rows are then long (11,520 points for 8,847,360, 92 kB in
#: complex64).  Measured here (minima of 11-15 runs, float32, real FFT / inverse):
#: 8,847,360 points split 768 x 11,520 take 0.054 / 0.057 s against 0.068 / 0.072 s split near
#: the square root (2,880 x 3,072); 2**22 0.028 / 0.034 against 0.033 / 0.038 s; 17,694,720
#: 0.12 / 0.11 against 0.14 / 0.14 s.
_FIRST = 768


def split(length: int) -> tuple[int, int] | None:
    """Return ``(L1, L2)`` with ``L1 * L2 == length``, both even and FFT-friendly, ``L1 <=
    L2`` and ``L1`` as close to :data:`_FIRST` as such a split allows, or None if ``length``
    is short or has no such split."""
    if length < FOUR_STEP_MIN or length % 4:
        return None
    best = None
    for first in range(2, math.isqrt(length) + 1, 2):
        if length % first or (length // first) % 2:
            continue
        if not (_is_fast(first) and _is_fast(length // first)):
            continue
        if best is None or abs(math.log(first / _FIRST)) < abs(math.log(best / _FIRST)):
            best = first
    return None if best is None else (best, length // best)


@lru_cache(maxsize=8)
def _twiddles(length: int, first: int, dtype: str, inverse: bool,
              scale: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Tables ``low[k1, r]`` and ``high[k1, q]`` with ``low * high = scale * exp(-2 pi i k1 n2
    / L)`` for ``n2 = q * step + r`` (conjugated for the inverse); returns ``(low, high,
    step)``."""
    second = length // first
    step = 1
    for candidate in range(math.isqrt(second), 0, -1):
        if second % candidate == 0:
            step = candidate
            break
    rows = np.arange(first // 2 + 1, dtype=np.int64)[:, None]
    low = np.exp(-2j * np.pi * ((rows * np.arange(step)) % length) / length)
    high = np.exp(-2j * np.pi * ((rows * (step * np.arange(second // step))) % length) / length)
    if inverse:
        low, high = low.conj(), high.conj()
    return low.astype(dtype), (high * scale).astype(dtype), step


#: Rows of the forward transform's second half taken at a time, from twiddles through
#: placement while they are in cache (measured on 8,847,360 points split 768 x 11,520, minima
#: of 15: 0.053 s in chunks of 16 rows, 0.057 s in whole-array passes, 0.078 s in chunks of 2).
_CHUNK_ROWS = 16

#: Tile edge of the blocked transposes (a 128 x 128 complex64 tile is 128 kB: it and its
#: source rows stay in cache; measured 0.61x the time of one strided numpy copy).
_TILE = 128


def _transpose_into(target: np.ndarray, source: np.ndarray, conjugate: bool = False) -> None:
    """``target[...] = source.T`` (conjugated if asked), tile by tile."""
    rows, columns = source.shape
    for top in range(0, rows, _TILE):
        for left in range(0, columns, _TILE):
            tile = source[top : top + _TILE, left : left + _TILE].T
            place = target[left : left + _TILE, top : top + _TILE]
            if conjugate:
                np.conjugate(tile, out=place)
            else:
                place[...] = tile


def _turn(values: np.ndarray, length: int, first: int, inverse: bool, scale: float,
          rows: slice = slice(None)) -> None:
    """Multiply ``values`` (rows ``rows`` of ``(first // 2 + 1, length // first)``) by
    ``scale`` times the twiddle factors, in place (their conjugates for the inverse)."""
    low, high, step = _twiddles(length, first, values.dtype.str, inverse, float(scale))
    shaped = values.reshape(values.shape[0], -1, step)
    shaped *= low[rows, None, :]
    shaped *= high[rows, :, None]


def _scaled(values: np.ndarray, scale: float) -> np.ndarray:
    """``values`` times ``scale``, in place."""
    if scale != 1.0:
        values *= values.real.dtype.type(scale)
    return values


def rfft(signal: np.ndarray, *, norm: str = "backward", scale: float = 1.0,
         workers: int | None = None) -> np.ndarray:
    """The real FFT of a 1-D ``signal``, as :func:`scipy.fft.rfft` (same output and norms),
    times ``scale``.

    Parameters
    ----------
    signal : ndarray, shape (length,)
        Real; float32 gives a complex64 result.
    norm : {"backward", "forward"}
    scale : float
        Factor on the result, folded into the twiddle factors where the four-step method
        runs (no pass of its own; a power of two gives the same bits as multiplying after).
    workers : int, optional

    Returns
    -------
    ndarray, shape (length // 2 + 1,)

    Examples
    --------
    >>> import numpy as np, scipy.fft
    >>> x = np.random.default_rng(0).standard_normal(2**22)
    >>> bool(np.allclose(rfft(x), scipy.fft.rfft(x)))
    True
    """
    sp_fft = pocketfft()
    length = signal.shape[0]
    parts = split(length)
    if parts is None:
        return _scaled(sp_fft.rfft(signal, norm=norm, workers=workers), scale)
    first, second = parts
    half = first // 2
    # columns: a[k1, n2] = sum over n1 of x[n1 * L2 + n2] exp(-2 pi i k1 n1 / L1)
    columns = sp_fft.rfft(signal.reshape(first, second), axis=0, norm=norm, workers=workers)
    kept = second // 2 + 1
    out = np.empty((kept, first), dtype=columns.dtype)
    # The other steps go a few rows at a time, each while its rows are in cache: twiddles,
    # row FFTs, then rows[k1, k2] = X[k1 + L1 * k2] placed at out[k2, k1] and, mirrored,
    # conj(rows[k1, L2 - 1 - k2]) = X[(L1 - k1) + L1 * k2] at out[k2, L1 - k1]
    for top in range(0, half + 1, _CHUNK_ROWS):
        bottom = min(top + _CHUNK_ROWS, half + 1)
        block = columns[top:bottom]
        _turn(block, length, first, inverse=False, scale=scale, rows=slice(top, bottom))
        rows = sp_fft.fft(block, axis=1, norm=norm, overwrite_x=True, workers=workers)
        out[:, top:bottom] = rows[:, :kept].T
        low, high = max(top, 1), min(bottom, half)
        if low < high:
            mirrored = rows[low - top : high - top, second - kept :][:, ::-1]
            np.conjugate(mirrored.T, out=out[:, first - high + 1 : first - low + 1][:, ::-1])
    return out.reshape(-1)[: length // 2 + 1]


def irfft(spectrum: np.ndarray, length: int, *, norm: str = "backward", scale: float = 1.0,
          workers: int | None = None) -> np.ndarray:
    """The inverse of :func:`rfft`, as :func:`scipy.fft.irfft` with ``n=length``, times
    ``scale``.

    Parameters
    ----------
    spectrum : ndarray, shape (length // 2 + 1,)
    length : int
    norm : {"backward", "forward"}
    scale : float
        As for :func:`rfft`.
    workers : int, optional

    Returns
    -------
    ndarray, shape (length,)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal(2**22)
    >>> bool(np.allclose(irfft(rfft(x), x.size), x))
    True
    """
    sp_fft = pocketfft()
    parts = split(length)
    if parts is None or spectrum.shape[0] != length // 2 + 1:
        return _scaled(sp_fft.irfft(spectrum, n=length, norm=norm, workers=workers), scale)
    first, second = parts
    half = first // 2
    # rows[k1, k2] = X[k1 + L1 * k2] of the full Hermitian spectrum, for k1 <= L1 / 2: the
    # first half of the k2 read the spectrum as it is, the second half its mirror (from
    # L / 2 down); DC and Nyquist count as real, as scipy's inverse takes them
    middle = length // 2
    rows = np.empty((half + 1, second), dtype=spectrum.dtype)
    _transpose_into(rows[:, : second // 2], spectrum[:middle].reshape(second // 2, first)[:, : half + 1])
    mirror = spectrum[middle:0:-1].reshape(second // 2, first)[:, : half + 1]
    _transpose_into(rows[:, second // 2 :], mirror, conjugate=True)
    rows[0, 0] = rows[0, 0].real
    rows[0, second // 2] = rows[0, second // 2].real
    rows = sp_fft.ifft(rows, axis=1, norm=norm, overwrite_x=True, workers=workers)
    _turn(rows, length, first, inverse=True, scale=scale)
    signal = sp_fft.irfft(rows, n=first, axis=0, norm=norm, workers=workers)
    return signal.reshape(-1)
