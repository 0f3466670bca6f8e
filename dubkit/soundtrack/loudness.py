"""Loudness normalisation to a delivery spec: integrated loudness (ITU-R BS.1770, pyloudnorm) plus a true-peak ceiling.

One static gain brings the mix to the target loudness. When that pushes a peak over the ceiling, a look-ahead
limiter shaves just those peaks (gain curve = sliding minimum of the required reduction, smoothed by a Hann
window no wider than the look-ahead, so it never lets a peak through and has no hard gain steps). Limiting lowers
the loudness a little, so the static gain is raised and the limiter rerun until the loudness is back within
``tolerance`` of the target, or it stops improving (a signal that is all peaks cannot be made louder).

Everything runs block by block over a ``Track`` (an array is wrapped in one), so an hour of audio costs a few
blocks of memory: the BS.1770 K-weighting filters carry their state from block to block, the 400 ms gating
blocks are measured from running sums of squares at exactly pyloudnorm's block bounds (same figure to 1e-9 LU),
and the limiter sees enough of each block's neighbours that its result does not depend on where blocks join.
The first pass measures the true peak too: when the gain keeps it under where the limiter starts, the limiter
would change nothing, so the output is written in one more pass and nothing is measured a second time.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d
from scipy.signal import lfilter, oaconvolve, resample_poly

from audiostory_core.tracks import BLOCK, ArrayTrack, Track, as_track, blocks
from dubkit.errors import InputError
from dubkit.options import LoudnessPreset

LOUDNESS_PRESETS: dict[LoudnessPreset, float] = {"broadcast": -23.0, "streaming": -14.0}  # EBU R128 / typical streaming
OVERSAMPLE = 4  # BS.1770 true-peak meter: 4x oversampling at 48 kHz
LOOKAHEAD = 0.005  # seconds the limiter starts reducing before a peak
HOLD = 0.020  # seconds it holds the reduction after a peak before releasing
_MARGIN_DB = 0.1  # the limiter aims this far under the ceiling, for the interpolation error of the gain curve
_IDLE = 1 - 1e-4  # true peaks this far under the limiter's aim leave it idle, whatever the rounding of the gain


@dataclass
class LoudnessReport:
    """What normalisation measured and did. LUFS/dBTP are -inf for digital silence."""

    input_lufs: float
    output_lufs: float
    true_peak_dbtp: float
    gain_db: float  # the static normalisation gain (the stems get exactly this gain)
    limited: bool  # whether the true-peak limiter had to act
    target_lufs: float = -23.0
    ceiling_dbtp: float = -1.0
    limiter_reduction_db: float = 0.0  # deepest gain reduction the limiter applied (≤ 0)

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def resolve_target(target: str | float) -> float:
    """``"broadcast"`` → -23, ``"streaming"`` → -14, or a number (``"-16"`` or -16.0) in LUFS."""
    if isinstance(target, str) and target.strip().lower() in LOUDNESS_PRESETS:
        return LOUDNESS_PRESETS[target.strip().lower()]
    try:
        value = float(target)
    except (TypeError, ValueError):
        raise InputError(
            f"loudness target {target!r} is not a number or preset: use broadcast (-23), streaming (-14) or e.g. -16"
        ) from None
    if not -70.0 <= value <= 0.0:
        raise InputError(f"loudness target {value} LUFS is out of range: use a value between -70 and 0 (e.g. -23)")
    return value


def integrated_loudness(audio: np.ndarray | Track, sample_rate: int) -> float:
    """BS.1770 integrated loudness in LUFS; -inf for silence or audio shorter than one 400 ms gating block."""
    return _measure(_checked(audio), sample_rate)[0]


def _measure(track: Track, sample_rate: int, peaks: bool = False) -> tuple[float, np.ndarray]:
    """(integrated loudness, the sample peak of every ``_BLOCK`` samples — when ``peaks``) in one read."""
    meter = _Meter(track.channels, track.samples, sample_rate)
    found = []
    for start, stop in blocks(track.samples):
        block = track.read(start, stop)
        meter.feed(block)
        if peaks:
            found.append(_block_peaks(block))
    return meter.loudness(), (np.concatenate(found) if found else np.zeros(0))


def _block_peaks(audio: np.ndarray) -> np.ndarray:
    """The peak over channels of each ``_BLOCK`` samples of ``audio`` (the last block may be shorter)."""
    return _per_block_max(_sample_peaks(audio, np.float32))


def _sample_peaks(audio: np.ndarray, dtype) -> np.ndarray:
    """Per sample, the largest magnitude over the channels (one array made, not one per step)."""
    env = np.abs(audio[0], out=np.empty(audio.shape[-1], dtype)) if audio.shape[0] else np.zeros(audio.shape[-1], dtype)
    for channel in audio[1:]:
        np.maximum(env, np.abs(channel), out=env)
    return env


def _per_block_max(env: np.ndarray) -> np.ndarray:
    """The maximum of each ``_BLOCK`` values of ``env`` (≥ 0; the last block may be shorter), as float64."""
    full, nblocks = env.size // _BLOCK, -(-env.size // _BLOCK)
    out = np.empty(nblocks, np.float64)
    if full:
        out[:full] = env[: full * _BLOCK].reshape(full, _BLOCK).max(axis=1)
    if nblocks > full:
        out[full] = env[full * _BLOCK :].max()
    return out


def _with_neighbours(block_peaks: np.ndarray) -> np.ndarray:
    """Each block's peak or its neighbours', whichever is larger: oversampling near a block's edge sees them."""
    return np.maximum(block_peaks, np.maximum(np.r_[0.0, block_peaks[:-1]], np.r_[block_peaks[1:], 0.0]))


