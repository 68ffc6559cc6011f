"""--round-bits: float, lossy, deeper integer and resampled sources rounded to a grid, stored as
levels, checked to decode to the rounded samples bit for bit (format version 5)."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from helpers import music_like, pcm16, snr_db, write_audio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import msfreq
from msfreq.audio import AudioReader, probe, snap
from msfreq.cli import cli
from msfreq.convert import EncodeOptions, Resampler, decode_file, encode_file, read_audio
from msfreq.errors import FormatError, ParameterError
from msfreq.params import TransformParams

RATE = 8000
SMALL = TransformParams(bins_per_octave=12)


def _source(folder, kind: str):
    """A 2-second stereo source of ``kind``, and the float samples an encode reads from it."""
    x = music_like(2 * RATE, RATE, 2, seed=5)
    if kind == "float":  # beyond full scale, as float masters and lossy decodes can be
        path = write_audio(folder / "a.wav", x * 1.3 / np.abs(x).max(), RATE, subtype="FLOAT")
    elif kind == "pcm24":  # with both extremes of the 24-bit range
        x = np.clip(x * 0.9 / np.abs(x).max(), -1, 1)
        x[100, 0], x[200, 1] = 1.0 - 2.0**-23, -1.0
        path = write_audio(folder / "a.wav", x, RATE, subtype="PCM_24")
    elif kind == "mp3":
        path = write_audio(folder / "a.mp3", x * 0.5, RATE, format="MP3", subtype="MPEG_LAYER_III")
    else:  # "resampled": 16-bit, encoded at 6 kHz
        path = write_audio(folder / "a.wav", pcm16(x * 0.5), RATE)
    read, _ = sf.read(str(path), dtype="float32" if kind == "mp3" else "float64", always_2d=True)
    return path, read.astype(np.float64)


def _expected(path, read, kind: str, bits: int) -> np.ndarray:
    if kind == "resampled":
        with AudioReader(probe(path)) as reader:
            resampler = Resampler(reader, RATE, 6000)
            read = resampler.read(0, resampler.n_samples)
    rounded = snap(read, bits)
    if kind in ("pcm24", "resampled"):  # integer sources stay inside their range
        rounded = np.clip(rounded, -1.0, 1.0 - 2.0 ** (1 - bits))
    return rounded


@pytest.mark.parametrize("blocks", [False, True], ids=["whole", "blocks"])
@pytest.mark.parametrize("bits", [16, 20])
@pytest.mark.parametrize("kind", ["float", "pcm24", "mp3", "resampled"])
def test_rounded_encode_decodes_to_the_rounded_samples(tmp_path, kind, bits, blocks):
    path, read = _source(tmp_path, kind)
    options = EncodeOptions(params=SMALL, round_bits=bits, block_seconds=0.5 if blocks else None,
                            sample_rate=6000 if kind == "resampled" else None)
    report = encode_file(path, tmp_path / "a.h5", options)
    rounded = min(bits, 16) if kind == "resampled" else bits  # at most a resampled source's depth
    expected = _expected(path, read, kind, rounded)
    assert (report.exact, report.storage, report.rounded_bits) == (True, "levels", rounded)
    decoded, _ = read_audio(tmp_path / "a.h5")
    assert np.array_equal(decoded, expected)
    if kind != "resampled":
        assert report.rounding_snr_db == pytest.approx(snr_db(read, expected), abs=1e-6)
    header = msfreq.read_header(tmp_path / "a.h5")
    assert header.format_version == 5 and header.rounded_bits == rounded and header.exact
    assert header.dtype == (np.complex64 if rounded <= 16 else np.complex128)
    with AudioReader(probe(path)) as reader:  # source_sha256 stays the source's own
        reader.scan()
        assert header.source["sha256"] == reader.checksum() != header.source["rounded_sha256"]
    middle, _ = read_audio(tmp_path / "a.h5", start=0.7, stop=1.1)  # a crop: the same samples
    first = round(0.7 * header.grid.sample_rate)
    assert np.array_equal(middle, expected[first : first + middle.shape[0]])
    back = decode_file(tmp_path / "a.h5", tmp_path / "back.wav")
    assert back.identical is True and back.rounded_bits == rounded
    if kind == "pcm24":  # written in the source's 24 bits, nothing clipped
        assert back.losses == ()
        written, _ = sf.read(str(tmp_path / "back.wav"), dtype="int32")
        assert np.array_equal(written >> 8, np.rint(expected * 2**23).astype(np.int32))


def test_rounding_shrinks_a_lossy_source(tmp_path):
    """The point of the option: an MP3's decode, unrounded (not checked) against 16-bit steps."""
    path, _ = _source(tmp_path, "mp3")
    plain = encode_file(path, tmp_path / "plain.h5", EncodeOptions(params=SMALL, round_bits=None))
    rounded = encode_file(path, tmp_path / "rounded.h5", EncodeOptions(params=SMALL, round_bits=16))
    assert plain.exact is None and rounded.exact is True
    assert rounded.bytes_written < 0.6 * plain.bytes_written


