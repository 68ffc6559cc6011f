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


def test_next_fast_len_is_scipys_for_complex_input():
    """A file's length follows from next_fast_len (transform_units): msfreq's own must give
    what scipy's gave when every existing file was written (11-smooth numbers)."""
    targets = list(range(1, 20001)) + [int(n) for n in np.random.default_rng(0).integers(1, 2**36, 500)]
    assert [fft.next_fast_len(n) for n in targets] == [sp_fft.next_fast_len(n) for n in targets]


@pytest.mark.parametrize("target", [13, 121, 143, 2**20 + 1, 3**12 + 1, 11**7 - 1])
def test_next_fast_len_is_the_smallest_11_smooth_length(target):
    found = fft.next_fast_len(target)
    rest = found
    for prime in (2, 3, 5, 7, 11):
        while rest % prime == 0:
            rest //= prime
    assert found >= target and rest == 1
    assert all(not _smooth(n) for n in range(target, found))


def _smooth(n: int) -> bool:
    for prime in (2, 3, 5, 7, 11):
        while n % prime == 0:
            n //= prime
    return n == 1


@pytest.mark.parametrize("statement", [
    "import msfreq, msfreq.cli",
    "import msfreq; msfreq.read_header(sys.argv[1]); msfreq.verify(sys.argv[1])",
])
def test_reading_and_the_cli_do_not_import_scipy_fft(tmp_path, statement):
    """scipy.fft takes 0.2 s to import: `msfreq --help`, `inspect` and file readers need not
    pay it (0.8.0 did, on every start)."""
    import subprocess
    import sys

    import msfreq

    path = tmp_path / "a.h5"
    msfreq.save(msfreq.encode(np.zeros((4000, 1)), 8000), path)
    code = f"import sys; {statement}; assert 'scipy.fft' not in sys.modules, 'scipy.fft imported'"
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
