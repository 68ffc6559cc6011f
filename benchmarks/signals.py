"""Deterministic test signals for the benchmarks: a music-like mix, written in blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["music_mix", "write_mix"]


def music_mix(seconds: float, rate: int = 44100, channels: int = 1, seed: int = 0,
              start: int = 0) -> np.ndarray:
    """A signal that behaves like a real mix: kick and hats at 126 BPM, a bass line, chords
    with harmonics, a noise bed.  Samples ``start:start + seconds*rate``, shape (n, channels).
    Deterministic in ``seed`` and position, so it can be rendered block by block."""
    n = int(round(seconds * rate))
    t = (start + np.arange(n)) / rate
    beat = 60.0 / 126.0
    phase_in_beat = np.mod(t, beat)
    kick_frequency = 50 + 90 * np.exp(-phase_in_beat / 0.03)
    # integral of the kick's frequency since the beat started, so the phase is continuous
    kick_phase = 2 * np.pi * (50 * phase_in_beat + 90 * 0.03 * (1 - np.exp(-phase_in_beat / 0.03)))
    kick = np.sin(kick_phase) * np.exp(-phase_in_beat / 0.15) * (kick_frequency > 0)
    rng = np.random.default_rng([seed, start // rate])
    noise = rng.standard_normal(n)
    off_beat = np.mod(t + beat / 2, beat)
    hats = np.diff(noise, prepend=0.0) * np.exp(-off_beat / 0.02) * 0.25
    bar = np.floor(t / (4 * beat)).astype(int)
    roots = np.array([55.0, 55.0 * 2 ** (5 / 12), 55.0 * 2 ** (3 / 12), 55.0 * 2 ** (7 / 12)])
    root = roots[bar % 4]
    eighth = np.mod(t, beat / 2)
    bass = np.sin(2 * np.pi * root * t) * np.exp(-eighth / 0.12) * 0.5
    chords = np.zeros(n)
    for interval in (12, 16, 19, 24):
        frequency = root * 2 ** (interval / 12)
        for harmonic in range(1, 6):
            chords += np.sin(2 * np.pi * frequency * harmonic * t + harmonic) / (harmonic * 6)
    chords *= 0.5 + 0.5 * np.sin(2 * np.pi * t / (8 * beat))
    mix = 0.5 * kick + hats + bass + 0.2 * chords + 0.01 * noise
    out = np.stack([mix * (1 - 0.1 * c) for c in range(channels)], axis=1)
    return np.clip(out * 0.45, -1, 1)


def write_mix(path: Path, seconds: float, rate: int = 44100, channels: int = 2,
              subtype: str = "PCM_16", block_seconds: float = 30.0) -> Path:
    """Write :func:`music_mix` to ``path`` block by block (any length, little memory)."""
    total = int(round(seconds * rate))
    block = int(block_seconds * rate)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=channels, subtype=subtype) as f:
        for start in range(0, total, block):
            n = min(block, total - start)
            f.write(music_mix(n / rate, rate, channels, start=start))
    return path
