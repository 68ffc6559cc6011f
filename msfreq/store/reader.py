"""Reading msfreq files that may be hostile: validate everything before reading data.

A file is accepted only if it is what msfreq writes: every dataset a hard link at its fixed
path, stored inside the file (chunked, no external storage, not virtual), with the expected
dtype, shape, chunk shape, filters and fill value, every chunk present and inside the file;
root and dataset attributes of the expected types and ranges, and (version 2) a header
checksum that matches.  Anything else is a :class:`~msfreq.errors.FormatError` naming the file
and the reason, raised before any coefficient is read.  Coefficients read are checked too: a
non-finite value or a fill value is refused, never returned.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np

from msfreq.errors import FormatError, MsfreqError, ParameterError
from msfreq.params import DTYPES, MAX_SAMPLE_RATE, MAX_SPAN, TransformParams, is_integer
from msfreq.quantize import FILL_CODE
from msfreq.representation import Representation
from msfreq.scales import Band, make_grid
from msfreq.store.layout import (
    CORRECTIONS,
    FILL_LEVEL,
    FORMAT_MARKER,
    READABLE_VERSIONS,
    ROOT_GROUPS,
    Header,
    Storage,
    chunk_shape,
    corrections_chunks,
    dataset_name,
    decode_text,
    filter_ids,
    header_checksum,
)
from msfreq.store.select import select_bands, select_channels, time_range
from msfreq.transform import transform_units

__all__ = ["Reader", "open_reader", "read_header", "peek", "load", "verify"]

#: Bounds on header values, far beyond any real audio, that keep arithmetic on them sane.
_MAX_CHANNELS = 4096
_MAX_SAMPLES = 2**48
#: A chunk may grow this much (plus a little) when a codec cannot compress it.
_GROWTH = 1.1


def _fail(path: Path, reason: str) -> FormatError:
    return FormatError(f"{path}: {reason}")


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise _fail(path, "no such file")
    if path.is_dir():
        raise _fail(path, "is a folder, not an msfreq file")
    if not path.is_file():
        raise _fail(path, "is not a regular file")
    try:
        if not h5py.is_hdf5(path):
            raise _fail(path, "not an HDF5 file")
        return h5py.File(path, "r")
    except FormatError:
        raise
    except (OSError, RuntimeError, ValueError) as error:
        raise _fail(path, f"cannot open as HDF5 ({_reason(error)})") from None


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


#: No attribute msfreq writes is near this size; a larger one is refused unread.
_MAX_ATTRIBUTE_BYTES = 1 << 16


class _Snapshot:
    """The attributes of one HDF5 object, each read once: ``values`` by name, and ``kinds``,
    the numpy kind of each one's type (``"O"``: variable length, kept in the global heap).

    Raises
    ------
    FormatError
        For an attribute larger than any msfreq writes (it is not read).
    """

    def __init__(self, path: Path, attrs: h5py.AttributeManager, where: str) -> None:
        self.values: dict[str, object] = {}
        self.kinds: dict[str, str] = {}
        for name in attrs:
            identifier = attrs.get_id(name)
            if identifier.get_storage_size() > _MAX_ATTRIBUTE_BYTES:
                raise _fail(path, f"{where}attribute {name} is {identifier.get_storage_size()} bytes, "
                                  "larger than any msfreq writes")
            self.kinds[name] = identifier.dtype.kind
            self.values[name] = attrs[name]


class _Attributes:
    """Typed access to a snapshot of HDF5 attributes, each failure a FormatError."""

    def __init__(self, path: Path, attrs: _Snapshot, where: str, strict: bool) -> None:
        self.path, self.attrs, self.where, self.strict = path, attrs, where, strict

    def _get(self, name: str) -> object:
        if name not in self.attrs.values:
            raise _fail(self.path, f"{self.where}attribute {name} is missing")
        if self.strict and self.attrs.kinds[name] == "O":  # variable length: in the global heap
            raise _fail(self.path, f"{self.where}attribute {name} has a variable-length type")
        return self.attrs.values[name]

    def integer(self, name: str, low: int, high: int) -> int:
        value = self._get(name)
        if not is_integer(value):
            raise _fail(self.path, f"{self.where}attribute {name} must be an integer, got {value!r:.60}")
        if not low <= int(value) <= high:
            raise _fail(self.path, f"{self.where}attribute {name} = {int(value)} is outside {low}..{high}")
        return int(value)

    def number(self, name: str) -> float:
        value = self._get(name)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise _fail(self.path, f"{self.where}attribute {name} must be a number, got {value!r:.60}")
        number = float(value)
        if not (math.isfinite(number) and number > 0):
            raise _fail(self.path, f"{self.where}attribute {name} must be a finite number > 0, got {number!r}")
        return number

    def text(self, name: str, choices: Sequence[str] | None = None) -> str:
        value = self._get(name)
        if not isinstance(value, (str, bytes, np.bytes_)):
            raise _fail(self.path, f"{self.where}attribute {name} must be a string, got {value!r:.60}")
        text = decode_text(value)
        if choices is not None and text not in choices:
            raise _fail(self.path, f"{self.where}attribute {name} = {text!r:.60} is not one of {list(choices)}")
        return text


def _source(path: Path, attrs: _Snapshot, strict: bool) -> dict:
    source = {}
    for key, value in attrs.values.items():
        if not key.startswith("source_"):
            continue
        if strict and attrs.kinds[key] == "O":
            raise _fail(path, f"attribute {key} has a variable-length type")
        if isinstance(value, (bytes, np.bytes_, str)):
            value = decode_text(value)
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            raise _fail(path, f"attribute {key} must be a single value")
        source[key[len("source_"):]] = value
    return source


def _check_link(path: Path, handle: h5py.File, name: str) -> None:
    parts = name.split("/")
    group = handle
    for depth, part in enumerate(parts):
        link = group.get(part, getlink=True)
        where = "/".join(parts[: depth + 1])
        if link is None:
            raise _fail(path, f"missing {where}")
        if not isinstance(link, h5py.HardLink):
            raise _fail(path, f"{where} is a {type(link).__name__}, not an object stored in the file")
        group = group[part]


def _open_datasets(path: Path, handle: h5py.File, grid) -> list[tuple[h5py.Dataset, _Snapshot]]:
    """Every band's dataset (a hard link at its fixed path) and its attributes, in band order."""
    opened = []
    for band in grid.bands:
        name = dataset_name(band)
        _check_link(path, handle, name)
        dataset = handle[name]
        if not isinstance(dataset, h5py.Dataset):
            raise _fail(path, f"{name} is not a dataset")
        opened.append((dataset, _Snapshot(path, dataset.attrs, f"dataset {name}: ")))
    return opened


