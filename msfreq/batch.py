"""Batches: find the files, name their outputs, run them in isolated workers, count.

Naming rule (stable across runs, independent of what else is in the batch):

* a folder given as ``NAME`` is mirrored under the output folder as ``OUT/NAME/...``; given
  with a trailing slash (``NAME/``, or ``.``) its contents are mirrored directly in ``OUT``,
  as rsync does;
* a file is named after itself: encode appends ``.h5`` (``kick.wav`` -> ``kick.wav.h5``), so
  different inputs never share an output; decode removes it again and writes the audio
  under the source's own name (``kick.wav.h5`` -> ``kick.wav``; the audio suffix follows the
  format written, e.g. ``song.mp3.h5`` -> ``song.flac``);
* one input file with ``-o`` naming a file (ending in ``.h5`` for encode, in an audio suffix
  for decode) writes exactly that file.

Before any work, every planned output is checked: two inputs for one output, or an output
that is one of the inputs, is a usage error naming both.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from msfreq.audio import (
    AUDIO_SUFFIXES,
    UNREADABLE_SUFFIXES,
    announced_format,
    named_format,
    output_format,
    probe,
)
from msfreq.convert import (
    DecodeOptions,
    EncodeOptions,
    decode_file,
    encode_file,
    verify_decode,
)
from msfreq.errors import AudioError, MsfreqError, ParameterError
from msfreq.fft import pocketfft
from msfreq.params import is_integer
from msfreq.pool import Outcome, run_jobs
from msfreq.store import (
    MSFREQ_SUFFIX,
    MSFREQ_SUFFIXES,
    has_msfreq_suffix,
    is_hdf5,
    is_temporary,
    peek,
    remove_stale_partials,
    verify,
)

__all__ = [
    "MSFREQ_SUFFIX",
    "MSFREQ_SUFFIXES",
    "Job",
    "Outcome",
    "Plan",
    "Summary",
    "VerifyOptions",
    "convert",
    "decoded_name",
    "display",
    "find_inputs",
    "has_msfreq_suffix",
    "existing_output",
    "is_audio_file",
    "is_msfreq_file",
    "plan_encode",
    "plan_decode",
    "run_batch",
    "run_on_executor",
    "connect",
    "time_limit",
]

def display(path: str | os.PathLike) -> str:
    """``path`` as one printable line: undecodable bytes and control characters escaped.

    Examples
    --------
    >>> display("bad\\nname.wav")
    'bad\\\\nname.wav'
    """
    text = os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")
    out = []
    for char in text:
        if char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class VerifyOptions:
    """A verify job: check every chunk, and with ``decode`` the decoded samples too, the
    synthesis taking at most ``memory`` bytes (None: the default budget)."""

    decode: bool = False
    memory: int | None = None


@dataclass(frozen=True)
class Job:
    """One file to convert: where it is, where its output goes, and how."""

    source: Path
    destination: Path
    label: str
    options: EncodeOptions | DecodeOptions | VerifyOptions
    overwrite: bool = False
    debug: bool = False


@dataclass
class Plan:
    """What a batch will do: its jobs, and what was found that it will not do.

    Attributes
    ----------
    jobs : list of Job
    ignored : list of str
        Files in input folders that are not of the kind converted.
    problems : list of str
        One line per entry that cannot be converted (special files, symlink loops,
        unreadable entries); each counts as a failure.
    output : Path or None
        The output folder (or, for a single output file, the file).
    """

    jobs: list[Job] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    output: Path | None = None


@dataclass
class Summary:
    """Counts of a batch."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    ignored: int = 0
    stale_removed: int = 0
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
            text += f", not {'audio' if verb == 'encoded' else 'msfreq'} (ignored) {self.ignored}"
        if self.stale_removed:
            text += f", stale partial files removed {self.stale_removed}"
        if self.interrupted:
            text += " (interrupted)"
        return text


# --- finding files ---------------------------------------------------------------------

