"""The four-step long FFTs equal scipy's, for every length and precision they serve."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sp_fft

from msfreq import fft

#: lengths the transform uses (multiples of the 44.1 kHz hop unit 46080), a power of two,
#: and lengths that fall back to scipy (short, or no even split)
LENGTHS = [46080 * 96, 2**22, 2949120, 46080 * 24, 1000, 4194302]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm", ["backward", "forward"])
def test_rfft_and_irfft_equal_scipy(length, dtype, norm):
    rng = np.random.default_rng(length)
    x = rng.standard_normal(length).astype(dtype)
    tolerance = 16 * np.finfo(dtype).eps * np.sqrt(np.log2(length))
    expected = sp_fft.rfft(x, norm=norm)
    got = fft.rfft(x, norm=norm)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.abs(got - expected).max() <= tolerance * np.abs(expected).max()
    # any half spectrum, with imaginary parts at DC and Nyquist, which the inverse ignores
    spectrum = (rng.standard_normal(length // 2 + 1) + 1j * rng.standard_normal(length // 2 + 1)
                ).astype(expected.dtype)
    expected = sp_fft.irfft(spectrum, n=length, norm=norm)
    got = fft.irfft(spectrum, length, norm=norm)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.abs(got - expected).max() <= tolerance * np.abs(expected).max()


@pytest.mark.parametrize(("length", "parts"), [
    (46080 * 192, (768, 11520)), (2**22, (1024, 4096)), (2949120, (768, 3840)),
    (46080 * 24, (768, 1440)), (2**19, None), (4194302, None),
])
def test_split(length, parts):
    assert fft.split(length) == parts
    if parts is not None:
        assert parts[0] * parts[1] == length and parts[0] % 2 == 0 and parts[1] % 2 == 0
        assert parts[0] <= parts[1]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("scale", [2.0, 0.5, 3.0])
def test_scale_is_the_product(length, scale):
    """``scale`` (folded into the twiddles of the four-step method) gives the product: bit for
    bit for a power of two, within rounding otherwise."""
    rng = np.random.default_rng(length + 1)
    x = rng.standard_normal(length).astype(np.float32)
    spectrum = fft.rfft(x, norm="forward")
    pairs = [(fft.rfft(x, norm="forward", scale=scale), spectrum * np.float32(scale)),
             (fft.irfft(spectrum, length, norm="forward", scale=scale),
              fft.irfft(spectrum, length, norm="forward") * np.float32(scale))]
    for got, expected in pairs:
        assert got.dtype == expected.dtype and got.shape == expected.shape
        if scale in (2.0, 0.5):
            np.testing.assert_array_equal(got, expected)
        else:
            tolerance = 4 * np.finfo(np.float32).eps * np.abs(expected).max()
            assert np.abs(got - expected).max() <= tolerance