def _check_dataset(path: Path, dataset: h5py.Dataset, header: Header, index: int, band: Band,
                   file_size: int) -> None:
    storage = header.storage
    shape = storage.stored_shape(band, header.n_channels, band.frames(header.length))
    dtype = storage.stored_dtype(band)
    chunks = chunk_shape(shape, dtype, all_channels=header.format_version < 2)
    fill = FILL_LEVEL if dtype.kind == "i" else None
    _check_storage(path, dataset, dataset_name(band), header, shape, dtype, chunks, fill, file_size)


def _check_storage(path: Path, dataset: h5py.Dataset, name: str, header: Header, shape: tuple,
                   dtype: np.dtype, chunks: tuple, fill: int | None, file_size: int) -> None:
    """The dataset ``name`` has this shape, dtype and chunks, the file's filters, a fill value
    that cannot pass for data (``fill``, or NaN where None), and every chunk inside the file."""
    if dataset.shape != shape:
        raise _fail(path, f"dataset {name} has shape {dataset.shape}, expected {shape}")
    if dataset.dtype != dtype:
        raise _fail(path, f"dataset {name} has dtype {dataset.dtype}, expected {dtype}")
    try:
        plist = dataset.id.get_create_plist()
        layout = plist.get_layout()
        externals = plist.get_external_count()
        pipeline = tuple(plist.get_filter(i)[0] for i in range(plist.get_nfilters()))
        virtual = dataset.is_virtual
    except (OSError, RuntimeError, ValueError) as error:
        raise _fail(path, f"dataset {name}: unreadable storage description ({_reason(error)})") from None
    if virtual or layout == h5py.h5d.VIRTUAL:
        raise _fail(path, f"dataset {name} is virtual (its data would come from other files)")
    if externals:
        raise _fail(path, f"dataset {name} uses external storage (data outside this file)")
    if layout != h5py.h5d.CHUNKED:
        raise _fail(path, f"dataset {name} is not chunked")
    expected_pipeline = filter_ids(header.compression)
    if pipeline != expected_pipeline:
        raise _fail(path, f"dataset {name} has filters {list(pipeline)}, expected {list(expected_pipeline)} "
                          f"for {header.compression}")
    if dataset.chunks != chunks:
        raise _fail(path, f"dataset {name} has chunks {dataset.chunks}, expected {chunks}")
    if header.format_version >= 2:
        value = dataset.fillvalue
        unmistakable = bool(np.all(np.isnan(value))) if fill is None else value == fill
        if not unmistakable:
            raise _fail(path, f"dataset {name} has fill value {value!r}, not the format's marker")
    _check_chunks(path, dataset, name, shape, chunks, dtype, file_size)


