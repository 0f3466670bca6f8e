"""The whole finishing chain in one call: find dialogue → mix → loudness, as ``dubkit dub`` runs it.

Kept separate from the steps themselves so each stays testable alone; this only decides which steps apply
(speech detection only when a mode needs it, loudness only when a target is given) and times them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .dialogue import detect_speech
from .loudness import LoudnessReport, normalize_loudness
from ..options import MixMode
from .mix import MixResult, mix_tracks


@dataclass
class Mastered:
    """``audio`` is what gets muxed; ``mix`` the pre-loudness mix (for stems); ``speech`` the regions used."""

    audio: np.ndarray
    mix: MixResult
    loudness: LoudnessReport | None
    speech: list[tuple[float, float]]
    timings: dict[str, float] = field(default_factory=dict)


def master_soundtrack(
    new: np.ndarray,
    original: np.ndarray | None,
    sample_rate: int,
    *,
    mode: MixMode = "auto",
    duck_db: float = -12.0,
    under_db: float = -6.0,
    loudness: float | str | None = -23.0,
    true_peak_db: float = -1.0,
    speech_model: str | Path | None = None,
    speech: Sequence[tuple[float, float]] | None = None,
) -> Mastered:
    """Mix ``new`` with ``original`` (both (channels, samples) at ``sample_rate``, same length) and normalise.

    Speech is detected in ``original`` (silero-vad, or pyannote from ``speech_model``) when the mode is "auto" or
    "duck" and no ``speech`` is given. ``loudness`` is a LUFS target or preset name; None skips normalisation.
    """
    timings: dict[str, float] = {}
    regions: list[tuple[float, float]] = list(speech) if speech is not None else []
    if speech is None and original is not None and mode in ("auto", "duck"):
        t0 = time.perf_counter()
        regions = detect_speech(original, sample_rate, model_dir=speech_model)
        timings["speech"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mixed = mix_tracks(new, original, sample_rate, mode=mode, speech=regions, duck_db=duck_db, under_db=under_db)
    timings["mix"] = time.perf_counter() - t0
    report = None
    audio = mixed.audio
    if loudness is not None:
        t0 = time.perf_counter()
        audio, report = normalize_loudness(mixed.audio, sample_rate, target_lufs=loudness, true_peak_db=true_peak_db)
        timings["loudness"] = time.perf_counter() - t0
    return Mastered(audio=audio, mix=mixed, loudness=report, speech=regions, timings=timings)
