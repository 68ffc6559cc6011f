"""Crops for training: map-style datasets that a DataLoader can use.

:class:`Dataset` gives crops of encoded files (coefficients or stacked magnitudes);
:class:`AudioDataset` gives raw audio crops, from audio files or decoded from msfreq files,
for a training loop that computes the representation itself (``msfreq.torch`` on the GPU).
Both crop by the same rules.  Plain numpy: this module never imports a deep-learning
framework.  Files are opened lazily, in the process that reads them (never sharing a handle
across a fork), and a crop reads only what it needs.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from msfreq.audio import AudioInfo, AudioReader, probe
from msfreq.batch import find_inputs, is_audio_file
from msfreq.convert import decoded_range
from msfreq.errors import ParameterError
from msfreq.params import (
    DEFAULT_BINS_PER_OCTAVE,
    DEFAULT_FMIN,
    DEFAULT_TUNING,
    TransformParams,
    resolve_dtype,
)
from msfreq.representation import Representation, decibels
from msfreq.scales import make_grid
from msfreq.store import (
    Reader,
    has_msfreq_suffix,
    open_reader,
    read_header,
    select_bands,
    select_channels,
)
from msfreq.transform import transform_units

__all__ = ["Dataset", "AudioDataset", "find_files"]

#: Open files kept per process (each is one file descriptor).
_OPEN_FILES = 32


def find_files(paths_or_folder: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Return the msfreq files named, or found (recursively, by suffix) in named folders, as
    ``msfreq decode`` would find them.

    Raises
    ------
    ParameterError
        If a path does not exist or nothing is found.
    """
    if isinstance(paths_or_folder, (str, os.PathLike)):
        items = [paths_or_folder]
    else:
        items = list(paths_or_folder)
    # the batch's walker: hidden names skipped, symlinked folders followed once, no loops
    found, _, _ = find_inputs(items, has_msfreq_suffix)
    files = [file for file, _ in found]
    if not files:
        raise ParameterError(f"no msfreq files (*.h5) found in {', '.join(map(str, items)) or 'nothing'}")
    return files


def _crop(length: int, crop: int | None, step: int, random: bool, key: tuple[int, int, int]
          ) -> tuple[int, int]:
    """The crop rule shared by the datasets: ``crop`` samples (whole file if None) starting
    on a multiple of ``step``, at random (seeded by ``key = (seed, epoch, index)``) or
    centred; a file shorter than the crop gives ``(0, crop)`` (padded by the caller)."""
    if crop is None:
        return 0, length
    if crop >= length:
        return 0, crop
    starts = (length - crop) // step + 1
    position = int(np.random.default_rng(list(key)).integers(starts)) if random else (starts - 1) // 2
    return position * step, position * step + crop


def _whole_steps(seconds: object, sample_rate: int, step: int) -> int:
    """``seconds`` of audio rounded up to a whole number (at least one) of ``step`` samples."""
    value = float(seconds)  # type: ignore[arg-type]
    if not np.isfinite(value) or value <= 0:
        raise ParameterError(f"crop_seconds must be > 0, got {seconds!r}")
    return max(1, int(np.ceil(value * sample_rate / step))) * step


def _seed(seed: int | None) -> int:
    return int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)


class _Crops:
    """What both datasets share: the crop rule, epochs, and the files each process opens
    (lazily, at most :data:`_OPEN_FILES`, never a handle inherited across a fork)."""

    files: list[Path]
    crop_samples: int | None
    step: int
    random_crop: bool
    seed: int
    epoch: int
    _lengths: list[int]

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch: random crops differ between epochs, reproducibly."""
        self.epoch = int(epoch)

    def crop(self, index: int) -> tuple[int, int]:
        """Return the sample range ``(start, stop)`` item ``index`` reads in this epoch."""
        return _crop(self._lengths[index], self.crop_samples, self.step, self.random_crop,
                     (self.seed, self.epoch, index))

    def _where(self, index: int) -> tuple[int, int, int]:
        """Item ``index`` (negative counts from the end) and its crop ``(start, stop)``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} files")
        index %= len(self)
        return (index, *self.crop(index))

    def _choose_channels(self, counts: list[int], channels: object) -> None:
        """Check ``channels`` (numbers, ``"mix"`` or None) against every file's channel
        count, so that all items have one shape."""
        self._channels = channels
        self._mix = isinstance(channels, str)
        if self._mix and channels != "mix":
            raise ParameterError(f"channels must be channel numbers or 'mix', got {channels!r}")
        if self._mix:
            return
        for count in counts:
            select_channels(count, channels)
        if channels is None and len(set(counts)) > 1:
            raise ParameterError(
                f"the files have {' and '.join(map(str, sorted(set(counts))))} channels, so items "
                "would differ in shape; pass channels='mix' (the mono mix-down) or a list of "
                "channel numbers that every file has"
            )

    def _opened(self, path: Path, opener: Callable):
        """The handle of ``path`` in this process, opened with ``opener(path)`` if needed."""
        if os.getpid() != getattr(self, "_pid", None):  # forked: never use the parent's handles
            self._open: OrderedDict[Path, object] = OrderedDict()
            self._pid = os.getpid()
        handle = self._open.get(path)
        if handle is None:
            handle = opener(path)
            self._open[path] = handle
            while len(self._open) > _OPEN_FILES:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
        else:
            self._open.move_to_end(path)
        return handle

    def close(self) -> None:
        """Close the files this process has open."""
        for handle in getattr(self, "_open", {}).values():
            handle.close()
        self._open = OrderedDict()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_open", None)
        state.pop("_pid", None)
        return state


