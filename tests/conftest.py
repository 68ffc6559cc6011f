"""Shared fixtures: seeded signals, small grids and audio files under tmp_path."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import settings

from msfreq.params import TransformParams
from msfreq.scales import make_grid

# Tests write only under tmp_path: no hypothesis example database in the working folder.
settings.register_profile("msfreq", database=None, deadline=None)
settings.load_profile("msfreq")

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


_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="msfreq-hypothesis-")


def pytest_configure(config):
    """Hypothesis caches what it learns (when tests are collected) in a folder: keep it in a
    temporary folder, removed at the end, not in the working folder."""
    from hypothesis import configuration

    configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def pytest_unconfigure(config):
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def small_grid():
    return make_grid(SMALL["sample_rate"], TransformParams(bins_per_octave=SMALL["bins_per_octave"]))


def write_audio(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16", **kwargs) -> Path:
    """Write ``samples`` (float, full scale 1) with soundfile; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, subtype=subtype, **kwargs)
    return path


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Round float samples to 16-bit levels (still floats in [-1, 1))."""
    return np.clip(np.round(samples * 32768), -32768, 32767) / 32768
