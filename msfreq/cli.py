"""The ``msfreq`` command: encode, decode and inspect.

A thin layer: it parses options, calls the library and prints.  Defaults come from
:mod:`msfreq.params`.  Progress goes to stderr (tqdm), results to stdout; every failure is
one line on stderr (a traceback only with ``--debug``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import click

from msfreq.audio import output_format
from msfreq.batch import (
    Job,
    Outcome,
    Plan,
    Summary,
    VerifyOptions,
    connect,
    display,
    find_inputs,
    is_msfreq_file,
    plan_decode,
    plan_encode,
    run_batch,
)
from msfreq.convert import DecodeOptions, EncodeOptions
from msfreq.errors import MsfreqError
from msfreq.params import (
    BLOCK_BYTES,
    COMPRESSIONS,
    DEFAULT_BINS_PER_OCTAVE,
    DEFAULT_COMPRESSION,
    DEFAULT_FILE_DTYPE,
    DEFAULT_FMIN,
    DEFAULT_ROUND_BITS,
    DEFAULT_TUNING,
    MAX_SAMPLE_RATE,
    MAX_SPAN,
    MIN_BLOCK_BYTES,
    TransformParams,
)
from msfreq.pool import available_memory
from msfreq.version import __version__

__all__ = ["main", "cli"]

_PRECISIONS = {"auto": "auto", "single": "complex64", "double": "complex128"}
_DEFAULT_PRECISION = {value: key for key, value in _PRECISIONS.items()}[DEFAULT_FILE_DTYPE]


class _RoundBits(click.ParamType):
    """``--round-bits``: ``auto``, ``none`` or a number of bits (its range is checked by
    :class:`EncodeOptions`, which knows the precision)."""

    name = "N|auto|none"

    def convert(self, value, param, ctx):
        if value in (None, "auto") or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text in ("auto", "none"):
            return None if text == "none" else "auto"
        if text.isdigit():
            return int(text)
        self.fail(f"{value!r} is not auto, none or a number of bits", param, ctx)


class _Memory(click.ParamType):
    """``--memory``: a size with its unit, ``800M``, ``2G``, ``1.5GiB`` (K, M, G, T: powers of
    1024, with or without B or iB); at least :data:`~msfreq.params.MIN_BLOCK_BYTES`."""

    name = "SIZE"
    _PATTERN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt])(?:i?b)?\s*", re.IGNORECASE)

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        match = self._PATTERN.fullmatch(str(value))
        if match is None:
            self.fail(f"{value!r} is not a size with its unit (800M, 2G, 1.5GiB)", param, ctx)
        size = int(float(match[1]) * 1024 ** "kmgt".index(match[2].lower()) * 1024)
        if size < MIN_BLOCK_BYTES:
            self.fail(f"{value!r} is less than the least budget, {MIN_BLOCK_BYTES >> 20}M", param, ctx)
        return size


_memory_option = click.option(
    "--memory", type=_Memory(), default=None, metavar="SIZE",
    help=f"Memory one file's transform may take, per worker process (800M, 2G; default "
         f"{BLOCK_BYTES >> 20}M): "
         "longer files go in blocks with a minute of overlap each, so at high sample rates "
         "more memory is much faster (2 minutes of 96 kHz 24-bit stereo: 2x with 1200M).")


def _warn_if_memory_short(memory: int | None, jobs: int, plan: Plan) -> None:
    """One warning line where ``--memory`` times the workers that will run exceeds the memory
    available now: such a batch would have files fail with 'out of memory' (each said on its
    line), which the user can avoid before it starts."""
    workers = min(jobs, len(plan.jobs))
    available = available_memory()
    if memory is None or available is None or workers * memory <= available:
        return
    gib = 2.0**30
    click.echo(f"warning: {workers} worker{'s' if workers != 1 else ''} x --memory "
               f"{memory / gib:.2f} GiB = {workers * memory / gib:.2f} GiB, more than the "
               f"{available / gib:.2f} GiB of memory available: long files may fail with 'out of "
               "memory' (fewer -j, or less --memory)", err=True)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000.0
    return f"{count:.1f} TB"


def _tqdm():
    """:class:`tqdm.tqdm`, imported where bars are shown (it takes 15 ms to import: a tenth of
    a short file's encode, spent for nothing where stderr is no terminal or with --quiet)."""
    from tqdm import tqdm

    # No monitor thread: the batch's workers are forked from this process when it has no
    # other thread (see msfreq.pool).
    tqdm.monitor_interval = 0
    return tqdm


class _Progress:
    """tqdm bars on stderr, where it is a terminal: one over files, and one per long file
    being converted."""

    def __init__(self, total: int, verb: str, quiet: bool) -> None:
        self.no_bars = quiet or not _is_terminal(sys.stderr)
        self.verb = verb
        self.files = None if self.no_bars else _tqdm()(
            total=total, desc=verb, unit="file", file=sys.stderr, dynamic_ncols=True, disable=None,
            leave=False,
        )
        self.inner: dict[str, object] = {}

    def outcome(self, outcome: Outcome) -> None:
        bar = self.inner.pop(outcome.job.label, None)
        if bar is not None:
            bar.close()
        if self.files is not None:
            self.files.set_postfix_str(outcome.job.label[-40:], refresh=False)
            self.files.update(1)

    def within(self, label: str, done: int, total: int) -> None:
        # A file done in one piece reports once, at the end: no bar for it.
        if self.no_bars or (label not in self.inner and done >= total):
            return
        bar = self.inner.get(label)
        if bar is None:
            bar = _tqdm()(total=total, desc=label[-30:], file=sys.stderr, dynamic_ncols=True, disable=None,
                       leave=False, position=1 + len(self.inner),
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
            self.inner[label] = bar
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.inner.values():
            bar.close()
        if self.files is not None:
            self.files.close()

    def write(self, line: str, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        if self.files is not None:
            _tqdm().write(line, file=stream)
        else:
            click.echo(line, file=stream)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced, or closed
        return False


def _usage(action):
    """Run ``action``; a library error about the arguments becomes a usage error (exit 2)."""
    try:
        return action()
    except MsfreqError as error:
        raise click.UsageError(str(error)) from None


def _run(verb: str, plan: Plan, *, jobs: int, quiet: bool, debug: bool,
         line: Callable[[Outcome], str], scheduler: str | None = None) -> None:
    client = _usage(lambda: connect(scheduler)) if scheduler else None
    try:
        _run_with(verb, plan, jobs=jobs, quiet=quiet, debug=debug, line=line, executor=client)
    finally:
        if client is not None:
            client.close()


def _nothing_found(kind: str, ignored: int) -> None:
    """Inputs that hold no file of the kind converted (an empty folder, a mount that failed):
    exit 1, so that a script does not go on as if it had converted a collection."""
    other = f" ({ignored} other file{'s' if ignored != 1 else ''} ignored)" if ignored else ""
    click.echo(f"error: no {kind} found in the inputs{other}: nothing done", err=True)
    sys.exit(1)


def _run_with(verb: str, plan: Plan, *, jobs: int, quiet: bool, debug: bool,
              line: Callable[[Outcome], str], executor) -> None:
    if not plan.jobs and not plan.problems:
        _nothing_found("audio files" if verb == "encoded" else "msfreq files", len(plan.ignored))
    for problem in plan.problems:
        click.echo(f"failed: {problem}", err=True)
    if not quiet:
        for name in plan.ignored:
            click.echo(f"ignored: {name}: not {'audio' if verb == 'encoded' else 'an msfreq file'}",
                       err=True)
    progress = _Progress(len(plan.jobs), verb, quiet)

    def on_outcome(outcome: Outcome) -> None:
        progress.outcome(outcome)
        if outcome.status == "failed":
            progress.write(f"failed: {outcome.message}", err=True)
            if debug and outcome.detail:
                progress.write(str(outcome.detail), err=True)
        elif outcome.status == "skipped":
            if not quiet:
                progress.write(f"skipped: {display(outcome.job.destination)} (exists; --overwrite replaces it)")
        elif not quiet:
            progress.write(line(outcome))

    cancel = threading.Event()
    with _interrupts(cancel):
        try:
            summary = run_batch(plan, workers=jobs, on_outcome=on_outcome,
                                on_progress=lambda job, done, total: progress.within(job.label, done, total),
                                cancel=cancel, executor=executor)
        finally:
            progress.close()
    _finish(summary, verb, quiet)


@contextlib.contextmanager
def _interrupts(cancel: threading.Event):
    """Ctrl-C (SIGINT, from the terminal or sent to the process) and SIGTERM stop the batch
    cleanly: busy files are stopped and their temporary files removed, exit 130."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame) -> None:
        cancel.set()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _encode_line(outcome: Outcome) -> str:
    report = outcome.detail
    exact = {True: "decodes bit-identically",
             None: {"resampled": "not checked (resampled; --round-bits N stores it rounded, "
                                 "smaller, checked)",
                    "single precision": "not checked bit for bit: a float or lossy source in "
                                        "single precision (--precision double gives it back "
                                        "exactly; --round-bits 16 to 24, rounded, smaller, "
                                        "checked)"
                    }.get(report.unchecked, "not checked"),
             False: "does not decode bit-identically at this precision"}[report.exact]
    keep_bits = getattr(outcome.job.options, "keep_bits", None)
    if report.exact is False and keep_bits is not None:
        exact = f"not bit-identical: --keep-bits {keep_bits} rounds the coefficients"
    resampled = report.source_rate not in (None, report.sample_rate)
    if report.rounded_bits is not None:
        change = ("nothing changed" if report.rounding_snr_db is None
                  else f"SNR {report.rounding_snr_db:.1f} dB against the "
                       + ("resampled source" if resampled else "source"))
        if report.rounding_snr_db is not None and outcome.job.options.round_bits == "auto":
            change += "; --round-bits none: unrounded"
        exact = f"rounded to {report.rounded_bits}-bit steps ({change}), {exact}"
        if report.exact:
            exact += " to them"
        if resampled:
            exact = f"resampled from {report.source_rate} Hz, {exact}"
    elif report.silent:
        exact = f"silent, {exact}"
    elif report.grid_bits is not None:
        exact = f"{report.grid_bits}-bit content, {exact}"
    return (f"encoded: {display(outcome.job.source)} -> {display(report.destination)} "
            f"({report.seconds:.2f} s audio, {_size(report.bytes_written)}, {exact}, "
            f"{report.elapsed:.2f} s)")


def _decode_line(outcome: Outcome) -> str:
    report = outcome.detail
    to = "the source" + (f" rounded to {report.rounded_bits}-bit steps" if report.rounded_bits else "")
    if report.identical and report.losses:  # the decode was exact; the file written is not
        identical = f", decoded bit-identical to {to}, written with a loss"
    else:
        identical = {True: f", bit-identical to {to}", False: f", not bit-identical to {to}",
                     None: ""}[report.identical]
    losses = "".join(f"; LOSS: {loss}" for loss in report.losses)
    return (f"decoded: {display(outcome.job.source)} -> {display(report.destination)} "
            f"({report.format} {report.subtype}{identical}{losses}, {report.elapsed:.2f} s)")


def _finish(summary: Summary, verb: str, quiet: bool) -> None:
    if not quiet or summary.failed or summary.interrupted:
        click.echo(summary.line(verb), err=summary.failed > 0 and quiet)
    if summary.exit_code:
        sys.exit(summary.exit_code)


_common_batch = [
    click.option("-o", "--output", "output", required=True, type=click.Path(),
                 help="Folder for the outputs (created if missing), or, for one input file, "
                      "the output file itself (several files need a folder, not a name like "
                      "out.h5)."),
    click.option("-j", "--jobs", type=click.IntRange(min=1), default=_cpu_count(), show_default=True,
                 help="Worker processes."),
    click.option("--overwrite", is_flag=True, help="Replace outputs that exist (default: skip them)."),
    click.option("-q", "--quiet", is_flag=True, help="No progress and no per-file lines; errors only."),
    click.option("--debug", is_flag=True, help="Show tracebacks of failures."),
    click.option("--scheduler", default=None, metavar="ADDRESS",
                 help="Run the files as tasks on this Dask scheduler (tcp://host:port, or a "
                      "scheduler file); inputs and outputs on a file system the workers share."),
]


def _apply(options):
    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="msfreq")
def cli() -> None:
    """Invertible multi-scale (octave-by-octave constant-Q) audio representation in HDF5."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@_apply(_common_batch)
@click.option("-b", "--bins-per-octave", type=int, default=DEFAULT_BINS_PER_OCTAVE, show_default=True,
              help="Frequency bins in every octave.")
@click.option("--fmin", type=float, default=DEFAULT_FMIN, show_default="16.35 Hz, C0",
              help="Lowest octave boundary in Hz.")
@click.option("--octaves", "n_octaves", type=int, default=None,
              help="Number of octaves (default: as many as fit below Nyquist).")
@click.option("--tuning", type=float, default=DEFAULT_TUNING, show_default=True,
              help="Frequency of A4 in Hz; bin centres lie on tuning * 2^(k/B).")
@click.option("--oversampling", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Divide every hop by about N: N times the frames.")
@click.option("--span", type=click.IntRange(1, MAX_SPAN), default=1, show_default=True,
              help="Windows reach N bins to either side (hops N times shorter): the redundancy "
                   "across frequency that phase reconstruction needs (3 recommended there).")
@click.option("--precision", type=click.Choice(sorted(_PRECISIONS)), default=_DEFAULT_PRECISION,
              show_default=True, help="single: complex64 coefficients, double: complex128; "
                                      "auto: double for 17-32-bit integer sources (bit-identical), else single.")
@click.option("--compression", type=click.Choice(COMPRESSIONS), default=DEFAULT_COMPRESSION,
              show_default=True, help="lz4: fast to write and to read crops from (needs hdf5plugin "
                                      "to read in plain h5py); zstd: about 5 % smaller on music, "
                                      "slower; gzip: opened by any HDF5 reader; none.")
@click.option("--keep-bits", type=click.IntRange(1, 52), default=None,
              help="Smaller, inexact files: keep this many mantissa bits of every coefficient "
                   "(see README for size against SNR). Default: exact.")
@click.option("--round-bits", type=_RoundBits(), default=DEFAULT_ROUND_BITS, show_default=True,
              metavar="N|auto|none",
              help="Smaller files, checked: round float, lossy (MP3, Ogg) and deeper integer "
                   "samples to N-bit steps first, stored as levels that decode to the rounded "
                   "samples bit for bit; the line gives the SNR (see README). Above 16: double "
                   "precision. auto: 16 for lossy sources and for resampled ones of up to 16 "
                   "bits (their own depth); none: never.")
@click.option("--no-codes", "no_codes", is_flag=True,
              help="Integer sources: steps that round back by themselves instead of coarser "
                   "steps plus a correction code per sample (files about 12 % larger, format "
                   "version 3, which msfreq 0.3 reads; version 2, for 0.2, with zstd, gzip or "
                   "none).")
@click.option("--sample-rate", type=click.IntRange(1, MAX_SAMPLE_RATE), default=None,
              help="Resample to this rate first, to put a mixed collection on one grid.")
@_memory_option
def encode(inputs, output, jobs, overwrite, quiet, debug, scheduler, bins_per_octave, fmin,
           n_octaves, tuning, oversampling, span, precision, compression, keep_bits, round_bits,
           no_codes, sample_rate, memory) -> None:
    """Encode audio files and folders (searched recursively) into msfreq HDF5 files.

    \b
    NAME/ mirrors the folder's contents in OUTPUT; NAME (no slash) makes OUTPUT/NAME/.
    Each file keeps its name plus .h5 (kick.wav -> kick.wav.h5).

    \b
    Examples:
      msfreq encode music/ -o encoded/
      msfreq encode track.wav -o track.h5
      msfreq encode kick.wav mix.flac -o out/ -b 24 --sample-rate 44100 -j 4
      msfreq encode /shared/music/ -o /shared/encoded/ --scheduler tcp://10.0.0.5:8786
    """
    options = _usage(lambda: EncodeOptions(
        params=TransformParams(bins_per_octave=bins_per_octave, fmin=fmin, tuning=tuning,
                               n_octaves=n_octaves, oversampling=oversampling, span=span),
        dtype=_PRECISIONS[precision], compression=compression, sample_rate=sample_rate,
        keep_bits=keep_bits, codes=not no_codes, round_bits=round_bits, memory=memory,
    ))
    plan = _usage(lambda: plan_encode(inputs, output, options, overwrite=overwrite, debug=debug))
    if scheduler is None:
        _warn_if_memory_short(memory, jobs, plan)
    _run("encoded", plan, jobs=jobs, quiet=quiet, debug=debug, line=_encode_line,
         scheduler=scheduler)


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@_apply(_common_batch)
@click.option("--format", "audio_format", default=None,
              help="soundfile format (WAV, FLAC, AIFF, ...); default: the source's. Alone, it "
                   "keeps the source's bit depth where the format can.")
@click.option("--subtype", default=None,
              help="soundfile subtype (PCM_16, PCM_24, FLOAT, ...); default: the source's, or "
                   "the closest lossless one for --format.")
@click.option("--phase", type=click.Choice(["stored", "reconstruct"]), default="stored",
              show_default=True, help="reconstruct: ignore the stored phase and rebuild it from "
                                      "the magnitudes (how a magnitude-only model would sound).")
@click.option("--iterations", type=click.IntRange(min=0), default=100, show_default=True,
              help="Fast Griffin-Lim iterations for --phase reconstruct.")
@_memory_option
def decode(inputs, output, jobs, overwrite, quiet, debug, scheduler, audio_format, subtype, phase,
           iterations, memory) -> None:
    """Decode msfreq HDF5 files and folders back into audio.

    \b
    Files come back under their source's name (kick.wav.h5 -> kick.wav). The decoded
    samples are checked against the source's SHA-256; a file that was written to decode
    exactly and does not is reported as damaged and not written.

    \b
    Examples:
      msfreq decode encoded/ -o decoded/
      msfreq decode mix.wav.h5 -o mix.wav
      msfreq decode mix.wav.h5 -o out/ --format FLAC
      msfreq decode mix.wav.h5 -o heard.wav --phase reconstruct --iterations 200
    """
    options = _usage(lambda: DecodeOptions(format=audio_format, subtype=subtype, phase=phase,
                                           iterations=iterations, memory=memory))
    if audio_format or subtype:
        _usage(lambda: output_format("WAV", "PCM_16", format=audio_format, subtype=subtype,
                                     sample_rate=44100, channels=1))
    plan = _usage(lambda: plan_decode(inputs, output, options, overwrite=overwrite, debug=debug))
    if scheduler is None:
        _warn_if_memory_short(memory, jobs, plan)
    _run("decoded", plan, jobs=jobs, quiet=quiet, debug=debug, line=_decode_line,
         scheduler=scheduler)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--decode", "full", is_flag=True,
              help="Also decode each file and compare with the source's SHA-256.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=_cpu_count(), show_default=True,
              help="Worker processes.")
@click.option("-q", "--quiet", is_flag=True, help="Print failures only.")
@_memory_option
def verify(paths, full, jobs, quiet, memory) -> None:
    """Check msfreq files: structure, header checksum, every chunk's checksum and value;
    with --decode, that they decode to exactly the source samples they promise.

    \b
    Examples:
      msfreq verify encoded/
      msfreq verify --decode encoded/track.wav.h5
    """
    found, ignored, problems = _usage(lambda: find_inputs(paths, is_msfreq_file))
    jobs_list = [Job(file, file, display(relative), VerifyOptions(decode=full, memory=memory))
                 for file, relative in found]
    plan = Plan(jobs=jobs_list, ignored=ignored, problems=problems)
    if full:
        _warn_if_memory_short(memory, jobs, plan)

    def line(outcome: Outcome) -> str:
        return f"ok: {display(outcome.job.source)} ({outcome.detail})"

    _run("verified", plan, jobs=jobs, quiet=quiet, debug=False, line=line)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              help="Draw the amplitude picture of the (single) file into this PNG.")
@click.option("--debug", is_flag=True, help="Show tracebacks of failures.")
def inspect(paths, as_json, plot_path, debug) -> None:
    """Show what msfreq files hold: per-octave statistics, or one line per file.

    \b
    Examples:
      msfreq inspect encoded/mix.h5 --plot mix.png
      msfreq inspect encoded/ --json
    """
    from msfreq.report import describe, plot

    found, ignored, problems = _usage(lambda: find_inputs(paths, is_msfreq_file))
    if not found and not problems:
        _nothing_found("msfreq files", len(ignored))
    failed = len(problems)
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if plot_path is not None and len(found) != 1:
        raise click.UsageError(f"--plot draws one file; {len(found)} were given")
    described = []
    single = len(found) == 1
    for file, _ in found:
        try:
            # one file: the full table (reads every chunk); several: one line each (headers)
            described.append(describe(file, statistics=single))
        except MsfreqError as error:
            failed += 1
            click.echo(f"error: {error}", err=True)
        except Exception as error:
            failed += 1
            click.echo(f"error: {display(file)}: internal error: {type(error).__name__}: {error}",
                       err=True)
            if debug:
                raise
    if as_json:
        click.echo(json.dumps(described[0] if single and described else described,
                              indent=2, default=str))
    elif single and described:
        click.echo(_table(described[0]))
    elif described:
        for line in _file_lines(described):
            click.echo(line)
    if plot_path is not None and described:
        try:
            plot(found[0][0], plot_path)
        except MsfreqError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
        except OSError as error:
            click.echo(f"error: {plot_path}: {error.strerror or error}", err=True)
            sys.exit(1)
        if not as_json:
            click.echo(f"picture: {plot_path}")
    if failed:
        sys.exit(1)


def _short_size(count: float) -> str:
    for unit in ("", "k", "M", "G", "T"):
        if count < 999.5 or unit == "T":
            return f"{count:.0f}{unit}" if count >= 9.95 or not unit else f"{count:.1f}{unit}"
        count /= 1000.0
    return f"{count:.0f}T"


def _hz(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _rounding_words(source: dict) -> str:
    """How inspect describes the grid of a file's samples: their own, or rounded to it."""
    if source.get("rounded_bits"):
        snr = source.get("rounding_snr_db")
        change = "nothing changed" if snr is None else f"SNR {snr:.1f} dB"
        return f", rounded to {source['rounded_bits']}-bit steps when encoded ({change})"
    return f" of {source['grid_bits']}-bit content" if source.get("grid_bits") else ""


def _table(info: dict) -> str:
    source = info["source"]
    params = info["params"]
    ratio = info["ratio_to_source"]
    lines = [
        f"file       {display(info['file'])}",
        (f"source     {display(source['name'])} ({source.get('format', '?')} "
         f"{source.get('subtype', '?')}"
         + _rounding_words(source)
         + f", {source.get('sample_rate', '?')} Hz)" if source.get("name")
         else "source     not recorded (encoded from an array in Python)"),
        f"audio      {info['duration']:.3f} s, {info['sample_rate']} Hz, "
        f"{info['channels']} channel(s), {info['rms_db']:.1f} dB RMS",
        f"transform  {params['bins_per_octave']} bins/octave"
        + (f", oversampling {params['oversampling']}" if params["oversampling"] > 1 else "")
        + (f", span {params['span']}" if params["span"] > 1 else "")
        + f", {params['n_octaves']} octaves from "
        f"{params['fmin']:.2f} Hz, tuning {params['tuning']:g} Hz, {info['dtype']}",
        f"size       {_size(info['size_bytes'])}"
        + (f" ({ratio:.2f}x the source)" if ratio else "")
        + f", {info['compression']}, "
        + (f"levels + codes {_size(info['correction_bytes'])}" if info["correction_bytes"]
           else f"{info['storage']} storage")
        + f", format v{info['format_version']}"
        + (", MAGNITUDES only (no phase)" if info["content"] == "magnitudes" else ""),
        f"exact      {info['exact']}",
        "",
        f"{'band':<7}{'Hz':>12} {'notes':<8}{'bins':>4}{'frames':>8}{'hop ms':>8}"
        f"{'energy%':>8}{'band RMS dB':>12}{'peak |c| dB':>12}{'bytes':>7}",
    ]
    short = {"residual_low": "low", "residual_high": "high"}
    for band in info["bands"]:
        name = short.get(band["name"], band["name"].replace("octave_", "oct "))
        span = f"{_hz(band['lower_hz'])}-{_hz(band['upper_hz'])}"
        if band["name"] == "residual_low":
            notes = f"<{band['upper_note']}"
        elif band["name"] == "residual_high":
            notes = f">{band['lower_note']}"
        else:
            notes = f"{band['lower_note']}-{band['upper_note']}"
        lines.append(
            f"{name:<7}{span:>12} {notes[:8]:<8}{band['bins']:>4}{band['frames']:>8}"
            f"{band['hop_ms']:>8.2f}{band['energy_percent']:>8.2f}{band['rms_db']:>12.1f}"
            f"{band['peak_db']:>12.1f}{_short_size(band['bytes']):>7}"
        )
    return "\n".join(lines)


def _file_lines(described: list[dict]) -> list[str]:
    lines = [f"{'duration':>9} {'rate':>6} {'ch':>2} {'grid':>8} {'size':>9} {'ratio':>6} "
             f"{'decodes':<9}  file"]
    total_seconds = total_bytes = 0.0
    kinds: dict[str, int] = {}
    for info in described:
        params = info["params"]
        ratio = info["ratio_to_source"]
        lines.append(
            f"{info['duration']:>8.2f}s {info['sample_rate']:>6} {info['channels']:>2} "
            f"{params['n_octaves']:>2}x{params['bins_per_octave']:<5} {_size(info['size_bytes']):>9} "
            f"{(f'{ratio:.2f}x' if ratio else '-'):>6} {info['decodes']:<9}  {display(info['file'])}"
        )
        total_seconds += info["duration"]
        total_bytes += info["size_bytes"]
        kinds[info["decodes"]] = kinds.get(info["decodes"], 0) + 1
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    lines.append(f"{len(described)} file(s), {total_seconds:.2f} s of audio, {_size(total_bytes)}"
                 f" ({counts})")
    return lines


def main() -> None:
    """Entry point of the ``msfreq`` console script."""
    try:
        cli.main(prog_name="msfreq", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # the reader of our output went away (``msfreq ... | head``)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
