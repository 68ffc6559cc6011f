"""Reading and writing sound through soundfile (libsndfile), exactly.

Integer PCM is read as ``int32`` and scaled by ``2**-31`` (exact in float64 and, for up to
24 bits, in float32), and written back by rounding to the source's bit depth, so a 16-bit
file that goes through msfreq comes back sample-for-sample identical.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from msfreq.containers import FlacSignature, checked_frames, flac_streaminfo
from msfreq.errors import AudioError, ParameterError
from msfreq.params import MAX_SAMPLE_RATE
from msfreq.store import atomic_path

__all__ = [
    "AudioInfo",
    "probe",
    "AudioReader",
    "AudioWriter",
    "output_format",
    "named_format",
    "quantize",
    "overs",
    "grid_bits",
    "snap",
    "subtype_bits",
    "Checksum",
    "LOSSY_SUBTYPES",
    "AUDIO_SUFFIXES",
    "announced_format",
    "UNREADABLE_SUFFIXES",
]

#: Subtypes whose decoded samples are not the original signal (re-encoding loses more).
LOSSY_SUBTYPES = frozenset(
    {"VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "GSM610",
     "G721_32", "G723_24", "G723_40", "IMA_ADPCM", "MS_ADPCM", "VOX_ADPCM", "NMS_ADPCM_16",
     "NMS_ADPCM_24", "NMS_ADPCM_32"}
)
_FLOAT_SUBTYPES = {"FLOAT": np.float32, "DOUBLE": np.float64}
#: Subtypes stored as the samples themselves (no decoding to read them, except in FLAC).
_PLAIN_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})
#: Bit depth of integer subtypes whose samples are read exactly as int32.
_INTEGER_BITS = {
    "PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "ULAW": 16,
    "ALAW": 16, "DWVW_12": 12, "DWVW_16": 16, "DWVW_24": 24, "DPCM_8": 8, "DPCM_16": 16,
    "ALAC_16": 16, "ALAC_20": 20, "ALAC_24": 24, "ALAC_32": 32,
}
#: The file name ending of each format libsndfile writes (a decode keeps its source's format:
#: 0.9.0 named the formats missing here ``.wav``, so a MAT5 source's decode was a MAT5 file
#: called ``.wav``).
_SUFFIX_OF_FORMAT = {
    "WAV": ".wav", "WAVEX": ".wav", "RF64": ".wav", "W64": ".w64", "FLAC": ".flac",
    "AIFF": ".aiff", "AU": ".au", "CAF": ".caf", "OGG": ".ogg", "MP3": ".mp3", "IRCAM": ".sf",
    "NIST": ".nist", "VOC": ".voc", "PAF": ".paf", "SVX": ".8svx", "MAT4": ".mat",
    "MAT5": ".mat", "HTK": ".htk", "SD2": ".sd2", "XI": ".xi", "AVR": ".avr", "WVE": ".wve",
    "MPC2K": ".mpc", "PVF": ".pvf", "SDS": ".sds",
}


def _suffix_of(format: str, subtype: str | None) -> str:
    """The ending of a file of ``format`` and ``subtype``: Opus in Ogg is ``.opus``."""
    if format == "OGG" and subtype == "OPUS":
        return ".opus"
    return _SUFFIX_OF_FORMAT.get(format, "." + format.lower())


#: The format a file name's ending announces, and the subtype where it announces one too (the
#: endings of the formats libsndfile reads and writes).
_FORMAT_OF_SUFFIX = {
    ".wav": ("WAV", None), ".wave": ("WAV", None), ".bwf": ("WAV", None), ".rf64": ("RF64", None),
    ".w64": ("W64", None), ".flac": ("FLAC", None), ".aif": ("AIFF", None), ".aiff": ("AIFF", None),
    ".aifc": ("AIFF", None), ".au": ("AU", None), ".snd": ("AU", None), ".caf": ("CAF", None),
    ".ogg": ("OGG", None), ".oga": ("OGG", None), ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", None),
    ".sf": ("IRCAM", None), ".nist": ("NIST", None), ".sph": ("NIST", None), ".voc": ("VOC", None),
    ".paf": ("PAF", None), ".8svx": ("SVX", None), ".iff": ("SVX", None), ".mat": ("MAT5", None),
    ".htk": ("HTK", None), ".sd2": ("SD2", None), ".xi": ("XI", None), ".avr": ("AVR", None),
    ".wve": ("WVE", None), ".mpc": ("MPC2K", None), ".pvf": ("PVF", None), ".sds": ("SDS", None),
}
#: Audio formats libsndfile does not read, by file name ending, and what they hold: a folder
#: search takes such files as audio, so that each fails on a line of its own naming its format
#: (0.7.0 counted a folder of them as "not audio (ignored)" and exited 0).
UNREADABLE_SUFFIXES = {
    ".m4a": "AAC or ALAC in MP4", ".m4b": "AAC in MP4 (audiobook)", ".m4p": "protected AAC in MP4",
    ".mp4": "MP4", ".aac": "AAC", ".alac": "ALAC", ".wma": "Windows Media Audio",
    ".asf": "Windows Media", ".ape": "Monkey's Audio", ".wv": "WavPack", ".mka": "Matroska audio",
    ".webm": "WebM", ".ac3": "Dolby Digital (AC-3)", ".eac3": "Dolby Digital Plus (E-AC-3)",
    ".dts": "DTS", ".dsf": "DSD (DSF)", ".dff": "DSD (DSDIFF)", ".tta": "True Audio",
    ".tak": "TAK", ".ofr": "OptimFROG", ".shn": "Shorten", ".amr": "AMR", ".ra": "RealAudio",
    ".rm": "RealMedia", ".spx": "Speex",
}
#: File name endings taken as audio when a folder is searched.
AUDIO_SUFFIXES = frozenset(_FORMAT_OF_SUFFIX)


def announced_format(suffix: str) -> tuple[str, str | None] | None:
    """The ``(format, subtype)`` a file name ending announces (subtype None where it
    announces none), or None for an ending that is not audio.

    Examples
    --------
    >>> announced_format(".AIF"), announced_format(".opus"), announced_format(".txt")
    (('AIFF', None), ('OGG', 'OPUS'), None)
    """
    return _FORMAT_OF_SUFFIX.get(suffix.lower())


#: Frames a lossy stream is decoded from before a read that does not follow the last one.
#: libsndfile's Vorbis decoder gets the first 100-900 frames after a seek wrong (up to a
#: quarter of full scale, measured at 8 and 44.1 kHz in 1 of 12 random seeks): Vorbis
#: overlaps blocks of up to 8192 frames, so this many frames before set its state.
LOSSY_PREROLL = 8192
#: Frames converted and written at a time.
_WRITE_FRAMES = 1 << 18
#: The finest sample grid looked for in float files (finer: a true float signal).
MAX_GRID_BITS = 32


def subtype_bits(subtype: object) -> int | None:
    """Bit depth of an integer subtype (None for float, lossy or unknown ones).

    Examples
    --------
    >>> subtype_bits("PCM_24"), subtype_bits("FLOAT")
    (24, None)
    """
    return _INTEGER_BITS.get(subtype) if isinstance(subtype, str) else None


def grid_bits(raw: np.ndarray) -> int:
    """Return the bits of the coarsest grid ``raw``'s samples lie on: the smallest ``k`` such
    that every sample is an integer multiple of ``2**(1 - k)`` of full scale.

    A 24-bit file that holds 16-bit content (padded with zero bits) gives 16; a float file
    written from 16-bit integers gives 16; a true float signal gives more than
    :data:`MAX_GRID_BITS`; silence gives 0.

    Parameters
    ----------
    raw : ndarray of int32 or float
        Samples as :class:`AudioReader` reads them: int32 with the value in the top bits
        (integer subtypes), or the stored floats.

    Examples
    --------
    >>> grid_bits(np.array([3 << 16, -1 << 20], dtype=np.int32))  # 16-bit levels 3 and -16
    16
    >>> grid_bits(np.array([0.5, -0.25, 0.0]))
    3
    >>> grid_bits(np.array([0.1])) > MAX_GRID_BITS, grid_bits(np.array([-0.0])) > MAX_GRID_BITS
    (True, True)
    """
    if raw.dtype == np.int32:
        used = int(np.bitwise_or.reduce(raw, axis=None)) if raw.size else 0
        if used == 0:
            return 0
        return 32 - ((used & -used).bit_length() - 1)
    values = np.asarray(raw, dtype=np.float64).ravel()
    bits = values.view(np.int64)
    zero = values == 0
    if np.any(bits[zero] != 0):
        return 2 * MAX_GRID_BITS  # -0.0: no grid of integers gives it back
    nonzero = bits[~zero]
    if nonzero.size == 0:
        return 0
    exponent = ((nonzero >> 52) & 0x7FF) - 1023
    mantissa = (nonzero & ((1 << 52) - 1)) | (1 << 52)
    lowest = (mantissa & -mantissa).astype(np.float64)
    trailing = np.frexp(lowest)[1] - 1
    # value = mantissa * 2**(exponent - 52); its lowest set bit weighs 2**(exponent - 52 +
    # trailing), which must be at least 2**(1 - k).
    needed = 53 - exponent - trailing
    needed[exponent == -1023] = 2 * MAX_GRID_BITS  # subnormal: a true float
    return int(needed.max())


def snap(samples: np.ndarray, bits: int) -> np.ndarray:
    """Return ``samples`` rounded to the nearest multiples of ``2**(1 - bits)`` (float64).

    Examples
    --------
    >>> snap(np.array([0.26, -0.6]), 3)
    array([ 0.25, -0.5 ])
    """
    scale = float(2 ** (bits - 1))
    # + 0.0 turns the -0.0 that rounding gives small negative numbers into 0.0
    return np.rint(np.asarray(samples, dtype=np.float64) * scale) * (1.0 / scale) + 0.0


@dataclass(frozen=True)
class AudioInfo:
    """What soundfile says of an audio file.

    Attributes
    ----------
    path : Path
    sample_rate, frames, channels : int
    format, subtype : str
        soundfile's names, e.g. ``"WAV"`` and ``"PCM_16"``.
    """

    path: Path
    sample_rate: int
    frames: int
    channels: int
    format: str
    subtype: str

    @property
    def lossy(self) -> bool:
        """Whether the file holds a lossy encoding (MP3, Vorbis, Opus, ADPCM ...)."""
        return self.subtype in LOSSY_SUBTYPES

    @property
    def read_dtype(self) -> str:
        """The dtype samples are read as: exact integers, or the stored floats."""
        if self.subtype in _INTEGER_BITS:
            return "int32"
        if self.subtype == "DOUBLE":
            return "float64"
        return "float32"

    @property
    def coded(self) -> bool:
        """Whether reading the samples decodes them (FLAC, lossy, ADPCM ...), rather than
        copying stored PCM or floats."""
        return self.format in ("FLAC", "OGG", "MP3") or self.subtype not in _PLAIN_SUBTYPES

    @property
    def held_dtype(self) -> np.dtype:
        """The dtype an :class:`AudioReader` window holds samples in: integers of up to 16
        bits in 16 bits (exactly: libsndfile gives them in the top bits of an int32), other
        samples as read."""
        bits = self.integer_bits
        return np.dtype(np.int16 if bits is not None and bits <= 16 else self.read_dtype)

    @property
    def frame_bytes(self) -> int:
        """Bytes an :class:`AudioReader` window takes per frame."""
        return self.held_dtype.itemsize * self.channels

    @property
    def integer_bits(self) -> int | None:
        """Bit depth of integer PCM samples (None for float or lossy samples)."""
        return subtype_bits(self.subtype)

    @property
    def checksum_of(self) -> str:
        """What :class:`AudioReader`'s SHA-256 is computed over."""
        return f"interleaved little-endian {self.read_dtype} samples as read by libsndfile"


