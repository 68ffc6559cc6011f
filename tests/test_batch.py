"""Batches never lose or silently degrade data: naming, collisions, isolation, leftovers."""

from __future__ import annotations

import os
import socket

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from helpers import misbehave, music_like, pcm16, write_audio

import msfreq
from msfreq.batch import Job, Plan, VerifyOptions, decoded_name, display, run_batch
from msfreq.cli import cli
from msfreq.errors import FormatError, ParameterError


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def tone(path, seed=0, channels=1, rate=8000, subtype="PCM_16", **kwargs):
    return write_audio(path, pcm16(music_like(rate, rate, channels, seed=seed) * 0.5), rate,
                       subtype=subtype, **kwargs)


def test_two_inputs_for_one_output_is_a_usage_error(tmp_path):
    tone(tmp_path / "a" / "kick.wav", seed=1)
    tone(tmp_path / "b" / "kick.wav", seed=2)
    result = run("encode", f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "a/kick.wav" in result.output and "b/kick.wav" in result.output
    assert not (tmp_path / "out").exists()


def test_several_roots_get_their_own_folders(tmp_path):
    tone(tmp_path / "a" / "kick.wav", seed=1)
    tone(tmp_path / "b" / "kick.wav", seed=2)
    result = run("encode", tmp_path / "a", tmp_path / "b", "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.output
    one = msfreq.read_header(tmp_path / "out" / "a" / "kick.wav.h5").source["sha256"]
    two = msfreq.read_header(tmp_path / "out" / "b" / "kick.wav.h5").source["sha256"]
    assert one != two


def test_names_do_not_depend_on_the_batch(tmp_path):
    tone(tmp_path / "music" / "wanderer.wav")
    tone(tmp_path / "formats" / "wanderer.flac")
    run("encode", tmp_path / "music", "-o", tmp_path / "alone", "-j", "1", "-q")
    run("encode", tmp_path / "music", tmp_path / "formats", "-o", tmp_path / "both", "-j", "1", "-q")
    assert (tmp_path / "alone" / "music" / "wanderer.wav.h5").exists()
    assert (tmp_path / "both" / "music" / "wanderer.wav.h5").exists()
    result = run("decode", f"{tmp_path / 'alone'}/", "-o", tmp_path / "back", "-j", "1")
    assert result.exit_code == 0
    assert (tmp_path / "back" / "music" / "wanderer.wav").exists()


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    [("kick.wav.h5", ".wav", "kick.wav"), ("song.mp3.h5", ".flac", "song.flac"),
     ("take.h5", ".wav", "take.wav"), ("x.HDF5", ".aiff", "x.aiff"), ("self.wav", ".wav", "self.wav"),
     # the source's own ending where it announces the same format; replaced where it does not
     ("loop.aif.h5", ".aiff", "loop.aif"), ("talk.sph.h5", ".nist", "talk.sph"),
     ("take.BWF.h5", ".wav", "take.BWF"), ("voice.opus.h5", ".flac", "voice.flac"),
     ("song.oga.h5", ".flac", "song.flac"), ("big.rf64.h5", ".wav", "big.wav"),
     ("m.mat.h5", ".mat", "m.mat"), ("odd.wav.h5", ".xyz", "odd.xyz")],
)
def test_decoded_names(name, suffix, expected):
    assert decoded_name(name, suffix) == expected


def test_output_never_replaces_an_input(tmp_path):
    folder = tmp_path / "d"
    tone(folder / "song.wav")
    tone(folder / "song.wav.h5", format="WAV")  # audio that happens to be named like an output
    result = run("encode", f"{folder}/", "-o", folder, "--overwrite")
    assert result.exit_code == 2 and "would replace a file of the input" in result.output
    assert sf.info(str(folder / "song.wav.h5")).format == "WAV"  # untouched


def test_decode_never_replaces_its_input(tmp_path):
    folder = tmp_path / "d"
    tone(tmp_path / "src.wav")
    folder.mkdir()
    msfreq.convert.encode_file(tmp_path / "src.wav", folder / "self.wav")
    before = (folder / "self.wav").read_bytes()
    result = run("decode", folder / "self.wav", "-o", folder, "--overwrite")
    assert result.exit_code == 2 and "would replace a file of the input" in result.output
    assert (folder / "self.wav").read_bytes() == before


def test_single_output_file(tmp_path):
    tone(tmp_path / "track.wav", channels=2)
    encoded = run("encode", tmp_path / "track.wav", "-o", tmp_path / "mine.h5")
    assert encoded.exit_code == 0 and (tmp_path / "mine.h5").is_file()
    decoded = run("decode", tmp_path / "mine.h5", "-o", tmp_path / "back.flac")
    assert decoded.exit_code == 0 and "bit-identical to the source" in decoded.output
    assert sf.info(str(tmp_path / "back.flac")).subtype == "PCM_16"


def test_format_alone_keeps_24_bits(tmp_path):
    tone(tmp_path / "deep.wav", subtype="PCM_24")
    run("encode", tmp_path / "deep.wav", "-o", tmp_path / "deep.h5", "--precision", "double")
    result = run("decode", tmp_path / "deep.h5", "-o", tmp_path / "out", "--format", "FLAC")
    assert result.exit_code == 0
    assert "FLAC PCM_24, bit-identical to the source" in result.output
    assert "LOSS" not in result.output


@pytest.mark.parametrize(("content", "loss"), [
    ("24-bit", "LOSS: PCM_16 keeps fewer bits than the file's 24-bit samples"),
    ("16-bit", None),  # 16-bit content in a 24-bit file: 0.7.0 called PCM_16 a loss
])
def test_lower_depth_is_said_on_the_line(tmp_path, content, loss):
    samples = music_like(8000, 8000, 1) * 0.5
    write_audio(tmp_path / "deep.wav", pcm16(samples) if content == "16-bit" else samples, 8000,
                subtype="PCM_24")
    run("encode", tmp_path / "deep.wav", "-o", tmp_path / "deep.h5")
    result = run("decode", tmp_path / "deep.h5", "-o", tmp_path / "out", "--subtype", "PCM_16")
    if loss is None:
        assert "LOSS" not in result.output and "bit-identical to the source" in result.output
        written, _ = sf.read(str(tmp_path / "out" / "deep.wav"))
        assert np.array_equal(written, pcm16(samples)[:, 0])
    else:
        assert loss in result.output


def test_damaged_exact_file_fails_decode_and_verify(tmp_path):
    tone(tmp_path / "a.wav")
    run("encode", tmp_path / "a.wav", "-o", tmp_path / "a.h5")
    with h5py.File(tmp_path / "a.h5", "r+") as handle:  # valid chunk checksums, other numbers
        data = handle["octaves/05"][...]
        data[0, 3, 1, 0] += 2000
        handle["octaves/05"][...] = data
    result = run("decode", tmp_path / "a.h5", "-o", tmp_path / "back.wav")
    assert result.exit_code == 1 and "damaged" in result.output
    assert not (tmp_path / "back.wav").exists()
    assert run("verify", tmp_path / "a.h5").exit_code == 0  # structure and chunks are fine
    checked = run("verify", "--decode", tmp_path / "a.h5")
    assert checked.exit_code == 1 and "SHA-256 mismatch" in checked.output
    with pytest.raises(FormatError, match="damaged"):
        msfreq.convert.verify_decode(tmp_path / "a.h5")


def test_special_files_and_loops_are_reported_and_the_batch_goes_on(tmp_path):
    root = tmp_path / "in"
    tone(root / "good.wav")
    os.mkfifo(root / "x.wav")
    os.symlink("loop", root / "loop")
    os.symlink(root, root / "again")  # a folder link back to the root: followed once
    os.symlink("nowhere", root / "dangling.wav")
    result = run("encode", f"{root}/", "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 1
    assert "x.wav: a FIFO, not a regular file" in result.output
    assert "loop: symlink loop" in result.output
    assert "dangling.wav: broken symlink" in result.output
    assert "again: folder already visited" in result.output
    assert "encoded 1, skipped 0, failed 4" in result.output
    assert (tmp_path / "out" / "good.wav.h5").exists()


def test_unprintable_and_undecodable_names(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    odd = os.fsdecode(b"caf\xe9\nbreak.wav")  # not UTF-8, and a newline
    tone(tmp_path / "plain.wav").rename(root / odd)
    result = run("encode", f"{root}/", "-o", tmp_path / "out", "-j", "1")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("encoded:"))
    assert "caf\\xe9\\nbreak.wav" in line
    encoded = tmp_path / "out" / (odd + ".h5")
    assert msfreq.read_header(encoded).source["name"] == odd
    back = run("decode", encoded, "-o", tmp_path / "back")
    assert back.exit_code == 0 and (tmp_path / "back" / odd).exists()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_crashing_and_hanging_files_do_not_take_the_batch(tmp_path, workers):
    jobs = [Job(tmp_path / name, tmp_path / "out" / name, name, VerifyOptions())
            for name in ("a.wav", "crash.wav", "b.wav", "hang.wav", "enospc.wav", "c.wav")]
    seen = []
    summary = run_batch(Plan(jobs=jobs), workers=workers, on_outcome=seen.append,
                        limit=lambda job: 3.0, task=misbehave)
    by_name = {outcome.job.label: outcome for outcome in seen}
    assert len(seen) == 6
    assert [by_name[name].status for name in ("a.wav", "b.wav", "c.wav")] == ["done"] * 3
    assert "crashed (SIGSEGV)" in by_name["crash.wav"].message
    assert "timed out" in by_name["hang.wav"].message
    assert "No space left on device [ENOSPC]" in by_name["enospc.wav"].message
    assert (summary.done, summary.failed, summary.exit_code) == (3, 3, 1)


def test_stale_partial_files_are_removed_and_counted(tmp_path):
    tone(tmp_path / "in" / "a.wav")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    host = socket.gethostname()
    dead = out / "sub" / f".a.wav.h5.{host}-99999999.x1y2{msfreq.store.TEMP_SUFFIX}"
    alive = out / f".b.wav.h5.{host}-{os.getpid()}.x1y2{msfreq.store.TEMP_SUFFIX}"
    foreign = out / f".c.wav.h5.otherhost-99999999.x1y2{msfreq.store.TEMP_SUFFIX}"
    for path in (dead, alive, foreign):
        path.write_bytes(b"partial")
    result = run("encode", f"{tmp_path / 'in'}/", "-o", out, "-j", "1")
    assert "stale partial files removed 1" in result.output
    assert not dead.exists() and alive.exists() and foreign.exists()


def test_dataset_refuses_mixed_channel_counts(tmp_path):
    msfreq.save(msfreq.encode(np.zeros((8000, 1)), 8000), tmp_path / "mono.h5")
    msfreq.save(msfreq.encode(np.zeros((8000, 2)), 8000), tmp_path / "stereo.h5")
    with pytest.raises(ParameterError, match="1 and 2 channels"):
        msfreq.Dataset(tmp_path)
    assert msfreq.Dataset(tmp_path, channels="mix")[0]["octave_00"].shape[0] == 1
    assert {msfreq.Dataset(tmp_path, channels=[0])[i]["octave_00"].shape[0] for i in (0, 1)} == {1}


def test_display_escapes():
    assert display("a\tb\x07.wav") == "a\\tb\\x07.wav"


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB file system (tmpfs; needs root, as CI has): skipped where it cannot be made."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode:
        pytest.skip("cannot mount a small file system here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_is_one_line_per_file_and_leaves_nothing(tmp_path, small_disk):
    import subprocess
    import sys

    for index in range(3):
        write_audio(tmp_path / "in" / f"s{index}.wav",
                    music_like(10 * 44100, 44100, 2, seed=index) * 0.3, 44100, subtype="PCM_16")
    command = [sys.executable, "-m", "msfreq"]
    encoded = subprocess.run(command + ["encode", f"{tmp_path / 'in'}/", "-o", str(small_disk / "enc"),
                                        "-j", "1"], capture_output=True, text=True, timeout=300)
    assert encoded.returncode == 1
    assert encoded.stderr.count("No space left on device [ENOSPC]") >= 2
    assert "Traceback" not in encoded.stderr and "Exception ignored" not in encoded.stderr
    assert all(line.startswith("failed: ") for line in encoded.stderr.splitlines())
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(msfreq.store.TEMP_SUFFIX)]
    source = tmp_path / "one.wav.h5"
    msfreq.convert.encode_file(tmp_path / "in" / "s0.wav", source)
    outputs = [subprocess.run(command + ["decode", str(source), "-o", str(small_disk / f"{n}.wav")],
                              capture_output=True, text=True, timeout=300) for n in range(2)]
    assert outputs[1].returncode == 1
    assert "write failed (No space left on device)" in outputs[1].stderr
    assert "Traceback" not in outputs[1].stderr
    assert sorted(p.name for p in small_disk.iterdir() if p.is_file()) == ["0.wav"]


def test_inspect_of_a_missing_path_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "nope.h5")])
    assert result.exit_code == 2 and "no such file or folder" in result.output
    assert "duration" not in result.output  # no (empty) table first


