"""Selections: which bands, channels and sample range a partial read takes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from msfreq.errors import ParameterError
from msfreq.params import is_integer
from msfreq.scales import Band, Grid

__all__ = ["select_bands", "select_channels", "time_range"]


def select_bands(grid: Grid, octaves: object) -> list[Band]:
    """Return the bands that ``octaves`` names (octave numbers and/or band names), in order."""
    if octaves is None:
        return list(grid.bands)
    wanted = [octaves] if isinstance(octaves, (int, np.integer, str)) else list(octaves)  # type: ignore[arg-type]
    by_octave = {band.octave: band for band in grid.octaves}
    by_name = {band.name: band for band in grid.bands}
    chosen = []
    for item in wanted:
        if isinstance(item, str) and item in by_name:
            chosen.append(by_name[item])
        elif is_integer(item) and int(item) in by_octave:
            chosen.append(by_octave[int(item)])
        else:
            raise ParameterError(
                f"octaves must name octaves 0..{grid.n_octaves - 1} or bands {list(by_name)}, "
                f"got {item!r}"
            )
    if not chosen:
        raise ParameterError("octaves must select at least one band")
    return sorted(set(chosen), key=grid.bands.index)


def select_channels(n_channels: int, channels: object) -> list[int] | None:
    """Return the channel indices that ``channels`` names (None: all)."""
    if channels is None:
        return None
    wanted = [channels] if isinstance(channels, (int, np.integer)) else list(channels)  # type: ignore[arg-type]
    picked = []
    for item in wanted:
        if not is_integer(item) or not 0 <= item < n_channels:
            raise ParameterError(f"channels must be in 0..{n_channels - 1}, got {item!r}")
        picked.append(int(item))
    if not picked:
        raise ParameterError("channels must select at least one channel")
    return picked


def time_range(
    header, bands: Iterable[Band], start: float | None, stop: float | None
) -> tuple[int, int]:
    """Return the sample range ``[first, last)`` that :func:`load` reads for ``start``/``stop``.

    The range is widened outwards to whole frames of the coarsest band selected, so every
    band's frames cover exactly the same samples.
    """
    step = max(band.hop for band in bands)
    rate = header.grid.sample_rate
    end = header.length
    first = 0 if start is None else float(start)
    if np.isfinite(first) and first * rate >= end:
        raise ParameterError(
            f"start={start!r} s is beyond the end of the file ({end / rate:.3f} s)"
        )
    last = max(header.n_samples / rate, first + 1.0 / rate) if stop is None else float(stop)
    if not (np.isfinite(first) and np.isfinite(last)) or first < 0 or last <= first:
        raise ParameterError(
            f"start and stop must satisfy 0 <= start < stop, got start={start!r}, stop={stop!r}"
        )
    low = int(np.floor(first * rate / step)) * step
    high = min(int(np.ceil(last * rate / step)) * step, end)
    if stop is None:
        high = end
    return low, max(high, low + step)