def _walk(root: Path, skip: Path | None, problems: list[str]) -> Iterable[Path]:
    """Regular files under ``root`` (sorted, hidden names skipped); symlinked folders are
    followed once (never in a loop); special files and unreadable entries are reported."""
    visited: set[tuple[int, int]] = set()

    def visit(folder: Path) -> Iterable[Path]:
        try:
            info = folder.stat()
            key = (info.st_dev, info.st_ino)
            if key in visited:
                problems.append(f"{display(folder)}: folder already visited (symlink loop?); skipped")
                return
            visited.add(key)
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            problems.append(f"{display(folder)}: cannot read folder ({error.strerror or error})")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                mode = entry.stat(follow_symlinks=True).st_mode
            except OSError as error:
                reason = "symlink loop" if error.errno == errno.ELOOP else (
                    "broken symlink" if entry.is_symlink() else error.strerror or str(error))
                problems.append(f"{display(path)}: {reason}; skipped")
                continue
            if stat.S_ISDIR(mode):
                if skip is not None and _same(path, skip):
                    continue
                yield from visit(path)
            elif stat.S_ISREG(mode):
                yield path
            else:
                problems.append(f"{display(path)}: {_special(mode)}, not a regular file; skipped")

    yield from visit(root)


def _same(path: Path, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False


def _special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def find_inputs(
    inputs: Iterable[str | os.PathLike],
    is_wanted: Callable[[Path], bool],
    skip: str | os.PathLike | None = None,
    present: list[Path] | None = None,
) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """Expand files and folders into ``(file, output-relative path)`` pairs.

    A folder named without a trailing slash contributes its own name to the relative paths
    (``music/a.wav`` -> ``music/a.wav``); with one (or ``.``), only the path inside it.

    Parameters
    ----------
    inputs : iterable of str or path-like
    is_wanted : callable
        Decides, for a file found in a folder, whether it is of the kind converted.
    skip : path-like, optional
        A folder not to search (the output folder, when it lies inside an input folder).
    present : list, optional
        Filled with every regular file met, converted or not (no output may replace one).

    Returns
    -------
    found : list of (Path, Path)
    ignored : list of str
        Files found in folders that are not of the wanted kind.
    problems : list of str
        Entries that cannot be converted, one line each.

    Raises
    ------
    ParameterError
        If an input does not exist, or is an empty string (which would name the current
        folder: ``msfreq encode "$DIR"`` with ``DIR`` unset must not encode everything below
        it, as 0.8.0 did).
    """
    inputs = list(inputs)
    if any(os.fspath(item) == "" for item in inputs):
        raise ParameterError('an input is an empty path ("", an unset shell variable?): nothing done')
    found, ignored, problems = [], [], []
    seen: set[tuple[int, int]] = set()

    skipped = Path(skip) if skip is not None and Path(skip).is_dir() else None

    def add(file: Path, relative: Path) -> None:
        try:
            info = file.stat()
        except OSError as error:
            problems.append(f"{display(file)}: {error.strerror or error}; skipped")
            return
        key = (info.st_dev, info.st_ino)
        if key not in seen:  # the same file named twice (or via two folders) runs once
            seen.add(key)
            found.append((file, relative))

    missing = []
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        try:
            mode = path.stat().st_mode
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENOTDIR) and not path.is_symlink():
                missing.append(display(path))
            else:
                problems.append(f"{display(path)}: {error.strerror or error}; skipped")
            continue
        if stat.S_ISDIR(mode):
            contents = text.endswith(("/", os.sep)) or path.name in ("", ".", "..")
            base = Path() if contents else Path(path.resolve().name if path.name == "" else path.name)
            for file in _walk(path, skipped, problems):
                if present is not None:
                    present.append(file)
                if is_wanted(file):
                    add(file, base / file.relative_to(path))
                else:
                    ignored.append(display(file))
        elif stat.S_ISREG(mode):
            if present is not None:
                present.append(path)
            add(path, Path(path.name))
        else:
            problems.append(f"{display(path)}: {_special(mode)}, not a regular file; skipped")
    if missing:
        raise ParameterError(f"no such file or folder: {', '.join(missing)}")
    return found, ignored, problems


