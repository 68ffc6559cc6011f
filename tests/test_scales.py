"""The frequency grid: bins on the tuning grid, octave boundaries, hops, errors."""

from __future__ import annotations

import numpy as np
import pytest

from msfreq.errors import ParameterError
from msfreq.params import C0_HZ, MAX_BINS_PER_OCTAVE, MAX_SAMPLE_RATE, TransformParams
from msfreq.scales import make_grid, note_name, smooth_number_at_most


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("bins", [12, 24, 48, 96])
def test_grid_structure(rate, bins):
    grid = make_grid(rate, TransformParams(bins_per_octave=bins))
    octaves = grid.octaves
    assert [band.name for band in grid.bands][0] == "residual_low"
    assert grid.bands[-1].name == "residual_high"
    for band in octaves:
        frequencies = grid.frequencies(band)
        assert band.n_bins == bins
        assert np.all(frequencies >= band.lower * (1 - 1e-12))
        assert np.all(frequencies < band.upper)
        # centres on the tuning grid
        k = bins * np.log2(frequencies / 440.0)
        np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    for lower, upper in zip(octaves, octaves[1:], strict=False):
        assert lower.hop == 2 * upper.hop
        assert upper.bins[0] == lower.bins[0] + bins
    for band in grid.bands:
        assert grid.hop_unit % band.hop == 0
    # as many octaves as fit: one more does not
    assert octaves[-1].upper <= rate / 2
    with pytest.raises(ParameterError, match="do not fit"):
        make_grid(rate, TransformParams(bins_per_octave=bins, n_octaves=grid.n_octaves + 1))


def test_bins_do_not_depend_on_sample_rate():
    a = make_grid(44100, TransformParams())
    b = make_grid(48000, TransformParams())
    assert a.n_octaves == b.n_octaves == 10
    for band_a, band_b in zip(a.octaves, b.octaves, strict=True):
        np.testing.assert_array_equal(a.frequencies(band_a), b.frequencies(band_b))


@pytest.mark.parametrize("rate", [22050, 44100, 48000, 96000])
def test_redundancy_at_most_two_complex_per_sample(rate):
    grid = make_grid(rate, TransformParams(bins_per_octave=48))
    # coefficient_rate counts real numbers; two per complex coefficient.
    assert grid.coefficient_rate() / 2 <= 2.0


def test_default_hops_at_44100():
    grid = make_grid(44100, TransformParams())
    assert [band.hop for band in grid.octaves] == [90 * 2**k for k in range(9, -1, -1)]
    assert grid.hop_unit == 46080


def test_fewer_octaves_on_request():
    grid = make_grid(44100, TransformParams(n_octaves=4))
    assert grid.n_octaves == 4
    assert grid.bands[-1].lower == pytest.approx(C0_HZ * 16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bins_per_octave": 0}, "bins_per_octave must be between"),
        ({"bins_per_octave": MAX_BINS_PER_OCTAVE + 1}, "bins_per_octave must be between"),
        ({"bins_per_octave": 12.5}, "bins_per_octave must be an integer"),
        ({"bins_per_octave": True}, "bins_per_octave must be an integer"),
        ({"fmin": -1.0}, "fmin must be a finite number > 0"),
        ({"fmin": float("nan")}, "fmin must be a finite number > 0"),
        ({"fmin": "low"}, "fmin must be a number"),
        ({"tuning": 0}, "tuning must be a finite number > 0"),
        ({"n_octaves": 0}, "n_octaves must be >= 1"),
        ({"n_octaves": 2.0}, "n_octaves must be an integer"),
    ],
)
def test_parameter_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        TransformParams(**kwargs)


@pytest.mark.parametrize(
    ("rate", "params", "message"),
    [
        (40, TransformParams(), "too low for one octave"),
        (0, TransformParams(), r"sample_rate must be in 1\.\.10,000,000 Hz, got 0"),
        # a damaged header's rate: every file is padded to about a second at its rate
        (MAX_SAMPLE_RATE + 1, TransformParams(), "sample_rate must be in 1..10,000,000 Hz"),
        (44100.5, TransformParams(), "sample_rate must be an integer"),
        (8000, TransformParams(n_octaves=12), "do not fit below the Nyquist"),
    ],
)
def test_grid_errors(rate, params, message):
    with pytest.raises(ParameterError, match=message):
        make_grid(rate, params)


def test_the_highest_sample_rate_has_a_grid():
    assert make_grid(MAX_SAMPLE_RATE, TransformParams()).sample_rate == MAX_SAMPLE_RATE


def test_parameter_error_is_value_error():
    with pytest.raises(ValueError):
        TransformParams(bins_per_octave=-3)


@pytest.mark.parametrize(
    ("frequency", "name"),
    [(440.0, "A4"), (C0_HZ, "C0"), (261.6256, "C4"), (450.0, "A4+39c"), (0.0, "0 Hz")],
)
def test_note_names(frequency, name):
    assert note_name(frequency) == name


@pytest.mark.parametrize(("limit", "expected"), [(92.2, 90), (100.4, 100), (1, 1), (7.9, 6)])
def test_smooth_numbers(limit, expected):
    assert smooth_number_at_most(limit) == expected
