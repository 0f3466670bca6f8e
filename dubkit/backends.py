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
    mode: str | None = None  # the request mode this run plans ("video", "text", "continuation")

    def summary(self) -> dict[str, str]:
        d = {}
        if self.captioner is not None:
            d["captioner"] = self.captioner.name
        # A dispatching planner is reported by the planner that will actually run for this mode.
        for_mode = getattr(self.planner, "planner_for_mode", None)
        d["planner"] = for_mode(self.mode).name if (for_mode and self.mode in ("video", "text")) else self.planner.name
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
    device: str | None = None,
) -> Captioner:
    """``cues`` (no weights) by default; ``clip`` adds zero-shot tags from local open_clip weights; a sidecar
    shot list (``captions``) replaces or enriches the descriptions of whichever is chosen."""
    from .scenes.visual_cues import VisualCuesCaptioner

    if name not in CAPTIONERS:
        raise InputError(f"unknown captioner {name!r}; choose one of {', '.join(CAPTIONERS)}")
    base: Captioner = VisualCuesCaptioner()
    if name == "clip" or (name == "auto" and clip_weights is not None):
        from .scenes.clip_tagger import ClipTagger, CombinedCaptioner

        # Without --clip-weights the tagger looks in the models folder (`dubkit models pull clip-vit-b-32`) and
        # the open_clip cache, and fails at once with what to do if neither has them.
        base = CombinedCaptioner(ClipTagger(clip_model, clip_weights, device=device), base)
    if captions is not None:
        from .scenes.sidecar import SidecarCaptioner

        base = SidecarCaptioner(captions, base=base, mode=sidecar_mode)
    return base


def is_audiostory_folder(path: Path) -> bool:
    from audiostory_core.models.published import detect_layout

    return detect_layout(path) in ("dubkit-audiostory", "published-audiostory")


def load_model_backends(
    model: str | Path, *, device: str | None = None, steps: int | None = None, t5: str | Path | None = None
) -> tuple[Planner, Renderer, dict[str, str]]:
    """A model folder → planner + DiT renderer.

    - An AudioStory folder (ours, or the published AudioStory-3B layout): the LLM planner conditions the DiT
      with its fused query tokens.
    - A DiT-only folder (TangoFlux layout or ours): the offline planner plans, and the DiT is conditioned by
      flan-t5 caption embeddings (``t5`` folder, else ``flan-t5-large`` from `dubkit models pull`).
    """
    from audiostory_core.render.dit_renderer import DiTRenderer

    path = Path(model)
    if not path.is_dir():
        raise CheckpointError(f"{path}: model folder not found (see `dubkit models list`)")
    kwargs: dict[str, Any] = {"device": device}
    if steps:
        kwargs["steps"] = steps
    if is_audiostory_folder(path):
        from audiostory_core.models.published import load_model
        from audiostory_core.plan.llm_planner import AudioStoryPlanner

        # Device and dtype chosen once for the whole model (cuda bf16 > mps fp16 > cpu fp32): the LLM too, not
        # only the DiT, or a 3B planner would run in fp32 on the CPU beside a GPU.
        m = load_model(path, t5_dir=t5).place(device)
        renderer = DiTRenderer(m.dit, **kwargs)
        return AudioStoryPlanner(m, device=device), renderer, {"model": f"audiostory ({path})"}
    if (path / "config.json").is_file():
        from audiostory_core.models.dit import TangoFluxDiT
        from audiostory_core.models.hub import local_path
        from audiostory_core.plan.auto import AutoPlanner

        text = Path(t5) if t5 is not None else local_path("flan-t5-large")
        if not text.is_dir():
            raise CheckpointError(
                f"{path} is a DiT-only model: it needs a flan-t5 folder for caption embeddings; pass --t5 DIR "
                "or run `dubkit models pull flan-t5-large`")
        renderer = DiTRenderer(TangoFluxDiT.from_pretrained(path), text_encoder=text, **kwargs)
        return AutoPlanner(), renderer, {"model": f"dit ({path}) + t5 ({text})"}
    raise CheckpointError(
        f"{path}: not a model folder: expected audiostory.json (dubkit format), config.yaml + pytorch_model.bin "
        "(published AudioStory-3B) or config.json + weights (a DiT)")


def choose_backends(
    *,
    model: str | Path | None = None,
    library: Sequence[str | Path] = (),
    device: str | None = None,
    captioner: Captioner | None = None,
    steps: int | None = None,
    t5: str | Path | None = None,
) -> Backends:
    if model is not None:
        planner, renderer, notes = load_model_backends(model, device=device, steps=steps, t5=t5)
        return Backends(captioner, planner, renderer, notes)
    from audiostory_core.plan.auto import AutoPlanner
    from audiostory_core.render.foley.renderer import FoleyRenderer

    for d in library:
        if not Path(d).is_dir():
            raise InputError(f"{d}: sound library folder not found")
    return Backends(captioner, AutoPlanner(), FoleyRenderer(library_dirs=[Path(d) for d in library]))