@pytest.mark.parametrize("options", [{"round_bits": 16}, {"round_bits": 20},
                                     {"round_bits": 16, "block_seconds": 0.5}])
def test_a_source_already_on_the_grid_is_not_rounded(tmp_path, options):
    """A 16-bit source, not resampled, with 16 or more bits asked: written as without the
    option (same format version, same coefficients)."""
    path = write_audio(tmp_path / "a.wav", pcm16(music_like(2 * RATE, RATE, 2) * 0.5), RATE)
    common = {"params": SMALL, "block_seconds": options.get("block_seconds")}
    report = encode_file(path, tmp_path / "r.h5", EncodeOptions(**common, round_bits=options["round_bits"]))
    encode_file(path, tmp_path / "p.h5", EncodeOptions(**common))
    assert report.rounded_bits is None and report.exact is True
    with h5py.File(tmp_path / "r.h5") as rounded, h5py.File(tmp_path / "p.h5") as plain:
        assert rounded.attrs["format_version"] == plain.attrs["format_version"] == 4
        assert "source_rounded_bits" not in rounded.attrs
        for name in ("octaves/03", "residuals/low", "corrections"):
            assert np.array_equal(rounded[name][...], plain[name][...])


def test_nothing_changed_is_said(tmp_path):
    """A 24-bit file of 16-bit content rounded to 16 bits: exact, and the line says that the
    rounding changed nothing."""
    path = write_audio(tmp_path / "a.wav", pcm16(music_like(2 * RATE, RATE, 1) * 0.5), RATE,
                       subtype="PCM_24")
    report = encode_file(path, tmp_path / "a.h5", EncodeOptions(round_bits=16))
    assert report.exact is True and report.rounded_bits == 16 and report.rounding_snr_db is None
    result = CliRunner().invoke(cli, ["encode", str(path), "-o", str(tmp_path / "b.h5"),
                                      "--round-bits", "16", "-j", "1"])
    assert result.exit_code == 0, result.output
    assert "rounded to 16-bit steps (nothing changed), decodes bit-identically to them" in result.output


