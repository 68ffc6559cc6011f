"""Cluster benchmark: one folder through ``-j 2`` and through a 2-worker Dask LocalCluster.

    python benchmarks/cluster.py [--quick]

Writes ``benchmarks/CLUSTER.md``: files per second for 100 one-second clips and for 20
twelve-second clips, and the overhead of the cluster path against the local process pool.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from signals import write_mix  # noqa: E402

from msfreq.batch import plan_encode, run_batch  # noqa: E402

WORK = HERE / "_work" / "cluster"


def timed(plan_folder: Path, out: Path, **how) -> float:
    shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    summary = run_batch(plan_encode([f"{plan_folder}/"], out), **how)
    elapsed = time.perf_counter() - began
    assert summary.failed == 0, summary
    return elapsed


def main() -> int:
    import distributed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    sets = [("100 clips of 1 s", 10 if args.quick else 100, 1.0),
            ("20 clips of 12 s", 4 if args.quick else 20, 12.0)]
    lines = ["# Cluster benchmark", "", "`python benchmarks/cluster.py`: the same folder encoded "
             "with `-j 2` (local worker processes) and on a Dask LocalCluster of 2 single-thread "
             "worker processes (loopback), on this 2-core machine.", "",
             "| folder | -j 2 (files/s) | cluster (files/s) | cluster overhead |", "|---|---|---|---|"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        for label, count, seconds in sets:
            folder = WORK / label.replace(" ", "_")
            folder.mkdir(parents=True)
            for index in range(count):
                write_mix(folder / f"c{index:03d}.wav", seconds, 44100, 2)
            local = timed(folder, WORK / "out_local", workers=2)
            remote = timed(folder, WORK / "out_dask", executor=client)
            lines.append(f"| {label} | {count / local:.1f} | {count / remote:.1f} | "
                         f"{100 * (remote / local - 1):+.0f} % |")
            print(lines[-1], flush=True)
    (HERE / "CLUSTER.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
