"""Mixing the new soundtrack with the video's original audio: replace it, sit under it, or duck under its dialogue.

The gain applied to the new soundtrack is returned as a per-sample curve, so the stems can be rebuilt with the
same curve and still sum to the mix exactly (see ``dubkit.soundtrack.stems``). Ducking ramps are raised-cosine
(zero slope at both ends), so a steady bed never clicks when it dips under a line of dialogue.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audiostory_core.audio import match_channels
from audiostory_core.timing import to_samples
from dubkit.errors import InputError
from dubkit.options import MIX_MODES, MixMode



@dataclass
class MixResult:
    """``audio = new * gain + dialogue`` (dialogue omitted when None), all (channels, samples) float32.

    ``mode`` is the resolved mode (never "auto"); ``gain`` the linear gain curve (samples,) the new soundtrack was
    multiplied by; ``dialogue`` the original audio as it went into the mix, or None when it was replaced.
    """

    audio: np.ndarray
    mode: str
    gain: np.ndarray
    dialogue: np.ndarray | None
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def mix_tracks(
    new: np.ndarray,
    original: np.ndarray | None,
    sample_rate: int,
    *,
    mode: MixMode = "auto",
    speech: Sequence[tuple[float, float]] = (),
    duck_db: float = -12.0,
    attack: float = 0.08,
    release: float = 0.35,
    under_db: float = -6.0,
) -> MixResult:
    """Combine ``new`` (the generated soundtrack) with ``original`` (the video's own audio, same shape).

    - "replace": the original is dropped; the new soundtrack plays at unity.
    - "under": the original plays at unity and the new soundtrack sits ``under_db`` below it throughout.
    - "duck": the original plays at unity; the new soundtrack drops by ``duck_db`` over each speech region,
      ramping down over ``attack`` seconds before the region and back up over ``release`` seconds after it.
    - "auto": "duck" when there is an original and ``speech`` is non-empty, else "replace".
    """
    if mode not in MIX_MODES:
        raise InputError(f"unknown mix mode {mode!r}: use one of {', '.join(MIX_MODES)}")
    new = _as_audio(new, "new soundtrack")
    n = new.shape[-1]
    if original is not None:
        original = _as_audio(original, "original audio")
        if original.shape[0] != new.shape[0]:
            original = match_channels(original, new.shape[0])
        if original.shape[-1] != n:
            raise InputError(
                f"original audio is {original.shape[-1]} samples but the new soundtrack is {n}: "
                "resample and place the original to the video length before mixing"
            )
    speech = [(float(s), float(e)) for s, e in speech if float(e) > float(s)]
    if mode == "auto":
        mode = "duck" if original is not None and speech else "replace"
    if mode in ("under", "duck") and original is None:
        raise InputError(f"`mix` {mode!r} needs the video's original audio, and this video has none: use 'replace'")
    if duck_db > 0 or under_db > 0:
        raise InputError("duck_db and under_db are attenuations: give them in dB at or below 0")

    if mode == "replace":
        gain = np.ones(n, dtype=np.float32)
        return MixResult(audio=new.copy(), mode=mode, gain=gain, dialogue=None, sample_rate=sample_rate)
    if mode == "under":
        gain = np.full(n, db_to_gain(under_db), dtype=np.float32)
    else:
        gain = duck_curve(n, sample_rate, speech, duck_db=duck_db, attack=attack, release=release)
    assert original is not None
    audio = (new * gain[None, :] + original).astype(np.float32)
    return MixResult(audio=audio, mode=mode, gain=gain, dialogue=original, sample_rate=sample_rate)


def duck_curve(
    n: int,
    sample_rate: int,
    speech: Sequence[tuple[float, float]],
    *,
    duck_db: float = -12.0,
    attack: float = 0.08,
    release: float = 0.35,
) -> np.ndarray:
    """Per-sample linear gain: 1 away from speech, ``duck_db`` over every speech region, raised-cosine between.

    The full depth holds over the whole region; the attack ramp ends where speech starts and the release ramp
    starts where it ends. Overlapping ramps of neighbouring regions take the deeper of the two.
    """
    depth = np.zeros(n, dtype=np.float64)  # 0 = unity, 1 = fully ducked
    a = max(int(round(attack * sample_rate)), 0)
    r = max(int(round(release * sample_rate)), 0)
    for start, end in speech:
        s, e = to_samples(start, sample_rate), to_samples(end, sample_rate)
        s, e = max(s, 0), min(e, n)
        if e <= s:
            continue
        depth[s:e] = 1.0
        if a:
            lo = max(s - a, 0)
            ramp = _raised_cosine(a)[lo - (s - a) :]
            depth[lo:s] = np.maximum(depth[lo:s], ramp)
        if r:
            hi = min(e + r, n)
            ramp = _raised_cosine(r)[::-1][: hi - e]
            depth[e:hi] = np.maximum(depth[e:hi], ramp)
    floor = db_to_gain(duck_db)
    return (1.0 - depth * (1.0 - floor)).astype(np.float32)


def _raised_cosine(length: int) -> np.ndarray:
    """0 → 1 over ``length`` samples with zero slope at both ends (excludes the endpoints themselves)."""
    k = (np.arange(length, dtype=np.float64) + 1.0) / (length + 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * k)


def _as_audio(audio: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[-1] == 0:
        raise InputError(f"{what} must be (channels, samples) audio with at least one sample, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{what} contains NaN or infinite samples")
    return a

