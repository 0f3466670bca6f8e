"""Mixing the new soundtrack with the video's original audio: replace it, sit under it, or duck under its dialogue.

The gain applied to the new soundtrack is returned as a per-sample curve, so the stems can be rebuilt with the
same curve and still sum to the mix exactly (see ``dubkit.soundtrack.stems``). Ducking ramps are raised-cosine
(zero slope at both ends), so a steady bed never clicks when it dips under a line of dialogue.

Given arrays, the mix and its gain are arrays. Given tracks (a long soundtrack in scratch files), nothing is
computed up front: the mix is a ``MixedTrack`` and the gain a ``GainCurve``, both worked out block by block when
read, so the hour-long mix never exists in memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audiostory_core.audio import match_channels
from audiostory_core.timing import to_samples
from audiostory_core.tracks import Track
from dubkit.errors import InputError
from dubkit.options import MIX_MODES, MixMode

@dataclass
class MixResult:
    """``audio = new * gain + dialogue`` (dialogue omitted when None), all (channels, samples) float32.

    ``mode`` is the resolved mode (never "auto"); ``gain`` the linear gain curve (samples,) the new soundtrack was
    multiplied by; ``dialogue`` the original audio as it went into the mix, or None when it was replaced. For a
    mix of tracks, ``audio`` is a ``MixedTrack`` and ``gain`` a ``GainCurve`` (read them with ``gain_at``).
    """

    audio: np.ndarray | Track
    mode: str
    gain: np.ndarray | GainCurve
    dialogue: np.ndarray | Track | None
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.audio.shape[-1] / self.sample_rate

    def gain_at(self, start: int, stop: int) -> np.ndarray:
        """The gain curve over samples ``[start, stop)``."""
        if isinstance(self.gain, np.ndarray):
            return self.gain[start:stop]
        return self.gain.read(start, stop)


class GainCurve:
    """The per-sample gain of a mix, computed for any range of samples when read: 1 away from speech,
    ``floor`` over every speech region, raised-cosine ramps ``attack`` samples before and ``release`` after."""

    def __init__(self, n: int, regions: Sequence[tuple[int, int]], floor: float, attack: int, release: int,
                 level: float = 1.0):
        self.samples, self.floor, self.level = n, floor, level
        self.regions = [(max(s, 0), min(e, n)) for s, e in regions if min(e, n) > max(s, 0)]
        self.attack, self.release = attack, release
        self.rise = _raised_cosine(attack) if attack else np.zeros(0)
        self.fall = _raised_cosine(release)[::-1] if release else np.zeros(0)

    def read(self, start: int, stop: int) -> np.ndarray:
        if not self.regions:
            return np.full(max(stop - start, 0), self.level, np.float32)
        depth = np.zeros(max(stop - start, 0), dtype=np.float64)  # 0 = unity, 1 = fully ducked
        for s, e in self.regions:
            if e + self.release <= start or s - self.attack >= stop:
                continue
            _lay(depth, start, s, np.ones(e - s))
            if self.attack:
                lo = max(s - self.attack, 0)
                _lay(depth, start, lo, self.rise[lo - (s - self.attack) :])
            if self.release:
                _lay(depth, start, e, self.fall[: min(e + self.release, self.samples) - e])
        return (1.0 - depth * (1.0 - self.floor)).astype(np.float32)


def _lay(depth: np.ndarray, start: int, at: int, values: np.ndarray) -> None:
    """``depth[at - start : ...] = max(depth, values)`` where the two overlap."""
    lo, hi = max(at, start), min(at + values.size, start + depth.size)
    if hi > lo:
        depth[lo - start : hi - start] = np.maximum(depth[lo - start : hi - start], values[lo - at : hi - at])


class MixedTrack:
    """``new * gain + dialogue``, block by block when read."""

    def __init__(self, new: Track, gain: GainCurve, dialogue: Track | None):
        self.new, self.gain, self.dialogue = new, gain, dialogue
        self.channels, self.samples = new.channels, new.samples

    @property
    def shape(self) -> tuple[int, int]:
        return self.channels, self.samples

    def read(self, start: int, stop: int) -> np.ndarray:
        """The mix's samples; never written into (they may be the new track's own, read without a copy)."""
        out = self.new.read(start, stop)
        if self.gain.regions or self.gain.level != 1.0:  # (unity throughout: the soundtrack replaces the original)
            out = out * self.gain.read(start, stop)[None, :]
        if self.dialogue is not None:
            out = out + self.dialogue.read(start, stop)
        return out

    def write(self, start: int, block: np.ndarray) -> None:
        raise TypeError("a mix is computed from its parts")


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def mix_tracks(
    new: np.ndarray | Track,
    original: np.ndarray | Track | None,
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
    arrays = isinstance(new, np.ndarray) or not hasattr(new, "read")
    new_t, original_t = _inputs(new, original, arrays)
    n = new_t.shape[-1]
    speech = [(float(s), float(e)) for s, e in speech if float(e) > float(s)]
    if mode == "auto":
        mode = "duck" if original_t is not None and speech else "replace"
    if mode in ("under", "duck") and original_t is None:
        raise InputError(f"`mix` {mode!r} needs the video's original audio, and this video has none: use 'replace'")
    if duck_db > 0 or under_db > 0:
        raise InputError("duck_db and under_db are attenuations: give them in dB at or below 0")
    if mode == "replace":
        gain, original_t = GainCurve(n, [], 1.0, 0, 0), None
    elif mode == "under":
        gain = GainCurve(n, [], 1.0, 0, 0, level=db_to_gain(under_db))
    else:
        gain = _duck_gain(n, sample_rate, speech, duck_db, attack, release)
    if not arrays:
        return MixResult(MixedTrack(new_t, gain, original_t), mode, gain, original_t, sample_rate)
    curve = gain.read(0, n)
    audio = new_t.copy() if original_t is None else (new_t * curve[None, :] + original_t).astype(np.float32)
    return MixResult(audio=audio, mode=mode, gain=curve, dialogue=original_t, sample_rate=sample_rate)


def _inputs(new, original, arrays: bool):
    """The checked inputs: arrays as (channels, samples) float32, the original matched to ``new``'s channels."""
    if not arrays:
        if original is not None and original.shape != new.shape:
            raise InputError(f"original audio is {original.shape} but the new soundtrack is {new.shape}: "
                             "place the original on the video's clock before mixing")
        return new, original
    new = _as_audio(new, "new soundtrack")
    if original is not None:
        original = _as_audio(original, "original audio")
        if original.shape[0] != new.shape[0]:
            original = match_channels(original, new.shape[0])
        if original.shape[-1] != new.shape[-1]:
            raise InputError(
                f"original audio is {original.shape[-1]} samples but the new soundtrack is {new.shape[-1]}: "
                "resample and place the original to the video length before mixing"
            )
    return new, original


def _duck_gain(n: int, sample_rate: int, speech: Sequence[tuple[float, float]], duck_db: float, attack: float,
               release: float) -> GainCurve:
    regions = [(to_samples(s, sample_rate), to_samples(e, sample_rate)) for s, e in speech]
    return GainCurve(n, regions, db_to_gain(duck_db), max(int(round(attack * sample_rate)), 0),
                     max(int(round(release * sample_rate)), 0))


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
    return _duck_gain(n, sample_rate, speech, duck_db, attack, release).read(0, n)


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