def _peaks_under(track: Track, block_peaks: np.ndarray, limit: float) -> bool:
    """Whether every true peak of ``track`` is under ``limit``, given its ``_block_peaks``: only stretches whose
    sample peaks could oversample past ``limit`` are read again and oversampled, loudest first (one over it
    answers at once)."""
    near = _with_neighbours(block_peaks)
    if block_peaks.size and block_peaks.max() >= limit:
        return False
    todo = np.flatnonzero(near * _overshoot_bound() >= limit)
    per_read = BLOCK // _BLOCK
    runs = np.split(todo, np.flatnonzero((np.diff(todo) != 1) | (todo[1:] % per_read == 0)) + 1) if todo.size else []
    for run in sorted(runs, key=lambda r: -near[r].max()):
        lo, hi = int(run[0]) * _BLOCK, min((int(run[-1]) + 1) * _BLOCK, track.samples)
        env = _true_peak_envelope(track.read(lo - _CONTEXT, hi + _CONTEXT))
        if env[_CONTEXT : _CONTEXT + hi - lo].max(initial=0.0) >= limit:
            return False
    return True


class _KSums:
    """Running sums of the K-weighted signal's squares, per channel, taken at given sample counts, from blocks
    fed in order: pyloudnorm's filters and pass-band gains in float64, their state carried across blocks."""

    def __init__(self, channels: int, sample_rate: int, positions: np.ndarray):
        self.stages = [(f.b, f.a, f.passband_gain) for f in pyloudnorm.Meter(sample_rate)._filters.values()]
        self.state = [np.zeros((channels, max(len(b), len(a)) - 1)) for b, a, _ in self.stages]
        self.order = np.argsort(positions, kind="stable")
        self.wanted = positions[self.order]
        self.sums = np.zeros((channels, positions.size))
        self.total = np.zeros(channels)
        self.done = 0
        self.k = int(np.searchsorted(self.wanted, 0, side="right"))  # positions at 0 have sum 0

    def feed(self, block: np.ndarray) -> None:
        """Each block is worked through in pieces of ``_PIECE`` samples: their float64 temporaries stay small
        (in cache, and reused rather than fresh pages). The sums are those of one pass over the whole block:
        the filters carry their state, and each piece's running sum starts from the block's sum so far."""
        within = np.zeros(block.shape[0])  # the block's running sum so far (the total before it is added apart)
        m = block.shape[-1]
        for a in range(0, m, _PIECE):
            x = np.asarray(block[:, a : a + _PIECE], dtype=np.float64)
            for i, (b, den, gain) in enumerate(self.stages):
                y, self.state[i] = lfilter(b, den, x, axis=-1, zi=self.state[i])
                x = y if gain == 1.0 else gain * y  # (pyloudnorm's pass-band gains are 1)
            sq = np.square(x, out=x)
            sq[:, 0] += within  # so the running sum goes on exactly as over the whole block
            csum = np.cumsum(sq, axis=-1)
            stop = self.done + x.shape[-1]
            k = int(np.searchsorted(self.wanted, stop, side="right"))
            self.sums[:, self.order[self.k : k]] = csum[:, self.wanted[self.k : k] - self.done - 1] + \
                self.total[:, None]
            self.k, self.done, within = k, stop, csum[:, -1]
        if m:
            self.total = within + self.total


