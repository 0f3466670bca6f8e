"""The music planner: a cue sheet (``ScorePlan``) from the picture — moods, keys, tempo map, hits, transitions.

What a composer spots on a cut: the feel of each scene (from its words and its look: dark or bright, still or
busy, cartoon or live action), which moments the music should catch (impacts get stabs, a slam timpani, a
whoosh a run, a flash a cymbal swell), how to get from one scene into the next (a cadence, a stinger on the cut,
or simply carrying on when the mood does), and a click that puts the strong moments on beats. No audio here:
the composer turns the sheet into notes, the renderer into sound.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Collection, Sequence

from ..errors import PlanError
from ..plan.types import Plan, SubEvent
from ..request import Cue, Scene
from .styles import MOODS, STYLE_DESCRIPTIONS, STYLE_WORDS, section_instruments
from .tempo import fit_section
from .types import HIT_FOR_CUE, MUSIC_STYLES, MusicHit, ScorePlan, Section, TempoMap

MUSIC_MODES = ("auto", "on", "off", "only")  # auto: music for cartoons and for scenes without dialogue
SPEECH_SHARE = 0.2  # auto: a live-action scene with speech in at least this share of its time gets no music
MIN_SECTION = 1.5  # shots shorter than this are scored with a neighbour: music does not change every half second
MIN_HIT_GAP = 0.12  # two cues closer than this get one hit (the stronger)
LIVE_ACTION_HIT = 0.6  # live action: only cues at least this strong are caught (cartoons catch them all)
WEAK_IMPACT = 0.6  # impacts weaker than this get a pizzicato hit instead of a stab
MAX_ANCHORS = 12  # strongest cues per section the tempo fit tries to put on beats
ON_BEAT_TOLERANCE = 0.010  # seconds: a hit this close to a beat counts as on it
MUSIC_GAIN_DB = 0.0  # the composer's own level (FluidSynth gain 0.2) already sits under the spot effects
MUSIC_BED_DB = -8.0  # ambience beds step back this much under music (measured: the tagger then hears Music first)
_WORD = re.compile(r"[a-z][a-z'-]*")


@dataclass
class _Part:
    """A stretch of scenes scored as one section (before keys and tempo are chosen)."""

    start: float
    end: float
    mood: str
    energy: float
    scene_indices: list[int]
    cues: list[Cue]
    description: str
    brightness: float
    warmth: float
    tacet: bool = False  # no music here (dialogue, or a story clause that is not music)


def plan_score(
    scenes: Sequence[Scene],
    duration: float,
    *,
    style: str = "auto",
    instruction: str | None = None,
    cartoon: bool | None = None,
    tacet: Collection[int] = (),
) -> ScorePlan:
    """The cue sheet for ``scenes`` (in time order) over ``[0, duration)``.

    ``style`` is one of ``MUSIC_STYLES`` or "auto" (orchestral for cartoons, ambient pads for live action; words
    in ``instruction`` such as "solo piano" choose too). ``cartoon`` overrides what the picture measurements say.
    Scenes whose index is in ``tacet`` get no music (their sections are silent; the music before them closes).
    """
    total = float(duration)
    if not (total > 0) or not math.isfinite(total):
        raise PlanError(f"the score needs a positive duration, got {duration!r}")
    clipped = [(i, s) for i, s in enumerate(scenes) if min(s.end, total) > max(s.start, 0.0)]
    if not clipped:
        raise PlanError("no scene lies inside the requested duration: nothing to score")
    if cartoon is None:
        shares = [s.features.get("cartoon") for _, s in clipped if "cartoon" in s.features]
        cartoon = (sum(shares) / len(shares) >= 0.5) if shares else True
    style = choose_style(style, instruction, cartoon)
    hint = _mood_hint(instruction)
    parts = _merge_short(_parts(clipped, total, hint, cartoon, set(tacet)), total)
    return _build(parts, total, style, cartoon)


def check_music_mode(mode: str) -> str:
    if mode not in MUSIC_MODES:
        raise PlanError(f"unknown music mode {mode!r}: choose one of {', '.join(MUSIC_MODES)}")
    return mode


def tacet_scenes(mode: str, scenes: Sequence[Scene]) -> set[int] | None:
    """Which scenes get no music under ``mode``; ``None`` when the whole video gets none.

    "auto" scores cartoons throughout (``features["cartoon"]`` ≥ 0.5 on average, or unknown) and, in live
    action, every scene whose ``features["speech"]`` share is below ``SPEECH_SHARE``.
    """
    check_music_mode(mode)
    if mode == "off" or not scenes:
        return None
    if mode in ("on", "only"):
        return set()
    shares = [s.features["cartoon"] for s in scenes if "cartoon" in s.features]
    if not shares or sum(shares) / len(shares) >= 0.5:
        return set()
    tacet = {i for i, s in enumerate(scenes) if s.features.get("speech", 0.0) >= SPEECH_SHARE}
    return None if len(tacet) == len(scenes) else tacet


MUSIC_WORDS = ("music", "musical", "score", "melody", "tune", "song", "orchestra", "orchestral", "piano", "pads",
               "symphonic", "strings", "percussion", "drums", "soundtrack", "theme", "waltz", "march", "lullaby")


def is_music(caption: str) -> bool:
    """Whether a story clause asks for music ("playful orchestral music") rather than a sound."""
    return bool(set(_words(caption)) & set(MUSIC_WORDS))


def score_story(
    events: list[SubEvent],
    total: float,
    *,
    mode: str = "auto",
    style: str = "auto",
    instruction: str | None = None,
    gain_db: float = MUSIC_GAIN_DB,
) -> tuple[list[SubEvent], ScorePlan | None]:
    """Music for a text story: the text planner's events in, (events, score) out.

    "auto": clauses that ask for music ("playful orchestral music, then rain") become score sections and leave
    the narrative layer; the rest of the time is silent for the music. "on": a score under every clause;
    "only": the score alone. "off": the events unchanged and no score.
    """
    check_music_mode(mode)
    music = [is_music(e.caption) for e in events]
    if mode == "off" or not events or (mode == "auto" and not any(music)):
        return events, None
    tacet = {i for i, m in enumerate(music) if not m} if mode == "auto" else set()
    scenes = [Scene(e.start, e.end, e.caption) for e in events]
    score = plan_score(scenes, total, style=style, instruction=instruction, cartoon=True, tacet=tacet)
    keep = [] if mode == "only" else [e for e, m in zip(events, music) if not (m and mode == "auto")]
    return keep + score_events(score, gain_db=gain_db), score


def score_from_plan(plan: Plan, *, style: str = "auto") -> ScorePlan:
    """A cue sheet for a plan that has "score" events but no sheet (an LLM's plan): each score event becomes a
    section described by its caption, and the plan's onset events (impacts, slams, ...) become the hits."""
    scored = sorted((e for e in plan.events if e.layer == "score"), key=lambda e: e.start)
    if not scored:
        raise PlanError("the plan has no score events to compose for")
    cues = [Cue(e.start, e.kind, 1.0, e.caption) for e in plan.events if e.kind in HIT_FOR_CUE and e.layer != "score"]
    scenes = []
    for k, e in enumerate(scored):
        end = scored[k + 1].start if k + 1 < len(scored) else plan.duration
        scenes.append(Scene(e.start, max(end, e.end), e.caption, [c for c in cues if e.start <= c.time < end]))
    return plan_score(scenes, plan.duration, style=style, instruction=" ".join(e.caption for e in scored),
                      cartoon=True)


def choose_style(style: str, instruction: str | None, cartoon: bool) -> str:
    """The style asked for, else the first one named in the instruction, else orchestral (cartoon) or ambient."""
    if style in MUSIC_STYLES:
        return style
    if style != "auto":
        raise PlanError(f"unknown music style {style!r}: choose one of auto, {', '.join(MUSIC_STYLES)}")
    words = _words(instruction or "")
    first = {name: min((k for k, w in enumerate(words) if w in STYLE_WORDS[name]), default=None) for name in STYLE_WORDS}
    named = [(k, name) for name, k in first.items() if k is not None]
    if named:
        return min(named)[1]  # the style named first
    return "orchestral" if cartoon else "ambient"


def score_events(score: ScorePlan, *, gain_db: float = MUSIC_GAIN_DB) -> list[SubEvent]:
    """One "score" layer event per section, abutting, so the timeline and report show the cues and the
    renderer's sections crossfade into one continuous piece. Captions say what a DiT would need to play it."""
    events = []
    for k, sec in enumerate(score.sections):
        if sec.texture == "tacet":
            continue
        hits = ", ".join(f"{h.kind} at {h.time:.2f} s" for h in sec.hits)
        caption = (
            f"music: {sec.mood} {STYLE_DESCRIPTIONS[score.style]} in {sec.key_name}, {sec.meter}/4 at "
            f"{sec.tempo:.0f} bpm, {sec.texture} accompaniment"
            + (f"; hits: {hits}" if hits else "") + f"; {sec.transition} into the next scene" * (sec.transition != "end")
        )
        events.append(SubEvent(caption=caption, start=sec.start, duration=sec.end - sec.start, layer="score",
                               kind="music", gain_db=gain_db,
                               scene_index=sec.scene_indices[0] if sec.scene_indices else k))
    return events


def describe_score(score: ScorePlan) -> str:
    """The planner's reasoning about the music, one line per section."""
    lines = [f"Music: {STYLE_DESCRIPTIONS[score.style]}, {len(score.sections)} section(s), "
             f"{sum(h.on_beat for h in score.hits)} of {len(score.hits)} hit(s) on a beat."]
    for k, s in enumerate(score.sections):
        lines.append(
            f"Music {k + 1} ({s.start:.2f}–{s.end:.2f} s): {s.mood} in {s.key_name}, {s.meter}/4 at {s.tempo:.0f} "
            f"bpm ({s.beats} beats), energy {s.energy:.2f}, {s.texture}; {len(s.hits)} hit(s); {s.transition}."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# reading the picture


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _mood_hint(instruction: str | None) -> dict[str, float]:
    words = set(_words(instruction or ""))
    return {m: 1.5 * sum(w in words for w in mood.words) for m, mood in MOODS.items()}


def scene_energy(scene: Scene) -> float:
    """0..1 from the picture's motion (mean absolute luma change per frame, log-scaled) and how busy its cues are."""
    motion = scene.features.get("motion")
    if motion is None:
        text = scene.description.lower()
        motion = 0.01 if re.search(r"\b(fast|rush|race|chase|storm|steady heavy)", text) else (
            0.0002 if "still" in text else 0.002)
    base = (math.log10(max(float(motion), 1e-6)) + 3.5) / 2.0
    rate = len(scene.cues) / max(scene.end - scene.start, 1e-3)
    # Something fast crossing the frame is energy even when it is small (little luma changes).
    speed = max((c.strength for c in scene.cues if c.kind in ("whoosh", "pass", "motion")), default=0.0)
    return float(min(1.0, max(0.05, base + 0.08 * min(rate, 2.0) + 0.25 * speed)))


def scene_mood(scene: Scene, hint: dict[str, float] | None = None, cartoon: bool = True) -> str:
    """The mood whose words, cues and look fit the scene best (ties: the first in ``MOODS``)."""
    words = set(_words(scene.description)) | {w for tag in scene.tags for w in _words(tag)}
    score = {m: float(sum(w in words for w in mood.words)) for m, mood in MOODS.items()}
    for m, v in (hint or {}).items():
        score[m] += v
    kinds = [c.kind for c in scene.cues]
    b = scene.features.get("brightness")
    if b is None:
        b = 0.25 if words & {"dark", "night", "dim"} else 0.7 if words & {"bright", "sunny"} else 0.5
    energy = scene_energy(scene)
    score["stormy"] += 1.5 * ("flash" in kinds)
    score["tense"] += 1.0 * ("slam" in kinds)
    score["playful"] += (0.8 if cartoon else 0.3) * min(kinds.count("impact"), 2) / 2
    score["chase"] += 1.0 * ("whoosh" in kinds) + 1.0 * (energy > 0.75)
    score["calm"] += 1.0 * (b > 0.5 and energy < 0.35 and not kinds)
    score["sneak"] += 0.6 * (b < 0.35 and energy < 0.6)
    score["tense"] += 0.4 * (b < 0.35)
    score["playful"] += 0.3 * cartoon
    return max(MOODS, key=lambda m: score[m])


def _parts(clipped: list[tuple[int, Scene]], total: float, hint: dict[str, float], cartoon: bool,
           tacet: set[int]) -> list[_Part]:
    parts = []
    prev_end = 0.0
    for k, (i, s) in enumerate(clipped):
        start = prev_end  # sections tile the score: a gap before a scene belongs to it
        end = total if k == len(clipped) - 1 else min(max(s.end, start), total)
        if end <= start:
            continue
        keep = [c for c in s.cues if start <= c.time < end and (cartoon or c.strength >= LIVE_ACTION_HIT)]
        parts.append(_Part(start, end, scene_mood(s, hint, cartoon), scene_energy(s), [i], keep,
                           " ".join(s.description.split()), float(s.features.get("brightness", 0.5)),
                           float(s.features.get("warmth", 0.0)), tacet=i in tacet))
        prev_end = end
    return parts


def _merge_short(parts: list[_Part], total: float) -> list[_Part]:
    """Shots shorter than ``MIN_SECTION`` join the previous section (the first joins the next)."""
    out: list[_Part] = []
    for p in parts:
        short = p.end - p.start < MIN_SECTION or out and out[-1].end - out[-1].start < MIN_SECTION
        if out and short and out[-1].tacet == p.tacet:
            q = out[-1]
            longer = p if p.end - p.start > q.end - q.start else q
            out[-1] = _Part(q.start, p.end, longer.mood, max(q.energy, p.energy), q.scene_indices + p.scene_indices,
                            q.cues + p.cues, longer.description, longer.brightness, longer.warmth, p.tacet)
        else:
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------------------------
# building the sheet


def _home_tonic(parts: list[_Part]) -> int:
    """A warm picture gets a sharp key (G, D, A), a cool one a flat key (F, Bb, Eb), neutral C."""
    warmth = sum(p.warmth * (p.end - p.start) for p in parts) / max(parts[-1].end - parts[0].start, 1e-6)
    return 7 if warmth > 0.05 else 5 if warmth < -0.05 else 0


def _key(mood: str, home: int) -> tuple[int, str]:
    mode = MOODS[mood].mode
    if mode == "major":
        return home, "major"
    # Dark moods take the parallel minor, the milder ones the relative minor.
    return ((home if mood in ("stormy", "tense") else home + 9) % 12), "minor"


def _transition(a: _Part, b: _Part | None) -> str:
    if b is None or b.tacet:
        return "end"  # the music closes before silence
    if a.mood == b.mood and abs(a.energy - b.energy) < 0.3:
        return "crossfade"
    starts_hit = any(c.time - b.start < 0.3 for c in b.cues)
    if b.mood in ("chase", "stormy", "tense") or b.energy - a.energy > 0.3 or starts_hit:
        return "stinger"
    return "cadence"


def _hits(cues: list[Cue], cartoon: bool) -> list[tuple[Cue, str]]:
    out: list[tuple[Cue, str]] = []
    for c in sorted(cues, key=lambda c: c.time):
        kind = HIT_FOR_CUE.get(c.kind)
        if kind is None:
            continue
        if kind == "stab" and c.strength < WEAK_IMPACT:
            kind = "pizzicato"
        if out and c.time - out[-1][0].time < MIN_HIT_GAP:
            if c.strength > out[-1][0].strength:
                out[-1] = (c, kind)
            continue
        out.append((c, kind))
    return out


def _direction(cue: Cue) -> int:
    text = cue.description.lower()
    return -1 if ("right to left" in text or "downward" in text or "falls" in text) else 1


def _build(parts: list[_Part], total: float, style: str, cartoon: bool) -> ScorePlan:
    home = _home_tonic(parts)
    sections: list[Section] = []
    times, beats, bpms = [], [], []
    beat = 0
    for k, p in enumerate(parts):
        mood = MOODS[p.mood]
        meter = mood.meters[0]
        hits = [] if p.tacet else _hits(p.cues, cartoon)
        weights = [(c.time, 2.0 * max(0.2, min(c.strength, 1.0)) * (0.8 if kind == "run" else 1.0)) for c, kind in hits]
        strongest = sorted(range(len(weights)), key=lambda i: -weights[i][1])[:MAX_ANCHORS]
        fit = fit_section(p.start, p.end, [w if i in strongest else (w[0], 0.0) for i, w in enumerate(weights)],
                          mood.tempo, mood.nominal, meter)
        b = beat
        for t0, n, bpm in fit.stretches:
            if not bpms or abs(bpm - bpms[-1]) > 1e-6:  # a stretch at the same tempo is no tempo change
                times.append(t0)
                beats.append(float(b))
                bpms.append(bpm)
            b += n
        tonic, mode = _key(p.mood, home)
        sections.append(Section(
            start=p.start, end=p.end, mood=p.mood, tonic=tonic, mode=mode, meter=meter, tempo=fit.base,
            energy=p.energy, texture="tacet" if p.tacet else mood.texture,
            instruments=[] if p.tacet else section_instruments(style, p.mood),
            hits=[MusicHit(c.time, kind, c.kind, float(min(max(c.strength, 0.0), 1.0)), direction=_direction(c))
                  for c, kind in hits],
            transition="tacet" if p.tacet else _transition(p, parts[k + 1] if k + 1 < len(parts) else None),
            start_beat=beat, beats=fit.beats, scene_indices=list(p.scene_indices), description=p.description,
        ))  # fmt: skip
        beat = b
    tempo_map = TempoMap(times, beats, bpms)
    for sec in sections:
        for h in sec.hits:
            h.beat = tempo_map.beat_at(h.time)
            off = abs(h.beat - round(h.beat)) * 60.0 / tempo_map.tempo_at(h.time)
            h.on_beat = off <= ON_BEAT_TOLERANCE
    return ScorePlan(duration=total, style=style, sections=sections, tempo_map=tempo_map, home_tonic=home,
                     cartoon=bool(cartoon))
