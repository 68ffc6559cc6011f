"""Writing msfreq files: band by band, block by block, atomically."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from msfreq.errors import ParameterError
from msfreq.quantize import FILL_CODE
from msfreq.representation import Representation
from msfreq.scales import Grid
from msfreq.store.atomic import atomic_path
from msfreq.store.layout import (
    CORRECTIONS,
    FORMAT_MARKER,
    LIBVER,
    Storage,
    chunk_shape,
    corrections_chunks,
    dataset_name,
    encode_text,
    filters_for,
    header_checksum,
    version_for,
)
from msfreq.version import __version__

__all__ = ["Writer", "save"]


#: Attributes are kept in the object header (compact storage) up to this many: HDF5's
#: default (8) moves more into "dense" storage, a heap and an index of their own, which
#: measured 3.6 kB per dataset (a third of a short drum hit's file).
_COMPACT_ATTRIBUTES = 64


def _compact(kind):
    plist = h5py.h5p.create(kind)
    plist.set_attr_phase_change(_COMPACT_ATTRIBUTES, _COMPACT_ATTRIBUTES - 16)
    return plist


def _create_file(path: Path) -> h5py.File:
    """A new HDF5 file with the format's object versions and compact root attributes."""
    access = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    access.set_libver_bounds(*(LIBVER_BOUNDS[name] for name in LIBVER))
    identifier = h5py.h5f.create(os.fsencode(path), h5py.h5f.ACC_TRUNC,
                                 fcpl=_compact(h5py.h5p.FILE_CREATE), fapl=access)
    return h5py.File(identifier)


LIBVER_BOUNDS = {"v110": h5py.h5f.LIBVER_V110}


def _attribute(value: object) -> object:
    return encode_text(value) if isinstance(value, str) else value


