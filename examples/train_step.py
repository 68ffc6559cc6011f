"""One training step with the representation computed on the fly (CPU or GPU).

    python examples/train_step.py [sample_audio] [--device cuda]

Raw audio crops come from msfreq.AudioDataset (audio files or msfreq files alike), a
DataLoader batches them, msfreq.torch.Transform turns each batch into coefficients on the
device, a small convolution looks at the stacked log-magnitude picture, and a loss flows back
through the transform to the audio.  Needs ``pip install 'msfreq[torch]'``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import soundfile
import torch

import msfreq
from msfreq.torch import Transform

RATE = 44100  # the dataset refuses mixed rates: this example keeps the 44.1 kHz samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="sample_audio")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    files = [path for path in sorted(Path(args.folder).iterdir())
             if path.suffix in (".wav", ".flac") and soundfile.info(path).samplerate == RATE]
    dataset = msfreq.AudioDataset(files, crop_seconds=2.0, channels="mix", seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=len(dataset), shuffle=True)
    transform = Transform(RATE).to(args.device)
    model = torch.nn.Sequential(  # a stand-in for a real model: rows are log-frequency bins
        torch.nn.Conv2d(1, 8, kernel_size=(13, 3), padding=(6, 1)), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 1, kernel_size=(13, 3), padding=(6, 1)),
    ).to(args.device)

    audio = next(iter(loader)).to(args.device).requires_grad_()  # (batch, 1, samples)
    coefficients = transform(audio)                               # every band, on the device
    image = coefficients.stack(hop=coefficients.band("octave_06").hop, db=True, floor_db=-100)
    loss = model(image / 100).square().mean()
    loss.backward()
    print(f"{len(dataset)} crops of {dataset.crop_samples / RATE:.2f} s on {args.device}: "
          f"stacked image {tuple(image.shape)}, loss {loss.item():.4f}, "
          f"gradient norm at the audio {audio.grad.norm().item():.3g}")
    back = transform.decode(coefficients).detach()
    error = (back - audio.detach()).abs().max().item()
    print(f"decode of the same coefficients differs from the audio by at most {error:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
