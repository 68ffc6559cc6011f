"""The msfreq HDF5 file format: save, load, stream-write and validate.

The format is specified in ``docs/FORMAT.md``; the names, marker and version below are the
only place they are defined.  Every write goes to a temporary file in the destination folder
that is renamed over the final name only once it is complete and flushed to disk.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from msfreq.errors import FormatError, ParameterError
from msfreq.params import COMPRESSIONS, DEFAULT_COMPRESSION, TransformParams, resolve_dtype
from msfreq.representation import Representation
from msfreq.scales import Band, Grid, make_grid

__all__ = [
    "FORMAT_MARKER",
    "FORMAT_VERSION",
    "TEMP_SUFFIX",
    "Header",
    "Writer",
    "dataset_name",
    "save",
    "load",
    "read_header",
    "open_reader",
    "verify",
    "atomic_path",
    "select_bands",
    "select_channels",
    "time_range",
]

FORMAT_MARKER = "msfreq"
FORMAT_VERSION = 1
#: Temporary files being written end with this (and start with a dot).
TEMP_SUFFIX = ".msfreq-partial"
#: Target size of one HDF5 chunk; chunks span all channels and bins of a band, and time.
#: 64 KiB: a random 2-second crop reads 1.5x faster than with 256 KiB chunks (less
#: over-read), for 0.6 % more bytes on disk (measured, gzip, 44.1 kHz stereo).
CHUNK_BYTES = 64 * 1024
#: gzip level 1: within 1 % of level 6 on coefficient data, at about twice the speed.
_GZIP_LEVEL = 1
_REQUIRED_ROOT = (
    "format", "format_version", "sample_rate", "n_samples", "n_channels", "length",
    "hop_unit", "bins_per_octave", "fmin", "tuning", "n_octaves", "dtype",
)


def _msfreq_version() -> str:
    from msfreq import __version__

    return __version__


def dataset_name(band: Band) -> str:
    """Return the HDF5 path of ``band``: ``octaves/NN``, ``residuals/low`` or ``residuals/high``."""
    if band.kind == "octave":
        return f"octaves/{band.octave:02d}"
    return "residuals/low" if band.octave < 0 else "residuals/high"


@dataclass(frozen=True)
class Header:
    """What an msfreq file says about itself (its root attributes), without its data.

    Attributes
    ----------
    path : Path
    grid : Grid
    n_samples, n_channels, length : int
    dtype : numpy.dtype
        Complex dtype of the octave datasets.
    compression : str
    format_version : int
    msfreq_version : str
    source : dict
        ``name``, ``format``, ``subtype``, ``sample_rate``, ``sha256``, ... of the source audio.
    """

    path: Path
    grid: Grid
    n_samples: int
    n_channels: int
    length: int
    dtype: np.dtype
    compression: str
    format_version: int
    msfreq_version: str
    source: dict

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.n_samples / self.grid.sample_rate


def _chunk_frames(n_channels: int, band: Band, frames: int, itemsize: int) -> int:
    per_frame = n_channels * band.n_bins * itemsize
    return int(max(1, min(frames, CHUNK_BYTES // per_frame)))


def _filters(compression: str) -> dict:
    if compression not in COMPRESSIONS:
        raise ParameterError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if compression == "none":
        return {"fletcher32": True}
    options: dict = {"compression": compression, "shuffle": True, "fletcher32": True}
    if compression == "gzip":
        options["compression_opts"] = _GZIP_LEVEL
    return options


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary file is removed on any exception, including ``KeyboardInterrupt``.  The
    file is flushed to disk before the rename, and the folder after it.
    """
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder to write into", str(folder))
    descriptor, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=folder)
    os.close(descriptor)
    temporary = Path(name)
    # mkstemp makes the file private (0600); give it the permissions a new file would get.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    with contextlib.suppress(OSError):
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)


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
    dtype : str or numpy dtype
        Complex dtype of the octave coefficients.
    compression : {"gzip", "lzf", "none"}
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
        dtype: str | np.dtype,
        length: int,
        compression: str = DEFAULT_COMPRESSION,
        source: Mapping[str, object] | None = None,
    ) -> None:
        self.path = Path(path)
        self.grid = grid
        self.n_samples = int(n_samples)
        self.n_channels = int(n_channels)
        self.dtype = resolve_dtype(dtype)
        self.length = int(length)
        self.filters = _filters(compression)
        self.compression = compression
        self.source = dict(source or {})
        self._written = 0
        self._context: contextlib.AbstractContextManager | None = None
        self._file: h5py.File | None = None

    def __enter__(self) -> Writer:
        self._context = atomic_path(self.path)
        temporary = self._context.__enter__()
        try:
            self._file = h5py.File(temporary, "w")
            self._create()
        except BaseException as error:
            self._abort(error)
            raise
        return self

    def _create(self) -> None:
        handle = self._file
        params = self.grid.params
        attrs = handle.attrs
        attrs["format"] = FORMAT_MARKER
        attrs["format_version"] = FORMAT_VERSION
        attrs["msfreq_version"] = _msfreq_version()
        attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        attrs["sample_rate"] = self.grid.sample_rate
        attrs["n_samples"] = self.n_samples
        attrs["n_channels"] = self.n_channels
        attrs["length"] = self.length
        attrs["hop_unit"] = self.grid.hop_unit
        attrs["bins_per_octave"] = params.bins_per_octave
        attrs["fmin"] = params.fmin
        attrs["tuning"] = params.tuning
        attrs["n_octaves"] = self.grid.n_octaves
        attrs["dtype"] = self.dtype.name
        attrs["compression"] = self.compression
        attrs["phase_convention"] = "absolute time: c[n] = sum_t x[t] conj(psi(t - n*hop))"
        attrs["scale"] = "a sinusoid of amplitude A at a bin centre has |c| = A"
        for key, value in self.source.items():
            if value is not None:
                attrs[f"source_{key}"] = value
        real = np.finfo(self.dtype).dtype
        for band in self.grid.bands:
            frames = self.length // band.hop
            dtype = real if band.kind == "residual" else self.dtype
            shape = (self.n_channels, band.n_bins, frames)
            chunks = (self.n_channels, band.n_bins,
                      _chunk_frames(self.n_channels, band, frames, dtype.itemsize))
            dataset = handle.create_dataset(
                dataset_name(band), shape=shape, dtype=dtype, chunks=chunks, **self.filters
            )
            frequencies = self.grid.frequencies(band)
            dataset.attrs["band"] = band.name
            dataset.attrs["kind"] = band.kind
            dataset.attrs["octave"] = band.octave
            dataset.attrs["lower_hz"] = band.lower
            dataset.attrs["upper_hz"] = band.upper
            dataset.attrs["frequencies_hz"] = frequencies
            dataset.attrs["bin_indices"] = np.asarray(band.bins, dtype=np.int64)
            dataset.attrs["hop_samples"] = band.hop
            dataset.attrs["hop_seconds"] = band.hop / self.grid.sample_rate
            dataset.attrs["frames"] = frames

    def write(self, first_unit: int, stop_unit: int, arrays: Sequence[np.ndarray]) -> None:
        """Write the frames of hop units ``first_unit:stop_unit`` of every band.

        Parameters
        ----------
        first_unit, stop_unit : int
        arrays : sequence of ndarray
            One per band in the grid's order, shape ``(channels, n_bins, frames_in_range)``.
        """
        for band, values in zip(self.grid.bands, arrays):
            per_unit = self.grid.hop_unit // band.hop
            self._file[dataset_name(band)][:, :, first_unit * per_unit : stop_unit * per_unit] = values
        self._written += stop_unit - first_unit

    def set_source(self, **facts: object) -> None:
        """Record more facts about the source (e.g. its checksum, known only at the end)."""
        for key, value in facts.items():
            if value is not None:
                self._file.attrs[f"source_{key}"] = value

    def _abort(self, error: BaseException) -> None:
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
            self._file = None
        if self._context is not None:
            context, self._context = self._context, None
            with contextlib.suppress(BaseException):
                context.__exit__(type(error), error, error.__traceback__)

    def __exit__(self, kind, error, traceback) -> None:
        if error is None and self._written != self.length // self.grid.hop_unit:
            error = FormatError(
                f"{self.path}: internal: {self._written} of "
                f"{self.length // self.grid.hop_unit} hop units written"
            )
            self._abort(error)
            raise error
        if error is not None:
            self._abort(error)
            return
        self._file.close()
        self._file = None
        context, self._context = self._context, None
        context.__exit__(None, None, None)


