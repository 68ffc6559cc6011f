"""Turn a stacked magnitude image (what a model might output) into a WAV file.

    python examples/magnitudes_to_wav.py [AUDIO] [OUT.wav]

The image here is made from real audio (``AUDIO``, default a shipped sample) with
``Representation.stack()``; a generative model would produce it instead.  The three lines
marked below are all it takes: unstack, rebuild the phase, decode.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

import msfreq


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else Path("sample_audio/bach_counterpoint.wav")
    target = Path(argv[2]) if len(argv) > 2 else Path("demo_output/from_magnitudes.wav")
    samples, rate = sf.read(str(source), always_2d=True)
    mono = samples.mean(axis=1)
    # span=3: every frequency in six windows, the redundancy phase retrieval needs
    reference = msfreq.encode(mono, rate, span=3)
    image = reference.stack()  # (1, 480, frames): the model's picture

    magnitudes = msfreq.unstack(image, like=reference)                 # 1. per-octave magnitudes
    coefficients = msfreq.reconstruct_phase(magnitudes, n_iter=100)   # 2. a phase that fits
    audio = msfreq.decode(coefficients)                               # 3. sound

    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(target), np.clip(audio, -1, 1), rate, subtype="PCM_16")
    print(f"{source} -> image {image.shape} -> {target} ({audio.shape[0] / rate:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
