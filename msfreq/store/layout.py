"""What an msfreq file looks like: names, version, codecs, storage forms and the header.

The format is specified in ``docs/FORMAT.md``; the names, marker, version and filter choices
below are the only place they are defined, for the writer and the reader alike.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from msfreq.errors import ParameterError
from msfreq.params import COMPRESSIONS, is_integer
from msfreq.quantize import from_levels, round_mantissa, to_levels
from msfreq.scales import Band, Grid

__all__ = [
    "FORMAT_MARKER",
    "FORMAT_VERSION",
    "version_for",
    "MSFREQ_SUFFIX",
    "MSFREQ_SUFFIXES",
    "has_msfreq_suffix",
    "READABLE_VERSIONS",
    "CHUNK_BYTES",
    "SMALL_DATASET_BYTES",
    "LIBVER",
    "FILL_LEVEL",
    "ROOT_GROUPS",
    "CORRECTIONS",
    "Header",
    "Storage",
    "dataset_name",
    "chunk_frames",
    "chunk_shape",
    "corrections_chunks",
    "filters_for",
    "filter_ids",
    "header_checksum",
    "encode_text",
    "decode_text",
]

FORMAT_MARKER = "msfreq"
#: The suffix encode gives a file (appended to the source's own name).
MSFREQ_SUFFIX = ".h5"
#: File name endings taken as msfreq files when a folder is searched.
MSFREQ_SUFFIXES = frozenset({".h5", ".hdf5", ".msfreq"})
#: Version 2: metadata checksummed by HDF5 (file-format 1.10 objects), fixed-length string
#: attributes, a checksum over the header, integer storage of rounded coefficients, fill
#: values that cannot pass for data.  Version 1 files are still read.
#: Version 3 (only for files that need it; the rest stay version 2, which msfreq 0.2.0
#: reads): the source's samples lie on a coarser grid than their subtype's (a 24-bit file
#: of 16-bit content, a float file of 16-bit integers), recorded as ``source_grid_bits``,
#: and a decode rounds to that grid (a version-2 reader would not, and would call the file
#: damaged); the ``lz4`` compression; or windows of ``span > 1`` (root attribute ``span``).
#: Version-2 readers refuse version 3 as newer.
#: Version 4 (only for files that need it): coarser steps whose decode is made exact by a
#: correction code per sample (dataset ``corrections``; root attribute ``corrections``: the bits
#: of the grid the codes count on); a version-3 reader would ignore the codes, so it must
#: refuse such a file as newer.
#: Version 5 (only for files that need it): the samples were rounded to a grid when the file
#: was encoded (``--round-bits``; root attributes ``source_rounded_bits``,
#: ``source_rounded_sha256`` and ``source_rounding_snr_db``), and ``exact`` means that the file
#: decodes to the rounded samples; a version-4 reader would call such a decode the source's own,
#: so it must refuse the file as newer.
FORMAT_VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)
#: The dataset of correction codes (see :func:`msfreq.quantize.correction_codes`).
CORRECTIONS = "corrections"


def version_for(source: Mapping[str, object], compression: str, span: int = 1,
                corrected: bool = False) -> int:
    """The format version a file with these source facts, compression, window span and
    correction codes is written in: the lowest that reads it right (5 where ``rounded_bits``
    is recorded; 4 with correction codes; 3 where ``grid_bits`` is recorded, for ``lz4``, or
    for ``span > 1``; else 2)."""
    if source.get("rounded_bits") is not None:
        return 5
    if corrected:
        return 4
    newer = source.get("grid_bits") is not None or compression == "lz4" or span > 1
    return 3 if newer else 2
#: HDF5 object versions written: version-2 object headers, checksummed superblock and chunk
#: indexes (fixed arrays), readable by HDF5 1.10 and later.
LIBVER = ("v110", "v110")
#: Target size of one HDF5 chunk; chunks span all channels and bins of a band, and time.
#: 64 KiB: a random 2-second crop reads 1.5x faster than with 256 KiB chunks (less
#: over-read), for 0.6 % more bytes on disk (measured, gzip, 44.1 kHz stereo).
CHUNK_BYTES = 64 * 1024
#: gzip level 1: within 1 % of level 6 on coefficient data, at about twice the speed.
_GZIP_LEVEL = 1
#: zstd level inside the bitshuffle filter: level 3 wrote the levels of a 3-minute mix
#: 3.3 % smaller than level 1 at the same speed (0.53 s), level 9 6 % smaller in 1.8x the
#: time; reading is as fast at every level (measured, one thread).
_ZSTD_LEVEL = 3
#: Datasets up to this size (uncompressed) get zstd level 9, whichever of lz4 and zstd is
#: chosen: 2.5 % smaller on drum hits than level 3 (lz4: 13-20 % larger), and the time it costs
#: is a few milliseconds where the whole file takes a few hundred.
SMALL_DATASET_BYTES = 1 << 20
_ZSTD_LEVEL_SMALL = 9
#: Fill value of integer datasets: never written as data (levels stay within +-(2**31 - 1)).
FILL_LEVEL = np.iinfo(np.int32).min
ROOT_GROUPS = ("octaves", "residuals")

_SHUFFLE, _DEFLATE, _FLETCHER32, _LZF, _BITSHUFFLE = 2, 1, 3, 32000, 32008
#: HDF5 filter pipelines by compression name (in pipeline order); version 1 also wrote lzf.
_PIPELINES = {
    "zstd": (_BITSHUFFLE, _FLETCHER32),
    "lz4": (_BITSHUFFLE, _FLETCHER32),
    "gzip": (_SHUFFLE, _DEFLATE, _FLETCHER32),
    "lzf": (_SHUFFLE, _LZF, _FLETCHER32),
    "none": (_FLETCHER32,),
}


def has_msfreq_suffix(path: str | Path) -> bool:
    """Whether ``path`` ends in one of :data:`MSFREQ_SUFFIXES` (any case)."""
    return Path(path).suffix.lower() in MSFREQ_SUFFIXES


def dataset_name(band: Band) -> str:
    """Return the HDF5 path of ``band``: ``octaves/NN``, ``residuals/low`` or ``residuals/high``.

    Examples
    --------
    >>> from msfreq.params import TransformParams
    >>> from msfreq.scales import make_grid
    >>> [dataset_name(band) for band in make_grid(8000, TransformParams()).bands][:3]
    ['residuals/low', 'octaves/00', 'octaves/01']
    """
    if not band.is_residual:
        return f"octaves/{band.octave:02d}"
    return "residuals/low" if band.is_low_residual else "residuals/high"


def chunk_frames(frame_bytes: int, frames: int) -> int:
    """Frames per chunk: as many as fit in :data:`CHUNK_BYTES` (at least one, at most all)."""
    return int(max(1, min(frames, CHUNK_BYTES // max(frame_bytes, 1))))


def chunk_shape(shape: tuple[int, ...], dtype: np.dtype, *, all_channels: bool = False) -> tuple[int, ...]:
    """Chunk shape of a dataset of ``shape``: one channel (version 2; version 1 chunks held
    every channel), every bin, and as many frames as fit in :data:`CHUNK_BYTES`.  A channel
    per chunk lets long files be decoded one channel at a time, reading each chunk once."""
    channels = shape[0] if all_channels else 1
    frame_bytes = channels * int(np.prod(shape[1:2] + shape[3:])) * np.dtype(dtype).itemsize
    return (channels, shape[1], chunk_frames(frame_bytes, shape[2])) + tuple(shape[3:])


def corrections_chunks(n_samples: int) -> tuple[int, int]:
    """Chunk shape of the :data:`CORRECTIONS` dataset, shape (channels, n_samples) of int8:
    one channel and as many samples as fit in :data:`CHUNK_BYTES`."""
    return (1, chunk_frames(1, n_samples))


def filters_for(compression: str, nbytes: int | None = None) -> dict:
    """Return the h5py ``create_dataset`` keywords of the pipeline named ``compression``, for
    a dataset of ``nbytes`` uncompressed (with lz4 or zstd, a small one takes zstd at a higher
    level: see :data:`SMALL_DATASET_BYTES`)."""
    if compression not in COMPRESSIONS:
        raise ParameterError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if compression == "none":
        return {"fletcher32": True}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": _GZIP_LEVEL, "shuffle": True,
                "fletcher32": True}
    import hdf5plugin  # registers the filters with HDF5 (also done on import of msfreq.store)

    small = nbytes is not None and nbytes <= SMALL_DATASET_BYTES
    if small:  # lz4 too: a small dataset's bytes matter more than the milliseconds
        return {**hdf5plugin.Bitshuffle(cname="zstd", clevel=_ZSTD_LEVEL_SMALL), "fletcher32": True}
    if compression == "lz4":
        return {**hdf5plugin.Bitshuffle(cname="lz4"), "fletcher32": True}
    return {**hdf5plugin.Bitshuffle(cname="zstd", clevel=_ZSTD_LEVEL), "fletcher32": True}


def filter_ids(compression: str) -> tuple[int, ...] | None:
    """The HDF5 filter ids a dataset of ``compression`` has, in order (None: unknown name)."""
    return _PIPELINES.get(compression)


def encode_text(text: str) -> np.bytes_:
    """A string as a fixed-length HDF5 string attribute (UTF-8; undecodable file-name bytes
    kept as they were).  Fixed-length strings live in the object header, which HDF5
    checksums, not in the global heap, whose damage can hang the library."""
    return np.bytes_(text.encode("utf-8", "surrogateescape"))


def decode_text(value: object) -> str:
    """Inverse of :func:`encode_text` (also accepts version 1's variable-length strings)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


@dataclass(frozen=True)
class Storage:
    """How coefficients are stored: as floats, or as integer multiples of a step per band.

    Attributes
    ----------
    dtype : numpy dtype
        Complex dtype of the coefficients (complex64 or complex128).
    steps : tuple of float, or None
        Per band (in the grid's order), the power-of-two step of integer storage; None: the
        coefficients are stored as floats.
    keep_bits : int or None
        Float storage with mantissas rounded to this many bits (None: not rounded).
    magnitudes : bool
        The file holds magnitudes ``|c|`` (real, every band), not coefficients.
    correction_bits : int or None
        Levels whose decode is made exact by a correction code per sample (dataset
        :data:`CORRECTIONS`, version 4), counted in half levels of the grid of this many bits
        (a level is ``2 ** (1 - correction_bits)``); None: no codes.
    """

    dtype: np.dtype
    steps: tuple[float, ...] | None = None
    keep_bits: int | None = None
    magnitudes: bool = False
    correction_bits: int | None = None

    def __post_init__(self) -> None:
        if self.correction_bits is not None and self.steps is None:
            raise ParameterError("correction codes come only with integer levels (steps)")

    @property
    def corrected(self) -> bool:
        """Whether the file has correction codes."""
        return self.correction_bits is not None

    @property
    def content(self) -> str:
        """``"magnitudes"`` or ``"coefficients"``."""
        return "magnitudes" if self.magnitudes else "coefficients"

    @property
    def form(self) -> str:
        """``"levels"`` (integers) or ``"float"``."""
        return "float" if self.steps is None else "levels"

    @property
    def described(self) -> str:
        """The form in words: ``"levels"``, ``"levels + corrections"`` or ``"float"``."""
        return self.form + (" + corrections" if self.corrected else "")

    def stored_dtype(self, band: Band) -> np.dtype:
        """dtype of ``band``'s dataset."""
        if self.steps is not None:
            return np.dtype(np.int32)
        if self.magnitudes:
            return np.finfo(self.dtype).dtype
        return band.coefficient_dtype(self.dtype)

    def stored_shape(self, band: Band, n_channels: int, frames: int) -> tuple[int, ...]:
        """Shape of ``band``'s dataset: complex levels have a trailing axis (real, imaginary)."""
        shape = (n_channels, band.n_bins, frames)
        return shape + (2,) if self.steps is not None and not band.is_residual else shape

    def fill_value(self, band: Band) -> object:
        """A fill value no stored coefficient can have (NaN, or :data:`FILL_LEVEL`)."""
        if self.steps is not None:
            return FILL_LEVEL
        return np.array(np.nan, dtype=self.stored_dtype(band))[()]

    def to_stored(self, index: int, values: np.ndarray) -> np.ndarray | None:
        """Stored form of band ``index``'s coefficients (None if they do not fit integers)."""
        if self.steps is None:
            if self.keep_bits is None:
                return values
            return round_mantissa(np.array(values, copy=True), self.keep_bits)
        return to_levels(values, self.steps[index])

    def from_stored(self, index: int, band: Band, stored: np.ndarray) -> np.ndarray:
        """Coefficients of band ``index`` from their stored form."""
        if self.steps is None:
            return stored
        return from_levels(stored, self.steps[index], band.coefficient_dtype(self.dtype))


@dataclass(frozen=True)
class Header:
    """What an msfreq file says about itself, validated, without its data.

    Attributes
    ----------
    path : Path
    grid : Grid
    n_samples, n_channels, length : int
    storage : Storage
        Coefficient dtype and how the coefficients are stored.
    compression : str
    format_version : int
    msfreq_version : str
    exact : bool or None
        Whether the writer checked that the stored coefficients decode to exactly the source
        samples (or, version 5, those rounded: see :attr:`rounded_bits`) (True), found they do
        not (False), or did not check (None: version 1, or a source without integer samples).
    source : dict
        ``name``, ``format``, ``subtype``, ``sample_rate``, ``sha256``, ... of the source audio.

    Examples
    --------
    >>> import numpy as np, msfreq, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.h5"
    >>> _ = msfreq.save(msfreq.encode(np.zeros(8000), 8000), path)
    >>> msfreq.read_header(path)  # doctest: +ELLIPSIS
    Header(tone.h5: 1.000 s, 8000 Hz, 1 channel(s), 7 octaves x 48 bins, complex64 float, lz4, v3)
    """

    path: Path
    grid: Grid
    n_samples: int
    n_channels: int
    length: int
    storage: Storage
    compression: str
    format_version: int
    msfreq_version: str
    exact: bool | None
    source: dict = field(repr=False)

    @property
    def dtype(self) -> np.dtype:
        """Complex dtype of the octave coefficients."""
        return self.storage.dtype

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.n_samples / self.grid.sample_rate

    @property
    def rounded_bits(self) -> int | None:
        """The bits of the grid the samples were rounded to before they were encoded
        (``source_rounded_bits``, version 5: ``exact`` then refers to the rounded samples), or
        None."""
        bits = self.source.get("rounded_bits")
        return int(bits) if is_integer(bits) else None

    @property
    def decodes_to(self) -> str:
        """What an exact decode gives back, in words: the source samples, or those rounded."""
        bits = self.rounded_bits
        return "the source samples" + (f" rounded to {bits}-bit steps" if bits else "")

    def __repr__(self) -> str:
        return (
            f"Header({self.path.name}: {self.duration:.3f} s, {self.grid.sample_rate} Hz, "
            f"{self.n_channels} channel(s), {self.grid.n_octaves} octaves x "
            f"{self.grid.params.bins_per_octave} bins, "
            + ("magnitudes " if self.storage.magnitudes else "")
            + f"{self.storage.dtype.name} {self.storage.form}, {self.compression}, "
            f"v{self.format_version})"
        )


def _canonical(value: object) -> object:
    if isinstance(value, (bytes, np.bytes_)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, np.ndarray):
        return ["array", value.dtype.str, list(value.shape), value.tobytes().hex()]
    if isinstance(value, (bool, np.bool_)):
        return ["bool", bool(value)]
    if isinstance(value, (int, np.integer)):
        return ["int", int(value)]
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return ["float", number.hex() if math.isfinite(number) else repr(number)]
    return ["other", repr(value)]


def header_checksum(root: Mapping[str, object], datasets: Sequence[tuple[str, Mapping]]) -> str:
    """SHA-256 over the root attributes and every band dataset's attributes, as read back.

    Parameters
    ----------
    root : mapping
        Root attributes, without ``header_sha256``.
    datasets : sequence of (str, mapping)
        Dataset path and its attributes, for every band.
    """
    document = {
        "root": sorted([name, _canonical(value)] for name, value in root.items()),
        "datasets": [[path, sorted([name, _canonical(value)] for name, value in attrs.items())]
                     for path, attrs in datasets],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
