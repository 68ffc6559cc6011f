"""The :class:`Representation` (coefficients plus everything needed to decode them), and
the paired functions :func:`encode` and :func:`decode` on arrays in memory."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from msfreq.errors import ParameterError
from msfreq.params import (
    DEFAULT_BINS_PER_OCTAVE,
    DEFAULT_DTYPE,
    DEFAULT_FMIN,
    DEFAULT_TUNING,
    TransformParams,
    resolve_dtype,
)
from msfreq.scales import Band, Grid, make_grid
from msfreq.transform import (
    analyze_signal,
    check_samples,
    synthesize_signal,
    transform_units,
)

__all__ = ["Representation", "encode", "decode", "decibels", "Progress"]

#: ``progress(done, total)``: called as work advances, in hop units of the lowest octave.
Progress = Callable[[int, int], None]

_POOLS = ("mean", "max", "rms")


class Representation:
    """Multi-scale coefficients of one piece of audio.

    Each band (``residual_low``, ``octave_00`` ... ``octave_NN``, ``residual_high``) holds an
    array of shape ``(channels, n_bins, frames)``: complex for the octaves, real for the two
    residual bands.  Frame ``n`` of a band with hop ``h`` sits at sample
    ``offset + n * h`` (``offset`` is 0 unless partial); octave ``j + 1`` has exactly twice the frames of
    octave ``j``.

    A representation may be *partial* (a time range, some bands, some channels), as returned
    by :func:`msfreq.load` with ``start``/``stop``/``octaves``/``channels``; only a complete
    one can be decoded.

    Parameters
    ----------
    coefficients : mapping of str to ndarray
        Band name to array, in any order; only bands of ``grid`` are allowed.
    grid : Grid
    n_samples : int
        Samples (per channel) of the encoded audio.
    offset : int
        Sample at which frame 0 of every band held sits (0 unless partial in time); a
        multiple of every held band's hop.
    length : int, optional
        Samples of the whole (padded) transform, a multiple of ``grid.hop_unit``; default:
        what ``n_samples`` needs.
    channels : sequence of int, optional
        Which channels of the source these are; default all.
    n_channels : int, optional
        Channels of the source; default the arrays' first dimension.
    source : mapping, optional
        Free-form facts about the source (file name, format, subtype, checksum).

    Examples
    --------
    >>> import numpy as np, msfreq
    >>> rep = msfreq.encode(np.zeros((8000, 2)), 8000, bins_per_octave=12)
    >>> rep.names[:3], rep["octave_02"].shape
    (('residual_low', 'octave_00', 'octave_01'), (2, 12, 16))
    >>> rep.complete, rep.start_seconds, rep.stop_seconds
    (True, 0.0, 1.024)
    """

    def __init__(
        self,
        coefficients: Mapping[str, np.ndarray],
        *,
        grid: Grid,
        n_samples: int,
        offset: int = 0,
        length: int | None = None,
        channels: Sequence[int] | None = None,
        n_channels: int | None = None,
        source: Mapping[str, object] | None = None,
    ) -> None:
        by_name = {band.name: band for band in grid.bands}
        unknown = sorted(set(coefficients) - set(by_name))
        if unknown:
            raise ParameterError(f"unknown band names {unknown}; the grid has {list(by_name)}")
        if not coefficients:
            raise ParameterError("a representation needs at least one band")
        self._grid = grid
        self._bands = tuple(band for band in grid.bands if band.name in coefficients)
        self._coefficients = {band.name: coefficients[band.name] for band in self._bands}
        self._n_samples = int(n_samples)
        self._length = (
            transform_units(n_samples, grid) * grid.hop_unit if length is None else int(length)
        )
        self._offset = int(offset)
        first = next(iter(self._coefficients.values()))
        held = first.shape[0]
        self._channels = tuple(range(held)) if channels is None else tuple(int(c) for c in channels)
        self._n_channels = held if n_channels is None else int(n_channels)
        self._span = first.shape[2] * self._bands[0].hop if first.ndim == 3 else 0
        for band in self._bands:
            array = self._coefficients[band.name]
            expected = (len(self._channels), band.n_bins, self._span // band.hop)
            if array.ndim != 3 or array.shape != expected:
                raise ParameterError(
                    f"band {band.name} must have shape {expected}, got {array.shape}"
                )
        self.source = dict(source or {})

    # --- what it holds ---------------------------------------------------------------
    @property
    def grid(self) -> Grid:
        """The frequency grid (sample rate, parameters, bands and hops)."""
        return self._grid

    @property
    def params(self) -> TransformParams:
        """The transform parameters."""
        return self._grid.params

    @property
    def sample_rate(self) -> int:
        """Sample rate of the audio in Hz."""
        return self._grid.sample_rate

    @property
    def n_samples(self) -> int:
        """Samples per channel of the encoded audio."""
        return self._n_samples

    @property
    def duration(self) -> float:
        """Duration of the encoded audio in seconds."""
        return self._n_samples / self.sample_rate

    @property
    def n_channels(self) -> int:
        """Channels of the source audio."""
        return self._n_channels

    @property
    def channels(self) -> tuple[int, ...]:
        """Which source channels the arrays hold."""
        return self._channels

    @property
    def dtype(self) -> np.dtype:
        """Complex dtype of the octave coefficients."""
        for band in self._bands:
            array = self._coefficients[band.name]
            if np.iscomplexobj(array):
                return array.dtype
        real = next(iter(self._coefficients.values())).dtype
        return np.result_type(real, np.complex64)

    @property
    def bands(self) -> tuple[Band, ...]:
        """The bands held, ordered by frequency."""
        return self._bands

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the bands held, ordered by frequency."""
        return tuple(band.name for band in self._bands)

    @property
    def octaves(self) -> list[np.ndarray]:
        """Arrays of the octave bands held, lowest first."""
        return [self._coefficients[b.name] for b in self._bands if not b.is_residual]

    @property
    def offset(self) -> int:
        """Sample index of frame 0 of every band held (later than 0 when partial)."""
        return self._offset

    @property
    def start_seconds(self) -> float:
        """Time (seconds) of the first sample the frames held cover."""
        return self._offset / self.sample_rate

    @property
    def stop_seconds(self) -> float:
        """Time (seconds) just after the last sample the frames held cover."""
        return (self._offset + self._span) / self.sample_rate

    @property
    def span(self) -> int:
        """Samples covered by the frames held."""
        return self._span

    @property
    def length(self) -> int:
        """Samples of the whole transform: ``n_samples`` padded to a whole number of
        ``grid.hop_unit``; the transform is periodic with this period."""
        return self._length

    @property
    def complete(self) -> bool:
        """Whether every band, channel and frame is held (so it can be decoded)."""
        return (
            len(self._bands) == len(self._grid.bands)
            and self._offset == 0
            and self._span == self._length
            and self._channels == tuple(range(self._n_channels))
        )

    @property
    def is_magnitude(self) -> bool:
        """Whether the octave bands hold magnitudes (real) rather than complex coefficients."""
        return any(not band.is_residual for band in self._bands) and not any(
            np.iscomplexobj(self._coefficients[band.name]) for band in self._bands
            if not band.is_residual
        )

    def abs(self) -> Representation:
        """The same representation holding magnitudes ``|c|`` (real arrays, residuals too).

        :func:`msfreq.save` stores it as a magnitude file; :func:`msfreq.decode` refuses it;
        :func:`msfreq.reconstruct_phase` turns it back into coefficients.

        Examples
        --------
        >>> import numpy as np, msfreq
        >>> mags = msfreq.encode(np.ones(8000), 8000).abs()
        >>> mags.is_magnitude, mags["octave_03"].dtype
        (True, dtype('float32'))
        """
        return Representation(
            {name: np.abs(self._coefficients[name]) for name in self.names},
            grid=self._grid, n_samples=self._n_samples, offset=self._offset,
            length=self._length, channels=self._channels, n_channels=self._n_channels,
            source=self.source,
        )

    def octave(self, number: int) -> np.ndarray:
        """Return the coefficients of octave ``number`` (0 = lowest), shape
        (channels, bins_per_octave, frames).

        Examples
        --------
        >>> import numpy as np, msfreq
        >>> msfreq.encode(np.zeros(8000), 8000).octave(6).shape
        (1, 48, 64)
        """
        return self[f"octave_{int(number):02d}"]

    def band(self, name: str) -> Band:
        """Return the :class:`Band` called ``name``."""
        for band in self._bands:
            if band.name == name:
                return band
        raise KeyError(f"no band {name!r}; this representation holds {list(self.names)}")

    def __getitem__(self, name: str) -> np.ndarray:
        """Return the coefficient array of band ``name``, shape (channels, n_bins, frames)."""
        self.band(name)
        return self._coefficients[name]

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self._bands)

    def __repr__(self) -> str:
        return (
            f"Representation({self.duration:.3f} s, {self.sample_rate} Hz, "
            f"{len(self._channels)} channel(s), {self._grid.n_octaves} octaves x "
            f"{self.params.bins_per_octave} bins, {self.dtype}, "
            f"samples {self._offset}:{self._offset + self._span} of {self._length})"
        )

    def frequencies(self, name: str) -> np.ndarray:
        """Bin centre frequencies (Hz) of band ``name``, shape (n_bins,).

        Examples
        --------
        >>> import numpy as np, msfreq
        >>> rep = msfreq.encode(np.zeros(8000), 8000, bins_per_octave=12)
        >>> np.round(rep.frequencies("octave_04")[[0, -1]], 1)  # C4 ... B4
        array([261.6, 493.9])
        """
        return self._grid.frequencies(self.band(name))

    def times(self, name: str) -> np.ndarray:
        """Time (seconds) of every frame of band ``name``, shape (frames,).

        Examples
        --------
        >>> import numpy as np, msfreq
        >>> msfreq.encode(np.zeros(8000), 8000).times("octave_06")[:3]
        array([0.   , 0.016, 0.032])
        """
        band = self.band(name)
        frames = self._coefficients[name].shape[2]
        return (self._offset + np.arange(frames) * band.hop) / self.sample_rate

    # --- views for learning ------------------------------------------------------------
    def magnitude(self, name: str, *, db: bool = False, floor_db: float = -160.0) -> np.ndarray:
        """Return ``|c|`` of band ``name`` (in dB re amplitude 1 when ``db``).

        Parameters
        ----------
        name : str
        db : bool
            Return ``20 * log10(|c|)``, clipped below at ``floor_db``.
        floor_db : float

        Examples
        --------
        >>> import numpy as np, msfreq
        >>> t = np.arange(16000) / 8000
        >>> rep = msfreq.encode(0.5 * np.cos(2 * np.pi * 440 * t), 8000)
        >>> round(float(rep.magnitude("octave_04").max()), 1)  # amplitude 0.5 at A4
        0.5
        """
        values = np.abs(self[name])
        if db:
            return decibels(values, floor_db)
        return values

    def stack(
        self, *, hop: int | None = None, pool: str = "mean", db: bool = False,
        floor_db: float = -160.0,
    ) -> np.ndarray:
        """Put the magnitudes of all octaves held on one log-frequency axis and time grid.

        Row ``r`` of the result is bin ``octave_bins[0] + r`` of the grid (lowest frequency
        first), so a pitch shift by ``m`` bins moves the picture by ``m`` rows.  Octaves whose
        hop is finer than ``hop`` are pooled over groups of frames; coarser ones are repeated.
        The residual bands are not on the log-frequency grid and are left out.

        Parameters
        ----------
        hop : int, optional
            Common hop in samples: the hop of one of the octaves; default the finest held.
        pool : {"mean", "max", "rms"}
            How finer octaves' magnitudes are combined.
        db : bool
            Return dB (``20 log10``) instead of linear magnitudes.
        floor_db : float

        Returns
        -------
        ndarray, shape (channels, n_octaves_held * bins_per_octave, frames)

        Examples
        --------
        >>> import numpy as np, msfreq
        >>> rep = msfreq.encode(np.zeros(8000), 8000, bins_per_octave=12)
        >>> rep.stack().shape, rep.stack(hop=rep.band("octave_03").hop).shape
        ((1, 84, 256), (1, 84, 32))
        """
        octaves, hop, frames = stack_geometry(self._grid, self._bands, self._span, hop, pool)
        rows = []
        for band in octaves:
            magnitude = np.abs(self._coefficients[band.name])
            if band.hop > hop:
                rows.append(np.repeat(magnitude, band.hop // hop, axis=2))
            elif band.hop < hop:
                group = hop // band.hop
                shaped = magnitude.reshape(magnitude.shape[0], magnitude.shape[1], frames, group)
                if pool == "mean":
                    rows.append(shaped.mean(axis=3))
                elif pool == "max":
                    rows.append(shaped.max(axis=3))
                else:
                    rows.append(np.sqrt((shaped**2).mean(axis=3)))
            else:
                rows.append(magnitude)
        image = np.concatenate(rows, axis=1)
        return decibels(image, floor_db) if db else image

    def stack_frequencies(self) -> np.ndarray:
        """Centre frequency (Hz) of every row of :meth:`stack`, shape (rows,)."""
        return np.concatenate(
            [self._grid.frequencies(band) for band in self._bands if not band.is_residual]
        )


def stack_geometry(
    grid: Grid, bands: Sequence[Band], span: int, hop: int | None, pool: str
) -> tuple[list[Band], int, int]:
    """Check the arguments of a ``stack()`` and return ``(octaves, hop, frames)``: the octave
    bands among ``bands``, the common hop (default the finest held) and the image's frames
    for ``span`` samples.  Shared by :meth:`Representation.stack` and ``msfreq.torch``."""
    octaves = [band for band in bands if not band.is_residual]
    if not octaves:
        raise ParameterError("stack needs at least one octave band")
    if pool not in _POOLS:
        raise ParameterError(f"pool must be one of {_POOLS}, got {pool!r}")
    hop = min(band.hop for band in octaves) if hop is None else hop
    if hop not in [band.hop for band in grid.octaves]:
        raise ParameterError(
            f"hop must be the hop of an octave, one of {[b.hop for b in grid.octaves]}, "
            f"got {hop!r}"
        )
    if span % hop:
        raise ParameterError(f"hop {hop} does not divide the {span} samples held")
    return octaves, hop, span // hop


def decibels(values, floor_db: float, *, power: bool = False):
    """Return ``20 log10(values)`` (``10 log10`` for ``power``), clipped below at ``floor_db``;
    the one dB conversion of the package (float32 stays float32).

    Examples
    --------
    >>> decibels(np.array([1.0, 0.1, 0.0]), -60.0)
    array([  0., -20., -60.])
    >>> float(decibels(0.01, -200.0, power=True))
    -20.0
    """
    factor = 10.0 if power else 20.0
    return factor * np.log10(np.maximum(values, 10.0 ** (floor_db / factor)))


def grid_for(sample_rate: object, params: TransformParams) -> Grid:
    """:func:`~msfreq.scales.make_grid`, taking a float rate that is a whole number too."""
    if isinstance(sample_rate, float) and sample_rate.is_integer():
        sample_rate = int(sample_rate)
    return make_grid(sample_rate, params)  # type: ignore[arg-type]


def encode(
    samples: np.ndarray,
    sample_rate: int,
    *,
    bins_per_octave: int = DEFAULT_BINS_PER_OCTAVE,
    fmin: float = DEFAULT_FMIN,
    tuning: float = DEFAULT_TUNING,
    n_octaves: int | None = None,
    oversampling: int = 1,
    span: int = 1,
    dtype: str | np.dtype = DEFAULT_DTYPE,
    workers: int | None = None,
    block_seconds: float | None = None,
    progress: Progress | None = None,
) -> Representation:
    """Return the multi-scale representation of ``samples``.

    Parameters
    ----------
    samples : ndarray, shape (frames,) or (frames, channels)
        Real audio samples (any scale; floats from soundfile are in [-1, 1]).
    sample_rate : int
        Samples per second.
    bins_per_octave, fmin, tuning, n_octaves, oversampling, span
        See :class:`~msfreq.params.TransformParams`.
    dtype : {"complex64", "complex128"}
        Precision of the computation and of the coefficients.
    workers : int, optional
        Threads for the FFTs.
    block_seconds : float, optional
        Audio longer than about this is transformed block by block (bounded memory);
        default :data:`msfreq.params.BLOCK_SECONDS`.
    progress : callable, optional
        ``progress(done, total)`` in hop units.

    Returns
    -------
    Representation

    Examples
    --------
    >>> import numpy as np, msfreq
    >>> x = np.random.default_rng(0).standard_normal((16000, 2))
    >>> rep = msfreq.encode(x, 8000, bins_per_octave=24)
    >>> rep.grid.n_octaves, rep["octave_06"].shape
    (7, (2, 24, 256))
    """
    params = TransformParams(
        bins_per_octave=bins_per_octave, fmin=fmin, tuning=tuning, n_octaves=n_octaves,
        oversampling=oversampling, span=span,
    )
    complex_dtype = resolve_dtype(dtype)
    grid = grid_for(sample_rate, params)
    array = check_samples(samples)
    n_samples, channels = array.shape
    units = transform_units(n_samples, grid)
    arrays = None
    for first, stop, part, block in analyze_signal(
        lambda a, b: array[a:b], n_samples, channels, grid, complex_dtype,
        block_seconds=block_seconds, workers=workers,
    ):
        if first == 0 and stop == units and block[0].shape[0] == channels:
            arrays = list(block)
        else:
            if arrays is None:
                arrays = [
                    np.empty(
                        (channels, band.n_bins, units * (grid.hop_unit // band.hop)),
                        dtype=band.coefficient_dtype(complex_dtype),
                    )
                    for band in grid.bands
                ]
            for band, target, values in zip(grid.bands, arrays, block, strict=True):
                per_unit = grid.hop_unit // band.hop
                target[part, :, first * per_unit : stop * per_unit] = values
        if progress is not None and (part.stop or channels) == channels:
            progress(stop, units)
    return Representation(
        {band.name: values for band, values in zip(grid.bands, arrays, strict=True)},
        grid=grid,
        n_samples=n_samples,
        length=units * grid.hop_unit,
    )


def decode(
    representation: Representation,
    *,
    workers: int | None = None,
    block_seconds: float | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Return the audio samples of a complete ``representation`` (the inverse of encode).

    Parameters
    ----------
    representation : Representation
    workers : int, optional
    block_seconds : float, optional
        As for :func:`encode`.
    progress : callable, optional

    Returns
    -------
    ndarray, shape (n_samples, channels)
        float32 for complex64 coefficients, float64 for complex128.

    Examples
    --------
    >>> import numpy as np, msfreq
    >>> x = np.random.default_rng(0).standard_normal((16000, 2))
    >>> y = msfreq.decode(msfreq.encode(x, 8000, dtype="complex128"))
    >>> bool(np.max(np.abs(y - x)) < 1e-12)
    True
    """
    if not isinstance(representation, Representation):
        raise ParameterError(
            f"decode needs a Representation, got {type(representation).__name__}"
        )
    if not representation.complete:
        raise ParameterError(
            "only a complete representation can be decoded (this one is partial: "
            f"{representation!r})"
        )
    if representation.is_magnitude:
        raise ParameterError(
            "this representation holds magnitudes only (no phase): rebuild the phase with "
            "msfreq.reconstruct_phase(...) first"
        )
    grid = representation.grid
    units = representation.length // grid.hop_unit
    arrays = [representation[name] for name in representation.names]
    n_samples = representation.n_samples
    channels = len(representation.channels)
    out = None
    for start, block in synthesize_signal(
        lambda index, a, b, channel: arrays[index][channel : channel + 1, :, a:b], n_samples,
        channels, grid, representation.dtype, block_seconds=block_seconds, workers=workers,
    ):
        if channels == 1 and start == 0 and block.shape[1] == n_samples:
            out = block.T  # one mono block: (1, n) read as (n, 1), no copy
        else:
            if out is None:
                out = np.empty((n_samples, channels), dtype=block.dtype)
            out[start : start + block.shape[1]] = block.T
        if progress is not None:
            done = -(-(start + block.shape[1]) // grid.hop_unit)
            progress(units if start + block.shape[1] >= n_samples else done, units)
    return out
