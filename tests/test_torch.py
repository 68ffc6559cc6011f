"""msfreq.torch: equal to the numpy engine, exact, differentiable, movable, batched.

Runs where torch is installed (``make test-torch``); CUDA cases run where a GPU is present.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import snr_db

torch = pytest.importorskip("torch")

import msfreq  # noqa: E402
from msfreq.errors import ParameterError  # noqa: E402
from msfreq.torch import PLAN_CACHE_SIZE, Coefficients, Transform  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}
#: (sample_rate, n_samples, bins_per_octave, oversampling, n_octaves): whole hop units and
#: lengths that need padding, odd lengths, oversampling, a grid with fewer octaves.
CASES = [
    (8000, 8000, 12, 1, None),
    (44100, 3 * 44100 + 17, 48, 1, None),
    (22050, 5001, 24, 2, None),
    (16000, 1234, 36, 4, None),
    (48000, 30000, 24, 1, 5),
]


def relative_tolerance(dtype: str) -> float:
    """Differences between two float implementations of the same sums: a few dozen roundings."""
    return 64 * np.finfo(np.dtype(dtype)).eps


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}Hz-{c[1]}-b{c[2]}-os{c[3]}" for c in CASES])
def test_equals_numpy_engine(case, dtype, device):
    rate, n, bins, oversampling, octaves = case
    x = np.random.default_rng(n).standard_normal((n, 2))
    reference = msfreq.encode(x, rate, bins_per_octave=bins, oversampling=oversampling,
                              n_octaves=octaves, dtype=dtype)
    transform = Transform(rate, bins_per_octave=bins, oversampling=oversampling,
                          n_octaves=octaves, dtype=DTYPES[dtype]).to(device)
    ours = transform.encode(torch.from_numpy(x.T.copy()).to(device))
    assert ours.names == reference.names
    for name in reference.names:
        expected = reference[name]
        got = ours[name].cpu().numpy()
        assert got.shape == expected.shape and got.dtype == expected.dtype, name
        error = np.abs(got - expected).max() / np.abs(expected).max()
        assert error < relative_tolerance(dtype), (name, error)
    expected = msfreq.decode(reference).T
    # synthesis has two ways: weights applied while laying the spectra out (no autograd),
    # and the differentiable one
    decoded = transform.decode(ours).cpu().numpy()
    np.testing.assert_allclose(decoded, expected, atol=relative_tolerance(dtype) * np.abs(x).max())
    tracked = Coefficients({name: value.clone().requires_grad_() for name, value in ours.items()},
                           ours.grid, ours.n_samples)
    decoded = transform.decode(tracked).detach().cpu().numpy()
    np.testing.assert_allclose(decoded, expected, atol=relative_tolerance(dtype) * np.abs(x).max())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize(("span", "bins"), [(2, 24), (3, 48)])
def test_wide_windows_equal_numpy_engine(span, bins, dtype, device):
    """Windows reaching ``span`` bins each way: 2 * span of them over a frequency (slots)."""
    x = np.random.default_rng(span).standard_normal((20000, 2))
    reference = msfreq.encode(x, 22050, bins_per_octave=bins, span=span, dtype=dtype)
    transform = Transform(22050, bins_per_octave=bins, span=span, dtype=DTYPES[dtype]).to(device)
    assert transform.tables(20000).slots == 2 * span
    ours = transform.encode(torch.from_numpy(x.T.copy()).to(device))
    for name in reference.names:
        error = np.abs(ours[name].cpu().numpy() - reference[name]).max() / np.abs(reference[name]).max()
        assert error < relative_tolerance(dtype), (name, error)
    np.testing.assert_allclose(transform.decode(ours).cpu().numpy(), msfreq.decode(reference).T,
                               atol=relative_tolerance(dtype) * np.abs(x).max())


def test_cases_cover_both_ways_of_reading_a_real_band():
    """Synthesis reads a real band's real FFT or its full FFT (see ``_Tables``): the cases
    above must exercise both, or one of them goes untested."""
    used = set()
    for rate, n, bins, oversampling, octaves in CASES:
        transform = Transform(rate, bins_per_octave=bins, oversampling=oversampling, n_octaves=octaves)
        used.update(transform.tables(n).halves)
    assert used == {"lower", "full"}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_round_trip_is_exact(dtype, device):
    x = torch.randn(3, 2, 20000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    transform = Transform(16000, dtype=DTYPES[dtype]).to(device)
    back = transform.decode(transform.encode(x.to(device))).cpu()
    assert back.shape == x.shape
    assert back.dtype == (torch.float32 if dtype == "complex64" else torch.float64)
    # the thresholds of the numpy engine's tests
    assert snr_db(x.numpy(), back.numpy()) >= (125 if dtype == "complex64" else 250)


def test_batch_items_are_independent():
    transform = Transform(8000, bins_per_octave=12, dtype=torch.complex128)
    batch = torch.randn(2, 3, 4000, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    together = transform.encode(batch)
    for i in range(2):
        for j in range(3):
            alone = transform.encode(batch[i, j])
            for name in together:
                torch.testing.assert_close(together[name][i, j], alone[name], rtol=0, atol=1e-12)


def test_integer_audio_is_taken_as_it_is():
    samples = torch.tensor(np.random.default_rng(3).integers(-2**15, 2**15, 4000), dtype=torch.int16)
    transform = Transform(8000, bins_per_octave=12, dtype=torch.complex128)
    back = transform.decode(transform.encode(samples))
    assert torch.equal(back.round().to(torch.int16), samples)


def test_gradients_are_those_of_the_linear_maps():
    transform = Transform(2000, bins_per_octave=4, dtype=torch.complex128)
    x = torch.randn(1, 300, generator=torch.Generator().manual_seed(4), dtype=torch.float64,
                    requires_grad=True)
    names = transform.encode(x.detach()).names

    def forward(signal):
        return tuple(transform.encode(signal)[name] for name in names)

    assert torch.autograd.gradcheck(forward, (x,), eps=1e-6, atol=1e-8)
    coefficients = transform.encode(x.detach())
    leaves = [coefficients[name].clone().requires_grad_() for name in names]

    def backward(*bands):
        return transform.decode(dict(zip(names, bands, strict=True)), n_samples=300)

    assert torch.autograd.gradcheck(backward, tuple(leaves), eps=1e-6, atol=1e-8)


def test_stack_matches_representation():
    x = np.random.default_rng(5).standard_normal((6000, 2))
    reference = msfreq.encode(x, 8000, bins_per_octave=12)
    ours = Transform(8000, bins_per_octave=12).encode(torch.from_numpy(x.T.copy()))
    coarse = reference.band("octave_03").hop
    for options in ({}, {"pool": "max"}, {"pool": "rms", "hop": coarse}, {"db": True, "hop": coarse}):
        np.testing.assert_allclose(ours.stack(**options).numpy(), reference.stack(**options),
                                   rtol=1e-5, atol=1e-5, err_msg=str(options))


def test_representation_conversions():
    x = np.random.default_rng(6).standard_normal((5000, 2))
    reference = msfreq.encode(x, 8000, bins_per_octave=12, dtype="complex128")
    coefficients = Coefficients.from_representation(reference)
    transform = Transform(8000, bins_per_octave=12, dtype=torch.complex128)
    np.testing.assert_allclose(transform.decode(coefficients).numpy(), x.T, atol=1e-12)
    back = coefficients.to_representation()
    assert back.n_samples == 5000 and back.length == reference.length
    np.testing.assert_array_equal(back["octave_03"], reference["octave_03"])
    batched = transform.encode(torch.from_numpy(x.T.copy())[None])
    with pytest.raises(ParameterError, match="index the batch first"):
        batched.to_representation()


def test_tables_are_buffers_that_move_and_are_not_saved():
    transform = Transform(8000, bins_per_octave=12)
    transform.encode(torch.zeros(1000))
    assert transform.state_dict() == {}
    assert sum(buffer.numel() for buffer in transform.buffers()) > 1000
    moved = transform.to(torch.device("meta"))
    assert all(buffer.device.type == "meta" for buffer in moved.buffers())
    # a length first seen after the move gets its tables on the new device too
    moved.tables(3000)
    assert all(buffer.device.type == "meta" for buffer in moved.buffers())


def test_double_on_the_module_keeps_its_precision():
    transform = Transform(8000, bins_per_octave=12)
    x = torch.randn(1, 4000, generator=torch.Generator().manual_seed(7))
    before = transform.encode(x)["octave_04"]
    transform.double()  # casts float buffers: the transform keeps its own precision
    after = transform.encode(x)["octave_04"]
    assert after.dtype == torch.complex64
    torch.testing.assert_close(after, before)


def test_plan_cache_is_bounded():
    transform = Transform(8000, bins_per_octave=12)
    for n in range(1, PLAN_CACHE_SIZE + 4):
        transform.encode(torch.zeros(n * 2000))
    assert len(transform._tables) == PLAN_CACHE_SIZE


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda t: t.encode(torch.zeros(100, dtype=torch.complex64)), "audio must be real"),
        (lambda t: t.encode(torch.zeros(2, 0)), r"audio must have shape \(\*batch, samples\)"),
        (lambda t: t.decode({"octave_00": torch.zeros(1, 12, 1)}), "needs n_samples"),
        (lambda t: t.decode({"octave_00": torch.zeros(1, 12, 1)}, n_samples=100), "expected the bands"),
        (lambda t: Transform(8000, dtype=torch.float32), "dtype must be"),
        (lambda t: Transform(8000, oversampling=0), "oversampling must be"),
    ],
    ids=["complex", "empty", "no-length", "missing-bands", "dtype", "oversampling"],
)
def test_errors(call, match):
    transform = Transform(8000, bins_per_octave=12)
    with pytest.raises(ParameterError, match=match):
        call(transform)


def test_decode_refuses_wrong_shapes_and_other_grids():
    transform = Transform(8000, bins_per_octave=12)
    coefficients = transform.encode(torch.zeros(2, 4000))
    bands = dict(coefficients)
    bands["octave_02"] = bands["octave_02"][..., :-1]
    with pytest.raises(ParameterError, match="band octave_02 must end in shape"):
        transform.decode(bands, n_samples=4000)
    with pytest.raises(ParameterError, match="another grid"):
        Transform(8000, bins_per_octave=24).decode(coefficients)


def test_training_example_runs():
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, str(root / "examples" / "train_step.py"),
                             str(root / "sample_audio"), "--device", "cpu"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "gradient norm at the audio" in result.stdout and not result.stderr
