"""Helpers shared by the tests: signals, audio files, crafted msfreq files, batch tasks."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from msfreq.pool import Outcome

#: A small grid (7 octaves at 8 kHz, 12 bins) whose hop unit is short, for fast block tests.
SMALL = {"sample_rate": 8000, "bins_per_octave": 12}


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-noise ratio of ``estimate`` against ``reference`` in dB."""
    reference = np.asarray(reference, dtype=np.float64)
    noise = np.sum((reference - np.asarray(estimate, dtype=np.float64)) ** 2)
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(np.sum(reference**2) / noise))


def music_like(n: int, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Harmonic tones with decays, a kick-like sweep and some noise: shape (n, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    out = np.zeros((n, channels))
    for channel in range(channels):
        x = 0.01 * rng.standard_normal(n)
        for k, f0 in enumerate(rng.uniform(60, min(1500, rate / 8), size=4)):
            onset = rng.uniform(0, max(t[-1] - 0.01, 0.001))
            env = np.exp(-np.maximum(t - onset, 0) * 3) * (t >= onset)
            for h in range(1, 6):
                if f0 * h < rate / 2:
                    x += 0.2 / h * env * np.sin(2 * np.pi * f0 * h * t + k)
        sweep = np.sin(2 * np.pi * np.cumsum(40 + 200 * np.exp(-t * 20)) / rate) * np.exp(-t * 8)
        out[:, channel] = x + 0.3 * sweep
    return out


def write_audio(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16", **kwargs) -> Path:
    """Write ``samples`` (float, full scale 1) with soundfile; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, subtype=subtype, **kwargs)
    return path


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Round float samples to 16-bit levels (still floats in [-1, 1))."""
    return np.clip(np.round(samples * 32768), -32768, 32767) / 32768


def misbehave(job, progress) -> Outcome:
    """A batch task (run in a worker process) that acts as its job's file name says:
    ``crash`` dies of SIGSEGV, ``hang`` sleeps, ``enospc`` fails as a full disk does,
    ``slow`` takes a while; anything else succeeds."""
    name = Path(job.source).name
    if "crash" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "hang" in name:
        time.sleep(3600)
    if "slow" in name:
        for step in range(200):
            progress(step, 200)
            time.sleep(0.05)
    if "enospc" in name:
        return Outcome(job, "failed", f"{job.source}: No space left on device [ENOSPC]")
    return Outcome(job, "done", "", "fine")


def write_v1(path: Path, representation) -> Path:
    """Write ``representation`` as msfreq 0.1.0 wrote files (format version 1): variable-length
    string attributes, gzip + shuffle + fletcher32, complex datasets, the old object versions."""
    import h5py

    from msfreq.store import dataset_name
    from msfreq.store.layout import chunk_frames

    grid = representation.grid
    params = grid.params
    with h5py.File(path, "w") as handle:
        attrs = handle.attrs
        for key, value in {
            "format": "msfreq", "format_version": 1, "msfreq_version": "0.1.0",
            "sample_rate": grid.sample_rate, "n_samples": representation.n_samples,
            "n_channels": representation.n_channels, "length": representation.length,
            "hop_unit": grid.hop_unit, "bins_per_octave": params.bins_per_octave,
            "fmin": params.fmin, "tuning": params.tuning, "n_octaves": grid.n_octaves,
            "dtype": representation.dtype.name, "compression": "gzip",
        }.items():
            attrs[key] = value
        for band in grid.bands:
            values = representation[band.name]
            per_frame = values.shape[0] * values.shape[1] * values.dtype.itemsize
            chunks = values.shape[:2] + (chunk_frames(per_frame, values.shape[2]),)
            handle.create_dataset(dataset_name(band), data=values, chunks=chunks,
                                  compression="gzip", compression_opts=1, shuffle=True,
                                  fletcher32=True)
    return path


def fuzz_case(job, progress) -> Outcome:
    """Decode one damaged file (a batch task): ``done`` with detail ``same``, ``different``
    or ``refused``; ``failed`` for anything but a clean FormatError."""
    import msfreq

    damaged, reference = job
    try:
        samples = msfreq.decode(msfreq.load(damaged))
    except msfreq.FormatError as error:
        return Outcome(job, "done", str(error), "refused")
    except Exception as error:  # a traceback the user would see
        return Outcome(job, "failed", f"{type(error).__name__}: {error}")
    same = np.array_equal(samples, np.load(reference))
    return Outcome(job, "done", "", "same" if same else "different")


def without_xing(data: bytes) -> bytes:
    """An MP3's bytes without the frame that carries its Xing/Info (length) header."""
    tag = max(data.find(b"Xing"), data.find(b"Info"))
    assert tag > 0
    start = data.rfind(b"\xff", 0, tag)
    end = tag
    while not (data[end] == 0xFF and data[end + 1] & 0xE0 == 0xE0):
        end += 1
    return data[:start] + data[end:]


def _crc(data: bytes, width: int, poly: int) -> int:
    """The CRC FLAC frames carry (CRC-8 of the header, CRC-16 of the frame), MSB first."""
    crc, top, mask = 0, 1 << (width - 1), (1 << width) - 1
    for byte in data:
        crc ^= byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
    return crc


class _BitWriter:
    def __init__(self) -> None:
        self.out, self._value, self._count = bytearray(), 0, 0

    def put(self, value: int, width: int) -> None:
        self._value = (self._value << width) | (value & ((1 << width) - 1))
        self._count += width
        while self._count >= 8:
            self._count -= 8
            self.out.append((self._value >> self._count) & 0xFF)
        self._value &= (1 << self._count) - 1

    def align(self) -> None:
        if self._count:
            self.put(0, 8 - self._count)


def write_flac(path: Path, levels: np.ndarray, rate: int, bits: int, *, md5: bytes | None = None,
               block: int = 4096) -> Path:
    """A FLAC of integer ``levels`` (frames, channels) at ``bits`` per sample (8, 12, 16, 20 or
    24) in verbatim subframes: the depths libsndfile cannot write, and a chosen MD5."""
    levels = np.asarray(levels, dtype=np.int64)
    frames, channels = levels.shape
    if md5 is None:
        width = (bits + 7) // 8
        md5 = hashlib.md5(b"".join(int(v).to_bytes(width, "little", signed=True)
                                   for v in levels.reshape(-1))).digest()
    info = _BitWriter()
    for value, width in ((block, 16), (block, 16), (0, 24), (0, 24), (rate, 20),
                         (channels - 1, 3), (bits - 1, 5), (frames, 36)):
        info.put(value, width)
    out = bytearray(b"fLaC\x80" + (34).to_bytes(3, "big") + bytes(info.out) + md5)
    size_code = {8: 1, 12: 2, 16: 4, 20: 5, 24: 6}[bits]
    if frames > 127 * block:
        raise ValueError("frame numbers above 127 take more than one byte: not written here")
    for index, first in enumerate(range(0, frames, block)):
        part = levels[first : first + block]
        head = _BitWriter()
        for value, width in ((0b11111111111110, 14), (0, 2), (0b0111, 4), (0, 4),
                             (channels - 1, 4), (size_code, 3), (0, 1), (index, 8)):
            head.put(value, width)
        header = bytes(head.out) + (len(part) - 1).to_bytes(2, "big")
        body = _BitWriter()
        for channel in range(channels):
            body.put(0b00000010, 8)  # a verbatim subframe, no wasted bits
            for value in part[:, channel]:
                body.put(int(value), bits)
        body.align()
        frame = header + bytes([_crc(header, 8, 0x07)]) + bytes(body.out)
        out += frame + _crc(frame, 16, 0x8005).to_bytes(2, "big")
    path.write_bytes(bytes(out))
    return path


def _decoded(path: Path) -> np.ndarray:
    from msfreq.convert import decode_file

    out = path.with_name(path.stem + ".decoded.wav")
    try:
        decode_file(path, out)
        return sf.read(str(out), dtype="float64", always_2d=True)[0]
    finally:
        out.unlink(missing_ok=True)


def _cropped(path: Path) -> dict:
    import msfreq

    crop = msfreq.Dataset([path], crop_seconds=0.5, seed=0)[0]
    return {name: np.asarray(values) for name, values in crop.items()}


def _read_range(path: Path) -> np.ndarray:
    from msfreq.convert import read_audio

    return read_audio(path, start=0.25, stop=1.5)[0]


def _inspected(path: Path) -> None:
    from msfreq.report import describe

    describe(path)


def _verified(path: Path) -> None:
    from msfreq.convert import verify_decode
    from msfreq.store import verify

    verify(path)
    verify_decode(path)


#: Every path that reads an msfreq file, by name: what it gives (None: only whether it passes).
READING_PATHS = {"decode": _decoded, "range": _read_range, "crop": _cropped,
                 "inspect": _inspected, "verify": _verified}


def _same(got, expected) -> bool:
    if isinstance(expected, dict):
        return got.keys() == expected.keys() and all(_same(got[k], expected[k]) for k in got)
    if expected is None:
        return got is None
    return got.shape == expected.shape and np.array_equal(got, expected)


def reading_paths(path: Path) -> dict:
    """What every path in :data:`READING_PATHS` gives for the msfreq file ``path``."""
    return {name: read(path) for name, read in READING_PATHS.items()}


def damaged_reading_case(job, progress) -> Outcome:
    """Run every reading path on one damaged file (a batch task), each on its own: ``done``
    with detail the set of verdicts, ``same`` (the undamaged file's numbers) or ``refused`` (a
    clean MsfreqError); ``failed`` where a path raised anything else or gave other numbers."""
    import pickle

    import msfreq

    damaged, reference = job
    expected = pickle.loads(Path(reference).read_bytes())
    verdicts, problems = set(), []
    for name, read in READING_PATHS.items():
        try:
            got = read(damaged)
        except msfreq.MsfreqError:
            verdicts.add("refused")
            continue
        except Exception as error:  # a traceback the user would see
            problems.append(f"{name}: {type(error).__name__}: {error}")
            continue
        if _same(got, expected[name]):
            verdicts.add("same")
        else:
            problems.append(f"{name}: different numbers")
    if problems:
        return Outcome(job, "failed", "; ".join(problems))
    return Outcome(job, "done", "", frozenset(verdicts))
