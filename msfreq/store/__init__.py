"""The msfreq HDF5 file format: layout, writing, validated reading, atomic files.

Every h5py call of the package lives in this subpackage.  Importing it registers the HDF5
compression filters of :mod:`hdf5plugin` (the default ``lz4`` pipeline and ``zstd`` need them).
"""

import hdf5plugin  # noqa: F401  (registers the bitshuffle filter (lz4, zstd) with HDF5)

from msfreq.store.atomic import TEMP_SUFFIX, atomic_path, is_temporary, remove_stale_partials
from msfreq.store.layout import (
    FORMAT_MARKER,
    FORMAT_VERSION,
    MSFREQ_SUFFIX,
    MSFREQ_SUFFIXES,
    READABLE_VERSIONS,
    Header,
    Storage,
    dataset_name,
    has_msfreq_suffix,
)
from msfreq.store.reader import Reader, load, open_reader, peek, read_header, verify
from msfreq.store.select import select_bands, select_channels, time_range
from msfreq.store.writer import Writer, save

__all__ = [
    "FORMAT_MARKER",
    "FORMAT_VERSION",
    "MSFREQ_SUFFIX",
    "MSFREQ_SUFFIXES",
    "READABLE_VERSIONS",
    "TEMP_SUFFIX",
    "Header",
    "Reader",
    "Storage",
    "Writer",
    "atomic_path",
    "dataset_name",
    "has_msfreq_suffix",
    "is_temporary",
    "is_hdf5",
    "load",
    "open_reader",
    "read_header",
    "peek",
    "remove_stale_partials",
    "save",
    "select_bands",
    "select_channels",
    "time_range",
    "verify",
]


def is_hdf5(path) -> bool:
    """Whether the file at ``path`` starts like an HDF5 file (False if it cannot be read)."""
    import h5py

    try:
        return bool(h5py.is_hdf5(path))
    except (OSError, ValueError):
        return False
