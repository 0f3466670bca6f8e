"""Plan files: what the plan command writes and the dub command renders from a plan file, without re-planning.

An editor reviews the plan, edits captions, times, layers, the chosen clip per event (``sound``: a foley bank name
or a library file) and music per scene (the "score" layer's events), and renders it as given, without
re-planning. The file carries :data:`PLAN_FILE_VERSION`; :func:`load_plan` validates every event and stops at the
first bad edit with one error that names the event (index and caption) and the field, so a typo never renders
silently wrong. Both the full ``dubkit plan`` document (``{"version", "plan", "scenes", ...}``) and a bare plan
(``{"version", "duration", "events"}``) load.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import PlanError
from ..request import StoryRequest
from .base import Planner
from .types import LAYERS, Plan, SubEvent

PLAN_FILE_VERSION = 1
GAIN_RANGE_DB = (-60.0, 24.0)  # beyond these an edit is a slip (a missing minus sign), not a mix decision
_EVENT_FIELDS = {"caption", "start", "duration", "layer", "kind", "gain_db", "scene_index", "tail", "sound"}
_TIME_TOLERANCE = 0.05  # seconds an event may overhang the video's end (rounding in hand edits)


def plan_document(plan: Plan) -> dict[str, Any]:
    """A bare plan as a versioned plan-file document."""
    return {"version": PLAN_FILE_VERSION, **plan.to_dict()}


def load_plan(path: str | os.PathLike, *, duration: float | None = None) -> Plan:
    """Read and validate a plan file; ``duration`` (the video's, in seconds) bounds the event times.

    Raises :class:`PlanError` with one line naming the file, the event and the field at the first problem.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise PlanError(f"cannot read plan file {p}: {e.strerror or e}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return plan_from_document(doc, duration=duration, where=str(p))


def plan_from_document(doc: Any, *, duration: float | None = None, where: str = "plan") -> Plan:
    """Validate a parsed plan-file document (see :func:`load_plan`) and build the :class:`Plan`."""
    if not isinstance(doc, dict):
        raise PlanError(f"{where}: a plan file is a JSON object, not {type(doc).__name__}")
    version = doc.get("version")
    if version != PLAN_FILE_VERSION:
        raise PlanError(f"{where}: field 'version' must be {PLAN_FILE_VERSION} (this dubkit's plan format), "
                        f"got {version!r}; write the plan again with `dubkit plan`")
    body = doc.get("plan", doc)
    if not isinstance(body, dict):
        raise PlanError(f"{where}: field 'plan' must be an object with 'duration' and 'events'")
    total = _number(body.get("duration"), f"{where}: field 'duration'", low=0.0, strict=True)
    if duration is not None and abs(total - duration) > _TIME_TOLERANCE:
        raise PlanError(f"{where}: field 'duration' is {total:g} s but the video lasts {duration:g} s; "
                        "this plan was made for another video")
    events = body.get("events")
    if not isinstance(events, list) or not events:
        raise PlanError(f"{where}: field 'events' must be a non-empty list of events")
    parsed = [_event(e, i, total, where) for i, e in enumerate(events)]
    score = None
    if body.get("score"):
        from ..music.types import ScorePlan

        try:
            score = ScorePlan.from_dict(body["score"])
        except (KeyError, TypeError, ValueError) as e:
            raise PlanError(f"{where}: field 'score' is not a valid cue sheet ({type(e).__name__}: {e}); "
                            "delete it to have the music scored from the score events' captions") from None
    return Plan(reasoning=str(body.get("reasoning", "")), events=parsed, duration=total,
                planner=str(body.get("planner", "")) or "plan file", score=score)


def _event(e: Any, i: int, total: float, where: str) -> SubEvent:
    if not isinstance(e, dict):
        raise PlanError(f"{where}: event {i}: must be an object with 'caption', 'start', 'duration'")
    caption = e.get("caption")
    name = f"{where}: event {i}" + (f" ({caption!r})" if isinstance(caption, str) and caption.strip() else "")
    unknown = sorted(set(e) - _EVENT_FIELDS)
    if unknown:
        raise PlanError(f"{name}: unknown field {unknown[0]!r}; an event has {', '.join(sorted(_EVENT_FIELDS))}")
    if not isinstance(caption, str) or not caption.strip():
        raise PlanError(f"{name}: field 'caption' must be a non-empty text, got {caption!r}")
    start = _number(e.get("start"), f"{name}: field 'start'", low=0.0)
    length = _number(e.get("duration"), f"{name}: field 'duration'", low=0.0, strict=True)
    if start + length > total + _TIME_TOLERANCE:
        raise PlanError(f"{name}: field 'duration': the event ends at {start + length:g} s, after the plan's end "
                        f"({total:g} s)")
    layer = e.get("layer", "fx")
    if layer not in LAYERS:
        raise PlanError(f"{name}: field 'layer' must be one of {', '.join(LAYERS)}, got {layer!r}")
    kind = e.get("kind", "")
    if not isinstance(kind, str):
        raise PlanError(f"{name}: field 'kind' must be a text, got {kind!r}")
    gain = _number(e.get("gain_db", 0.0), f"{name}: field 'gain_db'", low=GAIN_RANGE_DB[0], high=GAIN_RANGE_DB[1])
    tail = _number(e.get("tail", 0.0), f"{name}: field 'tail'", low=0.0)
    scene = e.get("scene_index")
    if scene is not None and (isinstance(scene, bool) or not isinstance(scene, int) or scene < 0):
        raise PlanError(f"{name}: field 'scene_index' must be a scene number >= 0 or null, got {scene!r}")
    sound = e.get("sound")
    if sound is not None and (not isinstance(sound, str) or not sound.strip()):
        raise PlanError(f"{name}: field 'sound' must name a bank sound or a library file, or be null; "
                        f"got {sound!r}")
    return SubEvent(caption=caption.strip(), start=start, duration=length, layer=layer, kind=kind, gain_db=gain,
                    scene_index=scene, tail=tail, sound=sound)


def _number(value: Any, what: str, *, low: float | None = None, high: float | None = None,
            strict: bool = False) -> float:
    """A finite number within bounds (``strict``: above ``low``), or one error saying what was wrong."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PlanError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if low is not None and (v <= low if strict else v < low):
        raise PlanError(f"{what} must be {'>' if strict else '>='} {low:g}, got {v:g}")
    if high is not None and v > high:
        raise PlanError(f"{what} must be <= {high:g}, got {v:g}")
    return v


class FixedPlanner(Planner):
    """A planner that returns an edited plan as given: the pipeline renders it without re-planning (render tails,
    the crossfade extensions, are still assigned by the pipeline as for any offline plan)."""

    name = "plan file"
    assigns_tails = False

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def plan(self, request: StoryRequest) -> Plan:
        if abs(request.duration - self._plan.duration) > _TIME_TOLERANCE:
            raise PlanError(f"the plan file lasts {self._plan.duration:g} s but the request {request.duration:g} s")
        return self._plan