def is_audio_file(path: Path) -> bool:
    """Whether a file found in a folder is taken as audio: by its suffix (also the audio
    formats that cannot be read, which then fail naming their format), else by probing."""
    if path.suffix.lower() in AUDIO_SUFFIXES or path.suffix.lower() in UNREADABLE_SUFFIXES:
        return True
    if has_msfreq_suffix(path) or is_temporary(path):
        return False
    try:
        probe(path, whole=False)  # an MP3 read in part is refused when it is encoded
    except AudioError:
        return False
    return True


def is_msfreq_file(path: Path) -> bool:
    """Whether a file found in a folder is taken as an msfreq file: by its suffix, else if it
    is HDF5 (temporary files being written never are)."""
    if is_temporary(path):
        return False
    return has_msfreq_suffix(path) or is_hdf5(path)


def _check_outputs(jobs: list[Job], inputs: set[Path]) -> None:
    by_destination: dict[str, Job] = {}
    for job in jobs:
        key = os.path.normcase(os.path.abspath(job.destination))
        other = by_destination.get(key)
        if other is not None:
            raise ParameterError(
                f"{display(other.source)} and {display(job.source)} would both be written to "
                f"{display(job.destination)}; rename one or convert them separately"
            )
        by_destination[key] = job
        target = job.destination
        try:
            resolved = target.resolve()
        except (OSError, RuntimeError):
            resolved = target
        if resolved in inputs or _same(target, job.source):
            raise ParameterError(
                f"the output {display(target)} of {display(job.source)} would replace a file of "
                "the input; choose another output folder"
            )


def _resolved(files: Iterable[Path]) -> set[Path]:
    out = set()
    for file in files:
        try:
            out.add(file.resolve())
        except (OSError, RuntimeError):
            continue
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _single_file(found, output: Path, wants: Callable[[Path], bool]) -> bool:
    return len(found) == 1 and wants(output) and not output.is_dir()


def _plan(inputs, output, options, *, is_wanted: Callable[[Path], bool],
          names_a_file: Callable[[Path], bool], name_of: Callable[[Path, str], str],
          overwrite: bool, debug: bool, file_kind: str,
          named: Callable[[Path], object] | None = None) -> Plan:
    """The shared planning of encode and decode: find, name, check, and make the jobs.
    ``named(output)``: the options for one input written to the file ``output`` the user
    named (default ``options``); ``file_kind``: what such a file is called, for messages."""
    if os.fspath(output) == "":
        raise ParameterError('the output is an empty path ("", an unset shell variable?): nothing done')
    output = Path(output)
    try:
        output.stat()
    except OSError as error:  # a name the file system refuses: said here, not a traceback
        if error.errno not in (errno.ENOENT, errno.ENOTDIR):
            code = errno.errorcode.get(error.errno, error.errno)
            raise ParameterError(f"output {display(output)}: {error.strerror or error} [{code}]: "
                                 "nothing done") from None
    present: list[Path] = []
    found, ignored, problems = find_inputs(inputs, is_wanted, skip=output, present=present)
    if _single_file(found, output, names_a_file):
        source, relative = found[0]
        chosen = options if named is None else named(output)
        jobs = [Job(source, output, display(relative), chosen, overwrite, debug)]
    else:
        if output.exists() and not output.is_dir():
            what = "is an input" if any(_same_file(source, output) for source, _ in found) \
                else "exists and is not a folder"
            raise ParameterError(f"output {display(output)} {what}: name a folder, or {file_kind} "
                                 "for a single input")
        if len(found) > 1 and names_a_file(output) and not output.is_dir():
            # 0.8.0 made a folder of that name (-o mix.h5 for two files: mix.h5/a.wav.h5 ...)
            raise ParameterError(f"output {display(output)} is named like a file, but the inputs "
                                 f"hold {len(found)} files: name a folder for them (it is created)")
        jobs = [Job(source, output / relative.parent / name_of(source, relative.name),
                    display(relative), options, overwrite, debug) for source, relative in found]
    _check_outputs(jobs, _resolved(present))
    return Plan(jobs=jobs, ignored=ignored, problems=problems, output=output)


