"""Text deliverables: an SRT of the event captions (a cue sheet an editor can overlay) and the plan as JSON."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

from audiostory_core.plan.types import Plan, SubEvent
from dubkit.errors import OutputError


def srt_time(seconds: float) -> str:
    """Seconds → ``HH:MM:SS,mmm`` (rounded to the millisecond)."""
    ms = max(int(round(seconds * 1000)), 0)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def srt_text(events: Iterable[SubEvent], duration: float | None = None) -> str:
    """One cue per event, in start order, text ``[layer] caption``; cues are clamped to ``duration``."""
    cues = []
    for ev in sorted(events, key=lambda e: (e.start, e.layer)):
        start, end = ev.start, ev.end if duration is None else min(ev.end, duration)
        if end <= start:
            continue
        caption = " ".join(ev.caption.split()) or "(untitled)"
        cues.append(f"{len(cues) + 1}\n{srt_time(start)} --> {srt_time(end)}\n[{ev.layer}] {caption}\n")
    return "\n".join(cues)


def write_srt(path: str | Path, events: Iterable[SubEvent], duration: float | None = None) -> Path:
    return _write(Path(path), srt_text(events, duration))


def write_plan_json(path: str | Path, plan: Plan, **extra: Any) -> Path:
    """The plan (reasoning, events) plus any extra JSON-able facts (backends, loudness, speech regions...)."""
    doc = _jsonable({"plan": plan.to_dict(), **extra})
    return _write(Path(path), json.dumps(doc, indent=2, allow_nan=False) + "\n")


def _jsonable(value: Any) -> Any:
    """Plain JSON: dataclasses via ``to_dict``, paths as strings, arrays as lists, ±inf/NaN as null."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _write(path: Path, text: str) -> Path:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from e
    return path
