"""The no-model continuation planner: listen to the input's tail and pick the bank sounds that continue it.

AudioStory continues audio by encoding it (Whisper) into the LLM. Without weights we do what a sound editor
would: measure the recording's tail (spectral shape, loudness, onsets, pitch; ``audiostory_core.analysis``), pick
the bank's texture (and, for rhythmic input such as footsteps or a clock, one-shot) whose spectral shape is
closest, and lay out events that keep the onset rhythm going. The bank is given to the planner, not imported by
it; rendering and the seam live in ``audiostory_core.continuation``.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np

from ..analysis import (SILENCE_DB, AudioProfile, analyse_audio, character_distance, profile_arrays,
                        profile_from_arrays, repeat_period, shape_distance, texture_distance)
from ..cache import cache_dir
from ..audio import check_audio, check_rate
from ..errors import PlanError
from ..request import StoryRequest
from .base import Planner
from .reconcile import reconcile_sequence, span
from .types import Plan, SubEvent


@dataclass
class SoundMatch:
    """A bank sound ranked for a continuation: how far its spectral shape (and texture) is from the input."""

    name: str
    description: str
    kind: str  # "texture" | "oneshot"
    distance: float  # spectral-shape distance (dB) to the input
    score: float  # distance minus the instruction bias: lower is better
    profile: AudioProfile = field(repr=False)


@dataclass
class ContinuationChoice:
    """What the planner decided: the bed texture, the one-shot for onsets (if rhythmic), and where they go."""

    profile: AudioProfile  # of the input's tail
    texture: SoundMatch | None
    oneshot: SoundMatch | None
    ranked_textures: list[SoundMatch]
    ranked_oneshots: list[SoundMatch]
    onset_times: list[float]  # in the new audio, seconds
    requested: SoundMatch | None = None  # a one-shot the instruction asks for by name ("... then thunder")
    requested_time: float | None = None
    loop_period: float | None = None  # a loop (drum loop): the period its own hits repeat with, played on
    loop_seconds: float | None = None  # how much of its end is cycled: whole periods, up to MAX_LOOP_SECONDS
    own_texture: bool = False  # nothing is like the input: its own sound is played on (excerpts, crossfaded)


SynthFn = Callable[[str, float, int, int], np.ndarray]
INPUT_SOUND = "input"  # SubEvent.sound of an event that plays the input's own material on (a loop's bars)
MAX_LOOP_SECONDS = 8.0  # a loop continues by cycling its last whole periods, at most this long
RHYTHM_SECONDS = 16.0  # the loop period is looked for in the input's last seconds


_PREVIEW_CACHE: dict[tuple, AudioProfile] = {}
# Previews are rendered at most at this rate (bands up to 12.5 kHz are compared): half the cost of 48 kHz for the
# cold start, and shapes are compared over the bands both sides have.
PREVIEW_RATE = 32000
_WORD = re.compile(r"[a-z]+")
_STOP = {"a", "an", "the", "of", "and", "with", "in", "on", "at", "to", "sound", "sounds", "some", "more", "it",
         "continue", "continues", "continuing", "keep", "going", "like", "for", "audio", "this", "that", "then"}


def _words(text: str) -> set[str]:
    out = set()
    for w in _WORD.findall((text or "").lower()):
        if w in _STOP or len(w) < 3:
            continue
        out.add(w[:-1] if w.endswith("s") and len(w) > 3 else w)  # crude plural folding: "steps" ~ "step"
    return out


class ContinuationPlanner(Planner):
    """Plans a continuation of ``request.audio_prompt`` from a sound bank (no model needed).

    ``bank`` maps names to sound types with ``description`` and ``kind`` ("oneshot" | "texture"); ``synthesize``
    renders one by name: ``synthesize(name, duration, sample_rate, seed) -> (2, n) float32``. Both are given by
    whoever builds the planner (usually the foley bank, ``audiostory_core.render.foley.bank``): the planner only
    listens to previews, and every event it plans names its bank sound in ``SubEvent.sound``. Previews are
    rendered once per (name, rate) and cached.
    An instruction steers the choice by up to ``instruction_bias_db``; ``embedder`` (``encode(texts)`` →
    unit vectors; "auto" = the project's MiniLM ``TextEmbedder``, loaded on the first instruction; ``None`` =
    words only) adds sentence similarity to the word match. ``own_texture_db``: when no sound is within this
    distance of the input (and no instruction asks for one), the input's own sound is played on instead
    (``None``: always the closest sound).
    """

    name = "continuation"

    def __init__(
        self,
        bank: Mapping[str, Any],
        synthesize: SynthFn,
        *,
        preview_seconds: float = 4.0,
        tail_seconds: float = 4.0,
        instruction_bias_db: float = 12.0,
        embedder: Any = "auto",
        rhythmic_match_db: float = 10.0,
        max_event: float = 30.0,
        own_texture_db: float | None = None,
    ) -> None:
        self.bank = bank
        self.synthesize = synthesize
        self.preview_seconds = float(preview_seconds)
        self.tail_seconds = float(tail_seconds)
        self.instruction_bias_db = float(instruction_bias_db)
        self.rhythmic_match_db = float(rhythmic_match_db)
        self._embedder = embedder
        self.max_event = float(max_event)
        self.own_texture_db = own_texture_db

    # -- the planner seam -------------------------------------------------------------------------------------

    def plan(self, request: StoryRequest) -> Plan:
        if request.audio_prompt is None or request.audio_prompt_rate is None:
            raise PlanError("the continuation planner needs an audio prompt (StoryRequest.from_audio)")
        plan, _ = self.plan_with_choice(request.audio_prompt, request.audio_prompt_rate, request.duration,
                                           instruction=request.instruction)
        return plan

    def plan_with_choice(
        self, audio: np.ndarray, sample_rate: int, duration: float, *, instruction: str | None = None
    ) -> tuple[Plan, ContinuationChoice]:
        """The plan (each event's ``sound`` is the bank sound it plays) and the choice behind it."""
        duration = check_duration(duration)
        choice = self.choose(audio, sample_rate, duration, instruction=instruction)
        events: list[SubEvent] = []
        prof = choice.profile
        if choice.loop_period is not None:
            events.append(SubEvent(f"the input's own rhythm played on (a {choice.loop_period:.3f} s period)", 0.0,
                                   duration, layer="ambience", kind="bed", sound=INPUT_SOUND))
        if choice.own_texture:
            events.append(SubEvent("the input's own sound played on", 0.0, duration, layer="ambience", kind="bed",
                                   sound=INPUT_SOUND))
        if choice.texture is not None:
            bed_level = prof.floor_db + 1.5 if choice.oneshot is not None else prof.rms_db
            gain = _clamp(bed_level - choice.texture.profile.rms_db, -60.0, 30.0)
            for ev in reconcile_sequence([(choice.texture.description, None)], duration, max_event=self.max_event,
                                         layer="ambience"):
                ev.kind, ev.gain_db, ev.sound = "bed", gain, choice.texture.name
                events.append(ev)
        if choice.oneshot is not None and choice.onset_times:
            one = choice.oneshot
            gain = _clamp(prof.onset_db - float(one.profile.envelope_db.max()), -60.0, 30.0)
            length = min(one.profile.duration, 1.5)
            times = choice.onset_times
            for k, t in enumerate(times):
                end = min(t + length, times[k + 1] if k + 1 < len(times) else duration, duration)
                if end - t < 0.01:
                    continue
                events.append(SubEvent(one.description, t, span(t, end), layer="fx", kind="hit", gain_db=gain,
                                       sound=one.name))
        if choice.requested is not None and choice.requested_time is not None:
            one, t = choice.requested, choice.requested_time
            # A named event stands out: its loudest moment 6 dB over the input's loudest frame.
            gain = _clamp(float(prof.envelope_db.max()) + 6.0 - float(one.profile.envelope_db.max()), -60.0, 30.0)
            end = min(t + 3.0, duration)
            events.append(SubEvent(one.description, t, span(t, end), layer="fx", kind="hit", gain_db=gain,
                                   sound=one.name))
        events.sort(key=lambda e: (e.start, e.layer))
        plan = Plan(reasoning=self._reasoning(choice, duration, instruction), events=events, duration=duration,
                    planner=self.name)
        return plan, choice

    # -- choosing ---------------------------------------------------------------------------------------------

    def choose(
        self, audio: np.ndarray, sample_rate: int, duration: float, *, instruction: str | None = None
    ) -> ContinuationChoice:
        """Rank the bank's textures and one-shots by spectral distance to the input's tail (biased by the
        instruction's words), and lay out onsets that continue the input's rhythm."""
        sr = check_rate(sample_rate)
        x = check_audio(audio)
        tail = x[:, -max(1, int(round(self.tail_seconds * sr))) :]
        prof = analyse_audio(tail, sr)
        query = self.affinity(instruction)
        looped = self._loop_choice(x, sr, prof, duration)
        if looped is not None:  # a loop goes on; a one-shot the instruction names still comes in over it
            looped.requested, looped.requested_time = self._requested_oneshot(query, looped.profile, duration, None)
            return looped
        whole = analyse_audio(x, sr) if x.shape[-1] > tail.shape[-1] else prof
        # Rhythm is judged on more of the input than the tail: a slow clock needs a few ticks to be seen.
        rhythm = whole if whole.onset_times.size > prof.onset_times.size else prof
        textures = self._rank("texture", prof, query)
        oneshots: list[SoundMatch] = []
        texture = textures[0] if textures else None
        oneshot = None
        onset_times: list[float] = []
        if rhythm.rhythmic:
            prof = _merge_rhythm(prof, rhythm)
            onset_times = _continue_rhythm(rhythm, duration)
            # A texture that already has this rhythm (footsteps, a clock) continues it best: it is rendered with
            # its first hit on the next beat. Otherwise place one-shots on the beats over a bed that matches
            # what lies between the hits and brings no rhythm of its own.
            rhythmic = [c for c in textures if c.profile.rhythmic]
            if not (rhythmic and rhythmic[0].score <= self.rhythmic_match_db):
                between = replace(prof, band_db=prof.floor_band_db, onset_rate=0.0, onset_times=np.zeros(0),
                                  modulation_db=np.zeros_like(prof.modulation_db))
                textures = [c for c in self._rank("texture", between, query) if not c.profile.rhythmic] or textures
                texture = textures[0] if textures else None
                hits = _hits_profile(x, sr, rhythm)  # match the one-shot to the hits, not to the bed
                oneshots = self._rank("oneshot", hits, query)
                oneshot = oneshots[0] if oneshots else None
                if oneshot is not None and rhythm.floor_db < SILENCE_DB + 20:  # clicks over silence: no bed
                    texture = None
            else:
                texture = rhythmic[0]
        requested, when = self._requested_oneshot(query, prof, duration, oneshot)
        own = not query and self._nothing_alike(x, sr, texture, oneshot)
        if own:  # nothing in the bank or the library is like it: its own sound goes on
            texture, oneshot, onset_times = None, None, []
        if prof.rms <= 1e-6:  # silence continues as silence
            texture, oneshot, onset_times, requested, when, own = None, None, [], None, None, False
        return ContinuationChoice(prof, texture, oneshot, textures, oneshots, onset_times, requested, when,
                                  own_texture=own)

    def _nothing_alike(self, x: np.ndarray, sr: int, texture: SoundMatch | None, oneshot: SoundMatch | None) -> bool:
        """True when ``own_texture_db`` is set and neither the chosen bed nor the chosen hit is within it of the
        input (a choir that no recording resembles), and the input is long enough to be played on."""
        if self.own_texture_db is None or x.shape[-1] < int(0.5 * sr):
            return False
        return all(c is None or c.distance > self.own_texture_db for c in (texture, oneshot))

    def _loop_choice(self, x: np.ndarray, sr: int, prof: AudioProfile, duration: float
                     ) -> ContinuationChoice | None:
        """A loop (its onsets repeat with one period): continued by its own hits, its last whole periods played
        on, so tempo, pattern and sound are the input's; ``None`` for anything else."""
        recent = x[:, -int(RHYTHM_SECONDS * sr):]
        period = repeat_period(recent, sr) if prof.rms > 1e-6 else None
        if period is None:
            return None
        cycle = period * max(1, int(min(recent.shape[-1] / sr, MAX_LOOP_SECONDS) // period))
        ends = recent.shape[-1] / sr - cycle  # onsets of the cycle repeat every `cycle` seconds after the end
        onsets = analyse_audio(recent, sr).onset_times
        times = sorted({round(t - ends + k * cycle, 6) for t in onsets if t >= ends
                        for k in range(int(duration // cycle) + 1) if 0 <= t - ends + k * cycle < duration})
        prof = replace(prof, onset_period=period)
        return ContinuationChoice(prof, None, None, [], [], times, loop_period=period, loop_seconds=cycle)

    def _requested_oneshot(
        self, query: dict[str, float], target: AudioProfile, duration: float, rhythm_oneshot: SoundMatch | None
    ) -> tuple[SoundMatch | None, float | None]:
        """The one-shot an instruction clearly names (affinity >= 0.5), placed once, a third of the way in."""
        named = [n for n in self.bank if getattr(self.bank[n], "kind", "") == "oneshot" and query.get(n, 0.0) >= 0.5]
        if not named or duration < 0.3:
            return None, None
        best = max(named, key=lambda n: (query[n], n))
        if rhythm_oneshot is not None and rhythm_oneshot.name == best:
            return None, None
        cand = next(c for c in self._rank("oneshot", target, {best: query[best]}) if c.name == best)
        return cand, round(min(max(duration / 3.0, 0.6), duration - 0.1), 6)

    def affinity(self, instruction: str | None) -> dict[str, float]:
        """How strongly (0..1) the instruction asks for each bank sound; empty without an instruction.

        A sound counts as asked for by the share of its name's words in the instruction (all of "door slam"), one
        of its keyword phrases, or the share of the instruction's words its description has; with an ``embedder`` the sentence
        similarity counts too (cosine 0.2 → 0, 0.6 and above → 1), whichever is larger.
        """
        words = _words(instruction or "")
        if not words:
            return {}
        names = list(self.bank)
        text = " " + " ".join(_WORD.findall(instruction.lower())) + " "
        out = {}
        for name in names:
            sound = self.bank[name]
            own = _words(name.replace("_", " "))  # "thunder", "door slam": named outright
            named = len(words & own) / len(own) if own else 0.0
            phrase = any(f" {k.lower().strip()} " in text for k in getattr(sound, "keywords", ()) if k.strip())
            described = len(words & _words(str(getattr(sound, "description", "")))) / len(words)
            out[name] = max(named, float(phrase), described)
        embedder = self._get_embedder()
        if embedder is not None:
            vecs = embedder.encode([instruction] + [str(getattr(self.bank[n], "description", n)) for n in names])
            sims = vecs[1:] @ vecs[0]
            for name, sim in zip(names, sims):
                out[name] = max(out[name], _clamp((float(sim) - 0.2) / 0.4, 0.0, 1.0))
        return out

    def _get_embedder(self) -> Any:
        if self._embedder == "auto":
            try:
                from ..embeddings import TextEmbedder

                self._embedder = TextEmbedder()
            except Exception:  # no model installed: the word match alone steers the choice
                self._embedder = None
        return self._embedder

    def _rank(self, kind: str, target: AudioProfile, query: dict[str, float]) -> list[SoundMatch]:
        out: list[SoundMatch] = []
        for name, sound in self.bank.items():
            if getattr(sound, "kind", "texture") != kind:
                continue
            prof = self.preview(name, min(target.sample_rate, PREVIEW_RATE))
            dist = (texture_distance(target, prof) + character_distance(target, prof) if kind == "texture"
                    else shape_distance(target, prof))
            desc = str(getattr(sound, "description", name))
            bias = self.instruction_bias_db * query.get(name, 0.0)
            out.append(SoundMatch(name, desc, kind, dist, dist - bias, prof))
        out.sort(key=lambda c: (c.score, c.name))
        return out

    def preview(self, name: str, sample_rate: int) -> AudioProfile:
        """The profile of a short render of bank sound ``name`` (cached per synthesiser, name and rate)."""
        key = (self.synthesize, name, int(sample_rate), self.preview_seconds)  # the function, not its id: ids are reused
        if key not in _PREVIEW_CACHE:
            _PREVIEW_CACHE[key] = self._stored_preview(name, int(sample_rate))
        return _PREVIEW_CACHE[key]

    def _stored_preview(self, name: str, sample_rate: int) -> AudioProfile:
        """A preview from the disk cache when the bank can say what makes its render (``preview_key``: the file,
        its size and time, the synthesis code), else rendered and analysed (and stored when it has a key)."""
        stamp = getattr(self.bank, "preview_key", lambda _n: None)(name)
        path = None
        if stamp:
            digest = hashlib.sha1(f"{stamp}|{sample_rate}|{self.preview_seconds}".encode()).hexdigest()[:20]
            path = cache_dir("continuation-previews") / f"{digest}.npz"
            try:
                with np.load(path, allow_pickle=False) as z:
                    return profile_from_arrays(z)
            except (OSError, ValueError, KeyError, EOFError):
                pass  # not stored yet, or unreadable: rendered again
        audio = np.asarray(self.synthesize(name, self.preview_seconds, sample_rate, 0), dtype=np.float32)
        profile = analyse_audio(audio, sample_rate)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
                np.savez(tmp, **profile_arrays(profile))
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only cache only costs time
        return profile

    def _reasoning(self, choice: ContinuationChoice, duration: float, instruction: str | None) -> str:
        p = choice.profile
        lines = [f"Input tail: {p.describe()}."]
        if instruction:
            lines.append(f"Instruction: {instruction.strip()}.")
        close = ", ".join(f"{c.name} ({c.distance:.1f} dB)" for c in choice.ranked_textures[:3])
        if close:
            lines.append(f"Closest textures by spectral shape: {close}.")
        if choice.texture is not None:
            lines.append(f"Continue for {duration:.2f} s with a bed of '{choice.texture.name}' "
                         f"({choice.texture.description}) at the tail's loudness.")
        if choice.oneshot is None and choice.onset_times and choice.texture is not None:
            lines.append(f"The input has repeating onsets ({p.onset_rate:.2f}/s) and '{choice.texture.name}' carries "
                         f"that rhythm: its first hit is placed on the next beat, {choice.onset_times[0]:.2f} s in.")
        if choice.oneshot is not None and choice.onset_times:
            lines.append(f"The input has repeating onsets ({p.onset_rate:.2f}/s): keep them going with "
                         f"{len(choice.onset_times)} × '{choice.oneshot.name}' from {choice.onset_times[0]:.2f} s.")
        if choice.requested is not None:
            lines.append(f"The instruction names '{choice.requested.name}': one at {choice.requested_time:.2f} s.")
        if choice.loop_period is not None:
            lines.append(f"The input is a loop: its onsets repeat every {choice.loop_period:.3f} s. Continue with its own "
                         f"hits: its last {choice.loop_seconds:.2f} s played on, on the same period.")
        elif choice.own_texture:
            lines.append(f"No sound in the bank or the library is within {self.own_texture_db:g} dB of the input: "
                         "its own sound is played on (excerpts of it, crossfaded).")
        elif choice.texture is None and choice.oneshot is None:
            lines.append(f"The input is silent: continue with {duration:.2f} s of silence.")
        return "\n".join(lines)


def _hits_profile(x: np.ndarray, sr: int, rhythm: AudioProfile) -> AudioProfile:
    """Profile of ~60 ms windows at the input's onsets (what one hit sounds like)."""
    w = int(0.06 * sr)
    first = x.shape[-1] - int(round(rhythm.duration * sr))  # rhythm covers the last rhythm.duration seconds
    starts = [first + int(round(t * sr)) for t in rhythm.onset_times]
    pieces = [x[:, max(0, s - w // 8) : s + w] for s in starts if 0 <= s < x.shape[-1]]
    if not pieces:
        return analyse_audio(x, sr)
    return analyse_audio(np.concatenate(pieces, axis=-1), sr)


def _continue_rhythm(rhythm: AudioProfile, duration: float) -> list[float]:
    """Onset times in the new audio that keep the input's rhythm: on its period when regular, else at its rate."""
    # Onset times relative to the input's end (the rhythm profile may cover only its tail).
    last = rhythm.onset_times[-1] - rhythm.duration
    if rhythm.onset_period:
        step = rhythm.onset_period
    else:
        step = 1.0 / max(rhythm.onset_rate, 1e-3)
    t = last + step
    while t < 0.02:
        t += step
    out = []
    while t < duration - 0.02:
        out.append(round(t, 6))
        t += step
    return out


def _merge_rhythm(prof: AudioProfile, rhythm: AudioProfile) -> AudioProfile:
    if rhythm is prof:
        return prof
    return replace(prof, onset_times=rhythm.onset_times, onset_rate=rhythm.onset_rate,
                   onset_period=rhythm.onset_period, onset_db=rhythm.onset_db)


def check_duration(duration: Any) -> float:
    """A continuation length in seconds: a positive finite number, else a ``PlanError`` that says so."""
    try:
        d = float(duration)
    except (TypeError, ValueError):
        d = float("nan")
    if not (d > 0) or not math.isfinite(d):
        raise PlanError(f"continuation duration must be a positive number of seconds, got {duration!r}")
    return d


def _clamp(v: float, lo: float, hi: float) -> float:
    return float(min(max(v, lo), hi))


__all__ = ["INPUT_SOUND", "MAX_LOOP_SECONDS", "ContinuationChoice", "ContinuationPlanner", "SoundMatch", "SynthFn",
           "check_duration"]
