"""Batches: find the files, map them to outputs, run them in worker processes, count.

Files are independent, so a batch runs them in a process pool.  A file that fails is
reported with its reason and the batch goes on; outputs that already exist are skipped
unless asked to overwrite, so an interrupted batch can simply be run again.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import h5py

from msfreq.audio import AUDIO_SUFFIXES, probe
from msfreq.convert import decode_file, decoded_format, encode_file
from msfreq.errors import AudioError, MsfreqError
from msfreq.store import TEMP_SUFFIX, read_header

__all__ = [
    "Job",
    "Outcome",
    "Summary",
    "find_inputs",
    "plan_encode",
    "plan_decode",
    "run_batch",
    "MSFREQ_SUFFIXES",
    "is_audio_file",
    "is_msfreq_file",
]

#: File name endings taken as msfreq files when a folder is searched.
MSFREQ_SUFFIXES = frozenset({".h5", ".hdf5", ".msfreq"})


@dataclass(frozen=True)
class Job:
    """One file to convert: where it is, where its output goes, and how to show it."""

    source: Path
    destination: Path
    label: str


@dataclass(frozen=True)
class Outcome:
    """What became of one job: ``status`` is ``"done"``, ``"skipped"`` or ``"failed"``."""

    job: Job
    status: str
    message: str = ""
    detail: object = None


@dataclass
class Summary:
    """Counts of a batch, and the problems met while finding files."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    ignored: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """0 if all went well, 1 if a file failed, 130 if interrupted."""
        if self.interrupted:
            return 130
        return 1 if self.failed else 0

    def line(self, verb: str) -> str:
        """One line for the end of a batch, e.g. ``encoded 3, skipped 1, failed 0``."""
        text = f"{verb} {self.done}, skipped {self.skipped}, failed {self.failed}"
        if self.ignored:
            text += f", not {'audio' if verb == 'encoded' else 'msfreq'} (ignored) {len(self.ignored)}"
        if self.interrupted:
            text += " (interrupted)"
        return text


def _walk(folder: Path, skip: Path | None = None) -> Iterator[Path]:
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(
            name for name in folders
            if not name.startswith(".") and (skip is None or (Path(root) / name).resolve() != skip)
        )
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def find_inputs(
    inputs: Iterable[str | os.PathLike],
    is_wanted: Callable[[Path], bool],
    skip: str | os.PathLike | None = None,
) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """Expand files and folders into ``(file, path relative to its input)`` pairs.

    Parameters
    ----------
    inputs : iterable of path-like
    is_wanted : callable
        Decides, for a file found in a folder, whether it is of the kind converted.
    skip : path-like, optional
        A folder not to search (the output folder, when it lies inside an input folder).

    Returns
    -------
    found : list of (Path, Path)
    missing : list of str
        One message per input that does not exist.
    ignored : list of str
        Files found in folders that are not of the wanted kind.
    """
    found, missing, ignored = [], [], []
    skipped = Path(skip).resolve() if skip is not None else None
    seen: set[Path] = set()

    def add(file: Path, relative: Path) -> None:
        key = file.resolve()
        if key not in seen:  # the same file named twice (or via two folders) runs once
            seen.add(key)
            found.append((file, relative))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for file in _walk(path, skipped):
                if is_wanted(file):
                    add(file, file.relative_to(path))
                else:
                    ignored.append(str(file))
        elif path.exists():
            add(path, Path(path.name))
        else:
            missing.append(f"{path}: no such file or folder")
    return found, missing, ignored


def is_audio_file(path: Path) -> bool:
    """Whether a file found in a folder is taken as audio: by its suffix, else by probing."""
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return True
    try:
        probe(path)
    except AudioError:
        return False
    return True


def is_msfreq_file(path: Path) -> bool:
    """Whether a file found in a folder is taken as an msfreq file: by its suffix, else if it
    is HDF5 (temporary files being written never are)."""
    if path.name.endswith(TEMP_SUFFIX):
        return False
    if path.suffix.lower() in MSFREQ_SUFFIXES:
        return True
    try:
        return bool(h5py.is_hdf5(path))
    except OSError:
        return False


def _map_outputs(
    found: list[tuple[Path, Path]], output: Path, suffix_of: Callable[[Path], str]
) -> list[Job]:
    """Mirror the input tree under ``output``; inputs that would share an output name keep
    their full name (``a.wav`` -> ``a.wav.h5``, ``a.flac`` -> ``a.flac.h5``)."""
    planned: dict[str, list[int]] = {}
    targets = []
    for index, (source, relative) in enumerate(found):
        target = output / relative.with_suffix(suffix_of(source))
        targets.append(target)
        planned.setdefault(str(target).lower(), []).append(index)
    jobs = []
    for index, (source, relative) in enumerate(found):
        target = targets[index]
        if len(planned[str(target).lower()]) > 1:
            target = output / relative.parent / (relative.name + suffix_of(source))
        jobs.append(Job(source=source, destination=target, label=str(relative)))
    return jobs


def plan_encode(inputs: Iterable[str | os.PathLike], output: str | os.PathLike):
    """Return ``(jobs, missing, ignored)`` for encoding ``inputs`` into folder ``output``."""
    found, missing, ignored = find_inputs(inputs, is_audio_file, skip=output)
    return _map_outputs(found, Path(output), lambda source: ".h5"), missing, ignored


def plan_decode(
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    format: str | None = None,
    subtype: str | None = None,
):
    """Return ``(jobs, missing, ignored)`` for decoding ``inputs`` into folder ``output``.

    Each output's suffix follows the format it will be written in (the source's by default).
    """
    found, missing, ignored = find_inputs(inputs, is_msfreq_file, skip=output)

    def suffix_of(source: Path) -> str:
        try:
            return decoded_format(read_header(source), format=format, subtype=subtype)[2]
        except MsfreqError:
            return ".wav"  # the job itself will report the problem

    return _map_outputs(found, Path(output), suffix_of), missing, ignored


# --- running ---------------------------------------------------------------------------

#: Where progress within a file goes: ``sink((label, done, total))``, or None.
_PROGRESS_SINK: Callable[[tuple], None] | None = None
#: Set by Ctrl-C (or SIGTERM); work checks it between blocks and between files, where
#: stopping is safe.  (A KeyboardInterrupt raised at any bytecode could land in a destructor,
#: where Python swallows it.)  A second Ctrl-C interrupts at once.
_STOP = threading.Event()


def _interrupt(signum, frame) -> None:
    if _STOP.is_set():
        raise KeyboardInterrupt
    _STOP.set()


def _check_stop() -> None:
    if _STOP.is_set():
        raise KeyboardInterrupt


def _worker_setup(progress_queue) -> None:
    global _PROGRESS_SINK
    _PROGRESS_SINK = None if progress_queue is None else progress_queue.put
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _report(label: str) -> Callable[[int, int], None]:
    sink = _PROGRESS_SINK

    def progress(done: int, total: int) -> None:
        _check_stop()
        if sink is not None:
            sink((label, done, total))

    return progress


def _run_one(kind: str, job: Job, options: dict, overwrite: bool, debug: bool) -> Outcome:
    _check_stop()
    if job.destination.exists() and not overwrite:
        return Outcome(job, "skipped", "exists")
    try:
        job.destination.parent.mkdir(parents=True, exist_ok=True)
        function = encode_file if kind == "encode" else decode_file
        report = function(job.source, job.destination, progress=_report(job.label), **options)
    except MsfreqError as error:
        message = str(error)
        if str(job.source) not in message:  # parameter errors do not know the file
            message = f"{job.source}: {message}"
        return Outcome(job, "failed", message, traceback.format_exc() if debug else None)
    except MemoryError:
        return Outcome(job, "failed", f"{job.source}: out of memory", None)
    except OSError as error:
        reason = error.strerror or str(error)
        where = error.filename or job.destination
        return Outcome(job, "failed", f"{job.source}: {reason} ({where})",
                       traceback.format_exc() if debug else None)
    except Exception as error:  # a bug: still one line, and the batch goes on
        return Outcome(job, "failed", f"{job.source}: internal error: {type(error).__name__}: {error}",
                       traceback.format_exc() if debug else None)
    return Outcome(job, "done", "", report)


def run_batch(
    kind: str,
    jobs: list[Job],
    options: dict,
    *,
    jobs_count: int = 1,
    overwrite: bool = False,
    debug: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> Summary:
    """Run ``jobs`` (``kind`` ``"encode"`` or ``"decode"``) and return the counts.

    Parameters
    ----------
    kind : {"encode", "decode"}
    jobs : list of Job
    options : dict
        Keyword arguments for :func:`~msfreq.convert.encode_file` or
        :func:`~msfreq.convert.decode_file`.
    jobs_count : int
        Worker processes; 1 runs in this process.
    overwrite, debug : bool
    on_outcome : callable, optional
        Called with each :class:`Outcome` as it arrives.
    on_progress : callable, optional
        ``on_progress(label, done, total)`` within files.
    """
    summary = Summary()

    def record(outcome: Outcome) -> None:
        if outcome.status == "done":
            summary.done += 1
        elif outcome.status == "skipped":
            summary.skipped += 1
        else:
            summary.failed += 1
        if on_outcome is not None:
            on_outcome(outcome)

    _STOP.clear()
    previous = _install_handlers()
    try:
        if jobs_count <= 1 or len(jobs) <= 1:
            _run_here(kind, jobs, options, overwrite, debug, record, on_progress, summary)
        else:
            _run_pool(kind, jobs, options, jobs_count, overwrite, debug, record, on_progress,
                      summary)
    finally:
        _restore_handlers(previous)
    if _STOP.is_set():
        summary.interrupted = True
    return summary


def _install_handlers() -> dict | None:
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, _interrupt)
    return previous


def _restore_handlers(previous: dict | None) -> None:
    for number, handler in (previous or {}).items():
        signal.signal(number, handler)


def _run_here(kind, jobs, options, overwrite, debug, record, on_progress, summary) -> None:
    global _PROGRESS_SINK
    if on_progress is not None:
        _PROGRESS_SINK = lambda item: on_progress(*item)  # noqa: E731
    try:
        for job in jobs:
            record(_run_one(kind, job, options, overwrite, debug))
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        _PROGRESS_SINK = None


def _run_pool(kind, jobs, options, jobs_count, overwrite, debug, record, on_progress,
              summary) -> None:
    context = get_context("spawn" if os.name == "nt" else "forkserver")
    manager_queue = context.Queue()
    executor = ProcessPoolExecutor(
        max_workers=jobs_count, mp_context=context, initializer=_worker_setup,
        initargs=(manager_queue if on_progress is not None else None,),
    )
    pending: set[Future] = set()
    try:
        # Workers start with Ctrl-C ignored (inherited) until their own handler is in place,
        # so that an interrupt during their start-up cannot land in arbitrary code.
        handler = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for job in jobs:
                pending.add(executor.submit(_run_one, kind, job, options, overwrite, debug))
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, handler)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _check_stop()
            _drain(manager_queue, on_progress)
            for future in finished:
                record(future.result())
        _drain(manager_queue, on_progress)
    except KeyboardInterrupt:
        summary.interrupted = True
        _STOP.set()
        for future in pending:
            future.cancel()
        # Workers share the terminal's Ctrl-C, but not a signal sent to this process alone.
        for process in list(getattr(executor, "_processes", {}).values()):
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGINT)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _drain(source, on_progress) -> None:
    if on_progress is None:
        return
    while True:
        try:
            label, done, total = source.get_nowait()
        except (queue.Empty, OSError, ValueError):
            return
        on_progress(label, done, total)