class Writer:
    """Write an msfreq file band by band and block by block, atomically.

    Use as a context manager: the datasets are created full-size when entering, filled with
    :meth:`write`, and the file appears under ``path`` only when the block exits without an
    exception and every frame has been written.

    Parameters
    ----------
    path : path-like
    grid : Grid
    n_samples, n_channels : int
    storage : Storage
        Coefficient dtype and stored form; :meth:`write` takes arrays in that stored form
        (see :meth:`Storage.to_stored`).  With ``storage.corrected``, every sample's
        correction code must also be given (:meth:`write_corrections`).
    length : int
        Samples of the transform (a multiple of ``grid.hop_unit``).
    compression : {"lz4", "zstd", "gzip", "none"}
    source : mapping, optional
        Facts about the source audio, stored as ``source_<key>`` root attributes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        grid: Grid,
        n_samples: int,
        n_channels: int,
        *,
        storage: Storage,
        length: int,
        compression: str,
        source: Mapping[str, object] | None = None,
    ) -> None:
        self.path = Path(path)
        self.grid = grid
        self.n_samples = int(n_samples)
        self.n_channels = int(n_channels)
        self.storage = storage
        self.length = int(length)
        filters_for(compression)  # refuses an unknown name before anything is written
        self.compression = compression
        self.source = dict(source or {})
        self._written = np.zeros(self.n_channels, dtype=np.int64)  # hop units, per channel
        self._corrected = 0
        self._exact: bool | None = None
        self._root: dict[str, object] = {}
        self._bands: dict[str, dict[str, object]] = {}
        self._context: contextlib.AbstractContextManager | None = None
        self._file: h5py.File | None = None

    def __enter__(self) -> Writer:
        self._context = atomic_path(self.path)
        temporary = self._context.__enter__()
        try:
            self._file = _create_file(temporary)
            self._create()
        except BaseException as error:
            self._abort(error)
            raise
        return self

    def _create(self) -> None:
        handle = self._file
        params = self.grid.params
        attrs = {
            "format": FORMAT_MARKER,
            "format_version": version_for(self.source, self.compression, params.span,
                                          self.storage.corrected),
            "msfreq_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "sample_rate": self.grid.sample_rate,
            "n_samples": self.n_samples,
            "n_channels": self.n_channels,
            "length": self.length,
            "hop_unit": self.grid.hop_unit,
            "bins_per_octave": params.bins_per_octave,
            "fmin": params.fmin,
            "tuning": params.tuning,
            "n_octaves": self.grid.n_octaves,
            "oversampling": params.oversampling,
            **({"span": params.span} if params.span > 1 else {}),
            "first_bin": self.grid.first_bin,
            "dtype": self.storage.dtype.name,
            "storage": self.storage.form,
            "content": self.storage.content,
            "keep_bits": -1 if self.storage.keep_bits is None else self.storage.keep_bits,
            **({"corrections": self.storage.correction_bits} if self.storage.corrected else {}),
            "compression": self.compression,
            "phase_convention": "absolute time: c[n] = sum_t x[t] conj(psi(t - n*hop))",
            "scale": "a sinusoid of amplitude A at a bin centre has |c| = A",
        }
        for key, value in self.source.items():
            if value is not None:
                attrs[f"source_{key}"] = value
        for key, value in attrs.items():
            self._root[key] = _attribute(value)
        for group in ("octaves", "residuals"):
            handle.create_group(group)
        for index, band in enumerate(self.grid.bands):
            frames = band.frames(self.length)
            dtype = self.storage.stored_dtype(band)
            shape = self.storage.stored_shape(band, self.n_channels, frames)
            chunks = chunk_shape(shape, dtype)
            dataset = handle.create_dataset(
                dataset_name(band), shape=shape, dtype=dtype, chunks=chunks,
                fillvalue=self.storage.fill_value(band), dcpl=_compact(h5py.h5p.DATASET_CREATE),
                **filters_for(self.compression, int(np.prod(shape)) * dtype.itemsize),
            )
            # Only what a reader needs (the rest follows from the root attributes and the
            # shape, as docs/FORMAT.md shows; 9 descriptive attributes per band cost a short
            # file 6 kB, a fifth of a drum hit's file)
            band_attrs = {}
            if self.storage.steps is not None:
                band_attrs["step"] = self.storage.steps[index]
            written = self._bands[dataset_name(band)] = {}
            for key, value in band_attrs.items():
                dataset.attrs[key] = written[key] = _attribute(value)
        if self.storage.corrected:
            handle.create_dataset(
                CORRECTIONS, shape=(self.n_channels, self.n_samples), dtype=np.int8,
                chunks=corrections_chunks(self.n_samples), fillvalue=FILL_CODE,
                **filters_for(self.compression, self.n_channels * self.n_samples),
            )

    def write_corrections(self, start: int, codes: np.ndarray) -> None:
        """Write the correction codes of samples ``start:start + codes.shape[1]``, shape
        (channels, samples) of int8, in order (see :func:`msfreq.quantize.correction_codes`)."""
        if start != self._corrected:
            raise RuntimeError(f"{self.path}: internal: correction codes from sample {start}, "
                               f"expected {self._corrected} (they must come in order)")
        self._file[CORRECTIONS][:, start : start + codes.shape[1]] = codes
        self._corrected = start + codes.shape[1]

    def write(self, first_unit: int, stop_unit: int, stored: Sequence[np.ndarray],
              channels: slice | None = None) -> None:
        """Write the frames of hop units ``first_unit:stop_unit`` of every band.

        Parameters
        ----------
        first_unit, stop_unit : int
        stored : sequence of ndarray
            One per band in the grid's order, in the storage's form, covering
            ``(stop_unit - first_unit) * hop_unit / hop`` frames.
        channels : slice, optional
            The channels ``stored`` holds (default: all).
        """
        picked = slice(0, self.n_channels) if channels is None else channels
        count = len(range(*picked.indices(self.n_channels)))
        for band, values in zip(self.grid.bands, stored, strict=True):
            if values.shape[0] != count:
                raise RuntimeError(f"{self.path}: internal: {values.shape[0]} channels given "
                                   f"for {count}")
            per_unit = self.grid.hop_unit // band.hop
            self._file[dataset_name(band)][picked, :, first_unit * per_unit : stop_unit * per_unit] = values
        self._written[picked] += stop_unit - first_unit

    def read(self, index: int, first: int, stop: int, channel: int) -> np.ndarray:
        """Return the coefficients of band ``index``, frames ``first:stop`` of one channel,
        shape (1, n_bins, frames), as written so far (for checking what was written before
        the file is committed)."""
        band = self.grid.bands[index]
        stored = self._file[dataset_name(band)][channel : channel + 1, :, first:stop]
        return self.storage.from_stored(index, band, stored)

    def set_source(self, **facts: object) -> None:
        """Record more facts about the source (e.g. its checksum, known only at the end)."""
        for key, value in facts.items():
            if value is not None:
                self._root[f"source_{key}"] = _attribute(value)

    def set_exact(self, exact: bool | None) -> None:
        """Record whether the stored coefficients decode to exactly the source samples."""
        self._exact = exact

    def _abort(self, error: BaseException) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
        if self._context is not None:
            context, self._context = self._context, None
            with contextlib.suppress(BaseException):
                context.__exit__(type(error), error, error.__traceback__)

    def _seal(self) -> None:
        handle = self._file
        self._root["exact"] = -1 if self._exact is None else int(self._exact)
        # Over the attributes as written (reading them back costs ~150 HDF5 reads; every
        # reader recomputes it from what it reads, which the tests do for every file written)
        datasets = [(dataset_name(band), self._bands[dataset_name(band)]) for band in self.grid.bands]
        self._root["header_sha256"] = encode_text(header_checksum(self._root, datasets))
        # All root attributes at once, at the end: set as they became known, each rewrite
        # left its old space behind (850 bytes a file, measured)
        for key, value in self._root.items():
            handle.attrs[key] = value

    def __exit__(self, kind, error, traceback) -> None:
        expected = self.length // self.grid.hop_unit
        if error is None and np.any(self._written != expected):
            error = RuntimeError(f"{self.path}: internal: {self._written.tolist()} hop units "
                                 f"written per channel, not {expected}")
            self._abort(error)
            raise error
        if error is None and self.storage.corrected and self._corrected != self.n_samples:
            error = RuntimeError(f"{self.path}: internal: correction codes of {self._corrected} "
                                 f"of {self.n_samples} samples written")
            self._abort(error)
            raise error
        if error is not None:
            self._abort(error)
            return
        try:
            self._seal()
            self._file.close()
        except BaseException as failure:
            self._abort(failure)
            raise
        self._file = None
        context, self._context = self._context, None
        context.__exit__(None, None, None)


def save(
    representation: Representation,
    path: str | os.PathLike,
    *,
    compression: str | None = None,
    keep_bits: int | None = None,
) -> Path:
    """Write a complete ``representation`` to ``path`` (atomically).

    A representation of magnitudes (:meth:`Representation.abs`) makes a magnitude file,
    which :func:`load` reads back and ``decode`` refuses.

    Parameters
    ----------
    representation : Representation
    path : path-like
    compression : {"lz4", "zstd", "gzip", "none"}, optional
        Default :data:`msfreq.params.DEFAULT_COMPRESSION`.
    keep_bits : int, optional
        Round the mantissas to this many bits (smaller files, relative error at most
        ``2**-(keep_bits + 1)``); default: store the coefficients unchanged.

    Returns
    -------
    Path

    Examples
    --------
    >>> import numpy as np, msfreq, tempfile, pathlib
    >>> rep = msfreq.encode(np.random.default_rng(0).standard_normal(8000), 8000)
    >>> path = msfreq.save(rep, pathlib.Path(tempfile.mkdtemp()) / "noise.h5")
    >>> np.array_equal(msfreq.load(path)["octave_03"], rep["octave_03"])
    True
    """
    from msfreq.params import DEFAULT_COMPRESSION

    if not representation.complete:
        raise ParameterError("only a complete representation can be saved")
    grid = representation.grid
    storage = Storage(dtype=representation.dtype, keep_bits=keep_bits,
                      magnitudes=representation.is_magnitude)
    if keep_bits is not None:
        storage.to_stored(0, np.zeros(1, dtype=representation.dtype))  # validates keep_bits
    with Writer(
        path,
        grid,
        representation.n_samples,
        representation.n_channels,
        storage=storage,
        length=representation.length,
        compression=DEFAULT_COMPRESSION if compression is None else compression,
        source=representation.source,
    ) as writer:
        stored = [storage.to_stored(index, representation[band.name])
                  for index, band in enumerate(grid.bands)]
        writer.write(0, representation.length // grid.hop_unit, stored)
    return Path(path)