class Dataset(_Crops):
    """Crops of msfreq files, aligned across octaves: ``dataset[i]`` is a crop of file ``i``.

    Parameters
    ----------
    paths_or_folder : path-like or iterable of path-like
        msfreq files and/or folders searched recursively for ``*.h5``.
    crop_seconds : float, optional
        Length of every crop; it is rounded up to whole frames of the coarsest band selected
        (the lowest octave by default), so every crop of the dataset has the same shape.
        None: whole files.
    random_crop : bool
        Random crop starts (aligned to the coarsest band's frames); else the centred crop.
    octaves : int, str or sequence, optional
        Octave numbers and/or band names to read (see :func:`msfreq.load`); default all.
    stacked : bool
        Return :meth:`Representation.stack` magnitudes ``(channels, rows, frames)`` (float32)
        instead of a dict of per-band complex arrays.
    seed : int, optional
        The crop of item ``i`` in epoch ``e`` depends only on ``(seed, e, i)``, never on
        which worker process reads it, so results are reproducible with any ``num_workers``.
        None draws a seed once, when the dataset is made.
    transform : callable, optional
        Applied to each item last.
    channels : int, sequence of int or "mix", optional
        Source channels to read; ``"mix"`` averages them into one (the transform is linear,
        so this is the representation of the mono mix-down).  Default all.
    db : bool
        With ``stacked``, magnitudes in dB.
    with_info : bool
        Return ``(item, info)`` with ``info = {"path", "index", "start", "stop"}`` (seconds).
    dtype : {"complex64", "complex128"} or None
        Precision of per-band items (residual bands: the matching real type), so that every
        item of a corpus has one dtype (24-bit sources are stored in complex128); None keeps
        each file's own.

    Raises
    ------
    ParameterError
        For an empty folder or files whose grids differ.
    FormatError
        For a file that is not a valid msfreq file.

    Examples
    --------
    >>> import numpy as np, msfreq, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     _ = msfreq.save(msfreq.encode(np.random.default_rng(i).standard_normal(40000), 8000),
    ...                     folder / f"t{i}.h5")
    >>> dataset = msfreq.Dataset(folder, crop_seconds=1.0, seed=0, stacked=True)
    >>> len(dataset), dataset[0].shape
    (3, (1, 336, 64))
    """

    def __init__(
        self,
        paths_or_folder: str | os.PathLike | Iterable[str | os.PathLike],
        *,
        crop_seconds: float | None = None,
        random_crop: bool = True,
        octaves: object = None,
        stacked: bool = False,
        seed: int | None = None,
        transform: Callable | None = None,
        channels: object = None,
        db: bool = False,
        with_info: bool = False,
        dtype: str | None = "complex64",
    ) -> None:
        self.files = find_files(paths_or_folder)
        headers = [read_header(path) for path in self.files]
        grid = headers[0].grid
        for header in headers[1:]:
            if header.grid != grid:
                raise ParameterError(
                    f"{header.path}: its grid ({header.grid.sample_rate} Hz, "
                    f"{header.grid.params}) differs from {headers[0].path}'s "
                    f"({grid.sample_rate} Hz, {grid.params}); encode with the same parameters "
                    "(and --sample-rate) to mix files in one dataset"
                )
        self.grid = grid
        self.bands = select_bands(grid, octaves)
        self._lengths = [header.length for header in headers]
        self._choose_channels([header.n_channels for header in headers], channels)
        self.step = max(band.hop for band in self.bands)
        if crop_seconds is None:
            self.crop_samples = None
        else:
            self.crop_samples = _whole_steps(crop_seconds, grid.sample_rate, self.step)
        self.random_crop = bool(random_crop)
        self.stacked = bool(stacked)
        if self.stacked and not any(not band.is_residual for band in self.bands):
            raise ParameterError("stacked needs at least one octave among the bands read")
        self.db = bool(db)
        self.transform = transform
        self.with_info = bool(with_info)
        self.dtype = None if dtype is None else resolve_dtype(dtype)
        self.seed = _seed(seed)
        self.epoch = 0

    # --- the map-style protocol ---------------------------------------------------------
    def __getitem__(self, index: int):
        index, low, high = self._where(index)
        reader = self._reader(self.files[index])
        available = min(high, self._lengths[index])
        picked = None if self._mix else select_channels(reader.header.n_channels, self._channels)
        representation = reader.load_samples(low, available, self.bands, picked)
        item = self._shape(representation, high - available)
        if self.transform is not None:
            item = self.transform(item)
        if self.with_info:
            rate = self.grid.sample_rate
            return item, {"path": str(self.files[index]), "index": index,
                          "start": low / rate, "stop": high / rate}
        return item


    # --- internals --------------------------------------------------------------------
    def _shape(self, representation: Representation, missing: int):
        """Mix channels if asked, pad a crop longer than the file with zero frames, and
        return the per-band dict or the stacked image."""
        if self._mix:
            representation = Representation(
                {name: representation[name].mean(axis=0, keepdims=True) for name in representation.names},
                grid=representation.grid, n_samples=representation.n_samples,
                offset=representation.offset, length=representation.length, n_channels=1,
                source=representation.source,
            )

        def padded(array: np.ndarray, hop: int) -> np.ndarray:
            frames = missing // hop
            if not frames:
                return array
            return np.concatenate([array, np.zeros(array.shape[:2] + (frames,), array.dtype)], axis=2)

        if not self.stacked:
            items = {band.name: padded(representation[band.name], band.hop) for band in self.bands}
            if self.dtype is not None:
                items = {band.name: items[band.name].astype(band.coefficient_dtype(self.dtype), copy=False)
                         for band in self.bands}
            return items
        hop = min(band.hop for band in self.bands if not band.is_residual)
        image = padded(representation.stack(hop=hop).astype(np.float32), hop)
        if self.db:
            image = decibels(image, -160.0)
        return image

    def _reader(self, path: Path) -> Reader:
        return self._opened(path, open_reader)

    def __repr__(self) -> str:
        crop = "whole files" if self.crop_samples is None else f"{self.crop_samples / self.grid.sample_rate:.3f} s crops"
        return (f"Dataset({len(self)} files, {crop}, {len(self.bands)} bands, "
                f"{'stacked' if self.stacked else 'per band'})")