def plan_encode(
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    options: EncodeOptions | None = None,
    *,
    overwrite: bool = False,
    debug: bool = False,
) -> Plan:
    """Plan encoding ``inputs`` into the folder (or, for one file, the file) ``output``.

    Raises
    ------
    ParameterError
        If an input does not exist, two inputs map to one output, or an output is an input.
    """
    return _plan(inputs, output, EncodeOptions() if options is None else options,
                 is_wanted=is_audio_file, names_a_file=has_msfreq_suffix,
                 name_of=lambda source, name: name + MSFREQ_SUFFIX,
                 overwrite=overwrite, debug=debug, file_kind=f"an {MSFREQ_SUFFIX} file")


def decoded_name(name: str, suffix: str) -> str:
    """The audio file name decode writes for the msfreq file called ``name``.

    Examples
    --------
    >>> decoded_name("kick.wav.h5", ".wav"), decoded_name("song.mp3.h5", ".flac")
    ('kick.wav', 'song.flac')
    >>> decoded_name("take.h5", ".wav")
    'take.wav'

    The source's own ending stays where it announces what ``suffix`` does (.aif, .sph, .bwf):

    >>> decoded_name("loop.aif.h5", ".aiff"), decoded_name("voice.opus.h5", ".flac")
    ('loop.aif', 'voice.flac')
    """
    base = name[: -len(Path(name).suffix)] if has_msfreq_suffix(name) else name
    inner = Path(base).suffix
    if inner.lower() in AUDIO_SUFFIXES:
        if announced_format(inner) == announced_format(suffix):
            return base
        return base[: -len(inner)] + suffix
    return base + suffix


def plan_decode(
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    options: DecodeOptions | None = None,
    *,
    overwrite: bool = False,
    debug: bool = False,
) -> Plan:
    """Plan decoding ``inputs`` into the folder (or, for one file, the file) ``output``.

    Each output's suffix follows the format it will be written in (the source's by default);
    one file written to a file the user named is written in the format its name says (see
    :func:`~msfreq.audio.named_format`).
    A file whose header cannot be read is still planned (under its own name with ``.wav``);
    the job then reports why it fails.

    Raises
    ------
    ParameterError
        If an input does not exist, two inputs map to one output, or an output is an input.
    """
    options = DecodeOptions() if options is None else options

    def name_of(source: Path, name: str) -> str:
        # Only the output's name: four root attributes, unvalidated (validating the whole
        # header costs about 20 ms per file, and the job validates it anyway).
        facts = peek(source, ("source_format", "source_subtype", "sample_rate", "n_channels"))
        try:
            suffix = output_format(
                facts.get("source_format"), facts.get("source_subtype"), format=options.format,
                subtype=options.subtype, sample_rate=int(facts.get("sample_rate", 44100)),
                channels=int(facts.get("n_channels", 2)),
            )[2]
        except (MsfreqError, TypeError, ValueError):
            suffix = ".wav"  # the job itself will report the problem
        return decoded_name(name, suffix)

    def named(path: Path) -> DecodeOptions:
        format, subtype = named_format(path, options.format, options.subtype)
        return replace(options, format=format, subtype=subtype)

    return _plan(inputs, output, options, is_wanted=is_msfreq_file,
                 names_a_file=lambda path: path.suffix.lower() in AUDIO_SUFFIXES,
                 name_of=name_of, overwrite=overwrite, debug=debug, named=named,
                 file_kind="an audio file (.wav, .flac ...)")


# --- running ---------------------------------------------------------------------------

_ERRNO = re.compile(r"errno = (\d+)")


