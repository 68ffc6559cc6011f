"""msfreq.torch on a GPU beside torch.stft: analysis, synthesis, exactness, in one run.

    python benchmarks/gpu.py [--output benchmarks/GPU.md] [--quick] [--device cuda]

Batches of 10-s mono clips at 44.1 kHz, msfreq's default grid (48 bins per octave from C0).
Every figure is the median of ``--repeats`` timed runs after warm-up, timed with CUDA events
around the whole call (the caller's view).  "graph" rows replay the same call captured in a
CUDA graph (one launch for all kernels: what a training loop with a fixed batch shape can
get).  Without a GPU it prints the device it found and exits cleanly (``--device cpu`` runs
the same table on the CPU, to check the script).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    print("torch is not installed: pip install 'msfreq[torch]'")
    sys.exit(0)

import msfreq
from msfreq.torch import Transform, analyze, synthesize

RATE = 44100
CLIP_SECONDS = 10.0


def timer(device: torch.device):
    """Return ``measure(call, repeats) -> median seconds`` for ``device``."""
    if device.type == "cuda":
        def measure(call, repeats):
            times = []
            for _ in range(repeats):
                start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                call()
                stop.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(stop) / 1e3)
            return statistics.median(times)
    else:
        def measure(call, repeats):
            times = []
            for _ in range(repeats):
                begin = time.perf_counter()
                call()
                times.append(time.perf_counter() - begin)
            return statistics.median(times)
    return measure


def graphed(call, device: torch.device):
    """``call`` captured in a CUDA graph (its outputs are reused buffers), or None off CUDA."""
    if device.type != "cuda":
        return None
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            call()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call()
    return graph.replay


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    reference, estimate = reference.double(), estimate.double()
    noise = float(((reference - estimate) ** 2).sum())
    return float("inf") if noise == 0 else 10 * np.log10(float((reference**2).sum()) / noise)


def run(device: torch.device, batches: list[int], repeats: int, seconds: float,
        compiled: bool = False, span: int = 1) -> list[str]:
    measure = timer(device)
    samples = int(seconds * RATE)
    transform = Transform(RATE, span=span).to(device)
    window = torch.hann_window(2048, device=device)
    lines = [
        f"Device: **{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}**, "
        f"torch {torch.__version__}, msfreq {msfreq.__version__}; clips of {seconds:g} s at "
        f"{RATE} Hz (mono), 48 bins per octave from C0 ({transform.grid.n_octaves} octaves), "
        f"span {span}, complex64; medians of {repeats} runs after warm-up.",
        "",
        "| batch | audio | msfreq analysis | synthesis | analysis, graph | synthesis, graph "
        "| torch.stft 2048/512 | istft | analysis / stft | synthesis / stft | samples/s (analysis) "
        "| round trip SNR |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    generator = torch.Generator(device="cpu").manual_seed(0)
    for batch in batches:
        audio = torch.randn(batch, 1, samples, generator=generator).to(device)
        coefficients = transform.encode(audio)
        back = transform.decode(coefficients)
        snr = snr_db(audio, back)
        encode = measure(lambda: transform.encode(audio), repeats)  # noqa: B023  (measured at once)
        decode = measure(lambda: transform.decode(coefficients), repeats)  # noqa: B023
        spectrogram = torch.stft(audio.reshape(batch, samples), 2048, 512, window=window,
                                 return_complex=True)
        stft = measure(lambda: torch.stft(audio.reshape(batch, samples), 2048, 512,  # noqa: B023
                                          window=window, return_complex=True), repeats)
        istft = measure(lambda: torch.istft(spectrogram, 2048, 512, window=window,  # noqa: B023
                                            length=samples), repeats)
        encode_graph = decode_graph = None
        replay = graphed(lambda: transform.encode(audio), device)  # noqa: B023
        if replay is not None:
            encode_graph = measure(replay, repeats)
            replay = graphed(lambda: transform.decode(coefficients), device)  # noqa: B023
            decode_graph = measure(replay, repeats)

        def cell(value):
            return "n/a" if value is None else f"{value * 1e3:.2f} ms"

        lines.append(
            f"| {batch} | {batch * seconds:g} s | {cell(encode)} | {cell(decode)} "
            f"| {cell(encode_graph)} | {cell(decode_graph)} | {cell(stft)} | {cell(istft)} "
            f"| {min(encode, encode_graph or encode) / stft:.2f}x "
            f"| {min(decode, decode_graph or decode) / stft:.2f}x "
            f"| {batch * samples / min(encode, encode_graph or encode) / 1e9:.2f} G | {snr:.1f} dB |"
        )
        print(lines[-1], flush=True)
        coefficients = back = spectrogram = audio = None  # free before the next batch
        if device.type == "cuda":
            torch.cuda.empty_cache()

    if compiled:  # torch.compile of the tensor work (fuses the gathers with the weights)
        batch = batches[-1]
        audio = torch.randn(batch, 1, samples, generator=generator).to(device)
        tables = transform.tables(samples)
        try:
            begin = time.perf_counter()
            encode_compiled, decode_compiled = torch.compile(analyze), torch.compile(synthesize)
            bands = encode_compiled(audio, tables)
            decode_compiled(bands, tables)
            took = time.perf_counter() - begin
            encode = measure(lambda: encode_compiled(audio, tables), repeats)
            decode = measure(lambda: decode_compiled(bands, tables), repeats)
            stft = measure(lambda: torch.stft(audio.reshape(batch, samples), 2048, 512,
                                              window=window, return_complex=True), repeats)
            lines += ["", f"torch.compile of the analysis and synthesis ({took:.0f} s to compile), "
                      f"{batch} clips: {encode * 1e3:.2f} ms and {decode * 1e3:.2f} ms "
                      f"({encode / stft:.2f}x and {decode / stft:.2f}x torch.stft, "
                      f"{stft * 1e3:.2f} ms in this run)."]
        except Exception as error:  # noqa: BLE001 - report, do not stop the benchmark
            lines += ["", f"torch.compile failed here: {type(error).__name__}: {error}"[:300]]
        print(lines[-1], flush=True)

    # equality with the numpy engine, and a training step's cost (forward + backward)
    clip = torch.randn(1, samples, generator=generator)
    reference = msfreq.encode(clip.numpy().T, RATE, span=span)
    ours = transform.encode(clip.to(device))
    worst = max(
        float((ours[name].cpu() - torch.from_numpy(reference[name])).abs().max())
        / max(float(np.abs(reference[name]).max()), 1e-30)
        for name in reference.names
    )
    lines += ["", f"Largest difference from the numpy engine (one clip, any band), relative to "
              f"the band's largest magnitude: {worst:.1e}."]
    batch = batches[-1]
    audio = torch.randn(batch, 1, samples, generator=generator).to(device).requires_grad_()

    def step():
        image = transform.encode(audio).stack()
        image.mean().backward()

    step()
    lines.append(f"Training step (encode, stack, mean, backward) on {batch} clips: "
                 f"{measure(step, max(3, repeats // 2)) * 1e3:.2f} ms.")
    print("\n".join(lines[-2:]), flush=True)
    return lines


def profile(device: torch.device, batch: int, seconds: float) -> None:
    """Print where one encode and one decode of ``batch`` clips spend their time."""
    transform = Transform(RATE).to(device)
    audio = torch.randn(batch, 1, int(seconds * RATE), device=device)
    coefficients = transform.encode(audio)
    transform.decode(coefficients)
    tables = transform.tables(audio.shape[-1])
    spectrum = (torch.fft.rfft(audio, n=tables.length).unsqueeze(-2) * tables.analysis).flatten(-2)
    index = tables.band(len(transform.grid.bands) - 2)[0]
    measure = timer(device)
    print(f"gather of the top octave's {index.numel()} positions from {batch} spectra: "
          f"advanced indexing {measure(lambda: spectrum[..., index], 11) * 1e3:.3f} ms, "
          f"index_select {measure(lambda: spectrum.index_select(-1, index), 11) * 1e3:.3f} ms, "
          f"a copy of the result {measure(lambda: spectrum[..., :index.numel()].clone(), 11) * 1e3:.3f} ms")
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    for name, call in (("encode", lambda: transform.encode(audio)),
                       ("decode", lambda: transform.decode(coefficients))):
        with torch.profiler.profile(activities=activities) as prof:
            call()
            if device.type == "cuda":
                torch.cuda.synchronize()
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        print(f"--- {name}, {batch} clips")
        print(prof.key_averages().table(sort_by=sort, row_limit=12))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "GPU.md")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="small batches, few repeats")
    parser.add_argument("--span", type=int, default=1, help="the transform's span (windows' reach in bins)")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile of the analysis and synthesis")
    parser.add_argument("--profile", action="store_true",
                        help="also print the kernels of one encode and one decode of the largest batch")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"no CUDA device here (torch {torch.__version__}): nothing to measure")
        return 0
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}",
          flush=True)
    batches, repeats, seconds = ([1, 4], 3, 2.0) if args.quick else ([1, 16, 64], args.repeats,
                                                                     CLIP_SECONDS)
    lines = run(device, batches, repeats, seconds, compiled=args.compile, span=args.span)
    text = "# msfreq.torch on a GPU\n\nWritten by `benchmarks/gpu.py`.\n\n" + "\n".join(lines) + "\n"
    args.output.write_text(text)
    print(f"wrote {args.output}")
    if args.profile:
        profile(device, batches[-1], seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