class AudioDataset(_Crops):
    """Raw audio crops, for a training loop that computes the representation itself.

    ``dataset[i]`` is a float32 array ``(channels, crop_samples)``: a crop of audio file
    ``i``, or of the audio that msfreq file ``i`` decodes to (rebuilt from the frames around
    the crop, so a crop of a long file costs about what a crop of a short one does; a file
    written as decoding exactly gives exactly the source's samples).  Feed
    batches to :class:`msfreq.torch.Transform` on the GPU: the crop length needs no padding,
    so its coefficients are exactly the frames of that stretch of the file.

    Parameters
    ----------
    paths_or_folder : path-like or iterable of path-like
        Audio files, msfreq files, and/or folders searched recursively for both.  All must
        have one sample rate.
    crop_seconds : float, optional
        Length of every crop, rounded up to whole hop units of the grid (the lowest octave's
        hop, about 1 s at the default grid) and then to a length the transform takes without
        padding (``Transform.length(crop) == crop``).  None: whole files.
    random_crop, seed, channels, transform, with_info
        As for :class:`Dataset` (the same crop rules: starts on whole hop units; the crop of
        item ``i`` in epoch ``e`` depends only on ``(seed, e, i)``; shorter files are padded
        with zeros).
    bins_per_octave, fmin, tuning, n_octaves, oversampling, span
        The grid the crops are aligned to (that of the transform you will apply); msfreq
        files must have been encoded with it.

    Raises
    ------
    ParameterError
        For an empty folder, mixed sample rates or channel counts, or an msfreq file of
        another grid.
    AudioError, FormatError
        For a file that is not readable audio or not a valid msfreq file.

    Examples
    --------
    >>> import numpy as np, soundfile, tempfile, pathlib, msfreq
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> soundfile.write(folder / "a.wav", np.zeros((40000, 2)), 8000)
    >>> dataset = msfreq.AudioDataset(folder, crop_seconds=1.0, bins_per_octave=12, seed=0)
    >>> len(dataset), dataset[0].shape, dataset[0].dtype
    (1, (2, 8192), dtype('float32'))
    """

    def __init__(
        self,
        paths_or_folder: str | os.PathLike | Iterable[str | os.PathLike],
        *,
        crop_seconds: float | None = None,
        random_crop: bool = True,
        seed: int | None = None,
        channels: object = None,
        transform: Callable | None = None,
        with_info: bool = False,
        bins_per_octave: int = DEFAULT_BINS_PER_OCTAVE,
        fmin: float = DEFAULT_FMIN,
        tuning: float = DEFAULT_TUNING,
        n_octaves: int | None = None,
        oversampling: int = 1,
        span: int = 1,
    ) -> None:
        items = [paths_or_folder] if isinstance(paths_or_folder, (str, os.PathLike)) else list(paths_or_folder)
        found, _, _ = find_inputs(items, lambda path: has_msfreq_suffix(path) or is_audio_file(path))
        self.files = [file for file, _ in found]
        if not self.files:
            raise ParameterError(f"no audio or msfreq files found in {', '.join(map(str, items)) or 'nothing'}")
        params = TransformParams(bins_per_octave=bins_per_octave, fmin=fmin, tuning=tuning,
                                 n_octaves=n_octaves, oversampling=oversampling, span=span)
        facts = []  # (sample rate, frames, channels) per file
        self._encoded = []
        self._sources: dict[Path, AudioInfo] = {}
        for path in self.files:
            if has_msfreq_suffix(path):
                header = read_header(path)
                expected = make_grid(header.grid.sample_rate, params)
                if (expected.bands, expected.hop_unit) != (header.grid.bands, header.grid.hop_unit):
                    raise ParameterError(
                        f"{path}: encoded with {header.grid.params}, not the dataset's {params}; "
                        "pass the file's parameters (bins_per_octave=..., oversampling=..., span=...)"
                    )
                facts.append((header.grid.sample_rate, header.n_samples, header.n_channels))
                self._encoded.append(True)
            else:
                info = probe(path)  # refuses a file soundfile would read in part
                facts.append((info.sample_rate, info.frames, info.channels))
                self._encoded.append(False)
                self._sources[path] = info  # reopened as probed: lengths stay, no walk again
        rates = sorted({rate for rate, _, _ in facts})
        if len(rates) > 1:
            first = next(path for path, fact in zip(self.files, facts, strict=True) if fact[0] == rates[0])
            other = next(path for path, fact in zip(self.files, facts, strict=True) if fact[0] == rates[1])
            raise ParameterError(
                f"the files have different sample rates ({first}: {rates[0]} Hz, {other}: "
                f"{rates[1]} Hz); resample them (msfreq encode --sample-rate) or make one "
                "dataset per rate"
            )
        self.sample_rate = rates[0]
        self.grid = make_grid(self.sample_rate, params)
        self.step = self.grid.hop_unit
        self._lengths = [frames for _, frames, _ in facts]
        self._counts = [count for _, _, count in facts]
        self._choose_channels(self._counts, channels)
        if crop_seconds is None:
            self.crop_samples = None
        else:
            needed = _whole_steps(crop_seconds, self.sample_rate, self.step)
            self.crop_samples = transform_units(needed, self.grid) * self.step
        self.random_crop = bool(random_crop)
        self.transform = transform
        self.with_info = bool(with_info)
        self.seed = _seed(seed)
        self.epoch = 0

    def __getitem__(self, index: int):
        index, low, high = self._where(index)
        picked = (list(range(self._counts[index])) if self._mix or self._channels is None
                  else select_channels(self._counts[index], self._channels))
        handle = self._handle(index)
        if self._encoded[index]:
            # the source's samples, for a file that decodes exactly
            audio = decoded_range(handle, low, high, picked)
        else:
            available = min(high, self._lengths[index])
            audio = np.zeros((len(picked), high - low))
            audio[:, : available - low] = handle.read(low, available)[:, picked].T
        audio = audio.astype(np.float32)
        if self._mix:
            audio = audio.mean(axis=0, keepdims=True)
        item = audio if self.transform is None else self.transform(audio)
        if self.with_info:
            return item, {"path": str(self.files[index]), "index": index,
                          "start": low / self.sample_rate, "stop": high / self.sample_rate}
        return item


    def _handle(self, index: int):
        opener = open_reader if self._encoded[index] else (lambda path: AudioReader(self._sources[path]))
        return self._opened(self.files[index], opener)

    def __repr__(self) -> str:
        crop = ("whole files" if self.crop_samples is None
                else f"{self.crop_samples / self.sample_rate:.3f} s crops")
        return f"AudioDataset({len(self)} files at {self.sample_rate} Hz, {crop})"

