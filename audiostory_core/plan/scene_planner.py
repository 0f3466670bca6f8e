"""The no-LLM planner for video: an ambience bed per scene, the sound of what is seen, a spot per visual cue.

This is what a sound editor does first on a cut: lay a bed under each shot so the cut has a sound change, give
what is on screen its sound (a dog barks, a car's engine runs), then spot the hits. Beds cover their scene
exactly (consecutive beds abut, so assembly crossfades them); spots start exactly on the cue so the onset lands
on the frame, and never run past their scene or the video. With music on, the music planner
(``audiostory_core.music.planner``) adds the cue sheet and one "score" event per section.

When the captioner saw a place (``Scene.objects`` of kind "place", seen or inferred from the objects: a car
suggests a street, a clock a room), the bed is that place's ambience, never the rest of the description: a
description may carry cue text, and a bed must not turn "fine motion everywhere" into rain. Without a place the
bed follows the description as before. Sound sources seen (animals, vehicles, instruments, objects) become fx
events: animals a short call at the start of their shot, the others a layer under the whole shot. Props (a
bottle, a door) make no sound by themselves; an impact or slam in their shot takes their sound instead.
"""
from __future__ import annotations

from ..errors import PlanError
from ..music.planner import (
    MUSIC_BED_DB, MUSIC_GAIN_DB, check_music_mode, describe_score, plan_score, score_events, tacet_scenes,
)  # fmt: skip
from ..request import Cue, Scene, SceneObject, StoryRequest
from .base import Planner
from .reconcile import exact_spans, span
from .types import Plan, SubEvent

# How long each kind of spot effect rings, in seconds (a "flash" is scored as thunder).
DEFAULT_SPOT_DURATIONS: dict[str, float] = {
    "impact": 0.5,
    "slam": 1.2,
    "flash": 2.5,
    "whoosh": 1.0,
    "motion": 1.0,
}
DEFAULT_SPOT_DURATION = 0.8

# What a spot of each kind sounds like; the cue's own description and the scene give the context.
SPOT_SOUNDS: dict[str, str] = {
    "impact": "impact thud",
    "slam": "heavy slam",
    "flash": "thunder crack",
    "whoosh": "fast whoosh",
    "motion": "movement swish",
}

MIN_SPOT = 0.01  # a cue closer than this to its scene's end is dropped: nothing audible fits

SOURCE_KINDS = ("animal", "vehicle", "instrument", "object")  # objects that make a sound of their own
CALL_SECONDS = 3.0  # an animal's call: a short event at the start of its shot, not a bed of barking
PROP_CUES = ("impact", "slam")  # cues whose sound takes the material of the prop seen (bottles knocking)
PROP_MIN_SCORE = 0.5  # ... only when the prop is seen clearly: a wrong material is worse than a plain thud