def _edited(path):
    """Another take under the same name (another length, so another size)."""
    write_audio(path, pcm16(music_like(12000, 8000, 1, seed=9) * 0.5), 8000)


def _replaced_by_text(path):
    path.write_text("notes, not an msfreq file\n")


@pytest.mark.parametrize(("change", "message"), [
    ("source edited", "exists, encoded from a version of this file of"),
    ("output replaced", "exists and is not a readable msfreq file"),
])
def test_a_stale_output_fails_instead_of_being_skipped(tmp_path, change, message):
    """A batch run again after a source changed (or its output was replaced) kept the old
    output as 'skipped (exists)', exit 0; now that file fails, the others are skipped, exit 1,
    and --overwrite encodes it again."""
    for seed, name in enumerate(["a.wav", "b.wav"]):
        tone(tmp_path / "in" / name, seed=seed)
    assert run("encode", f"{tmp_path / 'in'}/", "-o", tmp_path / "out", "-j", "1").exit_code == 0
    if change == "source edited":
        _edited(tmp_path / "in" / "a.wav")
    else:
        _replaced_by_text(tmp_path / "out" / "a.wav.h5")
    again = run("encode", f"{tmp_path / 'in'}/", "-o", tmp_path / "out", "-j", "1")
    assert again.exit_code == 1
    failures = [line for line in again.output.splitlines() if line.startswith("failed:")]
    assert len(failures) == 1 and "a.wav" in failures[0] and message in failures[0]
    assert "--overwrite" in failures[0] and "skipped: " in again.output  # b.wav
    assert "encoded 0, skipped 1, failed 1" in again.output
    forced = run("encode", f"{tmp_path / 'in'}/", "-o", tmp_path / "out", "-j", "1", "--overwrite")
    assert forced.exit_code == 0
    assert msfreq.read_header(tmp_path / "out" / "a.wav.h5").source["bytes"] == (tmp_path / "in" / "a.wav").stat().st_size


