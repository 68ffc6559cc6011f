"""The ``msfreq`` command: encode, decode and inspect.

A thin layer: it parses options, calls the library and prints.  Defaults come from
:mod:`msfreq.params`.  Progress goes to stderr (tqdm), results to stdout; every failure is
one line on stderr (a traceback only with ``--debug``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from tqdm import tqdm

from msfreq import __version__
from msfreq.batch import Outcome, Summary, plan_decode, plan_encode, run_batch
from msfreq.errors import MsfreqError
from msfreq.params import (
    COMPRESSIONS,
    DEFAULT_BINS_PER_OCTAVE,
    DEFAULT_COMPRESSION,
    DEFAULT_DTYPE,
    DEFAULT_FMIN,
    DEFAULT_TUNING,
    TransformParams,
)

__all__ = ["main", "cli"]

_PRECISIONS = {"single": "complex64", "double": "complex128"}
_DEFAULT_PRECISION = {value: key for key, value in _PRECISIONS.items()}[DEFAULT_DTYPE]


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


class _Progress:
    """tqdm bars on stderr: one over files, and one per long file being converted."""

    def __init__(self, total: int, verb: str, quiet: bool) -> None:
        self.quiet = quiet
        self.verb = verb
        self.files = None if quiet else tqdm(
            total=total, desc=verb, unit="file", file=sys.stderr, dynamic_ncols=True, disable=None,
            leave=False,
        )
        self.inner: dict[str, tqdm] = {}

    def outcome(self, outcome: Outcome) -> None:
        bar = self.inner.pop(outcome.job.label, None)
        if bar is not None:
            bar.close()
        if self.files is not None:
            self.files.set_postfix_str(outcome.job.label[-40:], refresh=False)
            self.files.update(1)

    def within(self, label: str, done: int, total: int) -> None:
        # A file done in one piece reports once, at the end: no bar for it.
        if self.quiet or (label not in self.inner and done >= total):
            return
        bar = self.inner.get(label)
        if bar is None:
            bar = tqdm(total=total, desc=label[-30:], file=sys.stderr, dynamic_ncols=True, disable=None,
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
            tqdm.write(line, file=stream)
        else:
            click.echo(line, file=stream)


def _run(kind: str, verb: str, planned, options: dict, *, jobs: int, overwrite: bool,
         quiet: bool, debug: bool) -> None:
    job_list, missing, ignored = planned
    for message in missing:
        click.echo(f"error: {message}", err=True)
    if not quiet:
        for name in ignored:
            click.echo(f"ignored: {name}: not {'audio' if kind == 'encode' else 'an msfreq file'}",
                       err=True)
    progress = _Progress(len(job_list), verb, quiet)

    def on_outcome(outcome: Outcome) -> None:
        progress.outcome(outcome)
        if outcome.status == "failed":
            progress.write(f"failed: {outcome.message}", err=True)
            if debug and outcome.detail:
                progress.write(str(outcome.detail), err=True)
        elif outcome.status == "skipped":
            if not quiet:
                progress.write(f"skipped: {outcome.job.destination} (exists; --overwrite replaces it)")
        elif not quiet:
            progress.write(_done_line(kind, outcome))

    try:
        summary = run_batch(
            kind, job_list, options, jobs_count=max(1, min(jobs, len(job_list))),
            overwrite=overwrite, debug=debug, on_outcome=on_outcome, on_progress=progress.within,
        )
    finally:
        progress.close()
    summary.failed += len(missing)
    summary.ignored = list(ignored)
    _finish(summary, "encoded" if kind == "encode" else "decoded", quiet)


def _done_line(kind: str, outcome: Outcome) -> str:
    report = outcome.detail
    if kind == "encode":
        return (f"encoded: {outcome.job.source} -> {report.destination} "
                f"({report.seconds:.2f} s audio, {_size(report.bytes_written)}, {report.elapsed:.2f} s)")
    identical = {True: ", bit-identical to the source", False: ", not bit-identical to the source",
                 None: ""}[report.identical]
    return (f"decoded: {outcome.job.source} -> {report.destination} "
            f"({report.format} {report.subtype}{identical}, {report.elapsed:.2f} s)")


def _finish(summary: Summary, verb: str, quiet: bool) -> None:
    if not quiet or summary.failed or summary.interrupted:
        click.echo(summary.line(verb), err=summary.failed > 0 and quiet)
    if summary.exit_code:
        sys.exit(summary.exit_code)


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise click.UsageError(f"output {output} exists and is not a folder")


_common_batch = [
    click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
                 help="Folder for the outputs (created if missing); the input tree is mirrored in it."),
    click.option("-j", "--jobs", type=click.IntRange(min=1), default=_cpu_count(), show_default=True,
                 help="Worker processes."),
    click.option("--overwrite", is_flag=True, help="Replace outputs that exist (default: skip them)."),
    click.option("-q", "--quiet", is_flag=True, help="No progress and no per-file lines; errors only."),
    click.option("--debug", is_flag=True, help="Show tracebacks of failures."),
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
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@_apply(_common_batch)
@click.option("-b", "--bins-per-octave", type=int, default=DEFAULT_BINS_PER_OCTAVE, show_default=True,
              help="Frequency bins in every octave.")
@click.option("--fmin", type=float, default=DEFAULT_FMIN, show_default="16.35 Hz, C0",
              help="Lowest octave boundary in Hz.")
@click.option("--octaves", "n_octaves", type=int, default=None,
              help="Number of octaves (default: as many as fit below Nyquist).")
@click.option("--tuning", type=float, default=DEFAULT_TUNING, show_default=True,
              help="Frequency of A4 in Hz; bin centres lie on tuning * 2^(k/B).")
@click.option("--precision", type=click.Choice(sorted(_PRECISIONS)), default=_DEFAULT_PRECISION,
              show_default=True, help="single: complex64 coefficients, double: complex128.")
@click.option("--compression", type=click.Choice(COMPRESSIONS), default=DEFAULT_COMPRESSION,
              show_default=True, help="Lossless HDF5 compression.")
@click.option("--sample-rate", type=click.IntRange(min=1), default=None,
              help="Resample to this rate first, to put a mixed collection on one grid.")
def encode(inputs, output, jobs, overwrite, quiet, debug, bins_per_octave, fmin, n_octaves,
           tuning, precision, compression, sample_rate) -> None:
    """Encode audio files and folders (searched recursively) into msfreq HDF5 files.

    \b
    Examples:
      msfreq encode music/ -o encoded/
      msfreq encode kick.wav mix.flac -o out/ -b 24 --sample-rate 44100 -j 4
    """
    try:
        TransformParams(bins_per_octave=bins_per_octave, fmin=fmin, tuning=tuning,
                        n_octaves=n_octaves)
    except MsfreqError as error:
        raise click.UsageError(str(error)) from None
    _check_output(output)
    options = {
        "bins_per_octave": bins_per_octave, "fmin": fmin, "tuning": tuning,
        "n_octaves": n_octaves, "dtype": _PRECISIONS[precision], "compression": compression,
        "sample_rate": sample_rate,
    }
    _run("encode", "encoding", plan_encode(inputs, output), options, jobs=jobs,
         overwrite=overwrite, quiet=quiet, debug=debug)


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@_apply(_common_batch)
@click.option("--format", "audio_format", default=None,
              help="soundfile format (WAV, FLAC, AIFF, ...); default: the source's.")
@click.option("--subtype", default=None,
              help="soundfile subtype (PCM_16, PCM_24, FLOAT, ...); default: the source's.")
def decode(inputs, output, jobs, overwrite, quiet, debug, audio_format, subtype) -> None:
    """Decode msfreq HDF5 files and folders back into audio.

    \b
    Examples:
      msfreq decode encoded/ -o decoded/
      msfreq decode mix.h5 -o out/ --format FLAC --subtype PCM_24
    """
    _check_output(output)
    from msfreq.audio import output_format

    if audio_format or subtype:
        try:
            output_format("WAV", "PCM_16", format=audio_format, subtype=subtype,
                          sample_rate=44100, channels=1)
        except MsfreqError as error:
            raise click.UsageError(str(error)) from None
    planned = plan_decode(inputs, output, format=audio_format, subtype=subtype)
    options = {"format": audio_format, "subtype": subtype}
    _run("decode", "decoding", planned, options, jobs=jobs, overwrite=overwrite, quiet=quiet,
         debug=debug)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
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
    from msfreq.batch import find_inputs, is_msfreq_file
    from msfreq.report import describe, plot

    found, missing, _ = find_inputs(paths, is_msfreq_file)
    failed = len(missing)
    for message in missing:
        click.echo(f"error: {message}", err=True)
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
            click.echo(f"error: {file}: internal error: {type(error).__name__}: {error}", err=True)
            if debug:
                raise
    if as_json:
        click.echo(json.dumps(described[0] if single and described else described,
                              indent=2, default=str))
    elif single and described:
        click.echo(_table(described[0]))
    else:
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


def _table(info: dict) -> str:
    source = info["source"]
    params = info["params"]
    ratio = info["ratio_to_source"]
    lines = [
        f"file       {info['file']}",
        f"source     {source.get('name', '?')} ({source.get('format', '?')} "
        f"{source.get('subtype', '?')}, {source.get('sample_rate', '?')} Hz)",
        f"audio      {info['duration']:.3f} s, {info['sample_rate']} Hz, "
        f"{info['channels']} channel(s), {info['rms_db']:.1f} dB RMS",
        f"transform  {params['bins_per_octave']} bins/octave, {params['n_octaves']} octaves from "
        f"{params['fmin']:.2f} Hz, tuning {params['tuning']:g} Hz, {info['dtype']}",
        f"size       {_size(info['size_bytes'])}"
        + (f" ({ratio:.2f}x the source)" if ratio else "")
        + f", {info['compression']}, format v{info['format_version']}",
        "",
        f"{'band':<7}{'Hz':>12} {'notes':<8}{'bins':>4}{'frames':>8}{'hop ms':>8}"
        f"{'energy%':>8}{'rms dB':>7}{'peak dB':>8}{'bytes':>7}",
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
            f"{band['hop_ms']:>8.2f}{band['energy_percent']:>8.2f}{band['rms_db']:>7.1f}"
            f"{band['peak_db']:>8.1f}{_short_size(band['bytes']):>7}"
        )
    return "\n".join(lines)


def _file_lines(described: list[dict]) -> list[str]:
    lines = [f"{'duration':>9} {'rate':>6} {'ch':>2} {'grid':>8} {'size':>9} {'ratio':>6}  file"]
    total_seconds = total_bytes = 0.0
    for info in described:
        params = info["params"]
        ratio = info["ratio_to_source"]
        lines.append(
            f"{info['duration']:>8.2f}s {info['sample_rate']:>6} {info['channels']:>2} "
            f"{params['n_octaves']:>2}x{params['bins_per_octave']:<5} {_size(info['size_bytes']):>9} "
            f"{(f'{ratio:.2f}x' if ratio else '-'):>6}  {info['file']}"
        )
        total_seconds += info["duration"]
        total_bytes += info["size_bytes"]
    lines.append(f"{len(described)} file(s), {total_seconds:.2f} s of audio, {_size(total_bytes)}")
    return lines


def main() -> None:
    """Entry point of the ``msfreq`` console script."""
    try:
        cli.main(prog_name="msfreq", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
