"""The benchmark suite: msfreq against librosa and Essentia, side by side, in one run.

    python benchmarks/run.py [--quick] [--no-hour] [--repeats N] [--compare-repeats N]

Writes ``benchmarks/RESULTS.md`` and ``benchmarks/results.png``.  Every comparison runs the
tools alternately on the same signal and quotes the median of ``--compare-repeats`` runs (10)
in memory, ``--repeats`` (5) through the CLI; peak
memory is measured in a separate process per tool.  The scaling runs go up to a 60-minute
file (``--no-hour`` stops at 30 minutes); ``--quick`` shrinks everything (for checking the
script itself).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

# one core for every tool (the comparison is per core); set before numpy is imported
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from signals import music_mix, write_mix  # noqa: E402
from tools import TOOLS  # noqa: E402

import msfreq  # noqa: E402

WORK = HERE / "_work"
RATE = 44100


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    noise = float(np.sum((reference - estimate) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(reference**2)) / noise)


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "msfreq": msfreq.__version__}
    for package in ("scipy", "h5py", "librosa", "essentia"):
        try:
            module = __import__(package)
            versions[package] = getattr(module, "__version__", "?")
        except ImportError:
            versions[package] = "not installed"
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": round(memory, 1),
            "system": platform.platform(), "versions": versions}


def available(name: str) -> str | None:
    """None if the tool can run here, else the reason."""
    module = {"librosa": "librosa", "Essentia NSGCQ": "essentia"}.get(name)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError as error:
        return f"not installed ({error})"
    return None


def _swapped(names: list[str], first: str, second: str) -> list[str]:
    """``names`` with ``first`` and ``second`` (where both are present) trading places."""
    if first not in names or second not in names:
        return names
    out = list(names)
    i, j = out.index(first), out.index(second)
    out[i], out[j] = out[j], out[i]
    return out


def compare_in_memory(seconds: float, repeats: int) -> tuple[list[dict], Path]:
    """Encode/decode every tool on one mono signal, alternately; medians of ``repeats``."""
    x = music_mix(seconds, RATE, 1)[:, 0]
    path = WORK / "signal.npy"
    np.save(path, x)
    prepared, rows = {}, {}
    for name, tool in TOOLS.items():
        reason = available(name)
        rows[name] = {"tool": name, "skipped": reason, "encode": [], "decode": []}
        if reason is None:
            prepared[name] = tool(x, RATE)
    for encode, decode, _count in prepared.values():
        decode(encode())  # one untimed warm-up: plans, filters and JIT caches are built
    names = list(prepared)
    for repeat in range(repeats):
        # msfreq and the floor run back to back, in turn first and second (the first of the two
        # follows the previous repeat's librosa run and its gigabyte of freed memory)
        order = names if repeat % 2 == 0 else _swapped(names, "msfreq", "FFT floor")
        for name in order:
            encode, decode, _count = prepared[name]
            began = time.perf_counter()
            coefficients = encode()
            middle = time.perf_counter()
            y = decode(coefficients)
            end = time.perf_counter()
            rows[name]["encode"].append(middle - began)
            rows[name]["decode"].append(end - middle)
            rows[name]["snr"] = snr_db(x, np.asarray(y, dtype=np.float64)[: x.size])
            count = prepared[name][2]
            rows[name]["coefficients_per_sample"] = (count["n"] if isinstance(count, dict) else count) / x.size
            del coefficients, y
    for name, row in rows.items():
        if row["skipped"]:
            continue
        row["encode_s"] = statistics.median(row["encode"])
        row["decode_s"] = statistics.median(row["decode"])
        measured = subprocess.run(
            [sys.executable, str(HERE / "measure.py"), name, str(path), str(RATE)],
            capture_output=True, text=True, timeout=1800,
        )
        try:
            row.update(json.loads(measured.stdout.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            row["peak_mb"] = float("nan")
            row["baseline_mb"] = float("nan")
    return list(rows.values()), path


_WRAPPER = """
import json, os, subprocess, sys, time
from pathlib import Path

def descendants(root):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found

