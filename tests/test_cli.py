"""The command line: batches, skip/overwrite, failures, decode identity, inspect, plot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from helpers import music_like, pcm16, without_xing, write_audio

import msfreq
import msfreq.convert
from msfreq import params
from msfreq.cli import cli


@pytest.fixture
def mixed(tmp_path):
    """A folder of several formats, rates and channel counts, one corrupt file, one text file."""
    root = tmp_path / "music"
    write_audio(root / "house.wav", pcm16(music_like(30000, 44100, 2, seed=1) * 0.5), 44100)
    write_audio(root / "drums" / "kick.flac", music_like(20000, 48000, 1, seed=2) * 0.5, 48000, subtype="PCM_24")
    write_audio(root / "drums" / "kick.wav", pcm16(music_like(9000, 22050, 1, seed=3) * 0.5), 22050)
    write_audio(root / "pads" / "wide.aiff", pcm16(music_like(12000, 32000, 4, seed=4) * 0.3), 32000)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 50)
    (root / "notes.txt").write_text("not audio\n")
    return root


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_mixed_folder(mixed, tmp_path):
    out = tmp_path / "out"
    result = run("encode", f"{mixed}/", "-o", out, "-j", "1")
    assert result.exit_code == 1
    assert "encoded 4, skipped 0, failed 1" in result.output
    assert "broken.wav" in result.output and "not a readable audio file" in result.output
    assert "notes.txt: not audio" in result.output
    produced = sorted(str(p.relative_to(out)) for p in out.rglob("*.h5"))
    assert produced == ["drums/kick.flac.h5", "drums/kick.wav.h5", "house.wav.h5", "pads/wide.aiff.h5"]
    assert not [p for p in out.rglob("*") if p.name.endswith(".msfreq-partial")]
    # run again: everything skipped, still exit 1 for the broken file
    again = run("encode", f"{mixed}/", "-o", out, "-j", "1")
    assert "encoded 0, skipped 4, failed 1" in again.output
    assert again.exit_code == 1


def test_decode_restores_16_bit_identically(mixed, tmp_path):
    run("encode", f"{mixed}/", "-o", tmp_path / "enc", "-j", "1", "-q")
    result = run("decode", f"{tmp_path / 'enc'}/", "-o", tmp_path / "dec", "-j", "1")
    assert result.exit_code == 0, result.output
    assert "decoded 4, skipped 0, failed 0" in result.output
    # every source comes back bit-identical: the 16-bit ones from complex64, the 24-bit FLAC
    # from complex128 (the automatic precision for 17-24-bit sources)
    assert result.output.count(", bit-identical to the source") == 4
    assert "not bit-identical" not in result.output
    for name in ["house.wav", "drums/kick.wav", "pads/wide.aiff", "drums/kick.flac"]:
        source = mixed / name
        back = tmp_path / "dec" / name  # the source's own name
        np.testing.assert_array_equal(sf.read(str(source), dtype="int32")[0],
                                      sf.read(str(back), dtype="int32")[0])
    assert msfreq.read_header(tmp_path / "enc" / "drums" / "kick.flac.h5").dtype == np.complex128


def test_parallel_jobs(mixed, tmp_path):
    result = run("encode", mixed, "-o", tmp_path / "out", "-j", "2", "-q")
    assert result.exit_code == 1
    assert len(list((tmp_path / "out").rglob("*.h5"))) == 4


def test_overwrite(mixed, tmp_path):
    out = tmp_path / "out"
    run("encode", mixed / "house.wav", "-o", out, "-q")
    before = (out / "house.wav.h5").stat().st_mtime_ns
    time.sleep(0.01)
    result = run("encode", mixed / "house.wav", "-o", out, "--overwrite")
    assert "encoded 1, skipped 0" in result.output
    assert (out / "house.wav.h5").stat().st_mtime_ns != before


def test_encode_options_reach_the_file(mixed, tmp_path):
    result = run("encode", mixed / "house.wav", "-o", tmp_path, "-b", "24", "--octaves", "6",
                 "--tuning", "432", "--precision", "double", "--compression", "gzip", "--oversampling", "2",
                 "--sample-rate", "22050")
    assert result.exit_code == 0, result.output
    header = msfreq.read_header(tmp_path / "house.wav.h5")
    assert header.grid.params.bins_per_octave == 24 and header.grid.n_octaves == 6
    assert header.grid.params.tuning == 432 and header.dtype == np.complex128
    assert header.grid.params.oversampling == 2
    assert header.compression == "gzip" and header.grid.sample_rate == 22050


def test_cli_defaults_come_from_the_library():
    encode = {option.name: option for option in cli.commands["encode"].params}
    assert encode["bins_per_octave"].default == params.DEFAULT_BINS_PER_OCTAVE
    assert encode["fmin"].default == params.DEFAULT_FMIN
    assert encode["tuning"].default == params.DEFAULT_TUNING
    assert encode["compression"].default == params.DEFAULT_COMPRESSION
    assert {"auto": "auto", "single": "complex64", "double": "complex128"}[encode["precision"].default] \
        == params.DEFAULT_FILE_DTYPE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encode", "x.wav"], "Missing option '-o'"),
        (["encode", "x.wav", "-o", "out", "-b", "0"], "bins_per_octave must be between"),
        (["encode", "x.wav", "-o", "out", "--compression", "zip"], "Invalid value for '--compression'"),
        (["decode", "x.h5", "-o", "out", "--format", "nope"], "unknown output format"),
        (["inspect"], "Missing argument"),
    ],
)
def test_usage_errors(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output


def test_missing_input_and_output_is_a_file(tmp_path):
    result = CliRunner().invoke(cli, ["encode", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no such file or folder" in result.output and "nope.wav" in result.output
    assert not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(cli, ["encode", str(tmp_path), "-o", str(tmp_path / "file")])
    assert result.exit_code == 2 and "is not a folder" in result.output


def test_unwritable_output_folder(mixed, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    result = run("encode", mixed / "house.wav", "-o", locked / "sub")
    assert result.exit_code == 1 and "Permission denied" in result.output


def test_decode_reports_bad_files(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "fake.h5").write_bytes(b"nothing")
    result = run("decode", tmp_path / "in", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "fake.h5: not an HDF5 file" in result.output
    assert "decoded 0, skipped 0, failed 1" in result.output


def test_inspect_table_and_json_agree(mixed, tmp_path):
    run("encode", mixed / "house.wav", "-o", tmp_path, "-q")
    table = run("inspect", tmp_path / "house.wav.h5")
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert all(len(line) <= 92 for line in lines if not line.startswith("file "))
    assert "band RMS dB" in table.output and "peak |c| dB" in table.output
    data = json.loads(run("inspect", tmp_path / "house.wav.h5", "--json").output)
    assert sum(band["energy_percent"] for band in data["bands"]) == pytest.approx(100, abs=0.1)
    rows = [line for line in lines if line.startswith(("low", "oct", "high"))]
    assert len(rows) == len(data["bands"]) == 12
    for row, band in zip(rows, data["bands"], strict=True):
        fields = row.split()
        assert float(fields[-4]) == pytest.approx(band["energy_percent"], abs=0.006)
        assert int(fields[-6]) == band["frames"]
    assert data["channels"] == 2 and data["sample_rate"] == 44100
    assert data["source"]["name"] == "house.wav"


def test_inspect_many_and_plot(mixed, tmp_path):
    run("encode", f"{mixed}/", "-o", tmp_path / "enc", "-q", "-j", "1")
    many = run("inspect", tmp_path / "enc")
    assert many.exit_code == 0 and "4 file(s)" in many.output and "(4 exact)" in many.output
    assert all(line.split()[7] == "exact" for line in many.output.splitlines()[1:5])  # size: 2 words
    picture = tmp_path / "pic.png"
    result = run("inspect", tmp_path / "enc" / "house.wav.h5", "--plot", picture)
    assert result.exit_code == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = CliRunner().invoke(cli, ["inspect", str(tmp_path / "enc"), "--plot", str(picture)])
    assert refused.exit_code == 2


def test_inspect_corrupt_file(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    result = run("inspect", tmp_path / "x.h5")
    assert result.exit_code == 1 and "x.h5" in result.output


def test_subprocess_round_trip(mixed, tmp_path):
    command = [sys.executable, "-m", "msfreq"]
    encoded = subprocess.run(command + ["encode", str(mixed / "house.wav"), "-o", str(tmp_path)],
                             capture_output=True, text=True, timeout=300)
    assert encoded.returncode == 0, encoded.stderr
    assert "encoded 1, skipped 0, failed 0" in encoded.stdout
    decoded = subprocess.run(command + ["decode", str(tmp_path / "house.wav.h5"), "-o", str(tmp_path / "d")],
                             capture_output=True, text=True, timeout=300)
    assert "bit-identical" in decoded.stdout
    broken = subprocess.run(command + ["encode", str(mixed / "broken.wav"), "-o", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr and "broken.wav" in broken.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("jobs", "group"), [("1", False), ("2", False), ("2", True)])
def test_ctrl_c_leaves_no_partial_files(tmp_path, jobs, group):
    """Ctrl-C sent to the process, or to its whole group as a terminal does."""
    rate = 8000
    folder = tmp_path / "in"
    for index in range(6):
        write_audio(folder / f"f{index}.wav", pcm16(music_like(90 * rate, rate, 2, seed=index) * 0.4), rate)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "msfreq", "encode", str(folder), "-o", str(out), "-j", jobs, "-b", "96"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=group,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.rglob("*")):
        time.sleep(0.05)
    time.sleep(0.3)
    if group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not [p for p in out.rglob("*") if p.name.endswith(".msfreq-partial")]
    for done in out.rglob("*.h5"):
        msfreq.verify(done)


def test_output_tree_blocked_by_a_file(mixed, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "drums").write_text("a file where a folder should be")
    result = run("encode", f"{mixed}/", "-o", out, "-j", "1")
    assert result.exit_code == 1
    assert result.output.count("failed: ") == 3  # two drum files and the broken one
    assert "kick.flac" in result.output and (out / "house.wav.h5").exists()


def _cut_mp3(path, size):
    """An MP3 of a second of sound, cut to its first ``size`` bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mp3 = path.with_suffix(".whole")
    sf.write(str(mp3), music_like(8000, 8000, 2) * 0.5, 8000, format="MP3", subtype="MPEG_LAYER_III")
    path.write_bytes(mp3.read_bytes()[:size])
    mp3.unlink()


