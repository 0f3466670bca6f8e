"""The editor's own shot list (SRT, JSON or CSV) as a captioner.

An editor often already has a shot list or spotting notes; they know better than any model that the figure in
shot 3 is a robot, not a person. Each entry's description replaces (or, in ``enrich`` mode, is put before) the
description of the shot it overlaps most; shots it does not cover keep the base captioner's description.

Formats (times are seconds, ``HH:MM:SS.mmm``, ``HH:MM:SS,mmm`` or ``MM:SS.mmm``):
- SRT: one subtitle per shot, the text is the description.
- JSON: ``[{"start", "end", "description", "cues": [{"time", "kind", "description", "strength"}]}]`` (or that
  list under a "shots" or "scenes" key). Cue times are seconds from the start of the video.
- CSV: a header with ``start,end,description`` and optionally ``cues``, whose cell holds
  ``TIME KIND [words]`` items separated by ";", e.g. ``1.25 impact ball hits the floor; 3.0 slam``.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from audiostory_core.request import Cue, Scene

from ..errors import InputError
from ..video.types import Shot, ShotFrames
from .base import Captioner, keyframe_width

FORMATS = (".srt", ".json", ".csv")
MODES = ("replace", "enrich")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)$")
_FRAMES_TC = re.compile(r"^\d+:\d{1,2}:\d{1,2}[:;]\d+$")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>|\{\\[^}]*\}")  # <i>, <font ...>, {\an8} styling in SRT text


@dataclass(frozen=True)
class ShotNote:
    """One entry of the editor's list."""

    start: float
    end: float
    description: str
    cues: tuple[Cue, ...] = field(default_factory=tuple)


def parse_time(value: object, where: str) -> float:
    """Seconds from a number or a timecode string; ``where`` names the place for the error message."""
    if isinstance(value, bool):
        raise InputError(f"{where}: time must be seconds or HH:MM:SS.mmm, got {value!r}")
    if isinstance(value, (int, float)):
        t = float(value)
    else:
        text = str(value).strip()
        m = _CLOCK.match(text)
        if m:
            h, mnt, sec = m.groups()
            t = int(h or 0) * 3600 + int(mnt) * 60 + float(sec.replace(",", "."))
        elif _FRAMES_TC.match(text):
            raise InputError(f"{where}: {text!r} looks like a frame timecode (HH:MM:SS:FF); give seconds or "
                             f"HH:MM:SS.mmm instead")
        else:
            try:
                t = float(text)
            except ValueError:
                raise InputError(f"{where}: cannot read time {text!r}; use seconds (12.5) or HH:MM:SS.mmm") from None
    if not (t >= 0) or t == float("inf"):
        raise InputError(f"{where}: time must be a finite, non-negative number of seconds, got {value!r}")
    return t


def _note(path: Path, where: str, start: object, end: object, description: object,
          cues: list[Cue] | None = None) -> ShotNote:
    s, e = parse_time(start, f"{path}: {where}, start"), parse_time(end, f"{path}: {where}, end")
    if e <= s:
        raise InputError(f"{path}: {where}: end ({e:.3f}s) must be after start ({s:.3f}s)")
    text = " ".join(str(description or "").split())
    if not text:
        raise InputError(f"{path}: {where}: the description is empty")
    for c in cues or []:
        if not (s - 1e-6 <= c.time <= e + 1e-6):
            raise InputError(f"{path}: {where}: cue at {c.time:.3f}s lies outside the entry ({s:.3f}s to {e:.3f}s); "
                             f"cue times are seconds from the start of the video")
    return ShotNote(s, e, text, tuple(cues or ()))


def _cue(path: Path, where: str, time: object, kind: object, description: object = "", strength: object = 1.0) -> Cue:
    kind = str(kind or "").strip()
    if not kind:
        raise InputError(f"{path}: {where}: a cue needs a kind (impact, slam, whoosh, ...)")
    try:
        strength = float(strength)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {where}: cue strength must be a number from 0 to 1, got {strength!r}") from None
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"{path}: {where}: cue strength must be from 0 to 1, got {strength}")
    return Cue(parse_time(time, f"{path}: {where}, time"), kind, strength, str(description or "").strip())


def _read_srt(path: Path, text: str) -> list[ShotNote]:
    notes: list[ShotNote] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        first = i + 1  # 1-based line number of the block
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i].strip())
            i += 1
        timing = 1 if len(block) > 1 and "-->" in block[1] else 0 if "-->" in block[0] else None
        if timing is None:
            raise InputError(f"{path}: line {first}: expected a subtitle number and a 'start --> end' line, "
                             f"got {block[0]!r}")
        if timing == 1 and not block[0].isdigit():
            raise InputError(f"{path}: line {first}: expected a subtitle number, got {block[0]!r}")
        start, _, end = block[timing].partition("-->")
        end = end.split()[0] if end.split() else ""  # drop SRT position coordinates after the end time
        where = f"line {first + timing}"
        desc = _TAG.sub("", " ".join(block[timing + 1:]))
        notes.append(_note(path, where, start.strip(), end, desc))
    return notes


