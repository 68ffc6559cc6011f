"""Batches on a Dask cluster: a real LocalCluster of two worker processes, on loopback."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from helpers import music_like, pcm16, write_audio

import msfreq
from msfreq.batch import plan_decode, plan_encode, run_batch
from msfreq.cli import cli

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as local:
        with distributed.Client(local) as client:
            yield local, client


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "in"
    for index in range(6):
        write_audio(root / f"t{index}.wav", pcm16(music_like(3 * 8000, 8000, 2, seed=index) * 0.5), 8000)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 50)
    return root


def test_cluster_gives_what_the_local_run_gives(cluster, folder, tmp_path):
    _, client = cluster
    outcomes = []
    summary = run_batch(plan_encode([f"{folder}/"], tmp_path / "dask"), executor=client,
                        on_outcome=outcomes.append)
    assert (summary.done, summary.failed, summary.exit_code) == (6, 1, 1)
    failed = [outcome.message for outcome in outcomes if outcome.status == "failed"]
    assert len(failed) == 1 and "broken.wav" in failed[0]
    run_batch(plan_encode([f"{folder}/"], tmp_path / "local"), workers=1)
    for path in sorted((tmp_path / "local").glob("*.h5")):
        ours = msfreq.decode(msfreq.load(tmp_path / "dask" / path.name))
        np.testing.assert_array_equal(ours, msfreq.decode(msfreq.load(path)))
    again = run_batch(plan_encode([f"{folder}/"], tmp_path / "dask"), executor=client)
    assert (again.done, again.skipped) == (0, 6)  # resume: the same skip rule
    decoded = run_batch(plan_decode([f"{tmp_path / 'dask'}/"], tmp_path / "back"), executor=client)
    assert decoded.done == 6
    for index in range(6):
        original = sf.read(str(folder / f"t{index}.wav"), dtype="int16")[0]
        np.testing.assert_array_equal(sf.read(str(tmp_path / "back" / f"t{index}.wav"), dtype="int16")[0],
                                      original)


def test_a_worker_killed_mid_batch(cluster, tmp_path):
    local, client = cluster
    root = tmp_path / "long"
    for index in range(6):
        write_audio(root / f"l{index}.wav", pcm16(music_like(40 * 8000, 8000, 2, seed=index) * 0.5), 8000)
    pids = list(client.run(os.getpid).values())

    def kill_one() -> None:
        time.sleep(1.5)
        os.kill(pids[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_one)
    killer.start()
    summary = run_batch(plan_encode([f"{root}/"], tmp_path / "out"), executor=client)
    killer.join()
    assert (summary.done, summary.failed) == (6, 0)
    for path in (tmp_path / "out").glob("*.h5"):
        assert msfreq.read_header(path).exact is True
    client.wait_for_workers(2, timeout=60)
    again = run_batch(plan_encode([f"{root}/"], tmp_path / "out"), executor=client)
    assert again.skipped == 6  # and what the killed worker left is gone
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"l{i}.wav.h5" for i in range(6)]


def test_cli_scheduler_option(cluster, folder, tmp_path):
    local, _ = cluster
    result = CliRunner().invoke(cli, ["encode", f"{folder}/", "-o", str(tmp_path / "out"),
                                      "--scheduler", local.scheduler_address])
    assert result.exit_code == 1, result.output
    assert "encoded 6, skipped 0, failed 1" in result.output
    assert result.output.count("encoded: ") == 6


def test_unreachable_scheduler_is_one_line(tmp_path, folder):
    result = CliRunner().invoke(cli, ["encode", f"{folder}/", "-o", str(tmp_path / "out"),
                                      "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2 and "cannot reach the Dask scheduler" in result.output


def test_ctrl_c_cancels_the_cluster_batch(cluster, tmp_path):
    import subprocess
    import sys

    local, _ = cluster
    root = tmp_path / "many"
    for index in range(12):
        write_audio(root / f"m{index:02d}.wav", pcm16(music_like(30 * 8000, 8000, 2, seed=index) * 0.5), 8000)
    process = subprocess.Popen(
        [sys.executable, "-m", "msfreq", "encode", f"{root}/", "-o", str(tmp_path / "out"),
         "--scheduler", local.scheduler_address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # until the first file is done
        if (tmp_path / "out").exists() and list((tmp_path / "out").glob("*.h5")):
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "(interrupted)" in stdout and "Traceback" not in stderr
    for path in (tmp_path / "out").glob("*.h5"):
        assert msfreq.read_header(path).exact is True  # whatever was finished is whole