def high_water(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

t = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
peak = 0.0
while process.poll() is None:
    peak = max([peak] + [high_water(pid) for pid in descendants(process.pid)])
    time.sleep(0.05)
stderr = process.stderr.read()
e = time.perf_counter() - t
print(json.dumps({"seconds": e, "peak_mb": peak, "code": process.returncode,
                  "stderr": stderr.decode()[-500:]}))
"""


def timed_command(arguments: list[str]) -> dict:
    """Run a command in a child process; return its wall time and the peak resident memory
    of the largest process in its tree (the CLI converts in worker processes), sampled every
    50 ms from each process's high-water mark (VmHWM)."""
    result = subprocess.run([sys.executable, "-c", _WRAPPER, *arguments], capture_output=True,
                            text=True, timeout=7200)
    return json.loads(result.stdout.strip().splitlines()[-1])


def msfreq_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "msfreq", *arguments]


def cli_runs(seconds: float, repeats: int) -> dict:
    """File to file through the CLI, stereo 16-bit WAV, one job."""
    source = write_mix(WORK / "cli.wav", seconds, RATE, 2)
    encodes, decodes = [], []
    for _ in range(repeats):
        encodes.append(timed_command(msfreq_command("encode", str(source), "-o", str(WORK / "cli_enc"),
                                                    "-j", "1", "-q", "--overwrite")))
        decodes.append(timed_command(msfreq_command("decode", str(WORK / "cli_enc" / "cli.wav.h5"), "-o",
                                                    str(WORK / "cli_dec"), "-j", "1", "-q", "--overwrite")))
    encoded = WORK / "cli_enc" / "cli.wav.h5"
    sizes = {}
    for compression in ("none", "gzip", "zstd", "lz4"):
        target = WORK / f"size_{compression}"
        run = timed_command(msfreq_command("encode", str(source), "-o", str(target), "-j", "1", "-q",
                                           "--overwrite", "--compression", compression))
        sizes[compression] = {"bytes": (target / "cli.wav.h5").stat().st_size, "seconds": run["seconds"]}
    return {
        "seconds": seconds,
        "encode_s": statistics.median(r["seconds"] for r in encodes),
        "decode_s": statistics.median(r["seconds"] for r in decodes),
        "wav_bytes": source.stat().st_size,
        "h5_bytes": encoded.stat().st_size,
        "sizes": sizes,
    }


def _round_trip(source: Path, name: str) -> tuple[dict, dict, Path]:
    """Encode ``source`` into WORK/<name>_enc and decode it into WORK/<name>_dec through the
    CLI, one job; return both runs (time, peak memory) and the decoded file."""
    out = WORK / f"{name}_enc"
    encoded = timed_command(msfreq_command("encode", str(source), "-o", str(out), "-j", "1", "-q",
                                           "--overwrite"))
    decoded = timed_command(msfreq_command("decode", str(out / (source.name + ".h5")), "-o",
                                           str(WORK / f"{name}_dec"), "-j", "1", "-q", "--overwrite"))
    return encoded, decoded, WORK / f"{name}_dec" / source.name


def scaling(lengths: list[float]) -> list[dict]:
    """CLI encode and decode of stereo files of growing length: time and peak memory."""
    rows = []
    for seconds in lengths:
        source = write_mix(WORK / f"scale_{int(seconds)}.wav", seconds, RATE, 2)
        encoded, decoded, back = _round_trip(source, "scale")
        identical = _identical(source, back)
        rows.append({"seconds": seconds, "encode": encoded, "decode": decoded, "identical": identical})
        if seconds > 120:
            back.unlink(missing_ok=True)
            source.unlink(missing_ok=True)
    return rows


#: Sources at other rates, depths and channel counts: (label, rate, channels, subtype,
#: suffix, seconds); the block path's margins span 66 s whatever the rate, and 24-bit sources
#: are computed in double precision.
FORMATS = [
    ("96 kHz stereo 24-bit FLAC", 96000, 2, "PCM_24", ".flac", 180.0),
    ("192 kHz stereo 24-bit FLAC", 192000, 2, "PCM_24", ".flac", 120.0),
    ("48 kHz 6-channel 16-bit FLAC", 48000, 6, "PCM_16", ".flac", 300.0),
]


def formats(quick: bool) -> list[dict]:
    """CLI encode and decode of the FORMATS sources, one job: time, peak memory, identity."""
    rows = []
    for label, rate, channels, subtype, suffix, seconds in FORMATS:
        seconds = min(seconds, 20.0) if quick else seconds
        source = write_mix(WORK / f"format_{rate}_{channels}{suffix}", seconds, rate, channels, subtype)
        encoded, decoded, back = _round_trip(source, "format")
        rows.append({"label": label, "seconds": seconds, "samples": seconds * rate * channels,
                     "encode": encoded, "decode": decoded, "identical": _identical(source, back)})
        for path in (source, back, WORK / "format_enc" / (source.name + ".h5")):
            path.unlink(missing_ok=True)
    return rows


