"""Encode and decode arrays: the multi-scale transform on samples in memory.

Nothing here touches files or the terminal.  The whole-signal transform is exact (the frame
is painless, see :mod:`msfreq.frames`); its long FFTs (the signal's, and the high residual
row's) go through :mod:`msfreq.fft`; long signals are transformed block by block with
overlapping margins, which differs from the whole-signal transform by less than the margins'
truncation error (see :data:`MARGIN_UNITS`).

Phase convention
----------------
Coefficient ``n`` of a row is the inner product of the signal with that row's atom
translated to sample ``n * hop``:  ``c[n] = sum_t x[t] * conj(psi(t - n * hop))``, where the
atom ``psi`` has only positive frequencies and its window's peak at the bin centre.  The
phase is therefore measured against absolute time (t = 0 at the first sample): a sinusoid
``A cos(2 pi f t / sr + phi)`` at a bin centre gives ``c[n] = A exp(i (2 pi f n hop / sr + phi))``,
so ``|c| = A`` and delaying the input by a whole number of hops shifts the frames and nothing
else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from msfreq import fft
from msfreq.errors import ParameterError
from msfreq.frames import Plan, get_plan
from msfreq.params import BLOCK_BYTES, BLOCK_SECONDS
from msfreq.scales import Grid

__all__ = [
    "MARGIN_UNITS",
    "BLOCK_BYTES",
    "MIN_BLOCK_UNITS",
    "analyze",
    "synthesize",
    "transform_units",
    "check_samples",
    "BlockSchedule",
    "block_schedule",
    "analyze_blocks",
    "synthesize_blocks",
    "analyze_signal",
    "synthesize_signal",
    "synthesize_range",
]

#: Coefficients transformed at once (rows of a band are grouped up to this many), which
#: bounds the temporary arrays of the transform whatever the signal's length.
GROUP_COEFFICIENTS = 1 << 21

#: Overlap on each side of a block, in hop units of the lowest octave.  The atoms' tails
#: beyond it are below the float32 noise floor (measured: README, "Long files").
MARGIN_UNITS = 32


def transform_units(n_samples: int, grid: Grid) -> int:
    """Return the number of hop units that covers ``n_samples`` (an FFT-friendly number).

    Parameters
    ----------
    n_samples : int
    grid : Grid

    Returns
    -------
    int
        The transform length is ``units * grid.hop_unit >= n_samples``.
    """
    needed = max(-(-int(n_samples) // grid.hop_unit), 1)
    return int(fft.next_fast_len(needed))


#: More channels than this, with fewer frames than channels, is taken for a transposed
#: (channels, frames) array and refused (libsndfile's own limit is 1024 channels).
MAX_CHANNELS = 1024


def check_samples(samples: object) -> np.ndarray:
    """Validate audio samples and return them as a float array of shape (frames, channels).

    Parameters
    ----------
    samples : array_like, shape (frames,) or (frames, channels)
        Real numbers; integers are taken as they are (not rescaled).

    Returns
    -------
    ndarray, shape (frames, channels)
        Float input as it is (a view, not a copy), other real input as float64.

    Raises
    ------
    ParameterError
        For non-numeric, complex, empty, more than 2-D, or non-finite input, or for more
        than :data:`MAX_CHANNELS` channels with fewer frames (a transposed array).
    """
    array = np.asarray(samples)
    if array.dtype.kind not in "biuf":
        raise ParameterError(f"samples must be a real numeric array, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ParameterError(
            f"samples must have shape (frames,) or (frames, channels), got {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ParameterError(f"samples must not be empty, got shape {array.shape}")
    if array.shape[1] > MAX_CHANNELS and array.shape[1] > array.shape[0]:
        raise ParameterError(
            f"samples has {array.shape[1]} channels of {array.shape[0]} frames: the shape is "
            "(frames, channels); transpose a (channels, frames) array (samples.T)"
        )
    # A finite sum means every sample is finite (NaN and infinities propagate): one reduction
    # instead of a mask; only a non-finite sum (or an overflowing one) looks closer.
    if array.dtype.kind != "f":
        return array.astype(np.float64)
    # Floats are not copied (the transform converts them to its precision as it reads them).
    if not np.isfinite(array.sum(dtype=np.float64)):
        finite = np.isfinite(array)
        if not finite.all():
            bad = int(np.argmin(finite.all(axis=1)))
            raise ParameterError(f"samples must be finite; frame {bad} holds NaN or infinity")
    return array


def analyze(signal: np.ndarray, plan: Plan, *, workers: int | None = None) -> list[np.ndarray]:
    """Return the coefficients of ``signal`` for every band of ``plan``.

    Parameters
    ----------
    signal : ndarray, shape (channels, plan.length)
        Real samples (the signal is taken as periodic with period ``plan.length``).
    plan : Plan
    workers : int, optional
        Threads for :mod:`scipy.fft`.

    Returns
    -------
    list of ndarray, each shape (channels, band.n_bins, plan.length // band.hop)
        In the grid's band order, dtype ``plan.dtype``.
    """
    channels = signal.shape[0]
    real = np.finfo(plan.dtype).dtype
    # A mono signal's one-row real bands (the high residual: a third as many frames as
    # samples) are the inverse FFT's own output, not a copy of it.
    own = [channels == 1 and layout.real and layout.band.n_bins == 1 for layout in plan.layouts]
    outputs = [
        None if mine else np.empty((channels, layout.band.n_bins, layout.frames),
                                   dtype=real if layout.real else plan.dtype)
        for layout, mine in zip(plan.layouts, own, strict=True)
    ]
    for channel in range(channels):
        spectrum = _spectrum(signal[channel], plan, workers)
        made = _analyze_spectrum(spectrum, plan,
                                 [None if output is None else output[channel] for output in outputs],
                                 workers=workers)
    for index, mine in enumerate(own):
        if mine:
            outputs[index] = made[index][None, None]
    return outputs


def _spectrum(samples: np.ndarray, plan: Plan, workers: int | None) -> np.ndarray:
    """The half spectrum of one channel's ``samples``, scaled for :func:`_analyze_spectrum`."""
    # Scales folded into the FFTs' norms: the spectrum carries 2 / length (norm="forward",
    # then x2 on the half spectrum), the inverse FFTs none, so a complex row comes out as
    # 2 / hop * (1 / frames) * sum = analysis_scale * ifft, in place, with no pass over the
    # coefficients afterwards; real rows take their 1 / hop with one halving.
    real = np.finfo(plan.dtype).dtype
    return fft.rfft(samples.astype(real, copy=False), norm="forward", scale=2.0, workers=workers)


def _analyze_spectrum(spectrum: np.ndarray, plan: Plan, outputs: list[np.ndarray | None], *,
                      keep: tuple[int, int] | None = None,
                      workers: int | None = None) -> list[np.ndarray | None]:
    """Write the coefficients of one channel, from its half ``spectrum`` (:func:`_spectrum`),
    into ``outputs`` (per band, shape (n_bins, kept frames)).  Where an output is None (for a
    band of one real row only), the row is returned instead, in a list by band.

    ``keep = (first_unit, stop_unit)`` keeps only the frames of those hop units (a block's
    middle, without its margins): the rows are then transformed in a scratch buffer of at most
    :data:`GROUP_COEFFICIENTS` values, so the whole band is never held."""
    units = plan.length // plan.grid.hop_unit
    first_unit, stop_unit = (0, units) if keep is None else keep
    made: list[np.ndarray | None] = [None] * len(outputs)
    for index, (layout, output) in enumerate(zip(plan.layouts, outputs, strict=True)):
        frames = layout.frames
        per_unit = frames // units
        low, high = first_unit * per_unit, stop_unit * per_unit
        whole = (low, high) == (0, frames)
        scratch = None
        for rows in layout.row_groups(GROUP_COEFFICIENTS):
            count = rows.stop - rows.start
            if layout.real:
                # only positions 0 .. frames // 2 are read (the inverse real FFT below)
                folded = np.zeros((count, frames // 2 + 1), dtype=plan.dtype)
                for row, target in zip(range(rows.start, rows.stop), folded, strict=True):
                    first, width = int(layout.starts[row]), int(layout.widths[row])
                    if not width:
                        continue
                    values = spectrum[first : first + width] * layout.weights[row, :width]
                    # Negative-frequency mirror first; the direct values then overwrite the
                    # self-conjugate points (DC, Nyquist), which must be counted once.
                    mirror = (-(first + width - 1)) % frames
                    _place_half(target, mirror, values[::-1], frames, conjugate=True)
                    _place_half(target, first % frames, values, frames)
                # Hermitian by construction: the inverse real FFT of its first half is the
                # real part of the inverse FFT, at half the work (the high residual is one row
                # with a third as many frames as samples)
                for row, target in zip(range(rows.start, rows.stop), folded, strict=True):
                    result = fft.irfft(target, frames, norm="forward", scale=0.5, workers=workers)
                    if output is None:
                        made[index] = result[low:high]
                    else:
                        output[row] = result[low:high]
                continue
            if whole:
                # Straight into the output rows: each row's window values, multiplied in place
                # where they fall, and zeros around them (one pass over the row).
                folded = output[rows]
            else:
                if scratch is None:
                    scratch = np.empty((count, frames), dtype=plan.dtype)
                folded = scratch[:count]
            for row, target in zip(range(rows.start, rows.stop), folded, strict=True):
                _weigh_into(target, spectrum, int(layout.starts[row]),
                            layout.weights[row, : int(layout.widths[row])])
            result = fft.pocketfft().ifft(folded, axis=1, norm="forward", overwrite_x=True, workers=workers)
            if whole:
                if not np.shares_memory(result, folded):  # pocketfft works in place
                    folded[...] = result
            else:
                output[rows] = result[:, low:high]
    return made


def _weigh_into(target: np.ndarray, spectrum: np.ndarray, first: int, weights: np.ndarray) -> None:
    """Set the periodic ``target`` to ``spectrum[first:first + width] * weights`` at positions
    ``first % size ...`` (wrapping once at most) and to zero elsewhere."""
    size, width = target.shape[0], weights.shape[0]
    start = first % size
    head = min(width, size - start)
    np.multiply(spectrum[first : first + head], weights[:head], out=target[start : start + head])
    if head < width:  # wrapped: the run continues at 0 and the gap lies between
        np.multiply(spectrum[first + head : first + width], weights[head:], out=target[: width - head])
        target[width - head : start] = 0
    else:
        target[:start] = 0
        target[start + head :] = 0


def _place_half(target: np.ndarray, first: int, values: np.ndarray, size: int, *,
                conjugate: bool = False) -> None:
    """Write ``values`` (conjugated if asked) at positions ``first, first + 1, ...`` of a
    periodic sequence of ``size``, of which ``target`` holds positions ``0 .. size // 2``:
    the values that fall above are not written (the run wraps at most once)."""
    half = target.shape[0] - 1
    count = values.shape[0]
    head = min(count, size - first)  # values before the wrap, at first ... size - 1
    for lead, position, stop in ((0, first, min(head, half - first + 1)),
                                 (head, 0, min(count - head, half + 1))):
        if stop > 0:
            piece = values[lead : lead + stop]
            if conjugate:
                np.conjugate(piece, out=target[position : position + stop])
            else:
                target[position : position + stop] = piece


def _take(source: np.ndarray, first: int, count: int) -> np.ndarray:
    """Positions ``first, first + 1, ...`` (``count`` of them) of the periodic ``source``."""
    size = source.shape[0]
    if first + count <= size:
        return source[first : first + count]
    return np.concatenate([source[first:], source[: first + count - size]])


def synthesize(
    coefficients: Sequence[np.ndarray], plan: Plan, *, workers: int | None = None
) -> np.ndarray:
    """Return the signal whose coefficients are ``coefficients`` (the exact inverse).

    Parameters
    ----------
    coefficients : sequence of ndarray, each shape (channels, band.n_bins, frames)
        One array per band of ``plan``, in the grid's order.
    plan : Plan
    workers : int, optional

    Returns
    -------
    ndarray, shape (channels, plan.length)
        Real samples in the plan's real precision.
    """
    if len(coefficients) != len(plan.layouts):
        raise ParameterError(
            f"expected {len(plan.layouts)} bands of coefficients, got {len(coefficients)}"
        )
    channels = coefficients[0].shape[0]
    real = np.finfo(plan.dtype).dtype
    n_freq = plan.length // 2 + 1
    signal = None
    for channel in range(channels):
        spectrum = np.empty(n_freq, dtype=plan.dtype)
        # spectrum[:written] holds the sum so far: each row's values are added where rows
        # before it reached and written where none did (one pass instead of zeros and a sum)
        written = 0
        for index, layout in enumerate(plan.layouts):
            band_coefficients = coefficients[index]
            expected = (channels, layout.band.n_bins, layout.frames)
            if band_coefficients.shape != expected:
                raise ParameterError(
                    f"band {layout.band.name} must have shape {expected}, "
                    f"got {band_coefficients.shape}"
                )
            frames = layout.frames
            for rows in layout.row_groups(GROUP_COEFFICIENTS):
                # norm="forward" gives 1 / frames; synthesis_scale / length is that for a real
                # row and half of it for a complex one: real rows are doubled here, the
                # spectrum halved once at the end.
                values_of = band_coefficients[channel, rows]
                if layout.real:
                    # a real row's spectrum is Hermitian: where its window reads only the lower
                    # half, the real FFT (half the work) holds what is needed
                    periodic = [_real_row_spectrum(row, layout, workers) for row in values_of]
                else:
                    periodic = fft.pocketfft().fft(values_of.astype(plan.dtype, copy=False), axis=1,
                                          norm="forward", workers=workers)
                for row, source in zip(range(rows.start, rows.stop), periodic, strict=True):
                    first, width = int(layout.starts[row]), int(layout.widths[row])
                    if not width:
                        continue
                    written = _accumulate(spectrum, written, first,
                                          _take(source, first % frames, width),
                                          layout.weights[row, :width])
                # each group's arrays go before the next group's are made, each band's before
                # the next band is read (a lazy sequence of bands, as the block path passes,
                # then holds one band at a time)
                values_of = periodic = source = None
            band_coefficients = None
        spectrum[written:] = 0
        result = fft.irfft(spectrum, plan.length, norm="forward", scale=0.5, workers=workers)
        del spectrum
        if channels == 1:
            return result[None]
        if signal is None:
            signal = np.empty((channels, plan.length), dtype=real)
        signal[channel] = result
    return signal


def _accumulate(spectrum: np.ndarray, written: int, first: int, values: np.ndarray,
                weights: np.ndarray) -> int:
    """Add ``values * weights`` to ``spectrum`` from ``first`` on, where ``spectrum[:written]``
    is set and the rest is not (it is written there, the gap before ``first`` zeroed);
    return the new ``written``."""
    stop = first + values.shape[0]
    if first > written:
        spectrum[written:first] = 0
    overlap = min(stop, written) - first
    if overlap > 0:
        spectrum[first : first + overlap] += values[:overlap] * weights[:overlap]
    start = max(overlap, 0)
    if start < values.shape[0]:
        np.multiply(values[start:], weights[start:], out=spectrum[first + start : stop])
    return max(written, stop)


def _real_row_spectrum(values: np.ndarray, layout, workers: int | None) -> np.ndarray:
    """The spectrum of one real row (doubled, see :func:`synthesize`), periodic in
    ``layout.frames``: its real FFT where every window of the band reads only the lower half
    (positions up to ``frames // 2``), else the full FFT."""
    frames = layout.frames
    positions = layout.starts % frames
    if np.all(positions + layout.widths - 1 <= frames // 2):
        return fft.rfft(values, norm="forward", scale=2.0, workers=workers)
    spectrum = fft.pocketfft().fft(values, norm="forward", workers=workers)
    spectrum *= 2
    return spectrum


class BlockSchedule:
    """How a signal of ``units`` hop units is cut into blocks with overlapping margins.

    Parameters
    ----------
    grid : Grid
    units : int
        Length of the whole transform in hop units.
    block_units : int
        Hop units each block contributes (the last block may contribute fewer).
    margin_units : int
        Overlap on each side of a block, in hop units.
    shared_reads : bool
        Read each block's samples once for all channels (else once per channel, which holds
        one channel's samples only).
    """

    def __init__(self, grid: Grid, units: int, block_units: int, margin_units: int, *,
                 shared_reads: bool = True) -> None:
        if block_units < 1 or margin_units < 0:
            raise ParameterError(
                f"block_units must be >= 1 and margin_units >= 0, got {block_units}, {margin_units}"
            )
        self._grid = grid
        self._units = int(units)
        self._margin_units = int(margin_units)
        # The span (block plus margins) is an FFT-friendly number of hop units.
        self._span_units = int(fft.next_fast_len(block_units + 2 * margin_units))
        self._block_units = self._span_units - 2 * self._margin_units
        self.shared_reads = bool(shared_reads)

    @property
    def grid(self) -> Grid:
        """The frequency grid."""
        return self._grid

    @property
    def units(self) -> int:
        """Hop units of the whole transform."""
        return self._units

    @property
    def margin_units(self) -> int:
        """Overlap on each side of a block, in hop units."""
        return self._margin_units

    @property
    def block_units(self) -> int:
        """Hop units each block contributes (the last may contribute fewer)."""
        return self._block_units

    @property
    def span_units(self) -> int:
        """Hop units each block transforms: the block and both margins."""
        return self._span_units

    @property
    def blocks(self) -> list[tuple[int, int]]:
        """The ``(first_unit, stop_unit)`` each block contributes, in order."""
        return [
            (start, min(start + self.block_units, self.units))
            for start in range(0, self.units, self.block_units)
        ]

    def plan(self, dtype: np.dtype) -> Plan:
        """The plan every block is transformed with (length ``span_units`` hop units)."""
        return get_plan(self.grid, self.span_units * self.grid.hop_unit, dtype)


#: Bytes per sample, for complex64 (twice as many for complex128): what a signal transformed
#: whole takes per sample and channel (coefficients of all channels, their stored form, the
#: transform's temporaries); what one channel's part of a block keeps per sample of the block
#: (coefficients, their stored form); what transforming one channel takes per sample of the
#: span (signal, half spectrum, the four-step FFT's temporaries: the coefficients of the
#: margins are never held); and what decoding holds per sample and channel of a block (the
#: samples, their converted and checked forms).  Measured peaks, rounded up (README, "Long
#: files").
_WHOLE_BYTES = 48
_KEPT_BYTES = 24
_WORK_BYTES = 22
_SAMPLE_BYTES = 12
#: The shortest block, in hop units, the margins' share of the budget aside: at 24-bit 192 kHz (double
#: precision) the margins' transform alone exceeds :data:`BLOCK_BYTES`, and blocks a unit
#: long would spend 65 of every 66 transformed samples on margins (measured 0.08x real time
#: for 8 channels); with this floor the span is at most 5 times the block, as far as the
#: block's own part fits the budget (see :func:`block_schedule`).
MIN_BLOCK_UNITS = MARGIN_UNITS // 2


def block_schedule(
    grid: Grid, n_samples: int, channels: int = 1, *, dtype: np.dtype | str = "complex64",
    block_seconds: float | None = None, memory: int | None = None,
) -> BlockSchedule | None:
    """Return the block schedule for ``n_samples``, or ``None`` if the signal is transformed
    whole, all channels at once.  With ``memory``, a signal too short for blocks to pay and too
    large for all channels at once gets one block without margins (the whole transform, one
    channel at a time).

    Parameters
    ----------
    grid : Grid
    n_samples, channels : int
    dtype : numpy dtype
        Complex dtype of the transform (complex128 takes twice the memory).
    block_seconds : float, optional
        Audio per block; default :data:`msfreq.params.BLOCK_SECONDS`, or with ``memory``, as
        long as that budget allows.
    memory : int, optional
        Bytes a block may take (e.g. :data:`BLOCK_BYTES`): blocks as long as that allows for
        this many channels at this sample rate (the margins span a fixed time, about a minute,
        whatever the block), capped at :data:`msfreq.params.BLOCK_SECONDS`.  The file
        converters use it; in memory, where the whole signal is held anyway, the default is
        by time alone.
    """
    units = transform_units(n_samples, grid)
    margins = 2 * MARGIN_UNITS * grid.hop_unit
    if block_seconds is None and memory is not None:
        width = np.dtype(dtype).itemsize / 8  # the figures below are for complex64
        kept = max(_KEPT_BYTES, channels * _SAMPLE_BYTES) * width
        work = _WORK_BYTES * width
        whole = units * grid.hop_unit * channels * _WHOLE_BYTES * width
        if whole <= memory and units * grid.hop_unit <= BLOCK_SECONDS * grid.sample_rate * 1.5:
            return None
        # Reading a block once for all channels holds the other channels' samples too; worth
        # it (a compressed source is decoded once per block instead of once per channel)
        # where their margins take at most half the budget.
        others = (channels - 1) * np.dtype(dtype).itemsize // 2
        shared = margins * (work + others) <= memory / 2
        if shared:
            work += others
        room = (memory - margins * work) / (kept + work)
        # The floor overrides the margins' share of the budget, never the block's own: with
        # many channels (decoded samples of every channel are held) the block alone stays
        # within the budget.
        floor = min(MIN_BLOCK_UNITS * grid.hop_unit, memory / (kept + work))
        seconds = min(BLOCK_SECONDS, max(room, floor, grid.hop_unit) / grid.sample_rate)
    else:
        whole, shared = None, True
        seconds = BLOCK_SECONDS if block_seconds is None else float(block_seconds)
        if not seconds > 0:
            raise ParameterError(f"block_seconds must be > 0, got {block_seconds!r}")
    block_units = max(int(seconds * grid.sample_rate // grid.hop_unit), 1)
    if units <= block_units + 2 * MARGIN_UNITS:
        if whole is not None and whole > memory:
            # Too short for blocks to pay, too large to transform every channel at once: the
            # whole signal as one block without margins, one channel at a time (exactly the
            # whole-signal transform), read once for all channels where they take at most
            # half the budget with one channel's transform (a 3-minute stereo FLAC is decoded
            # once, not once per channel).
            samples = units * grid.hop_unit
            return BlockSchedule(grid, units, units, 0,
                                 shared_reads=samples * (_WORK_BYTES * width + others) <= memory / 2)
        return None
    return BlockSchedule(grid, units, block_units, MARGIN_UNITS, shared_reads=shared)


#: Samples read at a time when filling a block (bounds the reader's temporary arrays).
READ_SAMPLES = 1 << 18


def _circular_read(
    read: Callable[[int, int], np.ndarray], start: int, stop: int, period: int, available: int,
    channels: int, dtype: np.dtype, channel: int | None = None,
) -> np.ndarray:
    """Samples ``start:stop`` of the periodic extension (period ``period``) of a signal of
    ``available`` samples padded with zeros, as shape ``(channels, stop - start)``;
    ``read(a, b)`` returns samples ``a:b`` (``0 <= a < b <= available``) as shape
    ``(b - a, channels)``.  With ``channel``, only that channel, shape ``(1, stop - start)``."""
    picked = slice(None) if channel is None else slice(channel, channel + 1)
    out = np.empty((channels if channel is None else 1, stop - start), dtype=dtype)
    for position, wrapped, run in _periodic_runs(start, stop, period):
        low, high = wrapped, min(wrapped + run, available)
        for first in range(low, high, READ_SAMPLES):
            last = min(first + READ_SAMPLES, high)
            at = position - start + first - low
            out[:, at : at + last - first] = read(first, last)[:, picked].T
        # the padding beyond the samples (written once: no pass of zeros under the samples)
        out[:, position - start + max(high - low, 0) : position - start + run] = 0
    return out


def _periodic_runs(start: int, stop: int, period: int) -> Iterator[tuple[int, int, int]]:
    """Split ``start:stop`` of a sequence periodic in ``period`` into runs that do not wrap:
    yield ``(position, position % period, length)``."""
    position = start
    while position < stop:
        wrapped = position % period
        run = min(stop - position, period - wrapped)
        yield position, wrapped, run
        position += run


def analyze_blocks(
    read: Callable[[int, int], np.ndarray],
    n_samples: int,
    channels: int,
    schedule: BlockSchedule,
    dtype: np.dtype,
    *,
    workers: int | None = None,
) -> Iterator[tuple[int, int, slice, list[np.ndarray]]]:
    """Transform a long signal block by block, one channel of a block at a time.

    Parameters
    ----------
    read : callable
        ``read(start, stop)`` returns samples ``start:stop`` as shape ``(stop - start, channels)``.
    n_samples, channels : int
    schedule : BlockSchedule
    dtype : numpy dtype

    Yields
    ------
    first_unit, stop_unit : int
        The hop units this block covers.
    channels : slice
        The channel this part holds (each block comes one channel at a time, in order).
    coefficients : list of ndarray
        Per band, shape ``(1, n_bins, (stop_unit - first_unit) * hop_unit / hop)``.
        The list is emptied when the next part is asked for: keep copies, not the list.
    """
    grid = schedule.grid
    unit = grid.hop_unit
    plan = schedule.plan(dtype)
    period = schedule.units * unit
    margin = schedule.margin_units * unit
    real = np.finfo(dtype).dtype
    for first, stop in schedule.blocks:
        begin = first * unit - margin
        keep = (schedule.margin_units, schedule.margin_units + stop - first)
        shared = None
        if schedule.shared_reads:
            shared = _circular_read(read, begin, begin + plan.length, period, n_samples, channels,
                                    real)
        for channel in range(channels):  # one channel at a time: memory for one span only
            if shared is None:
                block = _circular_read(read, begin, begin + plan.length, period, n_samples,
                                       channels, real, channel=channel)[0]
            else:
                block = shared[channel]
            spectrum = _spectrum(block, plan, workers)
            del block
            if shared is not None and channel == channels - 1:
                shared = None
            kept = [
                np.empty((1, layout.band.n_bins, (stop - first) * (unit // layout.band.hop)),
                         dtype=layout.band.coefficient_dtype(dtype))
                for layout in plan.layouts
            ]
            # only the block's frames are computed into place: the margins' coefficients
            # are never held
            _analyze_spectrum(spectrum, plan, [values[0] for values in kept], keep=keep,
                              workers=workers)
            del spectrum
            yield first, stop, slice(channel, channel + 1), kept
            # Free this part's arrays before the next is computed, even if the caller still
            # holds the list (its loop variable does until the next item arrives).
            kept.clear()


def synthesize_blocks(
    read: Callable[[int, int, int, int], np.ndarray],
    n_samples: int,
    channels: int,
    schedule: BlockSchedule,
    dtype: np.dtype,
    *,
    workers: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Inverse of :func:`analyze_blocks`: rebuild a long signal block by block, one channel
    at a time.

    Parameters
    ----------
    read : callable
        ``read(band_index, first_frame, stop_frame, channel)`` returns that band's frames of
        one channel, shape ``(1, n_bins, stop_frame - first_frame)``, with
        ``0 <= first < stop <= frames``.
    n_samples : int
        Samples of the original signal (the padding is not yielded).
    channels : int
    schedule : BlockSchedule
    dtype : numpy dtype

    Yields
    ------
    start : int
        Sample index of the block's first sample.
    samples : ndarray, shape (channels, n)
    """
    grid = schedule.grid
    unit = grid.hop_unit
    plan = schedule.plan(dtype)
    low = schedule.margin_units * unit
    for first, stop in schedule.blocks:
        begin = first - schedule.margin_units
        start = first * unit
        end = min(stop * unit, n_samples)
        if end <= start:
            continue
        out = np.empty((channels, end - start), dtype=np.finfo(dtype).dtype)
        for channel in range(channels):
            signal = synthesize(_SpanBands(read, plan, channel, begin, schedule.units), plan,
                                workers=workers)
            out[channel] = signal[0, low : low + end - start]
            del signal
        yield start, out


class _SpanBands(Sequence):
    """The coefficients of one channel over a span of hop units, band by band, each read
    when :func:`synthesize` comes to it (so a span's bands are never all held at once)."""

    def __init__(self, read: Callable[[int, int, int, int], np.ndarray], plan: Plan, channel: int,
                 begin: int, units: int) -> None:
        self._read, self._plan, self._channel = read, plan, channel
        self._begin, self._units = begin, units

    def __len__(self) -> int:
        return len(self._plan.layouts)

    def __getitem__(self, index: int) -> np.ndarray:
        plan = self._plan
        per_unit = plan.layouts[index].frames * plan.grid.hop_unit // plan.length

        def read_band(a: int, b: int) -> np.ndarray:
            return self._read(index, a, b, self._channel)

        span = plan.length // plan.grid.hop_unit
        return _circular_frames(read_band, self._begin * per_unit, (self._begin + span) * per_unit,
                                self._units * per_unit)


def _circular_frames(
    read: Callable[[int, int], np.ndarray], start: int, stop: int, period: int
) -> np.ndarray:
    """Frames ``start:stop`` of a periodic sequence of ``period`` frames."""
    pieces = [read(wrapped, wrapped + run) for _, wrapped, run in _periodic_runs(start, stop, period)]
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=-1)


def analyze_signal(
    read: Callable[[int, int], np.ndarray],
    n_samples: int,
    channels: int,
    grid: Grid,
    dtype: np.dtype,
    *,
    block_seconds: float | None = None,
    memory: int | None = None,
    workers: int | None = None,
) -> Iterator[tuple[int, int, slice, list[np.ndarray]]]:
    """Transform a signal that ``read`` gives access to: whole if short, else in blocks.

    Parameters
    ----------
    read : callable
        ``read(start, stop)`` returns samples ``start:stop`` (``0 <= start < stop <=
        n_samples``) as float, shape ``(stop - start, channels)``.
    n_samples, channels : int
    grid : Grid
    dtype : numpy dtype
        Complex dtype of the coefficients.
    block_seconds, memory : optional
        See :func:`block_schedule`.

    Yields
    ------
    first_unit, stop_unit : int
        Hop units covered, in order, together covering ``transform_units(n_samples, grid)``.
    channels : slice
        The channels of this part: all of them for a signal transformed whole, one at a time
        (in order) for each block of a long one.
    coefficients : list of ndarray
        Per band, shape ``(channels in the part, n_bins, (stop_unit - first_unit) * hop_unit /
        hop)``.
    """
    schedule = block_schedule(grid, n_samples, channels, dtype=dtype, block_seconds=block_seconds,
                              memory=memory)
    if schedule is not None:
        yield from analyze_blocks(read, n_samples, channels, schedule, dtype, workers=workers)
        return
    units = transform_units(n_samples, grid)
    length = units * grid.hop_unit
    padded = _circular_read(read, 0, length, length, n_samples, channels, np.finfo(dtype).dtype)
    yield 0, units, slice(0, channels), analyze(padded, get_plan(grid, length, dtype), workers=workers)


def synthesize_signal(
    read: Callable[[int, int, int, int], np.ndarray],
    n_samples: int,
    channels: int,
    grid: Grid,
    dtype: np.dtype,
    *,
    block_seconds: float | None = None,
    memory: int | None = None,
    workers: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Rebuild the signal whose coefficients ``read`` gives access to (inverse of
    :func:`analyze_signal`, with the same ``block_seconds`` and ``memory``).

    Parameters
    ----------
    read : callable
        ``read(band_index, first_frame, stop_frame, channel)`` returns that band's frames of
        one channel, shape ``(1, n_bins, stop_frame - first_frame)``.
    n_samples, channels : int
    grid : Grid
    dtype : numpy dtype

    Yields
    ------
    start : int
        Index of the block's first sample.
    samples : ndarray, shape (channels, n)
        Consecutive blocks that together hold the ``n_samples`` samples.
    """
    schedule = block_schedule(grid, n_samples, channels, dtype=dtype, block_seconds=block_seconds,
                              memory=memory)
    if schedule is not None:
        yield from synthesize_blocks(read, n_samples, channels, schedule, dtype, workers=workers)
        return
    length = transform_units(n_samples, grid) * grid.hop_unit
    plan = get_plan(grid, length, dtype)
    out = None
    for channel in range(channels):
        arrays = [read(index, 0, length // band.hop, channel) for index, band in enumerate(grid.bands)]
        signal = synthesize(arrays, plan, workers=workers)
        del arrays
        if channels == 1:  # no copy: the padding's few percent stay behind the view
            out = signal[:, :n_samples]
            break
        if out is None:
            out = np.empty((channels, n_samples), dtype=signal.dtype)
        out[channel] = signal[0, :n_samples]
    yield 0, out


def synthesize_range(
    read: Callable[[int, int, int, int], np.ndarray],
    n_samples: int,
    channels: int,
    grid: Grid,
    dtype: np.dtype,
    start: int,
    stop: int,
    *,
    workers: int | None = None,
) -> np.ndarray:
    """Rebuild samples ``start:stop`` of a signal from the frames around them.

    The range, widened by :data:`MARGIN_UNITS` hop units on each side, is synthesized as one
    block (as :func:`synthesize_blocks` does for each of its blocks), so the cost depends on
    the range, not on the signal's length; the samples agree with a whole decode within the
    block path's tolerance.  Samples past ``n_samples`` are zeros.

    Parameters
    ----------
    read : callable
        As for :func:`synthesize_signal`.
    n_samples, channels : int
    grid : Grid
    dtype : numpy dtype
    start, stop : int
        ``0 <= start < stop``.

    Returns
    -------
    ndarray, shape (channels, stop - start)
    """
    if not 0 <= start < stop:
        raise ParameterError(f"need 0 <= start < stop, got {start}, {stop}")
    unit = grid.hop_unit
    units = transform_units(n_samples, grid)
    first, last = start // unit, -(-stop // unit)
    span = int(fft.next_fast_len(last - first + 2 * MARGIN_UNITS))
    if span >= units:  # the whole transform costs no more
        begin, span = 0, units
    else:
        begin = first - MARGIN_UNITS
    plan = get_plan(grid, span * unit, dtype)
    out = np.zeros((channels, stop - start), dtype=np.finfo(dtype).dtype)
    kept = min(stop, n_samples) - start
    if kept <= 0:
        return out
    for channel in range(channels):
        signal = synthesize(_SpanBands(read, plan, channel, begin, units), plan, workers=workers)
        offset = start - begin * unit
        out[channel, :kept] = signal[0, offset : offset + kept]
    return out