def _with_rate(path, rate):
    """A 16-bit stereo WAV whose header says ``rate`` (and the byte rate that goes with it)."""
    write_audio(path, pcm16(music_like(12000, 8000, 2)), 8000)
    raw = bytearray(path.read_bytes())
    assert raw[12:16] == b"fmt " and int.from_bytes(raw[24:28], "little") == 8000
    raw[24:32] = rate.to_bytes(4, "little") + (rate * 4 % 2**32).to_bytes(4, "little")
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: write_audio(path, np.zeros((0, 2)), 44100), "holds no samples"),
        (lambda path: write_audio(path, np.array([[0.1], [np.nan], [0.2]] * 100), 44100, subtype="FLOAT"),
         "NaN or infinite"),
        (lambda path: write_audio(path, np.zeros((500, 1)), 20), "too low for one octave"),
        # damaged headers: a second of padding at 1.6 GHz ran out the batch's time limit
        (lambda path: _with_rate(path, 1_644_175_168), "its header says 1,644,175,168 Hz, above"),
        (lambda path: _with_rate(path, params.MAX_SAMPLE_RATE + 1), "its header says 10,000,001 Hz"),
        # an MP3 cut after its first frames: libsndfile said "File does not exist"
        (lambda path: _cut_mp3(path, 178), "libsndfile cannot start decoding it"),
        # ... or a channel count and rate whose padding to a whole hop is hours of work
        (lambda path: write_audio(path, np.zeros((4, 1024)), params.MAX_SAMPLE_RATE),
         "1,024 channels at 10,000,000 Hz for 4 frames; padded to a whole lowest-octave hop"),
    ],
)
def test_bad_audio_files_are_named(tmp_path, make, message):
    path = tmp_path / "in" / "odd.wav"
    make(path)
    result = run("encode", path, "-o", tmp_path / "out")
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if line.startswith("failed:"))
    assert str(path) in line and message in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.h5"))


