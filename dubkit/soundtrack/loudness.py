"""Loudness normalisation to a delivery spec: integrated loudness (ITU-R BS.1770, pyloudnorm) plus a true-peak ceiling.

One static gain brings the mix to the target loudness. When that pushes a peak over the ceiling, a look-ahead
limiter shaves just those peaks (gain curve = sliding minimum of the required reduction, smoothed by a Hann
window no wider than the look-ahead, so it never lets a peak through and has no hard gain steps). Limiting lowers
the loudness a little, so the static gain is raised and the limiter rerun until the loudness is back within
``tolerance`` of the target, or it stops improving (a signal that is all peaks cannot be made louder).
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d
from scipy.signal import oaconvolve, resample_poly

from dubkit.errors import InputError
from dubkit.options import LoudnessPreset

LOUDNESS_PRESETS: dict[LoudnessPreset, float] = {"broadcast": -23.0, "streaming": -14.0}  # EBU R128 / typical streaming
OVERSAMPLE = 4  # BS.1770 true-peak meter: 4x oversampling at 48 kHz
LOOKAHEAD = 0.005  # seconds the limiter starts reducing before a peak
HOLD = 0.020  # seconds it holds the reduction after a peak before releasing
_MARGIN_DB = 0.1  # the limiter aims this far under the ceiling, for the interpolation error of the gain curve


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


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """BS.1770 integrated loudness in LUFS; -inf for silence or audio shorter than one 400 ms gating block."""
    a = _as_audio(audio)
    if a.shape[-1] < int(0.4 * sample_rate) + 1 or not np.any(a):
        return float("-inf")
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(a.T.astype(np.float64)))


def true_peak_dbtp(audio: np.ndarray) -> float:
    """Peak of the 4x oversampled signal, in dBTP (dB relative to full scale)."""
    a = _as_audio(audio)
    sample_peak = float(np.max(np.abs(a), initial=0.0))
    peak = float(np.max(_true_peak_envelope(a, floor=sample_peak), initial=0.0))
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def normalize_loudness(
    audio: np.ndarray,
    sample_rate: int,
    *,
    target_lufs: float | str = -23.0,
    true_peak_db: float = -1.0,
    tolerance: float = 0.5,
    max_iterations: int = 8,
) -> tuple[np.ndarray, LoudnessReport]:
    """Bring ``audio`` (channels, samples) to ``target_lufs`` (LUFS or a preset name) with true peak ≤ ``true_peak_db``.

    Returns the normalised audio (float32, same shape) and a report. Silent or too-short audio is returned
    unchanged (gain 0 dB) and reported as -inf LUFS.
    """
    a = _as_audio(audio)
    target_lufs = resolve_target(target_lufs)
    l_in = integrated_loudness(a, sample_rate)
    if not np.isfinite(l_in):  # nothing to measure: no gain; still keep peaks under the ceiling
        out, reduction = _limit(a, sample_rate, true_peak_db)
        return out, LoudnessReport(
            l_in, l_in, float(true_peak_dbtp(out)), 0.0, reduction < 0, target_lufs, true_peak_db, reduction
        )

    gain_db = target_lufs - l_in
    best = None
    for _ in range(max_iterations):
        scaled = a * np.float32(10 ** (gain_db / 20))
        out, reduction = _limit(scaled, sample_rate, true_peak_db)
        l_out = integrated_loudness(out, sample_rate)
        if best is None or abs(l_out - target_lufs) < abs(best[2] - target_lufs) - 0.01:
            best = (out, gain_db, l_out, reduction)
        else:  # raising the gain no longer brings the loudness closer: the limiter eats it all
            break
        if reduction == 0.0 or l_out >= target_lufs - tolerance / 5:
            break
        gain_db += target_lufs - l_out
    out, gain_db, l_out, reduction = best
    report = LoudnessReport(
        input_lufs=l_in,
        output_lufs=l_out,
        true_peak_dbtp=float(true_peak_dbtp(out)),
        gain_db=float(gain_db),
        limited=reduction < 0,
        target_lufs=target_lufs,
        ceiling_dbtp=true_peak_db,
        limiter_reduction_db=float(reduction),
    )
    return out, report


def _limit(audio: np.ndarray, sample_rate: int, ceiling_db: float) -> tuple[np.ndarray, float]:
    """Look-ahead true-peak limiter. Returns (limited audio, deepest reduction in dB, 0 when untouched)."""
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
        out = (out * gain[None, :]).astype(np.float32)
        deepest = min(deepest, float(20 * np.log10(max(gain.min(), 1e-12))))
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
    env = np.maximum.reduce(np.abs(audio), axis=0).astype(np.float64)
    if n == 0:
        return env
    nblocks = -(-n // _BLOCK)
    block_peak = np.pad(env, (0, nblocks * _BLOCK - n)).reshape(nblocks, _BLOCK).max(axis=1)
    near = np.maximum(block_peak, np.maximum(np.r_[0.0, block_peak[:-1]], np.r_[block_peak[1:], 0.0]))
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
    audio: np.ndarray, sample_rate: int, window: float = 3.0, hop: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """EBU R128 short-term loudness (3 s window, K-weighted, ungated) every ``hop`` s → (times, LUFS).

    ``times`` are window centres. K-weighting reuses pyloudnorm's BS.1770 filter stages, so this curve and the
    integrated figure come from the same filters.
    """
    a = _as_audio(audio).astype(np.float64)
    meter = pyloudnorm.Meter(sample_rate)
    for stage in meter._filters.values():  # the BS.1770 pre-filter (high shelf) and RLB high-pass
        a = np.stack([stage.apply_filter(ch) for ch in a])
    power = np.cumsum(np.concatenate([np.zeros((a.shape[0], 1)), a**2], axis=1), axis=1)
    w, h = max(int(window * sample_rate), 1), max(int(hop * sample_rate), 1)
    if a.shape[1] < w:
        w = a.shape[1]
    starts = np.arange(0, a.shape[1] - w + 1, h)
    mean_sq = (power[:, starts + w] - power[:, starts]).sum(axis=0) / w
    with np.errstate(divide="ignore"):
        lufs = -0.691 + 10 * np.log10(mean_sq)
    return (starts + w / 2) / sample_rate, lufs
