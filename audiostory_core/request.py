"""What the pipeline is asked for: one request type for video dubbing, text → long audio and continuation."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .audio import check_audio
from .errors import PlanError


@dataclass(frozen=True)
class Cue:
    """A timed visual moment worth a spot effect (an impact, a flash, a fast pass)."""

    time: float  # seconds from the start of the video
    kind: str  # "impact" | "flash" | "whoosh" | "slam" | "motion" | ...
    strength: float = 1.0  # 0..1, how strong the visual evidence is
    description: str = ""  # short text for the planner, e.g. "object hits the floor"
    confidence: float = 1.0  # 0..1, how sure the captioner is that the moment is real (an editor's cue: 1)

    def to_dict(self) -> dict:
        return {"time": self.time, "kind": self.kind, "strength": self.strength, "description": self.description,
                "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: dict) -> "Cue":
        return cls(float(d["time"]), str(d["kind"]), float(d.get("strength", 1.0)), str(d.get("description", "")),
                   float(d.get("confidence", 1.0)))


@dataclass(frozen=True)
class SceneObject:
    """Something seen in a scene that makes (or sets) a sound: "a dog" that barks, "a street" that hums.

    ``kind`` says what it is to a sound designer: animal | vehicle | instrument | object (sound sources: they
    sound by themselves), prop (sounds only when handled or hit: a bottle, a door), person, place (the ambience
    bed) or style (how the picture is made, e.g. a cartoon; no sound of its own).
    ``inferred`` marks a place guessed from the objects (a car suggests a street) rather than seen.
    """

    name: str  # key, e.g. "dog"
    kind: str
    text: str = ""  # how it reads: "a dog"
    sound: str = ""  # what it sounds like: "a dog barking and panting, paws on the floor"
    score: float = 1.0  # confidence, 0..1
    inferred: bool = False

    @property
    def phrase(self) -> str:
        return self.text or self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "text": self.text, "sound": self.sound, "score": self.score,
                "inferred": self.inferred}

    @classmethod
    def from_dict(cls, d: "dict | str") -> "SceneObject":
        if isinstance(d, str):
            return cls(d, "object")
        return cls(str(d["name"]), str(d.get("kind", "object")), str(d.get("text", "")), str(d.get("sound", "")),
                   float(d.get("score", 1.0)), bool(d.get("inferred", False)))


@dataclass
class Scene:
    """A shot (or group of shots) with a description a sound designer would write."""

    start: float
    end: float
    description: str
    cues: list[Cue] = field(default_factory=list)
    tags: dict[str, float] = field(default_factory=dict)  # optional scored labels (e.g. zero-shot CLIP tags)
    objects: list[SceneObject] = field(default_factory=list)  # what is seen that sounds, best first
    # Optional measurements of the picture (brightness, motion, saturation, warmth 0..1; cartoon 0..1; speech share)
    # that planners read where words are not enough (the music's mood and energy).
    features: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "description": self.description,
            "cues": [c.to_dict() for c in self.cues],
            "tags": dict(self.tags),
            **({"features": dict(self.features)} if self.features else {}),
            "objects": [o.to_dict() for o in self.objects],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        return cls(
            float(d["start"]),
            float(d["end"]),
            str(d.get("description", "")),
            [Cue.from_dict(c) for c in d.get("cues", [])],
            {str(k): float(v) for k, v in d.get("tags", {}).items()},
            objects=[SceneObject.from_dict(o) for o in d.get("objects", [])],
            features={str(k): float(v) for k, v in d.get("features", {}).items()},
        )


@dataclass
class StoryRequest:
    """A request in any of the three modes; ``mode`` says which.

    - text: ``instruction`` only;
    - video: ``scenes`` (timed descriptions), optionally with an ``instruction`` (style hint);
    - continuation: ``audio_prompt`` (float32, (channels, samples)) at ``audio_prompt_rate``.
    ``duration`` is the total length to produce, in seconds (for continuation: the new audio only).
    """

    duration: float
    instruction: str | None = None
    scenes: list[Scene] | None = None
    audio_prompt: np.ndarray | None = None
    audio_prompt_rate: int | None = None

    def __post_init__(self) -> None:
        if not (self.duration > 0) or not np.isfinite(self.duration):
            raise PlanError(f"duration must be a positive number of seconds, got {self.duration!r}")
        if self.instruction is None and self.scenes is None and self.audio_prompt is None:
            raise PlanError("a request needs an instruction, scenes or an audio prompt")
        if self.audio_prompt is not None:
            self.audio_prompt = check_audio(self.audio_prompt, "audio prompt")
            if self.audio_prompt_rate is None:
                raise PlanError("audio_prompt_rate is required with audio_prompt")

    @property
    def mode(self) -> str:
        if self.audio_prompt is not None:
            return "continuation"
        if self.scenes is not None:
            return "video"
        return "text"

    @classmethod
    def from_text(cls, instruction: str, duration: float) -> "StoryRequest":
        return cls(duration=duration, instruction=instruction)

    @classmethod
    def from_scenes(cls, scenes: list[Scene], duration: float, instruction: str | None = None) -> "StoryRequest":
        return cls(duration=duration, scenes=list(scenes), instruction=instruction)

    @classmethod
    def from_audio(
        cls, audio: np.ndarray, sample_rate: int, duration: float, instruction: str | None = None
    ) -> "StoryRequest":
        return cls(duration=duration, audio_prompt=audio, audio_prompt_rate=sample_rate, instruction=instruction)

    def to_instruction(self) -> str:
        """The text an LLM planner reads. Scenes become one sentence each, carrying their times."""
        parts: list[str] = []
        if self.instruction:
            parts.append(self.instruction.strip())
        for i, s in enumerate(self.scenes or []):
            cue_text = "; ".join(f"{c.description or c.kind} at {c.time:.2f}s" for c in s.cues)
            line = f"Scene {i + 1} from {s.start:.2f}s to {s.end:.2f}s: {s.description.strip()}"
            parts.append(line + (f" ({cue_text})." if cue_text else "."))
        return " ".join(parts)