def save(
    representation: Representation,
    path: str | os.PathLike,
    *,
    compression: str = DEFAULT_COMPRESSION,
) -> Path:
    """Write a complete ``representation`` to ``path`` (atomically).

    Parameters
    ----------
    representation : Representation
    path : path-like
    compression : {"gzip", "lzf", "none"}

    Returns
    -------
    Path
    """
    if not representation.complete:
        raise ParameterError("only a complete representation can be saved")
    grid = representation.grid
    with Writer(
        path,
        grid,
        representation.n_samples,
        representation.n_channels,
        dtype=representation.dtype,
        length=representation.length,
        compression=compression,
        source=representation.source,
    ) as writer:
        writer.write(0, representation.length // grid.hop_unit,
                     [representation[name] for name in representation.names])
    return Path(path)


def _fail(path: Path, reason: str) -> FormatError:
    return FormatError(f"{path}: {reason}")


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise _fail(path, "no such file")
    if path.is_dir():
        raise _fail(path, "is a folder, not an msfreq file")
    try:
        if not h5py.is_hdf5(path):
            raise _fail(path, "not an HDF5 file")
        return h5py.File(path, "r")
    except FormatError:
        raise
    except OSError as error:
        raise _fail(path, f"cannot open as HDF5 ({error})") from None


