"""The plan: timed sub-events with captions, as the AudioStory planner emits them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..music.types import ScorePlan

# Layers an event can belong to; each becomes one stem and one timeline track.
LAYERS = ("ambience", "fx", "narrative", "score")

# Event kinds whose onset is the point (a visible hit, a rhythmic hit): rendered as one-shots that start on their
# first sample, placed hard (never crossfaded or faded in).
ONSET_KINDS = frozenset({"impact", "slam", "flash", "whoosh", "hit"})


@dataclass
class SubEvent:
    """One sound to render: what (caption), when (start) and how long (duration), in seconds.

    ``tail`` is extra audio rendered past ``end`` so the next event on the same layer can crossfade into it
    (set by ``audiostory_core.assemble.assign_tails``; 0 for the last event of a layer).
    ``kind`` is a hint for renderers: "impact" events must have their onset exactly at ``start``.
    ``sound`` is the sound the planner chose for the event (a foley bank name such as "rain", or a sound-library
    file path), or ``None`` to let the renderer match the caption; renderers that can play it play it.
    """

    caption: str
    start: float
    duration: float
    layer: str = "fx"
    kind: str = ""
    gain_db: float = 0.0
    scene_index: int | None = None
    tail: float = 0.0
    sound: str | None = None

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def render_duration(self) -> float:
        return self.duration + self.tail

    def to_dict(self) -> dict:
        d = {
            "caption": self.caption,
            "start": self.start,
            "duration": self.duration,
            "layer": self.layer,
            "kind": self.kind,
            "gain_db": self.gain_db,
            "scene_index": self.scene_index,
            "tail": self.tail,
        }
        if self.sound is not None:
            d["sound"] = self.sound
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SubEvent":
        return cls(
            caption=str(d["caption"]),
            start=float(d["start"]),
            duration=float(d["duration"]),
            layer=str(d.get("layer", "fx")),
            kind=str(d.get("kind", "")),
            gain_db=float(d.get("gain_db", 0.0)),
            scene_index=d.get("scene_index"),
            tail=float(d.get("tail", 0.0)),
            sound=None if d.get("sound") is None else str(d["sound"]),
        )


@dataclass
class Plan:
    """Reasoning text plus events. ``conditioning`` holds per-event model states (not serialised).

    For the AudioStory LLM planner ``conditioning[i]`` is the fused query sequence (tokens, width) for
    ``events[i]``; planners without a model leave it ``None`` and renderers condition on captions.
    ``score`` is the music cue sheet when the plan has music: the "score" layer's events are its sections, and
    the composer renders from it (a plan whose score events carry only captions is scored from the captions).
    """

    reasoning: str
    events: list[SubEvent]
    duration: float
    planner: str = ""
    conditioning: list[Any] | None = field(default=None, repr=False, compare=False)
    score: ScorePlan | None = None

    def to_dict(self) -> dict:
        return {
            "planner": self.planner,
            "duration": self.duration,
            "reasoning": self.reasoning,
            "events": [e.to_dict() for e in self.events],
            **({"score": self.score.to_dict()} if self.score is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        return cls(
            reasoning=str(d.get("reasoning", "")),
            events=[SubEvent.from_dict(e) for e in d["events"]],
            duration=float(d["duration"]),
            planner=str(d.get("planner", "")),
            score=ScorePlan.from_dict(d["score"]) if d.get("score") else None,
        )
