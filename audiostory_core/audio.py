"""Shared audio helpers: one rule each for checking, resampling, matching channels and fitting a length.

Audio in the project is float32 shaped (channels, samples); every module that needs one of these operations
imports it from here, so two stages never disagree about, say, how a clip a few samples short is padded.
"""
from __future__ import annotations

from math import gcd
from typing import Any

import numpy as np

from .errors import DubkitError, PlanError

# A clip at most this many samples short (resampling rounds lengths) is held at its last value, not zeroed, so
# fitting it never puts a step at its end.
HOLD_SAMPLES = 4
MIN_RATE = 8000


def check_audio(audio: Any, what: str = "input audio", error: type[DubkitError] = PlanError) -> np.ndarray:
    """``audio`` as float32 (channels, samples) with at least one sample, all finite; (samples,) is one channel.

    Raises ``error`` with one line that says what is wrong (``what`` names the audio in it).
    """
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[-1] == 0:
        raise error(f"{what} must be shaped (channels, samples) with some samples, got {a.shape}")
    if a.shape[0] > 16 and a.shape[-1] <= 16:
        raise error(f"{what} looks transposed {a.shape}: pass it as (channels, samples)")
    if not np.all(np.isfinite(a)):
        raise error(f"{what} contains NaN or infinite samples; clean it before using it")
    return a


def check_rate(sample_rate: Any, error: type[DubkitError] = PlanError) -> int:
    """``sample_rate`` as an int of at least ``MIN_RATE`` Hz (lower rates cannot hold the sounds we analyse)."""
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError):
        sr = 0
    if sr < MIN_RATE:
        raise error(f"sample rate must be at least {MIN_RATE} Hz, got {sample_rate!r}")
    return sr


def resample(audio: np.ndarray, rate_in: int, rate_out: int, dtype: Any = np.float32) -> np.ndarray:
    """Polyphase resampling along the last axis, returned as ``dtype`` (the synthesis bank keeps float64)."""
    if int(rate_in) == int(rate_out):
        return np.asarray(audio).astype(dtype, copy=False)
    g = gcd(int(rate_in), int(rate_out))
    from scipy.signal import resample_poly  # here: importing scipy.signal costs 0.6 s, most runs never resample

    return resample_poly(audio, int(rate_out) // g, int(rate_in) // g, axis=-1).astype(dtype, copy=False)


def match_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """(samples,) or (c, samples) → (channels, samples): mono is repeated, other layouts are downmixed first."""
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.shape[0] == channels:
        return audio
    if audio.shape[0] == 1:
        return np.repeat(audio, channels, axis=0)
    return np.repeat(audio.mean(axis=0, keepdims=True), channels, axis=0)


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Cut or pad the last axis to exactly ``length`` samples.

    Padding is silence, except that a clip at most ``HOLD_SAMPLES`` short is held at its last value.
    """
    have = audio.shape[-1]
    if have >= length:
        return audio[..., :length]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, length - have)]
    return np.pad(audio, pad, mode="edge" if have and length - have <= HOLD_SAMPLES else "constant")
