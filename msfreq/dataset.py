"""Crops of encoded files for training: a map-style dataset that a DataLoader can use.

Plain numpy; msfreq never imports a deep-learning framework.  The dataset opens its HDF5
files lazily, in the process that reads them (never sharing a handle across a fork), and
reads only the chunks a crop needs.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from msfreq.batch import find_inputs
from msfreq.errors import ParameterError
from msfreq.params import resolve_dtype
from msfreq.representation import Representation
from msfreq.store import (
    Reader,
    has_msfreq_suffix,
    open_reader,
    read_header,
    select_bands,
    select_channels,
)

__all__ = ["Dataset", "find_files"]

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


class Dataset:
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
        self._channels = channels
        self._mix = isinstance(channels, str)
        if self._mix and channels != "mix":
            raise ParameterError(f"channels must be channel numbers or 'mix', got {channels!r}")
        if not self._mix:
            for header in headers:
                select_channels(header.n_channels, channels)
            counts = sorted({header.n_channels for header in headers})
            if channels is None and len(counts) > 1:
                raise ParameterError(
                    f"the files have {' and '.join(map(str, counts))} channels, so items would "
                    "differ in shape; pass channels='mix' (the mono mix-down) or a list of "
                    "channel numbers that every file has"
                )
        self.step = max(band.hop for band in self.bands)
        if crop_seconds is None:
            self.crop_samples = None
        else:
            seconds = float(crop_seconds)
            if not np.isfinite(seconds) or seconds <= 0:
                raise ParameterError(f"crop_seconds must be > 0, got {crop_seconds!r}")
            self.crop_samples = max(1, int(np.ceil(seconds * grid.sample_rate / self.step))) * self.step
        self.random_crop = bool(random_crop)
        self.stacked = bool(stacked)
        if self.stacked and not any(not band.is_residual for band in self.bands):
            raise ParameterError("stacked needs at least one octave among the bands read")
        self.db = bool(db)
        self.transform = transform
        self.with_info = bool(with_info)
        self.dtype = None if dtype is None else resolve_dtype(dtype)
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self.epoch = 0
        self._open: OrderedDict[Path, Reader] = OrderedDict()
        self._pid = os.getpid()

    # --- the map-style protocol ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} files")
        index %= len(self)
        low, high = self.crop(index)
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

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch: random crops differ between epochs, reproducibly."""
        self.epoch = int(epoch)

    def crop(self, index: int) -> tuple[int, int]:
        """Return the sample range ``(start, stop)`` item ``index`` reads in this epoch."""
        length = self._lengths[index]
        if self.crop_samples is None:
            return 0, length
        if self.crop_samples >= length:
            return 0, self.crop_samples
        starts = (length - self.crop_samples) // self.step + 1
        if self.random_crop:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            position = int(rng.integers(starts))
        else:
            position = (starts - 1) // 2
        start = position * self.step
        return start, start + self.crop_samples

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
            image = 20 * np.log10(np.maximum(image, np.float32(1e-8)))
        return image

    def _reader(self, path: Path) -> Reader:
        if os.getpid() != self._pid:  # forked: never use the parent's handles
            self._open = OrderedDict()
            self._pid = os.getpid()
        reader = self._open.get(path)
        if reader is None:
            reader = open_reader(path)
            self._open[path] = reader
            while len(self._open) > _OPEN_FILES:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
        else:
            self._open.move_to_end(path)
        return reader

    def close(self) -> None:
        """Close the files this process has open."""
        for reader in self._open.values():
            reader.close()
        self._open.clear()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def __repr__(self) -> str:
        crop = "whole files" if self.crop_samples is None else f"{self.crop_samples / self.grid.sample_rate:.3f} s crops"
        return (f"Dataset({len(self)} files, {crop}, {len(self.bands)} bands, "
                f"{'stacked' if self.stacked else 'per band'})")