def test_mp3_read_in_part_is_one_line_and_the_batch_goes_on(tmp_path):
    """An MP3 whose frames hold more than libsndfile reads (no length header) fails with one
    line naming it and both lengths; the other file is encoded; exit status 1."""
    folder = tmp_path / "in"
    folder.mkdir()
    rate = 22050
    sf.write(str(folder / "vbr.mp3"), np.random.default_rng(0).standard_normal((rate * 6, 1)) * 0.1,
             rate, subtype="MPEG_LAYER_III", bitrate_mode="VARIABLE", compression_level=0.5)
    (folder / "vbr.mp3").write_bytes(without_xing((folder / "vbr.mp3").read_bytes()))
    write_audio(folder / "fine.wav", music_like(rate, rate) * 0.5, rate)
    result = run("encode", f"{folder}/", "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "vbr.mp3" in failed[0] and "libsndfile reads only" in failed[0]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["fine.wav.h5"]


def test_output_folder_inside_the_input_is_not_searched(mixed):
    out = mixed / "encoded"
    run("encode", mixed, "-o", out, "-j", "1", "-q")
    again = run("encode", mixed, "-o", out, "-j", "1")
    assert not [line for line in again.output.splitlines()
                if line.startswith("ignored:") and "/encoded/" in line]
    assert "skipped 4" in again.output


def test_unicode_names_and_duplicate_inputs(tmp_path):
    source = write_audio(tmp_path / "in" / "Café del Mar – Ä (mix).wav",
                         pcm16(music_like(8000, 8000, 1) * 0.5), 8000)
    result = run("encode", source, source, tmp_path / "in", "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.output
    assert "encoded 1, skipped 0, failed 0" in result.output
    encoded = tmp_path / "out" / "Café del Mar – Ä (mix).wav.h5"
    assert msfreq.read_header(encoded).source["name"] == source.name
    decoded = run("decode", encoded, "-o", tmp_path / "back")
    assert "bit-identical" in decoded.output


def test_content_on_a_coarser_grid_is_said(tmp_path):
    """A 24-bit file of 16-bit content: the encode line and inspect say so; decode is exact."""
    source = write_audio(tmp_path / "wide.wav", pcm16(music_like(20000, 44100, 2, seed=6) * 0.5), 44100,
                         subtype="PCM_24")
    result = run("encode", source, "-o", tmp_path / "wide.h5", "-j", "1")
    assert result.exit_code == 0 and "16-bit content, decodes bit-identically" in result.output
    assert "WAV PCM_24 of 16-bit content" in run("inspect", tmp_path / "wide.h5").output
    result = run("decode", tmp_path / "wide.h5", "-o", tmp_path / "back.wav", "-j", "1")
    assert result.exit_code == 0 and "PCM_24, bit-identical to the source" in result.output


def test_span_option(tmp_path):
    source = write_audio(tmp_path / "a.wav", pcm16(music_like(12000, 22050, 1, seed=8) * 0.5), 22050)
    result = run("encode", source, "-o", tmp_path / "a.h5", "--span", "3", "-j", "1")
    assert result.exit_code == 0 and "decodes bit-identically" in result.output
    assert msfreq.read_header(tmp_path / "a.h5").grid.params.span == 3
    assert "48 bins/octave, span 3," in run("inspect", tmp_path / "a.h5").output
    result = run("decode", tmp_path / "a.h5", "-o", tmp_path / "back.wav", "-j", "1")
    assert result.exit_code == 0 and "bit-identical to the source" in result.output
    assert run("encode", source, "-o", tmp_path / "b.h5", "--span", "9").exit_code == 2
    result = run("decode", tmp_path / "a.h5", "-o", tmp_path / "r.wav", "--phase", "reconstruct",
                 "--iterations", "2")
    assert result.exit_code == 0 and "phase rebuilt from the magnitudes (2 iterations)" in result.output


@pytest.mark.parametrize(("flags", "version", "coded"), [([], 4, True), (["--no-codes"], 3, False),
                                                     (["--no-codes", "--compression", "zstd"], 2, False)])
def test_correction_codes_can_be_left_out(tmp_path, flags, version, coded):
    """--no-codes writes what msfreq 0.3 reads (steps that round back by themselves), and with
    zstd what 0.2 reads; all decode bit for bit."""
    source = write_audio(tmp_path / "a.wav", pcm16(music_like(16000, 8000, 2, seed=6) * 0.7), 8000)
    assert run("encode", source, "-o", tmp_path / "a.h5", "-q", *flags).exit_code == 0
    header = msfreq.read_header(tmp_path / "a.h5")
    assert (header.format_version, header.storage.corrected) == (version, coded)
    result = run("decode", tmp_path / "a.h5", "-o", tmp_path / "b.wav")
    assert result.exit_code == 0 and "bit-identical to the source" in result.output


@pytest.mark.parametrize("command", [[], ["encode"], ["decode"], ["inspect"], ["verify"]])
def test_help_shows_what_it_means(command):
    """Help text is shown as written: Click does not %-format it, so a doubled percent sign
    would reach the user (0.5.0's encode help said "about 5 %% smaller")."""
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert "%%" not in result.output


@pytest.mark.parametrize(("source", "name", "args", "written"), [
    ("a.wav", "x.flac", [], ("FLAC", "PCM_16")),
    ("a.wav", "x.aiff", [], ("AIFF", "PCM_16")),
    ("a.wav", "x.wav", ["--format", "WAVEX"], ("WAVEX", "PCM_16")),
    ("a.flac", "x.wav", [], ("WAV", "PCM_16")),
    ("a.mp3", "x.wav", [], ("WAV", "PCM_16")),  # a lossy source: rounded to 16 bits by default
])
def test_a_named_output_is_written_in_the_format_its_name_says(tmp_path, source, name, args, written):
    """0.7.0 wrote the source's format under any name (-o x.flac: a WAV called x.flac)."""
    samples = pcm16(music_like(8000, 8000, 2) * 0.5)
    kind = {"a.mp3": {"format": "MP3", "subtype": "MPEG_LAYER_III"}}.get(source, {})
    path = write_audio(tmp_path / source, samples, 8000, **kind)
    runner = CliRunner()
    assert runner.invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5"), "-j", "1"]).exit_code == 0
    result = runner.invoke(cli, ["decode", str(tmp_path / "a.h5"), "-o", str(tmp_path / name), "-j", "1",
                                 *args])
    assert result.exit_code == 0, result.output
    info = sf.info(str(tmp_path / name))
    assert (info.format, info.subtype) == written
    if source != "a.mp3":
        assert "bit-identical to the source" in result.output
        assert np.array_equal(sf.read(str(tmp_path / name))[0], samples)


@pytest.mark.parametrize(("name", "args", "message"), [
    ("x.flac", ["--format", "WAV"], "its name says FLAC, not WAV"),
    ("x.opus", ["--format", "OGG", "--subtype", "VORBIS"], "its name says OPUS, not VORBIS"),
])
def test_a_named_output_contradicting_the_format_asked_is_refused(tmp_path, name, args, message):
    path = write_audio(tmp_path / "a.wav", pcm16(music_like(8000, 8000) * 0.5), 8000)
    runner = CliRunner()
    assert runner.invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5"), "-j", "1"]).exit_code == 0
    result = runner.invoke(cli, ["decode", str(tmp_path / "a.h5"), "-o", str(tmp_path / name), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(("name", "kind"), [("song.m4a", "AAC or ALAC in MP4"), ("a.WMA", "Windows Media Audio"),
                                            ("b.wv", "WavPack"), ("c.dsf", "DSD (DSF)")])
def test_audio_libsndfile_cannot_read_fails_naming_its_format(tmp_path, name, kind):
    """A folder of such files was "not audio (ignored)" with exit 0; now each fails on its own
    line, the batch goes on, exit 1.  Other files stay ignored; a WAV under such a name is read."""
    folder = tmp_path / "music"
    folder.mkdir()
    (folder / name).write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(range(256)) * 20)
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))
    write_audio(folder / "a.wav", pcm16(music_like(8000, 8000) * 0.5), 8000)
    write_audio(folder / f"renamed{os.path.splitext(name)[1]}", pcm16(music_like(8000, 8000) * 0.5), 8000,
                format="WAV")
    result = CliRunner().invoke(cli, ["encode", str(folder) + "/", "-o", str(tmp_path / "out"), "-j", "1"])
    assert result.exit_code == 1
    failures = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failures) == 1 and name in failures[0] and kind in failures[0] and "convert it" in failures[0]
    assert "ignored: " in result.output and "cover.jpg" in result.output
    assert "encoded 2, skipped 0, failed 1" in result.output
    assert (tmp_path / "out" / "a.wav.h5").exists() and not (tmp_path / "out" / f"{name}.h5").exists()


