"""The documentation runs: every Python snippet of README.md and docs/FORMAT.md, in order,
against files made as the text says."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import music_like, pcm16

import msfreq
from msfreq.convert import encode_file

ROOT = Path(__file__).resolve().parent.parent


def snippets(name: str) -> list[str]:
    text = (ROOT / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """track.wav (40 s stereo), track.wav.h5, song.mp3 (3 s) and corpus/ (three encoded stereo
    tracks)."""
    monkeypatch.chdir(tmp_path)
    rate = 44100
    sf.write("track.wav", pcm16(music_like(40 * rate, rate, 2, seed=1) * 0.5), rate, subtype="PCM_16")
    encode_file(Path("track.wav"), Path("track.wav.h5"))
    with sf.SoundFile("song.mp3", "w", rate, 2, format="MP3", subtype="MPEG_LAYER_III") as song:
        for second in range(3):  # in pieces: libsndfile's MP3 writer crashed on long writes
            song.write(music_like(rate, rate, 2, seed=second) * 0.5)
    Path("corpus").mkdir()
    for index in range(3):
        x = pcm16(music_like(3 * rate, rate, 2, seed=index) * 0.5)
        msfreq.save(msfreq.encode(x, rate), Path("corpus") / f"t{index}.wav.h5")
    return tmp_path


@pytest.mark.parametrize("document", ["README.md", "docs/FORMAT.md"])
def test_snippets_run(workspace, document, capsys):
    found = snippets(document)
    assert found, f"{document} has no Python snippet"
    namespace: dict = {}
    for code in found:
        if "import torch" in code and importlib.util.find_spec("torch") is None:
            continue  # the optional extra; make test-torch installs it and runs this one too
        exec(compile(code, document, "exec"), namespace)  # noqa: S102
    if "bands" in namespace:  # the torch snippet ran
        assert tuple(namespace["image"].shape)[1:3] == (1, 480)
        assert float((namespace["batch_back"] - namespace["batch"]).abs().max()) < 1e-5
    if document == "README.md":
        assert namespace["images"][0].shape == (1, 480, 1024)
        start, stop = (float(value) for value in capsys.readouterr().out.split()[:2])
        assert start == pytest.approx(28 * 46080 / 44100) and stop == pytest.approx(31 * 46080 / 44100)
        assert np.asarray(namespace["audio"]).shape == (40 * 44100, 2)
        # read_audio: the source's samples, bit for bit, whole and in part
        source, _ = sf.read("track.wav", always_2d=True)
        assert np.array_equal(namespace["samples"], source)
        assert np.array_equal(namespace["part"], source[30 * 44100 : 32 * 44100])
        report = namespace["report"]  # --round-bits 16 on an MP3: exact to the rounded samples
        assert (report.exact, report.rounded_bits) == (True, 16) and 60 < report.rounding_snr_db < 100


def test_api_reference_is_current():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(ROOT / "docs" / "make_api.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
