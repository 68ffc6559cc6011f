"""The four-step long FFTs equal scipy's, for every length and precision they serve."""

from __future__ import annotations

import sys

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


def _inputs():
    """Arrays of every kind the backend may see: dtypes, memory orders, byte orders, odd
    alignment."""
    rng = np.random.default_rng(7)
    real = rng.standard_normal((6, 45))
    complex_ = real + 1j * rng.standard_normal((6, 45))
    unaligned = np.frombuffer(b"x" + real.astype(np.float64).tobytes(), dtype=np.uint8)[1:].view(np.float64)
    return {
        "float64": real, "float32": real.astype(np.float32), "float16": real.astype(np.float16),
        "int16": (real * 1000).astype(np.int16), "complex128": complex_,
        "complex64": complex_.astype(np.complex64), "fortran": np.asfortranarray(complex_),
        "strided": complex_[::2, ::3], "big-endian": complex_.astype(">c16"),
        "unaligned": unaligned.reshape(6, 45),
    }


INPUTS = _inputs()


@pytest.mark.parametrize("kind", INPUTS)
@pytest.mark.parametrize("function", ["fft", "ifft", "rfft", "irfft"])
@pytest.mark.parametrize(("axis", "n"), [(-1, None), (0, None), (1, 32), (1, 64), (0, 9)])
def test_the_backend_gives_scipy_fft_bits(kind, function, axis, n):
    """msfreq calls scipy's pocketfft extension directly (importing scipy.fft costs 0.2 s):
    the same results, bit for bit, dtype for dtype, as scipy.fft for any input."""
    x = INPUTS[kind]
    if function == "rfft" and x.dtype.kind == "c":
        with pytest.raises(TypeError):
            fft.pocketfft().rfft(x, n=n, axis=axis)
        return
    for norm, workers in [(None, None), ("backward", 2), ("ortho", -1), ("forward", 1)]:
        for overwrite in ((False, True) if function in ("fft", "ifft") else (False,)):
            mine, theirs = x.copy(order="K"), x.copy(order="K")
            options = {"n": n, "axis": axis, "norm": norm, "workers": workers}
            if overwrite:
                options["overwrite_x"] = True
            got = getattr(fft.pocketfft(), function)(mine, **options)
            expected = getattr(sp_fft, function)(theirs, **options)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert np.array_equal(got, expected), (norm, overwrite)
            assert overwrite or np.array_equal(mine, x)  # input left alone


def test_the_backend_is_pocketfft_itself():
    assert isinstance(fft.pocketfft(), fft._Pocketfft)


@pytest.mark.parametrize("failure", ["not found", "raises", "wrong results"])
def test_the_backend_falls_back_to_scipy_fft(monkeypatch, failure):
    """Another scipy layout (the extension moved, renamed, or answering otherwise) costs the
    import time, not results."""
    def extension(name):
        if failure == "not found":
            raise StopIteration
        module = type(sys)("fake")
        if failure == "raises":
            module.c2c = module.r2c = module.c2r = lambda *args: (_ for _ in ()).throw(TypeError("signature"))
        else:
            module.c2c = module.r2c = module.c2r = lambda a, *args: np.zeros_like(a)
        return module

    monkeypatch.delitem(sys.modules, "scipy.fft._pocketfft.pypocketfft", raising=False)
    monkeypatch.setattr(fft, "_extension", extension)
    assert fft._load_pocketfft() is sp_fft


class _Misread:
    """scipy.fft with one argument taken otherwise, as a changed extension might."""

    def __init__(self, change):
        self.change = change

    def __getattr__(self, name):
        def transform(x, *args, **options):
            if self.change == "norm":
                options["norm"] = "ortho"
            elif self.change == "axis":
                options["axis"] = -1
            elif self.change == "direction":
                name_ = {"fft": "ifft", "ifft": "fft"}.get(name, name)
                return getattr(sp_fft, name_)(x, *args, **options)
            elif self.change == "precision":
                return getattr(sp_fft, name)(np.asarray(x).astype(np.complex64 if np.iscomplexobj(x)
                                                                  else np.float16), *args, **options)
            return getattr(sp_fft, name)(x, *args, **options)
        return transform


@pytest.mark.parametrize("change", ["norm", "axis", "direction", "precision"])
def test_a_backend_that_answers_otherwise_is_refused(change):
    assert fft._answers_as_a_dft(sp_fft)
    assert not fft._answers_as_a_dft(_Misread(change))


def test_the_transform_gives_the_same_bits_through_either_backend(monkeypatch):
    import msfreq

    signal = np.random.default_rng(3).standard_normal((2, 30000))
    direct = msfreq.encode(signal.T, 8000)
    monkeypatch.setattr(fft, "_BACKEND", sp_fft)
    through_scipy = msfreq.encode(signal.T, 8000)
    for name in direct.names:
        assert np.array_equal(direct[name], through_scipy[name])
    assert np.array_equal(msfreq.decode(direct), msfreq.decode(through_scipy))


@pytest.mark.parametrize("statement", [
    "import msfreq, msfreq.cli",
    "import msfreq; msfreq.read_header(sys.argv[1]); msfreq.verify(sys.argv[1])",
    "import msfreq; msfreq.decode(msfreq.load(sys.argv[1]))",
    "import msfreq, numpy; msfreq.decode(msfreq.encode(numpy.ones((9000, 2)), 8000))",
    "import msfreq, numpy, soundfile; from msfreq.convert import encode_file, EncodeOptions; "
    "soundfile.write(sys.argv[1] + '.wav', numpy.ones((9000, 2)) / 4, 8000); "
    "encode_file(sys.argv[1] + '.wav', sys.argv[1] + '.r.h5', EncodeOptions(sample_rate=11025)); "
    "assert 'scipy.signal' not in sys.modules, 'scipy.signal imported'",
])
def test_nothing_imports_scipy_fft(tmp_path, statement):
    """scipy.fft takes 0.2 s to import, scipy.signal 0.75 s: commands and readers need not pay
    them (0.8.0 paid scipy.fft on every start; 0.9.0 on every transform, and scipy.signal on
    every resampled encode)."""
    import subprocess
    import sys

    import msfreq

    path = tmp_path / "a.h5"
    msfreq.save(msfreq.encode(np.zeros((4000, 1)), 8000), path)
    code = f"import sys; {statement}; assert 'scipy.fft' not in sys.modules, 'scipy.fft imported'"
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