@pytest.mark.parametrize(("args", "loss"), [
    (["-o", "x.ogg"], "LOSS: VORBIS is a lossy encoding"),
    (["-o", "x.wav", "--subtype", "PCM_16"], "LOSS: PCM_16 keeps fewer bits than the file's 24-bit samples"),
])
def test_a_decode_written_with_a_loss_is_not_called_bit_identical(tmp_path, args, loss):
    """0.7.0 said 'bit-identical to the source; LOSS: VORBIS is a lossy encoding' of the same
    file: the decode was exact, the file written is not."""
    path = write_audio(tmp_path / "a.wav", music_like(8000, 8000, 1) * 0.5, 8000, subtype="PCM_24")
    runner = CliRunner()
    assert runner.invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5")]).exit_code == 0
    result = runner.invoke(cli, ["decode", str(tmp_path / "a.h5"), "-j", "1", *args[:1],
                                 str(tmp_path / args[1]), *args[2:]])
    assert result.exit_code == 0, result.output
    assert f"decoded bit-identical to the source, written with a loss; {loss}" in result.output
    assert ", bit-identical to the source;" not in result.output


@pytest.mark.parametrize(("samples", "subtype", "said"), [
    (np.zeros((8000, 2)), "PCM_24", "silent, decodes bit-identically"),
    (np.zeros((1, 1)), "PCM_16", "silent, decodes bit-identically"),
    (-np.ones((800, 1)), "PCM_16", "1-bit content, decodes bit-identically"),
])
def test_a_silent_file_is_called_silent(tmp_path, samples, subtype, said):
    """0.7.0 called a file of zeros '1-bit content' (its samples do lie on a 1-bit grid)."""
    path = write_audio(tmp_path / "a.wav", samples, 8000, subtype=subtype)
    result = CliRunner().invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5"), "-j", "1"])
    assert result.exit_code == 0 and said in result.output


