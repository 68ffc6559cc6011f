"""The HDF5 format: round trips, partial loads, atomic writes, corruption, malformed files."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
from helpers import music_like, pcm16, snr_db
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import msfreq
from msfreq.errors import FormatError, ParameterError
from msfreq.store import FORMAT_VERSION, TEMP_SUFFIX, Storage, dataset_name
from msfreq.store.layout import SMALL_DATASET_BYTES

RATE = 8000


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 2-channel file of about 6 s at 8 kHz, with its representation and samples."""
    x = pcm16(music_like(6 * RATE + 123, RATE, 2, seed=7) * 0.5)
    representation = msfreq.encode(x, RATE, bins_per_octave=12)
    path = tmp_path_factory.mktemp("store") / "track.h5"
    msfreq.save(representation, path)
    return path, representation, x


@pytest.mark.parametrize("compression", ["zstd", "lz4", "gzip", "none"])
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_round_trip_through_file(tmp_path, compression, dtype):
    x = pcm16(music_like(3 * RATE + 5, RATE, 2, seed=1) * 0.7)
    representation = msfreq.encode(x, RATE, dtype=dtype)
    path = msfreq.save(representation, tmp_path / "a.h5", compression=compression)
    loaded = msfreq.load(path)
    assert loaded.complete and loaded.dtype == np.dtype(dtype)
    # lz4 is new in version 3; the rest stays readable by version-2 readers
    assert msfreq.read_header(path).format_version == (3 if compression == "lz4" else 2)
    for name in representation.names:
        np.testing.assert_array_equal(loaded[name], representation[name])
    y = msfreq.decode(loaded)
    assert snr_db(x, y) >= (250 if dtype == "complex128" else 125)
    # 16-bit input comes back sample for sample after rounding to 16 bits
    np.testing.assert_array_equal(np.round(y * 32768), np.round(x * 32768))


@pytest.mark.parametrize(("compression", "large"), [("zstd", 3), ("lz4", 2)])
def test_small_datasets_are_zstd_and_large_ones_the_chosen_codec(tmp_path, compression, large):
    # bitshuffle's parameters: (..., compressor, level); compressor 2 is lz4, 3 is zstd
    representation = msfreq.encode(music_like(20 * 44100, 44100, 1, seed=2), 44100)
    path = msfreq.save(representation, tmp_path / "a.h5", compression=compression)
    codecs = {}
    with h5py.File(path, "r") as handle:
        for band in representation.grid.bands:
            dataset = handle[dataset_name(band)]
            parameters = dataset.id.get_create_plist().get_filter_by_id(32008)[1]
            small = dataset.size * dataset.dtype.itemsize <= SMALL_DATASET_BYTES
            codecs[band.name] = (small, parameters[4], parameters[5] if len(parameters) > 5 else None)
    assert {codec for codec in codecs.values() if codec[0]} == {(True, 3, 9)}
    assert {codec[1] for codec in codecs.values() if not codec[0]} == {large}
    loaded = msfreq.load(path)
    for name in representation.names:
        np.testing.assert_array_equal(loaded[name], representation[name])