def test_an_output_named_for_another_source_fails(tmp_path):
    tone(tmp_path / "a.wav", seed=1)
    tone(tmp_path / "b.wav", seed=2)
    assert run("encode", tmp_path / "a.wav", "-o", tmp_path / "x.h5").exit_code == 0
    result = run("encode", tmp_path / "b.wav", "-o", tmp_path / "x.h5")
    assert result.exit_code == 1 and "x.h5 exists, encoded from a.wav, not from this file" in result.output
    assert msfreq.read_header(tmp_path / "x.h5").source["name"] == "a.wav"
    assert run("encode", tmp_path / "a.wav", "-o", tmp_path / "x.h5").exit_code == 0  # its own: skipped


@pytest.mark.parametrize("change", ["source re-encoded longer", "output replaced"])
def test_a_stale_decode_output_fails_instead_of_being_skipped(tmp_path, change):
    for seed, name in enumerate(["a.wav", "b.wav"]):
        tone(tmp_path / "in" / name, seed=seed)
    run("encode", f"{tmp_path / 'in'}/", "-o", tmp_path / "enc", "-j", "1")
    assert run("decode", f"{tmp_path / 'enc'}/", "-o", tmp_path / "dec", "-j", "1").exit_code == 0
    if change == "source re-encoded longer":
        _edited(tmp_path / "in" / "a.wav")
        run("encode", tmp_path / "in" / "a.wav", "-o", tmp_path / "enc" / "a.wav.h5", "--overwrite")
        message = "exists, but holds 8,000 samples of 1 channel(s) at 8000 Hz where this file decodes to 12,000"
    else:
        _replaced_by_text(tmp_path / "dec" / "a.wav")
        message = "exists and is not readable audio"
    again = run("decode", f"{tmp_path / 'enc'}/", "-o", tmp_path / "dec", "-j", "1")
    failures = [line for line in again.output.splitlines() if line.startswith("failed:")]
    assert again.exit_code == 1 and len(failures) == 1 and message in failures[0]
    assert "decoded 0, skipped 1, failed 1" in again.output
    assert run("decode", f"{tmp_path / 'enc'}/", "-o", tmp_path / "dec", "-j", "1", "--overwrite").exit_code == 0


