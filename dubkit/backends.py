"""Backend choice: which captioner, planner and renderer a run uses, by name or by the model given.

The default is whatever works offline on this machine with what is installed (visual cues + scene/text planner +
foley renderer); the choice is reported in one line so a user always knows what produced their audio.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from audiostory_core.plan.base import Planner
from audiostory_core.render.base import Renderer

from .errors import CheckpointError, InputError
from .scenes.base import Captioner

CAPTIONERS = ("auto", "cues", "clip")


@dataclass
class Backends:
    captioner: Captioner | None
    planner: Planner
    renderer: Renderer
    notes: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, str]:
        d = {}
        if self.captioner is not None:
            d["captioner"] = self.captioner.name
        d["planner"] = self.planner.name
        d["renderer"] = self.renderer.name
        d.update(self.notes)
        return d

    def line(self) -> str:
        return "backends: " + ", ".join(f"{k}={v}" for k, v in self.summary().items())


def choose_captioner(
    name: str = "auto",
    *,
    captions: str | Path | None = None,
    clip_model: str = "ViT-B-32",
    clip_weights: str | Path | None = None,
    sidecar_mode: str = "replace",
) -> Captioner:
    """``cues`` (no weights) by default; ``clip`` adds zero-shot tags from local open_clip weights; a sidecar
    shot list (``captions``) replaces or enriches the descriptions of whichever is chosen."""
    from .scenes.visual_cues import VisualCuesCaptioner

    if name not in CAPTIONERS:
        raise InputError(f"unknown captioner {name!r}; choose one of {', '.join(CAPTIONERS)}")
    base: Captioner = VisualCuesCaptioner()
    if name == "clip" or (name == "auto" and clip_weights is not None):
        if clip_weights is None:
            raise CheckpointError("the clip captioner needs weights: pass --clip-weights FILE (or run `dubkit models pull clip-vit-b-32`)")
        from .scenes.clip_tagger import ClipTagger, CombinedCaptioner

        base = CombinedCaptioner(ClipTagger(clip_model, clip_weights), base)
    if captions is not None:
        from .scenes.sidecar import SidecarCaptioner

        base = SidecarCaptioner(captions, base=base, mode=sidecar_mode)
    return base


def load_model_backends(model: str | Path, *, device: str | None = None, steps: int | None = None) -> tuple[Planner, Renderer, dict[str, str]]:
    """An AudioStory model folder (ours or the published layout) → LLM planner + DiT renderer."""
    from audiostory_core.models.audiostory import load_model
    from audiostory_core.plan.llm_planner import AudioStoryPlanner
    from audiostory_core.render.dit_renderer import DiTRenderer

    path = Path(model)
    if not path.exists():
        raise CheckpointError(f"{path}: model folder not found (see `dubkit models list`)")
    m = load_model(path, device=device)
    kwargs: dict[str, Any] = {"device": device}
    if steps:
        kwargs["steps"] = steps
    renderer = DiTRenderer(m.dit, text_encoder=getattr(m, "text_encoder", None), **kwargs)
    return AudioStoryPlanner(m, device=device), renderer, {"model": str(path)}


def choose_backends(
    *,
    model: str | Path | None = None,
    library: Sequence[str | Path] = (),
    device: str | None = None,
    captioner: Captioner | None = None,
    steps: int | None = None,
) -> Backends:
    if model is not None:
        planner, renderer, notes = load_model_backends(model, device=device, steps=steps)
        return Backends(captioner, planner, renderer, notes)
    from audiostory_core.plan.text_planner import AutoPlanner
    from audiostory_core.render.foley.renderer import FoleyRenderer

    for d in library:
        if not Path(d).is_dir():
            raise InputError(f"{d}: sound library folder not found")
    return Backends(captioner, AutoPlanner(), FoleyRenderer(library_dirs=[Path(d) for d in library]))