def test_cli_lines_say_what_was_rounded(tmp_path):
    path, read = _source(tmp_path, "float")
    runner = CliRunner()
    result = runner.invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5"),
                                 "--round-bits", "16", "-j", "1"])
    assert result.exit_code == 0, result.output
    snr = snr_db(read, snap(read, 16))
    assert (f"rounded to 16-bit steps (SNR {snr:.1f} dB against the source), decodes "
            "bit-identically to them") in result.output
    result = runner.invoke(cli, ["decode", str(tmp_path / "a.h5"), "-o", str(tmp_path / "b.wav"),
                                 "-j", "1"])
    assert result.exit_code == 0 and "bit-identical to the source rounded to 16-bit steps" in result.output
    assert np.array_equal(sf.read(str(tmp_path / "b.wav"))[0], snap(read, 16).astype(np.float32))
    result = runner.invoke(cli, ["inspect", str(tmp_path / "a.h5")])
    assert f"rounded to 16-bit steps when encoded (SNR {snr:.1f} dB)" in result.output
    assert "decodes to exactly the source samples rounded to 16-bit steps" in result.output
    shutil.copy(tmp_path / "a.h5", tmp_path / "b.h5")
    many = runner.invoke(cli, ["inspect", str(tmp_path)])
    assert "(2 rounded16)" in many.output
    result = runner.invoke(cli, ["verify", "--decode", str(tmp_path / "a.h5")])
    assert result.exit_code == 0 and "decodes to exactly the source samples rounded to 16-bit" in result.output


@pytest.mark.parametrize(("options", "message"), [
    ({"round_bits": 7}, "round_bits must be 'auto', None or in 8..24"),
    ({"round_bits": 25}, "round_bits must be 'auto', None or in 8..24"),
    ({"round_bits": 16.5}, "round_bits must be"),
    ({"round_bits": 17, "dtype": "complex64"}, "round_bits must be 'auto', None or in 8..16 for complex64"),
    ({"round_bits": 16, "keep_bits": 12}, "exclude each other"),
])
def test_bad_round_bits_are_refused(options, message):
    with pytest.raises(ParameterError, match=message):
        EncodeOptions(**options)


@pytest.mark.parametrize(("kind", "options", "rounded", "exact"), [
    ("mp3", {}, 16, True),  # what MP3 decoders write
    ("mp3", {"sample_rate": 6000}, 16, True),
    ("mp3", {"round_bits": None}, None, None),  # 0.8's default: floats, not checked
    ("mp3", {"round_bits": 20}, 20, True),
    ("mp3", {"dtype": "complex128"}, None, True),  # double precision asked: the floats, exactly
    ("mp3", {"keep_bits": 12}, None, None),
    ("float", {}, None, None),  # a float master keeps its precision
    ("float", {"sample_rate": 6000}, None, None),
    ("pcm16", {}, None, True),  # on its own grid: exact as ever
    ("pcm24", {}, None, True),
    ("pcm16", {"sample_rate": 6000}, 16, True),  # its decode is written in 16 bits anyway
    ("pcm8", {"sample_rate": 6000}, 8, True),
    ("pcm24", {"sample_rate": 6000}, None, None),  # 24-bit steps would cost double precision
])
def test_auto_rounding_rounds_what_a_decode_is_written_in(tmp_path, kind, options, rounded, exact):
    """``round_bits="auto"`` (the default) rounds lossy decodes to 16-bit steps and resampled
    integer sources of up to 16 bits to their own depth, and nothing else."""
    x = music_like(2 * RATE, RATE, 2, seed=5) * 0.5
    path = {"mp3": lambda: write_audio(tmp_path / "a.mp3", x, RATE, format="MP3", subtype="MPEG_LAYER_III"),
            "float": lambda: write_audio(tmp_path / "a.wav", x, RATE, subtype="FLOAT"),
            "pcm16": lambda: write_audio(tmp_path / "a.wav", pcm16(x), RATE),
            "pcm24": lambda: write_audio(tmp_path / "a.wav", x, RATE, subtype="PCM_24"),
            "pcm8": lambda: write_audio(tmp_path / "a.wav", x, RATE, subtype="PCM_U8")}[kind]()
    assert EncodeOptions().round_bits == "auto"
    report = encode_file(path, tmp_path / "a.h5", EncodeOptions(params=SMALL, **options))
    assert (report.rounded_bits, report.exact) == (rounded, exact)
    assert msfreq.read_header(tmp_path / "a.h5").rounded_bits == rounded


