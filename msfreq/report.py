"""What is in an msfreq file: per-band statistics, and the amplitude picture.

Statistics are computed by reading each band in slices, so memory stays small for files of
any length.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from msfreq.errors import MsfreqError
from msfreq.representation import decibels
from msfreq.scales import Band, note_name
from msfreq.store import Reader, dataset_name, open_reader

__all__ = ["describe", "plot", "SLICE_FRAMES"]

#: Frames read at a time when scanning a band.
SLICE_FRAMES = 1 << 16


def _slices(frames: int, step: int):
    for first in range(0, frames, step):
        yield first, min(first + step, frames)


def _band_energy(reader: Reader, band: Band) -> tuple[float, float]:
    """Return the band's share of the signal energy (sum of squares) and its peak |c|.

    The coefficient scale makes a complex row worth ``hop / 2`` and a real (residual) row
    worth ``hop`` per unit of ``|c|**2``; the band energies add up to the signal's energy.
    """
    frames = reader.header.length // band.hop
    weight = band.hop if band.is_residual else band.hop / 2
    total, peak = 0.0, 0.0
    for first, stop in _slices(frames, SLICE_FRAMES):
        magnitude = np.abs(reader.read(band, first, stop)).astype(np.float64)
        total += float(np.sum(magnitude**2))
        peak = max(peak, float(magnitude.max(initial=0.0)))
    return total * weight, peak


def _db(value: float, floor: float = -200.0) -> float:
    return float(decibels(value, floor, power=True))


def describe(path: str | os.PathLike, *, statistics: bool = True) -> dict:
    """Return everything ``msfreq inspect`` shows about one file, as plain data.

    Parameters
    ----------
    path : path-like
    statistics : bool
        Read every band to compute its energy, RMS and peak level (this also checks every
        chunk's checksum); False reads only the header.

    Returns
    -------
    dict
        ``file``, ``size_bytes``, ``source`` (dict), ``duration``, ``sample_rate``,
        ``channels``, ``params``, ``dtype``, ``compression``, ``storage`` (in words),
        ``correction_bytes`` (0 without correction codes), ``exact`` (in words) and
        ``decodes`` (in one word: ``exact``, ``rounded<N>`` for a file exact to its samples
        rounded to N bits, ``inexact`` or ``unchecked``), ``format_version``,
        ``msfreq_version``, ``ratio_to_source`` and ``bands``: one dict per band with
        ``name``, ``kind``, ``lower_hz``, ``upper_hz``, ``lower_note``, ``upper_note``,
        ``bins``, ``frames``, ``hop_samples``, ``hop_ms``, ``bytes`` and, with
        ``statistics``, ``energy_percent``, ``rms_db`` and ``peak_db`` (and a file-wide
        ``rms_db``).

    Raises
    ------
    FormatError
        If the file is invalid or a chunk is corrupted.
    """
    path = Path(path)
    with open_reader(path) as reader:
        header = reader.header
        grid = header.grid
        rows, energies = [], []
        for band in grid.bands:
            row = {
                "name": band.name,
                "kind": band.kind,
                "lower_hz": band.lower,
                "upper_hz": band.upper,
                "lower_note": note_name(band.lower, grid.params.tuning),
                "upper_note": note_name(band.upper, grid.params.tuning),
                "bins": band.n_bins,
                "frames": header.length // band.hop,
                "hop_samples": band.hop,
                "hop_ms": 1000.0 * band.hop / grid.sample_rate,
                "bytes": reader.stored_bytes(band),
                "dataset": dataset_name(band),
            }
            if statistics:
                energy, peak = _band_energy(reader, band)
                energies.append(energy)
                row["peak_db"] = _db(peak**2)
            rows.append(row)
        correction_bytes = reader.corrections_bytes()
    samples = header.n_samples * header.n_channels
    total = sum(energies)
    for row, energy in zip(rows, energies, strict=True) if statistics else ():
        row["energy_percent"] = 100.0 * energy / total if total > 0 else 0.0
        row["rms_db"] = _db(energy / samples)
    size = path.stat().st_size
    source_bytes = header.source.get("bytes")
    params = grid.params
    info = {
        "file": str(path),
        "size_bytes": size,
        "source": header.source,
        "ratio_to_source": (size / source_bytes) if source_bytes else None,
        "duration": header.duration,
        "sample_rate": grid.sample_rate,
        "channels": header.n_channels,
        "samples": header.n_samples,
        "params": {
            "bins_per_octave": params.bins_per_octave,
            "fmin": params.fmin,
            "tuning": params.tuning,
            "n_octaves": grid.n_octaves,
            "oversampling": params.oversampling,
            "span": params.span,
        },
        "dtype": header.dtype.name,
        "compression": header.compression,
        "storage": header.storage.described,
        "correction_bytes": correction_bytes,
        "content": header.storage.content,
        "exact": {True: f"decodes to exactly {header.decodes_to} (checked when written)",
                  False: f"does not decode to exactly {header.decodes_to} (checked when written)",
                  None: "not recorded"}[header.exact],
        "decodes": {True: f"rounded{header.rounded_bits}" if header.rounded_bits else "exact",
                    False: "inexact", None: "unchecked"}[header.exact],
        "format_version": header.format_version,
        "msfreq_version": header.msfreq_version,
        "bands": rows,
    }
    if statistics:
        info["rms_db"] = _db(total / samples)
    return info


def _pooled_power(reader: Reader, band: Band, factor: int) -> np.ndarray:
    """Channel-mean of ``|c|**2``, max-pooled over groups of ``factor`` frames."""
    frames = reader.header.length // band.hop
    step = max(SLICE_FRAMES // factor, 1) * factor
    pieces = []
    for first, stop in _slices(frames, step):
        power = (np.abs(reader.read(band, first, stop)) ** 2).mean(axis=0)
        pieces.append(power.reshape(power.shape[0], -1, factor).max(axis=2))
    return np.concatenate(pieces, axis=1)


def plot(
    path: str | os.PathLike,
    image: str | os.PathLike,
    *,
    max_columns: int = 2048,
    floor_db: float = -100.0,
    dpi: int = 120,
) -> Path:
    """Draw the amplitude (dB) of every octave on one log-frequency axis against time.

    Each octave is drawn at its own time resolution (pooled by a power of two where it has
    more than ``max_columns`` frames), with note and Hz ticks and a colour bar.

    Parameters
    ----------
    path : path-like
        An msfreq file.
    image : path-like
        PNG file to write (atomically).
    max_columns : int
    floor_db : float
        Bottom of the colour scale, in dB relative to the loudest coefficient.
    dpi : int

    Returns
    -------
    Path

    Raises
    ------
    MsfreqError
        If matplotlib is not installed, or the file is invalid.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import Normalize
    except ImportError:
        raise MsfreqError(
            "drawing needs matplotlib: pip install 'msfreq[plot]' (or pip install matplotlib)"
        ) from None
    from msfreq.store import atomic_path

    path = Path(path)
    with open_reader(path) as reader:
        header = reader.header
        grid = header.grid
        layers = []
        for band in grid.octaves:
            frames = header.length // band.hop
            factor = 1
            while frames // factor > max_columns and frames % (factor * 2) == 0:
                factor *= 2
            layers.append((band, factor, _pooled_power(reader, band, factor)))
    peak = max(float(power.max(initial=0.0)) for _, _, power in layers)
    top_db = float(decibels(peak, -300.0, power=True)) if peak > 0 else 0.0
    norm = Normalize(vmin=top_db + floor_db, vmax=top_db)
    figure, axes = plt.subplots(figsize=(11, 6), dpi=dpi)
    mesh = None
    ratio = 2 ** (0.5 / grid.params.bins_per_octave)
    for band, factor, power in layers:
        hop = band.hop * factor
        # The transform is periodic: the time after the last frame belongs to frame 0.
        power = np.concatenate([power, power[:, :1]], axis=1)
        columns = power.shape[1]
        times = (np.arange(columns + 1) * hop - band.hop / 2) / grid.sample_rate
        centres = grid.frequencies(band)
        edges = np.concatenate([centres / ratio, centres[-1:] * ratio])
        levels = decibels(power, -300.0, power=True)
        mesh = axes.pcolormesh(times, edges, levels, norm=norm, cmap="magma", shading="flat",
                               rasterized=True)
    axes.set_yscale("log")
    low = grid.octaves[0].lower
    high = grid.octaves[-1].upper
    axes.set_ylim(low, high)
    axes.set_xlim(0, header.n_samples / grid.sample_rate)
    ticks = [low * 2**j for j in range(grid.n_octaves + 1)]
    axes.set_yticks(ticks)
    axes.set_yticklabels(
        [f"{note_name(f, grid.params.tuning)}  {f:,.0f} Hz" if f >= 100 else
         f"{note_name(f, grid.params.tuning)}  {f:.1f} Hz" for f in ticks]
    )
    axes.minorticks_off()
    axes.set_xlabel("time (s)")
    axes.set_ylabel("frequency (octave boundaries)")
    axes.set_title(
        f"{header.source.get('name', path.name)}: {grid.n_octaves} octaves x "
        f"{grid.params.bins_per_octave} bins, each at its own time step"
    )
    bar = figure.colorbar(mesh, ax=axes)
    bar.set_label("amplitude (dB re full-scale sine)")
    figure.tight_layout()
    image = Path(image)
    with atomic_path(image) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return image
