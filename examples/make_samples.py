"""Render the sample clips in this folder (deterministic: numpy synthesis, fixed seeds).

    python examples/make_samples.py

Every sound is synthesised here from sine waves and seeded noise, so the clips are free of
third-party rights (this script and its output are under the project's licence).  They mirror
the material msfreq is for, in the formats users have:

=========================  =====================  =====================================
file                       format                 content
=========================  =====================  =====================================
house_beat.wav             WAV 16-bit 44.1k stereo  four-on-the-floor kick, off-beat hats, clap
techno_bassline.flac       FLAC 24-bit 48k stereo   techno kick, rolling acid-style bass line
bach_counterpoint.wav      WAV 16-bit 44.1k mono    two-voice counterpoint in D minor, harpsichord-like
gliding_raga.wav           WAV 16-bit 44.1k stereo  sitar-like melody with glides over a drone, just intonation
=========================  =====================  =====================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent.parent / "sample_audio"


def envelope(n: int, rate: int, attack: float, decay: float) -> np.ndarray:
    """Linear attack then exponential decay (time constant ``decay`` seconds)."""
    t = np.arange(n) / rate
    rise = np.clip(t / max(attack, 1e-6), 0.0, 1.0)
    return rise * np.exp(-np.maximum(t - attack, 0.0) / decay)


def one_pole_lowpass(x: np.ndarray, cutoff: np.ndarray | float, rate: int) -> np.ndarray:
    """A one-pole low-pass filter with a (possibly time-varying) cutoff in Hz."""
    cutoff = np.broadcast_to(np.asarray(cutoff, dtype=float), x.shape)
    alpha = 1.0 - np.exp(-2.0 * np.pi * cutoff / rate)
    y = np.empty_like(x)
    state = 0.0
    for i, (value, a) in enumerate(zip(x, alpha, strict=True)):
        state += a * (value - state)
        y[i] = state
    return y


def kick(rate: int, start_hz: float = 150.0, end_hz: float = 45.0, length: float = 0.45) -> np.ndarray:
    n = int(length * rate)
    t = np.arange(n) / rate
    frequency = end_hz + (start_hz - end_hz) * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(frequency) / rate
    click = np.exp(-t / 0.002) * 0.3
    return (np.sin(phase) + click) * envelope(n, rate, 0.001, 0.18)


def hat(rate: int, rng: np.random.Generator, length: float = 0.06, open_hat: bool = False) -> np.ndarray:
    n = int((0.25 if open_hat else length) * rate)
    noise = rng.standard_normal(n)
    bright = noise - one_pole_lowpass(noise, 7000.0, rate)  # high-pass
    return bright * envelope(n, rate, 0.0005, 0.09 if open_hat else 0.018) * 0.5


def clap(rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.2 * rate)
    noise = rng.standard_normal(n)
    band = one_pole_lowpass(noise, 2500.0, rate) - one_pole_lowpass(noise, 900.0, rate)
    bursts = sum(envelope(n, rate, 0.0005, 0.006) * (np.arange(n) >= int(k * 0.011 * rate)) for k in range(3))
    return band * (bursts + envelope(n, rate, 0.001, 0.05)) * 1.5


def place(track: np.ndarray, sound: np.ndarray, at: int, pan: float = 0.0) -> None:
    """Add a mono ``sound`` into a stereo ``track`` at sample ``at`` (pan -1 left .. 1 right)."""
    end = min(at + sound.size, track.shape[0])
    if end <= at:
        return
    gains = np.array([np.cos((pan + 1) * np.pi / 4), np.sin((pan + 1) * np.pi / 4)]) * np.sqrt(2)
    track[at:end] += sound[: end - at, None] * gains


def normalise(x: np.ndarray, peak: float = 0.89) -> np.ndarray:
    return x * (peak / np.max(np.abs(x)))


def house_beat(rate: int = 44100, seconds: float = 6.0) -> np.ndarray:
    rng = np.random.default_rng(1)
    beat = 60.0 / 124.0
    track = np.zeros((int(seconds * rate), 2))
    for step in range(int(seconds / beat) + 1):
        at = int(step * beat * rate)
        place(track, kick(rate), at)
        place(track, hat(rate, rng, open_hat=True), at + int(beat / 2 * rate), pan=0.3)
        if step % 2 == 1:
            place(track, clap(rate, rng), at, pan=-0.1)
        for sixteenth in (1, 3):
            place(track, hat(rate, rng) * 0.5, at + int(sixteenth * beat / 4 * rate), pan=-0.4)
    return normalise(track)


def techno_bassline(rate: int = 48000, seconds: float = 6.0) -> np.ndarray:
    rng = np.random.default_rng(2)
    beat = 60.0 / 132.0
    n = int(seconds * rate)
    track = np.zeros((n, 2))
    for step in range(int(seconds / beat) + 1):
        at = int(step * beat * rate)
        place(track, kick(rate, 120.0, 50.0, 0.5) * 1.2, at)
        place(track, hat(rate, rng) * 0.6, at + int(beat / 2 * rate), pan=0.2)
    # Rolling sixteenth-note bass: saw wave through a resonant-ish sweeping low-pass.
    pattern = [0, 0, 12, 0, 3, 0, 15, 0, 0, 7, 0, 12, 0, 3, 10, 0]
    root = 55.0  # A1
    sixteenth = beat / 4
    t = np.arange(n) / rate
    step_index = (t / sixteenth).astype(int)
    semitones = np.array(pattern)[step_index % len(pattern)]
    frequency = root * 2 ** (semitones / 12)
    phase = np.cumsum(frequency) / rate
    saw = 2 * (phase % 1.0) - 1
    gate = envelope(int(sixteenth * rate), rate, 0.002, 0.07)
    gate = np.tile(gate, step_index.max() + 2)[:n]
    cutoff = 300 + 2200 * (0.5 + 0.5 * np.sin(2 * np.pi * t / seconds)) * gate
    bass = one_pole_lowpass(one_pole_lowpass(saw * gate, cutoff, rate), cutoff, rate)
    track += bass[:, None] * np.array([0.9, 0.9]) * 1.6
    return normalise(track)


def plucked(frequency: float, duration: float, rate: int, brightness: float = 1.0) -> np.ndarray:
    """A harpsichord-like tone: harmonics with decays that shorten as they go up."""
    n = int(duration * rate)
    t = np.arange(n) / rate
    tone = np.zeros(n)
    for harmonic in range(1, 16):
        partial = frequency * harmonic * np.sqrt(1 + 0.0002 * harmonic**2)  # slight stiffness
        if partial > rate / 2.2:
            break
        tone += (brightness / harmonic**0.9) * np.sin(2 * np.pi * partial * t) * np.exp(-t * (1.5 + 0.9 * harmonic))
    return tone * envelope(n, rate, 0.002, 10.0)


def bach_counterpoint(rate: int = 44100, seconds: float = 8.0) -> np.ndarray:
    """Two voices in D minor, sixteenths over eighths, in the manner of a two-part invention."""
    def midi(number: float) -> float:
        return 440.0 * 2 ** ((number - 69) / 12)

    upper = [74, 76, 77, 79, 76, 77, 74, 73, 74, 81, 79, 77, 76, 74, 73, 74,
             76, 77, 79, 81, 82, 79, 76, 79, 77, 76, 74, 76, 77, 74, 73, 69,
             74, 76, 77, 79, 81, 77, 74, 77, 79, 81, 82, 84, 81, 77, 76, 74]
    lower = [50, 57, 53, 57, 50, 52, 53, 55, 57, 55, 53, 52, 50, 49, 50, 45,
             46, 53, 50, 53, 45, 52, 49, 52]
    sixteenth = 60.0 / 92.0 / 4
    track = np.zeros(int(seconds * rate))
    for index, note in enumerate(upper):
        at = int(index * sixteenth * rate)
        tone = plucked(midi(note), sixteenth * 3, rate, 0.8)
        end = min(at + tone.size, track.size)
        track[at:end] += tone[: end - at]
    for index, note in enumerate(lower):
        at = int(index * 2 * sixteenth * rate)
        tone = plucked(midi(note), sixteenth * 5, rate, 1.0)
        end = min(at + tone.size, track.size)
        track[at:end] += tone[: end - at]
    return normalise(track)[:, None]


def gliding_raga(rate: int = 44100, seconds: float = 7.0) -> np.ndarray:
    """A melody in just intonation (Sa Re Ga Ma Pa Dha Ni as frequency ratios) with slow
    glides (meend) between notes, over a drone on Sa and Pa."""
    rng = np.random.default_rng(4)
    sa = 146.83  # D3
    ratios = {"Sa": 1.0, "re": 16 / 15, "Ga": 5 / 4, "Ma": 4 / 3, "Pa": 3 / 2, "dha": 8 / 5,
              "Ni": 15 / 8, "Sa'": 2.0}
    phrase = [("Sa", 0.5), ("re", 0.4), ("Ga", 0.8), ("Ma", 0.4), ("Pa", 1.0), ("dha", 0.5),
              ("Pa", 0.5), ("Ma", 0.4), ("Ga", 0.9), ("re", 0.4), ("Sa", 0.8)]
    n = int(seconds * rate)
    t = np.arange(n) / rate
    # Target pitch per sample, with glides: each note's pitch approaches from the previous
    # note over the first 35 % of its duration (a smooth cosine glide in log-frequency).
    log_pitch = np.full(n, np.log2(sa * 2))
    position, previous = 0.0, np.log2(sa * 2)
    for name, duration in phrase:
        target = np.log2(sa * 2 * ratios[name])
        start, stop = int(position * rate), min(int((position + duration) * rate), n)
        glide = max(int(0.35 * duration * rate), 1)
        u = np.clip(np.arange(stop - start) / glide, 0, 1)
        log_pitch[start:stop] = previous + (target - previous) * (0.5 - 0.5 * np.cos(np.pi * u))
        position += duration
        previous = target
    log_pitch[int(position * rate):] = previous
    vibrato = 0.012 * np.sin(2 * np.pi * 5.5 * t) * np.clip(t / 2, 0, 1)
    frequency = 2 ** (log_pitch + vibrato)
    phase = 2 * np.pi * np.cumsum(frequency) / rate
    melody = sum((0.9 ** k) * np.sin(k * phase) / k**0.5 for k in range(1, 12))
    melody *= 0.6 + 0.4 * np.clip(t / 0.05, 0, 1)
    drone = np.zeros(n)
    for ratio, gain in ((1.0, 1.0), (1.5, 0.7), (2.0, 0.5)):
        for k in range(1, 9):
            drone += gain / k * np.sin(2 * np.pi * sa * ratio * k * t + rng.uniform(0, 2 * np.pi)) * (1 + 0.3 * np.sin(2 * np.pi * 0.7 * k * t))
    track = np.stack([0.8 * melody + 0.25 * drone, 0.6 * melody + 0.35 * drone], axis=1)
    return normalise(track)


def main() -> None:
    sf.write(HERE / "house_beat.wav", house_beat(), 44100, subtype="PCM_16")
    sf.write(HERE / "techno_bassline.flac", techno_bassline(), 48000, subtype="PCM_24")
    sf.write(HERE / "bach_counterpoint.wav", bach_counterpoint(), 44100, subtype="PCM_16")
    sf.write(HERE / "gliding_raga.wav", gliding_raga(), 44100, subtype="PCM_16")
    for path in sorted(HERE.glob("*.*")):
        if path.suffix != ".py":
            info = sf.info(str(path))
            print(f"{path.name}: {info.format} {info.subtype}, {info.samplerate} Hz, "
                  f"{info.channels} ch, {info.duration:.2f} s, {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
