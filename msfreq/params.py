"""The one source of defaults, and validated transform parameters.

Every default a user can change (in Python or on the command line) is defined here once;
the CLI reads its defaults from this module.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from msfreq.errors import ParameterError

__all__ = [
    "C0_HZ",
    "DEFAULT_BINS_PER_OCTAVE",
    "DEFAULT_FMIN",
    "DEFAULT_TUNING",
    "DEFAULT_DTYPE",
    "DEFAULT_FILE_DTYPE",
    "EXACT_BITS",
    "MIN_ROUND_BITS",
    "DEFAULT_ROUND_BITS",
    "AUTO_ROUND_BITS",
    "DEFAULT_COMPRESSION",
    "COMPRESSIONS",
    "DTYPES",
    "MAX_BINS_PER_OCTAVE",
    "MAX_OVERSAMPLING",
    "MAX_SPAN",
    "MAX_SAMPLE_RATE",
    "MAX_PADDING",
    "BLOCK_SECONDS",
    "BLOCK_BYTES",
    "MIN_BLOCK_BYTES",
    "SOURCE_WINDOW_BYTES",
    "TransformParams",
    "resolve_dtype",
    "is_integer",
]

def is_integer(value: object) -> bool:
    """Whether ``value`` is an integer (Python's or numpy's), booleans excluded.

    Examples
    --------
    >>> is_integer(3), is_integer(np.int16(3)), is_integer(True), is_integer(3.0)
    (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


#: Frequency of the note C0 with A4 = 440 Hz: the default lowest octave boundary.
C0_HZ = 440.0 * 2.0 ** (-57 / 12)

DEFAULT_BINS_PER_OCTAVE = 48
DEFAULT_FMIN = C0_HZ
DEFAULT_TUNING = 440.0
#: Storage and compute precision of the coefficients.
DEFAULT_DTYPE = "complex64"
DTYPES = ("complex64", "complex128")
#: Precision of encoded files: ``"auto"`` computes integer sources of 17 to 32 bits in
#: complex128, which gives them back bit-identically (complex64's rounding is about 2**-22 of
#: full scale: enough for 16 bits, not for 24; complex128's about 2**-50), and everything else
#: in complex64.
DEFAULT_FILE_DTYPE = "auto"
#: Integer bit depths whose samples each precision can give back from integer levels (deeper
#: 32-bit sources are stored as unrounded complex128, which also gives them back exactly).
EXACT_BITS = {"complex64": 16, "complex128": 24}
#: Coarsest grid ``--round-bits`` rounds to (8-bit steps: 48 dB below full scale); the finest
#: is ``EXACT_BITS["complex128"]``, the deepest grid a file's levels give back exactly.
MIN_ROUND_BITS = 8
#: What an encode rounds samples to unless told (``EncodeOptions.round_bits``, ``--round-bits``):
#: ``"auto"`` rounds lossy decodes (MP3, Vorbis, Opus, ADPCM ...) to :data:`AUTO_ROUND_BITS`-bit
#: steps, and a resampled integer source of up to that depth to its own depth (what its decode
#: is written in); float sources, deeper resampled ones, and encodes that ask for double
#: precision or ``keep_bits`` keep their samples unrounded.  Such files are checked bit for bit
#: (against the rounded samples) instead of not at all; the rounding and its SNR are on the
#: file's line.  ``None`` never rounds (msfreq 0.8's default), an integer always.
DEFAULT_ROUND_BITS = "auto"
#: The steps ``"auto"`` rounds lossy decodes to: 16 bits, the samples MP3, Vorbis and Opus
#: decoders write to WAV by default (lame --decode, mpg123, oggdec, opusdec) and the depth of
#: ADPCM, GSM and G.72x decoders' output (for those, nothing changes).
AUTO_ROUND_BITS = 16
#: Lossless HDF5 compression of the coefficient datasets: ``lz4`` (bitshuffle + lz4, through
#: hdf5plugin; plain-h5py readers need ``import hdf5plugin``), ``zstd`` (bitshuffle + zstd, the
#: same plugin), ``gzip`` (shuffle + deflate, opened by every HDF5 reader without plugins) or
#: ``none``.  With lz4 and zstd, datasets of up to 1 MiB take zstd level 9 (a short file's
#: bytes matter, its milliseconds do not).  lz4 by default: against zstd, on a 3-minute stereo
#: 16-bit mix, CLI encode 2.56 -> 2.20 s, decode 1.47 -> 1.33 s, random crops 1.5-2.1x as
#: fast, files 5.5 % larger (1.77x the WAV against 1.68x); drum one-shots (small datasets)
#: unchanged (measured: benchmarks/STORAGE.md).
DEFAULT_COMPRESSION = "lz4"
COMPRESSIONS = ("zstd", "lz4", "gzip", "none")
#: Beyond this many bins per octave the windows are narrower than any useful analysis.
MAX_BINS_PER_OCTAVE = 1024
#: Frames per band are multiplied by at most this (hops divided by it).
MAX_OVERSAMPLING = 64
#: Windows reach at most this many grid points to either side of their bin.
MAX_SPAN = 8
#: The highest sample rate analysed (audio files, ``--sample-rate``, msfreq files): every file
#: is padded to a whole lowest-octave hop, about a second whatever the rate, so a header's rate
#: sets a floor on the work (measured: 12,000 samples of stereo declared at 10 MHz encode in
#: 2.3 s and 408 MB; a damaged W64 header's 1.6 GHz ran out the batch's time limit).
#: Ultrasonic recorders reach 1-2 MHz.
MAX_SAMPLE_RATE = 10_000_000
#: The most samples (all channels together) an encode may add to a file to pad it to a whole
#: lowest-octave hop.  Real files need far less (a hop is about a second: 8 channels at 192 kHz
#: pad at most 1.6 million); a damaged header's channel count and rate together could ask for
#: billions (1,024 channels at 10 MHz: 10 billion, most of an hour of work).  Measured: 4
#: frames of 1,024 channels at 44.1 kHz (47 million of padding) encode in 12.6 s and 233 MB.
MAX_PADDING = 2**27
#: Longest block (seconds) of the block-by-block transform of long audio.  In memory, audio
#: longer than about this is transformed in blocks; files are, when a memory budget demands it
#: (see :func:`msfreq.transform.block_schedule`).
BLOCK_SECONDS = 180.0
#: Memory the transform of one file may take, in bytes, unless told (``--memory``,
#: ``EncodeOptions.memory``): what one channel's part of a block keeps, or the decoded samples
#: of all channels, and the transform of one channel over the block and its margins (see
#: :func:`msfreq.transform.block_schedule`).  The margins span a fixed time (about a minute),
#: so at high sample rates a larger budget buys longer blocks and much less work: 2 minutes of
#: 96 kHz 24-bit stereo encode in 8.2 s with this budget and 4.2 s with 1200 MiB
#: (benchmarks/MEMORY.md).
BLOCK_BYTES = 560 * 2**20
#: The smallest memory budget accepted: below it, blocks at high rates are a few seconds behind
#: a minute of margins (most of the work spent on margins).
MIN_BLOCK_BYTES = 64 * 2**20
#: Memory an encode keeps the source's frames decoded last in (see
#: :class:`msfreq.audio.AudioReader`): a whole 3-minute stereo 16-bit file, or a block's span of
#: 24-bit stereo up to 192 kHz, so each frame is decoded from the file once instead of once per
#: read (margins overlap, channels may be read apart, and the decode is compared with the
#: source at the end).
SOURCE_WINDOW_BYTES = 128 * 2**20


def _positive_finite(name: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ParameterError(f"{name} must be a finite number > 0, got {value!r}")
    return number


@dataclass(frozen=True)
class TransformParams:
    """Parameters of the multi-scale transform that do not depend on the audio.

    Parameters
    ----------
    bins_per_octave : int
        Number of log-spaced frequency bins in every octave.
    fmin : float
        Lowest octave boundary in Hz; octave ``j`` spans ``[fmin * 2**j, fmin * 2**(j+1))``.
    tuning : float
        Reference frequency in Hz; bin centres lie on ``tuning * 2**(k / bins_per_octave)``.
    n_octaves : int or None
        Number of full octaves; ``None`` takes as many as fit below the Nyquist frequency.
    oversampling : int
        Divides every band's hop by about this factor (more frames, the same bins, the same
        doubling per octave): about ``oversampling`` times the coefficients, still an exact
        inverse.
    span : int
        Each bin's window reaches ``span`` grid points to either side (1: from the bin below
        to the bin above, so every frequency lies in two windows; ``span`` puts it in
        ``2 * span``), with hops ``span`` times shorter: about ``span`` times the
        coefficients, still an exact inverse.  Phase reconstruction from magnitudes needs
        this redundancy across frequency (``oversampling`` adds frames only); storage does not.

    Examples
    --------
    >>> TransformParams(bins_per_octave=24, oversampling=4)
    TransformParams(bins_per_octave=24, fmin=16.351597831287414, tuning=440.0, n_octaves=None, oversampling=4, span=1)
    """

    bins_per_octave: int = DEFAULT_BINS_PER_OCTAVE
    fmin: float = DEFAULT_FMIN
    tuning: float = DEFAULT_TUNING
    n_octaves: int | None = None
    oversampling: int = 1
    span: int = 1

    def __post_init__(self) -> None:
        bins = self.bins_per_octave
        if not is_integer(bins):
            raise ParameterError(f"bins_per_octave must be an integer, got {bins!r}")
        if not 1 <= bins <= MAX_BINS_PER_OCTAVE:
            raise ParameterError(
                f"bins_per_octave must be between 1 and {MAX_BINS_PER_OCTAVE}, got {bins!r}"
            )
        object.__setattr__(self, "bins_per_octave", int(bins))
        object.__setattr__(self, "fmin", _positive_finite("fmin", self.fmin))
        object.__setattr__(self, "tuning", _positive_finite("tuning", self.tuning))
        octaves = self.n_octaves
        if octaves is not None:
            if not is_integer(octaves):
                raise ParameterError(f"n_octaves must be an integer or None, got {octaves!r}")
            if octaves < 1:
                raise ParameterError(f"n_octaves must be >= 1, got {octaves!r}")
            object.__setattr__(self, "n_octaves", int(octaves))
        factor = self.oversampling
        if not is_integer(factor) \
                or not 1 <= factor <= MAX_OVERSAMPLING:
            raise ParameterError(
                f"oversampling must be an integer between 1 and {MAX_OVERSAMPLING}, got {factor!r}"
            )
        object.__setattr__(self, "oversampling", int(factor))
        span = self.span
        if not is_integer(span) or not 1 <= span <= min(MAX_SPAN, self.bins_per_octave):
            raise ParameterError(
                f"span must be an integer between 1 and {min(MAX_SPAN, self.bins_per_octave)} "
                f"(at most bins_per_octave), got {span!r}"
            )
        object.__setattr__(self, "span", int(span))

    def as_dict(self) -> dict:
        """Return the parameters as a plain dictionary."""
        return asdict(self)


def resolve_dtype(dtype: object) -> np.dtype:
    """Return the complex coefficient dtype named by ``dtype``.

    Parameters
    ----------
    dtype : str or numpy dtype
        ``"complex64"`` or ``"complex128"`` (also their numpy equivalents).

    Returns
    -------
    numpy.dtype
    """
    try:
        resolved = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        raise ParameterError(f"dtype must be one of {DTYPES}, got {dtype!r}") from None
    if resolved.name not in DTYPES:
        raise ParameterError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return resolved
