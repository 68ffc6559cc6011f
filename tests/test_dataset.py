"""Loading for learning: stack, crops, seeding, worker processes, errors."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from helpers import music_like, pcm16, write_audio

import msfreq
from msfreq.convert import EncodeOptions, encode_file
from msfreq.errors import FormatError, ParameterError
from msfreq.params import TransformParams
from msfreq.scales import make_grid
from msfreq.transform import transform_units

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


# --- raw audio crops ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def audio_corpus(tmp_path_factory):
    """Two 16-bit files and the msfreq encoding of a third; the sources, as read."""
    folder = tmp_path_factory.mktemp("audio")
    sources = {}
    for name, seconds in (("long.wav", 90.0), ("short.flac", 0.3), ("encoded.wav", 80.0)):
        samples = pcm16(music_like(int(seconds * RATE), RATE, 2, seed=len(name)) * 0.5)
        write_audio(folder / name, samples, RATE)
        sources[name] = samples
    encode_file(folder / "encoded.wav", folder / "encoded.wav.h5",
                EncodeOptions(params=TransformParams(bins_per_octave=12)))
    (folder / "encoded.wav").unlink()
    return folder, sources


def _source_of(path, sources):
    return sources[path.name.removesuffix(".h5")]


@pytest.mark.parametrize("random_crop", [True, False])
def test_audio_crops_are_the_samples_of_the_file(audio_corpus, random_crop):
    folder, sources = audio_corpus
    dataset = msfreq.AudioDataset(folder, crop_seconds=2.0, bins_per_octave=12, seed=3,
                                  random_crop=random_crop)
    assert len(dataset) == 3
    grid = dataset.grid
    # whole hop units, and a length the transform takes without padding
    assert dataset.crop_samples % grid.hop_unit == 0
    assert transform_units(dataset.crop_samples, grid) * grid.hop_unit == dataset.crop_samples
    for index, path in enumerate(dataset.files):
        start, stop = dataset.crop(index)
        assert start % grid.hop_unit == 0
        item = dataset[index]
        assert item.shape == (2, dataset.crop_samples) and item.dtype == np.float32
        source = _source_of(path, sources)
        expected = np.zeros((2, stop - start))
        kept = min(stop, len(source)) - start
        expected[:, :kept] = source[start : start + kept].T
        # audio files: the samples as read; msfreq files that decode exactly: the same samples
        np.testing.assert_array_equal(item, expected.astype(np.float32), err_msg=path.name)


def test_audio_crops_follow_seed_epoch_and_channels(audio_corpus):
    folder, _ = audio_corpus
    one = msfreq.AudioDataset(folder, crop_seconds=1.0, bins_per_octave=12, seed=1)
    two = msfreq.AudioDataset(folder, crop_seconds=1.0, bins_per_octave=12, seed=1)
    index = [path.name for path in one.files].index("long.wav")
    np.testing.assert_array_equal(one[index], two[index])
    starts = set()
    for epoch in range(6):
        one.set_epoch(epoch)
        starts.add(one.crop(index)[0])
    assert len(starts) > 1
    mixed = msfreq.AudioDataset(folder, crop_seconds=1.0, bins_per_octave=12, seed=1, channels="mix")
    np.testing.assert_allclose(mixed[index], two[index].mean(axis=0, keepdims=True), atol=1e-7)
    right = msfreq.AudioDataset(folder, crop_seconds=1.0, bins_per_octave=12, seed=1, channels=[1])
    np.testing.assert_array_equal(right[index], two[index][1:])
    item, info = msfreq.AudioDataset(folder, crop_seconds=1.0, bins_per_octave=12, seed=1,
                                     with_info=True)[index]
    assert info["path"].endswith("long.wav") and info["stop"] > info["start"]


def test_audio_dataset_refuses_mixed_rates_and_other_grids(audio_corpus, tmp_path):
    folder, sources = audio_corpus
    write_audio(tmp_path / "a.wav", sources["short.flac"], RATE)
    write_audio(tmp_path / "b.wav", sources["short.flac"], 2 * RATE)
    with pytest.raises(ParameterError, match=r"different sample rates \(.*a.wav: 8000 Hz, .*b.wav: 16000 Hz"):
        msfreq.AudioDataset(tmp_path)
    with pytest.raises(ParameterError, match="encoded with .* not the dataset's"):
        msfreq.AudioDataset(folder, bins_per_octave=24)
    with pytest.raises(ParameterError, match="no audio or msfreq files"):
        msfreq.AudioDataset([])
    with pytest.raises(ParameterError, match="crop_seconds must be > 0"):
        msfreq.AudioDataset(folder, bins_per_octave=12, crop_seconds=0)


def test_audio_dataset_names_the_bad_file(tmp_path):
    """A damaged msfreq file or a file that is not audio: one error naming it, at once."""
    (tmp_path / "bad.wav.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    with pytest.raises(FormatError, match="bad.wav.h5"):
        msfreq.AudioDataset(tmp_path)
    (tmp_path / "bad.wav.h5").unlink()
    (tmp_path / "noise.wav").write_bytes(b"RIFF0000WAVEjunk" + bytes(64))
    with pytest.raises(msfreq.AudioError, match="noise.wav"):
        msfreq.AudioDataset(tmp_path)


def test_audio_files_are_checked_once_and_reopened_as_checked(tmp_path, monkeypatch):
    """Raw audio files are probed (MP3 frames counted, Ogg pages walked) once, when the
    dataset is made; reopening a file that more than the open-file limit pushed out does not
    walk it again; an MP3 that libsndfile would read in part is refused, naming it."""
    import soundfile as sf

    from msfreq.errors import AudioError
    folder = tmp_path / "mp3s"
    folder.mkdir()
    rate = 8000
    for index in range(4):
        sf.write(str(folder / f"t{index}.mp3"), music_like(3 * rate, rate, 1, seed=index) * 0.5,
                 rate, subtype="MPEG_LAYER_III")
    walks = []
    walk = msfreq.containers._mpeg_walk
    monkeypatch.setattr(msfreq.containers, "_mpeg_walk", lambda path: walks.append(path) or walk(path))
    monkeypatch.setattr(msfreq.dataset, "_OPEN_FILES", 1)
    dataset = msfreq.AudioDataset(folder, crop_seconds=1.0, bins_per_octave=12, seed=0)
    assert len(walks) == 4
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(4):
            assert dataset[index].shape == (1, dataset.crop_samples)
    assert len(walks) == 4
    data = (folder / "t0.mp3").read_bytes()
    (folder / "t0.mp3").write_bytes(data + data)  # joined: libsndfile reads the first
    with pytest.raises(AudioError, match=r"t0\.mp3: its MPEG frames hold"):
        msfreq.AudioDataset(folder, crop_seconds=1.0, bins_per_octave=12)