class ScenePlanner(Planner):
    """Plans ``mode == "video"`` requests: beds from scene descriptions, spots from cues."""

    name = "scene"

    def __init__(
        self,
        *,
        spot_durations: dict[str, float] | None = None,
        max_bed: float = 30.0,
        bed_gain_db: float = -6.0,
        spot_gain_db: float = 0.0,
        music: str = "off",
        music_style: str = "auto",
        music_gain_db: float = MUSIC_GAIN_DB,
        music_bed_db: float = MUSIC_BED_DB,
        source_gain_db: float = -8.0,
        max_sources: int = 2,
    ) -> None:
        """``music``: "off", "on" (a score under everything), "auto" (cartoons, and live-action scenes without
        dialogue, see ``tacet_scenes``) or "only" (the score and no beds or spots); ``music_style`` one of
        ``audiostory_core.music.types.MUSIC_STYLES`` or "auto". Beds under music step back by ``music_bed_db``
        (a music-led mix, as cartoons are mixed: the score carries the scene, the spots ride on it)."""
        if not (max_bed > 0):
            raise PlanError(f"max_bed must be positive, got {max_bed!r}")
        self.spot_durations = {**DEFAULT_SPOT_DURATIONS, **(spot_durations or {})}
        self.max_bed = float(max_bed)
        self.bed_gain_db = float(bed_gain_db)
        self.spot_gain_db = float(spot_gain_db)
        self.music = check_music_mode(music)
        self.music_style = music_style
        self.music_gain_db = float(music_gain_db)
        self.music_bed_db = float(music_bed_db)
        self.source_gain_db = float(source_gain_db)
        self.max_sources = int(max_sources)

    def plan(self, request: StoryRequest) -> Plan:
        if request.mode != "video" or request.scenes is None:
            raise PlanError(f"the scene planner plans video requests (scenes); this request is {request.mode!r}")
        total = float(request.duration)
        style = (request.instruction or "").strip()
        scenes = [_clip_scene(s, total) for s in request.scenes]
        usable = [(i, s) for i, s in enumerate(scenes) if s is not None]
        if not usable:
            raise PlanError(
                f"no scene lies inside the requested {total:.2f} s; check the scene times (first scene starts at "
                f"{request.scenes[0].start:.2f} s)" if request.scenes else "the video request has no scenes"
            )

        events: list[SubEvent] = []
        lines = [f"The soundtrack is {total:.2f} s long and has {len(usable)} scene(s)."]
        if style:
            lines.append(f"Style: {style}.")
        for i, scene in usable:
            if self.music == "only":
                continue
            beds = self._beds(i, scene, style)
            sources = self._sources(i, scene)
            spots, dropped = self._spots(i, scene, request.scenes[i].cues, total)
            events += beds + sources + spots
            lines.append(_describe_scene(i, scene, beds, sources, spots, dropped))
        tacet = tacet_scenes(self.music, [s for _, s in usable])
        score = None
        if tacet is not None:
            score = plan_score([s for _, s in usable], total, style=self.music_style, instruction=style or None,
                               tacet=tacet)
            scored = {usable[k][0] for k in range(len(usable)) if k not in tacet}
            for ev in events:
                if ev.layer == "ambience" and ev.scene_index in scored:
                    ev.gain_db += self.music_bed_db
            events += score_events(score, gain_db=self.music_gain_db)
            lines.append(describe_score(score))
        events.sort(key=lambda e: (e.start, e.layer != "ambience"))
        n_beds = sum(e.layer == "ambience" for e in events)
        n_music = sum(e.layer == "score" for e in events)
        n_sources = sum(e.kind == "source" for e in events)
        lines.append(f"In total {len(events)} events: {n_beds} ambience bed(s), {n_sources} sound source(s), "
                     f"{len(events) - n_beds - n_sources - n_music} spot effect(s)"
                     + (f" and {n_music} music section(s)." if n_music else "."))
        return Plan(reasoning="\n".join(lines), events=events, duration=total, planner=self.name, score=score)

    def _beds(self, index: int, scene: Scene, style: str) -> list[SubEvent]:
        place = _place(scene)
        if place is not None:
            desc = f"{place.phrase}, {place.sound}" if place.sound else place.phrase
        else:
            desc = " ".join(scene.description.split()) or "room tone"
        caption = f"ambience: {desc}" + (f", {style}" if style else "")
        n = max(1, int(-(-scene.duration // self.max_bed)))
        while scene.duration / n > self.max_bed:  # guard the float division above
            n += 1
        parts = [scene.duration / n] * n
        return [
            SubEvent(
                caption=caption if k == 0 else caption + " (continued)",
                start=start,
                duration=dur,
                layer="ambience",
                kind="bed",
                gain_db=self.bed_gain_db,
                scene_index=index,
            )
            for k, (start, dur) in enumerate(exact_spans(parts, scene.end, start=scene.start))
        ]

    def _sources(self, index: int, scene: Scene) -> list[SubEvent]:
        """The sound of what is seen: a call for each animal at the start of its shot, a layer under the whole
        shot for vehicles, instruments and objects; the ``max_sources`` most confident, quieter when unsure."""
        seen = [o for o in scene.objects if o.kind in SOURCE_KINDS and o.sound and not o.inferred]
        seen = sorted(seen, key=lambda o: -o.score)[: max(0, self.max_sources)]
        events: list[SubEvent] = []
        for obj in seen:
            caption = f"{obj.phrase}: {obj.sound}"
            gain = self.source_gain_db + 6.0 * (min(max(obj.score, 0.0), 1.0) - 1.0)
            if obj.kind == "animal":
                parts = [(scene.start, span(scene.start, min(scene.end, scene.start + CALL_SECONDS)))]
            else:
                n = max(1, int(-(-scene.duration // self.max_bed)))
                while scene.duration / n > self.max_bed:
                    n += 1
                parts = exact_spans([scene.duration / n] * n, scene.end, start=scene.start)
            events += [
                SubEvent(caption=caption if k == 0 else caption + " (continued)", start=start, duration=dur,
                         layer="fx", kind="source", gain_db=gain, scene_index=index)
                for k, (start, dur) in enumerate(parts)
            ]
        return events

    def _spots(self, index: int, scene: Scene, cues: list[Cue], total: float) -> tuple[list[SubEvent], list[Cue]]:
        spots: list[SubEvent] = []
        dropped: list[Cue] = []
        context = " ".join(scene.description.split())
        props = sorted((o for o in scene.objects if o.kind == "prop" and o.sound and o.score >= PROP_MIN_SCORE),
                       key=lambda o: -o.score)
        prop = props[0] if props else None
        for cue in sorted(cues, key=lambda c: c.time):
            t = float(cue.time)
            end = min(t + self.spot_durations.get(cue.kind, DEFAULT_SPOT_DURATION), scene.end, total)
            if not (scene.start <= t) or end - t < MIN_SPOT:
                dropped.append(cue)
                continue
            sound = SPOT_SOUNDS.get(cue.kind, cue.kind or "sound effect")
            what = " ".join(cue.description.split())
            if prop is not None and cue.kind in PROP_CUES:
                what = f"{what}, {prop.sound}" if what else prop.sound  # what the hit is likely made of
            caption = sound + (f": {what}" if what else "") + (f" (scene: {context})" if context else "")
            strength = min(max(float(cue.strength), 0.0), 1.0)
            spots.append(
                SubEvent(
                    caption=caption,
                    start=t,
                    duration=span(t, end),
                    layer="fx",
                    kind=cue.kind,
                    gain_db=self.spot_gain_db + 6.0 * (strength - 1.0),  # weak evidence → a quieter spot
                    scene_index=index,
                )
            )
        return spots, dropped


def _clip_scene(scene: Scene, total: float) -> Scene | None:
    """The scene limited to ``[0, total]``; ``None`` when nothing of it is left."""
    start, end = max(0.0, float(scene.start)), min(float(scene.end), total)
    if not (end > start):
        return None
    if start == scene.start and end == scene.end:
        return scene
    return Scene(start, end, scene.description, list(scene.cues), dict(scene.tags), features=dict(scene.features),
                 objects=list(scene.objects))


def _place(scene: Scene) -> SceneObject | None:
    """The place to lay the bed of: the most confident one seen, else one inferred from the objects."""
    places = [o for o in scene.objects if o.kind == "place"]
    places.sort(key=lambda o: (o.inferred, -o.score))
    return places[0] if places else None


def _describe_scene(i: int, scene: Scene, beds: list[SubEvent], sources: list[SubEvent], spots: list[SubEvent],
                    dropped: list[Cue]) -> str:
    desc = " ".join(scene.description.split()) or "(no description)"
    place = _place(scene)
    what = "bed" if len(beds) == 1 else f"bed in {len(beds)} parts"
    if place is not None:
        what += f" of {place.phrase}" + (" (guessed from what is seen)" if place.inferred else "")
    heard = list(dict.fromkeys(e.caption.split(":")[0] for e in sources))
    if heard:
        what += " + the sound of " + ", ".join(heard)
    by_kind: dict[str, list[float]] = {}
    for s in spots:
        by_kind.setdefault(s.kind or "spot", []).append(s.start)
    for kind, times in by_kind.items():
        noun = kind + ("es" if kind.endswith(("sh", "ch", "s")) else "s") if len(times) > 1 else kind
        what += f" + {len(times)} {noun} at " + ", ".join(f"{t:.2f}" for t in times) + " s"
    line = f"Scene {i + 1} ({scene.start:.2f}–{scene.end:.2f} s): {desc} → {what}"
    if dropped:
        line += f" ({len(dropped)} cue(s) outside the scene dropped)"
    return line + "."