def test_keep_bits_line_names_the_option_not_the_precision(tmp_path):
    """0.7.0 said 'does not decode bit-identically at this precision' of a file made inexact by
    --keep-bits."""
    path = write_audio(tmp_path / "a.wav", pcm16(music_like(8000, 8000, 2) * 0.5), 8000)
    result = CliRunner().invoke(cli, ["encode", str(path), "-o", str(tmp_path / "a.h5"), "-j", "1",
                                      "--keep-bits", "6"])
    assert result.exit_code == 0
    assert "not bit-identical: --keep-bits 6 rounds the coefficients" in result.output
    assert "at this precision" not in result.output


@pytest.mark.parametrize("args", [
    ["encode", "", "-o", "{out}"],
    ["encode", "{wav}", "", "-o", "{out}"],
    ["encode", "{wav}", "-o", ""],
    ["decode", "", "-o", "{out}"],
    ["decode", "{h5}", "-o", ""],
    ["inspect", ""],
    ["verify", ""],
])
def test_an_empty_path_is_a_usage_error_not_the_current_folder(tmp_path, monkeypatch, args):
    """``msfreq encode "$DIR" -o out`` with DIR unset: 0.8.0 took "" for the current folder and
    encoded everything below it.  Now nothing is done, exit 2."""
    source = write_audio(tmp_path / "a.wav", pcm16(music_like(4000, 8000)), 8000)
    encoded = tmp_path / "a.h5"
    assert CliRunner().invoke(cli, ["encode", str(source), "-o", str(encoded), "-j", "1"]).exit_code == 0
    work = tmp_path / "work"
    work.mkdir()
    write_audio(work / "b.wav", pcm16(music_like(4000, 8000)), 8000)
    monkeypatch.chdir(work)
    filled = [arg.format(wav=source, h5=encoded, out=tmp_path / "out") for arg in args]
    before = sorted(p.name for p in work.rglob("*"))
    result = CliRunner().invoke(cli, [*filled, "-j", "1"] if args[0] in ("encode", "decode") else filled)
    assert result.exit_code == 2, result.output
    assert "empty path" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and sorted(p.name for p in work.rglob("*")) == before


