"""Loading for learning: stack, crops, seeding, worker processes, errors."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from helpers import music_like

import msfreq
from msfreq.errors import FormatError, ParameterError
from msfreq.params import TransformParams
from msfreq.scales import make_grid

RATE = 8000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    lengths = [3.0, 20.0, 7.5, 0.4]
    for index, seconds in enumerate(lengths):
        x = music_like(int(seconds * RATE), RATE, 2, seed=index) * 0.5
        (folder / f"sub{index % 2}").mkdir(exist_ok=True)
        msfreq.save(msfreq.encode(x, RATE, bins_per_octave=12), folder / f"sub{index % 2}" / f"t{index}.h5")
    return folder


def test_stack_of_pitch_shifted_tone_is_translated():
    rate, bins = 22050, 24
    grid = make_grid(rate, TransformParams(bins_per_octave=bins))
    n = 2 * grid.hop_unit
    t = np.arange(n) / rate
    shift = 7
    f0 = 300.0
    # frequencies on the FFT grid of the periodic transform, so both tones are stationary
    def tone(f: float) -> np.ndarray:
        return sum(np.cos(2 * np.pi * round(f * h * n / rate) * t * rate / n) / h for h in range(1, 5))

    a = msfreq.encode(tone(f0), rate, bins_per_octave=bins, dtype="complex128").stack()
    b = msfreq.encode(tone(f0 * 2 ** (shift / bins)), rate, bins_per_octave=bins, dtype="complex128").stack()
    profile_a, profile_b = a.mean(axis=2)[0], b.mean(axis=2)[0]
    peak_rows_a = np.sort(np.argsort(profile_a)[-4:])
    peak_rows_b = np.sort(np.argsort(profile_b)[-4:])
    np.testing.assert_array_equal(peak_rows_b, peak_rows_a + shift)
    inner = slice(bins, -bins - shift)
    moved = slice(bins + shift, -bins)
    assert np.corrcoef(profile_a[inner], profile_b[moved])[0, 1] > 0.99


@pytest.mark.parametrize("pool", ["mean", "max", "rms"])
@pytest.mark.parametrize("coarse", [False, True])
def test_stack_shapes(pool, coarse, rng):
    representation = msfreq.encode(rng.standard_normal(30000), RATE, bins_per_octave=12)
    octaves = representation.grid.octaves
    hop = octaves[0].hop if coarse else octaves[-1].hop
    image = representation.stack(hop=hop, pool=pool, db=True)
    assert image.shape == (1, 12 * len(octaves), representation.length // hop)
    assert representation.stack_frequencies().shape == (12 * len(octaves),)
    assert np.all(np.diff(representation.stack_frequencies()) > 0)
    with pytest.raises(ParameterError, match="hop must be the hop of an octave"):
        representation.stack(hop=hop + 1)
    with pytest.raises(ParameterError, match="pool must be one of"):
        representation.stack(pool="median")


def test_magnitude_db(rng):
    representation = msfreq.encode(rng.standard_normal(3000), RATE)
    name = representation.names[3]
    np.testing.assert_allclose(representation.magnitude(name, db=True),
                               20 * np.log10(np.maximum(np.abs(representation[name]), 1e-8)), rtol=1e-6)


def test_crops_are_aligned_and_equal_to_full_loads(corpus):
    dataset = msfreq.Dataset(corpus, crop_seconds=2.0, seed=3, with_info=True)
    assert len(dataset) == 4
    for index in range(len(dataset)):
        item, info = dataset[index]
        start, stop = dataset.crop(index)
        full = msfreq.load(info["path"])
        shapes = set()
        for band in dataset.bands:
            frames = item[band.name].shape[2]
            shapes.add(frames * band.hop)
            first = start // band.hop
            expected = full[band.name][:, :, first : first + frames]
            np.testing.assert_array_equal(item[band.name][:, :, : expected.shape[2]], expected)
        assert shapes == {stop - start}


def test_same_seed_same_crops_other_seed_other_crops(corpus):
    a = msfreq.Dataset(corpus, crop_seconds=1.0, seed=11)
    b = msfreq.Dataset(corpus, crop_seconds=1.0, seed=11)
    c = msfreq.Dataset(corpus, crop_seconds=1.0, seed=12)
    crops_a = [a.crop(i) for i in range(len(a))]
    assert crops_a == [b.crop(i) for i in range(len(b))]
    assert crops_a != [c.crop(i) for i in range(len(c))]
    a.set_epoch(1)
    assert crops_a != [a.crop(i) for i in range(len(a))]
    np.testing.assert_array_equal(b[1]["octave_04"], msfreq.Dataset(corpus, crop_seconds=1.0, seed=11)[1]["octave_04"])


def test_centred_crop_and_short_files_padded(corpus):
    dataset = msfreq.Dataset(corpus, crop_seconds=3.0, random_crop=False, stacked=True)
    shapes = {dataset[i].shape for i in range(len(dataset))}
    assert len(shapes) == 1  # the 0.4 s file is padded to the crop
    long_index = [f.name for f in dataset.files].index("t1.h5")
    start, stop = dataset.crop(long_index)
    length = msfreq.read_header(dataset.files[long_index]).length
    assert abs((start + stop) / 2 - length / 2) <= dataset.step


def _read(args):
    dataset, index = args
    return dataset[index]


def test_works_in_worker_processes(corpus):
    dataset = msfreq.Dataset(corpus, crop_seconds=1.5, seed=5, octaves=[2, 3, "residual_high"])
    dataset[0]  # open a file in the parent first: children must not reuse the handle
    serial = [dataset[i] for i in range(len(dataset))]
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        parallel = pool.map(_read, [(dataset, i) for i in range(len(dataset))] * 2)
    for i, item in enumerate(parallel):
        for name, values in serial[i % len(dataset)].items():
            np.testing.assert_array_equal(item[name], values)


def test_channels_mix_is_the_mono_mixdown(corpus, tmp_path):
    dataset = msfreq.Dataset(corpus / "sub0" / "t0.h5", channels="mix", random_crop=False)
    item = dataset[0]
    full = msfreq.load(corpus / "sub0" / "t0.h5")
    np.testing.assert_allclose(item["octave_03"][0], full["octave_03"].mean(axis=0), rtol=1e-6)
    with pytest.raises(ParameterError, match="channels must be"):
        msfreq.Dataset(corpus, channels="left")
    with pytest.raises(ParameterError, match="channels must be in 0..1"):
        msfreq.Dataset(corpus, channels=[3])


def test_transform_is_applied(corpus):
    dataset = msfreq.Dataset(corpus, crop_seconds=1.0, stacked=True, transform=lambda x: x.sum())
    assert np.isscalar(dataset[0]) or dataset[0].shape == ()


def test_errors(tmp_path, corpus):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="no msfreq files"):
        msfreq.Dataset(tmp_path / "empty")
    with pytest.raises(ParameterError, match="no such file or folder"):
        msfreq.Dataset(tmp_path / "missing")
    (tmp_path / "bad.h5").write_bytes(b"junk")
    with pytest.raises(FormatError, match="bad.h5"):
        msfreq.Dataset(tmp_path / "bad.h5")
    other = tmp_path / "other.h5"
    msfreq.save(msfreq.encode(np.ones(100), 16000, bins_per_octave=12), other)
    with pytest.raises(ParameterError, match="differs from"):
        msfreq.Dataset([corpus, other])
    with pytest.raises(ParameterError, match="crop_seconds must be > 0"):
        msfreq.Dataset(corpus, crop_seconds=0)
    with pytest.raises(IndexError):
        msfreq.Dataset(corpus)[10]


def test_octave_accessor(rng):
    representation = msfreq.encode(rng.standard_normal(3000), RATE)
    np.testing.assert_array_equal(representation.octave(2), representation["octave_02"])
    with pytest.raises(KeyError, match="no band 'octave_42'"):
        representation.octave(42)


def test_items_have_one_dtype_across_precisions(tmp_path):
    x = np.random.default_rng(0).standard_normal((16000, 1))
    msfreq.save(msfreq.encode(x, 8000, bins_per_octave=12), tmp_path / "single.h5")
    msfreq.save(msfreq.encode(x, 8000, bins_per_octave=12, dtype="complex128"), tmp_path / "double.h5")
    items = msfreq.Dataset(tmp_path, crop_seconds=1.0, seed=0)
    assert {items[i]["octave_03"].dtype for i in range(2)} == {np.dtype(np.complex64)}
    assert {items[i]["residual_low"].dtype for i in range(2)} == {np.dtype(np.float32)}
    kept = msfreq.Dataset(tmp_path, crop_seconds=1.0, seed=0, dtype=None)
    assert {kept[i]["octave_03"].dtype for i in range(2)} == {np.dtype(np.complex64), np.dtype(np.complex128)}