def test_cli_round_bits_auto_and_none(tmp_path):
    """The default line of a rounded lossy source says how to keep it unrounded; ``none`` does."""
    path, read = _source(tmp_path, "mp3")
    runner = CliRunner()
    lines = {}
    for args in ([], ["--round-bits", "auto"], ["--round-bits", "none"], ["--round-bits", "NONE"]):
        result = runner.invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5"), "-j", "1",
                                     "--overwrite", *args])
        assert result.exit_code == 0, result.output
        lines[" ".join(args)] = result.output.splitlines()[0]
    snr = snr_db(read, snap(read, 16))
    assert (f"rounded to 16-bit steps (SNR {snr:.1f} dB against the source; --round-bits none: "
            "unrounded), decodes bit-identically to them") in lines[""]
    assert lines["--round-bits auto"].split("(")[1:-1] == lines[""].split("(")[1:-1]
    for unrounded in ("--round-bits none", "--round-bits NONE"):
        assert "rounded to" not in lines[unrounded] and "not checked bit for bit" in lines[unrounded]
    explicit = runner.invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5"), "-j", "1",
                                   "--overwrite", "--round-bits", "16"])
    assert "--round-bits none" not in explicit.output and "rounded to 16-bit steps" in explicit.output


@pytest.mark.parametrize("args", [["--round-bits", "7"], ["--round-bits", "x"], ["--round-bits", "16.5"], ["--round-bits", "20", "--precision", "single"],
                                  ["--round-bits", "16", "--keep-bits", "10"]])
def test_cli_refuses_bad_round_bits(tmp_path, args):
    path = write_audio(tmp_path / "a.wav", music_like(RATE, RATE), RATE, subtype="FLOAT")
    result = CliRunner().invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5"), *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "a.h5").exists()


@pytest.fixture(scope="module")
def rounded_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rounded")
    path, _ = _source(folder, "float")
    encode_file(path, folder / "a.h5", EncodeOptions(round_bits=16))
    return folder / "a.h5"


def _set(name, value):
    def change(handle):
        handle.attrs[name] = value
    return change


def _delete(name):
    def change(handle):
        del handle.attrs[name]
    return change


def _level(handle):
    handle["octaves/04"][0, 3, 5, 0] += 4000  # written anew: its chunk's checksum is valid


@pytest.mark.parametrize(("craft", "message"), [
    (_set("format_version", 4), "rounded samples in a version-4 file"),
    (_delete("source_rounded_bits"), "source_rounded_bits is missing"),
    (_delete("source_rounded_sha256"), "source_rounded_sha256 is missing"),
    (_set("source_rounded_bits", 40), "source_rounded_bits = 40 is outside"),
    (_set("source_grid_bits", 20), "finer than the grid the samples were rounded to"),
    (_set("source_rounding_snr_db", np.bytes_(b"high")), "must be a finite number"),
    (_set("source_rounding_snr_db", np.inf), "must be a finite number"),
    (_set("source_rounded_sha256", np.bytes_(b"0" * 64)), "header checksum mismatch"),
    (_level, "damaged: the decoded samples differ"),
], ids=["version 4", "no bits", "no checksum", "40 bits", "finer grid", "snr text", "snr inf",
        "checksum edited", "level changed"])
def test_crafted_rounded_files_are_refused(rounded_file, tmp_path, craft, message):
    path = tmp_path / "crafted.h5"
    shutil.copy(rounded_file, path)
    with h5py.File(path, "r+") as handle:
        craft(handle)
    with pytest.raises(FormatError, match=message) as caught:
        decode_file(path, tmp_path / "out.wav")
    assert str(path) in str(caught.value) and not (tmp_path / "out.wav").exists()
    with pytest.raises(FormatError, match=message):
        msfreq.convert.verify_decode(path)


