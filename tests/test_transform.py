"""The transform: exact inverse, frame bounds, and the properties it exists for."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import music_like, snr_db
from hypothesis import given, settings
from hypothesis import strategies as st

import msfreq
from msfreq.errors import ParameterError
from msfreq.frames import Plan, _pairs, bin_window, get_plan, smoothstep
from msfreq.params import TransformParams
from msfreq.scales import make_grid
from msfreq.transform import analyze, synthesize, transform_units

#: Reconstruction tolerance: relative RMS error of a few hundred rounding steps (the FFTs
#: add O(log n) roundings per sample).  float64: 250 dB; float32: 125 dB.
RELATIVE = {np.complex128: np.finfo(np.float64).eps * 1400, np.complex64: np.finfo(np.float32).eps * 5}


def required_snr(dtype) -> float:
    return -20 * np.log10(RELATIVE[dtype])


def _signal(kind: str, n: int, rate: int, channels: int, rng) -> np.ndarray:
    if kind == "noise":
        return rng.standard_normal((n, channels))
    if kind == "music":
        return music_like(n, rate, channels, seed=3)
    if kind == "impulse":
        x = np.zeros((n, channels))
        x[n // 3] = 1.0
        x[-1] = -0.5
        return x
    t = np.arange(n) / rate
    sweep = np.sin(2 * np.pi * (20 * t + (rate / 4 - 20) / (2 * t[-1] + 1e-9) * t**2))
    return np.repeat(sweep[:, None], channels, axis=1) * np.linspace(1, 0.5, channels)


@pytest.mark.parametrize("kind", ["noise", "music", "impulse", "sweep"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("n", [1, 777, 23457])
def test_round_trip_float64(kind, channels, n, rng):
    x = _signal(kind, n, 22050, channels, rng)
    representation = msfreq.encode(x, 22050, dtype="complex128")
    y = msfreq.decode(representation)
    assert y.shape == x.shape
    assert y.dtype == np.float64
    if np.any(x):
        assert snr_db(x, y) >= required_snr(np.complex128) >= 250


@pytest.mark.parametrize("bins", [12, 24, 48, 96])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_round_trip_bins_and_precision(bins, dtype, rng):
    x = music_like(40001, 44100, 2, seed=bins)
    y = msfreq.decode(msfreq.encode(x, 44100, bins_per_octave=bins, dtype=dtype))
    assert snr_db(x, y) >= required_snr(dtype)


@pytest.mark.parametrize("rate", [8000, 11025, 44100, 48000, 96000])
def test_round_trip_sample_rates(rate, rng):
    x = rng.standard_normal((rate // 3 + 5, 1))
    y = msfreq.decode(msfreq.encode(x, rate, dtype="complex128"))
    assert snr_db(x, y) >= 250


def test_signal_shorter_than_longest_window(rng):
    # The lowest octave's atoms last seconds; 300 samples is far shorter.
    x = rng.standard_normal(300)
    representation = msfreq.encode(x, 44100, dtype="complex128")
    assert representation.length == representation.grid.hop_unit
    assert snr_db(x[:, None], msfreq.decode(representation)) >= 250


@pytest.mark.parametrize("bins", [12, 48])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_window_squares_sum_to_one(bins, dtype):
    grid = make_grid(22050, TransformParams(bins_per_octave=bins))
    plan = Plan(grid, 2 * grid.hop_unit, np.result_type(dtype, np.complex64))
    power = plan.window_power()
    np.testing.assert_allclose(power, 1.0, rtol=0, atol=np.finfo(dtype).eps * 32)


def test_smoothstep_and_window_shape():
    t = np.linspace(0, 1, 101)
    np.testing.assert_allclose(smoothstep(t) + smoothstep(1 - t), 1.0, atol=1e-12)
    assert smoothstep(np.array([0.0]))[0] == 0 and smoothstep(np.array([1.0]))[0] == 1
    u = np.linspace(0, 1, 101)
    np.testing.assert_allclose(bin_window(u) ** 2 + bin_window(u - 1) ** 2, 1.0, atol=1e-12)
    assert bin_window(np.array([1.0, -1.0, 1.5])).tolist() == [0.0, 0.0, 0.0]


def test_frame_bounds_hold_and_are_attained(rng):
    grid = make_grid(8000, TransformParams(bins_per_octave=12))
    length = 4 * grid.hop_unit
    plan = get_plan(grid, length, np.complex128)
    lower, upper = plan.frame_bounds()
    assert 0 < lower <= upper
    lam = plan.frame_operator()
    for _ in range(5):
        x = rng.standard_normal((1, length))
        energy = sum(np.sum(np.abs(c) ** 2) for c in analyze(x, plan))
        ratio = energy / np.sum(x**2)
        assert lower * (1 - 1e-9) <= ratio <= upper * (1 + 1e-9)
    # A tone on the FFT grid has exactly the ratio the diagonal gives for its frequency.
    for m in (0, 3, length // 7, length // 2 - 1):
        t = np.arange(length)
        x = np.cos(2 * np.pi * m * t / length + 0.3)[None, :]
        energy = sum(np.sum(np.abs(c) ** 2) for c in analyze(x, plan))
        assert energy / np.sum(x**2) == pytest.approx(lam[m], rel=1e-9)


def _stacked_profile(x: np.ndarray, rate: int, bins: int) -> np.ndarray:
    representation = msfreq.encode(x, rate, bins_per_octave=bins, dtype="complex128")
    return representation.stack(pool="mean").mean(axis=(0, 2))


@pytest.mark.parametrize("shift", [1, 5, 17, 30])
def test_pitch_shift_is_translation(shift):
    rate, bins = 22050, 24
    n = 3 * make_grid(rate, TransformParams(bins_per_octave=bins)).hop_unit
    t = np.arange(n) / rate
    fade = np.minimum(1, np.minimum(t, t[-1] - t) / 0.2)

    def tone(f0: float) -> np.ndarray:
        return fade * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 7))

    f0 = 220.0
    base = _stacked_profile(tone(f0), rate, bins)
    moved = _stacked_profile(tone(f0 * 2 ** (shift / bins)), rate, bins)
    # compare away from the edges of the stacked axis
    a, b = base[bins : -bins - shift], moved[bins + shift : -bins]
    correlation = np.corrcoef(a, b)[0, 1]
    assert correlation >= 0.99


def test_high_octaves_keep_time_detail():
    rate = 44100
    n = 4 * make_grid(rate, TransformParams()).hop_unit
    where = n // 2 + 123
    x = np.zeros(n)
    x[where] = 1.0
    representation = msfreq.encode(x, rate, dtype="complex128")
    top = representation.grid.octaves[-1]
    energy = np.sum(np.abs(representation[top.name][0]) ** 2, axis=0)
    times = representation.times(top.name)
    peak = times[np.argmax(energy)]
    assert abs(peak - where / rate) <= top.hop / rate
    # 90 % of the top octave's energy lies within a few milliseconds of the click
    order = np.argsort(energy)[::-1]
    kept = order[: np.searchsorted(np.cumsum(energy[order]), 0.9 * energy.sum()) + 1]
    spread = (times[kept].max() - times[kept].min()) * 1000
    assert spread < 10.0  # measured: 6.1 ms at 44.1 kHz, B = 48
    lowest = representation.grid.octaves[0]
    assert lowest.hop / rate > 0.1  # hundreds of milliseconds


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_time_shift_moves_frames(dtype, rng):
    grid = make_grid(8000, TransformParams(bins_per_octave=12))
    length = 6 * grid.hop_unit
    plan = get_plan(grid, length, dtype)
    x = rng.standard_normal((1, length))
    shifted = np.roll(x, grid.hop_unit, axis=1)
    tolerance = np.finfo(dtype).eps * 64
    for layout, a, b in zip(plan.layouts, analyze(x, plan), analyze(shifted, plan), strict=True):
        frames = grid.hop_unit // layout.band.hop
        scale = np.abs(a).max()
        np.testing.assert_allclose(np.roll(a, frames, axis=-1), b, rtol=0, atol=tolerance * scale)


def test_linearity(rng):
    x, y = rng.standard_normal((2, 5000))
    a = msfreq.encode(x, 8000, dtype="complex128")
    b = msfreq.encode(y, 8000, dtype="complex128")
    c = msfreq.encode(2 * x - 3 * y, 8000, dtype="complex128")
    for name in a.names:
        expected = 2 * a[name] - 3 * b[name]
        np.testing.assert_allclose(c[name], expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_sinusoid_magnitude_is_amplitude():
    rate = 44100
    grid = make_grid(rate, TransformParams())
    band = grid.octaves[5]
    frequency = grid.frequencies(band)[10]
    n = 2 * grid.hop_unit
    length_seconds = n / rate
    # choose a frequency on the FFT grid as close to the bin centre as possible
    frequency = round(frequency * length_seconds) / length_seconds
    x = 0.5 * np.cos(2 * np.pi * frequency * np.arange(n) / rate)
    magnitude = np.abs(msfreq.encode(x, rate, dtype="complex128")[band.name][0, 10])
    np.testing.assert_allclose(magnitude, 0.5, rtol=2e-3)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros(0), "must not be empty"),
        (np.zeros((0, 2)), "must not be empty"),
        (np.array([0.0, np.nan, 1.0]), "must be finite; frame 1"),
        (np.array([0.0, np.inf]), "must be finite"),
        (np.zeros((2, 5000)), "transpose a \\(channels, frames\\) array"),
        (np.array(["a", "b"]), "real numeric array"),
        (np.array([1 + 1j, 2]), "real numeric array"),
        (np.zeros((4, 2, 2)), "must have shape"),
    ],
)
def test_bad_samples(samples, message):
    with pytest.raises(ParameterError, match=message):
        msfreq.encode(samples, 44100)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int32, np.uint8])
def test_samples_of_any_real_dtype(dtype):
    """Floats are taken as they are (no copy, not changed), other dtypes as float64; every
    dtype gives the coefficients of the same values."""
    from msfreq.transform import check_samples

    values = np.random.default_rng(3).integers(0, 200, size=(9000, 2)).astype(dtype)
    kept = values.copy()
    checked = check_samples(values)
    assert np.shares_memory(checked, values) == (values.dtype.kind == "f")
    assert checked.dtype == (values.dtype if values.dtype.kind == "f" else np.float64)
    got = msfreq.encode(values, 8000, bins_per_octave=12)
    expected = msfreq.encode(values.astype(np.float64), 8000, bins_per_octave=12)
    np.testing.assert_array_equal(values, kept)
    for name in expected.names:
        np.testing.assert_array_equal(got[name], expected[name])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bins_per_octave": 0}, "bins_per_octave"),
        ({"bins_per_octave": 100000}, "bins_per_octave"),
        ({"dtype": "float32"}, "dtype must be one of"),
        ({"block_seconds": 0}, "block_seconds must be > 0"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        msfreq.encode(np.zeros(100), 44100, **kwargs)


def test_sample_rate_too_low():
    with pytest.raises(ParameterError, match="sample_rate 30 Hz is too low"):
        msfreq.encode(np.zeros(100), 30)


def test_integer_input_is_taken_as_is(rng):
    x = rng.integers(-1000, 1000, size=(5000, 2), dtype=np.int16)
    y = msfreq.decode(msfreq.encode(x, 8000, dtype="complex128"))
    np.testing.assert_allclose(y, x, atol=1e-8)


def test_decode_needs_complete(rng):
    representation = msfreq.encode(rng.standard_normal(100), 8000)
    with pytest.raises(ParameterError, match="needs a Representation"):
        msfreq.decode(np.zeros(3))
    partial = msfreq.Representation(
        {"octave_00": representation["octave_00"]},
        grid=representation.grid,
        n_samples=representation.n_samples,
    )
    with pytest.raises(ParameterError, match="only a complete representation"):
        msfreq.decode(partial)


def test_transform_units_are_fast_lengths():
    grid = make_grid(44100, TransformParams())
    assert transform_units(1, grid) == 1
    assert transform_units(grid.hop_unit * 181, grid) == 189  # 181 is prime; 189 = 3**3 * 7
    with pytest.raises(ParameterError):
        synthesize([], get_plan(grid, grid.hop_unit, np.complex64))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 30000),
    channels=st.integers(1, 3),
    bins=st.sampled_from([3, 12, 17, 24, 48]),
    rate=st.sampled_from([8000, 16000, 22050]),
    dtype=st.sampled_from([np.complex64, np.complex128]),
    seed=st.integers(0, 2**32 - 1),
    span=st.sampled_from([1, 1, 2, 3]),
)
def test_round_trip_property(n, channels, bins, rate, dtype, seed, span):
    x = np.random.default_rng(seed).standard_normal((n, channels))
    span = min(span, bins)
    y = msfreq.decode(msfreq.encode(x, rate, bins_per_octave=bins, dtype=dtype, span=span))
    assert y.shape == x.shape
    assert snr_db(x, y) >= required_snr(dtype)


@pytest.mark.parametrize("band_index", [0, 1, 5, 10, 11])
def test_plan_weights_follow_the_window_formula(band_index):
    grid = make_grid(44100, TransformParams())
    plan = Plan(grid, 2 * grid.hop_unit, np.complex128)
    layout = plan.layouts[band_index]
    band = layout.band
    params = grid.params
    for row in range(0, band.n_bins, 7):
        index = layout.starts[row] + np.arange(layout.widths[row])
        with np.errstate(divide="ignore"):
            u = params.bins_per_octave * np.log2(index * grid.sample_rate / plan.length / params.tuning)
        k = band.bins[row]
        if not band.is_residual:
            expected = bin_window(u - k)
        elif band.is_low_residual:
            expected = np.where(u <= k - 1, 1.0, bin_window(u - (k - 1)))
        else:
            expected = np.where(u >= k + 1, 1.0, bin_window(u - (k + 1)))
        np.testing.assert_allclose(layout.weights[row, : layout.widths[row]], expected, atol=1e-12)
        assert np.all(layout.weights[row, layout.widths[row] :] == 0)


@pytest.mark.parametrize(("rate", "tuning", "units"), [(44100, 440.0, 3), (8000, 415.3, 5),
                                                   (96000, 442.0, 2), (11025, 440.0, 1)])
def test_planning_takes_each_octave_from_the_one_above(rate, tuning, units):
    # Only the top half of the frequencies is computed; each one below is its double's
    # position minus one octave, exactly, with its double's window values.
    grid = make_grid(rate, TransformParams(tuning=tuning))
    length = units * grid.hop_unit
    pairs = _pairs(grid, length, np.dtype(np.float64))
    m = np.arange(1, length // 2 + 1)
    direct = grid.params.bins_per_octave * np.log2(m * rate / length / tuning)
    np.testing.assert_allclose(pairs.position[1:] - pairs.shift, direct, rtol=0, atol=1e-9)
    assert np.all(np.diff(pairs.position[1:]) > 0) and pairs.position[1] >= 0
    low = np.arange(1, (m.size + 2) // 2)
    assert np.array_equal(pairs.position[low], pairs.position[2 * low] - grid.params.bins_per_octave)
    assert np.array_equal(pairs.lower[low], pairs.lower[2 * low])
    assert np.array_equal(pairs.upper[low], pairs.upper[2 * low])
    np.testing.assert_allclose(pairs.lower**2 + pairs.upper**2, 1.0, rtol=0, atol=1e-15)


def test_blocks_agree_with_the_whole_signal_transform():
    rate, bins = 8000, 12
    x = music_like(50 * rate + 77, rate, 2, seed=11)
    whole = msfreq.encode(x, rate, bins_per_octave=bins, dtype="complex128", block_seconds=1e9)
    blocks = msfreq.encode(x, rate, bins_per_octave=bins, dtype="complex128", block_seconds=2.0)
    schedule = msfreq.transform.block_schedule(whole.grid, whole.n_samples, block_seconds=2.0)
    assert schedule is not None and len(schedule.blocks) >= 3
    for name in whole.names:
        # measured here: 128 dB in the (nearly empty) lowest octave, far more elsewhere
        assert snr_db(whole[name].view(float), blocks[name].view(float)) >= 120
    y = msfreq.decode(blocks, block_seconds=2.0)
    assert snr_db(x, y) >= 150


@pytest.mark.parametrize("oversampling", [1, 2, 3, 4, 8])
@pytest.mark.parametrize(("dtype", "threshold"), [("complex64", 125.0), ("complex128", 250.0)])
def test_oversampled_round_trips_are_exact(oversampling, dtype, threshold):
    x = np.random.default_rng(oversampling).standard_normal((3 * 8000 + 11, 2))
    rep = msfreq.encode(x, 8000, oversampling=oversampling, dtype=dtype)
    plain = msfreq.encode(x, 8000, dtype=dtype)
    for band, base in zip(rep.grid.octaves, plain.grid.octaves, strict=True):
        assert base.hop / band.hop >= oversampling * 0.8  # about N times the frames
        assert band.bins == base.bins
    hops = [band.hop for band in rep.grid.octaves]
    assert all(low == 2 * high for low, high in zip(hops[:-1], hops[1:], strict=True))  # doubling
    assert snr_db(x, msfreq.decode(rep)) >= threshold
    assert rep.stack().shape[1] == rep.grid.n_octaves * 48


def test_oversampling_is_recorded(tmp_path):
    rep = msfreq.encode(np.random.default_rng(0).standard_normal(8000), 8000, oversampling=4)
    msfreq.save(rep, tmp_path / "o.h5")
    header = msfreq.read_header(tmp_path / "o.h5")
    assert header.grid.params.oversampling == 4 and header.grid.bands == rep.grid.bands


@pytest.mark.parametrize("value", [0, 65, 1.5, True, "2"])
def test_bad_oversampling(value):
    with pytest.raises(ParameterError, match="oversampling must be an integer"):
        msfreq.TransformParams(oversampling=value)


@pytest.mark.parametrize(("span", "bins"), [(2, 48), (3, 48), (5, 12)])
@pytest.mark.parametrize(("dtype", "threshold"), [("complex64", 125.0), ("complex128", 250.0)])
def test_wide_windows_round_trip_exactly(span, bins, dtype, threshold):
    x = np.random.default_rng(span).standard_normal((3 * 8000 + 11, 2))
    rep = msfreq.encode(x, 8000, bins_per_octave=bins, span=span, dtype=dtype)
    plain = msfreq.encode(x, 8000, bins_per_octave=bins, dtype=dtype)
    for band, base in zip(rep.grid.octaves, plain.grid.octaves, strict=True):
        assert base.hop / band.hop >= span * 0.8  # about span times the frames
        assert band.bins == base.bins
    assert snr_db(x, msfreq.decode(rep)) >= threshold
    plan = get_plan(rep.grid, rep.length, np.dtype(dtype))
    eps = np.finfo(np.dtype(dtype)).eps
    np.testing.assert_allclose(plan.window_power(), 1.0, rtol=0, atol=eps * 32)
    # every frequency inside the octaves lies in 2 * span windows (2 * span - 1 on a grid point)
    n_freq = rep.length // 2 + 1
    count = np.zeros(n_freq, dtype=int)
    for layout in plan.layouts:
        for start, width, row in zip(layout.starts, layout.widths, layout.weights, strict=True):
            count[start : start + width] += row[:width] > 0
    first, last = rep.grid.octaves[0].bins[0], rep.grid.octaves[-1].bins[-1]
    hz = np.arange(n_freq) * 8000 / rep.length
    inside = (hz > float(msfreq.scales.bin_frequency(first + span, rep.grid.params))) & (
        hz < float(msfreq.scales.bin_frequency(last - span, rep.grid.params)))
    assert inside.any() and set(np.unique(count[inside])) <= {2 * span - 1, 2 * span}
    assert (count[inside] == 2 * span).mean() > 0.9


def test_span_is_recorded(tmp_path):
    x = np.random.default_rng(0).standard_normal(8000)
    msfreq.save(msfreq.encode(x, 8000, span=3), tmp_path / "s.h5")
    msfreq.save(msfreq.encode(x, 8000), tmp_path / "p.h5", compression="zstd")
    header = msfreq.read_header(tmp_path / "s.h5")
    assert header.grid.params.span == 3 and header.format_version == 3
    assert msfreq.read_header(tmp_path / "p.h5").format_version == 2  # span 1: as before
    assert snr_db(x, msfreq.decode(msfreq.load(tmp_path / "s.h5"))[:, 0]) >= 125


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"span": 0}, "span must be an integer between 1 and 8"),
    ({"span": 9}, "span must be an integer between 1 and 8"),
    ({"span": 1.5}, "span must be an integer"),
    ({"span": True}, "span must be an integer"),
    ({"span": 5, "bins_per_octave": 4}, "between 1 and 4"),
])
def test_bad_span(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        msfreq.TransformParams(**kwargs)


@pytest.mark.parametrize(("rate", "bins", "lower_half"), [(8000, 12, True), (8000, 24, False)])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_real_rows_both_ways_are_exact(rate, bins, lower_half, dtype, rng):
    """Synthesis takes a real row's real FFT where its windows read only the lower half of its
    spectrum, else the full FFT; analysis inverts real rows with a real inverse FFT: both
    ways give the exact inverse (and these grids keep exercising both)."""
    grid = make_grid(rate, TransformParams(bins_per_octave=bins))
    plan = get_plan(grid, grid.hop_unit * 6, dtype)
    high = plan.layouts[-1]
    assert bool(np.all(high.starts % high.frames + high.widths - 1 <= high.frames // 2)) == lower_half
    x = rng.standard_normal((2, plan.length))
    y = synthesize(analyze(x, plan), plan)
    assert snr_db(x.T, y.T) >= required_snr(dtype)


def test_block_parts_come_one_channel_at_a_time_and_match_the_whole_blocks():
    rate, bins = 8000, 12
    x = music_like(30 * rate + 5, rate, 3, seed=2)
    grid = make_grid(rate, TransformParams(bins_per_octave=bins))
    schedule = msfreq.transform.block_schedule(grid, x.shape[0], 3, block_seconds=2.0)
    assert schedule is not None and len(schedule.blocks) >= 3
    whole = msfreq.encode(x, rate, bins_per_octave=bins, block_seconds=2.0)
    seen = []
    for first, stop, channels, arrays in msfreq.transform.analyze_blocks(
        lambda a, b: x[a:b], x.shape[0], 3, schedule, np.dtype("complex64")
    ):
        seen.append((first, stop, channels))
        for band, values in zip(grid.bands, arrays, strict=True):
            per_unit = grid.hop_unit // band.hop
            expected = whole[band.name][channels, :, first * per_unit : stop * per_unit]
            assert np.array_equal(values, expected)
    assert seen == [(first, stop, slice(c, c + 1)) for first, stop in schedule.blocks for c in range(3)]


@pytest.mark.parametrize("direction", ["analysis", "synthesis"])
def test_a_block_never_holds_the_coefficients_of_its_margins(direction):
    """The span of a block (the block and 66 s of margins) is transformed holding its signal,
    half spectrum and FFT temporaries, about 12 bytes per sample in single precision; holding
    every band's coefficients of the span, as 0.5.0 did, takes 23 (measured)."""
    import tracemalloc

    grid = make_grid(44100, TransformParams())
    n_samples = 200 * 44100
    schedule = msfreq.transform.block_schedule(grid, n_samples, 1, block_seconds=30.0)
    dtype = np.dtype("complex64")
    plan = schedule.plan(dtype)  # built (and cached) before measuring
    span = plan.length
    tracemalloc.start()
    try:
        if direction == "analysis":
            parts = msfreq.transform.analyze_blocks(lambda a, b: np.zeros((b - a, 1)), n_samples, 1,
                                                    schedule, dtype)
            held = sum(values.nbytes for values in next(parts)[3])
        else:
            def read(index, a, b, channel):
                band = grid.bands[index]
                return np.zeros((1, band.n_bins, b - a), dtype=band.coefficient_dtype(dtype))

            held = next(msfreq.transform.synthesize_blocks(read, n_samples, 1, schedule, dtype))[1].nbytes
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (peak - held) / span < 16