def test_file_is_self_describing(saved):
    path, representation, _ = saved
    with h5py.File(path, "r") as handle:
        assert handle.attrs["format"] == b"msfreq"
        assert handle.attrs["format_version"] == 3  # lz4 (the default) came with version 3
        assert sorted(handle["octaves"]) == [f"{j:02d}" for j in range(representation.grid.n_octaves)]
        assert sorted(handle["residuals"]) == ["high", "low"]
        octave = handle["octaves/03"]
        band = representation.band("octave_03")
        # what docs/FORMAT.md tells a plain h5py reader to compute
        assert handle.attrs["length"] // octave.shape[2] == band.hop
        bins = handle.attrs["bins_per_octave"]
        k = handle.attrs["first_bin"] + 3 * bins + np.arange(octave.shape[1])
        np.testing.assert_allclose(handle.attrs["tuning"] * 2.0 ** (k / bins),
                                   representation.frequencies("octave_03"))
        assert handle.attrs["fmin"] * 2**3 == pytest.approx(band.lower)
        assert set(octave.attrs) == set()  # float storage: nothing per band
        plist = octave.id.get_create_plist()
        assert [plist.get_filter(i)[0] for i in range(plist.get_nfilters())] == [32008, 3]
        # one channel, every bin, as many frames as fit in 64 KiB
        assert octave.chunks == (1, 12, min(octave.shape[2], 65536 // (12 * 8)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.floats(0, 5.9), length=st.floats(0.01, 6.0))
def test_partial_load_equals_slice_of_full_load(saved, start, length):
    path, representation, _ = saved
    stop = start + length
    part = msfreq.load(path, start=start, stop=stop)
    assert part.offset <= start * RATE
    assert part.offset + part.span >= min(stop * RATE, representation.n_samples) or (
        part.offset + part.span == representation.length
    )
    for name in representation.names:
        hop = representation.band(name).hop
        first = part.offset // hop
        expected = representation[name][:, :, first : first + part[name].shape[2]]
        np.testing.assert_array_equal(part[name], expected)
        np.testing.assert_allclose(part.times(name), representation.times(name)[first : first + part[name].shape[2]])


def test_partial_load_of_some_octaves_and_channels(saved):
    path, representation, _ = saved
    part = msfreq.load(path, start=1.0, stop=2.0, octaves=[5, 6], channels=[1])
    assert part.names == ("octave_05", "octave_06")
    assert part.channels == (1,)
    hop = representation.band("octave_05").hop  # the coarsest selected: alignment step
    assert part.offset % hop == 0
    first = part.offset // hop
    np.testing.assert_array_equal(
        part["octave_05"], representation["octave_05"][1:2, :, first : first + part["octave_05"].shape[2]]
    )
    assert not part.complete
    with pytest.raises(ParameterError, match="only a complete"):
        msfreq.decode(part)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 2.0, "stop": 1.0}, "0 <= start < stop"),
        ({"start": -1.0}, "0 <= start < stop"),
        ({"start": 1e6}, "beyond the end"),
        ({"octaves": [99]}, "octaves must name octaves"),
        ({"octaves": ["bogus"]}, "octaves must name octaves"),
        ({"octaves": []}, "at least one band"),
        ({"channels": [5]}, "channels must be in 0..1"),
    ],
)
def test_bad_selections(saved, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        msfreq.load(saved[0], **kwargs)


def test_killed_mid_write_leaves_no_file(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np
        import msfreq
        from msfreq.store import Storage, Writer
        rep = msfreq.encode(np.random.default_rng(0).standard_normal(5 * 8000), 8000)
        with Writer({str(tmp_path / 'out.h5')!r}, rep.grid, rep.n_samples, 1,
                    storage=Storage(rep.dtype), length=rep.length, compression="zstd") as writer:
            writer.write(0, 1, [rep[name][:, :, : rep.grid.hop_unit // rep.band(name).hop]
                                for name in rep.names])
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == -9
    assert not (tmp_path / "out.h5").exists()
    leftovers = list(tmp_path.glob("*"))
    assert len(leftovers) == 1 and leftovers[0].name.endswith(TEMP_SUFFIX)
    # the next run over the folder removes it (its writer is dead), and only it
    (tmp_path / "keep.txt").write_text("mine")
    assert msfreq.store.remove_stale_partials(tmp_path)[0] == 1
    assert [path.name for path in tmp_path.iterdir()] == ["keep.txt"]


def test_live_writers_partial_files_are_kept(tmp_path, saved):
    _, representation, _ = saved
    with msfreq.store.Writer(tmp_path / "x.h5", representation.grid, representation.n_samples, 2,
                             storage=Storage(np.dtype("complex64")), length=representation.length,
                             compression="zstd") as writer:
        assert msfreq.store.remove_stale_partials(tmp_path) == (0, 0)
        units = representation.length // representation.grid.hop_unit
        writer.write(0, units, [representation[name] for name in representation.names])
    assert [path.name for path in tmp_path.iterdir()] == ["x.h5"]


def test_error_mid_write_cleans_up(tmp_path, saved):
    _, representation, _ = saved

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with msfreq.store.Writer(tmp_path / "x.h5", representation.grid, representation.n_samples,
                                 2, storage=Storage(np.dtype("complex64")),
                                 length=representation.length, compression="zstd"):
            raise Boom
    assert list(tmp_path.iterdir()) == []


def test_incomplete_write_is_refused(tmp_path, saved):
    _, representation, _ = saved
    with pytest.raises(RuntimeError, match="hop units written"):
        with msfreq.store.Writer(tmp_path / "x.h5", representation.grid, representation.n_samples,
                                 2, storage=Storage(np.dtype("complex64")),
                                 length=representation.length, compression="zstd"):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("codes", [None, "half", "out of order"])
def test_missing_correction_codes_leave_no_file(tmp_path, saved, codes):
    """Every sample's code must be written, in order, or nothing is committed."""
    from msfreq.quantize import band_steps, lsb

    _, representation, _ = saved
    grid, n = representation.grid, representation.n_samples
    storage = Storage(np.dtype("complex64"), steps=band_steps(grid.bands, lsb(16), 0.7),
                      correction_bits=16)
    stored = [storage.to_stored(i, representation[band.name]) for i, band in enumerate(grid.bands)]
    message = "correction codes of|must come in order"
    with pytest.raises(RuntimeError, match=message):
        with msfreq.store.Writer(tmp_path / "x.h5", grid, n, 2, storage=storage,
                                 length=representation.length, compression="zstd") as writer:
            writer.write(0, representation.length // grid.hop_unit, stored)
            if codes == "half":
                writer.write_corrections(0, np.zeros((2, n // 2), dtype=np.int8))
            elif codes == "out of order":
                writer.write_corrections(5, np.zeros((2, n - 5), dtype=np.int8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd", "lz4"])
def test_flipped_bytes_are_detected(tmp_path, compression):
    x = music_like(4 * RATE, RATE, 1, seed=2)
    path = msfreq.save(msfreq.encode(x, RATE), tmp_path / "c.h5", compression=compression)
    with h5py.File(path, "r") as handle:
        info = handle["octaves/04"].id.get_chunk_info(0)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset + info.size // 2)
        data = bytearray(raw.read(8))
        raw.seek(info.byte_offset + info.size // 2)
        raw.write(bytes(b ^ 0x5A for b in data))
    with pytest.raises(FormatError, match=r"corrupted data in octaves/04"):
        msfreq.load(path)
    with pytest.raises(FormatError, match="corrupted"):
        msfreq.verify(path)
    # the other octaves still read
    assert msfreq.load(path, octaves=[3]).names == ("octave_03",)


def _malform(path, how):
    with h5py.File(path, "r+") as handle:
        if how == "marker":
            handle.attrs["format"] = "something-else"
        elif how == "version":
            handle.attrs["format_version"] = FORMAT_VERSION + 1
        elif how == "missing_octave":
            del handle["octaves/02"]
        elif how == "missing_attribute":
            del handle.attrs["sample_rate"]
        elif how == "shape":
            del handle["octaves/01"]
            handle.create_dataset("octaves/01", shape=(1, 3, 3), dtype=np.complex64)
        elif how == "dtype":
            data = handle["octaves/01"][...]
            del handle["octaves/01"]
            handle.create_dataset("octaves/01", data=data.astype(np.complex128))
        elif how == "params":
            handle.attrs["bins_per_octave"] = -4


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("marker", "not an msfreq file"),
        ("version", "newer msfreq"),
        ("missing_octave", r"missing octaves/02"),
        ("missing_attribute", "attribute sample_rate is missing"),
        ("shape", "octaves/01 has shape"),
        ("dtype", "octaves/01 has dtype"),
        ("params", "bins_per_octave = -4 is outside"),
    ],
)
def test_malformed_files(tmp_path, how, message):
    path = msfreq.save(msfreq.encode(np.ones(1000), RATE), tmp_path / "m.h5")
    _malform(path, how)
    with pytest.raises(FormatError, match=message) as caught:
        msfreq.load(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not hdf5 at all" * 100, "not an HDF5 file"), (None, "no such file")],
)
def test_not_hdf5(tmp_path, content, message):
    path = tmp_path / "x.h5"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FormatError, match=message):
        msfreq.load(path)


def test_plain_hdf5_is_not_msfreq(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as handle:
        handle["data"] = np.arange(3)
    with pytest.raises(FormatError, match="not an msfreq file"):
        msfreq.read_header(path)


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(FormatError, match="is a folder"):
        msfreq.load(tmp_path)


def test_dataset_names_sort_by_frequency(saved):
    _, representation, _ = saved
    names = [dataset_name(band) for band in representation.grid.octaves]
    assert names == sorted(names)


def test_saved_file_permissions_follow_umask(tmp_path):
    path = msfreq.save(msfreq.encode(np.ones(100), RATE), tmp_path / "p.h5")
    assert path.stat().st_mode & 0o044  # readable by group/others under a usual umask


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        msfreq.save(msfreq.encode(np.ones(100), RATE), tmp_path / "nope" / "x.h5")


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bits=st.sampled_from([8, 16, 24]),
    spread=st.floats(0.0, 12.0),
    shift=st.floats(-0.0499, 0.0499),
)
def test_correction_codes_survive_any_decode_within_the_guard(seed, bits, spread, shift):
    """Codes computed from one decode give the source's samples exactly from any other decode
    that differs by less than the guard (another FFT build, another block layout), including
    decodes that lie next to a half level, where plain rounding goes either way."""
    from msfreq.quantize import apply_corrections, correction_codes, lsb

    rng = np.random.default_rng(seed)
    unit = lsb(bits)
    top = 2 ** (bits - 1)
    source = rng.integers(-top, top, (2, 3000)).astype(np.float64)
    error = rng.normal(0.0, spread + 0.01, source.shape)
    error[:, ::7] = rng.choice([-0.5, 0.5], error[:, ::7].shape) + rng.uniform(-0.04, 0.04,
                                                                               error[:, ::7].shape)
    decoded = (source + error) * unit
    codes = correction_codes(decoded, source * unit, unit, 0.05)
    if np.abs(np.rint(error)).max() > 62:
        return  # may not fit the codes: checked below
    assert codes is not None and codes.dtype == np.int8
    elsewhere = decoded + shift * unit * rng.uniform(0.0, 1.0, decoded.shape)
    assert np.array_equal(apply_corrections(elsewhere, codes, unit), source * unit)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    exponent=st.integers(-60, 4),
    largest=st.sampled_from([2**7, 2**24, 2**31 - 1]),
    dtype=st.sampled_from([np.complex64, np.complex128, np.float32, np.float64]),
)
def test_levels_become_the_exact_products_rounded_once(seed, exponent, largest, dtype):
    """from_levels computes in the result's precision (faster than numpy's float64 loop):
    the same numbers as the exact product ``level * step`` rounded once to the result, for
    levels beyond float32's 24 bits too (steps are powers of two)."""
    from msfreq.quantize import from_levels, to_levels

    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    shape = (2, 3, 500) + ((2,) if dtype.kind == "c" else ())
    levels = rng.integers(-largest, largest, shape, endpoint=True).astype(np.int32)
    step = 2.0 ** exponent
    expected = (levels.astype(np.float64) * step).astype(np.finfo(dtype).dtype)  # exact, rounded once
    got = from_levels(levels, step, dtype)
    assert got.dtype == dtype
    flat = got.view(np.finfo(dtype).dtype).reshape(expected.shape)
    assert np.array_equal(flat, expected)
    if largest < 2**24:  # every level is exact in the result: the round trip gives them back
        assert np.array_equal(to_levels(got, step), levels)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), bits=st.sampled_from([8, 16, 20, 24]),
       spread=st.sampled_from([0.3, 3.0, 1e3, 1e7]))
def test_corrections_in_single_precision_are_the_double_precision_ones(seed, bits, spread):
    """A complex64 file's decode is corrected in float32 (faster): the same float32 samples
    as correcting in float64 and rounding once, for any decode, near half levels and far
    outside full scale too (where float32 cannot hold every level)."""
    from msfreq.quantize import apply_corrections, lsb

    rng = np.random.default_rng(seed)
    unit = lsb(bits)
    decoded = (rng.normal(0.0, spread, (2, 2000)) * unit).astype(np.float32)
    decoded[:, ::5] = ((np.rint(decoded[:, ::5] / unit) + 0.5) * unit).astype(np.float32)
    codes = rng.integers(-127, 128, decoded.shape).astype(np.int8)
    single = apply_corrections(decoded, codes, unit, out=np.empty(decoded.shape, np.float32))
    double = apply_corrections(decoded.astype(np.float64), codes, unit).astype(np.float32)
    assert np.array_equal(single, double)


def test_correction_codes_refuse_what_int8_cannot_hold():
    from msfreq.quantize import correction_codes, lsb

    unit = lsb(16)
    source = np.zeros((1, 4))
    assert correction_codes(np.array([[0.0, 63.0, -63.0, 1.0]]) * unit, source, unit, 0.05) is not None
    assert correction_codes(np.array([[0.0, 64.0, 0.0, 0.0]]) * unit, source, unit, 0.05) is None
    assert correction_codes(np.array([[0.0, 0.0, -64.0, 0.0]]) * unit, source, unit, 0.05) is None


def test_plain_rounding_codes_would_not_survive_a_nudge():
    """Why codes near a half level count from the level below: the same decode nudged by
    0.02 levels rounds the other way (the attack the codes are built against)."""
    from msfreq.quantize import apply_corrections, correction_codes, lsb

    unit = lsb(16)
    decoded, source = np.array([4.49, -2.51]) * unit, np.array([4.0, -3.0]) * unit
    plain = (2 * (source / unit - np.rint(decoded / unit))).astype(np.int8)
    nudged = decoded + np.array([0.02, 0.02]) * unit
    assert not np.array_equal(apply_corrections(nudged, plain, unit), source)
    codes = correction_codes(decoded, source, unit, 0.05)
    assert np.array_equal(apply_corrections(nudged, codes, unit), source)
    assert np.array_equal(apply_corrections(decoded - 0.04 * unit, codes, unit), source)


@pytest.mark.parametrize("parts", [[0, 1], [1, 0], [0], [0, 0]])
def test_writes_channel_by_channel(tmp_path, saved, parts):
    """Blocks come one channel at a time: each part lands in its channel, and a file missing
    a channel's part is refused."""
    _, representation, _ = saved
    units = representation.length // representation.grid.hop_unit
    writing = msfreq.store.Writer(tmp_path / "x.h5", representation.grid, representation.n_samples, 2,
                                  storage=Storage(np.dtype("complex64")), length=representation.length,
                                  compression="zstd")
    if sorted(parts) != [0, 1]:
        with pytest.raises(RuntimeError, match="hop units written"), writing as writer:
            for _ in parts:
                writer.write(0, units, [representation[name][:1] for name in representation.names],
                             slice(0, 1))
        assert list(tmp_path.iterdir()) == []
        return
    with writing as writer:
        for channel in parts:
            picked = slice(channel, channel + 1)
            writer.write(0, units, [representation[name][picked] for name in representation.names],
                         picked)
    loaded = msfreq.load(tmp_path / "x.h5")
    for name in representation.names:
        assert np.array_equal(loaded[name], representation[name])