@pytest.mark.parametrize(("source", "asked", "grid", "written", "losses"), [
    (("MP3", "MPEG_LAYER_III"), {}, 16, ("FLAC", "PCM_16"), ()),
    (("MP3", "MPEG_LAYER_III"), {}, 20, ("FLAC", "PCM_24"), ()),
    (("MP3", "MPEG_LAYER_III"), {}, None, ("FLAC", "PCM_24"), ()),
    (("MP3", "MPEG_LAYER_III"), {"format": "WAV"}, 16, ("WAV", "PCM_16"), ()),
    (("MP3", "MPEG_LAYER_III"), {"format": "WAV", "subtype": "PCM_16"}, 20, ("WAV", "PCM_16"),
     ("PCM_16 keeps fewer bits than the file's 20-bit samples",)),
    (("WAV", "FLOAT"), {"format": "FLAC"}, 16, ("FLAC", "PCM_16"), ()),
    (("WAV", "FLOAT"), {"format": "FLAC"}, None, ("FLAC", "PCM_24"),
     ("PCM_24 keeps fewer bits than the source FLOAT",)),
    (("XI", "DPCM_16"), {"format": "WAV"}, None, ("WAV", "PCM_16"), ()),  # was A-law (8-bit codes)
    (("WAV", "PCM_24"), {}, 16, ("WAV", "PCM_24"), ()),
    (("WAV", "PCM_24"), {"subtype": "PCM_16"}, 16, ("WAV", "PCM_16"), ()),
    (("WAV", "PCM_24"), {"subtype": "PCM_16"}, 24, ("WAV", "PCM_16"),
     ("PCM_16 keeps fewer bits than the file's 24-bit samples",)),
])
def test_decoded_format_follows_the_grid_the_samples_lie_on(source, asked, grid, written, losses):
    """An MP3 rounded to 16 bits comes back as 16-bit FLAC (24-bit before); writing a grid's
    samples in a subtype that holds them is no loss (a float WAV of 16-bit content as FLAC
    was said to lose bits)."""
    chosen = msfreq.audio.output_format(*source, **asked, sample_rate=8000, channels=2, grid=grid)
    assert (chosen[:2], chosen[3]) == (written, losses)


def test_an_mp3_rounded_to_16_bits_decodes_to_16_bit_flac(tmp_path):
    path, read = _source(tmp_path, "mp3")
    encode_file(path, tmp_path / "a.h5", EncodeOptions(params=SMALL, round_bits=16))
    report = decode_file(tmp_path / "a.h5", tmp_path / "a.flac")
    assert (report.format, report.subtype, report.losses, report.identical) == ("FLAC", "PCM_16", (), True)
    written, _ = sf.read(str(tmp_path / "a.flac"))
    assert np.array_equal(written, snap(read, 16))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bits=st.integers(8, 24), peak=st.sampled_from([1e-6, 0.01, 0.5, 0.999, 4.0]),
       frames=st.integers(1, 3 * RATE), channels=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_any_float_signal_comes_back_as_its_rounded_samples(tmp_path, bits, peak, frames, channels, seed):
    """Whatever the level (below the grid's step to beyond full scale), length (one sample up)
    and grid: exact, and the decode is the rounded source bit for bit."""
    x = np.random.default_rng(seed).standard_normal((frames, channels))
    x *= peak / max(np.abs(x).max(), 1e-300)
    path = write_audio(tmp_path / f"f{seed}.wav", x.astype(np.float32), RATE, subtype="FLOAT")
    report = encode_file(path, tmp_path / f"f{seed}.h5", EncodeOptions(params=SMALL, round_bits=bits))
    read, _ = sf.read(str(path), always_2d=True)
    decoded, _ = read_audio(tmp_path / f"f{seed}.h5")
    assert report.exact is True and np.array_equal(decoded, snap(read, bits))


def test_a_resampled_rounded_line_says_both(tmp_path):
    path, _ = _source(tmp_path, "resampled")
    result = CliRunner().invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5"), "-j", "1",
                                      "--sample-rate", "6000", "--round-bits", "16"])
    assert result.exit_code == 0, result.output
    assert "resampled from 8000 Hz, rounded to 16-bit steps (SNR" in result.output
    assert "dB against the resampled source), decodes bit-identically to them" in result.output


