"""One pipeline for the three modes: plan, render, assemble."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

from .assemble import Assembler, Soundtrack, assemble, assign_tails
from .plan.base import Planner
from .plan.types import Plan
from .render.base import Clip, Renderer
from .request import StoryRequest
from .tracks import TrackStore

Progress = Callable[[str], None]


@dataclass
class PipelineTimings:
    plan: float = 0.0
    render: float = 0.0
    assemble: float = 0.0


class AudioStoryPipeline:
    """``generate(request, seed)`` → ``Soundtrack`` at ``sample_rate`` (default: the renderer's native rate)."""

    def __init__(
        self,
        planner: Planner,
        renderer: Renderer,
        crossfade: float = 3.0,
        sample_rate: int | None = None,
        channels: int = 2,
    ) -> None:
        self.planner = planner
        self.renderer = renderer
        self.crossfade = float(crossfade)
        self.sample_rate = int(sample_rate or renderer.sample_rate)
        self.channels = channels
        self.timings = PipelineTimings()

    def generate(
        self, request: StoryRequest, seed: int = 0, progress: Progress | None = None, total_samples: int | None = None,
        store: TrackStore | None = None,
    ) -> Soundtrack:
        """``store``: assemble into its tracks (files for long soundtracks) instead of arrays; see ``assemble``."""
        say = progress or (lambda _msg: None)
        t0 = time.perf_counter()
        say(f"planning with {self.planner.planner_for_mode(request.mode).name}")
        plan = self.planner.plan(request)
        if not self.planner.planner_for_mode(request.mode).assigns_tails:
            assign_tails(plan, self.crossfade, self.renderer.max_duration)
        t1 = time.perf_counter()
        say(f"rendering {len(plan.events)} events with {self.renderer.name}")
        each = getattr(self.renderer, "render_iter", None)
        if store is not None and each is not None:  # clip by clip into the store's tracks: no clip list at all
            return self._streamed(each(plan, plan.conditioning, seed=seed), plan, total_samples, store, t0, t1)
        clips = self.renderer.render(plan, plan.conditioning, seed=seed)
        t2 = time.perf_counter()
        say("assembling")
        track = assemble(
            clips, plan, self.sample_rate, channels=self.channels, crossfade=self.crossfade, total_samples=total_samples,
            store=store,
        )
        t3 = time.perf_counter()
        self.timings = PipelineTimings(plan=t1 - t0, render=t2 - t1, assemble=t3 - t2)
        return track

    def _streamed(self, clips: Iterator[Clip], plan: Plan, total_samples: int | None, store: TrackStore,
                  t0: float, t1: float) -> Soundtrack:
        """Assemble each clip as the renderer yields it; the time spent placing clips counts as assembly."""
        asm = Assembler(plan, self.sample_rate, channels=self.channels, total_samples=total_samples, store=store,
                        layout_rate=self.renderer.sample_rate)
        placing = 0.0
        for clip in clips:
            t = time.perf_counter()
            asm.add(clip)
            placing += time.perf_counter() - t
        t = time.perf_counter()
        track = asm.finish()
        placing += time.perf_counter() - t
        t3 = time.perf_counter()
        self.timings = PipelineTimings(plan=t1 - t0, render=t3 - t1 - placing, assemble=placing)
        return track
