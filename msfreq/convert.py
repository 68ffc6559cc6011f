"""File to file: encode one audio file to an msfreq file, and decode one back.

This layer joins :mod:`msfreq.audio`, :mod:`msfreq.transform` and :mod:`msfreq.store`; it
streams long files block by block, so memory stays bounded whatever the file's length.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msfreq.audio import (
    AudioInfo,
    AudioReader,
    AudioWriter,
    Checksum,
    output_format,
    probe,
    quantize,
    snap,
    subtype_bits,
)
from msfreq.errors import AudioError, FormatError, ParameterError
from msfreq.params import (
    AUTO_ROUND_BITS,
    COMPRESSIONS,
    DEFAULT_COMPRESSION,
    DEFAULT_FILE_DTYPE,
    DEFAULT_ROUND_BITS,
    EXACT_BITS,
    MAX_PADDING,
    MAX_SAMPLE_RATE,
    MIN_BLOCK_BYTES,
    MIN_ROUND_BITS,
    SOURCE_WINDOW_BYTES,
    TransformParams,
    is_integer,
    resolve_dtype,
)
from msfreq.quantize import (
    CORRECTED_FRACTION,
    STEP_FRACTIONS,
    apply_corrections,
    band_steps,
    correction_codes,
    lsb,
)
from msfreq.representation import Progress
from msfreq.resample import input_reach, reduced_ratio, resample, resampled_length
from msfreq.scales import Grid, make_grid
from msfreq.store import Header, Storage, Writer, open_reader, read_header, select_channels
from msfreq.transform import (
    BLOCK_BYTES,
    READ_SAMPLES,
    analyze_signal,
    block_schedule,
    synthesize_range,
    synthesize_signal,
    transform_units,
)

__all__ = [
    "EncodeOptions",
    "DecodeOptions",
    "EncodeReport",
    "DecodeReport",
    "encode_file",
    "decode_file",
    "decoded_format",
    "decoded_checksum",
    "PHASES",
    "file_dtype",
    "ROUNDING_GUARD",
    "corrector",
    "decoded_range",
    "read_audio",
    "verify_decode",
    "source_grid",
    "exact_grid",
    "Resampler",
    "Rounded",
]



def _check_memory(memory: object) -> None:
    if memory is not None and (not is_integer(memory) or memory < MIN_BLOCK_BYTES):
        raise ParameterError(f"memory must be None or at least {MIN_BLOCK_BYTES >> 20} MiB "
                             f"({MIN_BLOCK_BYTES} bytes), got {memory!r}")


def _budget(memory: int | None) -> int:
    """The bytes a transform may take: ``memory``, or by default
    :data:`~msfreq.params.BLOCK_BYTES`."""
    return BLOCK_BYTES if memory is None else int(memory)


@dataclass(frozen=True)
class EncodeOptions:
    """How :func:`encode_file` encodes: one value travels from the command line to the writer.

    Attributes
    ----------
    params : TransformParams
    dtype : {"auto", "complex64", "complex128"}
        ``"auto"``: complex128 for integer sources of 17 to 32 bits (so that they decode
        bit-identically), else complex64 (see :data:`msfreq.params.DEFAULT_FILE_DTYPE`).
    compression : {"lz4", "zstd", "gzip", "none"}
    sample_rate : int or None
        Resample to this rate first (None: keep the file's rate).
    keep_bits : int or None
        Trade exactness for size: store float coefficients with this many mantissa bits.
        None (default): integer sources whose samples the precision can give back exactly
        are stored as integer multiples of a step derived from their LSB, checked to decode
        bit-identically; everything else is stored as computed.
    block_seconds : float or None
        Files longer than about this are processed block by block.
    memory : int or None
        Bytes the transform may take (None: :data:`~msfreq.params.BLOCK_BYTES`, 560 MiB; at
        least :data:`~msfreq.params.MIN_BLOCK_BYTES`): files whose transform needs more are
        processed in blocks with overlapping margins.  More memory, fewer blocks: long
        high-rate files encode 1.5-2x as fast with 1200 MiB (benchmarks/MEMORY.md).
    workers : int or None
        FFT threads.
    codes : bool
        Integer sources: steps of 0.7 LSB made exact by a correction code per sample (True,
        the default; format version 4), or steps fine enough to round back by themselves
        (False: about 12 % larger, readable by msfreq 0.3, or by 0.2 with zstd, gzip or none;
        coefficients within 0.09 LSB RMS instead of 0.23).
    round_bits : int, "auto" or None
        Trade precision below a stated level for size, keeping a bit-for-bit check: round the
        samples to multiples of ``2**(1 - round_bits)`` of full scale first (see
        :class:`Rounded`), then store them as levels that decode to the rounded samples exactly
        (checked, like an integer source's).  For float and lossy sources (a 3-minute MP3:
        1.67x the 16-bit WAV at 16 bits, against 4.5x unrounded), integer sources deeper
        than ``round_bits``, and resampled sources (rounded to at most their own depth).  The
        file records the rounding and its SNR against the source (format version 5).
        ``MIN_ROUND_BITS`` to 24; above 16 the file is complex128.  ``"auto"`` (the default,
        see :data:`~msfreq.params.DEFAULT_ROUND_BITS`): 16 bits for lossy sources and
        resampled integer sources of up to 16 bits (their own depth), else none; ``None``:
        never.
    """

    params: TransformParams = TransformParams()
    dtype: str = DEFAULT_FILE_DTYPE
    compression: str = DEFAULT_COMPRESSION
    sample_rate: int | None = None
    keep_bits: int | None = None
    block_seconds: float | None = None
    memory: int | None = None
    workers: int | None = None
    codes: bool = True
    round_bits: int | str | None = DEFAULT_ROUND_BITS

    def __post_init__(self) -> None:
        if not isinstance(self.params, TransformParams):
            raise ParameterError(f"params must be a TransformParams, got {self.params!r}")
        if self.dtype != "auto":
            object.__setattr__(self, "dtype", resolve_dtype(self.dtype).name)
        if self.compression not in COMPRESSIONS:
            raise ParameterError(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        if self.sample_rate is not None:
            object.__setattr__(self, "sample_rate", _rate(self.sample_rate))
        _check_memory(self.memory)
        if self.keep_bits is not None:
            mantissa = np.finfo(np.dtype(self.dtype if self.dtype != "auto" else "complex64")).nmant
            bits = self.keep_bits
            if not is_integer(bits) or not 1 <= bits <= mantissa:
                raise ParameterError(f"keep_bits must be in 1..{mantissa} for {self.dtype}, got {bits!r}")
        if self.round_bits is not None and self.round_bits != "auto":
            finest = EXACT_BITS["complex64" if self.dtype == "complex64" else "complex128"]
            bits = self.round_bits
            if not is_integer(bits) or not MIN_ROUND_BITS <= bits <= finest:
                raise ParameterError(f"round_bits must be 'auto', None or in {MIN_ROUND_BITS}..{finest} for "
                                     f"{self.dtype} (the grids whose levels it gives back "
                                     f"exactly), got {bits!r}")
            if self.keep_bits is not None:
                raise ParameterError("round_bits and keep_bits exclude each other (rounded "
                                     "samples are stored as exact levels, keep_bits rounds "
                                     "float coefficients)")


@dataclass(frozen=True)
class DecodeOptions:
    """How :func:`decode_file` decodes.

    Attributes
    ----------
    format, subtype : str or None
        soundfile format and subtype; default the source's (see
        :func:`msfreq.audio.output_format`).
    block_seconds, memory, workers
        As in :class:`EncodeOptions`.
    phase : {"stored", "reconstruct"}
        ``reconstruct`` rebuilds the phase from the magnitudes (:func:`msfreq.reconstruct_phase`,
        ``iterations`` of fast Griffin-Lim; the whole file is held in memory); it is how a
        magnitude file is decoded.
    iterations : int
    """

    format: str | None = None
    subtype: str | None = None
    block_seconds: float | None = None
    memory: int | None = None
    workers: int | None = None
    phase: str = "stored"
    iterations: int = 100

    def __post_init__(self) -> None:
        _check_memory(self.memory)
        if self.phase not in PHASES:
            raise ParameterError(f"phase must be one of {PHASES}, got {self.phase!r}")
        if not is_integer(self.iterations) \
                or self.iterations < 0:
            raise ParameterError(f"iterations must be an integer >= 0, got {self.iterations!r}")


#: ``stored``: decode the coefficients; ``reconstruct``: ignore the stored phase and rebuild
#: it from the magnitudes (what a magnitude-only model's output would sound like).
PHASES = ("stored", "reconstruct")


@dataclass(frozen=True)
class EncodeReport:
    """What :func:`encode_file` did.

    ``exact`` is True when the stored coefficients were checked to decode to exactly the
    source samples, False when they were checked and do not (the precision is too low for
    the source, e.g. 24-bit audio in complex64), None when no check was made: ``unchecked``
    says why (``"resampled"``, or ``"single precision"`` for a float or lossy source on no
    integer grid in complex64, whose float samples single precision does not give back bit for
    bit; ``--precision double`` does, checked).  ``storage`` is ``"levels"`` (integers) or
    ``"float"``.  ``grid_bits`` is set where the source's samples lay on a coarser grid than
    its subtype's (e.g. 16 for a 24-bit file of 16-bit content) and were stored for that grid.
    ``rounded_bits`` is set where the samples were rounded to that grid first
    (``EncodeOptions.round_bits``): ``exact`` then says whether the file decodes to the rounded
    samples, and ``rounding_snr_db`` is the rounding's SNR against the samples it rounded
    (the source's, or resampled; None: the rounding changed nothing).  ``source_rate`` is the
    source's sample rate (``sample_rate`` differs where it was resampled); ``silent``: every
    source sample is zero (``grid_bits`` is then 1).
    """

    source: Path
    destination: Path
    seconds: float
    sample_rate: int
    channels: int
    bytes_written: int
    elapsed: float
    exact: bool | None = None
    storage: str = "float"
    grid_bits: int | None = None
    unchecked: str | None = None
    rounded_bits: int | None = None
    rounding_snr_db: float | None = None
    source_rate: int | None = None
    silent: bool = False


@dataclass(frozen=True)
class DecodeReport:
    """What :func:`decode_file` did.

    ``identical`` is True when the decoded samples are bit-identical to the source samples
    the file was encoded from (matching SHA-256, in the source's own sample format), False
    when they differ, and None when the file records no checksum; for a file whose samples
    were rounded when it was encoded (``rounded_bits``, see ``EncodeOptions.round_bits``), the
    comparison is with the rounded samples.  ``losses`` lists, in words, what the output loses
    against the source (fewer bits, clipped samples).
    """

    source: Path
    destination: Path
    seconds: float
    format: str
    subtype: str
    identical: bool | None
    elapsed: float
    losses: tuple[str, ...] = ()
    rounded_bits: int | None = None


class Resampler:
    """Read an :class:`AudioReader` at another sample rate, by polyphase filtering in blocks
    (:func:`msfreq.resample.resample`).

    ``read(a, b)`` returns output samples ``a:b``; each call filters the input range it needs
    plus a margin longer than the filter, and starts on a whole period of the rate ratio, so
    reads in blocks give the same samples as one read of everything.
    """

    def __init__(self, reader: AudioReader, source_rate: int, target_rate: int) -> None:
        self.reader = reader
        self.up, self.down = reduced_ratio(target_rate, source_rate)
        self.available = reader.info.frames
        self.n_samples = self.length(self.available, source_rate, target_rate)
        self.margin = input_reach(self.up, self.down)

    @staticmethod
    def length(frames: int, source_rate: int, target_rate: int) -> int:
        """Samples that ``frames`` at ``source_rate`` become at ``target_rate``."""
        return resampled_length(frames, target_rate, source_rate)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Return resampled samples ``start:stop``, shape (stop - start, channels)."""
        first = (start * self.down // self.up - self.margin) // self.down * self.down
        last = -(-stop * self.down // self.up) + self.margin
        low, high = max(first, 0), min(last, self.available)
        block = np.zeros((last - first, self.reader.info.channels))
        if high > low:
            block[low - first : high - first] = self.reader.read(low, high)
        filtered = resample(block, self.up, self.down)
        offset = start - first * self.up // self.down
        return filtered[offset : offset + stop - start]


class Rounded:
    """The samples an encode with ``EncodeOptions.round_bits`` transforms: those of ``read``
    rounded to multiples of ``2**(1 - bits)`` of full scale, which its file then decodes to
    bit for bit.

    A float or lossy source keeps values beyond full scale (its rounded samples may exceed
    it, as the source's did); an integer source's stay inside its range (rounding would take
    the top sample to +1.0, which no integer subtype holds).  The first time reads reach
    samples in order from the start, the rounded samples go into a checksum in the form of
    the source's subtype (as a decode's is computed, see :class:`~msfreq.audio.Checksum`),
    and the change into :attr:`snr_db`.

    Parameters
    ----------
    read : callable
        ``read(a, b)``: float samples ``a:b``, shape (b - a, channels).
    n_samples : int
    subtype : str
        The source's soundfile subtype.
    bits : int
    integer : bool
        Whether the source's samples are integers.
    """

    def __init__(self, read, n_samples: int, subtype: str, bits: int, integer: bool) -> None:
        self._read = read
        self.n_samples = n_samples
        self.bits = bits
        self._top = 1.0 - lsb(bits) if integer else None
        self._checksum = Checksum(subtype)
        self._done = 0
        self._signal = 0.0
        self._change = 0.0

    def read(self, start: int, stop: int) -> np.ndarray:
        """Return rounded samples ``start:stop``, shape (stop - start, channels)."""
        samples = self._read(start, stop)
        rounded = snap(samples, self.bits)
        if self._top is not None:
            np.clip(rounded, -1.0, self._top, out=rounded)
        if start <= self._done < stop:
            fresh = slice(self._done - start, None)
            self._checksum.update(rounded[fresh])
            change = rounded[fresh] - samples[fresh]
            self._change += float(np.vdot(change, change))
            self._signal += float(np.vdot(samples[fresh], samples[fresh]))
            self._done = stop
        return rounded

    def scan(self) -> None:
        """Read every sample once, in order, for :meth:`checksum` and :attr:`snr_db`."""
        for start in range(self._done, self.n_samples, READ_SAMPLES):
            self.read(start, min(start + READ_SAMPLES, self.n_samples))

    def checksum(self) -> str | None:
        """SHA-256 (hex) of the rounded samples, or None if the reads did not cover them."""
        return self._checksum.hexdigest() if self._done == self.n_samples else None

    @property
    def snr_db(self) -> float | None:
        """Power of the source against that of what rounding changed, in dB, over the samples
        read in order so far (None where nothing changed)."""
        if self._change == 0.0:
            return None
        return 10.0 * float(np.log10(self._signal / self._change))


def _rounding(info: AudioInfo, options: EncodeOptions, resampled: bool) -> int | None:
    """The bits ``info``'s samples are rounded to before they are encoded (see
    :class:`Rounded`), or None: ``options.round_bits`` for float, lossy and deeper integer
    sources; a resampled integer source's at most its own depth (what its decode is written
    in).  ``"auto"``: see :data:`~msfreq.params.DEFAULT_ROUND_BITS`."""
    bits = options.round_bits
    if bits == "auto":
        bits = None
        if options.keep_bits is None and options.dtype != "complex128":
            if info.lossy:
                bits = AUTO_ROUND_BITS
            elif resampled and (info.integer_bits or AUTO_ROUND_BITS + 1) <= AUTO_ROUND_BITS:
                bits = info.integer_bits
    if bits is None or (info.integer_bits is not None and info.integer_bits <= bits and not resampled):
        return None
    return bits if info.integer_bits is None else min(bits, info.integer_bits)


#: An encode counts as exact only if every decoded sample lies within 0.5 - this many LSB of
#: its level: decodes with another block layout or FFT build differ by float rounding (about
#: 0.01 LSB at 16 bits in complex64), which must never flip a sample.
ROUNDING_GUARD = 0.05


class _Retry(Exception):
    """The stored coefficients did not decode exactly: try the next, finer storage."""


def file_dtype(info: AudioInfo, options: EncodeOptions, resampled: bool,
               grid: int | None = None) -> np.dtype:
    """The coefficient dtype a file is encoded in (resolving ``"auto"``).

    ``grid``: the bits of the grid the source's samples lie on (see
    :func:`msfreq.audio.grid_bits`), when known; else the subtype's bit depth.
    """
    if options.dtype != "auto":
        return np.dtype(options.dtype)
    bits = info.integer_bits if grid is None else grid
    # Integer sources deeper than complex64 gives back: complex128 returns them up to 32 bits
    # (levels up to 24, unrounded coefficients beyond; the encoder checks both).  Floats on a
    # grid count as deep up to 24 bits only.
    deep = bits is not None and bits > EXACT_BITS["complex64"] and (
        bits <= EXACT_BITS["complex128"] or info.integer_bits is not None)
    exact_wanted = options.keep_bits is None and (not resampled or grid is not None)
    return np.dtype("complex128" if deep and exact_wanted else "complex64")


def _unchecked(info: AudioInfo, grid: Grid, bits: int | None, dtype: np.dtype) -> str | None:
    """Why an encode does not check that its file decodes to the source bit for bit, or None
    where it does.  ``bits``: the grid the source's samples lie on (see :func:`_exact_bits`).

    A float or lossy source on no integer grid, in single precision, would not pass: complex64
    gives samples back to about 2**-22 of full scale, and a float32 sample holds 24 bits of its
    own size.  Its check would cost a whole synthesis (measured: a third of the encode) to say so, so
    it is not made, and the file's line says so (with ``--precision double`` such sources do
    come back bit for bit, and are checked).
    """
    if bits is not None:  # on a grid (its own, or rounded to one): checked
        return None
    if grid.sample_rate != info.sample_rate:
        return "resampled"
    if np.dtype(dtype) == np.complex64:
        return "single precision"
    return None


def _exact_bits(info: AudioInfo, grid: int | None) -> int | None:
    """The bits of the grid an exact decode must give the source's samples back on: the
    coarsest grid they lie on (``grid``, see :func:`msfreq.audio.grid_bits`) where that is
    coarser than their subtype's and exactly storable, else the subtype's depth (None for a
    float or lossy source on no such grid)."""
    if grid is not None and grid <= EXACT_BITS["complex128"] and (
        info.integer_bits is None or grid < info.integer_bits
    ):
        return grid
    return info.integer_bits


def _storages(options: EncodeOptions, grid: Grid, bits: int | None, dtype: np.dtype):
    """The storages to try in turn, each with whether it is the last.  ``bits``: those of
    the grid the source's samples lie on (None: no grid, or resampled).  First coarse steps
    with correction codes, then finer steps that round back by themselves, then floats."""
    tries: list[Storage] = []
    if options.keep_bits is None and bits is not None and bits <= EXACT_BITS[dtype.name]:
        unit = lsb(bits)
        if options.codes:
            tries.append(Storage(dtype=dtype, correction_bits=bits,
                                 steps=band_steps(grid.bands, unit, CORRECTED_FRACTION)))
        tries += [Storage(dtype=dtype, steps=band_steps(grid.bands, unit, fraction))
                  for fraction in STEP_FRACTIONS]
    tries.append(Storage(dtype=dtype, keep_bits=options.keep_bits))
    return [(storage, index == len(tries) - 1) for index, storage in enumerate(tries)]


def decoded_checksum(
    read, n_samples: int, channels: int, grid: Grid, dtype: np.dtype, subtype: str, *,
    block_seconds: float | None = None, workers: int | None = None,
    progress: Progress | None = None, sink=None, grid_bits: int | None = None, fix=None,
    sink_quantized: bool = False, memory: int | None = None,
) -> Checksum:
    """The SHA-256 (and, for integer subtypes, the rounding margin) of the samples that the
    coefficients ``read`` gives access to decode to, in the sample form of a source of
    ``subtype`` (as :class:`~msfreq.audio.AudioReader` hashes it).

    Parameters
    ----------
    read : callable
        ``read(band_index, first_frame, stop_frame, channel)``, as for
        :func:`~msfreq.transform.synthesize_signal`.
    sink : callable, optional
        Also called with every decoded block, shape (frames, channels), in order; with
        ``sink_quantized``, ``sink(block, quantized)`` with the block as hashed (see
        :meth:`~msfreq.audio.Checksum.update`).
    grid_bits : int, optional
        The source's samples lie on this grid (see :func:`msfreq.audio.grid_bits`): the
        decoded samples are rounded to it.
    fix : callable, optional
        ``fix(start, samples)`` returns the decoded block that starts at sample ``start``
        (shape (frames, channels)) corrected (see :func:`corrector`), before it is hashed.
    memory : int, optional
        Bytes the synthesis may take (default :data:`~msfreq.params.BLOCK_BYTES`).
    """
    checksum = Checksum(subtype, grid_bits)
    units = transform_units(n_samples, grid)
    for start, block in synthesize_signal(read, n_samples, channels, grid, dtype,
                                          block_seconds=block_seconds, memory=_budget(memory),
                                          workers=workers):
        samples = block.T
        if fix is not None:
            samples = fix(start, samples)
        if sink is not None and sink_quantized:
            # a piece at a time: the converted samples of a whole block would take 63 MB more
            # (3 minutes of stereo; measured, 0.9.0's first try: decode peaks +62-72 MB)
            for first in range(0, samples.shape[0], READ_SAMPLES):
                piece = samples[first : first + READ_SAMPLES]
                sink(piece, checksum.update(piece, keep=True))
                del piece  # a view: it would keep the block alive through the next one
        else:
            checksum.update(samples)
            if sink is not None:
                sink(samples)
        end = start + samples.shape[0]
        if progress is not None:
            progress(units if end >= n_samples else end // grid.hop_unit, units)
        del block, samples
    return checksum


def encode_file(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    options: EncodeOptions | None = None,
    *,
    progress: Progress | None = None,
) -> EncodeReport:
    """Encode the audio file ``source`` into the msfreq file ``destination``.

    The coefficients written are decoded again before the file is committed, and the result
    compared with the source samples (SHA-256): the file records whether it decodes exactly.
    Integer sources are stored as integer multiples of a step derived from their LSB; if
    such a file does not decode exactly, it is written again with a finer step, and at last
    unrounded, so rounding never costs exactness.

    Parameters
    ----------
    source, destination : path-like
    options : EncodeOptions, optional
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    EncodeReport

    Raises
    ------
    AudioError
        If ``source`` is not readable audio.
    ParameterError
        If the parameters do not fit the file (e.g. its sample rate is too low).

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> sf.write(folder / "a.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 8000), 8000,
    ...          subtype="PCM_16")
    >>> report = encode_file(folder / "a.wav", folder / "a.wav.h5")
    >>> report.exact, report.storage
    (True, 'levels')
    """
    began = time.perf_counter()
    options = EncodeOptions() if options is None else options
    info = probe(source)
    rate = info.sample_rate if options.sample_rate is None else options.sample_rate
    grid = make_grid(rate, options.params)
    resampled = rate != info.sample_rate
    rounding = _rounding(info, options, resampled)
    chosen = file_dtype(info, options, resampled, rounding)
    n_samples = Resampler.length(info.frames, info.sample_rate, rate) if resampled else info.frames
    padding = (transform_units(n_samples, grid) * grid.hop_unit - n_samples) * info.channels
    if padding > MAX_PADDING:
        raise AudioError(
            f"{source}: its header says {info.channels:,} channels at {rate:,} Hz for "
            f"{n_samples:,} frames; padded to a whole lowest-octave hop ({grid.hop_unit:,} "
            f"samples) it would add {padding:,} samples, more than the {MAX_PADDING:,} msfreq "
            "adds (a damaged header? with real audio: fewer --bins-per-octave or a higher --fmin "
            "shorten the hop)")
    schedule = block_schedule(grid, n_samples, info.channels, dtype=chosen,
                              block_seconds=options.block_seconds, memory=_budget(options.memory))
    window = _window_frames(info, grid, None if resampled else schedule)
    with AudioReader(info, window_frames=window) as reader:
        read = Resampler(reader, info.sample_rate, rate).read if resampled else reader.read
        # what the file must decode to: its reads and checksum
        target = reader
        if rounding is not None:
            target = Rounded(read, n_samples, info.subtype, rounding, info.integer_bits is not None)
            read = target.read
        units = transform_units(n_samples, grid)
        # The grid the samples lie on decides the rounding steps, so it is known before
        # anything is written: a file transformed whole is hashed and scanned as the
        # transform reads it, a longer one is read once ahead (cheap beside the transform).
        # Where the grid can also decide the dtype (a source deeper than complex64 keeps
        # exactly, or floats), a file transformed whole is read whole first.
        whole = None
        if schedule is None:
            reading = read
            if rounding is None and not resampled and (info.integer_bits or 99) > EXACT_BITS["complex64"]:
                samples = _read_whole(read, n_samples, info.channels)
                chosen = file_dtype(info, options, resampled, _exact_bits(info, reader.grid_bits()))
                reading = lambda a, b: samples[a:b]  # noqa: E731
            whole = next(iter(analyze_signal(reading, n_samples, info.channels, grid, chosen,
                                             memory=_budget(options.memory),
                                             workers=options.workers)))[3]
            reading = samples = None
        elif rounding is None and not resampled:
            reader.scan()  # (rounded samples need no scan: their grid is known)
        bits = rounding or (None if resampled else _exact_bits(info, reader.grid_bits()))
        dtype = file_dtype(info, options, resampled, bits)
        if whole is not None and chosen != dtype:  # cannot happen: the grid was known
            raise AssertionError(f"{source}: internal: analysed in {chosen}, not {dtype}")
        for storage, last in _storages(options, grid, bits, dtype):
            try:
                exact = _write(destination, reader, target, read, n_samples, info, grid, storage,
                               whole, options, units, last, progress, bits,
                               None if bits == info.integer_bits else bits)
            except _Retry:
                continue
            break
    return EncodeReport(
        source=Path(source),
        destination=Path(destination),
        seconds=n_samples / rate,
        sample_rate=rate,
        channels=info.channels,
        bytes_written=Path(destination).stat().st_size,
        elapsed=time.perf_counter() - began,
        exact=exact,
        storage=storage.form,
        grid_bits=None if bits == info.integer_bits else bits,
        unchecked=_unchecked(info, grid, bits, storage.dtype) if exact is None else None,
        rounded_bits=rounding,
        rounding_snr_db=target.snr_db if rounding is not None else None,
        source_rate=info.sample_rate,
        silent=rounding is None and not resampled and reader.silent,
    )


def _window_frames(info: AudioInfo, grid: Grid, schedule) -> int:
    """Frames of the source its reader holds while it is encoded (see
    :class:`~msfreq.audio.AudioReader`), at most :data:`~msfreq.params.SOURCE_WINDOW_BYTES`,
    given the encode's block schedule (None: transformed whole, or resampled):

    * a coded source (FLAC, lossy ...): the whole file where it fits, else a block's span where
      blocks are read a channel at a time;
    * PCM or floats: the whole file where it fits and is transformed in blocks with margins or
      a channel at a time (read more than the three times any encode reads it).

    Measured (one core, 0.6.0 against 0.7.0 in one session): a 3-minute stereo FLAC was
    decoded 3 times per encode (the grid scan, the transform, the comparison with the decode),
    2.04 -> 1.67 s; 24-bit stereo FLAC at 96 and 192 kHz 8.6 and about 12 times (blocks read a
    channel at a time, margins twice the block), 25.8 -> 21.4 s for 5 minutes at 96 kHz (+77
    MB) and 47.5 -> 34.7 s for 150 s at 192 kHz (+111 MB); a 3-minute 24-bit stereo WAV
    (double precision, blocks with margins: read 3.8 times) 3.49 -> 3.11 s (+60 MB; medians of
    4 rounds), while a 3-minute 16-bit WAV (read 3 times) took 5 % longer with a window, so it
    gets none.  Where
    blocks of a coded source are read once for all channels only their margins are read
    again: a window saved 2 % (7 minutes of 6-channel 48 kHz) for 105 MB, so none."""
    most = SOURCE_WINDOW_BYTES // info.frame_bytes
    read_again = schedule is not None and (schedule.margin_units > 0 or not schedule.shared_reads)
    if info.frames <= most and (info.coded or read_again):
        return info.frames
    if not info.coded or schedule is None or schedule.shared_reads:
        return 0
    span = schedule.span_units * grid.hop_unit
    return span if span <= most else 0


def _read_whole(read, n_samples: int, channels: int) -> np.ndarray:
    """Samples ``0:n_samples`` as float64, shape (n_samples, channels), read in pieces: what the
    reader makes of each read (hashing, the grid scan, conversions) stays the size of a piece
    (measured, 200-s stereo float WAV: peak 1,051 MB in one read, the whole encode)."""
    samples = np.empty((n_samples, channels))
    for first in range(0, n_samples, READ_SAMPLES):
        last = min(first + READ_SAMPLES, n_samples)
        samples[first:last] = read(first, last)
    return samples


def _write(destination, reader: AudioReader, target: AudioReader | Rounded, read, n_samples: int,
           info: AudioInfo, grid: Grid, storage: Storage, whole, options: EncodeOptions,
           units: int, last: bool, progress: Progress | None, bits: int | None,
           recorded: int | None) -> bool | None:
    """Write one attempt; return whether it decodes exactly; raise _Retry to try again.
    ``target``: the samples the file must decode to (``reader``'s, or rounded); ``bits``: the
    grid the decoded samples must land on; ``recorded``: the same, where a decode must be told
    (it differs from the subtype's depth)."""
    dtype = storage.dtype
    rounded = target if isinstance(target, Rounded) else None
    checking = _unchecked(info, grid, bits, dtype) is None

    def advance(done: int, total: int) -> None:
        if progress is not None:
            progress(done, 2 * total if checking else total)

    def verified(done: int, total: int) -> None:
        if progress is not None:
            progress(total + done, 2 * total)

    with Writer(destination, grid, n_samples, info.channels, storage=storage,
                length=units * grid.hop_unit, compression=options.compression,
                source={**_source_facts(info), "grid_bits": recorded,
                        "rounded_bits": rounded and rounded.bits}) as writer:
        if whole is not None:
            if any(values is None for values in whole):  # an attempt before used them up
                whole[:] = next(iter(analyze_signal(read, n_samples, info.channels, grid, dtype,
                                                    memory=_budget(options.memory),
                                                    workers=options.workers)))[3]
            stored = []
            for index in range(len(whole)):
                stored.append(storage.to_stored(index, whole[index]))
                whole[index] = None  # each band's memory goes as its stored form comes
            if any(values is None for values in stored):
                raise _Retry
            writer.write(0, units, stored)
            advance(units, units)

            def frames(index: int, first: int, stop: int, channel: int) -> np.ndarray:
                band = grid.bands[index]
                picked = stored[index][channel : channel + 1, :, first:stop]
                return storage.from_stored(index, band, picked)
        else:
            for first, stop, channels, arrays in analyze_signal(
                read, n_samples, info.channels, grid, dtype,
                block_seconds=options.block_seconds, memory=_budget(options.memory),
                workers=options.workers,
            ):
                stored = [storage.to_stored(index, values) for index, values in enumerate(arrays)]
                if any(values is None for values in stored):
                    raise _Retry
                writer.write(first, stop, stored, channels)
                del stored
                if (channels.stop or info.channels) == info.channels:  # the block's last part
                    advance(stop, units)
            frames = writer.read
        if rounded is not None:
            rounded.scan()  # nothing to do where the transform read every sample in order
        checksum = target.checksum()
        exact = None
        if checksum is not None and checking:
            fix = _coder(target, writer, storage.correction_bits) if storage.corrected else None
            decoded = decoded_checksum(frames, n_samples, info.channels, grid, dtype, info.subtype,
                                       block_seconds=options.block_seconds, memory=options.memory,
                                       workers=options.workers, progress=verified,
                                       grid_bits=bits, fix=fix)
            # Exact, with room to spare: a decode elsewhere (another block layout, another
            # FFT build) differs by float rounding, far less than this guard.
            exact = decoded.hexdigest() == checksum and decoded.worst <= 0.5 - ROUNDING_GUARD
            if not exact and not last:
                raise _Retry
        writer.set_source(sha256=reader.checksum())
        if rounded is not None:
            writer.set_source(rounded_sha256=checksum, rounding_snr_db=rounded.snr_db)
        writer.set_exact(exact)
    return exact


def _rate(value: object) -> int:
    if not is_integer(value) or not 1 <= value <= MAX_SAMPLE_RATE:
        raise ParameterError(f"sample_rate must be an integer in 1..{MAX_SAMPLE_RATE:,}, got {value!r}")
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
    header: Header, options: DecodeOptions | None = None
) -> tuple[str, str, str, tuple[str, ...]]:
    """Return the ``(format, subtype, suffix, losses)`` :func:`decode_file` writes
    ``header``'s file as (see :func:`msfreq.audio.output_format`)."""
    options = DecodeOptions() if options is None else options
    return output_format(
        header.source.get("format"),
        header.source.get("subtype"),
        format=options.format,
        subtype=options.subtype,
        sample_rate=header.grid.sample_rate,
        channels=header.n_channels,
        grid=exact_grid(header),
    )


def source_grid(header: Header) -> int | None:
    """The bits of the grid the file's source samples lay on (``source_grid_bits``, written
    from format version 2.1), or None (not recorded, or not a sensible value)."""
    bits = header.source.get("grid_bits")
    if is_integer(bits) and 1 <= bits <= 32:
        return int(bits)
    return None


def exact_grid(header: Header) -> int | None:
    """The bits of the grid that the file's decode lands exactly on the source samples when
    rounded to, for a file written as decoding exactly (None otherwise, or for float sources
    on no grid)."""
    if not header.exact:
        return None
    return source_grid(header) or subtype_bits(header.source.get("subtype"))


#: Samples per channel read back from the source at a time to compute correction codes.
_FIX_FRAMES = 1 << 18


def _corrected_like(decoded: np.ndarray, bits: int) -> np.ndarray:
    """An empty array for the corrected form of ``decoded``: float32 where it holds every
    level of a ``bits``-bit grid exactly (up to 24 bits), else float64."""
    return np.empty(decoded.shape, dtype=np.float32 if bits <= 24 else np.float64)


def _coder(target: AudioReader | Rounded, writer: Writer, bits: int):
    """The ``fix`` of :func:`decoded_checksum` for an encode: each decoded sample's correction
    code against the samples of ``target`` (read again, in pieces), written to ``writer``, and
    the samples corrected; raises _Retry where a code would not fit."""
    unit = lsb(bits)

    def fix(start: int, samples: np.ndarray) -> np.ndarray:
        decoded = samples.T  # by channel, as the blocks come
        fixed = _corrected_like(decoded, bits)
        for first in range(0, decoded.shape[1], _FIX_FRAMES):
            part = slice(first, first + _FIX_FRAMES)
            stop = min(first + _FIX_FRAMES, decoded.shape[1])
            source = target.read(start + first, start + stop).T
            codes = correction_codes(decoded[:, part], source, unit, ROUNDING_GUARD)
            if codes is None:
                raise _Retry
            writer.write_corrections(start + first, codes)
            apply_corrections(decoded[:, part], codes, unit, out=fixed[:, part])
        return fixed.T

    return fix


def corrector(reader, channels: Sequence[int] | None = None):
    """The ``fix`` of :func:`decoded_checksum` that applies the correction codes of the open
    file ``reader`` (of ``channels``, default all) to decoded samples; None if it has none.

    ``fix(start, samples)``: samples of shape (frames, channels) from sample ``start`` on; those
    past the file's end are returned as they are."""
    storage = reader.header.storage
    if not storage.corrected:
        return None
    unit = lsb(storage.correction_bits)

    def fix(start: int, samples: np.ndarray) -> np.ndarray:
        decoded = samples.T  # by channel, as the blocks come
        codes = reader.corrections(start, start + decoded.shape[1], channels)
        fixed = _corrected_like(decoded, storage.correction_bits)
        kept = codes.shape[1]
        apply_corrections(decoded[:, :kept], codes, unit, out=fixed[:, :kept])
        fixed[:, kept:] = decoded[:, kept:]  # past the file's end: as they are
        return fixed.T

    return fix


def decoded_range(reader, first: int, stop: int, channels: Sequence[int]) -> np.ndarray:
    """Samples ``first:stop`` of ``channels`` of the open file ``reader``, as its decode
    gives them: correction codes applied and, for a file that decodes exactly, rounded to the
    source's grid (so the source's samples, bit for bit); zeros past the end.  The cost
    depends on the range, not on the file's length (see
    :func:`~msfreq.transform.synthesize_range`).

    Returns
    -------
    ndarray, shape (len(channels), stop - first)
    """
    header = reader.header
    audio = synthesize_range(_frames_of(reader, channels), header.n_samples, len(channels),
                             header.grid, header.dtype, first, stop)
    return _as_decoded(reader, first, audio, channels)


def _frames_of(reader, channels: Sequence[int]):
    """The ``read(band_index, first_frame, stop_frame, channel)`` of
    :func:`~msfreq.transform.synthesize_signal` over ``channels`` of the open file ``reader``."""
    bands = reader.header.grid.bands

    def read(band: int, begin: int, end: int, channel: int) -> np.ndarray:
        return reader.read(bands[band], begin, end, [channels[channel]])

    return read


def _as_decoded(reader, first: int, audio: np.ndarray, channels: Sequence[int]) -> np.ndarray:
    """``audio`` (channels, samples from ``first``) with the file's correction codes applied
    and, where the file decodes exactly, rounded to the source's grid, or (a float or lossy
    source) to its sample format: the source's samples bit for bit."""
    fix = corrector(reader, channels)
    if fix is not None:
        audio = fix(first, audio.T).T
    bits = exact_grid(reader.header)
    if bits is not None:
        return snap(audio, bits)
    subtype = reader.header.source.get("subtype")
    if reader.header.exact and isinstance(subtype, str):
        # a float or lossy source given back exactly (double precision): in its own sample
        # format, as decode_file writes it (float32 for FLOAT and lossy decodes)
        return quantize(audio, subtype).astype(np.float64)
    return np.asarray(audio, dtype=np.float64)


def read_audio(
    source: str | os.PathLike,
    *,
    start: float | None = None,
    stop: float | None = None,
    channels: object = None,
) -> tuple[np.ndarray, int]:
    """Decode the msfreq file ``source`` (or seconds ``start`` to ``stop`` of it) into memory.

    The samples are those :func:`decode_file` writes: for a file that decodes exactly (see
    :attr:`Header.exact`), the source's samples bit for bit (as floats of full scale 1, like
    ``soundfile.read``).  :func:`msfreq.decode` of :func:`msfreq.load`, by contrast, decodes
    the stored coefficients alone, within about a level of them.

    Parameters
    ----------
    source : path-like
    start, stop : float, optional
        Seconds; default the whole file.  A range is decoded from the frames around it only.
    channels : int or sequence of int, optional
        Default all.

    Returns
    -------
    samples : ndarray of float64, shape (frames, channels)
    sample_rate : int

    Raises
    ------
    FormatError
        If the file is invalid or a chunk is corrupted.
    ParameterError
        For a range outside the file, or a file of magnitudes only.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> x = np.round(np.random.default_rng(0).uniform(-0.5, 0.5, (8000, 2)) * 32768) / 32768
    >>> sf.write(folder / "a.wav", x, 8000, subtype="PCM_16")
    >>> _ = encode_file(folder / "a.wav", folder / "a.wav.h5")
    >>> samples, rate = read_audio(folder / "a.wav.h5")
    >>> rate, bool(np.array_equal(samples, x))
    (8000, True)
    >>> part, _ = read_audio(folder / "a.wav.h5", start=0.25, stop=0.5, channels=1)
    >>> bool(np.array_equal(part[:, 0], x[2000:4000, 1]))
    True
    """
    with open_reader(source) as reader:
        header = reader.header
        if header.storage.magnitudes:
            raise ParameterError(f"{source}: holds magnitudes only (no phase): rebuild a phase "
                                 "first (msfreq.reconstruct_phase)")
        rate, n_samples = header.grid.sample_rate, header.n_samples
        picked = select_channels(header.n_channels, channels) or list(range(header.n_channels))
        first = 0 if start is None else int(round(start * rate))
        last = n_samples if stop is None else int(round(stop * rate))
        if not 0 <= first < last <= n_samples:
            raise ParameterError(f"{source}: need 0 <= start < stop <= {header.duration:.6f} s, "
                                 f"got {start!r}, {stop!r}")
        if (first, last) != (0, n_samples):
            return decoded_range(reader, first, last, picked).T, rate
        out = np.empty((n_samples, len(picked)))
        for begin, block in synthesize_signal(_frames_of(reader, picked), n_samples, len(picked),
                                              header.grid, header.dtype, memory=BLOCK_BYTES):
            out[begin : begin + block.shape[1]] = _as_decoded(reader, begin, block, picked).T
        return out, rate


def _check(header: Header) -> tuple[str | None, str | None]:
    """The source subtype and SHA-256 a decode can be checked against (None: cannot): the
    source samples', or, for a file of rounded samples (format version 5), the rounded
    samples' (resampled or not)."""
    subtype = header.source.get("subtype")
    rounded = header.rounded_bits is not None
    recorded = header.source.get("rounded_sha256" if rounded else "sha256")
    if (
        not isinstance(subtype, str) or not isinstance(recorded, str)
        or (header.source.get("sample_rate") != header.grid.sample_rate and not rounded)
    ):
        return None, None
    return subtype, recorded



def decode_file(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    options: DecodeOptions | None = None,
    *,
    progress: Progress | None = None,
) -> DecodeReport:
    """Decode the msfreq file ``source`` into the audio file ``destination``.

    The decoded samples are compared (SHA-256) with the source samples the file was encoded
    from.  If the file was written as decoding exactly and they differ, the file is damaged:
    nothing is written and :class:`~msfreq.errors.FormatError` is raised.

    Parameters
    ----------
    source, destination : path-like
    options : DecodeOptions, optional
    progress : callable, optional
        ``progress(done, total)``.

    Returns
    -------
    DecodeReport

    Raises
    ------
    FormatError
        If ``source`` is not a valid msfreq file, a chunk is corrupted, or the decode is
        not the exact one the file promises.
    AudioError
        If the audio cannot be written.
    """
    began = time.perf_counter()
    options = DecodeOptions() if options is None else options
    with open_reader(source) as reader:  # validated once; the header comes with it
        header = reader.header
        chosen_format, chosen_subtype, _, losses = decoded_format(header, options)
        if options.phase == "reconstruct":
            samples = _reconstructed(reader, options, progress)
            hint = ("" if header.grid.params.span > 1 else
                    "; span 1 leaves it ambiguous: encode with --span 3 for a closer one")
            losses = losses + (f"phase rebuilt from the magnitudes ({options.iterations} iterations"
                               f"{hint})",)
            identical = None
            with AudioWriter(destination, header.grid.sample_rate, header.n_channels,
                             chosen_format, chosen_subtype) as writer:
                writer.write(samples)
        else:
            identical, writer = _decode_stored(source, destination, reader, options,
                                               chosen_format, chosen_subtype, progress)
    if writer.clipped:
        losses = losses + (f"clipped {writer.clipped} samples (peak {writer.peak:.4f})",)
    return DecodeReport(
        source=Path(source),
        destination=Path(destination),
        seconds=header.duration,
        format=chosen_format,
        subtype=chosen_subtype,
        identical=identical,
        elapsed=time.perf_counter() - began,
        losses=losses,
        rounded_bits=header.rounded_bits,
    )


def _decode_stored(source, destination, reader, options: DecodeOptions, chosen_format: str,
                   chosen_subtype: str, progress: Progress | None) -> tuple[bool | None, AudioWriter]:
    """Decode the stored coefficients into ``destination``, checked against the source's
    checksum; return whether the samples are identical to the source's, and the writer."""
    header = reader.header
    grid = header.grid
    if header.storage.magnitudes:
        raise ParameterError(
            f"{source}: holds magnitudes only (no phase): decode it with --phase reconstruct "
            "(msfreq.reconstruct_phase in Python)"
        )
    subtype, recorded = _check(header)
    bits = source_grid(header)
    with AudioWriter(destination, grid.sample_rate, header.n_channels, chosen_format,
                     chosen_subtype, grid=bits) as writer:

        read = _frames_of(reader, range(header.n_channels))
        checksum = decoded_checksum(
            read, header.n_samples, header.n_channels, grid, header.dtype, subtype or chosen_subtype,
            block_seconds=options.block_seconds, memory=options.memory, workers=options.workers,
            progress=progress, sink=writer.write, grid_bits=bits, fix=corrector(reader),
            # hashed as written (the same subtype and grid): converted once, for both
            sink_quantized=(subtype or chosen_subtype) == chosen_subtype,
        ).hexdigest()
        identical = None if recorded is None else checksum == recorded
        if header.exact and not identical:
            raise FormatError(
                f"{source}: damaged: the decoded samples differ from the source samples that "
                "this file was written to decode to exactly (SHA-256 mismatch)"
            )
    return identical, writer


def _reconstructed(reader, options: DecodeOptions, progress: Progress | None) -> np.ndarray:
    """The audio of the file's magnitudes with the phase rebuilt (the stored phase ignored)."""
    from msfreq.phase import reconstruct_phase
    from msfreq.representation import decode

    loaded = reader.load()
    magnitudes = loaded if reader.header.storage.magnitudes else loaded.abs()
    del loaded
    return decode(reconstruct_phase(magnitudes, n_iter=options.iterations, progress=progress))


def verify_decode(source: str | os.PathLike, *, progress: Progress | None = None,
                  memory: int | None = None) -> Header:
    """Decode the msfreq file ``source`` (writing nothing) and check the result against the
    source samples; return the header.  A magnitude file has no decode to check.  ``memory``:
    bytes the synthesis may take (as in :class:`EncodeOptions`).

    Raises
    ------
    FormatError
        If the file is invalid, a chunk is corrupted, or the file was written as decoding
        exactly and does not.
    """
    _check_memory(memory)
    header = read_header(source)
    if header.storage.magnitudes:
        return header  # magnitudes only: there is no decode to check
    subtype, recorded = _check(header)
    with open_reader(source) as reader:
        grid = header.grid

        read = _frames_of(reader, range(header.n_channels))
        checksum = decoded_checksum(read, header.n_samples, header.n_channels, grid, header.dtype,
                                    subtype or "FLOAT", progress=progress,
                                    grid_bits=source_grid(header), fix=corrector(reader),
                                    memory=memory).hexdigest()
    if header.exact and checksum != recorded:
        raise FormatError(
            f"{source}: damaged: the decoded samples differ from the source samples that "
            "this file was written to decode to exactly (SHA-256 mismatch)"
        )
    return header