def _reason(error: BaseException) -> str:
    """libsndfile's message without the file name it repeats (we name the file ourselves)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if text.startswith("Error opening "):
        text = text[len("Error opening "):]
        for quote in ("'", "b'", 'b"', '"'):
            end = quote[-1] + ": "
            if text.startswith(quote) and end in text:
                text = text.split(end, 1)[1]
                break
    return text.strip().rstrip(".")


def _write_reason(error: BaseException, path: Path) -> str:
    """The reason a write failed.  libsndfile reports a full disk as "System error.": name
    the OS reason instead when the destination's file system is full."""
    number = getattr(error, "errno", None)
    if number:
        return os.strerror(number)
    text = _reason(error)
    if "System error" in text:
        try:
            if shutil.disk_usage(path.parent if str(path.parent) else ".").free < 1 << 20:
                return os.strerror(errno.ENOSPC)
        except OSError:
            pass
    return text


def _unread(path: Path, error: Exception) -> str:
    """Why libsndfile could not open ``path``, in words: a format it does not read (by the
    name's ending), a FLAC of a depth it does not read (12 or 20 bits: "unimplemented format",
    checked with crafted files), or its own reason."""
    kind = UNREADABLE_SUFFIXES.get(path.suffix.lower())
    if kind is not None and path.is_file():
        return (f"{kind}, a format libsndfile does not read (it reads WAV, AIFF, FLAC, Ogg "
                f"Vorbis/Opus, MP3, CAF ...): convert it first, to FLAC for a lossless copy")
    try:
        streaminfo = flac_streaminfo(path) if path.is_file() else None
    except OSError:
        streaminfo = None
    if streaminfo is not None and streaminfo[0] not in (8, 16, 24):
        return (f"a {streaminfo[0]}-bit FLAC, a depth libsndfile does not read (it reads 8, 16 "
                f"and 24-bit FLAC): convert it to 24-bit FLAC first, which keeps every sample")
    reason = _reason(error)
    if reason.startswith("File does not exist or is not a regular file") and path.is_file():
        # what libsndfile says when its MP3 decoder cannot start (a file cut short after a
        # frame or two, found by fuzzing): the file is there, its stream is not
        reason = "libsndfile cannot start decoding it: damaged, cut short, or not audio"
    return f"not a readable audio file ({reason})"