def _os_reason(message: str) -> str:
    """The HDF5 library reports OS failures in a long text with ``errno = N``: name the OS
    reason instead (``No space left on device [ENOSPC]``)."""
    match = _ERRNO.search(message)
    if match is None:
        return message
    number = int(match.group(1))
    return f"{os.strerror(number)} [{errno.errorcode.get(number, number)}]"


def _failure(job: Job, message: str) -> Outcome:
    message = _os_reason(message)
    text = display(message.replace(os.fspath(job.source), display(job.source)))
    name = display(job.source)
    if not text.startswith(name):
        text = f"{name}: {text}"
    return Outcome(job, "failed", text)


def existing_output(job: Job) -> Outcome:
    """The outcome of a job whose output exists (without ``--overwrite``): skipped, or failed
    where the output no longer matches its source, so that a batch run again never keeps one
    without a word: an encode's output that is not an msfreq file or was written from another
    file or another version of this one (the name and size it records); a decode's output that
    is not audio or not the length, rate and channels of the file it would be decoded from."""
    if not isinstance(job.options, EncodeOptions):
        return _existing_audio(job)
    facts = peek(job.destination, ("format", "source_name", "source_bytes"))
    where = display(job.destination)
    if facts.get("format") != "msfreq":
        return _failure(job, f"{where} exists and is not a readable msfreq file: --overwrite "
                             "replaces it")
    name, recorded = facts.get("source_name"), facts.get("source_bytes")
    if isinstance(name, str) and name != job.source.name:
        return _failure(job, f"{where} exists, encoded from {display(name)}, not from this "
                             "file: --overwrite replaces it")
    try:
        size = job.source.stat().st_size
    except OSError:
        size = None
    if is_integer(recorded) and size is not None and int(recorded) != size:
        return _failure(job, f"{where} exists, encoded from a version of this file of "
                             f"{int(recorded):,} bytes ({size:,} now): --overwrite encodes it again")
    return Outcome(job, "skipped", "exists")


def _existing_audio(job: Job) -> Outcome:
    where = display(job.destination)
    try:
        found = probe(job.destination, whole=False)
    except AudioError:
        return _failure(job, f"{where} exists and is not readable audio: --overwrite replaces it")
    if found.lossy:  # a lossy encoder's length is its own (padding, gapless trimming)
        return Outcome(job, "skipped", "exists")
    facts = peek(job.source, ("n_samples", "n_channels", "sample_rate"))
    expected = tuple(facts.get(name) for name in ("n_samples", "n_channels", "sample_rate"))
    if all(is_integer(value) for value in expected) and \
            (found.frames, found.channels, found.sample_rate) != tuple(map(int, expected)):
        return _failure(job, f"{where} exists, but holds {found.frames:,} samples of "
                             f"{found.channels} channel(s) at {found.sample_rate} Hz where this "
                             f"file decodes to {int(expected[0]):,} of {int(expected[1])} at "
                             f"{int(expected[2])} Hz: --overwrite decodes it again")
    return Outcome(job, "skipped", "exists")


def convert(job: Job, progress: Callable[[int, int], None]) -> Outcome:
    """Run one job (in a worker process); every failure becomes a one-line outcome.

    Parameters
    ----------
    job : Job
    progress : callable
        ``progress(done, total)``; it may raise to stop the job (cancellation).
    """
    if isinstance(job.options, VerifyOptions):
        return _verify(job, progress)
    detail = None
    try:
        # inside: an output name the file system refuses (over 255 bytes: ENAMETOOLONG) is
        # this file's failure (0.8.0's worker died on it: "worker exited with status 1")
        if job.destination.exists() and not job.overwrite:
            return existing_output(job)
        job.destination.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(job.options, EncodeOptions):
            report = encode_file(job.source, job.destination, job.options, progress=progress)
        else:
            report = decode_file(job.source, job.destination, job.options, progress=progress)
        return Outcome(job, "done", "", report)
    except MsfreqError as error:
        outcome = _failure(job, str(error))
    except MemoryError:
        outcome = _failure(job, "out of memory")
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno:
            reason = f"{reason} [{errno.errorcode.get(error.errno, error.errno)}]"
        elif _ERRNO.search(reason):
            reason = _os_reason(reason)
        where = error.filename or job.destination
        outcome = _failure(job, f"{reason} ({display(where)})")
    except Exception as error:  # a bug: still one line, and the batch goes on
        outcome = _failure(job, f"internal error: {type(error).__name__}: {error}")
    if job.debug:
        detail = traceback.format_exc()
    return Outcome(job, outcome.status, outcome.message, detail)


