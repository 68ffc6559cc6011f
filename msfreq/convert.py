"""File to file: encode one audio file to an msfreq file, and decode one back.

This layer joins :mod:`msfreq.audio`, :mod:`msfreq.transform` and :mod:`msfreq.store`; it
streams long files block by block, so memory stays bounded whatever the file's length.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from msfreq.audio import AudioInfo, AudioReader, AudioWriter, output_format, probe
from msfreq.errors import ParameterError
from msfreq.params import (
    DEFAULT_BINS_PER_OCTAVE,
    DEFAULT_COMPRESSION,
    DEFAULT_DTYPE,
    DEFAULT_FMIN,
    DEFAULT_TUNING,
    TransformParams,
    resolve_dtype,
)
from msfreq.representation import Progress
from msfreq.scales import make_grid
from msfreq.store import Header, Writer, open_reader, read_header
from msfreq.transform import analyze_signal, synthesize_signal, transform_units

__all__ = [
    "EncodeReport",
    "DecodeReport",
    "encode_file",
    "decode_file",
    "decoded_format",
    "Resampler",
]



@dataclass(frozen=True)
class EncodeReport:
    """What :func:`encode_file` did."""

    source: Path
    destination: Path
    seconds: float
    sample_rate: int
    channels: int
    bytes_written: int
    elapsed: float


@dataclass(frozen=True)
class DecodeReport:
    """What :func:`decode_file` did.

    ``identical`` is True when the samples written are bit-identical to the source samples
    the file was encoded from (same subtype and sample rate, matching SHA-256), False when
    they differ, and None when the file records no checksum or the output format differs.
    """

    source: Path
    destination: Path
    seconds: float
    format: str
    subtype: str
    identical: bool | None
    elapsed: float


class Resampler:
    """Read an :class:`AudioReader` at another sample rate, by polyphase filtering in blocks.

    ``read(a, b)`` returns output samples ``a:b``; each call filters the input range it needs
    plus a margin longer than the filter, and starts on a whole period of the rate ratio, so
    reads in blocks give the same samples as one read of everything.
    """

    def __init__(self, reader: AudioReader, source_rate: int, target_rate: int) -> None:
        common = gcd(source_rate, target_rate)
        self.reader = reader
        self.up = target_rate // common
        self.down = source_rate // common
        self.available = reader.info.frames
        self.n_samples = -(-self.available * self.up // self.down)
        # scipy's default filter has 10 * max(up, down) taps on each side at the up rate.
        self.margin = 10 * max(self.up, self.down) // self.up + 2

    def read(self, start: int, stop: int) -> np.ndarray:
        """Return resampled samples ``start:stop``, shape (stop - start, channels)."""
        first = (start * self.down // self.up - self.margin) // self.down * self.down
        last = -(-stop * self.down // self.up) + self.margin
        low, high = max(first, 0), min(last, self.available)
        block = np.zeros((last - first, self.reader.info.channels))
        if high > low:
            block[low - first : high - first] = self.reader.read(low, high)
        from scipy.signal import resample_poly  # imported here: scipy.signal takes 0.8 s to load

        filtered = resample_poly(block, self.up, self.down, axis=0)
        offset = start - first * self.up // self.down
        return filtered[offset : offset + stop - start]


def encode_file(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    bins_per_octave: int = DEFAULT_BINS_PER_OCTAVE,
    fmin: float = DEFAULT_FMIN,
    tuning: float = DEFAULT_TUNING,
    n_octaves: int | None = None,
    dtype: str = DEFAULT_DTYPE,
    compression: str = DEFAULT_COMPRESSION,
    sample_rate: int | None = None,
    workers: int | None = None,
    block_seconds: float | None = None,
    progress: Progress | None = None,
) -> EncodeReport:
    """Encode the audio file ``source`` into the msfreq file ``destination``.

    Parameters
    ----------
    source, destination : path-like
    bins_per_octave, fmin, tuning, n_octaves, dtype
        As for :func:`msfreq.encode`.
    compression : {"gzip", "lzf", "none"}
    sample_rate : int, optional
        Resample to this rate first (default: keep the file's rate).
    workers : int, optional
        FFT threads.
    block_seconds : float, optional
        Files longer than about this are processed block by block.
    progress : callable, optional
        ``progress(done, total)`` in hop units.

    Returns
    -------
    EncodeReport

    Raises
    ------
    AudioError
        If ``source`` is not readable audio.
    ParameterError
        If the parameters do not fit the file (e.g. its sample rate is too low).
    """
    began = time.perf_counter()
    info = probe(source)
    params = TransformParams(
        bins_per_octave=bins_per_octave, fmin=fmin, tuning=tuning, n_octaves=n_octaves
    )
    complex_dtype = resolve_dtype(dtype)
    rate = info.sample_rate if sample_rate is None else _rate(sample_rate)
    grid = make_grid(rate, params)
    with AudioReader(info) as reader:
        if rate == info.sample_rate:
            read, n_samples = reader.read, info.frames
        else:
            resampler = Resampler(reader, info.sample_rate, rate)
            read, n_samples = resampler.read, resampler.n_samples
        units = transform_units(n_samples, grid)
        with Writer(
            destination,
            grid,
            n_samples,
            info.channels,
            dtype=complex_dtype,
            length=units * grid.hop_unit,
            compression=compression,
            source=_source_facts(info),
        ) as writer:
            for first, stop, arrays in analyze_signal(
                read, n_samples, info.channels, grid, complex_dtype,
                block_seconds=block_seconds, workers=workers,
            ):
                writer.write(first, stop, arrays)
                if progress is not None:
                    progress(stop, units)
            writer.set_source(sha256=reader.checksum())
    return EncodeReport(
        source=Path(source),
        destination=Path(destination),
        seconds=n_samples / rate,
        sample_rate=rate,
        channels=info.channels,
        bytes_written=Path(destination).stat().st_size,
        elapsed=time.perf_counter() - began,
    )


def _rate(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"sample_rate must be a positive integer, got {value!r}")
    return int(value)


def _source_facts(info: AudioInfo) -> dict:
    return {
        "name": info.path.name,
        "format": info.format,
        "subtype": info.subtype,
        "sample_rate": info.sample_rate,
        "frames": info.frames,
        "channels": info.channels,
        "bytes": info.path.stat().st_size,
        "checksum_of": info.checksum_of,
    }


def decoded_format(
    header: Header, *, format: str | None = None, subtype: str | None = None
) -> tuple[str, str, str]:
    """Return the ``(format, subtype, suffix)`` :func:`decode_file` writes ``header``'s file as."""
    return output_format(
        header.source.get("format"),
        header.source.get("subtype"),
        format=format,
        subtype=subtype,
        sample_rate=header.grid.sample_rate,
        channels=header.n_channels,
    )


def decode_file(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    format: str | None = None,
    subtype: str | None = None,
    workers: int | None = None,
    block_seconds: float | None = None,
    progress: Progress | None = None,
) -> DecodeReport:
    """Decode the msfreq file ``source`` into the audio file ``destination``.

    Parameters
    ----------
    source, destination : path-like
    format, subtype : str, optional
        soundfile format and subtype; default the source audio's (lossy sources are written
        as 24-bit FLAC).
    workers, block_seconds, progress
        As for :func:`encode_file`.

    Returns
    -------
    DecodeReport

    Raises
    ------
    FormatError
        If ``source`` is not a valid msfreq file, or a chunk is corrupted.
    AudioError
        If the audio cannot be written.
    """
    began = time.perf_counter()
    header = read_header(source)
    chosen_format, chosen_subtype, _ = decoded_format(header, format=format, subtype=subtype)
    grid = header.grid
    units = header.length // grid.hop_unit
    with open_reader(source) as reader, AudioWriter(
        destination, grid.sample_rate, header.n_channels, chosen_format, chosen_subtype
    ) as writer:

        def read(index: int, first: int, stop: int) -> np.ndarray:
            return reader.read(grid.bands[index], first, stop)

        for start, block in synthesize_signal(
            read, header.n_samples, grid, header.dtype,
            block_seconds=block_seconds, workers=workers,
        ):
            writer.write(block.T)
            end = start + block.shape[1]
            del block  # let the next block reuse the memory
            if progress is not None:
                progress(units if end >= header.n_samples else end // grid.hop_unit, units)
        checksum = writer.checksum()
    same_kind = (
        chosen_subtype == header.source.get("subtype")
        and header.source.get("sample_rate") == grid.sample_rate
    )
    recorded = header.source.get("sha256")
    identical = (checksum == recorded) if (same_kind and recorded) else None
    return DecodeReport(
        source=Path(source),
        destination=Path(destination),
        seconds=header.duration,
        format=chosen_format,
        subtype=chosen_subtype,
        identical=identical,
        elapsed=time.perf_counter() - began,
    )