@pytest.mark.parametrize(("command", "imported"), [("encode", True), ("verify", False),
                                                   ("verify --decode", True)])
def test_a_batch_that_transforms_loads_its_fft_once_before_its_workers(tmp_path, command, imported):
    """Workers are forked per file as their memory grows: the FFT backend (1 ms to load, or
    scipy.fft's 0.2 s where it falls back) is loaded in the parent first, where the jobs
    transform, so that no worker pays it."""
    import subprocess
    import sys

    source = write_audio(tmp_path / "a.wav", pcm16(music_like(4000, 8000)), 8000)
    msfreq.convert.encode_file(source, tmp_path / "a.h5")
    code = f"""
import sys
from pathlib import Path
from msfreq.batch import Job, Plan, VerifyOptions, run_batch
from msfreq.convert import EncodeOptions
folder = Path({str(tmp_path)!r})
command = {command!r}
if command == "encode":
    job = Job(folder / "a.wav", folder / "b.h5", "a.wav", EncodeOptions())
else:
    job = Job(folder / "a.h5", folder / "a.h5", "a.h5", VerifyOptions(decode=command.endswith("decode")))
import msfreq.fft
assert msfreq.fft._BACKEND is None
summary = run_batch(Plan(jobs=[job]), workers=1)
assert summary.failed == 0, summary
print(msfreq.fft._BACKEND is not None)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(imported)


@pytest.mark.parametrize(("command", "target", "message"), [
    ("encode", "a.wav", "output {} is an input: name a folder, or an .h5 file for a single input"),
    ("encode", "b.wav", "output {} exists and is not a folder: name a folder, or an .h5 file"),
    ("decode", "a.h5", "output {} is an input: name a folder, or an audio file (.wav, .flac ...)"),
])
def test_an_output_that_is_an_input_or_another_kind_of_file_says_so(tmp_path, command, target, message):
    source = write_audio(tmp_path / "a.wav", pcm16(music_like(4000, 8000)), 8000)
    write_audio(tmp_path / "b.wav", pcm16(music_like(4000, 8000)), 8000)
    msfreq.convert.encode_file(source, tmp_path / "a.h5")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    result = run(command, tmp_path / ("a.h5" if command == "decode" else "a.wav"),
                 "-o", tmp_path / target, "--overwrite")
    assert result.exit_code == 2 and message.format(tmp_path / target) in result.output
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