def _verify(job: Job, progress: Callable[[int, int], None]) -> Outcome:
    try:
        header = verify(job.source)
        text = f"{header.duration:.2f} s, every chunk checked"
        if job.options.decode and header.storage.magnitudes:
            text += ", magnitudes only (nothing to decode)"
        elif job.options.decode:
            verify_decode(job.source, progress=progress, memory=job.options.memory)
            text += {True: f", decodes to exactly {header.decodes_to}",
                     False: ", decodes (not exactly: the file says so)",
                     None: ", decodes (no exactness recorded)"}[header.exact]
        return Outcome(job, "done", "", text)
    except MsfreqError as error:
        return _failure(job, str(error))
    except MemoryError:
        return _failure(job, "out of memory")
    except Exception as error:
        return _failure(job, f"internal error: {type(error).__name__}: {error}")


def time_limit(job: Job) -> float:
    """Seconds a job may run before its worker is taken for hung: five minutes plus 25 s per
    MB of input (about 100 times what encoding or decoding a megabyte takes here)."""
    try:
        size = job.source.stat().st_size
    except OSError:
        size = 0
    return 300.0 + 25.0 * size / 1e6


def _crashed(job: Job, reason: str) -> Outcome:
    return Outcome(job, "failed", f"{display(job.source)}: {reason}")


