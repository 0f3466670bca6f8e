"""The training data format: a JSON Lines manifest, one story per line.

A line::

    {"id": "walk-0001", "instruction": "a walk in the rain that ends at home", "duration": 12.0,
     "reasoning": "optional storyline text; written from the events when absent",
     "audio": "walk-0001.wav",                       # optional: one long file the event times refer to
     "events": [{"caption": "footsteps on gravel", "start": 0.0, "end": 4.2},
                {"caption": "a door slams", "start": 4.2, "duration": 1.5, "audio": "slam.wav"}],
     "scenes": [{"start": 0.0, "end": 6.0, "description": "a man walks up a path"}],   # optional (dubbing data)
     "meta": {...}}                                    # optional, free-form, ignored

Times are seconds on the story's timeline. An event's audio is its own clip file (``audio`` on the event: the
clip's first ``duration`` seconds) or the story's long file between ``start`` and ``end``. Relative paths are
relative to the manifest's folder. Every problem is reported as one error naming the file and line.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import DataError

#: Seconds an event may stick out past the story's end (rounding in caption files).
TIME_TOLERANCE = 1e-3
_MARKUP = re.compile(r"<\|?/?[a-z_0-9]+\|?>")


class EventSpec(BaseModel):
    """One timed sound event of a story."""

    model_config = ConfigDict(extra="forbid")

    caption: str = Field(min_length=1)
    start: float = Field(ge=0)
    end: float | None = None
    duration: float | None = Field(default=None, gt=0)
    audio: str | None = None

    @field_validator("caption")
    @classmethod
    def _plain_caption(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("the caption is empty")
        if _MARKUP.search(v):
            raise ValueError(f"the caption {v!r} contains a markup tag the model uses itself; remove it")
        return v

    @model_validator(mode="after")
    def _one_length(self) -> "EventSpec":
        if self.end is None and self.duration is None:
            raise ValueError("give the event's 'end' or its 'duration'")
        if self.end is not None and self.duration is not None:
            if abs(self.end - self.start - self.duration) > TIME_TOLERANCE:
                raise ValueError(f"'end' {self.end} and 'duration' {self.duration} disagree (start {self.start})")
        elif self.end is None:
            self.end = self.start + float(self.duration)
        if not self.end > self.start:
            raise ValueError(f"the event ends at {self.end} s, not after its start {self.start} s")
        self.duration = self.end - self.start
        return self


class SceneSpec(BaseModel):
    """A video-derived scene description (what ``dubkit plan`` writes under ``scenes``)."""

    model_config = ConfigDict(extra="allow")

    start: float = Field(ge=0)
    end: float
    description: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> "SceneSpec":
        if not self.end > self.start:
            raise ValueError(f"the scene ends at {self.end} s, not after its start {self.start} s")
        return self


class Example(BaseModel):
    """One story: what is asked (instruction and/or scenes, total duration) and what it sounds like (events)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    instruction: str | None = None
    duration: float = Field(gt=0)
    reasoning: str | None = None
    audio: str | None = None
    events: list[EventSpec] = Field(min_length=1)
    scenes: list[SceneSpec] | None = None
    meta: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Example":
        if not (self.instruction and self.instruction.strip()) and not self.scenes:
            raise ValueError("the story needs an 'instruction' or 'scenes'")
        for i, e in enumerate(self.events):
            if e.end > self.duration + TIME_TOLERANCE:
                raise ValueError(f"event {i} ends at {e.end} s, after the story's {self.duration} s")
            if e.audio is None and self.audio is None:
                raise ValueError(f"event {i} has no audio: give 'audio' on the event or on the story")
        self.events.sort(key=lambda e: (e.start, e.end))
        return self

    def to_json(self) -> dict[str, Any]:
        """The manifest line (events keep ``end``; their derived ``duration`` is left out)."""
        data = self.model_dump(exclude_none=True)
        for e in data["events"]:
            e.pop("duration", None)
            e["start"], e["end"] = round(e["start"], 6), round(e["end"], 6)
        return data

    def prompt_text(self) -> str:
        """The description the LLM reads, exactly as the planner builds it at inference (scenes become one
        sentence each, after the instruction)."""
        from ..request import Scene, StoryRequest

        if not self.scenes:
            return (self.instruction or "").strip()
        scenes = [Scene.from_dict(s.model_dump()) for s in self.scenes]
        return StoryRequest.from_scenes(scenes, self.duration, self.instruction).to_instruction()

    def storyline(self) -> str:
        """The reasoning text: the given one, else the paper's storyline (how many events, then each one's
        start, end and description)."""
        if self.reasoning and self.reasoning.strip():
            return " ".join(self.reasoning.split())
        return storyline(self.events)


def storyline(events: Iterable[EventSpec]) -> str:
    """``3 events. Event 1 from 0.00s to 4.20s: footsteps on gravel. Event 2 …`` — the reasoning written before
    the events when the data has none."""
    events = list(events)
    head = f"{len(events)} event{'s' if len(events) != 1 else ''}."
    parts = [f"Event {i + 1} from {e.start:.2f}s to {e.end:.2f}s: {e.caption.rstrip('.')}." for i, e in enumerate(events)]
    return " ".join([head, *parts])


@dataclass
class Manifest:
    """A validated manifest: its examples, the line each came from and the folder relative paths start at."""

    path: Path
    examples: list[Example]
    lines: list[int]

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolve(self, audio: str) -> Path:
        p = Path(audio).expanduser()
        return p if p.is_absolute() else self.root / p

    def where(self, index: int) -> str:
        """``manifest.jsonl line 7`` for the example at ``index`` (error messages)."""
        return f"{self.path} line {self.lines[index]}"


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def parse_line(text: str, where: str) -> Example:
    """One manifest line → ``Example``; any problem → ``DataError`` starting with ``where``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object (one story), got {type(data).__name__}")
    try:
        return Example.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"{where}: {first_error(exc)}") from None


def read_manifest(path: str | os.PathLike, *, check_files: bool = True) -> Manifest:
    """Read and validate a manifest; the first bad line raises ``DataError`` naming it (blank lines and lines
    starting with ``#`` are skipped). ``check_files`` also requires every audio file to exist."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the manifest {path}: {exc}") from None
    examples, lines, seen = [], [], {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        ex = parse_line(line, f"{path} line {n}")
        if ex.id in seen:
            raise DataError(f"{path} line {n}: id {ex.id!r} is already used on line {seen[ex.id]}")
        seen[ex.id] = n
        examples.append(ex)
        lines.append(n)
    if not examples:
        raise DataError(f"the manifest {path} holds no stories")
    manifest = Manifest(path, examples, lines)
    if check_files:
        _check_files(manifest)
    return manifest


def _check_files(manifest: Manifest) -> None:
    for i, ex in enumerate(manifest.examples):
        for name in {e.audio for e in ex.events if e.audio} | ({ex.audio} if ex.audio else set()):
            if not manifest.resolve(name).is_file():
                raise DataError(f"{manifest.where(i)}: audio file {manifest.resolve(name)} does not exist")


def write_manifest(path: str | os.PathLike, examples: Iterable[Example]) -> Path:
    """Write examples as JSON Lines (to a temporary name, then renamed: a failed run leaves no half file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path
