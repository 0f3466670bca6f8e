"""One renderer made of several: each event goes to the renderer that serves its layer.

Why: one run combines renderers that are each best at one thing — the composer plays the "score" layer, the
foley library or the DiT the effects and beds. The pipeline keeps talking to one ``Renderer``; this one splits
the plan by layer, lets each renderer see only its events (with their conditioning), and returns the clips in
the plan's order.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from ..plan.types import Plan
from .base import Clip, Renderer


class LayerRouter:
    """``routes`` maps a layer ("score") to its renderer; every other layer goes to ``default``."""

    def __init__(self, default: Renderer, routes: dict[str, Renderer]) -> None:
        self.default = default
        self.routes = dict(routes)
        served = ", ".join(f"{r.name} ({layer})" for layer, r in self.routes.items())
        self.name = f"{default.name} + {served}" if served else default.name
        self.sample_rate = default.sample_rate
        # Crossfade tails are capped by what the default renderer can render in one go (the DiT's 30 s).
        self.max_duration = getattr(default, "max_duration", None)

    def renderer_for(self, layer: str) -> Renderer:
        return self.routes.get(layer, self.default)

    def render(self, plan: Plan, conditioning: Sequence[Any] | None = None, *, seed: int = 0) -> list[Clip]:
        for r in {id(r): r for r in (self.default, *self.routes.values())}.values():
            prepare = getattr(r, "prepare", None)  # a renderer that needs to see the whole plan first
            if prepare is not None:
                prepare(plan)
        groups: dict[int, tuple[Renderer, list[int]]] = {}
        for i, ev in enumerate(plan.events):
            r = self.renderer_for(ev.layer)
            groups.setdefault(id(r), (r, []))[1].append(i)
        def part(renderer: Renderer, idx: list[int]) -> list[Clip]:
            cond = [conditioning[i] for i in idx] if conditioning is not None else None
            sub = Plan(plan.reasoning, [plan.events[i] for i in idx], plan.duration, plan.planner,
                       conditioning=cond, score=plan.score)
            return renderer.render(sub, cond, seed=seed)

        # The renderers are independent objects and spend their time in code that lets go of the GIL (FluidSynth
        # through ctypes, numpy/scipy, torch): side by side, the composer's score costs no wall time on a second core.
        with ThreadPoolExecutor(max(1, len(groups)), thread_name_prefix="render") as pool:
            parts = [(idx, pool.submit(part, renderer, idx)) for renderer, idx in groups.values()]
            clips: dict[int, Clip] = {}
            for idx, got in parts:
                by_event = {id(c.event): c for c in got.result()}
                for i in idx:
                    if id(plan.events[i]) in by_event:
                        clips[i] = by_event[id(plan.events[i])]
        return [clips[i] for i in sorted(clips)]
