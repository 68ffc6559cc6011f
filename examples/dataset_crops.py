"""Encode a folder, then read training crops from it: shapes, and one stacked crop drawn.

    python examples/dataset_crops.py [AUDIO_FOLDER] [WORK_FOLDER]

Defaults: ``sample_audio`` and ``demo_output/dataset_example``.  Trains nothing: it shows
what a model would receive.  With PyTorch installed, wrap the dataset in
``torch.utils.data.DataLoader(dataset, batch_size=8, num_workers=4)`` as it is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import msfreq


def main(argv: list[str]) -> int:
    audio = Path(argv[1]) if len(argv) > 1 else Path("sample_audio")
    work = Path(argv[2]) if len(argv) > 2 else Path("demo_output/dataset_example")
    encoded = work / "encoded"
    # One common sample rate, so that every file shares one grid.
    subprocess.run([sys.executable, "-m", "msfreq", "encode", f"{audio}/", "-o", str(encoded),
                    "--sample-rate", "44100", "-q"], check=False)

    per_band = msfreq.Dataset(encoded, crop_seconds=2.0, seed=0, octaves=range(2, 10), channels="mix")
    print(per_band)
    for name, array in per_band[0].items():
        print(f"  {name:<10} {str(array.shape):<16} {array.dtype}")

    stacked = msfreq.Dataset(encoded, crop_seconds=2.0, seed=0, stacked=True, db=True, channels="mix",
                             with_info=True)
    image, info = stacked[0]
    print(f"stacked crop of {info['path']} from {info['start']:.2f} s to {info['stop']:.2f} s: "
          f"{image.shape} {image.dtype}, rows = {len(stacked.bands) - 2} octaves x "
          f"{stacked.grid.params.bins_per_octave} bins")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(pip install matplotlib to draw the crop)")
        return 0
    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    peak = float(np.max(image))
    axes.imshow(image[0], origin="lower", aspect="auto", cmap="magma", vmin=peak - 90, vmax=peak,
                extent=(info["start"], info["stop"], 0, image.shape[1]))
    axes.set_xlabel("time (s)")
    axes.set_ylabel("row (bin on the log-frequency axis)")
    axes.set_title("one stacked crop: a pitch shift of m bins moves it by m rows")
    picture = work / "stacked_crop.png"
    figure.tight_layout()
    figure.savefig(picture)
    print(f"drawn: {picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
