"""Storage benchmark: file size, CLI time against the in-memory transform, crops per second.

    python benchmarks/storage.py [--quick]

Writes ``benchmarks/STORAGE.md``.  One job, one core for the FFTs; medians of alternating
runs.  Signals: a 3-minute music-like 16-bit stereo mix, a folder of drum one-shots (8, 16
and 24-bit, most under 0.5 s), a 24-bit and a float file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from signals import write_mix  # noqa: E402

import msfreq  # noqa: E402

WORK = HERE / "_work" / "storage"
RATE = 44100


def cli(*args: str) -> float:
    """Run ``msfreq ARGS`` (one job, quiet); return its wall time in seconds."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "msfreq", *args, "-j", "1", "-q", "--overwrite"],
                   check=True)
    return time.perf_counter() - began


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() \
        else path.stat().st_size


def one_shots(folder: Path, count: int) -> Path:
    """Drum hits: decaying noise and pitched thumps, 17 ms to 1.2 s, 8/16/24-bit."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        seconds = float(rng.choice([0.017, 0.08, 0.2, 0.35, 0.45, 1.2]))
        n = int(seconds * RATE)
        t = np.arange(n) / RATE
        decay = np.exp(-t / (seconds / 4))
        pitch = 60 + 200 * rng.random()
        hit = 0.6 * np.sin(2 * np.pi * pitch * t * (1 + np.exp(-t * 30))) + 0.3 * rng.standard_normal(n)
        subtype = ["PCM_U8", "PCM_16", "PCM_16", "PCM_24"][index % 4]
        sf.write(str(folder / f"hit{index:03d}.wav"), 0.8 * hit * decay, RATE, subtype=subtype)
    return folder


def widened(music: Path, path: Path, subtype: str) -> Path:
    """The 16-bit ``music`` in a wider container (24-bit FLAC, float WAV): 16-bit content."""
    samples, rate = sf.read(str(music), dtype="float64")
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def lossy(music: Path, path: Path, format: str, subtype: str) -> Path:
    """``music`` through a lossy codec (soundfile's default quality: about 128 kbit/s for
    MP3), written in pieces (libsndfile's MP3 and Vorbis writers crash on one 3-minute write)."""
    samples, rate = sf.read(str(music), dtype="float32")
    with sf.SoundFile(str(path), "w", rate, samples.shape[1], format=format, subtype=subtype) as out:
        for first in range(0, len(samples), 1 << 15):
            out.write(samples[first : first + (1 << 15)])
    return path


def decoded_verdict(source: Path, out: Path) -> str:
    """How the files in ``out`` decode against ``source``: bit-identical (to the source, or to
    its samples rounded), or the SNR of one file's decode against the source."""
    headers = [msfreq.read_header(p) for p in sorted(out.rglob("*.h5"))]
    exact = sum(1 for h in headers if h.exact)
    if exact == len(headers):
        bits = {h.rounded_bits for h in headers}
        if bits == {None}:
            return "bit-identical"
        snrs = [h.source.get("rounding_snr_db") for h in headers]
        return (f"rounded to {'/'.join(map(str, sorted(bits)))}-bit steps "
                f"(SNR {min(snrs):.1f} dB), then bit-identical") if None not in snrs \
            else "bit-identical (nothing rounded)"
    if source.is_dir():
        return f"{exact} of {len(headers)} exact"
    if headers[0].grid.sample_rate != sf.info(str(source)).samplerate:
        return "resampled, not checked"
    reference, _ = sf.read(str(source), dtype="float32", always_2d=True)
    decoded, _ = msfreq.read_audio(headers[0].path)
    noise = np.sum((decoded - reference) ** 2)
    return f"SNR {10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / noise):.1f} dB"


def sizes_table(music: Path, folder: Path, deep: Path, floats: Path) -> list[str]:
    rows = ["| source | options | bytes per second of audio | ratio to the source | ratio to the 16-bit WAV | encode (s) | decode (s) | decoded |",
            "|---|---|---|---|---|---|---|---|"]
    wav_rate = 2 * 2 * RATE  # bytes per second of 16-bit stereo
    mp3 = lossy(music, WORK / "mix.mp3", "MP3", "MPEG_LAYER_III")
    cases = [(music, "music, 16-bit stereo", opts) for opts in
             ([], ["--compression", "zstd"], ["--compression", "gzip"], ["--compression", "none"],
              ["--keep-bits", "12"])]
    cases += [(mp3, "music as MP3", opts) for opts in
              ([], ["--round-bits", "none"], ["--keep-bits", "16"], ["--round-bits", "24"],
               ["--round-bits", "20"])]
    cases += [(music, "music, 16-bit stereo", ["--sample-rate", "48000", *opts])
              for opts in ([], ["--round-bits", "none"])]
    cases += [(folder, "drum one-shots (8/16/24-bit)", []),
              (folder, "drum one-shots (8/16/24-bit)", ["--compression", "zstd"]),
              (deep, "24-bit stereo", []), (deep, "24-bit stereo", ["--precision", "double"]),
              (deep, "24-bit stereo", ["--round-bits", "16"]),
              (floats, "float stereo", []), (floats, "float stereo", ["--keep-bits", "16"]),
              (floats, "float stereo", ["--round-bits", "24"]),
              (widened(music, WORK / "wide.flac", "PCM_24"), "16-bit content in 24-bit FLAC", []),
              (widened(music, WORK / "wide.wav", "FLOAT"), "16-bit content in float WAV", [])]
    for source, label, options in cases:
        out = WORK / "enc"
        shutil.rmtree(out, ignore_errors=True)
        arguments = [f"{source}/"] if source.is_dir() else [str(source)]
        encode = cli("encode", *arguments, "-o", str(out), *options)
        decode = cli("decode", f"{out}/", "-o", str(WORK / "dec"))
        seconds = sum(msfreq.read_header(p).duration for p in out.rglob("*.h5"))
        rows.append(f"| {label} | {' '.join(options) or 'default'} | {size(out) / seconds:,.0f} | "
                    f"{size(out) / size(source):.2f}x | {size(out) / seconds / wav_rate:.2f}x | "
                    f"{encode:.2f} | {decode:.2f} | {decoded_verdict(source, out)} |")
        print(rows[-1], flush=True)
    return rows


def ratio_table(music: Path, repeats: int) -> list[str]:
    """CLI encode/decode of the 3-minute mix (lz4, the default, and zstd; from WAV and from
    FLAC) against msfreq.encode/decode of its samples, alternating."""
    samples, rate = sf.read(str(music), dtype="float64")
    flac = WORK / "mix.flac"
    sf.write(str(flac), sf.read(str(music), dtype="int16")[0], rate, subtype="PCM_16")
    times: dict[str, list[float]] = {}

    def timed(key: str, seconds: float) -> None:
        times.setdefault(key, []).append(seconds)

    for _ in range(repeats):
        began = time.perf_counter()
        representation = msfreq.encode(samples, rate)
        timed("memory encode", time.perf_counter() - began)
        began = time.perf_counter()
        msfreq.decode(representation)
        timed("memory decode", time.perf_counter() - began)
        del representation
        for codec in ("lz4", "zstd"):
            encoded = str(WORK / f"mix.{codec}.h5")
            timed(f"{codec} encode from FLAC", cli("encode", str(flac), "-o", encoded,
                                                   "--compression", codec))
            timed(f"{codec} encode", cli("encode", str(music), "-o", encoded, "--compression", codec))
            timed(f"{codec} decode", cli("decode", encoded, "-o", str(WORK / "back.wav")))
        timed("start", cli("encode", str(WORK / "tiny.wav"), "-o", str(WORK / "tiny.wav.h5")))
    started = statistics.median(times["start"])
    median = {key: statistics.median(values) for key, values in times.items()}
    rows = ["| | in memory (s) | CLI, lz4 (default) (s) | ratio | CLI, zstd (s) | ratio |",
            "|---|---|---|---|---|---|"]
    for step, memory_step in (("encode", "encode"), ("encode from FLAC", "encode"),
                              ("decode", "decode")):
        memory = median[f"memory {memory_step}"]
        rows.append(f"| {step} | {memory:.2f} | {median[f'lz4 {step}']:.2f} | "
                    f"{median[f'lz4 {step}'] / memory:.2f}x | {median[f'zstd {step}']:.2f} | "
                    f"{median[f'zstd {step}'] / memory:.2f}x |")
    # What no exact CLI can beat: starting, the analysis, and the synthesis that checks the
    # file decodes exactly (an encode); starting and the synthesis (a decode).
    for step, floor in (("encode", started + median["memory encode"] + median["memory decode"]),
                        ("decode", started + median["memory decode"])):
        memory = median[f"memory {step}"]
        rows.append(f"| {step}: floor (start-up + {'analysis + check synthesis' if step == 'encode' else 'synthesis'}, "
                    f"no I/O) | {memory:.2f} | {floor:.2f} | {floor / memory:.2f}x | | |")
    return rows + ["", f"Start-up (encode of a 1-second file, imports and worker included, msfreq's "
                       f"modules compiled as an install leaves them; median): {started:.2f} s. "
                       "The floor rows add the in-memory times to it: what an exact CLI "
                       "costs with free reading, compression, hashing and writing."]


def crops_table(music: Path, count: int) -> list[str]:
    rows = ["| compression | random 2-second crops per second |", "|---|---|"]
    for compression in ("lz4", "zstd", "gzip", "none"):
        path = WORK / f"crops_{compression}.h5"
        cli("encode", str(music), "-o", str(path), "--compression", compression)
        dataset = msfreq.Dataset(path, crop_seconds=2.0, seed=0)
        dataset[0]
        began = time.perf_counter()
        for epoch in range(count):
            dataset.set_epoch(epoch)
            dataset[0]
        rows.append(f"| {compression} | {count / (time.perf_counter() - began):.0f} |")
        dataset.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short signals (checks the script)")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    # The CLI starts as an installed package does, from compiled modules (pip compiles them
    # on install; an editable install under PYTHONDONTWRITEBYTECODE compiles msfreq's 20
    # modules at every start, 40-50 ms measured).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "msfreq")],
                   check=True)
    seconds = 20.0 if args.quick else 180.0
    music = write_mix(WORK / "mix.wav", seconds, RATE, 2)
    deep = write_mix(WORK / "deep.flac", seconds / 3, RATE, 2, subtype="PCM_24")
    floats = write_mix(WORK / "floats.wav", seconds / 3, RATE, 2, subtype="FLOAT")
    folder = one_shots(WORK / "shots", 20 if args.quick else 60)
    sf.write(str(WORK / "tiny.wav"), np.zeros(RATE), RATE, subtype="PCM_16")
    lines = ["# Storage benchmark", "", f"`python benchmarks/storage.py`, msfreq {msfreq.__version__}, "
             f"{seconds:.0f}-second music-like mix (benchmarks/signals.py), one job.", "",
             "## Size and time by option", ""]
    lines += sizes_table(music, folder, deep, floats)
    lines += ["", "## CLI against the in-memory transform (3-minute 16-bit stereo, medians of 3)", ""]
    lines += ratio_table(music, 1 if args.quick else 3)
    lines += ["", "## Dataset crops (all bands, one process)", ""]
    lines += crops_table(music, 20 if args.quick else 200)
    (HERE / "STORAGE.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