def _identical(a: Path, b: Path) -> bool:
    import soundfile as sf

    with sf.SoundFile(str(a)) as fa, sf.SoundFile(str(b)) as fb:
        if fa.frames != fb.frames or fa.channels != fb.channels:
            return False
        while True:
            x = fa.read(1 << 20, dtype="int32")
            y = fb.read(1 << 20, dtype="int32")
            if x.size == 0:
                return y.size == 0
            if not np.array_equal(x, y):
                return False


def batch(count: int) -> list[dict]:
    folder = WORK / "clips"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    import soundfile as sf

    for index in range(count):
        sf.write(str(folder / f"clip{index:03d}.wav"), music_mix(1.0, RATE, 2, start=index * RATE), RATE,
                 subtype="PCM_16")
    rows = []
    for jobs in (1, 2):
        out = WORK / f"clips_enc_{jobs}"
        shutil.rmtree(out, ignore_errors=True)
        run = timed_command(msfreq_command("encode", str(folder), "-o", str(out), "-j", str(jobs), "-q"))
        rows.append({"jobs": jobs, "files": count, "seconds": run["seconds"],
                     "files_per_s": count / run["seconds"]})
    return rows


def crops(short: Path, long: Path, count: int) -> list[dict]:
    rows = []
    for label, path in (("short", short), ("long", long)):
        header = msfreq.read_header(path)
        dataset = msfreq.Dataset(path, crop_seconds=2.0, seed=0)
        dataset[0]  # open the file once
        began = time.perf_counter()
        for epoch in range(count):
            dataset.set_epoch(epoch)
            dataset[0]
        elapsed = time.perf_counter() - began
        rows.append({"file": label, "duration_s": header.duration, "crops_per_s": count / elapsed,
                     "ms_per_crop": 1000 * elapsed / count})
    return rows


def plot(memory_rows: list[dict], scale_rows: list[dict], picture: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110)
    done = [row for row in memory_rows if not row.get("skipped")]
    names = [row["tool"] for row in done]
    positions = np.arange(len(names))
    left.bar(positions - 0.2, [row["encode_s"] for row in done], 0.4, label="encode")
    left.bar(positions + 0.2, [row["decode_s"] for row in done], 0.4, label="decode")
    left.set_xticks(positions, names, rotation=20)
    left.set_ylabel("seconds (median, one core)")
    left.set_yscale("log")
    left.set_title("same signal, 48 bins/octave, 10 octaves")
    left.legend()
    minutes = [row["seconds"] / 60 for row in scale_rows]
    right.plot(minutes, [row["encode"]["seconds"] for row in scale_rows], "o-", label="encode time (s)")
    right.plot(minutes, [row["decode"]["seconds"] for row in scale_rows], "s-", label="decode time (s)")
    right.set_xlabel("minutes of 44.1 kHz stereo audio")
    right.set_ylabel("seconds")
    twin = right.twinx()
    twin.plot(minutes, [row["encode"]["peak_mb"] for row in scale_rows], "o--", color="C2",
              label="encode peak MB")
    twin.plot(minutes, [row["decode"]["peak_mb"] for row in scale_rows], "s--", color="C3",
              label="decode peak MB")
    twin.set_ylabel("peak resident memory (MB)")
    twin.set_ylim(0, max(1100, 1.1 * max(row["decode"]["peak_mb"] for row in scale_rows)))
    right.set_title("msfreq CLI: time linear, memory flat")
    lines = right.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    right.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(picture)