def _read_json(path: Path, text: str) -> list[ShotNote]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    if isinstance(data, dict):
        data = data.get("shots", data.get("scenes"))
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of shots (or {{\"shots\": [...]}}) with start, end, description")
    notes = []
    for n, entry in enumerate(data, 1):
        where = f"entry {n}"
        if not isinstance(entry, dict):
            raise InputError(f"{path}: {where}: expected an object with start, end, description")
        missing = [k for k in ("start", "end", "description") if k not in entry]
        if missing:
            raise InputError(f"{path}: {where}: missing {', '.join(missing)}")
        raw_cues = entry.get("cues") or []
        if not isinstance(raw_cues, list):
            raise InputError(f"{path}: {where}: cues must be a list of {{time, kind, description}}")
        cues = []
        for k, c in enumerate(raw_cues, 1):
            if not isinstance(c, dict) or "time" not in c:
                raise InputError(f"{path}: {where}, cue {k}: expected {{\"time\", \"kind\", \"description\"}}")
            cues.append(_cue(path, f"{where}, cue {k}", c["time"], c.get("kind"), c.get("description", ""),
                             c.get("strength", 1.0)))
        notes.append(_note(path, where, entry["start"], entry["end"], entry["description"], cues))
    return notes


def _read_csv(path: Path, text: str) -> list[ShotNote]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [k for k in ("start", "end", "description") if k not in header]
    if missing:
        raise InputError(f"{path}: line 1: the header must name start,end,description[,cues]; missing "
                         f"{', '.join(missing)}")
    reader.fieldnames = header
    notes = []
    for row in reader:
        where = f"line {reader.line_num}"
        if not any((v or "").strip() for k, v in row.items() if k is not None):
            continue
        if None in row:
            raise InputError(f"{path}: {where}: more cells than columns (quote descriptions that hold commas)")
        cues = []
        for item in filter(None, (p.strip() for p in (row.get("cues") or "").split(";"))):
            parts = item.split(maxsplit=2)
            if len(parts) < 2:
                raise InputError(f"{path}: {where}: cue {item!r} must read 'TIME KIND [words]', e.g. '1.25 impact'")
            cues.append(_cue(path, where, parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
        notes.append(_note(path, where, row["start"], row["end"], row["description"], cues))
    return notes


_READERS = {".srt": _read_srt, ".json": _read_json, ".csv": _read_csv}


def read_shot_list(path: str | Path) -> list[ShotNote]:
    """The entries of an SRT/JSON/CSV shot list, sorted by start. Malformed → InputError naming the line/entry."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"{path}: unsupported shot list format {path.suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(FORMATS)}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"shot list not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the shot list as UTF-8 text ({e})") from None
    notes = reader(path, text)
    if not notes:
        raise InputError(f"{path}: the shot list has no entries")
    return sorted(notes, key=lambda n: (n.start, n.end))


def best_note(notes: list[ShotNote], start: float, end: float) -> ShotNote | None:
    """The entry overlapping [start, end) most, if it covers a real part of it: at least a quarter of the shot, or
    half of the entry (so a cut a frame off the editor's timecode does not pull in the neighbour's note)."""
    best, best_overlap = None, 0.0
    for note in notes:
        overlap = min(end, note.end) - max(start, note.start)
        covers = overlap >= 0.25 * (end - start) or overlap >= 0.5 * (note.end - note.start)
        if overlap > 0 and covers and overlap > best_overlap:
            best, best_overlap = note, overlap
    return best


class SidecarCaptioner:
    """Captioner from the editor's shot list, over an optional ``base`` captioner (its cues and tags are kept).

    ``mode="replace"``: the entry's description replaces the base's, and the objects the base saw are dropped
    (the planner would otherwise lay their bed and sources under the editor's words); ``"enrich"``: it comes
    first, then the base's after a semicolon, and the objects stay. Cues from the list are added to the shot
    whose time span holds them; a base cue within ``cue_window`` seconds of one of them is the same moment detected
    again and is dropped."""

    name = "sidecar"

    def __init__(
        self, path: str | Path, base: Captioner | None = None, mode: str = "replace", *, cue_window: float = 0.1
    ) -> None:
        if mode not in MODES:
            raise InputError(f"unknown sidecar mode {mode!r}; use one of {', '.join(MODES)}")
        self.path, self.base, self.mode, self.cue_window = Path(path), base, mode, cue_window
        self.notes = read_shot_list(self.path)
        self.keyframe_width = keyframe_width(base)
        if base is not None:
            self.name = f"sidecar+{base.name}"

    def describe(self, frames: ShotFrames, shot: Shot) -> Scene:
        scene = self.base.describe(frames, shot) if self.base is not None else Scene(shot.start, shot.end, "")
        note = best_note(self.notes, shot.start, shot.end)
        if note is not None:
            if self.mode == "enrich" and scene.description.strip():
                scene.description = f"{note.description}; {scene.description.strip()}"
            else:
                scene.description = note.description
                scene.objects = []  # the editor's words replace what the tagger saw, so its bed and sources too
        extra = [c for n in self.notes for c in n.cues if shot.start <= c.time < shot.end]
        near = lambda c: any(abs(c.time - e.time) <= self.cue_window for e in extra)  # noqa: E731
        kept = [c for c in scene.cues if not near(c)]  # the same moment seen twice: the editor's cue wins
        scene.cues = sorted(dict.fromkeys([*kept, *extra]), key=lambda c: c.time)
        return scene