def _header(path: Path, handle: h5py.File) -> Header:
    attrs = handle.attrs
    if attrs.get("format") != FORMAT_MARKER:
        raise _fail(path, "not an msfreq file (no format marker 'msfreq')")
    version = attrs.get("format_version")
    if not isinstance(version, (int, np.integer)):
        raise _fail(path, f"format_version is missing or not an integer ({version!r})")
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"written in format version {int(version)} by a newer msfreq; this msfreq "
            f"reads up to version {FORMAT_VERSION} (upgrade msfreq)",
        )
    missing = [name for name in _REQUIRED_ROOT if name not in attrs]
    if missing:
        raise _fail(path, f"missing root attribute(s) {', '.join(missing)}")
    try:
        params = TransformParams(
            bins_per_octave=int(attrs["bins_per_octave"]),
            fmin=float(attrs["fmin"]),
            tuning=float(attrs["tuning"]),
            n_octaves=int(attrs["n_octaves"]),
        )
        grid = make_grid(int(attrs["sample_rate"]), params)
        dtype = resolve_dtype(str(attrs["dtype"]))
    except ParameterError as error:
        raise _fail(path, f"invalid transform parameters ({error})") from None
    n_samples = int(attrs["n_samples"])
    n_channels = int(attrs["n_channels"])
    length = int(attrs["length"])
    if int(attrs["hop_unit"]) != grid.hop_unit:
        raise _fail(path, f"hop_unit {int(attrs['hop_unit'])} does not match the grid ({grid.hop_unit})")
    if n_samples < 1 or n_channels < 1 or length < n_samples or length % grid.hop_unit:
        raise _fail(
            path, f"inconsistent sizes (n_samples={n_samples}, n_channels={n_channels}, length={length})"
        )
    real = np.finfo(dtype).dtype
    for band in grid.bands:
        name = dataset_name(band)
        if name not in handle:
            raise _fail(path, f"missing dataset {name} ({band.name})")
        dataset = handle[name]
        if not isinstance(dataset, h5py.Dataset):
            raise _fail(path, f"{name} is not a dataset")
        expected = (n_channels, band.n_bins, length // band.hop)
        if dataset.shape != expected:
            raise _fail(path, f"dataset {name} has shape {dataset.shape}, expected {expected}")
        expected_dtype = real if band.kind == "residual" else dtype
        if dataset.dtype != expected_dtype:
            raise _fail(path, f"dataset {name} has dtype {dataset.dtype}, expected {expected_dtype}")
    source = {
        key[len("source_"):]: _plain(value) for key, value in attrs.items() if key.startswith("source_")
    }
    return Header(
        path=path,
        grid=grid,
        n_samples=n_samples,
        n_channels=n_channels,
        length=length,
        dtype=dtype,
        compression=str(attrs.get("compression", "unknown")),
        format_version=int(version),
        msfreq_version=str(attrs.get("msfreq_version", "unknown")),
        source=source,
    )


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def read_header(path: str | os.PathLike) -> Header:
    """Return the validated :class:`Header` of the msfreq file at ``path``.

    Raises
    ------
    FormatError
        If the file is missing, not HDF5, not msfreq's, of a newer format version, or lacks
        an attribute or dataset, or one has the wrong shape.
    """
    path = Path(path)
    with _open(path) as handle:
        return _header(path, handle)


class Reader:
    """An open, validated msfreq file; use :func:`open_reader` as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = _open(path)
        self._datasets: dict[str, h5py.Dataset] = {}
        try:
            self.header = _header(path, self._file)
        except BaseException:
            self._file.close()
            raise

    def close(self) -> None:
        """Close the file."""
        self._datasets.clear()
        self._file.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def dataset(self, band: Band) -> h5py.Dataset:
        """Return the HDF5 dataset of ``band`` (opened once, then reused)."""
        dataset = self._datasets.get(band.name)
        if dataset is None:
            dataset = self._datasets[band.name] = self._file[dataset_name(band)]
        return dataset

    def read(self, band: Band, first: int, stop: int, channels: Sequence[int] | None = None) -> np.ndarray:
        """Return frames ``first:stop`` of ``band``, shape (channels, n_bins, stop - first).

        Raises
        ------
        FormatError
            If a chunk fails its checksum or cannot be decompressed.
        """
        dataset = self.dataset(band)
        try:
            if channels is None:
                return dataset[:, :, first:stop]
            picked = list(channels)
            if picked == list(range(picked[0], picked[-1] + 1)):
                return dataset[picked[0] : picked[-1] + 1, :, first:stop]
            return dataset[:, :, first:stop][picked]
        except OSError as error:
            raise _fail(
                self.path, f"corrupted data in {dataset_name(band)} frames {first}:{stop} ({error})"
            ) from None

    def load(
        self,
        *,
        start: float | None = None,
        stop: float | None = None,
        octaves: object = None,
        channels: object = None,
    ) -> Representation:
        """Read the whole file or part of it, as :func:`load` does, from this open reader."""
        header = self.header
        bands = select_bands(header.grid, octaves)
        picked = select_channels(header.n_channels, channels)
        if start is None and stop is None:
            low, high = 0, header.length
        else:
            low, high = time_range(header, bands, start, stop)
        return self.load_samples(low, high, bands, picked)

    def load_samples(
        self, low: int, high: int, bands: Sequence[Band], channels: Sequence[int] | None
    ) -> Representation:
        """Read the frames of samples ``low:high`` (multiples of every band's hop) of ``bands``."""
        header = self.header
        arrays = {band.name: self.read(band, low // band.hop, high // band.hop, channels) for band in bands}
        return Representation(
            arrays,
            grid=header.grid,
            n_samples=header.n_samples,
            offset=low,
            length=header.length,
            channels=channels,
            n_channels=header.n_channels,
            source=header.source,
        )


def open_reader(path: str | os.PathLike) -> Reader:
    """Open and validate the msfreq file at ``path`` for reading frames."""
    return Reader(Path(path))


def select_bands(grid: Grid, octaves: object) -> list[Band]:
    """Return the bands that ``octaves`` names (octave numbers and/or band names), in order."""
    if octaves is None:
        return list(grid.bands)
    wanted = [octaves] if isinstance(octaves, (int, np.integer, str)) else list(octaves)  # type: ignore[arg-type]
    by_octave = {band.octave: band for band in grid.octaves}
    by_name = {band.name: band for band in grid.bands}
    chosen = []
    for item in wanted:
        if isinstance(item, str) and item in by_name:
            chosen.append(by_name[item])
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool) and int(item) in by_octave:
            chosen.append(by_octave[int(item)])
        else:
            raise ParameterError(
                f"octaves must name octaves 0..{grid.n_octaves - 1} or bands {list(by_name)}, "
                f"got {item!r}"
            )
    if not chosen:
        raise ParameterError("octaves must select at least one band")
    return sorted(set(chosen), key=grid.bands.index)


def select_channels(n_channels: int, channels: object) -> list[int] | None:
    """Return the channel indices that ``channels`` names (None: all)."""
    if channels is None:
        return None
    wanted = [channels] if isinstance(channels, (int, np.integer)) else list(channels)  # type: ignore[arg-type]
    picked = []
    for item in wanted:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or not 0 <= item < n_channels:
            raise ParameterError(f"channels must be in 0..{n_channels - 1}, got {item!r}")
        picked.append(int(item))
    if not picked:
        raise ParameterError("channels must select at least one channel")
    return picked


def time_range(
    header: Header, bands: Iterable[Band], start: float | None, stop: float | None
) -> tuple[int, int]:
    """Return the sample range ``[first, last)`` that :func:`load` reads for ``start``/``stop``.

    The range is widened outwards to whole frames of the coarsest band selected, so every
    band's frames cover exactly the same samples.
    """
    step = max(band.hop for band in bands)
    rate = header.grid.sample_rate
    end = header.length
    first = 0 if start is None else float(start)
    if np.isfinite(first) and first * rate >= end:
        raise ParameterError(
            f"start={start!r} s is beyond the end of the file ({end / rate:.3f} s)"
        )
    last = max(header.n_samples / rate, first + 1.0 / rate) if stop is None else float(stop)
    if not (np.isfinite(first) and np.isfinite(last)) or first < 0 or last <= first:
        raise ParameterError(
            f"start and stop must satisfy 0 <= start < stop, got start={start!r}, stop={stop!r}"
        )
    low = int(np.floor(first * rate / step)) * step
    high = min(int(np.ceil(last * rate / step)) * step, end)
    if stop is None:
        high = end
    return low, max(high, low + step)


def load(
    path: str | os.PathLike,
    *,
    start: float | None = None,
    stop: float | None = None,
    octaves: object = None,
    channels: object = None,
) -> Representation:
    """Read an msfreq file, or part of it.

    Parameters
    ----------
    path : path-like
    start, stop : float, optional
        Time range in seconds.  The range read is widened to whole frames of the coarsest
        band selected (the lowest octave unless ``octaves`` says otherwise), so every band
        covers the same samples; only the chunks of that range are read.
    octaves : int, str or sequence, optional
        Octave numbers and/or band names (``"residual_low"``, ``"octave_03"``, ...); default
        every band.
    channels : int or sequence of int, optional
        Source channels; default all.

    Returns
    -------
    Representation
        Partial unless everything was asked for; its ``offset`` says where it starts.

    Raises
    ------
    FormatError
        If the file is not a valid msfreq file or a chunk read is corrupted.
    ParameterError
        If the selection is out of range.
    """
    with open_reader(path) as reader:
        return reader.load(start=start, stop=stop, octaves=octaves, channels=channels)


def verify(path: str | os.PathLike) -> Header:
    """Read every chunk of the file at ``path`` to check its checksums; return its header.

    Raises
    ------
    FormatError
        On the first problem found.
    """
    with open_reader(path) as reader:
        for band in reader.header.grid.bands:
            frames = reader.header.length // band.hop
            dataset = reader.dataset(band)
            step = dataset.chunks[2] * 16
            for first in range(0, frames, step):
                reader.read(band, first, min(first + step, frames))
        return reader.header
