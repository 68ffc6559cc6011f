"""Run jobs in worker processes that a bad input cannot take down with the batch.

Every job runs in a worker process (also with one worker), so a file that makes a library
crash the interpreter (a segmentation fault in HDF5, say) or hang is reported as failed, with
its signal or its time limit, and the batch goes on with a fresh worker.  A worker whose
memory has grown is replaced after its job, so memory stays flat across a long batch.

Cancellation is passed in (a :class:`threading.Event`); on cancellation the busy workers are
asked to stop (SIGTERM, which they turn into a clean stop between blocks, removing their
temporary files) and killed if they do not.
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait

__all__ = ["Outcome", "run_jobs", "RECYCLE_BYTES", "available_memory"]

#: A worker whose resident memory exceeds this after a job is replaced by a fresh one: the FFT
#: and plan caches of earlier files otherwise add up (measured: a -j 2 batch of ten 2-minute
#: files peaked 220 MB above its largest file; with this bound, 11 MB).
RECYCLE_BYTES = 256 * 1024 * 1024
#: Seconds a cancelled worker gets to stop cleanly before it is killed.
_GRACE_SECONDS = 10.0
#: Progress messages per second and worker, at most.
_PROGRESS_RATE = 10.0


@dataclass(frozen=True)
class Outcome:
    """What became of one job: ``status`` is ``"done"``, ``"skipped"`` or ``"failed"``.

    ``message`` is one line (for failures, naming the file and the reason); ``detail`` is
    the task's report for a job done, or a traceback when one was asked for.
    """

    job: object
    status: str
    message: str = ""
    detail: object = None


class Cancelled(BaseException):
    """Raised inside a worker's job when the batch is being stopped."""


_STOP = threading.Event()


def _on_term(signum, frame) -> None:
    _STOP.set()


def _rss() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def available_memory() -> int | None:
    """Bytes of memory that new processes can take without swapping (Linux's MemAvailable),
    or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class _Reporter:
    """The progress callback of a job: sends at most a few messages a second, and stops
    the job (between blocks, where stopping is clean) when the worker is told to."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if _STOP.is_set():
            raise Cancelled
        now = time.monotonic()
        if done >= total or now - self.last >= 1.0 / _PROGRESS_RATE:
            self.last = now
            self.connection.send(("progress", done, total))


def _quiet(unraisable) -> None:
    """Drop "Exception ignored in ..." reports (h5py's after a full disk, say): the job's
    own one-line outcome already says what went wrong."""


def _worker(connection, task: Callable, quiet: bool) -> None:
    sys.unraisablehook = _quiet
    if quiet:  # libraries' own prints (h5py's after a full disk): the outcome says it all
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        faulthandler.disable()  # a forked worker may inherit it (pytest's): crashes are outcomes
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, _on_term)
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        progress = _Reporter(connection)
        try:
            outcome = task(job, progress)
        except Cancelled:
            connection.send(("cancelled", None))
            return
        # A failed job may leave a library in a bad state (HDF5 after a full disk): the next
        # job gets a fresh worker, as it does when this one has grown.
        leaving = _STOP.is_set() or _rss() > RECYCLE_BYTES or outcome.status == "failed"
        connection.send(("done", outcome, leaving))
        if leaving:
            return


@dataclass
class _Slot:
    process: multiprocessing.Process
    connection: object
    job: object = None
    deadline: float = 0.0
    started: float = 0.0


def _start_method() -> str:
    """How workers start: forked from this process where that is safe (POSIX, and no other
    thread whose locks a child could inherit held): no second import of the libraries, about
    0.3 s less per run; else from a clean server process (``forkserver``; ``spawn`` on
    Windows)."""
    if os.name == "nt":
        return "spawn"
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    return "forkserver"


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"crashed ({signal.Signals(-code).name})"
        except ValueError:
            return f"crashed (signal {-code})"
    return f"worker exited with status {code}"


