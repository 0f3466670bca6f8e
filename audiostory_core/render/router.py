"""One renderer made of several: each event goes to the renderer that serves its layer.

Why: one run combines renderers that are each best at one thing — the composer plays the "score" layer, the
foley library or the DiT the effects and beds. The pipeline keeps talking to one ``Renderer``; this one splits
the plan by layer, lets each renderer see only its events (with their conditioning), and returns the clips in
the plan's order.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Sequence

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
        """Whole clips, in the plan's order; the renderers work side by side."""
        index = {id(ev): i for i, ev in enumerate(plan.events)}
        groups = self._groups(plan, conditioning)
        with ThreadPoolExecutor(max(1, len(groups)), thread_name_prefix="render") as pool:
            futures = [pool.submit(r.render, sub, cond, seed=seed) for r, sub, cond in groups]
            clips = {index[id(c.event)]: c for f in futures for c in f.result() if id(c.event) in index}
        return [clips[i] for i in sorted(clips)]

    def render_iter(self, plan: Plan, conditioning: Sequence[Any] | None = None, *, seed: int = 0) -> Iterator[Clip]:
        """Each renderer's clips as it makes them (one by one, or in parts, where it can: ``render_iter``), the
        renderers side by side: each runs in its own thread and hands its clips over through a short queue, so
        at most a few clips wait in memory."""
        groups = self._groups(plan, conditioning)
        if len(groups) == 1:
            yield from _clips_of(*groups[0], seed)
            return
        yield from _interleaved([lambda g=g: _clips_of(*g, seed) for g in groups])

    def _groups(self, plan: Plan, conditioning: Sequence[Any] | None) -> list[tuple[Renderer, Plan, list | None]]:
        """(renderer, its sub-plan, its conditioning) per renderer, after each that needs the whole plan saw it."""
        for r in {id(r): r for r in (self.default, *self.routes.values())}.values():
            prepare = getattr(r, "prepare", None)  # a renderer that needs to see the whole plan first
            if prepare is not None:
                prepare(plan)
        groups: dict[int, tuple[Renderer, list[int]]] = {}
        for i, ev in enumerate(plan.events):
            r = self.renderer_for(ev.layer)
            groups.setdefault(id(r), (r, []))[1].append(i)
        out = []
        for renderer, idx in groups.values():
            cond = [conditioning[i] for i in idx] if conditioning is not None else None
            out.append((renderer, Plan(plan.reasoning, [plan.events[i] for i in idx], plan.duration, plan.planner,
                                       conditioning=cond, score=plan.score), cond))
        return out


def _clips_of(renderer: Renderer, sub: Plan, cond: list | None, seed: int) -> Iterator[Clip]:
    mine = {id(ev) for ev in sub.events}
    each = getattr(renderer, "render_iter", None)
    for clip in (each(sub, cond, seed=seed) if each is not None else renderer.render(sub, cond, seed=seed)):
        if id(clip.event) in mine:
            yield clip


_DONE = object()


def _interleaved(sources: list, depth: int = 4) -> Iterator[Clip]:
    """Run each generator factory in ``sources`` in a thread of its own and yield their items as they come
    (FluidSynth, numpy and torch let go of the GIL: the score costs no wall time on a second core). An error in
    one is raised here; when the consumer stops early the threads are told to stop and are waited for."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run(make) -> None:
        gen = make()
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        box.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            box.put(exc)
        finally:
            gen.close()  # its clean-up (a synthesizer freed) runs now, in this thread

    threads = [threading.Thread(target=run, args=(m,), name="render", daemon=True) for m in sources]
    for t in threads:
        t.start()
    try:
        left = len(threads)
        while left:
            item = box.get()
            if item is _DONE:
                left -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):
            try:
                box.get(timeout=0.1)  # unblock a producer waiting to put
            except queue.Empty:
                pass