_PIECE = 1 << 15  # samples per piece of a K-weighting block: 512 KB of float64 stereo


class _Meter:
    """Integrated loudness of ``samples`` samples fed in order (the gating needs only the 400 ms block sums)."""

    def __init__(self, channels: int, samples: int, sample_rate: int):
        self.short = samples < int(0.4 * sample_rate) + 1
        self.lo, self.hi = _gating_bounds(samples, sample_rate)
        self.rate = sample_rate
        self.sums = _KSums(channels, sample_rate, np.concatenate([self.lo, self.hi]))
        self.nonzero = False

    def feed(self, block: np.ndarray) -> None:
        if not np.all(np.isfinite(block)):
            raise InputError("audio contains NaN or infinite samples; cannot measure loudness")
        self.nonzero = self.nonzero or bool(np.any(block))
        if not self.short:
            self.sums.feed(block)

    def loudness(self) -> float:
        if self.short or not self.nonzero:
            return float("-inf")
        s = self.sums.sums
        return _gated((s[:, self.lo.size :] - s[:, : self.lo.size]) / (0.4 * self.rate))


def _gating_bounds(n: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """pyloudnorm's 400 ms blocks with 75 % overlap, computed with its float expressions (same samples)."""
    t_g, step = 0.4, 0.25
    count = max(int(np.round(((n / sample_rate - t_g) / (t_g * step)))) + 1, 0)
    j = np.arange(count)
    lo = (t_g * (j * step) * sample_rate).astype(np.int64)
    hi = (t_g * (j * step + 1) * sample_rate).astype(np.int64)
    return np.minimum(lo, n), np.minimum(hi, n)


def _gated(z: np.ndarray) -> float:
    """The gating of BS.1770-4 (absolute -70 LUFS, relative -10 LU) over block mean squares ``z`` (channels, blocks)."""
    g = np.array([1.0, 1.0, 1.0, 1.41, 1.41])[: z.shape[0], None]
    with np.errstate(divide="ignore", invalid="ignore"):
        block = -0.691 + 10.0 * np.log10((g * z).sum(axis=0))
        above = block >= -70.0
        if not above.any():
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10((g[:, 0] * z[:, above].mean(axis=1)).sum()) - 10.0
        kept = (block > relative) & (block > -70.0)
        if not kept.any():
            return float("-inf")
        return float(-0.691 + 10.0 * np.log10((g[:, 0] * z[:, kept].mean(axis=1)).sum()))


def true_peak_dbtp(audio: np.ndarray | Track, floor: float | None = None) -> float:
    """Peak of the 4x oversampled signal, in dBTP (dB relative to full scale). ``floor``: a known lower bound of
    it (such as what was written, just under its sample peak); without one the sample peak is found first."""
    track = _checked(audio)
    if floor is None:
        floor = max((_magnitude(track.read(a, b)) for a, b in blocks(track.samples)), default=0.0)
    meter = _PeakMeter(track.channels, floor=floor)  # the sample peak first: little is left to oversample
    for start, stop in blocks(track.samples):
        meter.feed(track.read(start, stop))
    peak = meter.finish()
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def _magnitude(block: np.ndarray) -> float:
    """The largest magnitude in ``block`` (without an array of magnitudes)."""
    return max(float(block.max(initial=0.0)), -float(block.min(initial=0.0)))


class _Written:
    """A track written through, noting the largest magnitude written (a floor for its true peak)."""

    def __init__(self, track: Track):
        self.track, self.channels, self.samples, self.peak = track, track.channels, track.samples, 0.0

    def write(self, start: int, block: np.ndarray) -> None:
        self.peak = max(self.peak, _magnitude(block))
        self.track.write(start, block)


class _PeakMeter:
    """The true peak of samples fed in order, block by block: each sample's oversampled values are taken once
    ``_CONTEXT`` samples on both sides of it have been seen (zeros before the first and after the last, as a
    whole-signal pass sees them), so the result is the one of oversampling the whole signal at once. Only the
    stretches that could beat the peak found so far (or the ``floor`` given, the sample peak of the whole when
    it is known) are oversampled (``_true_peak_envelope``'s floor), which leaves the maximum unchanged."""

    def __init__(self, channels: int, floor: float = 0.0):
        self.before = np.zeros((channels, 0), np.float32)  # up to _CONTEXT samples already measured
        self.pending = np.zeros((channels, 0), np.float32)  # the last samples, awaiting what follows them
        self.peak = floor  # a known lower bound of the true peak (such as the sample peak): less to oversample

    def feed(self, block: np.ndarray) -> None:
        x = np.concatenate([self.before, self.pending, np.asarray(block, np.float32)], axis=-1)
        first, stop = self.before.shape[-1], x.shape[-1] - _CONTEXT
        if stop <= first:
            self.pending = x[:, first:]
            return
        self._take(x, first, stop)
        self.before, self.pending = x[:, max(stop - _CONTEXT, 0) : stop], x[:, stop:]

    def finish(self) -> float:
        """The linear true peak (0 for silence or nothing fed)."""
        x = np.concatenate([self.before, self.pending], axis=-1)
        self._take(x, self.before.shape[-1], x.shape[-1])
        self.before = self.pending = x[:, :0]
        return self.peak

    def _take(self, x: np.ndarray, first: int, stop: int) -> None:
        if stop > first:
            env = _true_peak_envelope(x, floor=self.peak)
            self.peak = max(self.peak, float(np.max(env[first:stop], initial=0.0)))


def normalize_loudness(
    audio: np.ndarray | Track,
    sample_rate: int,
    *,
    target_lufs: float | str = -23.0,
    true_peak_db: float = -1.0,
    tolerance: float = 0.5,
    max_iterations: int = 8,
    out: Track | None = None,
) -> tuple[np.ndarray | Track, LoudnessReport]:
    """Bring ``audio`` (channels, samples) to ``target_lufs`` (LUFS or a preset name) with true peak ≤ ``true_peak_db``.

    Returns the normalised audio and a report: a float32 array of the same shape for an array, else ``out`` (a
    track the result is written to in order, block by block). Silent or too-short audio gets no gain (only the
    ceiling is kept) and is reported as -inf LUFS.
    """
    track = _checked(audio)
    sink = out if out is not None else ArrayTrack(np.zeros(track.shape, np.float32))
    result = sink.audio if out is None else sink  # (the array is filled as the track is written)
    target_lufs = resolve_target(target_lufs)
    l_in, block_peaks = _measure(track, sample_rate, peaks=True)
    gain_db = target_lufs - l_in if np.isfinite(l_in) else 0.0  # silence: no gain, but peaks are still kept
    g = 10 ** (gain_db / 20)
    if _peaks_under(track, block_peaks, 10 ** ((true_peak_db - _MARGIN_DB) / 20) * _IDLE / g):
        # The gain leaves every true peak under where the limiter starts, so it would change no sample: the
        # result is the first pass scaled, its loudness the measured one plus the gain, its true peak measured as
        # it is written (no search, no second loudness and true-peak pass).
        floor = g * float(block_peaks.max(initial=0.0)) * (1 - 1e-6)  # under the output's sample peak
        peak = _scaled_pass(track, gain_db, sink, floor)
        l_out, reduction = l_in + gain_db, 0.0
        tp_out = 20 * np.log10(peak) if peak > 0 else float("-inf")
    else:
        written = _Written(sink)
        if np.isfinite(l_in):  # the search measured this very pass: it is only written now
            gain_db, l_out, _ = _search_gain(track, sample_rate, l_in, target_lufs, true_peak_db, tolerance,
                                             max_iterations)
            reduction = _limited_pass(track, sample_rate, gain_db, true_peak_db, write=written, measure=False)[1]
        else:
            l_out, reduction = _limited_pass(track, sample_rate, gain_db, true_peak_db, write=written)
        # The limiter acted (or may have): its result is measured again, read back (from just under the sample
        # peak written: 24-bit rounding cannot take it under that, and only stretches near it are oversampled).
        tp_out = true_peak_dbtp(result, floor=written.peak * (1 - 1e-6))
    report = LoudnessReport(
        input_lufs=l_in,
        output_lufs=l_out,
        true_peak_dbtp=float(tp_out),
        gain_db=float(gain_db),
        limited=reduction < 0,
        target_lufs=target_lufs,
        ceiling_dbtp=true_peak_db,
        limiter_reduction_db=float(reduction),
    )
    return result, report


def _search_gain(track: Track, sample_rate: int, l_in: float, target: float, ceiling: float, tolerance: float,
                 max_iterations: int) -> tuple[float, float, float]:
    """(static gain, loudness after limiting, deepest limiter reduction) closest to ``target``: the limiter
    lowers the loudness, so the gain is raised until the loudness is back or stops improving."""
    gain_db = target - l_in
    best = None
    for _ in range(max_iterations):
        l_out, reduction = _limited_pass(track, sample_rate, gain_db, ceiling)
        if best is None or abs(l_out - target) < abs(best[1] - target) - 0.01:
            best = (gain_db, l_out, reduction)
        else:  # raising the gain no longer brings the loudness closer: the limiter eats it all
            break
        if reduction == 0.0 or l_out >= target - tolerance / 5:
            break
        gain_db += target - l_out
    assert best is not None
    return best


def _scaled_pass(track: Track, gain_db: float, write: Track, floor: float) -> float:
    """``track`` times the static gain into ``write`` (the very samples ``_limited_pass`` gives when its limiter
    does nothing); returns their linear true peak, measured on the way (``floor``: a lower bound of it)."""
    g = np.float32(10 ** (gain_db / 20))
    peaks = _PeakMeter(track.channels, floor)
    for start, stop in blocks(track.samples):
        block = track.read(start, stop) * g
        peaks.feed(block)
        write.write(start, block)
    return peaks.finish()


def _limited_pass(track: Track, sample_rate: int, gain_db: float, ceiling_db: float,
                  write: Track | None = None, measure: bool = True) -> tuple[float, float]:
    """One pass of static gain + limiter over ``track``: (integrated loudness of the result — NaN unless
    ``measure`` —, deepest reduction), the result written to ``write`` when given. Each block is limited with
    ``_limiter_context`` samples of its neighbours, so the joins are what one whole-signal pass would give."""
    g = np.float32(10 ** (gain_db / 20))
    n = track.samples
    ctx = _limiter_context(sample_rate)
    meter = _Meter(track.channels, n, sample_rate) if measure else None
    deepest = 0.0
    for start, stop in blocks(n):
        lo, hi = max(start - ctx, 0), min(stop + ctx, n)
        limited, reduction = _limit(track.read(lo, hi) * g, sample_rate, ceiling_db, keep=slice(start - lo, stop - lo))
        block = limited[:, start - lo : stop - lo]
        deepest = min(deepest, reduction)
        if meter is not None:
            meter.feed(block)
        if write is not None:
            write.write(start, block)
    return (meter.loudness() if meter is not None else float("nan")), deepest


def _limiter_context(sample_rate: int) -> int:
    """Samples either side of a block that its limited output depends on: per limiter pass the true-peak filter
    (``_CONTEXT``) plus the gain curve's sliding minimum and smoothing (2 look-aheads + hold); up to 4 passes."""
    half = max(int(round(LOOKAHEAD * sample_rate)), 1)
    return 4 * (2 * half + int(round(HOLD * sample_rate)) + _CONTEXT + 2)


def _limit(audio: np.ndarray, sample_rate: int, ceiling_db: float, keep: slice = slice(None)) -> tuple[np.ndarray, float]:
    """Look-ahead true-peak limiter. Returns (limited audio, deepest reduction in dB over ``keep``, 0 when
    untouched)."""
    aim = 10 ** ((ceiling_db - _MARGIN_DB) / 20)
    ceiling = 10 ** (ceiling_db / 20)
    out = audio
    deepest = 0.0
    for _ in range(4):  # a second pass catches the rare residual overshoot of a steep gain change
        env = _true_peak_envelope(out, floor=aim)
        if env.size == 0 or env.max() <= ceiling:
            break
        need = np.minimum(1.0, aim / np.maximum(env, 1e-12))
        gain = _smooth_gain(need, sample_rate)
        out = (out * gain[None, :]).astype(np.float32, copy=False)  # (float32 already: no second copy)
        kept = gain[keep]
        if kept.size:
            deepest = min(deepest, float(20 * np.log10(max(kept.min(), 1e-12))))
    return out.astype(np.float32, copy=False), deepest


def _smooth_gain(need: np.ndarray, sample_rate: int) -> np.ndarray:
    """Smooth gain curve that is ≤ ``need`` everywhere.

    Each output sample is a Hann-weighted average of the sliding minimum over ±half a window (plus a hold after
    the peak); every term of that average already sees the peak, so the average cannot exceed the requirement.
    """
    half = max(int(round(LOOKAHEAD * sample_rate)), 1)
    hold = int(round(HOLD * sample_rate))
    floor = _shifted_min(need, ahead=half, behind=half + hold)
    kernel = np.hanning(2 * half + 3)[1:-1]
    kernel /= kernel.sum()
    padded = np.pad(floor, half, mode="edge")
    smooth = oaconvolve(padded, kernel, mode="valid")
    return np.minimum(smooth, need).astype(np.float32)  # equal up to rounding; never above the requirement


def _shifted_min(x: np.ndarray, ahead: int, behind: int) -> np.ndarray:
    """y[n] = min(x[n - behind : n + ahead + 1]), edges clamped."""
    size = ahead + behind + 1
    padded = np.pad(x, (behind, ahead), mode="edge")
    centred = minimum_filter1d(padded, size=size, mode="nearest")  # window [c - size//2, c - size//2 + size - 1]
    return centred[size // 2 : size // 2 + x.size]


def _true_peak_envelope(audio: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Per-sample peak over all channels of the 4x oversampled signal around each sample (samples,).

    Oversampling is the expensive part, so it is done only in blocks that could reach ``floor``: the
    interpolation filter cannot raise a block's peak by more than ``_overshoot_bound()`` times its sample peak.
    Elsewhere the sample peak is returned — exact enough, since it is then certainly below ``floor``.
    """
    n = audio.shape[-1]
    env = _sample_peaks(audio, np.float64)
    if n == 0:
        return env
    nblocks = -(-n // _BLOCK)
    block_peak = _per_block_max(env)
    near = _with_neighbours(block_peak)
    todo = near * _overshoot_bound() > floor
    b = 0
    while b < nblocks:  # oversample each run of consecutive candidate blocks in one go
        if not todo[b]:
            b += 1
            continue
        e = b
        while e < nblocks and todo[e]:
            e += 1
        lo, hi = b * _BLOCK, min(e * _BLOCK, n)
        clo, chi = max(lo - _CONTEXT, 0), min(hi + _CONTEXT, n)
        up = np.abs(resample_poly(audio[:, clo:chi].astype(np.float32), OVERSAMPLE, 1, axis=-1))
        up = np.maximum.reduce([up[c, k::OVERSAMPLE] for c in range(up.shape[0]) for k in range(OVERSAMPLE)])
        # ^ per input sample: the sample and the 3 interpolated points after it, over all channels
        up = np.maximum(up, np.r_[0.0, up[:-1]])  # and the points just before it
        env[lo:hi] = np.maximum(env[lo:hi], up[lo - clo : hi - clo])
        b = e
    return env


_BLOCK = 4096  # samples per true-peak block
_CONTEXT = 64  # input samples either side of a block that its oversampled values depend on (filter span ~20)


@functools.lru_cache(maxsize=1)
def _overshoot_bound() -> float:
    """Largest factor by which 4x interpolation can exceed the sample peak (max L1 norm of a filter phase)."""
    impulse = np.zeros(4 * _CONTEXT + 1)
    impulse[2 * _CONTEXT] = 1.0
    h = resample_poly(impulse, OVERSAMPLE, 1)
    return float(max(np.abs(h[k::OVERSAMPLE]).sum() for k in range(OVERSAMPLE))) * 1.001


def _checked(audio: np.ndarray | Track) -> Track:
    """Arrays are checked (shape, finite) and wrapped; tracks are checked block by block as they are measured."""
    return as_track(_as_audio(audio)) if isinstance(audio, np.ndarray) or not hasattr(audio, "read") else audio


def _as_audio(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InputError(f"audio must be (channels, samples), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError("audio contains NaN or infinite samples; cannot measure loudness")
    return a


def short_term_loudness(
    audio: np.ndarray | Track, sample_rate: int, window: float = 3.0, hop: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """EBU R128 short-term loudness (3 s window, K-weighted, ungated) every ``hop`` s → (times, LUFS).

    ``times`` are window centres. K-weighting reuses pyloudnorm's BS.1770 filter stages, so this curve and the
    integrated figure come from the same filters; one pass over the audio, block by block.
    """
    track = _checked(audio)
    n = track.samples
    w, h = max(int(window * sample_rate), 1), max(int(hop * sample_rate), 1)
    w = min(w, n)
    starts = np.arange(0, n - w + 1, h)
    sums = _KSums(track.channels, sample_rate, np.concatenate([starts, starts + w]))
    for lo, hi in blocks(n):
        sums.feed(track.read(lo, hi))
    mean_sq = (sums.sums[:, starts.size :] - sums.sums[:, : starts.size]).sum(axis=0) / max(w, 1)
    with np.errstate(divide="ignore"):
        lufs = -0.691 + 10 * np.log10(mean_sq)
    return (starts + w / 2) / sample_rate, lufs
