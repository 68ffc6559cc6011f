"""Atomic writes: a temporary file beside the destination, renamed into place when complete.

Temporary names say who owns them (``.NAME.HOST-PID.RANDOM.msfreq-partial``), so that a later
run can remove the leftovers of a killed process, and only those, with
:func:`remove_stale_partials`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "atomic_path", "is_temporary", "remove_stale_partials"]

#: Temporary files being written end with this (and start with a dot).
TEMP_SUFFIX = ".msfreq-partial"
_OWNER = re.compile(r"\.(?P<host>[A-Za-z0-9_-]{1,64})-(?P<pid>\d{1,10})\.[^.]+" + re.escape(TEMP_SUFFIX) + "$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` names one of msfreq's temporary files."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary file is removed on any exception, including ``KeyboardInterrupt``.  The
    file is flushed to disk before the rename, and the folder after it.  Its permissions are
    those a new file gets (the umask), not ``mkstemp``'s private 0600.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "out.txt") as temporary:
    ...     _ = temporary.write_text("complete")
    >>> (folder / "out.txt").read_text()
    'complete'
    """
    final = Path(path)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder to write into", str(folder))
    prefix = f".{final.name[:120]}.{_host()}-{os.getpid()}."
    descriptor, name = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=folder)
    os.close(descriptor)
    temporary = Path(name)
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_partials(folder: str | os.PathLike, *, recursive: bool = True) -> tuple[int, int]:
    """Remove msfreq's temporary files in ``folder`` whose writer is no longer alive.

    Only names of the form msfreq writes, made on this host by a process that has exited,
    are removed; anything else is left alone.

    Parameters
    ----------
    folder : path-like
    recursive : bool
        Also in the folders below (hidden ones excepted).

    Returns
    -------
    count, size : int
        Files removed and their bytes.
    """
    count = size = 0
    host = _host()
    root = Path(folder)
    if not root.is_dir():
        return 0, 0
    for directory, folders, files in os.walk(root):
        folders[:] = [name for name in folders if recursive and not name.startswith(".")]
        for name in files:
            match = _OWNER.search(name) if is_temporary(name) else None
            if match is None or match["host"] != host or _alive(int(match["pid"])):
                continue
            path = Path(directory) / name
            with contextlib.suppress(OSError):
                bytes_ = path.lstat().st_size
                path.unlink()
                count += 1
                size += bytes_
    return count, size
