"""The whole finishing chain in one call: find dialogue → mix → loudness, as ``dubkit dub`` runs it.

Kept separate from the steps themselves so each stays testable alone; this only decides which steps apply
(speech detection only when a mode needs it, loudness only when a target is given) and times them.

Arrays in, arrays out. Tracks in (a long soundtrack in scratch files) and an ``out`` track to write: the mix is
computed as it is read, normalised block by block into ``out``, and speech is found in a 16 kHz mono copy of the
original (a ninth of its stereo float size) made block by block — the only full-length array of the stage.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from math import gcd
from typing import Sequence

import numpy as np

from audiostory_core.tracks import ArrayTrack, Track, blocks, resample_track

from .dialogue import VAD_RATE, detect_speech
from .loudness import LoudnessReport, normalize_loudness
from ..options import MixMode
from .mix import MixResult, mix_tracks


@dataclass
class Mastered:
    """``audio`` is what gets muxed; ``mix`` the pre-loudness mix (for stems); ``speech`` the regions used."""

    audio: np.ndarray | Track
    mix: MixResult
    loudness: LoudnessReport | None
    speech: list[tuple[float, float]]
    timings: dict[str, float] = field(default_factory=dict)


def master_soundtrack(
    new: np.ndarray | Track,
    original: np.ndarray | Track | None,
    sample_rate: int,
    *,
    mode: MixMode = "auto",
    duck_db: float = -12.0,
    under_db: float = -6.0,
    loudness: float | str | None = -23.0,
    true_peak_db: float = -1.0,
    speech_model: str | Path | None = None,
    speech: Sequence[tuple[float, float]] | None = None,
    out: Track | None = None,
) -> Mastered:
    """Mix ``new`` with ``original`` (both (channels, samples) at ``sample_rate``, same length) and normalise.

    Speech is detected in ``original`` (silero-vad, or pyannote from ``speech_model``) when the mode is "auto" or
    "duck" and no ``speech`` is given. ``loudness`` is a LUFS target or preset name; None skips normalisation.
    With tracks, ``out`` receives the mastered audio (and is ``Mastered.audio``).
    """
    timings: dict[str, float] = {}
    regions: list[tuple[float, float]] = list(speech) if speech is not None else []
    if speech is None and original is not None and mode in ("auto", "duck"):
        t0 = time.perf_counter()
        regions = find_speech(original, sample_rate, speech_model)
        timings["speech"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mixed = mix_tracks(new, original, sample_rate, mode=mode, speech=regions, duck_db=duck_db, under_db=under_db)
    timings["mix"] = time.perf_counter() - t0
    report = None
    audio = mixed.audio
    if loudness is not None:
        t0 = time.perf_counter()
        audio, report = normalize_loudness(mixed.audio, sample_rate, target_lufs=loudness, true_peak_db=true_peak_db,
                                           out=out)
        timings["loudness"] = time.perf_counter() - t0
    elif out is not None:
        for start, stop in blocks(mixed.audio.shape[-1]):
            out.write(start, mixed.audio.read(start, stop))
        audio = out
    return Mastered(audio=audio, mix=mixed, loudness=report, speech=regions, timings=timings)


SPEECH_CHUNK = 600.0  # seconds of audio per speech-detection call: its memory does not grow with the length
SPEECH_OVERLAP = 30.0  # seconds two calls share, so a line of dialogue across a join is found whole


def find_speech(original: np.ndarray | Track, sample_rate: int, model_dir: str | Path | None) -> list[tuple[float, float]]:
    """Speech regions of the original. An array goes to the detector as it is; a track is cut into overlapping
    10-minute windows, each resampled to the detector's 16 kHz mono (exactly the samples a whole-signal resample
    would give) and searched on its own, and the regions are joined: a 10-minute video gets exactly one call,
    an hour no more memory than that."""
    if isinstance(original, np.ndarray) or not hasattr(original, "read"):
        return detect_speech(original, sample_rate, model_dir=model_dir)
    down = sample_rate // gcd(sample_rate, VAD_RATE)
    chunk = int(SPEECH_CHUNK * sample_rate) // down * down
    step = chunk - int(SPEECH_OVERLAP * sample_rate) // down * down
    mono, found = _Mono(original), []
    for start in range(0, original.samples, step):
        stop = min(start + chunk, original.samples)
        window = _Window(mono, start, stop)
        out = ArrayTrack(np.zeros((1, -(-(stop - start) * VAD_RATE // sample_rate)), np.float32))
        audio = resample_track(window, out, sample_rate, VAD_RATE).audio[0]
        found += [(a + start / sample_rate, b + start / sample_rate) for a, b in detect_speech(audio, VAD_RATE,
                                                                                          model_dir=model_dir)]
        if stop == original.samples:
            break
    joined: list[tuple[float, float]] = []
    for a, b in sorted(found):
        if joined and a <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], b))
        else:
            joined.append((a, b))
    return joined


class _Window:
    """Samples ``[start, stop)`` of a track as a track of their own; reads past its ends see the real neighbours
    (so resampling the window joins exactly onto resampling its neighbours)."""

    def __init__(self, track: Track, start: int, stop: int):
        self.track, self.start, self.channels, self.samples = track, start, track.channels, stop - start

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.track.read(self.start + start, self.start + stop)

    def write(self, start: int, block: np.ndarray) -> None:
        raise TypeError("read-only")


class _Mono:
    """The channel mean of a track, read block by block."""

    def __init__(self, track: Track):
        self.track, self.channels, self.samples = track, 1, track.samples

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.track.read(start, stop).mean(axis=0, keepdims=True)

    def write(self, start: int, block: np.ndarray) -> None:
        raise TypeError("read-only")
