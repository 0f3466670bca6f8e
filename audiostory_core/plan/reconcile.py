"""Turn proposed event timings (from an LLM, a parser, a user) into a plan that adds up.

Planners propose durations that rarely sum to the requested total, sometimes miss some, and may ask for events
longer than the DiT can render in one go (30 s). Everything downstream (assembly, stems, sync) assumes events
that tile the timeline exactly, so every planner funnels its proposals through here.

Boundaries are rounded to the microsecond and each event's ``duration`` is chosen so that, in floating point,
``start + duration`` equals the next event's ``start`` and the last event ends exactly at ``total``.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Iterable, Sequence

from ..errors import PlanError
from ..request import Scene
from .types import SubEvent

GENERIC_CAPTION = "ambient background sound"
CONTINUED = " (continued)"
_TIME_DECIMALS = 6  # boundaries on a microsecond grid: readable in JSON, far finer than any sample


def reconcile_sequence(
    captions_and_durations: Iterable[Any] | None,
    total: float,
    *,
    max_event: float = 30.0,
    min_event: float = 0.5,
    layer: str = "narrative",
    sources: list[int | None] | None = None,
) -> list[SubEvent]:
    """Back-to-back events covering ``[0, total]`` exactly, in the order given.

    Each item is ``(caption, proposed_duration_or_None)`` (a bare caption string is accepted too).
    Missing, NaN, infinite, zero or negative proposals get a fair share of the time the valid ones leave (or
    their average length when those already fill the total); then all durations are rescaled to sum to
    ``total``, raised to at least ``min_event`` where the total allows it, and events longer than ``max_event``
    are split into equal back-to-back parts ("... (continued)"). Empty or unusable input gives one event with a
    generic caption. When a ``sources`` list is passed it is filled with, per event, the index of the input item
    it came from (None for the generic fallback), so callers can carry per-item data (e.g. model conditioning).
    """
    total = _positive(total, "total")
    max_event = _positive(max_event, "max_event")
    min_event = max(0.0, float(min_event)) if _finite(min_event) else 0.0
    items, origin = _clean_items(captions_and_durations)
    if not items:
        items, origin = [(GENERIC_CAPTION, None)], [None]

    durations = _fill_missing([d for _, d in items], total)
    durations = _rescale(durations, total)
    durations = _enforce_minimum(durations, total, min(min_event, total / len(durations)))

    captions: list[str] = []
    parts: list[float] = []
    came_from: list[int | None] = []
    for (caption, _), dur, src in zip(items, durations, origin):
        pieces = max(1, math.ceil(dur / max_event - 1e-9))
        for k in range(pieces):
            captions.append(caption if k == 0 else caption + CONTINUED)
            parts.append(dur / pieces)
            came_from.append(src)
    if sources is not None:
        sources[:] = came_from
    return [
        SubEvent(caption=c, start=s, duration=d, layer=layer)
        for c, (s, d) in zip(captions, exact_spans(parts, total))
    ]


def exact_spans(durations: Sequence[float], total: float, start: float = 0.0) -> list[tuple[float, float]]:
    """``(start, duration)`` pairs for back-to-back parts, rounded to the microsecond, ending exactly at ``total``.

    Boundaries come from rounded cumulative sums (no drift), and durations are nudged by an ulp where needed so
    ``start_i + duration_i == start_{i+1}`` holds in floating point.
    """
    bounds = [float(start)]
    acc = float(start)
    for d in durations[:-1]:
        acc += d
        b = round(acc, _TIME_DECIMALS)
        bounds.append(min(max(b, bounds[-1]), total))
    bounds.append(float(total))
    return [(a, span(a, b)) for a, b in zip(bounds, bounds[1:])]


def span(a: float, b: float) -> float:
    """A float ``d`` ≈ ``b - a`` for which ``a + d == b`` exactly (so event ends match to the bit).

    The round-to-nanosecond value is preferred when it works, so durations read as written (0.2, not 0.19999…).
    """
    pretty = round(b - a, 9)
    if a + pretty == b:
        return max(pretty, 0.0)
    d = b - a
    for _ in range(8):
        s = a + d
        if s == b:
            break
        d = math.nextafter(d, math.inf if s < b else -math.inf)
    return max(d, 0.0)


def fit_to_scenes(events: Iterable[SubEvent], scenes: Sequence[Scene], *, min_event: float = 0.05) -> list[SubEvent]:
    """Copies of ``events`` clipped (or moved) so each lies inside one scene, with ``scene_index`` set.

    An event is assigned to the scene it overlaps most (ties: the earlier scene); an event overlapping none is
    moved into the nearest scene. Clipping keeps the event's start where it can, so cue-synced onsets stay put;
    an event that would shrink below ``min_event`` is shifted back inside its scene instead. Sorted by start.
    """
    valid = [(i, s) for i, s in enumerate(scenes) if _finite(s.start) and _finite(s.end) and s.end > s.start]
    if not valid:
        raise PlanError("cannot fit events to scenes: no scene has a positive duration")
    out: list[SubEvent] = []
    for ev in events:
        start, dur = float(ev.start), float(ev.duration)
        if not (_finite(start) and _finite(dur)) or dur <= 0:
            continue
        end = start + dur
        idx, scene = max(valid, key=lambda t: (_overlap(start, end, t[1].start, t[1].end), -_gap(start, end, t[1])))
        s0, s1 = float(scene.start), float(scene.end)
        new_start, new_end = max(start, s0), min(end, s1)
        if new_end - new_start < min(min_event, s1 - s0):
            length = min(dur, s1 - s0)
            new_start = min(max(start, s0), s1 - length)
            new_end = new_start + length
        new_start = round(new_start, _TIME_DECIMALS)
        new_end = s1 if new_end >= s1 else round(new_end, _TIME_DECIMALS)
        new_start = min(max(new_start, s0), new_end)
        out.append(replace(ev, start=new_start, duration=span(new_start, new_end), scene_index=idx))
    out.sort(key=lambda e: e.start)
    return out


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _gap(a0: float, a1: float, scene: Scene) -> float:
    if a1 < scene.start:
        return scene.start - a1
    if a0 > scene.end:
        return a0 - scene.end
    return 0.0


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _positive(x: Any, name: str) -> float:
    if not _finite(x) or float(x) <= 0:
        raise PlanError(f"{name} must be a positive number of seconds, got {x!r}")
    return float(x)


def _clean_items(raw: Iterable[Any] | None) -> tuple[list[tuple[str, float | None]], list[int | None]]:
    """Normalise whatever a planner produced into (non-empty caption, positive finite duration or None), with the
    index of each kept item in the input."""
    items: list[tuple[str, float | None]] = []
    origin: list[int | None] = []
    if raw is None:
        return items, origin
    try:
        seq = list(raw)
    except TypeError:
        return items, origin
    for index, item in enumerate(seq):
        if isinstance(item, SubEvent):
            caption, dur = item.caption, item.duration
        elif isinstance(item, str):
            caption, dur = item, None
        elif isinstance(item, (tuple, list)) and item:
            caption, dur = item[0], (item[1] if len(item) > 1 else None)
        else:
            continue
        caption = " ".join(str(caption).split()) if caption is not None else ""
        if not caption:
            caption = GENERIC_CAPTION
        d = float(dur) if _finite(dur) and float(dur) > 0 else None
        items.append((caption, d))
        origin.append(index)
    return items, origin


def _fill_missing(proposed: list[float | None], total: float) -> list[float]:
    valid = [d for d in proposed if d is not None]
    n_missing = len(proposed) - len(valid)
    if not valid:
        return [total / len(proposed)] * len(proposed)
    if n_missing == 0:
        return list(proposed)  # type: ignore[arg-type]
    mean = sum(valid) / len(valid)
    left = total - sum(valid)
    # The time the proposals leave over goes to the unproposed events, but never less than a fair average share
    # (the proposals are rescaled afterwards to make room).
    share = max(left / n_missing, min(mean, total / len(proposed)))
    return [d if d is not None else share for d in proposed]


def _rescale(durations: list[float], total: float) -> list[float]:
    s = math.fsum(durations)
    return [d * total / s for d in durations]


def _enforce_minimum(durations: list[float], total: float, floor: float) -> list[float]:
    """Raise events shorter than ``floor`` to it, taking the time proportionally from the longer ones."""
    if floor <= 0:
        return durations
    out = list(durations)
    for _ in range(len(out) + 1):
        short = [i for i, d in enumerate(out) if d < floor - 1e-12]
        if not short:
            break
        fixed = set(i for i, d in enumerate(out) if d <= floor + 1e-12)
        rest = total - floor * len(fixed)
        free = math.fsum(out[i] for i in range(len(out)) if i not in fixed)
        out = [floor if i in fixed else out[i] * rest / free for i in range(len(out))]
    return out