@pytest.mark.parametrize("storage", ["codes", "no codes", "fallback to finer steps", "fallback to floats"])
def test_every_storage_of_rounded_samples_reads_back(tmp_path, monkeypatch, storage):
    """Version 5 is set by the rounding, whatever the storage: levels with codes, finer levels
    without them (--no-codes, or a fallback when codes do not fit), or floats at last.  0.8.0's
    first reader took every file of version 4 or more for one with codes and refused the others
    ('attribute corrections is missing') after the encode had succeeded."""
    if storage == "fallback to finer steps":
        monkeypatch.setattr(msfreq.convert, "CORRECTED_FRACTION", 2.0**14)
    if storage == "fallback to floats":
        monkeypatch.setattr(msfreq.convert, "CORRECTED_FRACTION", 2.0**14)
        monkeypatch.setattr(msfreq.convert, "STEP_FRACTIONS", (2.0**10,))
    path, read = _source(tmp_path, "float")
    report = encode_file(path, tmp_path / "a.h5", EncodeOptions(params=SMALL, round_bits=16,
                                                                codes=storage != "no codes"))
    header = msfreq.read_header(tmp_path / "a.h5")
    assert header.format_version == 5 and header.rounded_bits == 16
    assert header.storage.corrected == (storage == "codes")
    assert header.storage.form == ("float" if storage == "fallback to floats" else "levels")
    back = decode_file(tmp_path / "a.h5", tmp_path / "back.wav")
    decoded, _ = read_audio(tmp_path / "a.h5")
    assert report.exact is True and back.identical is True  # complex64 floats hold 16 bits too
    assert np.array_equal(decoded, snap(read, 16))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sources")
    x = music_like(RATE, RATE, 2, seed=11) * 0.5
    write_audio(folder / "pcm16.wav", pcm16(x), RATE)
    write_audio(folder / "float.wav", x * 2.2, RATE, subtype="FLOAT")
    write_audio(folder / "lossy.mp3", x, RATE, format="MP3", subtype="MPEG_LAYER_III")
    return folder


@pytest.mark.parametrize("source", ["pcm16.wav", "float.wav", "lossy.mp3"])
@pytest.mark.parametrize("round_bits", [None, 16, 20])
@pytest.mark.parametrize("dtype", ["auto", "complex64", "complex128"])
@pytest.mark.parametrize("codes", [True, False], ids=["codes", "no codes"])
@pytest.mark.parametrize("compression", ["lz4", "gzip"])
def test_every_file_an_encode_writes_passes_the_reader(sources, tmp_path, source, round_bits, dtype,
                                                       codes, compression):
    """Whatever the options, the file written opens with the validating reader and decodes as
    its header says (a writer/reader mismatch for one combination went unnoticed before)."""
    try:
        options = EncodeOptions(params=SMALL, round_bits=round_bits, dtype=dtype, codes=codes,
                                compression=compression)
    except ParameterError:
        assert round_bits == 20 and dtype == "complex64"
        return
    report = encode_file(sources / source, tmp_path / "a.h5", options)
    header = msfreq.read_header(tmp_path / "a.h5")
    assert header.exact == report.exact and header.rounded_bits == report.rounded_bits
    back = decode_file(tmp_path / "a.h5", tmp_path / "back.wav")
    assert back.identical == (True if report.exact else back.identical)
    if report.exact:
        decoded, _ = read_audio(tmp_path / "a.h5")
        read, _ = sf.read(str(sources / source), dtype="float32" if source.endswith("mp3") else "float64",
                          always_2d=True)
        expected = snap(read.astype(np.float64), report.rounded_bits) if report.rounded_bits else read
        assert np.array_equal(decoded, expected)