@pytest.mark.parametrize(("command", "kind"), [("encode", "audio files"), ("decode", "msfreq files"),
                                               ("verify", "msfreq files"), ("inspect", "msfreq files")])
@pytest.mark.parametrize("contents", [[], ["notes.txt"]], ids=["empty", "other files"])
def test_inputs_without_a_file_to_convert_exit_1(tmp_path, command, kind, contents):
    """An empty folder (a mount that failed, a wrong path) is not a converted collection: 0.8.0
    said 'encoded 0' and exited 0, and a script went on."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in contents:
        (folder / name).write_text("hello")
    args = [command, f"{folder}/"] + (["-o", str(tmp_path / "out"), "-j", "1"] if command in ("encode", "decode") else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    other = " (1 other file ignored)" if contents else ""
    assert f"error: no {kind} found in the inputs{other}: nothing done" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("command", "output"), [("encode", "out.h5"), ("decode", "out.flac"),
                                                  ("decode", "out.wav")])
def test_several_files_to_an_output_named_like_a_file_is_a_usage_error(tmp_path, command, output):
    """0.8.0 made a folder called out.h5 (or out.flac) for them."""
    sources = [write_audio(tmp_path / f"{name}.wav", pcm16(music_like(4000, 8000, seed=i)), 8000)
               for i, name in enumerate("ab")]
    inputs = [str(path) for path in sources]
    if command == "decode":
        inputs = []
        for path in sources:
            msfreq.convert.encode_file(path, tmp_path / f"{path.name}.h5")
            inputs.append(str(tmp_path / f"{path.name}.h5"))
    result = CliRunner().invoke(cli, [command, *inputs, "-o", str(tmp_path / output), "-j", "1"])
    assert result.exit_code == 2, result.output
    assert "is named like a file, but the inputs hold 2 files" in result.output
    assert not (tmp_path / output).exists()
    (tmp_path / output).mkdir()  # a folder of that name that exists is a folder
    result = CliRunner().invoke(cli, [command, *inputs, "-o", str(tmp_path / output), "-j", "1"])
    assert result.exit_code == 0, result.output


def test_an_output_name_too_long_for_the_file_system_fails_on_its_line(tmp_path):
    """A 250-byte file name gets '.h5' and '.tmp' endings past the 255 bytes a name may have:
    0.8.0's worker died on it ('worker exited with status 1'); now that file fails, naming
    ENAMETOOLONG, and the batch goes on."""
    folder = tmp_path / "in"
    folder.mkdir()
    long_name = "x" * 250 + ".wav"
    write_audio(folder / long_name, pcm16(music_like(4000, 8000)), 8000)
    write_audio(folder / "ok.wav", pcm16(music_like(4000, 8000, seed=1)), 8000)
    (tmp_path / "out").mkdir()  # so that the long name itself is looked up there
    result = CliRunner().invoke(cli, ["encode", f"{folder}/", "-o", str(tmp_path / "out"), "-j", "1"])
    assert result.exit_code == 1, result.output
    assert "File name too long [ENAMETOOLONG]" in result.output and "worker exited" not in result.output
    assert "encoded 1, skipped 0, failed 1" in result.output and (tmp_path / "out" / "ok.wav.h5").exists()


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_an_output_path_too_long_is_a_usage_error(tmp_path, command):
    source = write_audio(tmp_path / "a.wav", pcm16(music_like(4000, 8000)), 8000)
    if command == "decode":
        msfreq.convert.encode_file(source, tmp_path / "a.h5")
        source = tmp_path / "a.h5"
    result = CliRunner().invoke(cli, [command, str(source), "-o", str(tmp_path / ("y" * 300 + ".h5")), "-j", "1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "File name too long [ENAMETOOLONG]: nothing done" in result.output


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_bars_only_on_a_terminal(tmp_path, terminal):
    """Bars where stderr is a terminal; elsewhere (a log, a pipe, a batch script) no bars and
    tqdm not even imported (15 ms of a short file's encode)."""
    import pty

    source = write_audio(tmp_path / "a.wav", pcm16(music_like(8000, 8000)), 8000)
    code = """
import sys
from msfreq.cli import main
sys.argv = ["msfreq", "encode", sys.argv[1], "-o", sys.argv[2], "-j", "1"]
try:
    main()
except SystemExit as exit:
    print("tqdm" in sys.modules, exit.code)
"""
    command = [sys.executable, "-c", code, str(source), str(tmp_path / "a.h5")]
    if terminal:
        import fcntl
        import select
        import struct
        import termios

        primary, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80 columns
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=secondary, text=True)
        os.close(secondary)
        bars = b""
        while process.poll() is None or select.select([primary], [], [], 0)[0]:
            if select.select([primary], [], [], 0.1)[0]:
                try:
                    bars += os.read(primary, 65536)
                except OSError:  # the child's side closed
                    break
        os.close(primary)
        result = subprocess.CompletedProcess(command, process.returncode, process.stdout.read())
        process.stdout.close()
        assert b"encode" in bars  # the bar over files
    else:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.stderr == ""
    assert result.stdout.splitlines()[-1] == f"{terminal} 0"