def write_results(path: Path, info: dict, compare: list[dict], cli: dict, scale: list[dict],
                  format_rows: list[dict], batches: list[dict], crop_rows: list[dict],
                  total: float) -> None:
    ours = next(row for row in compare if row["tool"] == "msfreq")
    floor = next(row for row in compare if row["tool"] == "FFT floor")

    def paired(step: str) -> float:
        return statistics.median(a / b for a, b in zip(ours[step], floor[step], strict=True))

    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {total / 60:.1f} min.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['system']}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".  ",
        "Every tool runs on one core (BLAS/OpenMP threads 1, scipy.fft workers 1). Timings are "
        "medians of alternating runs after one untimed warm-up run of each tool (which builds "
        "plans, filters and JIT caches); peak memory is measured in a process of its own per tool "
        "(resident set size after loading the signal and preparing, and at the peak).",
        "",
        f"## In memory: the same {compare[0]['signal_seconds']:.0f} s mono music-like signal, 44.1 kHz, "
        "48 bins/octave, 10 octaves from C0",
        "",
        "| tool | encode (s) | decode (s) | encode vs msfreq | decode vs msfreq | SNR (dB) | coefficients / sample | peak memory (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in compare:
        if row["skipped"]:
            lines.append(f"| {row['tool']} | skipped: {row['skipped']} | | | | | | |")
            continue
        snr = "exact" if row["snr"] == float("inf") else f"{row['snr']:.1f}"
        if row["tool"] == "FFT floor":
            snr = "(not a transform)"
        lines.append(
            f"| {row['tool']} | {row['encode_s']:.3f} | {row['decode_s']:.3f} | "
            f"{row['encode_s'] / ours['encode_s']:.2f}x | {row['decode_s'] / ours['decode_s']:.2f}x | "
            f"{snr} | {row['coefficients_per_sample']:.3f} | "
            f"{row.get('peak_mb', float('nan')):.0f} (baseline {row.get('baseline_mb', float('nan')):.0f}) |"
        )
    lines += [
        "",
        f"msfreq encode = **{paired('encode'):.2f}x** the FFT floor, decode = "
        f"**{paired('decode'):.2f}x** (issue #14's goal: <= 1.0x, stretch 0.7x; medians of the "
        f"ratios of {len(ours['encode'])} repeats, in each of which the two ran back to back, in turn first and second; "
        f"the medians of the times above give {ours['encode_s'] / floor['encode_s']:.2f}x and "
        f"{ours['decode_s'] / floor['decode_s']:.2f}x). "
        "The floor is the FFT work of msfreq's layout done with plain scipy calls: one float32 "
        "real FFT of the padded signal and batched complex64 inverse FFTs with the shapes of the "
        "octave bands (synthesis: those forward FFTs and one inverse real FFT); msfreq computes "
        "the residual bands besides. Gaborator 1.7 (C++, pffft, float32), measured elsewhere on "
        "this machine class on a 214-s channel: analysis 1.25x and synthesis 2.4x the same "
        "reference.",
    ]
    for other in ("librosa", "Essentia NSGCQ"):
        row = next((r for r in compare if r["tool"] == other and not r["skipped"]), None)
        if row:
            target = " (target <= 0.5x)" if other == "librosa" else ""
            lines.append(
                f"msfreq encode takes **{ours['encode_s'] / row['encode_s']:.3f}x** the time of {other}'s "
                f"forward transform and decode **{ours['decode_s'] / row['decode_s']:.3f}x** its inverse"
                f"{target}."
            )
    seconds_audio = cli["seconds"]
    lines += [
        "",
        f"## File to file: the CLI on a {seconds_audio:.0f} s stereo 16-bit WAV (one job)",
        "",
        "| step | seconds | realtime factor |",
        "|---|---|---|",
        f"| encode (default: lz4, levels and correction codes, checked exact) | {cli['encode_s']:.2f} | {seconds_audio / cli['encode_s']:.0f}x |",
        f"| decode | {cli['decode_s']:.2f} | {seconds_audio / cli['decode_s']:.0f}x |",
        "",
        "Size on disk (default precision, exact) and encode time by compression:",
        "",
        "| compression | bytes per second of audio | ratio to 16-bit WAV | encode (s) |",
        "|---|---|---|---|",
        f"| 16-bit WAV | {cli['wav_bytes'] / seconds_audio:,.0f} | 1.00 | |",
    ]
    for name, size in cli["sizes"].items():
        lines.append(f"| {name} | {size['bytes'] / seconds_audio:,.0f} | {size['bytes'] / cli['wav_bytes']:.2f} | "
                     f"{size['seconds']:.2f} |")
    lines += [
        "",
        "## Scaling with length: CLI, 44.1 kHz stereo 16-bit WAV, one job",
        "",
        "| length | encode (s) | encode peak (MB) | decode (s) | decode peak (MB) | "
        "million samples/s per core (encode / decode) | 16-bit identical |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in scale:
        length = f"{row['seconds'] / 60:g} min" if row["seconds"] >= 60 else f"{row['seconds']:g} s"
        samples = row["seconds"] * RATE * 2  # stereo
        lines.append(
            f"| {length} | {row['encode']['seconds']:.1f} | {row['encode']['peak_mb']:.0f} | "
            f"{row['decode']['seconds']:.1f} | {row['decode']['peak_mb']:.0f} | "
            f"{samples / row['encode']['seconds'] / 1e6:.1f} / {samples / row['decode']['seconds'] / 1e6:.1f} | "
            f"{'yes' if row['identical'] else 'NO'} |"
        )
    lines += [
        "",
        "## Other rates, depths and channel counts: CLI, one job",
        "",
        "| source | length | encode (s) | encode peak (MB) | decode (s) | decode peak (MB) | "
        "real-time factor (encode / decode) | identical |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in format_rows:
        lines.append(
            f"| {row['label']} | {row['seconds']:g} s | {row['encode']['seconds']:.1f} | "
            f"{row['encode']['peak_mb']:.0f} | {row['decode']['seconds']:.1f} | {row['decode']['peak_mb']:.0f} | "
            f"{row['seconds'] / row['encode']['seconds']:.1f}x / {row['seconds'] / row['decode']['seconds']:.1f}x | "
            f"{'yes' if row['identical'] else 'NO'} |"
        )
    lines += [
        "",
        "## Batches: a folder of 1-second stereo clips",
        "",
        "| jobs | files | seconds | files per second |",
        "|---|---|---|---|",
    ]
    for row in batches:
        lines.append(f"| {row['jobs']} | {row['files']} | {row['seconds']:.1f} | {row['files_per_s']:.1f} |")
    lines += [
        "",
        "## Loading for learning: random 2-second crops (all bands) with `msfreq.Dataset`",
        "",
        "| file | duration | crops per second | ms per crop |",
        "|---|---|---|---|",
    ]
    for row in crop_rows:
        lines.append(f"| {row['file']} | {row['duration_s']:.0f} s | {row['crops_per_s']:.0f} | {row['ms_per_crop']:.2f} |")
    lines += ["", "![benchmark plots](results.png)", ""]
    path.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-hour", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the CLI runs")
    parser.add_argument("--compare-repeats", type=int, default=10,
                        help="repeats of the in-memory comparison (the paired ratios' median)")
    args = parser.parse_args()
    began = time.perf_counter()
    WORK.mkdir(exist_ok=True)
    info = machine()
    signal_seconds = 20.0 if args.quick else 200.0
    print(f"in-memory comparison on {signal_seconds:.0f} s ...", flush=True)
    compare, _ = compare_in_memory(signal_seconds, args.compare_repeats)
    for row in compare:
        row["signal_seconds"] = signal_seconds
        print("  ", {k: v for k, v in row.items() if k not in ("encode", "decode")}, flush=True)
    print("CLI ...", flush=True)
    cli = cli_runs(20.0 if args.quick else 200.0, args.repeats)
    lengths = [10.0, 60.0] if args.quick else [10.0, 60.0, 300.0, 1800.0]
    if not (args.quick or args.no_hour):
        lengths.append(3600.0)
    print(f"scaling {lengths} ...", flush=True)
    scale = scaling(lengths)
    for row in scale:
        print("  ", row["seconds"], row["encode"]["seconds"], row["encode"]["peak_mb"],
              row["decode"]["seconds"], row["decode"]["peak_mb"], flush=True)
    print("formats ...", flush=True)
    format_rows = formats(args.quick)
    for row in format_rows:
        print("  ", row["label"], row["encode"]["seconds"], row["encode"]["peak_mb"],
              row["decode"]["seconds"], row["decode"]["peak_mb"], row["identical"], flush=True)
    print("batch ...", flush=True)
    batches = batch(20 if args.quick else 100)
    print("crops ...", flush=True)
    longest = max(scale, key=lambda row: row["seconds"])
    crop_rows = crops(WORK / "scale_enc" / "scale_10.wav.h5",
                      WORK / "scale_enc" / f"scale_{int(longest['seconds'])}.wav.h5", 50 if args.quick else 300)
    total = time.perf_counter() - began
    write_results(HERE / "RESULTS.md", info, compare, cli, scale, format_rows, batches, crop_rows,
                  total)
    plot(compare, scale, HERE / "results.png")
    print(f"wrote {HERE / 'RESULTS.md'} in {total / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