def run_jobs(
    jobs: Sequence,
    task: Callable,
    *,
    workers: int = 1,
    time_limit: Callable[[object], float] | None = None,
    crashed: Callable[[object, str], Outcome],
    on_outcome: Callable[[Outcome], None],
    on_progress: Callable[[object, int, int], None] | None = None,
    cancel: threading.Event | None = None,
    quiet: bool = True,
) -> bool:
    """Run ``task(job, progress)`` for every job in worker processes; report each outcome.

    Parameters
    ----------
    jobs : sequence
        Picklable jobs.
    task : callable
        A module-level function ``task(job, progress) -> Outcome`` that reports its own
        failures as outcomes; ``progress(done, total)`` raises :class:`Cancelled` when the
        batch is stopping.
    workers : int
        Worker processes (at least one).
    time_limit : callable, optional
        Seconds a job may take (default: no limit); past it, its worker is killed.
    crashed : callable
        ``crashed(job, reason)`` makes the outcome of a job whose worker died or hung.
    on_outcome : callable
        Called in this process with each :class:`Outcome`, in completion order.
    on_progress : callable, optional
        ``on_progress(job, done, total)`` within jobs.
    cancel : threading.Event, optional
        Set it (e.g. from a signal handler) to stop: busy jobs are stopped cleanly, pending
        ones are not started.
    quiet : bool
        Send what libraries print on the workers' stderr to /dev/null (the outcomes carry
        every failure); False keeps it (``--debug``).

    Returns
    -------
    bool
        True if every job ran, False if the batch was cancelled.
    """
    cancel = threading.Event() if cancel is None else cancel
    context = multiprocessing.get_context(_start_method())
    pending = deque(jobs)
    slots: list[_Slot] = []

    def start() -> _Slot:
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, task, quiet), daemon=True)
        # Started with Ctrl-C ignored: a forkserver launched now keeps ignoring it, and so do
        # its workers, which the terminal's Ctrl-C would otherwise interrupt anywhere.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        for stream in (sys.stdout, sys.stderr):  # a forked child must not print them again
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            process.start()
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        child.close()
        return _Slot(process=process, connection=parent)

    def retire(slot: _Slot, kill: bool = False) -> None:
        if kill and slot.process.is_alive():
            with contextlib.suppress(OSError):
                slot.process.kill()
        with contextlib.suppress(OSError):
            slot.connection.close()
        slot.process.join(timeout=5)
        slots.remove(slot)

    def finish(slot: _Slot, outcome: Outcome) -> None:
        slot.job = None
        on_outcome(outcome)

    try:
        while (pending and not cancel.is_set()) or any(slot.job is not None for slot in slots):
            while pending and not cancel.is_set() and (
                len(slots) < workers or any(slot.job is None for slot in slots)
            ):
                slot = next((slot for slot in slots if slot.job is None), None) or start()
                if slot not in slots:
                    slots.append(slot)
                job = pending.popleft()
                try:
                    slot.connection.send(job)
                except (OSError, BrokenPipeError):
                    retire(slot, kill=True)
                    pending.appendleft(job)
                    continue
                slot.job = job
                slot.started = time.monotonic()
                limit = time_limit(job) if time_limit is not None else None
                slot.deadline = slot.started + limit if limit else float("inf")
            busy = [slot for slot in slots if slot.job is not None]
            if not busy:
                break
            waitables = [slot.connection for slot in busy] + [slot.process.sentinel for slot in busy]
            wait(waitables, timeout=0.2)
            for slot in busy:
                _poll(slot, finish, retire, crashed, on_progress)
            if cancel.is_set():
                _stop(slots, finish, retire, crashed)
                return False
    finally:
        for slot in list(slots):
            with contextlib.suppress(OSError, BrokenPipeError):
                slot.connection.send(None)
        for slot in list(slots):
            slot.process.join(timeout=2)
            retire(slot, kill=True)
    return not cancel.is_set()


def _poll(slot: _Slot, finish, retire, crashed, on_progress) -> None:
    while slot.job is not None:
        try:
            if not slot.connection.poll():
                break
            message = slot.connection.recv()
        except (EOFError, OSError):
            break
        kind = message[0]
        if kind == "progress":
            if on_progress is not None:
                on_progress(slot.job, message[1], message[2])
        elif kind == "done":
            finish(slot, message[1])
            if message[2]:  # the worker leaves (recycled): a fresh one takes the next job
                retire(slot)
            return
    if slot.job is None:
        return
    if not slot.process.is_alive():
        slot.process.join(timeout=1)
        job = slot.job
        retire(slot)
        finish(slot, crashed(job, _describe_exit(slot.process.exitcode)))
    elif time.monotonic() > slot.deadline:
        job, limit = slot.job, slot.deadline - slot.started
        retire(slot, kill=True)
        finish(slot, crashed(job, f"timed out after {limit:.0f} s (worker stopped)"))


def _stop(slots: list[_Slot], finish, retire, crashed) -> None:
    busy = [slot for slot in slots if slot.job is not None]
    for slot in busy:
        with contextlib.suppress(OSError):
            slot.process.terminate()
    deadline = time.monotonic() + _GRACE_SECONDS
    for slot in busy:
        slot.process.join(timeout=max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(EOFError, OSError):
            while slot.connection.poll():
                kind, value = slot.connection.recv()[:2]
                if kind == "done":
                    finish(slot, value)
                    break
        retire(slot, kill=True)