def probe(path: str | os.PathLike, *, whole: bool = True) -> AudioInfo:
    """Return the :class:`AudioInfo` of the audio file at ``path``.

    Parameters
    ----------
    path : path-like
    whole : bool
        Check that soundfile would read the whole stream, where it may not: an MP3's frames
        are counted, an Ogg file's pages walked (chained streams, no end), a WAV, AIFF, W64,
        RF64 or AU header compared with the file's size.  False asks only whether it is audio.

    Raises
    ------
    AudioError
        If the file is missing, not audio that soundfile can read, or (``whole``) would be
        read in part: the message names the file, both lengths and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    try:
        info = sf.info(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as error:
        raise AudioError(f"{path}: {_unread(path, error)}") from None
    if info.frames >= 2**62:
        raise AudioError(f"{path}: its header does not say how many samples it holds (e.g. a "
                         f"FLAC written as a stream), and libsndfile cannot read it so")
    if info.samplerate < 1 or info.channels < 1:
        raise AudioError(f"{path}: invalid header ({info.samplerate} Hz, {info.channels} channels)")
    if info.samplerate > MAX_SAMPLE_RATE:
        raise AudioError(f"{path}: its header says {info.samplerate:,} Hz, above the "
                         f"{MAX_SAMPLE_RATE:,} Hz msfreq analyses (a damaged header?)")
    frames = checked_frames(path, str(info.format), str(info.subtype), int(info.frames),
                            int(info.channels), int(info.samplerate),
                            str(getattr(info, "extra_info", "")), whole=whole)
    if frames < 1:
        raise AudioError(f"{path}: holds no samples")
    return AudioInfo(
        path=path,
        sample_rate=int(info.samplerate),
        frames=frames,
        channels=int(info.channels),
        format=str(info.format),
        subtype=str(info.subtype),
    )


class _Window:
    """The chunks of a file decoded last, up to ``capacity`` frames of them (least recently
    used go first).

    A source is read several times while it is encoded (scanned, transformed block by block
    with overlapping margins that wrap around the file's ends, one channel at a time where
    reading all channels at once would cost too much memory, and compared with its decode);
    a window holding a block's span decodes each frame about once instead of once per read (a
    96 kHz FLAC was decoded 8.6 times per encode).  Integer samples of at most 16 bits are kept
    in 16 bits.
    """

    #: Frames per chunk.
    CHUNK = 1 << 16

    def __init__(self, capacity: int, info: AudioInfo) -> None:
        chunk = self.CHUNK
        self.frames = info.frames
        self.dtype = np.dtype(info.read_dtype)
        self.compact = info.held_dtype != self.dtype  # 16-bit integers read as int32
        # two more than the capacity needs: a read of ``capacity`` frames may touch them
        slots = min(-(-capacity // chunk) + 2, -(-info.frames // chunk))
        self.buffer = np.empty((slots, chunk, info.channels), dtype=info.held_dtype)
        self.slot_of: OrderedDict[int, int] = OrderedDict()  # chunk -> slot, oldest first

    def read(self, start: int, stop: int, decode: Callable[[int, int], np.ndarray]) -> np.ndarray | None:
        """Frames ``start:stop`` as ``decode(a, b)`` gives them (a new array), decoding only
        the chunks not held; None if the samples do not fit the window's form (the caller
        should read without it from then on)."""
        chunk = self.CHUNK
        first, last = start // chunk, -(-stop // chunk)
        if last - first > len(self.buffer):
            return decode(start, stop)  # longer than the window: nothing to keep
        for index in range(first, last):  # what this read uses is kept longest
            if index in self.slot_of:
                self.slot_of.move_to_end(index)
        out = np.empty((stop - start, self.buffer.shape[2]), dtype=self.dtype)
        index = first
        while index < last:
            if index in self.slot_of:
                self._copy(self.buffer[self.slot_of[index]], index, start, stop, out)
                index += 1
                continue
            end = index + 1
            while end < last and end not in self.slot_of:
                end += 1
            raw = decode(index * chunk, min(end * chunk, self.frames))
            if self.compact and np.bitwise_and(raw, 0xFFFF).any():
                return None  # not the 16-bit content the subtype promised: keep no bits less
            for run in range(index, end):
                piece = raw[(run - index) * chunk : (run - index + 1) * chunk]
                slot = self._slot()
                if self.compact:
                    np.right_shift(piece, 16, out=self.buffer[slot, : len(piece)], casting="unsafe")
                else:
                    self.buffer[slot, : len(piece)] = piece
                self.slot_of[run] = slot
                low, high = max(start, run * chunk), min(stop, run * chunk + len(piece))
                out[low - start : high - start] = piece[low - run * chunk : high - run * chunk]
            index = end
        return out

    def _slot(self) -> int:
        if len(self.slot_of) < len(self.buffer):
            return len(self.slot_of)
        return self.slot_of.popitem(last=False)[1]

    def _copy(self, held: np.ndarray, index: int, start: int, stop: int, out: np.ndarray) -> None:
        low = max(start, index * self.CHUNK)
        high = min(stop, (index + 1) * self.CHUNK)
        piece = held[low - index * self.CHUNK : high - index * self.CHUNK]
        if self.compact:
            np.left_shift(piece, 16, out=out[low - start : high - start], dtype=np.int32)
        else:
            out[low - start : high - start] = piece


class AudioReader:
    """Random-access reads of float samples, and a checksum of the samples read in order.

    Parameters
    ----------
    info : AudioInfo
    window_frames : int, optional
        Hold this many of the frames decoded last (default none; integer samples of up to 16
        bits in 2 bytes each, others as read): reads of frames still held are served without
        decoding them again (see :attr:`AudioInfo.coded` and
        :data:`msfreq.params.SOURCE_WINDOW_BYTES`).

    Notes
    -----
    ``read(a, b)`` returns float64 samples, shape ``(b - a, channels)``.  Samples are fed to
    the SHA-256 the first time a read reaches them in order from the start, so a sweep of
    (possibly overlapping) reads that covers the file yields the checksum of the whole file.
    """

    def __init__(self, info: AudioInfo, *, window_frames: int = 0) -> None:
        self.info = info
        self._hash = hashlib.sha256()
        self._hashed = 0
        self._grid = 0
        capacity = min(info.frames, max(int(window_frames), 0))
        self._window = _Window(capacity, info) if capacity else None
        #: Frames decoded from the file, in all (a measure of the window's use).
        self.decoded_frames = 0
        self._position = 0  # where the file's decoder stands
        self._signature = None  # a FLAC's MD5, checked when the samples have been read in order
        if info.format == "FLAC" and info.integer_bits is not None:
            try:
                streaminfo = flac_streaminfo(info.path)
            except OSError as error:
                raise AudioError(f"{info.path}: cannot read ({error.strerror or error})") from None
            # 8, 16 and 24 bits: the depths libsndfile opens (12 and 20-bit FLAC it refuses)
            if streaminfo is not None and streaminfo[0] in (8, 16, 24) and any(streaminfo[2]):
                self._signature = FlacSignature(streaminfo[0], streaminfo[2])
        self._file = self._open()

    def _open(self) -> sf.SoundFile:
        try:
            return sf.SoundFile(os.fsencode(self.info.path))
        except (sf.LibsndfileError, RuntimeError, OSError) as error:
            raise AudioError(f"{self.info.path}: cannot open ({_reason(error)})") from None

    def _seek(self, frame: int) -> None:
        """Put the decoder at ``frame``.  libsndfile cannot seek in some codecs (GSM 6.10,
        G.721/723, NMS ADPCM, DPCM: 0.6.0 failed on every such file, at frame 0): those are
        read on to the frame, or from the start again."""
        if self._file.seekable():
            self._file.seek(frame)
            return
        if frame < self._position:
            self._file.close()
            self._file = self._open()
            self._position = 0
        while self._position < frame:
            skipped = self._file.read(min(frame - self._position, 1 << 16),
                                      dtype=self.info.read_dtype, always_2d=True)
            if not len(skipped):
                break
            self._position += len(skipped)

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (and let the window go)."""
        self._window = None
        self._file.close()

    def _decode(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` from the file, as read (``info.read_dtype``); a lossy stream
        read elsewhere than where the last read ended is decoded from :data:`LOSSY_PREROLL`
        frames earlier, so the frames are those of a decode from the start."""
        begin = start
        if self.info.lossy and start != self._position:
            begin = max(0, start - LOSSY_PREROLL)
        try:
            self._seek(begin)
            raw = self._file.read(stop - begin, dtype=self.info.read_dtype, always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as error:
            decodable = self._decodable_frames()
            if decodable is not None:
                frames, rate = self.info.frames, self.info.sample_rate
                raise AudioError(
                    f"{self.info.path}: damaged or cut short: its header says {frames:,} samples "
                    f"({frames / rate:.2f} s), its stream decodes to about {decodable:,} "
                    f"({decodable / rate:.2f} s), then fails ({_reason(error)}; an unfinished "
                    "copy or download?)"
                ) from None
            raise AudioError(
                f"{self.info.path}: read failed at frame {start} ({_reason(error)})"
            ) from None
        self._position = begin + raw.shape[0]
        raw = raw[start - begin :]
        if raw.shape[0] != stop - start:
            if not self.info.lossy:
                raise AudioError(
                    f"{self.info.path}: truncated: frames {start}:{stop} gave {raw.shape[0]} "
                    f"(the header says {self.info.frames})"
                )
            # A lossy stream's length is an estimate (MP3 without a length header): the
            # samples it does not have are silence.
            missing = np.zeros((stop - start - raw.shape[0], raw.shape[1]), dtype=raw.dtype)
            raw = np.concatenate([raw, missing])
        self.decoded_frames += stop - begin
        return raw

    def _decodable_frames(self) -> int | None:
        """The frames a fresh decode from the start gives before it fails or ends short of the
        header's length (a FLAC cut short failed with "read failed at frame 0 (flac decoder
        lost sync)"); None where it gives them all.  Only after a read failed: one more pass."""
        count = 0
        try:
            with sf.SoundFile(os.fsencode(self.info.path)) as fresh:
                while count < self.info.frames:
                    # short reads: a read that fails gives nothing, not the frames before
                    got = len(fresh.read(min(1024, self.info.frames - count),
                                         dtype=self.info.read_dtype))
                    if not got:
                        return count
                    count += got
        except (sf.LibsndfileError, RuntimeError, OSError):
            return count
        return None

    def _raw(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` as read: through the window where there is one."""
        if self._window is not None:
            raw = self._window.read(start, stop, self._decode)
            if raw is not None:
                return raw
            self._window = None
        return self._decode(start, stop)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Return samples ``start:stop`` as float64, shape (stop - start, channels)."""
        dtype = self.info.read_dtype
        raw = self._raw(start, stop)
        if start <= self._hashed < stop:
            fresh = raw[self._hashed - start :]
            self._hash.update(_little_endian(fresh))
            if not self.info.lossy and self._grid <= MAX_GRID_BITS:
                self._grid = max(self._grid, grid_bits(fresh))
            self._hashed = stop
            if self._signature is not None:
                self._signature.update(fresh)
                if stop == self.info.frames and not self._signature.matches():
                    raise AudioError(
                        f"{self.info.path}: its samples do not match the MD5 signature its FLAC "
                        f"header records (a damaged file, or a header whose length, "
                        f"{self.info.frames} samples, is not the stream's)"
                    )
        if dtype == "int32":
            return raw * (1.0 / 2**31)  # integers: finite
        samples = raw.astype(np.float64)
        if not np.isfinite(samples.sum()):  # NaN and infinities propagate into the sum
            if not np.isfinite(samples).all():
                raise AudioError(f"{self.info.path}: holds NaN or infinite samples near frame {start}")
        return samples

    def checksum(self) -> str | None:
        """SHA-256 (hex) of all samples, or None if the reads did not cover the file."""
        return self._hash.hexdigest() if self._hashed == self.info.frames else None

    def grid_bits(self) -> int | None:
        """The bits of the coarsest grid all samples lie on (see :func:`grid_bits`; at least
        1), or None if the reads did not cover the file, the samples lie on no grid of
        :data:`MAX_GRID_BITS` or fewer bits, or the file is lossy."""
        if self._hashed != self.info.frames or self.info.lossy or self._grid > MAX_GRID_BITS:
            return None
        return max(self._grid, 1)

    @property
    def silent(self) -> bool:
        """Whether every sample was read, in order, and is zero (its grid is then 1 bit)."""
        return self.grid_bits() is not None and self._grid == 0

    def scan(self) -> None:
        """Read the whole file once, in order, for :meth:`checksum` and :meth:`grid_bits`."""
        for start in range(self._hashed, self.info.frames, _WRITE_FRAMES):
            self.read(start, min(start + _WRITE_FRAMES, self.info.frames))


def _resolution(subtype: str | None) -> float:
    """Significant bits a subtype keeps: its integer depth, or a float's mantissa (+1)."""
    if subtype in _INTEGER_BITS:
        return float(_INTEGER_BITS[subtype])
    if subtype == "FLOAT":
        return 24.5  # a float32 holds every 24-bit integer, and more
    if subtype == "DOUBLE":
        return 53.5
    return 0.0  # lossy or unknown


def _closest_subtype(chosen: str, source_subtype: str | None, grid: int | None = None) -> str:
    """The subtype of format ``chosen`` that keeps the source's samples best (``grid``: the
    bits of the grid the decoded samples lie on, where known)."""
    available = [name for name in sf.available_subtypes(chosen) if sf.check_format(chosen, name)]
    if source_subtype in available and source_subtype not in LOSSY_SUBTYPES:
        return source_subtype
    # plain samples where the format has them (AIFF's DWVW cannot be written; u-law and
    # A-law read as 16-bit integers but keep 8-bit codes), else its other integer subtypes
    lossless = [name for name in available if name in _PLAIN_SUBTYPES] or [
        name for name in available if name in _INTEGER_BITS and name not in ("ULAW", "ALAW")]
    if not lossless:
        return sf.default_subtype(chosen) or available[0]
    wanted = _held(source_subtype, grid) or 24.0
    floats_first = source_subtype in _FLOAT_SUBTYPES and grid is None
    keeps = [name for name in lossless if _resolution(name) >= wanted]
    if keeps:  # the smallest that keeps everything (a float for float sources when possible)
        return min(keeps, key=lambda name: (floats_first != (name in _FLOAT_SUBTYPES),
                                            _resolution(name), name))
    return max(lossless, key=lambda name: (_resolution(name), name))


def named_format(path: str | os.PathLike, format: str | None = None,
                 subtype: str | None = None) -> tuple[str | None, str | None]:
    """The ``(format, subtype)`` to ask :func:`output_format` for, for an output file the user
    named: its name's ending decides the format where none is asked (``song.wav``: WAV, not
    the FLAC a lossy source would get; 0.7.0 wrote the source's format under any name).

    Raises
    ------
    ParameterError
        If the asked ``format`` or ``subtype`` contradicts the name (``-o take.flac`` with
        ``--format WAV``).

    Examples
    --------
    >>> named_format("song.wav"), named_format("talk.opus"), named_format("take.raw", "RAW")
    (('WAV', None), ('OGG', 'OPUS'), ('RAW', None))
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMAT_OF_SUFFIX:
        return format, subtype
    named, named_subtype = _FORMAT_OF_SUFFIX[suffix]
    if format is not None and format.upper() != named and _SUFFIX_OF_FORMAT.get(format.upper()) != suffix:
        raise ParameterError(f"{path}: its name says {named}, not {format.upper()} (--format)")
    if subtype is not None and named_subtype is not None and subtype.upper() != named_subtype:
        raise ParameterError(f"{path}: its name says {named_subtype}, not {subtype.upper()} (--subtype)")
    return format or named, subtype or named_subtype


def _held(source_subtype: str | None, grid: int | None) -> float:
    """Significant bits of the samples a decode gives back: those of the grid they lie on
    (``grid``, where known), else the subtype's; a lossy source's decode counts as 24 bits
    (float32's mantissa, and deeper than any lossy codec defines its output); 0 if unknown."""
    if grid is not None:
        return float(grid)
    return 24.0 if source_subtype in LOSSY_SUBTYPES else _resolution(source_subtype)


def output_format(
    source_format: str | None,
    source_subtype: str | None,
    *,
    format: str | None = None,
    subtype: str | None = None,
    sample_rate: int,
    channels: int,
    grid: int | None = None,
) -> tuple[str, str, str, tuple[str, ...]]:
    """Choose the ``(format, subtype, suffix, losses)`` that decoded audio is written as.

    By default the source's format and subtype.  A lossy source (or one libsndfile cannot
    write) becomes FLAC, 24-bit or as deep as ``grid`` (the bits of the grid an exact decode
    lands on: 16-bit FLAC for an MP3 encoded with its default 16-bit steps), or 32-bit float WAV
    where FLAC cannot hold the sample rate or channel count.  ``format`` alone keeps the
    source's subtype where that format has it, else the closest lossless one (the same bit
    depth or more, or the grid's; float for float sources on no grid where the format has
    it).  ``losses`` says, in words, where the choice keeps fewer bits than the source had
    (empty when nothing is lost).

    Raises
    ------
    AudioError
        If an explicitly asked ``format``/``subtype`` cannot be written.

    Examples
    --------
    >>> output_format("WAV", "PCM_24", format="FLAC", sample_rate=44100, channels=2)
    ('FLAC', 'PCM_24', '.flac', ())
    >>> output_format("WAV", "FLOAT", format="FLAC", sample_rate=44100, channels=2)[3]
    ('PCM_24 keeps fewer bits than the source FLOAT',)
    >>> output_format("MP3", "MPEG_LAYER_III", sample_rate=44100, channels=2, grid=16)
    ('FLAC', 'PCM_16', '.flac', ())
    """
    if format is not None or subtype is not None:
        chosen = (format or source_format or "WAV").upper()
        if chosen not in sf.available_formats():
            raise AudioError(f"unknown output format {format!r}; one of {sorted(sf.available_formats())}")
        chosen_subtype = (subtype.upper() if subtype else _closest_subtype(chosen, source_subtype, grid))
        if not sf.check_format(chosen, chosen_subtype):
            raise AudioError(
                f"format {chosen} cannot hold subtype {chosen_subtype}; one of "
                f"{sorted(sf.available_subtypes(chosen))}"
            )
        suffix = _suffix_of(chosen, chosen_subtype)
    elif (
        source_format
        and source_subtype
        and source_subtype not in LOSSY_SUBTYPES
        and sf.check_format(source_format, source_subtype)
    ):
        chosen, chosen_subtype = source_format, source_subtype
        suffix = _suffix_of(source_format, source_subtype)
    elif sample_rate <= 655350 and channels <= 8:
        deep = grid is None or grid > 16
        chosen, chosen_subtype, suffix = "FLAC", "PCM_24" if deep else "PCM_16", ".flac"
    else:
        chosen, chosen_subtype, suffix = "WAV", "FLOAT", ".wav"
    losses = []
    if chosen_subtype in LOSSY_SUBTYPES:  # a lossy source encoded again loses again
        losses.append(f"{chosen_subtype} is a lossy encoding")
    elif _resolution(chosen_subtype) < _held(source_subtype, grid):
        held = (f"the file's {grid}-bit samples" if grid is not None else
                f"the decoded {source_subtype} samples (24 bits)" if source_subtype in LOSSY_SUBTYPES
                else f"the source {source_subtype}")
        losses.append(f"{chosen_subtype} keeps fewer bits than {held}")
    return chosen, chosen_subtype, suffix, tuple(losses)


def quantize(samples: np.ndarray, subtype: str) -> np.ndarray:
    """Return ``samples`` (float, full scale 1) ready for soundfile to write as ``subtype``.

    Integer subtypes are rounded to their bit depth, clipped, and returned as int32 with the
    value in the top bits (as libsndfile reads them); float subtypes are returned as floats.
    Count what clipping changes with :func:`overs`.  The result is C-ordered whatever
    ``samples`` is (decoded blocks come transposed): soundfile and the checksum would each
    copy it otherwise (measured: 10 % of a 3-minute stereo decode).
    """
    bits = _INTEGER_BITS.get(subtype)
    if bits is None:
        return samples.astype(_FLOAT_SUBTYPES.get(subtype, np.float32), order="C", copy=False)
    levels = _scaled(samples, bits)
    np.rint(levels, out=levels)
    scale = levels.dtype.type(2 ** (bits - 1))
    np.clip(levels, -scale, scale - 1, out=levels)
    words = levels.astype(np.int32, order="C")  # in range: -2**31 <= levels < 2**31
    words <<= 32 - bits
    return words


def _scaled(samples: np.ndarray, bits: int) -> np.ndarray:
    """``samples`` times ``2**(bits - 1)``, a new array: in float32 where they are float32 and
    ``bits <= 24`` (scaling by a power of two is exact, and so are rounding and clipping to
    integers below 2**24: the same levels as in float64, at half the memory traffic; measured,
    3-minute stereo into 16 bits at once 0.092 -> 0.049 s, in the decode's pieces of 2**18
    frames 1.25 -> 1.14 ms each), else in float64."""
    dtype = np.float32 if samples.dtype == np.float32 and bits <= 24 else np.float64
    return np.multiply(samples, dtype(2 ** (bits - 1)), dtype=dtype)


def overs(samples: np.ndarray, subtype: str) -> tuple[int, float]:
    """Return how many samples an integer ``subtype`` must clip, and the largest magnitude.

    Examples
    --------
    >>> overs(np.array([0.5, 1.0036, -1.0]), "PCM_24")
    (1, 1.0036)
    """
    peak = float(np.abs(samples).max(initial=0.0))
    bits = _INTEGER_BITS.get(subtype)
    if bits is None or peak < 1.0 - 2.0 ** (1 - bits):
        return 0, peak
    scale = float(2 ** (bits - 1))
    levels = np.rint(np.asarray(samples, dtype=np.float64) * scale)
    return int(np.count_nonzero((levels > scale - 1) | (levels < -scale))), peak


class Checksum:
    """SHA-256 of samples in the form :class:`AudioReader` hashes a ``subtype``'s samples:
    interleaved little-endian int32 (integers in the top bits) or the stored floats.

    Parameters
    ----------
    subtype : str
        soundfile subtype of the source.
    grid : int, optional
        The source's samples lie on the grid of this many bits (see :func:`grid_bits`):
        samples are rounded to it first.  Default: the subtype's bit depth (none for floats).
    """

    def __init__(self, subtype: str, grid: int | None = None) -> None:
        self.subtype = subtype
        self.grid = _INTEGER_BITS.get(subtype) if grid is None else grid
        self._hash = hashlib.sha256()
        #: Where there is a grid, the largest distance (in its steps) of a sample from the
        #: level it rounds to: how close the samples came to rounding otherwise.
        self.worst = 0.0

    def update(self, samples: np.ndarray, *, keep: bool = False) -> np.ndarray | None:
        """Add float samples, shape (frames, channels); with ``keep``, return them in the form
        hashed (what :class:`AudioWriter` writes for the same subtype and grid)."""
        kept = None
        for first in range(0, samples.shape[0], _WRITE_FRAMES):
            piece = samples[first : first + _WRITE_FRAMES]
            if self.grid is not None and piece.size:
                scaled = _scaled(piece, self.grid)  # exact: so is the distance to its level
                self.worst = max(self.worst, float(np.abs(scaled - np.rint(scaled)).max()))
            data = _on_grid(piece, self.subtype, self.grid)
            self._hash.update(_little_endian(data))
            if keep:
                if kept is None:
                    kept = np.empty(samples.shape, dtype=data.dtype)
                kept[first : first + data.shape[0]] = data
        return kept

    def hexdigest(self) -> str:
        """The checksum of everything added."""
        return self._hash.hexdigest()


def _little_endian(samples: np.ndarray) -> np.ndarray:
    """The bytes of ``samples`` in C order and little-endian, as a flat uint8 array (no copy
    where they already are: the hash reads the array's own memory)."""
    return np.ascontiguousarray(samples, dtype=samples.dtype.newbyteorder("<")).reshape(-1).view(np.uint8)


def _on_grid(samples: np.ndarray, subtype: str, grid: int | None) -> np.ndarray:
    """:func:`quantize` of ``samples`` rounded to the ``grid`` first (where it is coarser)."""
    bits = _INTEGER_BITS.get(subtype)
    if grid is not None and (bits is None or grid < bits):
        samples = snap(samples, grid)
    return quantize(samples, subtype)


class AudioWriter:
    """Write audio block by block to a temporary file, renamed into place at the end.

    Parameters
    ----------
    path : path-like
    sample_rate, channels : int
    format, subtype : str
    grid : int, optional
        Round the samples to the grid of this many bits first (the source's, see
        :func:`grid_bits`), whatever ``subtype`` is written.
    """

    def __init__(
        self, path: str | os.PathLike, sample_rate: int, channels: int, format: str, subtype: str,
        *, grid: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.grid = grid
        self.sample_rate = sample_rate
        self.channels = channels
        self.format = format
        self.subtype = subtype
        self.clipped = 0
        self.peak = 0.0
        self._atomic: contextlib.AbstractContextManager | None = None
        self._file: sf.SoundFile | None = None

    def __enter__(self) -> AudioWriter:
        self._atomic = atomic_path(self.path)
        temporary = self._atomic.__enter__()
        try:
            self._file = sf.SoundFile(
                os.fsencode(temporary), "w", samplerate=self.sample_rate, channels=self.channels,
                format=self.format, subtype=self.subtype,
            )
        except BaseException as error:
            self._atomic.__exit__(type(error), error, error.__traceback__)
            if isinstance(error, (sf.LibsndfileError, RuntimeError, OSError)):
                raise AudioError(f"{self.path}: cannot write {self.format}/{self.subtype} "
                                 f"({_write_reason(error, self.path)})") from None
            raise
        return self

    def write(self, samples: np.ndarray, quantized: np.ndarray | None = None) -> None:
        """Append float samples, shape (frames, channels).  ``quantized``: the same samples as
        :class:`Checksum` of this writer's subtype and grid hashed them (``keep=True``), which
        are then written as they are (instead of converted a second time: with the float32
        conversion above, a 3-minute stereo 16-bit decode took 0.69-0.72 s instead of 0.8.0's
        0.77-0.79, medians of three alternating rounds of 5; peak unchanged, 333 MB)."""
        for first in range(0, samples.shape[0], _WRITE_FRAMES):  # bounded temporaries
            piece = samples[first : first + _WRITE_FRAMES]
            clipped, peak = overs(piece, self.subtype)
            self.clipped += clipped
            self.peak = max(self.peak, peak)
            data = _on_grid(piece, self.subtype, self.grid) if quantized is None \
                else quantized[first : first + _WRITE_FRAMES]
            try:
                self._file.write(data)
            except (sf.LibsndfileError, RuntimeError) as error:
                raise AudioError(f"{self.path}: write failed ({_write_reason(error, self.path)})") from None

    def __exit__(self, kind, error, traceback) -> None:
        try:
            self._file.close()
        except Exception as close_error:  # a full disk shows up here
            if error is None:
                error = AudioError(f"{self.path}: write failed ({_write_reason(close_error, self.path)})")
        atomic, self._atomic = self._atomic, None
        if error is None:
            atomic.__exit__(None, None, None)
            return
        atomic.__exit__(type(error), error, error.__traceback__)
        if kind is None:
            raise error
