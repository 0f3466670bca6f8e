"""The score plan: what the composer is asked to write, per section of the picture, on one tempo map.

A film composer starts from a cue sheet: where the music sits, what each stretch should feel like, which moments
it must catch ("hits") and how it gets from one scene to the next. ``ScorePlan`` is that sheet. It is made by the
music planner from the picture (or an LLM, or text), read by the composer, and serialised with the plan, so an
editor sees why the music does what it does. Times are seconds; beats count quarter notes from the start.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

MUSIC_STYLES = ("orchestral", "ambient", "piano", "percussion")
MOODS = ("calm", "playful", "sneak", "chase", "tense", "stormy")
TRANSITIONS = ("cadence", "stinger", "crossfade", "end", "tacet")
# What each kind of visual cue is scored with (style may change the instruments, not the gesture).
HIT_FOR_CUE = {
    "impact": "stab",
    "slam": "timpani",
    "whoosh": "run",
    "pass": "run",
    "motion": "run",
    "flash": "swell",
}
NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass
class TempoMap:
    """Piecewise-constant tempo: segment ``k`` starts at ``times[k]`` seconds, which is beat ``beats[k]``, and runs
    at ``bpm[k]`` until the next segment. Beat → time and back are exact inverses (no rounding)."""

    times: list[float]
    beats: list[float]
    bpm: list[float]

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.beats) or len(self.times) != len(self.bpm):
            raise ValueError("a tempo map needs matching, non-empty times, beats and bpm lists")

    def time_at(self, beat: float) -> float:
        k = max(0, bisect.bisect_right(self.beats, beat) - 1)
        return self.times[k] + (beat - self.beats[k]) * 60.0 / self.bpm[k]

    def beat_at(self, time: float) -> float:
        k = max(0, bisect.bisect_right(self.times, time) - 1)
        return self.beats[k] + (time - self.times[k]) * self.bpm[k] / 60.0

    def tempo_at(self, time: float) -> float:
        return self.bpm[max(0, bisect.bisect_right(self.times, time) - 1)]

    def to_dict(self) -> dict:
        return {"times": list(self.times), "beats": list(self.beats), "bpm": list(self.bpm)}

    @classmethod
    def from_dict(cls, d: dict) -> "TempoMap":
        return cls([float(x) for x in d["times"]], [float(x) for x in d["beats"]], [float(x) for x in d["bpm"]])


@dataclass
class MusicHit:
    """A musical hit answering a visual cue: it sounds at ``time`` exactly (the cue's frame).

    ``beat`` is where that is on the tempo map; ``on_beat`` says the tempo was fitted so the hit falls on a beat.
    ``direction`` orients runs (+1 up, -1 down).
    """

    time: float
    kind: str  # "stab" | "pizzicato" | "timpani" | "run" | "swell"
    cue: str  # the cue kind it answers
    strength: float = 1.0
    beat: float = 0.0
    on_beat: bool = False
    direction: int = 1

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "MusicHit":
        return cls(float(d["time"]), str(d["kind"]), str(d.get("cue", "")), float(d.get("strength", 1.0)),
                   float(d.get("beat", 0.0)), bool(d.get("on_beat", False)), int(d.get("direction", 1)))


@dataclass
class Section:
    """One stretch of the score (a scene, or short shots grouped with it): [start, end) seconds, which is the
    whole beats [start_beat, start_beat + beats) of the tempo map. ``transition`` is how it hands over to the
    next section: a ``cadence`` (the phrase closes on the tonic), a ``stinger`` (an accent on the cut), a
    ``crossfade`` (the mood carries on: the music continues through the cut) or ``end`` (the music closes: the
    last section, or one before silence). A section with texture and transition "tacet" has no music."""

    start: float
    end: float
    mood: str
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" | "minor"
    meter: int  # beats per bar (quarter notes)
    tempo: float  # the section's base tempo (bpm); the map may bend it a little to catch hits
    energy: float  # 0..1, from the picture's motion
    texture: str  # how the accompaniment moves: "arpeggio", "oompah", "walking", "ostinato", "tremolo", "pulse",
    # or "tacet" (silent)
    instruments: list[str] = field(default_factory=list)
    hits: list[MusicHit] = field(default_factory=list)
    transition: str = "cadence"
    start_beat: int = 0
    beats: int = 0
    scene_indices: list[int] = field(default_factory=list)
    description: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.tonic % 12]} {self.mode}"

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["hits"] = [h.to_dict() for h in self.hits]
        d["instruments"] = list(self.instruments)
        d["scene_indices"] = list(self.scene_indices)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Section":
        return cls(
            start=float(d["start"]), end=float(d["end"]), mood=str(d["mood"]), tonic=int(d["tonic"]),
            mode=str(d["mode"]), meter=int(d["meter"]), tempo=float(d["tempo"]), energy=float(d["energy"]),
            texture=str(d["texture"]), instruments=[str(x) for x in d.get("instruments", [])],
            hits=[MusicHit.from_dict(h) for h in d.get("hits", [])], transition=str(d.get("transition", "cadence")),
            start_beat=int(d.get("start_beat", 0)), beats=int(d.get("beats", 0)),
            scene_indices=[int(i) for i in d.get("scene_indices", [])], description=str(d.get("description", "")),
        )  # fmt: skip


@dataclass
class ScorePlan:
    """The whole cue sheet: sections tiling [0, duration), one tempo map, the style and the home key.

    ``seed`` is the seed the score was last composed with (set by the renderer), so the MIDI written to the
    deliverables is the piece that was heard.
    """

    duration: float
    style: str
    sections: list[Section]
    tempo_map: TempoMap
    home_tonic: int = 0
    cartoon: bool = True
    seed: int | None = None

    @property
    def hits(self) -> list[MusicHit]:
        return [h for s in self.sections for h in s.hits]

    def on_beat_share(self) -> float:
        """The share of hits the tempo map puts on a beat (1.0 when there are none)."""
        hits = self.hits
        return sum(h.on_beat for h in hits) / len(hits) if hits else 1.0

    def to_dict(self) -> dict:
        return {
            "duration": self.duration, "style": self.style, "home_tonic": self.home_tonic, "cartoon": self.cartoon,
            "seed": self.seed, "tempo_map": self.tempo_map.to_dict(), "sections": [s.to_dict() for s in self.sections],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> "ScorePlan":
        return cls(
            duration=float(d["duration"]), style=str(d["style"]), sections=[Section.from_dict(s) for s in d["sections"]],
            tempo_map=TempoMap.from_dict(d["tempo_map"]), home_tonic=int(d.get("home_tonic", 0)),
            cartoon=bool(d.get("cartoon", True)), seed=d.get("seed"),
        )  # fmt: skip