@pytest.mark.parametrize("source", ["pcm16.wav", "float.wav", "lossy.mp3"])
@pytest.mark.parametrize("round_bits", [None, 16, 24])
@pytest.mark.parametrize("sample_rate", [None, 6000])
@pytest.mark.parametrize("block_seconds", [None, 0.4])
def test_every_file_resampled_or_in_blocks_passes_the_reader(sources, tmp_path, source, round_bits,
                                                             sample_rate, block_seconds):
    options = EncodeOptions(params=SMALL, round_bits=round_bits, sample_rate=sample_rate,
                            block_seconds=block_seconds)
    report = encode_file(sources / source, tmp_path / "a.h5", options)
    header = msfreq.read_header(tmp_path / "a.h5")
    assert header.exact == report.exact and header.rounded_bits == report.rounded_bits
    back = decode_file(tmp_path / "a.h5", tmp_path / "back.wav")
    if report.exact:
        assert back.identical is True
    if sample_rate is not None:  # resampled: checked only where rounded
        assert report.exact is (True if round_bits else None)


@pytest.mark.parametrize("source", ["pcm16.wav", "float.wav"])
@pytest.mark.parametrize("keep_bits", [None, 12])
@pytest.mark.parametrize("span", [1, 3])
@pytest.mark.parametrize("oversampling", [1, 2])
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_every_file_of_another_grid_or_storage_passes_the_reader(sources, tmp_path, source, keep_bits,
                                                                 span, oversampling, compression):
    params = TransformParams(bins_per_octave=12, span=span, oversampling=oversampling)
    options = EncodeOptions(params=params, keep_bits=keep_bits, compression=compression)
    report = encode_file(sources / source, tmp_path / "a.h5", options)
    header = msfreq.read_header(tmp_path / "a.h5")
    read_params = header.grid.params
    assert header.exact == report.exact
    assert (read_params.bins_per_octave, read_params.span, read_params.oversampling) == (12, span, oversampling)
    assert (header.storage.keep_bits, header.compression) == (keep_bits, compression)
    back = decode_file(tmp_path / "a.h5", tmp_path / "back.wav")
    assert back.identical == (True if report.exact else back.identical)
    msfreq.verify(tmp_path / "a.h5")


@pytest.fixture(scope="module")
def encoded(sources, tmp_path_factory):
    folder = tmp_path_factory.mktemp("encoded")
    write_audio(sources / "pcm24.wav", music_like(RATE, RATE, 2, seed=12) * 0.5, RATE, subtype="PCM_24")
    for name in ("pcm16.wav", "pcm24.wav", "float.wav", "lossy.mp3"):
        encode_file(sources / name, folder / f"{name}.h5", EncodeOptions(params=SMALL))
    return folder


@pytest.mark.parametrize("name", ["pcm16.wav", "pcm24.wav", "float.wav", "lossy.mp3"])
@pytest.mark.parametrize("asked", [{}, {"format": "WAV", "subtype": "PCM_16"},
                                   {"format": "WAV", "subtype": "PCM_24"}, {"format": "FLAC"},
                                   {"format": "WAV", "subtype": "FLOAT"}, {"format": "AIFF"}],
                         ids=["default", "PCM_16", "PCM_24", "FLAC", "FLOAT", "AIFF"])
def test_a_decode_that_declares_no_loss_loses_nothing(encoded, tmp_path, name, asked):
    """No silent degradation: where a decode's line declares no loss, the file written holds
    exactly the samples the msfreq file decodes to."""
    from msfreq.convert import DecodeOptions

    report = decode_file(encoded / f"{name}.h5", tmp_path / "out", DecodeOptions(**asked))
    written, _ = sf.read(str(tmp_path / "out"), always_2d=True)
    decoded, _ = read_audio(encoded / f"{name}.h5")
    if report.losses:
        return
    if name == "lossy.mp3":  # its decode counts as 24 bits (float32's mantissa): within 2**-24
        assert np.abs(written - decoded).max() <= 2.0**-24, report
    else:
        assert np.array_equal(written, decoded), report