def test_schedules_for_sources_whose_margins_exceed_the_budget():
    """24-bit 192 kHz sources (double precision): the margins alone take more than the block
    budget; blocks stay at least MIN_BLOCK_UNITS long where the block itself fits (0.5.0 cut them to 2 units, 66 of every
    68 samples transformed being margins), and a file shorter than a block and its margins,
    too large for all channels at once, is transformed whole one channel at a time."""
    grid = make_grid(192000, TransformParams())
    budget = msfreq.transform.BLOCK_BYTES
    long = msfreq.transform.block_schedule(grid, 600 * 192000, 2, dtype="complex128", memory=budget)
    assert long.block_units >= msfreq.transform.MIN_BLOCK_UNITS
    assert long.margin_units == msfreq.transform.MARGIN_UNITS
    # ... but the floor never makes a block's own part (here 64 channels' decoded samples)
    # larger than the budget: it gives way to more, shorter blocks
    many = msfreq.transform.block_schedule(grid, 600 * 192000, 64, dtype="complex128", memory=budget)
    kept = 64 * msfreq.transform._SAMPLE_BYTES * 2
    assert grid.hop_unit * kept <= budget < 2 * grid.hop_unit * kept  # room for one unit
    # one unit asked for; the span's FFT-friendly length (next_fast_len(1 + 64) = 66) adds one
    assert many.block_units == 2
    short = msfreq.transform.block_schedule(grid, 50 * 192000, 8, dtype="complex128", memory=budget)
    assert (short.margin_units, short.blocks) == (0, [(0, short.units)])
    assert short.span_units == transform_units(50 * 192000, grid) and not short.shared_reads
    # three minutes of 44.1 kHz stereo: whole, a channel at a time, read once for both
    song = msfreq.transform.block_schedule(make_grid(44100, TransformParams()), 180 * 44100, 2,
                                           memory=budget)
    assert (song.margin_units, len(song.blocks), song.shared_reads) == (0, 1, True)
    # small enough for all channels at once: whole, as before
    assert msfreq.transform.block_schedule(grid, 5 * 192000, 2, dtype="complex128", memory=budget) is None


def test_a_signal_without_margins_is_the_whole_transform_channel_by_channel():
    rate = 8000
    x = music_like(6 * rate + 9, rate, 2, seed=4)
    grid = make_grid(rate, TransformParams(bins_per_octave=12))
    units = transform_units(x.shape[0], grid)
    schedule = msfreq.transform.BlockSchedule(grid, units, units, 0)
    whole = msfreq.encode(x, rate, bins_per_octave=12, dtype="complex128")
    seen = []
    for first, stop, channels, arrays in msfreq.transform.analyze_blocks(
        lambda a, b: x[a:b], x.shape[0], 2, schedule, np.dtype("complex128")
    ):
        seen.append((first, stop, channels))
        for band, values in zip(grid.bands, arrays, strict=True):
            assert np.array_equal(values, whole[band.name][channels])
    assert seen == [(0, units, slice(0, 1)), (0, units, slice(1, 2))]
    read = lambda index, a, b, channel: whole[grid.bands[index].name][channel : channel + 1, :, a:b]  # noqa: E731
    (start, y), = msfreq.transform.synthesize_blocks(read, x.shape[0], 2, schedule, np.dtype("complex128"))
    assert start == 0 and np.array_equal(y.T, msfreq.decode(whole))