def run_batch(
    plan: Plan,
    *,
    workers: int = 1,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_progress: Callable[[Job, int, int], None] | None = None,
    cancel=None,
    limit: Callable[[Job], float] = time_limit,
    task: Callable = convert,
    executor=None,
) -> Summary:
    """Run a plan's jobs in isolated worker processes (or on an executor) and return the
    counts.

    Stale temporary files of killed runs are removed from the output folders first.

    Parameters
    ----------
    plan : Plan
    workers : int
        Worker processes (a crashing or hanging file costs a worker, never the batch).
    executor : distributed.Client or concurrent.futures.Executor, optional
        Run the jobs there instead (see :func:`run_on_executor`); ``workers`` and ``limit``
        are then the executor's business.
    on_outcome : callable, optional
        Called with each :class:`Outcome` as it arrives.
    on_progress : callable, optional
        ``on_progress(job, done, total)`` within files.
    cancel : threading.Event, optional
        Set to stop the batch (e.g. on Ctrl-C).
    limit : callable
        Seconds a job may take (default :func:`time_limit`).
    task : callable
        The function run for each job (default :func:`convert`).
    """
    summary = Summary(failed=len(plan.problems), ignored=len(plan.ignored))
    if plan.output is not None:
        folder = plan.output if plan.output.is_dir() else plan.output.parent
        summary.stale_removed, _ = remove_stale_partials(folder, recursive=folder == plan.output)

    def record(outcome: Outcome) -> None:
        if outcome.status == "done":
            summary.done += 1
        elif outcome.status == "skipped":
            summary.skipped += 1
        else:
            summary.failed += 1
        if on_outcome is not None:
            on_outcome(outcome)

    todo = []
    for job in plan.jobs:
        if not isinstance(job.options, VerifyOptions) and _exists(job.destination) \
                and not job.overwrite:
            record(existing_output(job))
        else:
            todo.append(job)
    if todo and executor is not None:
        summary.interrupted = not run_on_executor(todo, executor, task=task, on_outcome=record,
                                                  cancel=cancel)
    elif todo:
        if any(not isinstance(job.options, VerifyOptions) or job.options.decode for job in todo):
            # loaded once here, not again in each worker forked for a file (workers are
            # replaced as their memory grows: after most music files); 1 ms, but scipy.fft's
            # 0.2 s where the backend falls back to it
            pocketfft()
        debug = any(job.debug for job in todo)
        completed = run_jobs(todo, task, workers=max(1, min(workers, len(todo))), time_limit=limit,
                             crashed=_crashed, on_outcome=record, on_progress=on_progress,
                             cancel=cancel, quiet=not debug)
        summary.interrupted = not completed
    return summary


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False where the file system cannot even look it up (a name
    too long for it): the job then fails on its own line, saying why."""
    try:
        return path.exists()
    except OSError:
        return False


def _remote(task: Callable, job: Job) -> Outcome:
    """What an executor runs: the task, without progress within the file."""
    return task(job, _no_progress)


def _no_progress(done: int, total: int) -> None:
    """Progress within a file is not reported from an executor."""


def _is_dask(executor) -> bool:
    return hasattr(executor, "scheduler") and hasattr(executor, "gather") and hasattr(executor, "cancel")


def run_on_executor(
    jobs: list[Job],
    executor,
    *,
    task: Callable = convert,
    on_outcome: Callable[[Outcome], None],
    cancel=None,
) -> bool:
    """Run ``jobs`` as tasks of ``executor`` (a Dask ``distributed.Client``, or any
    ``concurrent.futures`` executor); report each outcome as its task completes.

    On a Dask cluster a worker that dies mid-file (killed, out of memory, a crash in a
    library) makes Dask run the task again elsewhere; a file whose tasks keep killing their
    workers is reported as failed once.  Outputs are written by the workers, atomically, on
    the file system they share with this process; nothing goes through the scheduler but the
    jobs and their one-line outcomes.

    Returns
    -------
    bool
        True if every job ran, False if ``cancel`` was set (outstanding tasks are cancelled).
    """
    if _is_dask(executor):
        from distributed import wait as wait_dask

        futures = {executor.submit(_remote, task, job, pure=False, retries=1): job for job in jobs}

        def wait_some(pending):
            done, rest = wait_dask(list(pending), timeout=0.2, return_when="FIRST_COMPLETED")
            return done, rest
    else:
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_futures

        futures = {executor.submit(_remote, task, job): job for job in jobs}

        def wait_some(pending):
            return wait_futures(pending, timeout=0.2, return_when=FIRST_COMPLETED)

    pending = set(futures)
    while pending:
        if cancel is not None and cancel.is_set():
            for future in pending:
                future.cancel()
            return False
        try:
            done, pending = wait_some(pending)
        except TimeoutError:
            continue
        for future in done:
            job = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # the task itself never raises: its workers died
                name = type(error).__name__
                reason = "its workers kept dying (crash or out of memory)" if name == "KilledWorker" \
                    else f"{name}: {error}"
                outcome = Outcome(job, "failed", f"{display(job.source)}: {reason}")
            on_outcome(outcome)
        pending = set(pending)
    return True


def connect(address: str):
    """Return a Dask ``distributed.Client`` for ``address`` (``tcp://host:port``) or for the
    scheduler file at that path.

    Raises
    ------
    ParameterError
        If the ``dask`` extra is not installed, or the scheduler cannot be reached.
    """
    try:
        from distributed import Client
    except ImportError:
        raise ParameterError(
            "--scheduler needs Dask's distributed package: pip install 'msfreq[dask]'"
        ) from None
    try:
        if Path(address).is_file():
            return Client(scheduler_file=address, timeout="15s")
        return Client(address, timeout="15s")
    except (OSError, TimeoutError, ValueError) as error:
        raise ParameterError(f"cannot reach the Dask scheduler {address}: {error}") from None