@pytest.mark.parametrize(("given", "size"), [
    ("64M", 64 << 20), ("1200M", 1200 << 20), ("1.5G", 3 << 29), ("2GiB", 2 << 30),
    ("800mb", 800 << 20), (" 1 t ", 1 << 40), ("65536K", 64 << 20),
])
@pytest.mark.parametrize("command", ["encode", "decode", "verify"])
def test_memory_reaches_the_options(tmp_path, monkeypatch, command, given, size):
    """--memory SIZE becomes the options' byte budget for every command that transforms."""
    source = write_audio(tmp_path / "a.wav", pcm16(music_like(4000, 8000, 1)), 8000)
    msfreq.convert.encode_file(source, tmp_path / "a.wav.h5")
    planned = []
    monkeypatch.setattr(msfreq.cli, "_run", lambda verb, plan, **kwargs: planned.append(plan))
    inputs = [source] if command == "encode" else [tmp_path / "a.wav.h5"]
    outputs = [] if command == "verify" else ["-o", tmp_path / "out"]
    result = run(command, *inputs, *outputs, "--memory", given)
    assert result.exit_code == 0, result.output
    assert planned[0].jobs[0].options.memory == size


@pytest.mark.parametrize("given", ["10M", "63M", "800", "1.5", "x", "-1G", "2 GB extra", "G"])
@pytest.mark.parametrize("command", ["encode", "decode", "verify"])
def test_memory_needs_a_unit_and_the_least_budget(tmp_path, command, given):
    outputs = [] if command == "verify" else ["-o", tmp_path / "out"]
    result = run(command, tmp_path / "missing", *outputs, "--memory", given)
    assert result.exit_code == 2
    assert "--memory" in result.output and repr(given) in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("available", "jobs", "warned"), [
    (1 << 30, 1, True),  # one worker, 2 GiB asked, 1 GiB available
    (3 << 30, 2, True),  # two files, two workers: 4 GiB
    (3 << 30, 1, False),
    (None, 8, False),  # unknown: no guess
])
@pytest.mark.parametrize("command", ["encode", "decode", "verify"])
def test_memory_beyond_what_is_available_is_warned_before_the_batch(tmp_path, monkeypatch, command,
                                                                    available, jobs, warned):
    """--memory times the workers that will run (at most one per file) against the memory
    available now: one warning line, and the batch still runs."""
    folder = tmp_path / "in"
    (tmp_path / "h5").mkdir()
    for name in ("a", "b"):
        source = write_audio(folder / f"{name}.wav", pcm16(music_like(4000, 8000, 1)), 8000)
        msfreq.convert.encode_file(source, tmp_path / "h5" / f"{name}.wav.h5")
    monkeypatch.setattr(msfreq.cli, "available_memory", lambda: available)
    inputs = [f"{folder}/"] if command == "encode" else [f"{tmp_path / 'h5'}/"]
    outputs = {"encode": ["-o", tmp_path / "out"], "decode": ["-o", tmp_path / "out"],
               "verify": ["--decode"]}[command]
    result = run(command, *inputs, *outputs, "-j", jobs, "--memory", "2G")
    assert result.exit_code == 0, result.output
    assert ("warning:" in result.output) == warned
    if warned:
        workers = min(jobs, 2)
        assert f"{workers} worker{'s' if workers > 1 else ''} x --memory 2.00 GiB" in result.output
    assert "ok:" in result.output if command == "verify" else (tmp_path / "out").exists()


def test_available_memory_is_what_linux_says():
    from msfreq.pool import available_memory

    with open("/proc/meminfo") as handle:
        said = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemAvailable:"))
    assert abs(available_memory() - said) < 256 << 20  # read moments apart
