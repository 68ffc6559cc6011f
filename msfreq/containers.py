"""What libsndfile would read in part or wrongly, found from the containers themselves.

libsndfile takes a stream's length from its header and reads no further: an MP3 without a
true length header, joined MP3 or Ogg files, a file cut short, a WAV or AIFF over 4 GiB are read
in part without an error.  These checks count MPEG frames, walk Ogg pages, read a FLAC's
STREAMINFO (its MD5 is compared as the samples are read) and compare the sizes a header
declares with the file's (libsndfile notes the difference in its log), so that
:func:`msfreq.audio.probe` can refuse such files, naming both lengths.  Every walk is bounded
(junk, damaged or hostile bytes end it early) and reads the file in pieces.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from msfreq.errors import AudioError

__all__ = [
    "mpeg_samples",
    "ogg_chains",
    "flac_streaminfo",
    "FlacSignature",
    "checked_frames",
]


#: Bit rates (kbit/s) by bit rate index: MPEG-1 layers I, II, III; MPEG-2/2.5 layer I;
#: MPEG-2/2.5 layers II and III (ISO/IEC 11172-3 and 13818-3).
_MPEG_KBPS = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
#: Frames an MPEG stream may hold beyond what its decoder gives: the encoder's delay and
#: padding, and the frame carrying a Xing/LAME header (silent, not decoded).
_MPEG_SLACK = 3 * 1152 + 2048


def _mpeg_frame(header: bytes) -> tuple[int, int, int, tuple[int, int, int]] | None:
    """``(bytes, samples, sample_rate, kind)`` of the MPEG audio frame whose 4-byte header
    this is, or None if it is not one (or free format, whose length it does not say)."""
    if header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = {3: 1, 2: 2, 0: 25}.get((header[1] >> 3) & 3)
    layer = 4 - ((header[1] >> 1) & 3)
    index, rate_index = header[2] >> 4, (header[2] >> 2) & 3
    if version is None or layer == 4 or index in (0, 15) or rate_index == 3:
        return None
    kbps = _MPEG_KBPS[(1, layer) if version == 1 else (2, min(layer, 2))][index]
    rate = _MPEG_RATES[version][rate_index]
    padding = (header[2] >> 1) & 1
    if layer == 1:
        size, samples = (12000 * kbps // rate + padding) * 4, 384
    else:
        samples = 1152 if layer == 2 or version == 1 else 576
        size = (samples // 8) * 1000 * kbps // rate + padding
    return size, samples, rate, (version, layer, rate_index)


def mpeg_samples(path: str | os.PathLike) -> int | None:
    """Samples per channel that the MPEG audio frames of the file at ``path`` hold, counted
    frame by frame (skipping ID3v2 tags and junk between frames), or None where the stream
    cannot be walked (no frame found near the start, free format).

    libsndfile takes an MP3's length from its Xing/VBRI header, or without one estimates it
    from the first frame's bit rate, and reads no further: a variable-rate MP3 without that
    header (or files joined after the first's header was written) would be read in part,
    silently.  The count is what the stream holds, with the encoder's delay and padding.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.mp3"
    >>> sf.write(path, np.zeros(22050), 22050, subtype="MPEG_LAYER_III")
    >>> extra = mpeg_samples(path) - sf.info(path).frames  # the encoder's delay and padding
    >>> 0 < extra < 4 * 1152
    True
    """
    walked = _mpeg_walk(path)
    return None if walked is None else walked[0]


def _mpeg_walk(path: str | os.PathLike) -> tuple[int, bool] | None:
    """:func:`mpeg_samples`, and whether the first frame carries a length header (Xing,
    Info or VBRI)."""
    kind = None
    header = False
    total = 0
    with open(path, "rb") as handle:
        handle.seek(_after_id3(handle))
        buffer = b""
        at = 0  # position in buffer
        searched = 0  # bytes skipped since the last frame
        while True:
            if len(buffer) - at < 4:
                more = handle.read(1 << 20)
                if not more:
                    return (total, header) if kind is not None else None
                buffer = buffer[at:] + more
                at = 0
            frame = _mpeg_frame(buffer[at : at + 4])
            if frame is not None and (kind is None or frame[3] == kind):
                size, samples = frame[0], frame[1]
                if len(buffer) - at < size:  # the frame runs past the buffer: read on
                    more = handle.read(1 << 20)
                    if more:
                        buffer = buffer[at:] + more
                        at = 0
                        continue
                if kind is None:
                    kind = frame[3]
                    first = buffer[at : at + size]
                    header = any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))
                total += samples
                at += size
                searched = 0
                continue
            if buffer[at : at + 3] == b"TAG" or buffer[at : at + 8] == b"APETAGEX":
                return (total, header) if kind is not None else None
            skip = buffer.find(b"\xff", at + 1)
            skip = len(buffer) - 3 if skip < 0 else skip  # keep what may start a header
            searched += max(skip - at, 1)
            at = max(skip, at + 1)
            if searched > 1 << 16:  # no frame near the start, or junk within: not walkable
                return None


def _after_id3(handle) -> int:
    """Where the stream of an open file starts: after an ID3v2 tag, if it begins with one."""
    handle.seek(0)
    head = handle.read(10)
    if head[:3] != b"ID3" or len(head) < 10:
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if head[5] & 0x10 else 0)


def flac_streaminfo(path: str | os.PathLike) -> tuple[int, int, bytes] | None:
    """``(bits_per_sample, total_samples, md5)`` from the STREAMINFO block of the FLAC file at
    ``path`` (total 0 and an MD5 of zeros mean unknown), or None if it has none.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.flac"
    >>> sf.write(path, np.zeros(8000), 8000, subtype="PCM_24")
    >>> flac_streaminfo(path)[:2]
    (24, 8000)
    """
    with open(path, "rb") as handle:
        handle.seek(_after_id3(handle))
        block = handle.read(42)
    if len(block) < 42 or block[:4] != b"fLaC" or block[4] & 0x7F != 0:
        return None
    fields = int.from_bytes(block[18:26], "big")  # rate 20, channels 3, bits 5, samples 36
    return ((fields >> 36) & 0x1F) + 1, fields & ((1 << 36) - 1), bytes(block[26:42])


class FlacSignature:
    """The MD5 of a FLAC's samples as its STREAMINFO defines it (interleaved, signed,
    little-endian, in whole bytes), to compare with the one the file records.

    Parameters
    ----------
    bits : {8, 16, 24}
        The FLAC's bits per sample (its STREAMINFO's).
    expected : bytes
        The 16-byte MD5 its STREAMINFO records.
    """

    def __init__(self, bits: int, expected: bytes) -> None:
        self.bits = bits
        self.expected = expected
        self.md5 = hashlib.md5(usedforsecurity=False)

    def update(self, raw: np.ndarray) -> None:
        """Add samples as :class:`~msfreq.audio.AudioReader` reads them (int32, the value in
        the top bits), in order."""
        width = self.bits // 8
        values = np.ascontiguousarray(raw, dtype="<i4")
        # the value is the top ``width`` bytes of each little-endian int32 as read: those
        # bytes as one field (copied 3x faster than a slice of bytes)
        field = np.dtype({"names": ["v"], "formats": [f"V{width}"], "offsets": [4 - width],
                          "itemsize": 4})
        self.md5.update(np.ascontiguousarray(values.reshape(-1).view(field)["v"]))

    def matches(self) -> bool:
        """Whether the samples added so far have the MD5 the file records."""
        return self.md5.digest() == self.expected


#: A line of libsndfile's log where a chunk's size disagrees with the file:
#: ``data : 705600 (should be 423342)``.
_SIZE_LINE = re.compile(r"^\s*([A-Za-z][\w ]*?)\s*:\s*(\d+) \(should be (\d+)\)\s*$", re.MULTILINE)
#: The chunks of samples as libsndfile's log names them, and the formats whose logs name them
#: (W64 and RF64 logs name only the whole file's size).
_AUDIO_CHUNKS = frozenset({"data", "SSND", "Data Size"})
_AUDIO_CHUNK_FORMATS = frozenset({"WAV", "WAVEX", "AIFF", "AU"})
#: Sizes that writers which cannot seek back leave in a header (the stream's end unknown).
_PLACEHOLDER_SIZES = frozenset({0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFFFFFFFFFF})
#: Bytes a header's size may exceed the file's by without the file being cut short (writers
#: that count the header or leave out a pad byte).
_SIZE_SLACK = 64


def _check_declared_sizes(path: Path, log: str, frames: int, rate: int, format: str) -> None:
    """Refuse a file cut short: libsndfile reads what there is and notes in its log that the
    header said more (a WAV, AIFF, W64, RF64 or AU file cut at 60 % was read as 2.4 s of 4,
    silently)."""
    found = [(name.strip(), int(said), int(held)) for name, said, held in _SIZE_LINE.findall(log)]
    if format in _AUDIO_CHUNK_FORMATS:
        # only the samples' own chunk counts: those after it (a LIST of tags cut off) do not
        # hold samples
        found = [line for line in found if line[0] in _AUDIO_CHUNKS]
    for name, said, held in found:
        if said not in _PLACEHOLDER_SIZES and said > held + _SIZE_SLACK:
            raise AudioError(
                f"{path}: cut short: its header says {said} bytes ({name}), the file "
                f"holds {held}, and libsndfile would read only the {frames / rate:.1f} s there "
                f"(an unfinished copy or download?)"
            )


#: Formats whose sizes are 32 bits (a file over 4 GiB cannot say how much it holds).
_32_BIT_FORMATS = frozenset({"WAV", "WAVEX", "AIFF"})
#: Bytes per sample of the WAV/AIFF subtypes whose size follows from the sample count.
_PCM_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4,
              "DOUBLE": 8}


def _check_32_bit_sizes(path: Path, frames: int, channels: int, subtype: str, rate: int) -> None:
    """Refuse a WAV or AIFF file that holds clearly more samples than its header says, where
    the header cannot be right: over 4 GiB (their sizes are 32 bits: libsndfile read 2.4 % of
    a 4.4 GB WAV or AIFF whose sizes had wrapped, 97.6 % of a WAV that said 0xFFFFFFFF) or
    saying no samples at all (a recording whose header was never finished)."""
    width = _PCM_BYTES.get(subtype)
    size = path.stat().st_size
    if width is None or not (size >= 2**32 or frames == 0):
        return
    held = (size - 44) // (width * channels)  # at most: a header takes 44 bytes or more
    if held > frames + rate:  # by more than a second (other chunks are small)
        said = "no samples" if frames == 0 else f"{frames / rate:.1f} s"
        raise AudioError(
            f"{path}: holds about {held / rate:.1f} s of samples but its header says {said}, "
            f"and libsndfile reads only that (a WAV or AIFF over 4 GiB, or one whose header was "
            f"never finished); rewrite it as RF64, W64 or FLAC with a tool that reads the whole "
            f"file"
        )


def _check_mpeg_length(path: Path, frames: int, rate: int) -> int:
    """The frames to read of an MP3 that libsndfile says holds ``frames``: refuse one whose
    MPEG frames hold clearly more (read in part) or, where a length header says so, clearly
    less (cut short); where the length is only libsndfile's estimate (no such header), no
    more than the frames hold (the rest would be read as silence)."""
    walked = _mpeg_walk(path)
    if walked is None:
        return frames
    counted, header = walked
    if counted > frames + _MPEG_SLACK:
        raise AudioError(
            f"{path}: its MPEG frames hold {counted / rate:.1f} s but libsndfile reads only "
            f"{frames / rate:.1f} s (an MP3 without a true length header: variable bit rate "
            f"without a Xing header, or joined files); decode it to FLAC or WAV with a tool "
            f"that reads the whole stream, then encode that"
        )
    if counted < frames - _MPEG_SLACK:
        if header:
            raise AudioError(
                f"{path}: cut short: its length header says {frames / rate:.1f} s, its MPEG "
                f"frames hold {counted / rate:.1f} s (an unfinished copy or download?)"
            )
        return counted
    return frames


def ogg_chains(path: str | os.PathLike) -> tuple[int, bool] | None:
    """``(chains, ended)`` of the Ogg file at ``path``, walked page by page: how many streams
    follow one another (a chain begins with pages marked "beginning of stream" after pages of
    the last), and whether its last page is whole and marked "end of stream".  None if it is
    not a sequence of Ogg pages from its first byte.

    libsndfile reads only the first chain of a chained file (two OGG files joined, a radio
    capture), silently.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.ogg"
    >>> sf.write(path, np.zeros(8000), 8000, subtype="VORBIS")
    >>> ogg_chains(path)
    (1, True)
    >>> _ = path.write_bytes(path.read_bytes() * 2)
    >>> ogg_chains(path), sf.info(path).frames
    ((2, True), 8000)
    """
    chains, ended, started = 0, False, False
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        position = 0
        while position < size:
            handle.seek(position)
            header = handle.read(27)
            if len(header) < 27 or header[:4] != b"OggS" or header[4] != 0:
                # bytes that are no page: none at all, or after the last (a tag some taggers
                # append); the stream ended if its last page said so
                return None if position == 0 else (chains, ended)
            table = handle.read(header[26])
            if len(table) < header[26]:
                return chains, False
            flags = header[5]
            if flags & 0x02:  # beginning of a stream
                if not started:
                    chains += 1
                    started = True
            else:
                started = False
            position += 27 + len(table) + sum(table)
            ended = bool(flags & 0x04) and position <= size
    return chains, ended


def _check_ogg_pages(path: Path, frames: int, rate: int) -> None:
    """Refuse an Ogg file of chained streams (libsndfile reads the first) or cut short."""
    walked = ogg_chains(path)
    if walked is None:
        return
    chains, ended = walked
    if chains > 1:
        raise AudioError(
            f"{path}: holds {chains} Ogg streams one after another (joined files or a capture), "
            f"and libsndfile reads only the first ({frames / rate:.1f} s); split it, or decode "
            f"it whole with a tool that reads chained streams, then encode that"
        )
    if not ended:
        raise AudioError(f"{path}: cut short: its Ogg stream has no end (an unfinished copy, "
                         f"download or capture?)")


def checked_frames(path: str | os.PathLike, format: str, subtype: str, frames: int, channels: int,
                   rate: int, log: str, *, whole: bool = True) -> int:
    """The frames of an audio file to read, as soundfile describes it (``format``,
    ``subtype``, ``frames``, ``channels``, ``rate`` and libsndfile's ``log``), once the file
    itself has been checked for what libsndfile would read in part.

    A WAV or AIFF over 4 GiB or one saying no samples while samples follow is always refused
    (its header cannot be right); with ``whole``, also a file cut short (the sizes its header
    declares against the file's), an MP3 whose frames hold clearly more or, by its length
    header, less than libsndfile reads (without such a header: no more than they hold), and
    an Ogg file of chained streams or without an end.

    Raises
    ------
    AudioError
        Naming the file, both lengths and what to do; or that the file cannot be read.
    """
    path = Path(path)
    try:
        if format in _32_BIT_FORMATS:
            _check_32_bit_sizes(path, frames, channels, subtype, rate)
        if not whole:
            return frames
        _check_declared_sizes(path, log, frames, rate, format)
        if format == "MP3":
            return _check_mpeg_length(path, frames, rate)
        if format == "OGG":
            _check_ogg_pages(path, frames, rate)
    except OSError as error:
        raise AudioError(f"{path}: cannot read ({error.strerror or error})") from None
    return frames
