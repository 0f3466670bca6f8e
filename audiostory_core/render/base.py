"""The renderer seam: ``Renderer.render(plan, conditioning) -> list[Clip]``, one clip per event."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ..plan.types import Plan, SubEvent
from ..timing import span_samples


@dataclass
class Clip:
    """Rendered audio for one event: float32, (channels, samples), at the renderer's native rate.

    Its length is ``event_samples(event, sample_rate)``: the samples between the event's start and the end of its
    crossfade tail, so clips of abutting events tile the timeline without a gap.
    """

    audio: np.ndarray
    sample_rate: int
    event: SubEvent
    source: str = ""  # what made it (e.g. "synth:door_slam", "library:/sfx/door.wav", "dit")
    # every recording heard in it, for the credits: {"clip", "path", "source", "licence", "licence_class",
    # "attribution", "url"}; empty for synthesised or generated audio
    credits: list[dict] = field(default_factory=list)
    # None: the whole event. Else this is a part of it, ``offset`` samples after the event's start: a renderer
    # that plays a long event block by block (the score) hands it over in parts; assembly places and fades each.
    offset: int | None = None


@runtime_checkable
class Renderer(Protocol):
    """Renders every event of a plan to a clip. ``max_duration`` is the longest event (duration + crossfade tail)
    it can render in seconds, ``None`` for no limit; assembly keeps tails within it.

    A renderer may also offer ``render_iter(plan, conditioning, *, seed)``: the same clips yielded one at a time,
    which lets a long soundtrack be assembled clip by clip (``assemble.Assembler``) without holding them all."""

    name: str
    sample_rate: int
    max_duration: float | None = None

    def render(self, plan: Plan, conditioning: Sequence[Any] | None = None, *, seed: int = 0) -> list[Clip]: ...


def event_samples(event: SubEvent, sample_rate: int) -> int:
    """How many samples a renderer returns for ``event`` (duration plus tail, boundary to boundary)."""
    return span_samples(event.start, event.render_duration, sample_rate)


def event_seed(seed: int, index: int) -> int:
    """A deterministic, well-spread seed for event ``index`` of a call made with ``seed``."""
    return (int(seed) * 1_000_003 + int(index) * 7919) % (2**31 - 1)
