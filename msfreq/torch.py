"""The transform in PyTorch: encode and decode batches on any device, differentiably.

``pip install msfreq[torch]``.  Nothing else in msfreq imports torch.

:class:`Transform` is a :class:`torch.nn.Module` built from the same grid and parameters as
:func:`msfreq.encode`; its coefficients equal the numpy engine's to the precision of the dtype
(same bands, names, shapes, padding and phase convention), and :meth:`Transform.decode`
inverts them exactly.  Gradients flow through both directions.

How it is computed
------------------
The numpy engine's plan (:class:`msfreq.frames.Plan`) is turned, once per signal length, into
flat index and weight tables, so that each direction is a handful of large kernels whatever
the number of bins:

* analysis: one real FFT of the batch; the spectrum times each of the (two) windows over every
  frequency, with the band's scale and the inverse FFT's ``1 / frames`` folded in; per band,
  one gather that puts these weighted values where they fall in each row's periodic spectrum,
  and one batched unscaled inverse FFT (an inverse real FFT for the two real residual bands,
  whose spectra are Hermitian by construction);
* synthesis: one FFT per band (a real FFT for a real band where that is all its windows
  read); the band spectra side by side; every FFT frequency of the signal is the weighted sum
  of the (at most two) coefficient spectrum values whose windows cover it, one gather and one
  sum; one inverse real FFT.

Both are gathers (no scatter, no atomics in the forward direction), so results are
deterministic; the backward passes are the gathers' adjoints, computed by autograd.
Measured on an H100 (``benchmarks/GPU.md``), 64 clips of 10 s: analysis 1.8x and synthesis
1.9x the time of ``torch.stft(n_fft=2048, hop_length=512)`` of the same batch.

The tables are module buffers (not saved in the state dict): they move with ``.to(device)``.
A few lengths are cached (:data:`PLAN_CACHE_SIZE`); training on fixed-length crops builds one.
They take about 1 MB per second of audio at 44.1 kHz and are built on the CPU (measured: 10 MB
in 0.20 s for 10-s clips, 60 MB in 0.84 s for 60 s).
Long recordings are better converted with ``msfreq encode`` (block-wise, bounded memory).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping

import numpy as np
import torch

from msfreq.errors import ParameterError
from msfreq.frames import BandLayout, get_plan
from msfreq.params import (
    DEFAULT_BINS_PER_OCTAVE,
    DEFAULT_FMIN,
    DEFAULT_TUNING,
    TransformParams,
)
from msfreq.representation import Representation, grid_for, stack_geometry
from msfreq.scales import Band, Grid
from msfreq.transform import transform_units

__all__ = ["PLAN_CACHE_SIZE", "Transform", "Coefficients", "analyze", "synthesize"]

#: Signal lengths whose tables a :class:`Transform` keeps (least recently used dropped).
PLAN_CACHE_SIZE = 4

_COMPLEX = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def _index_dtype(size: int) -> torch.dtype:
    """int32 indices (half the table memory) where they can address everything."""
    return torch.int32 if size < 2**31 - 1 else torch.int64


class _Windows:
    """Every window value of a plan, one entry per (band, row, FFT frequency ``m`` under the
    row's window), with its *slot*: its rank among the windows over the same ``m`` (0 or 1
    for this frame's pairwise overlapping windows; ``slots`` counts them)."""

    def __init__(self, layouts: tuple[BandLayout, ...], n_freq: int) -> None:
        band, row, frequency, value = [], [], [], []
        for number, layout in enumerate(layouts):
            n_rows, width = layout.weights.shape
            inside = np.arange(width) < layout.widths[:, None]
            rows = np.broadcast_to(np.arange(n_rows)[:, None], inside.shape)[inside]
            band.append(np.full(rows.size, number))
            row.append(rows)
            frequency.append((layout.starts[:, None] + np.arange(width))[inside])
            value.append(layout.weights.astype(float)[inside])
        self.band, self.row = np.concatenate(band), np.concatenate(row)
        self.frequency, self.value = np.concatenate(frequency), np.concatenate(value)
        order = np.argsort(self.frequency, kind="stable")
        first = np.searchsorted(self.frequency[order], self.frequency[order], side="left")
        self.slot = np.empty_like(order)
        self.slot[order] = np.arange(order.size) - first
        self.slots = int(self.slot.max(initial=0)) + 1
        self.n_freq = n_freq

    def table(self, weights: np.ndarray) -> tuple[np.ndarray, int]:
        """``weights`` (one per entry) as a ``(slots, n_freq)`` table, 0 where no window is,
        and the flat index of one such zero (a slot added if every place is taken)."""
        table = np.zeros((self.slots, self.n_freq))
        taken = np.zeros((self.slots, self.n_freq), dtype=bool)
        table[self.slot, self.frequency] = weights
        taken[self.slot, self.frequency] = True
        free = np.flatnonzero(~taken)
        if free.size:
            return table, int(free[0])
        return np.concatenate([table, np.zeros((1, self.n_freq))]), table.size


def _analysis_index(windows: _Windows, number: int, layout: BandLayout, zero: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Where every position of band ``number``'s periodic row spectra (flattened
    ``(n_bins, frames)``; for a real band only the ``frames // 2 + 1`` positions an inverse
    real FFT reads) takes its value from the weighted spectra, and whether conjugated.
    Positions no window reaches read the zero at ``zero``."""
    frames = layout.frames
    mine = windows.band == number
    rows, frequency = windows.row[mine], windows.frequency[mine]
    source = windows.slot[mine] * windows.n_freq + frequency
    index = np.full((layout.band.n_bins, frames), zero, dtype=np.int64)
    conjugate = np.zeros((layout.band.n_bins, frames), dtype=bool)
    if layout.real:
        # As the numpy engine places them: the mirror (conjugated values at -m) first, then
        # the direct values, which win at the self-conjugate points.
        mirror = (-frequency) % frames
        index[rows, mirror] = source
        conjugate[rows, mirror] = True
    direct = frequency % frames
    index[rows, direct] = source
    conjugate[rows, direct] = False
    if layout.real:
        index, conjugate = index[:, : frames // 2 + 1], conjugate[:, : frames // 2 + 1]
    return index.ravel(), conjugate.ravel()


class _Tables(torch.nn.Module):
    """The index and weight tables of one signal length, as non-persistent buffers.

    Analysis multiplies the spectrum by ``analysis`` (``(slots, n_freq)``: each window value
    with its band's scale and the inverse FFT's ``1 / frames``), so that each position of a
    row spectrum is one read of these weighted spectra (``index_<band>``).  Synthesis reads
    the band spectra side by side (``halves``: the full FFT, or for a real band whose
    windows read only the lower half, its real FFT) at ``positions`` (``(slots, n_freq)``), multiplies by
    ``synthesis`` and sums over the slots.
    """

    def __init__(self, grid: Grid, length: int, complex_dtype: torch.dtype) -> None:
        super().__init__()
        numpy_dtype = np.complex64 if complex_dtype == torch.complex64 else np.complex128
        plan = get_plan(grid, length, numpy_dtype)
        real = _COMPLEX[complex_dtype]
        n_freq = length // 2 + 1
        windows = _Windows(plan.layouts, n_freq)
        scale = np.array([layout.analysis_scale / layout.frames for layout in plan.layouts])
        analysis, zero = windows.table(windows.value * scale[windows.band])
        self.register_buffer("analysis", torch.from_numpy(analysis).to(real), persistent=False)
        self.length = length
        self.precision = real
        self.shapes: list[tuple[int, int]] = []
        self.real: list[bool] = []
        for number, layout in enumerate(plan.layouts):
            index, conjugate = _analysis_index(windows, number, layout, zero)
            self.register_buffer(f"index_{number}", torch.from_numpy(index).to(_index_dtype(analysis.size)),
                                 persistent=False)
            flip = torch.from_numpy(conjugate)
            self.register_buffer(f"conjugate_{number}", flip if bool(flip.any()) else None,
                                 persistent=False)
            self.shapes.append((layout.band.n_bins, layout.frames))
            self.real.append(layout.real)
        # Synthesis reads each band's FFT.  A real band's spectrum is Hermitian: where all
        # the positions its windows read lie in the lower half, its real FFT holds them, at
        # half the work and memory of the full FFT (the high residual, which has the most
        # frames of any row, in most grids).
        frames = np.array([frames for _, frames in self.shapes])
        position = windows.frequency % frames[windows.band]
        self.halves: list[str] = []
        for number, layout in enumerate(plan.layouts):
            mine = windows.band == number
            lower = layout.real and bool(np.all(2 * position[mine] <= layout.frames))
            self.halves.append("lower" if lower else "full")
        widths = np.array([frames // 2 + 1 if half == "lower" else frames
                           for frames, half in zip(frames, self.halves, strict=True)])
        rows = np.array([rows for rows, _ in self.shapes])
        offsets = np.cumsum(np.concatenate([[0], rows * widths]))
        where = offsets[windows.band] + windows.row * widths[windows.band] + position
        # Places with no window read the zero laid after the last band.
        positions = np.full((windows.slots, n_freq), offsets[-1], dtype=np.int64)
        positions[windows.slot, windows.frequency] = where
        scale = np.array([layout.synthesis_scale / length for layout in plan.layouts])
        synthesis, _ = windows.table(windows.value * scale[windows.band])
        self.register_buffer("positions", torch.from_numpy(positions.ravel()).to(_index_dtype(offsets[-1] + 1)),
                             persistent=False)
        self.register_buffer("synthesis", torch.from_numpy(synthesis[: windows.slots].ravel()).to(real),
                             persistent=False)
        # The same weights per position of the band spectra (each position lies under one
        # window at most), for the synthesis that weights while it lays the spectra out.
        placed = np.zeros(int(offsets[-1]))
        placed[where] = windows.value * scale[windows.band]
        self.register_buffer("placed", torch.from_numpy(placed).to(real), persistent=False)
        self.offsets = [int(offset) for offset in offsets]
        self.slots = windows.slots

    def _apply(self, fn, recurse=True):
        # .to(device) moves the tables; a cast of the model (.double(), .half()) must not
        # change the transform's precision: the weights go back to it.
        super()._apply(fn, recurse)
        self.analysis = self.analysis.to(self.precision)
        self.synthesis = self.synthesis.to(self.precision)
        self.placed = self.placed.to(self.precision)
        return self

    def band(self, number: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return getattr(self, f"index_{number}"), getattr(self, f"conjugate_{number}")


def analyze(signal: torch.Tensor, tables: _Tables) -> list[torch.Tensor]:
    """The coefficients of every band of real ``signal`` (``(*batch, samples)``, in the
    tables' real precision): the tensor work of :meth:`Transform.encode`, nothing else (so
    that ``torch.compile`` or a CUDA graph can take it whole)."""
    spectrum = torch.fft.rfft(signal, n=tables.length)
    # The weights go on the spectrum (each value times the windows over it), so that every
    # position of a row's spectrum is then a single read.
    weighted = (spectrum.unsqueeze(-2) * tables.analysis).flatten(-2)
    bands = []
    for number, (rows, frames) in enumerate(tables.shapes):
        index, conjugate = tables.band(number)
        values = weighted[..., index]
        if conjugate is not None:
            values = torch.where(conjugate, values.conj(), values)
        # norm="forward": the inverse transforms are unscaled (1 / frames is in the weights)
        if tables.real[number]:
            values = values.reshape(*values.shape[:-1], rows, frames // 2 + 1)
            bands.append(torch.fft.irfft(values, n=frames, norm="forward"))
        else:
            bands.append(torch.fft.ifft(values.reshape(*values.shape[:-1], rows, frames),
                                        norm="forward"))
    return bands


def synthesize(bands: list[torch.Tensor], tables: _Tables) -> torch.Tensor:
    """The signal (``(*batch, tables.length)``) of every band's coefficients, in the grid's
    order and the tables' precision: the tensor work of :meth:`Transform.decode`."""
    spectra = []
    for values, half in zip(bands, tables.halves, strict=True):
        transform = torch.fft.rfft if half == "lower" else torch.fft.fft
        spectra.append(transform(values, dim=-1).flatten(-2))
    if torch.is_grad_enabled() and any(values.requires_grad for values in bands):
        zero = spectra[0].new_zeros(spectra[0].shape[:-1] + (1,))
        flat = torch.cat(spectra + [zero], dim=-1)
        spectrum = flat[..., tables.positions] * tables.synthesis
    else:
        # Without autograd: the weights are applied while the band spectra are laid side by
        # side (one pass over them instead of a copy and a multiplication; measured on an
        # H100, 64 clips: -0.17 ms of 1.7).  Autograd does not follow out= arguments.
        flat = spectra[0].new_empty(spectra[0].shape[:-1] + (tables.offsets[-1] + 1,))
        flat[..., -1] = 0
        for number, spectrum in enumerate(spectra):
            first, stop = tables.offsets[number], tables.offsets[number + 1]
            torch.mul(spectrum, tables.placed[first:stop], out=flat[..., first:stop])
        spectrum = flat[..., tables.positions]
    spectrum = spectrum.unflatten(-1, (tables.slots, -1)).sum(dim=-2)
    return torch.fft.irfft(spectrum, n=tables.length, norm="forward")  # 1 / length in the weights


class Coefficients(Mapping):
    """The bands of a batch, as :meth:`Transform.encode` returns them.

    A read-only mapping from band name (``residual_low``, ``octave_00`` ...,
    ``residual_high``) to a tensor of shape ``(*batch, n_bins, frames)``: complex for the
    octaves, real for the residual bands, the same names and trailing shapes as a
    :class:`~msfreq.Representation`.

    Parameters
    ----------
    bands : mapping of str to Tensor
        One tensor per band of ``grid``.
    grid : Grid
    n_samples : int
        Samples per channel of the encoded audio (the bands cover a padded length).
    """

    def __init__(self, bands: Mapping[str, torch.Tensor], grid: Grid, n_samples: int) -> None:
        names = [band.name for band in grid.bands]
        if sorted(bands) != sorted(names):
            raise ParameterError(f"expected the bands {names}, got {sorted(bands)}")
        self._bands = {name: bands[name] for name in names}
        self._grid = grid
        self._n_samples = int(n_samples)
        self._length = transform_units(self._n_samples, grid) * grid.hop_unit
        for band in grid.bands:
            frames = band.frames(self._length)
            if tuple(self._bands[band.name].shape[-2:]) != (band.n_bins, frames):
                raise ParameterError(
                    f"band {band.name} must end in shape {(band.n_bins, frames)} for "
                    f"{self._n_samples} samples, got {tuple(self._bands[band.name].shape)}"
                )

    @property
    def grid(self) -> Grid:
        """The frequency grid."""
        return self._grid

    @property
    def n_samples(self) -> int:
        """Samples per channel of the encoded audio."""
        return self._n_samples

    @property
    def length(self) -> int:
        """Samples the transform covers (``n_samples`` padded to whole hop units)."""
        return self._length

    @property
    def names(self) -> tuple[str, ...]:
        """Band names, lowest frequency first."""
        return tuple(self._bands)

    def band(self, name: str) -> Band:
        """The :class:`~msfreq.scales.Band` called ``name``."""
        for band in self._grid.bands:
            if band.name == name:
                return band
        raise KeyError(name)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._bands[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._bands)

    def __len__(self) -> int:
        return len(self._bands)

    def __repr__(self) -> str:
        batch = tuple(next(iter(self._bands.values())).shape[:-2])
        return (f"Coefficients({len(self)} bands, batch {batch}, {self._n_samples} samples at "
                f"{self._grid.sample_rate} Hz)")

    def stack(self, *, hop: int | None = None, pool: str = "mean", db: bool = False,
              floor_db: float = -160.0) -> torch.Tensor:
        """Magnitudes of all octaves on one log-frequency axis and time grid, as
        :meth:`msfreq.Representation.stack` (same rows, frames, pooling and dB floor).

        Returns
        -------
        Tensor, shape (*batch, n_octaves * bins_per_octave, frames)
        """
        octaves, hop, frames = stack_geometry(self._grid, self._grid.bands, self._length, hop, pool)
        rows = []
        for band in octaves:
            magnitude = self._bands[band.name].abs()
            if band.hop > hop:
                rows.append(magnitude.repeat_interleave(band.hop // hop, dim=-1))
            elif band.hop < hop:
                shaped = magnitude.reshape(*magnitude.shape[:-1], frames, hop // band.hop)
                if pool == "mean":
                    rows.append(shaped.mean(dim=-1))
                elif pool == "max":
                    rows.append(shaped.amax(dim=-1))
                else:
                    rows.append(shaped.square().mean(dim=-1).sqrt())
            else:
                rows.append(magnitude)
        image = torch.cat(rows, dim=-2)
        if db:
            image = 20.0 * torch.log10(image.clamp_min(10.0 ** (floor_db / 20.0)))
        return image

    def to_representation(self) -> Representation:
        """The numpy :class:`~msfreq.Representation` of unbatched coefficients (each band
        ``(channels, n_bins, frames)``), detached and on the CPU."""
        arrays = {name: value.detach().cpu().numpy() for name, value in self._bands.items()}
        if any(array.ndim != 3 for array in arrays.values()):
            raise ParameterError(
                "to_representation needs bands of shape (channels, n_bins, frames); index the "
                "batch first (e.g. coefficients[name][i])"
            )
        return Representation(arrays, grid=self._grid, n_samples=self._n_samples,
                              length=self._length)

    @classmethod
    def from_representation(cls, representation: Representation,
                            device: torch.device | str | None = None) -> Coefficients:
        """The bands of a complete :class:`~msfreq.Representation` as tensors
        ``(channels, n_bins, frames)`` on ``device``."""
        if not representation.complete:
            raise ParameterError(f"only a complete representation converts, got {representation!r}")
        return cls({name: torch.from_numpy(np.ascontiguousarray(representation[name])).to(device)
                    for name in representation.names},
                   representation.grid, representation.n_samples)


class Transform(torch.nn.Module):
    """The msfreq transform of ``(*batch, samples)`` tensors: ``encode`` and its exact inverse
    ``decode``, differentiable, on whatever device the module is on.

    Parameters
    ----------
    sample_rate : int
        Samples per second of the audio it will see.
    bins_per_octave, fmin, tuning, n_octaves, oversampling, span
        As for :func:`msfreq.encode` (see :class:`~msfreq.params.TransformParams`).
    dtype : torch.complex64 or torch.complex128
        Precision of the computation and of the coefficients.

    Examples
    --------
    >>> import torch
    >>> from msfreq.torch import Transform
    >>> transform = Transform(8000, bins_per_octave=12)
    >>> audio = torch.randn(4, 2, 8000)              # (batch, channels, samples)
    >>> bands = transform.encode(audio)
    >>> tuple(bands["octave_02"].shape), tuple(bands.stack().shape)
    ((4, 2, 12, 16), (4, 2, 84, 256))
    >>> bool((transform.decode(bands) - audio).abs().max() < 1e-4)
    True
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        bins_per_octave: int = DEFAULT_BINS_PER_OCTAVE,
        fmin: float = DEFAULT_FMIN,
        tuning: float = DEFAULT_TUNING,
        n_octaves: int | None = None,
        oversampling: int = 1,
        span: int = 1,
        dtype: torch.dtype = torch.complex64,
    ) -> None:
        super().__init__()
        if dtype not in _COMPLEX:
            raise ParameterError(f"dtype must be torch.complex64 or torch.complex128, got {dtype!r}")
        params = TransformParams(bins_per_octave=bins_per_octave, fmin=fmin, tuning=tuning,
                                 n_octaves=n_octaves, oversampling=oversampling, span=span)
        self._grid = grid_for(sample_rate, params)
        self._dtype = dtype
        self._real = _COMPLEX[dtype]
        # Where the tables go: follows .to(device) like any buffer.
        self.register_buffer("_anchor", torch.zeros((), dtype=self._real), persistent=False)
        self._tables = torch.nn.ModuleDict()
        self._order: OrderedDict[str, None] = OrderedDict()

    @property
    def grid(self) -> Grid:
        """The frequency grid (the same as :func:`msfreq.encode` uses)."""
        return self._grid

    @property
    def dtype(self) -> torch.dtype:
        """Complex dtype of the coefficients."""
        return self._dtype

    def length(self, n_samples: int) -> int:
        """Samples the transform of ``n_samples`` covers (padded to whole hop units)."""
        return transform_units(n_samples, self._grid) * self._grid.hop_unit

    def tables(self, n_samples: int) -> _Tables:
        """The tables for signals of ``n_samples`` samples, built and cached on first use."""
        length = self.length(n_samples)
        key = str(length)
        if key not in self._tables:
            self._tables[key] = _Tables(self._grid, length, self._dtype).to(self._anchor.device)
            self._order[key] = None
            while len(self._order) > PLAN_CACHE_SIZE:
                oldest, _ = self._order.popitem(last=False)
                del self._tables[oldest]
        else:
            self._order.move_to_end(key)
        return self._tables[key]

    def forward(self, audio: torch.Tensor) -> Coefficients:
        """Same as :meth:`encode`."""
        return self.encode(audio)

    def encode(self, audio: torch.Tensor) -> Coefficients:
        """Return the coefficients of ``audio``.

        Parameters
        ----------
        audio : Tensor, shape (*batch, samples)
            Real samples, e.g. ``(batch, channels, samples)``, on the module's device;
            integers are taken as they are (not rescaled).  Not checked for NaN (that would
            wait for the device): NaN or infinity spreads to every coefficient.

        Returns
        -------
        Coefficients
            Per band ``(*batch, n_bins, frames)``.
        """
        if audio.is_complex():
            raise ParameterError(f"audio must be real, got {audio.dtype}")
        if audio.ndim < 1 or audio.shape[-1] < 1:
            raise ParameterError(f"audio must have shape (*batch, samples), got {tuple(audio.shape)}")
        n_samples = audio.shape[-1]
        tables = self.tables(n_samples)
        values = analyze(audio.to(self._real), tables)
        return Coefficients(dict(zip((band.name for band in self._grid.bands), values, strict=True)),
                            self._grid, n_samples)

    def decode(self, coefficients: Mapping[str, torch.Tensor], n_samples: int | None = None
               ) -> torch.Tensor:
        """Return the audio whose coefficients are ``coefficients`` (the exact inverse).

        Parameters
        ----------
        coefficients : Coefficients or mapping of str to Tensor
            Every band, shaped ``(*batch, n_bins, frames)``.
        n_samples : int, optional
            Samples to return; default the ``n_samples`` of a :class:`Coefficients`.

        Returns
        -------
        Tensor, shape (*batch, n_samples)
            Real, in the module's real precision.
        """
        if n_samples is None:
            if not isinstance(coefficients, Coefficients):
                raise ParameterError("decode of a plain mapping needs n_samples")
            n_samples = coefficients.n_samples
        if isinstance(coefficients, Coefficients) and coefficients.grid != self._grid:
            raise ParameterError("these coefficients were made on another grid than this transform's")
        checked = Coefficients(coefficients, self._grid, n_samples)
        tables = self.tables(n_samples)
        bands = [checked[band.name] for band in self._grid.bands]
        bands = [values.to(self._dtype if values.is_complex() else self._real) for values in bands]
        return synthesize(bands, tables)[..., :n_samples]