def _check_chunks(path: Path, dataset: h5py.Dataset, name: str, shape: tuple, chunks: tuple,
                  dtype: np.dtype, file_size: int) -> None:
    """Every chunk present, each stored inside the file and not larger than it could be."""
    expected = int(np.prod([-(-size // step) for size, step in zip(shape, chunks, strict=True)]))
    limit = int(np.prod(chunks)) * dtype.itemsize * _GROWTH + 4096
    # the time axis: samples of the correction codes (channels, samples), else frames
    axis, unit = (1, "sample") if len(shape) == 2 else (2, "frame")
    seen = 0
    problems: list[str] = []

    def check(info) -> None:
        nonlocal seen
        seen += 1
        where = "a chunk" if info.chunk_offset is None else f"the chunk at {unit} {info.chunk_offset[axis]}"
        if info.byte_offset is None or info.size is None:
            problems.append(f"{where} is missing (its index entry is undefined)")
        elif info.byte_offset + info.size > file_size:
            problems.append(f"{where} lies outside the file")
        elif info.size > limit:
            problems.append(f"{where} is {info.size} bytes, more than a chunk can need ({int(limit)})")
        elif info.filter_mask:
            problems.append(f"{where} skips filters")

    try:
        count = dataset.id.get_num_chunks()
        if count != expected:
            raise _fail(path, f"dataset {name} holds {count} of its {expected} chunks "
                              "(missing data would read as fill values)")
        dataset.id.chunk_iter(check)
    except FormatError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError) as error:
        raise _fail(path, f"dataset {name}: damaged chunk index ({_reason(error)})") from None
    if problems:
        raise _fail(path, f"dataset {name}: {problems[0]}")
    if seen != expected:
        raise _fail(path, f"dataset {name} lists {seen} of its {expected} chunks")


def _header(path: Path, handle: h5py.File) -> Header:
    marker = None
    if "format" in handle.attrs and handle.attrs.get_id("format").get_storage_size() <= _MAX_ATTRIBUTE_BYTES:
        marker = handle.attrs["format"]
    if not isinstance(marker, (bytes, np.bytes_, str)) or decode_text(marker) != FORMAT_MARKER:
        raise _fail(path, "not an msfreq file (no format marker 'msfreq')")
    attrs = _Snapshot(path, handle.attrs, "")
    loose = _Attributes(path, attrs, "", strict=False)
    version = loose.integer("format_version", -2**62, 2**62)
    if version > max(READABLE_VERSIONS):
        raise _fail(path, f"written in format version {version} by a newer msfreq; this msfreq "
                          f"reads up to version {max(READABLE_VERSIONS)} (upgrade msfreq)")
    if version not in READABLE_VERSIONS:
        raise _fail(path, f"format_version {version} is not a valid version")
    strict = version >= 2
    get = _Attributes(path, attrs, "", strict=strict)
    rate = get.integer("sample_rate", 1, MAX_SAMPLE_RATE)
    n_samples = get.integer("n_samples", 1, _MAX_SAMPLES)
    n_channels = get.integer("n_channels", 1, _MAX_CHANNELS)
    length = get.integer("length", 1, 2 * _MAX_SAMPLES)
    try:
        params = TransformParams(
            bins_per_octave=get.integer("bins_per_octave", 1, 1024),
            fmin=get.number("fmin"),
            tuning=get.number("tuning"),
            n_octaves=get.integer("n_octaves", 1, 64),
            oversampling=get.integer("oversampling", 1, 64) if strict else 1,
            span=get.integer("span", 2, MAX_SPAN) if "span" in attrs.values else 1,
        )
        grid = make_grid(rate, params)
    except ParameterError as error:
        raise _fail(path, f"invalid transform parameters ({error})") from None
    if params.span > 1 and version < 3:
        raise _fail(path, f"span {params.span} in a version-{version} file (spans came with version 3)")
    if "first_bin" in attrs.values and get.integer("first_bin", -2**40, 2**40) != grid.first_bin:
        raise _fail(path, f"first_bin {attrs.values['first_bin']} does not match the grid ({grid.first_bin})")
    dtype = np.dtype(get.text("dtype", DTYPES))
    hop_unit = get.integer("hop_unit", 1, 2**40)
    if hop_unit != grid.hop_unit:
        raise _fail(path, f"hop_unit {hop_unit} does not match the grid ({grid.hop_unit})")
    if length != transform_units(n_samples, grid) * grid.hop_unit:
        raise _fail(path, f"length {length} does not match n_samples {n_samples} "
                          f"(expected {transform_units(n_samples, grid) * grid.hop_unit})")
    compressions = (("zstd", "gzip", "none") + (("lz4",) if version >= 3 else ())) if strict \
        else ("gzip", "lzf", "none")
    compression = get.text("compression", compressions)
    for group in ROOT_GROUPS:
        _check_link(path, handle, group)
    datasets = _open_datasets(path, handle, grid)
    exact = None
    if strict:
        form = get.text("storage", ("float", "levels"))
        magnitudes = get.text("content", ("coefficients", "magnitudes")) == "magnitudes"
        if magnitudes and form != "float":
            raise _fail(path, "a magnitude file must have float storage")
        keep_bits = get.integer("keep_bits", -1, np.finfo(dtype).nmant)
        exact_flag = get.integer("exact", -1, 1)
        exact = None if exact_flag < 0 else bool(exact_flag)
        if keep_bits == 0 or (form == "levels" and keep_bits != -1):
            raise _fail(path, f"keep_bits {keep_bits} does not fit storage {form!r}")
        steps = _steps(path, grid, datasets) if form == "levels" else None
        # what makes a file version 4: correction codes (which a version-3 reader would ignore);
        # a version-5 file has them or not (rounded samples stored with finer steps, or floats)
        corrected = "corrections" in attrs.values or version == 4
        correction_bits = get.integer("corrections", 1, 32) if corrected else None
        if corrected:
            if version < 4:
                raise _fail(path, f"correction codes in a version-{version} file (they came with "
                                  "version 4)")
            if steps is None:
                raise _fail(path, f"correction codes with storage {form!r} (they need levels)")
        storage = Storage(dtype=dtype, steps=steps, keep_bits=None if keep_bits < 0 else keep_bits,
                          magnitudes=magnitudes, correction_bits=correction_bits)
    else:
        storage = Storage(dtype=dtype)
    if "source_grid_bits" in attrs.values or (version == 3 and compression != "lz4"
                                              and params.span == 1):
        # what makes a file version 3: the grid its decode rounds to (or lz4, or a span)
        get.integer("source_grid_bits", 1, 32)
    if "source_rounded_bits" in attrs.values or version >= 5:
        # what makes a file version 5: samples rounded to a grid before they were encoded
        if version < 5:
            raise _fail(path, f"rounded samples in a version-{version} file (they came with "
                              "version 5)")
        rounded = get.integer("source_rounded_bits", 1, 32)
        if "source_grid_bits" in attrs.values and get.integer("source_grid_bits", 1, 32) > rounded:
            raise _fail(path, f"source_grid_bits {attrs.values['source_grid_bits']} is finer "
                              f"than the grid the samples were rounded to ({rounded})")
        get.text("source_rounded_sha256")
        if "source_rounding_snr_db" in attrs.values:
            snr = attrs.values["source_rounding_snr_db"]
            if not isinstance(snr, (float, np.floating)) or not math.isfinite(snr):
                raise _fail(path, f"attribute source_rounding_snr_db must be a finite number, "
                                  f"got {snr!r:.60}")
    header = Header(
        path=path, grid=grid, n_samples=n_samples, n_channels=n_channels, length=length,
        storage=storage, compression=compression, format_version=version,
        msfreq_version=decode_text(attrs.values.get("msfreq_version", "unknown")) if not strict
        else get.text("msfreq_version"),
        exact=exact, source=_source(path, attrs, strict),
    )
    file_size = os.path.getsize(path)
    for index, (band, (dataset, _)) in enumerate(zip(grid.bands, datasets, strict=True)):
        _check_dataset(path, dataset, header, index, band, file_size)
    if storage.corrected:
        _check_link(path, handle, CORRECTIONS)
        codes = handle[CORRECTIONS]
        if not isinstance(codes, h5py.Dataset):
            raise _fail(path, f"{CORRECTIONS} is not a dataset")
        _check_storage(path, codes, CORRECTIONS, header, (n_channels, n_samples), np.dtype(np.int8),
                       corrections_chunks(n_samples), FILL_CODE, file_size)
    if strict:
        _check_header_checksum(path, attrs, grid, datasets)
    return header


def _steps(path: Path, grid, datasets: list[tuple[h5py.Dataset, _Snapshot]]) -> tuple[float, ...]:
    steps = []
    for band, (_, attrs) in zip(grid.bands, datasets, strict=True):
        name = dataset_name(band)
        step = _Attributes(path, attrs, f"dataset {name}: ", True).number("step")
        if step != 2.0 ** round(math.log2(step)) or not 2.0**-80 <= step <= 1.0:
            raise _fail(path, f"dataset {name}: step {step!r} is not a power of two in 2^-80..1")
        steps.append(step)
    return tuple(steps)


def _check_header_checksum(path: Path, attrs: _Snapshot, grid,
                           datasets: list[tuple[h5py.Dataset, _Snapshot]]) -> None:
    recorded = _Attributes(path, attrs, "", True).text("header_sha256")
    root = {name: value for name, value in attrs.values.items() if name != "header_sha256"}
    described = []
    for band, (_, band_attrs) in zip(grid.bands, datasets, strict=True):
        name = dataset_name(band)
        for key, kind in band_attrs.kinds.items():
            if kind == "O":
                raise _fail(path, f"dataset {name}: attribute {key} has a variable-length type")
        described.append((name, band_attrs.values))
    if header_checksum(root, described) != recorded:
        raise _fail(path, "header checksum mismatch: the attributes were changed or damaged")


def _guarded(path: Path, action: Callable[[], object]) -> object:
    """Run ``action``; turn whatever the HDF5 library raises into a FormatError."""
    try:
        return action()
    except MsfreqError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, OverflowError, UnicodeDecodeError) as error:
        # HDF5's own reports (h5py raises them as OSError, KeyError or RuntimeError) speak for
        # themselves; a malformed value is named by its Python error
        reason = _reason(error).strip("'\"")
        if not isinstance(error, (OSError, KeyError, RuntimeError)):
            reason = f"{type(error).__name__}: {reason}"
        raise _fail(path, f"damaged file ({reason})") from None


def peek(path: str | os.PathLike, names: Sequence[str]) -> dict[str, object]:
    """Return those of the root attributes ``names`` that the file at ``path`` has, unvalidated
    (strings decoded): for decisions that do not trust them, such as naming an output before
    the job that validates the file runs.  Any problem gives an empty or partial dict."""
    path = Path(path)
    found: dict[str, object] = {}
    with contextlib.suppress(Exception), _open(path) as handle:
        for name in names:
            if name in handle.attrs and handle.attrs.get_id(name).get_storage_size() <= _MAX_ATTRIBUTE_BYTES:
                value = handle.attrs[name]
                found[name] = decode_text(value) if isinstance(value, (bytes, np.bytes_)) else value
    return found


def read_header(path: str | os.PathLike) -> Header:
    """Return the validated :class:`Header` of the msfreq file at ``path``.

    Reads attributes and the storage description only, never coefficients.

    Raises
    ------
    FormatError
        If the file is missing, not HDF5, not msfreq's, of a newer format version, damaged,
        or differs in any way from what msfreq writes.

    Examples
    --------
    >>> import numpy as np, msfreq, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "silence.h5"
    >>> _ = msfreq.save(msfreq.encode(np.zeros((4000, 2)), 8000), path)
    >>> header = msfreq.read_header(path)
    >>> header.n_channels, header.duration, header.format_version
    (2, 0.5, 3)
    """
    path = Path(path)
    with _open(path) as handle:
        return _guarded(path, lambda: _header(path, handle))


class Reader:
    """An open, validated msfreq file; use :func:`open_reader` as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = _open(path)
        self._datasets: dict[str, h5py.Dataset] = {}
        try:
            self.header = _guarded(path, lambda: _header(path, self._file))
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

    def __repr__(self) -> str:
        return f"Reader({self.header!r})"

    def dataset(self, band: Band) -> h5py.Dataset:
        """Return the HDF5 dataset of ``band`` (opened once, then reused)."""
        dataset = self._datasets.get(band.name)
        if dataset is None:
            dataset = self._datasets[band.name] = self._file[dataset_name(band)]
        return dataset

    def stored_bytes(self, band: Band) -> int:
        """Bytes ``band``'s dataset takes in the file."""
        return int(_guarded(self.path, lambda: self.dataset(band).id.get_storage_size()))

    def corrections_bytes(self) -> int:
        """Bytes the correction codes take in the file (0: it has none)."""
        if not self.header.storage.corrected:
            return 0
        return int(_guarded(self.path, lambda: self._file[CORRECTIONS].id.get_storage_size()))

    def read(self, band: Band, first: int, stop: int, channels: Sequence[int] | None = None) -> np.ndarray:
        """Return the coefficients of frames ``first:stop`` of ``band``, shape
        (channels, n_bins, stop - first).

        Raises
        ------
        FormatError
            If a chunk fails its checksum or cannot be decompressed, or holds a value that
            cannot be a coefficient (non-finite, or the fill marker of a missing chunk).
        """
        dataset = self.dataset(band)
        where = f"{dataset_name(band)} frames {first}:{stop}"

        def fetch() -> np.ndarray:
            if channels is None:
                return dataset[:, :, first:stop]
            picked = list(channels)
            if picked == list(range(picked[0], picked[-1] + 1)):
                return dataset[picked[0] : picked[-1] + 1, :, first:stop]
            return dataset[:, :, first:stop][picked]

        try:
            stored = fetch()
        except (OSError, RuntimeError, ValueError, KeyError) as error:
            raise _fail(self.path, f"corrupted data in {where} ({_reason(error)})") from None
        if stored.dtype.kind == "i":
            if stored.size and int(stored.min()) == FILL_LEVEL:
                raise _fail(self.path, f"missing data in {where} (fill values)")
        elif not np.isfinite(stored).all():
            raise _fail(self.path, f"non-finite coefficients in {where}")
        index = self.header.grid.bands.index(band)
        return self.header.storage.from_stored(index, band, stored)

    def corrections(self, start: int, stop: int, channels: Sequence[int] | None = None) -> np.ndarray:
        """Return the correction codes of samples ``start:stop`` (clipped to the file's
        samples), shape (channels, samples), int8 (see
        :func:`msfreq.quantize.apply_corrections`).

        Raises
        ------
        FormatError
            If the file has no correction codes, a chunk fails its checksum, or a code is the
            fill marker of a missing chunk.
        """
        if not self.header.storage.corrected:
            raise _fail(self.path, "has no correction codes")
        stop = min(stop, self.header.n_samples)
        picked = list(range(self.header.n_channels)) if channels is None else list(channels)
        where = f"{CORRECTIONS} samples {start}:{stop}"
        try:
            dataset = self._file[CORRECTIONS]
            if picked == list(range(picked[0], picked[-1] + 1)):
                codes = dataset[picked[0] : picked[-1] + 1, start:stop]
            else:
                codes = dataset[:, start:stop][picked]
        except (OSError, RuntimeError, ValueError, KeyError) as error:
            raise _fail(self.path, f"corrupted data in {where} ({_reason(error)})") from None
        if codes.size and int(codes.min()) == FILL_CODE:
            raise _fail(self.path, f"missing data in {where} (fill values)")
        return codes

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
    """Open and validate the msfreq file at ``path`` for reading frames.

    Raises
    ------
    FormatError
        As :func:`read_header`.
    """
    return Reader(Path(path))


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
        covers the same samples; only the chunks of that range are read.  The result's
        ``start_seconds`` and ``stop_seconds`` say what it holds.
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

    Examples
    --------
    >>> import numpy as np, msfreq, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "noise.h5"
    >>> _ = msfreq.save(msfreq.encode(np.random.default_rng(1).standard_normal(80000), 8000), path)
    >>> crop = msfreq.load(path, start=3.0, stop=4.0)
    >>> crop.start_seconds <= 3.0 and crop.stop_seconds >= 4.0
    True
    """
    with open_reader(path) as reader:
        return reader.load(start=start, stop=stop, octaves=octaves, channels=channels)


def verify(path: str | os.PathLike) -> Header:
    """Read every chunk of the file at ``path`` to check its checksums and values; return
    its header.

    Raises
    ------
    FormatError
        On the first problem found.

    Examples
    --------
    >>> import numpy as np, msfreq, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "noise.h5"
    >>> _ = msfreq.save(msfreq.encode(np.ones(8000), 8000), path)
    >>> msfreq.verify(path).n_samples
    8000
    """
    with open_reader(path) as reader:
        for band in reader.header.grid.bands:
            frames = band.frames(reader.header.length)
            step = reader.dataset(band).chunks[2] * 16
            for first in range(0, frames, step):
                reader.read(band, first, min(first + step, frames))
        if reader.header.storage.corrected:
            n_samples = reader.header.n_samples
            step = corrections_chunks(n_samples)[1] * 16
            for first in range(0, n_samples, step):
                reader.corrections(first, first + step)
        return reader.header
