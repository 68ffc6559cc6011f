"""Shared fixtures: seeded signals, small grids and audio files under tmp_path."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
import pytest
from helpers import SMALL
from hypothesis import settings

from msfreq.params import TransformParams
from msfreq.scales import make_grid

# Tests write only under tmp_path: no hypothesis example database in the working folder.
settings.register_profile("msfreq", database=None, deadline=None)
settings.load_profile("msfreq")

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


