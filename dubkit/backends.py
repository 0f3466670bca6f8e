"""Backend choice, in one place: the captioner, planner and renderer of every mode, by name or by the model given.

``build_backends(ModelOptions(...), CaptionOptions(...), MusicOptions(...))`` loads everything once (the
captioner on the first video run); the API's
``dub``, ``plan``, ``story`` and ``continue_audio`` take the result as ``backends=`` so a script or a
watch-folder worker loads models once and calls them many times. The default is whatever works offline on this machine with what is
installed (visual cues + scene/text/continuation planners + foley renderer, with the composer playing the
score layer); ``Backends.line(mode)`` reports the choice in one line so a user always knows what produced their
audio.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from audiostory_core.plan.base import Planner
from audiostory_core.render.base import Renderer

from .errors import CheckpointError, InputError, RenderError
from .options import CaptionOptions, ModelOptions, MusicOptions
from .scenes.base import Captioner

Mode = Literal["video", "text", "continuation"]
CONTINUATION_PLANNER = "continuation (audio analysis)"
OWN_TEXTURE_DB = 8.0  # a continuation plays its input's own sound on when no recording is closer than this


@dataclass
class ContinuationBackends:
    """Offline continuation: the audio-analysis planner, and the renderer for its plan — None: the planner's own
    bank (the foley bank and the licensed recordings) plays the sounds it chose."""

    planner: Planner
    renderer: Renderer | None = None

    def summary(self) -> dict[str, str]:
        return {"planner": CONTINUATION_PLANNER,
                "renderer": self.renderer.name if self.renderer else "foley bank + sound library"}


@dataclass
class Backends:
    """Everything a run loads. ``planner`` plans every mode (a planner that dispatches by request mode, or the
    AudioStory LLM); ``continuation`` is set when continuations are planned offline, outside the pipeline."""

    planner: Planner
    renderer: Renderer
    captioner: Captioner | None = None  # built by ``video_captioner()`` on the first video run, then kept
    continuation: ContinuationBackends | None = None
    notes: dict[str, str] = field(default_factory=dict)
    models: ModelOptions = field(default_factory=ModelOptions)  # what it was built from
    captioning: CaptionOptions = field(default_factory=CaptionOptions)
    music: MusicOptions = field(default_factory=MusicOptions)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def video_captioner(self) -> Captioner:
        """The captioner of video runs, built from ``captioning`` on first use and reused after: a text story
        or a continuation never imports or loads an image model. Safe from several worker threads."""
        with self._lock:
            if self.captioner is None:
                self.captioner = build_captioner(self.captioning, device=self.models.device)
            return self.captioner

    def summary(self, mode: Mode | None = None, captioner: Captioner | None = None) -> dict[str, str]:
        """What serves a run of ``mode``, by name (None: the backends as built); ``captioner``: the one a video
        run actually uses, when a shot list wraps the built one."""
        if mode == "continuation" and self.continuation is not None:
            return self.continuation.summary()
        d = {}
        captioner = captioner or self.captioner
        if captioner is not None and mode in ("video", None):
            d["captioner"] = captioner.name
        # A dispatching planner is reported by the planner that will actually run for this mode.
        d["planner"] = self.planner.planner_for_mode(mode).name if mode is not None else self.planner.name
        d["renderer"] = self.renderer.name
        d.update(self.notes)
        return d

    def line(self, mode: Mode | None = None, captioner: Captioner | None = None) -> str:
        return "backends: " + ", ".join(f"{k}={v}" for k, v in self.summary(mode, captioner).items())

    def check_built_from(self, models: ModelOptions | None, captioning: CaptionOptions | None = None,
                         music: MusicOptions | None = None) -> None:
        """Options that would build other backends than these are an error, not silently ignored."""
        for given, built, what in ((models, self.models, "model"), (captioning, self.captioning, "caption"),
                                   (music, self.music, "music")):
            if given is not None and given != built:
                raise InputError(f"these backends were built with other {what} options ({built}) than the ones "
                                 f"given ({given}): build new backends, or leave those options out")


def build_backends(models: ModelOptions | None = None, captioning: CaptionOptions | None = None,
                   music: MusicOptions | None = None) -> Backends:
    """Load the backends of every mode: a model folder's planner + DiT, or the offline planners + foley; unless
    ``music`` is off, the composer plays the score layer (its SoundFont is found here, before any work). The
    captioner is built on the first video run (``Backends.video_captioner``), so text and continuation runs
    never load it."""
    models = models or ModelOptions()
    captioning = captioning or CaptionOptions()
    music = music or MusicOptions()
    # The SoundFont is looked for first: its absence fails before any weights load (an AudioStory model plays
    # its own plan, music included, on the DiT: no composer).
    composer = build_composer(music) if models.model is None or _layout(models.model) == "dit" else None
    if models.model is not None:
        planner, renderer, notes = load_model_backends(
            models.model, device=models.device, steps=models.steps, t5=models.t5, preset=models.preset,
            music=music, composer=composer)
        return Backends(planner, renderer, None, None, notes, models, captioning, music)
    from audiostory_core.render.foley.renderer import FoleyRenderer

    for d in models.library:
        if not d.is_dir():
            raise InputError(f"{d}: sound library folder not found")
    planner = offline_planner(music)
    foley = FoleyRenderer(library_dirs=list(models.library), licence=models.licence)
    renderer, notes = with_composer(foley, composer)
    # Offline continuation: the analysis chooses among the bank and the recordings the licence filter admits
    # (a choir goes on as recorded voices, hiss as recorded hiss; a loop as its own hits), and plays them itself.
    continuation = ContinuationBackends(continuation_planner(foley), None)
    return Backends(planner, renderer, None, continuation, notes, models, captioning, music)


def offline_planner(music: MusicOptions | None = None) -> Planner:
    """The planners that need no LLM, for every mode (with ``music``: video and text plan a score too; default
    none); the continuation planner listens to the foley bank."""
    from audiostory_core.plan.auto import AutoPlanner
    from audiostory_core.plan.continuation_planner import ContinuationPlanner
    from audiostory_core.plan.scene_planner import ScenePlanner
    from audiostory_core.plan.text_planner import TextPlanner
    from audiostory_core.render.foley.bank import BANK, synthesize

    music = music or MusicOptions(music="off")
    return AutoPlanner(scene=ScenePlanner(music=music.music, music_style=music.music_style),
                       text=TextPlanner(music=music.music, music_style=music.music_style),
                       continuation=ContinuationPlanner(BANK, synthesize))


def continuation_planner(foley: Renderer) -> Planner:
    """The offline continuation planner over the foley bank and every recording ``foley`` may play (its licence
    filter applies): what it picks carries its credits into the continuation."""
    from audiostory_core.plan.continuation_planner import ContinuationPlanner
    from audiostory_core.render.foley.recorded import RecordingBank

    bank = RecordingBank.from_renderer(foley)
    return ContinuationPlanner(bank, bank.synthesize, own_texture_db=OWN_TEXTURE_DB)


def build_composer(music: MusicOptions) -> Renderer | None:
    """The composer (FluidSynth + SoundFont) that plays the "score" layer; None when the music is off. Built
    before any model loads, so a missing SoundFont fails at once, in one line."""
    if music.music == "off":
        return None
    from audiostory_core.render.music_renderer import MusicRenderer

    try:
        return MusicRenderer(music.soundfont)
    except RenderError as e:
        if music.soundfont is not None:
            raise RenderError(f"`soundfont`: {e}") from None
        raise RenderError(f"{e} (`music` off)") from None


def with_composer(renderer: Renderer, composer: Renderer | None) -> tuple[Renderer, dict[str, str]]:
    """``renderer`` with the "score" layer routed to ``composer``, and the note naming its SoundFont."""
    if composer is None:
        return renderer, {}
    from audiostory_core.render.router import LayerRouter

    return LayerRouter(renderer, {"score": composer}), {"music": f"composer ({composer.soundfont})"}


def build_captioner(captioning: CaptionOptions, *, device: str | None = None, clip_model: str = "ViT-B-32") -> Captioner:
    """By default (``auto``, ``tagger``) the offline ImageNet tagger names what is seen and the visual cues say
    when something happens; ``cues`` alone needs no weights at all; ``clip`` (or ``auto`` with clip weights) puts
    zero-shot tags from local open_clip weights in the tagger's place."""
    from .scenes.combined import CombinedCaptioner
    from .scenes.visual_cues import VisualCuesCaptioner

    base: Captioner = VisualCuesCaptioner()
    name = captioning.captioner
    if _wants_clip(captioning):
        from .scenes.clip_tagger import ClipTagger

        # Without clip weights the tagger looks in the models folder (`dubkit models pull clip-vit-b-32`) and
        # the open_clip cache, and fails at once with what to do if neither has them.
        return CombinedCaptioner(ClipTagger(clip_model, captioning.clip_weights, device=device), base)
    if name in ("auto", "tagger"):
        from .scenes.tagger import TaggerCaptioner

        return CombinedCaptioner(TaggerCaptioner(), base)
    return base


def _wants_clip(captioning: CaptionOptions) -> bool:
    return captioning.captioner == "clip" or (captioning.captioner == "auto" and captioning.clip_weights is not None)


def captioner_keyframe_width(captioning: CaptionOptions) -> int:
    """The keyframe width the captioner ``build_captioner`` makes of ``captioning`` asks the scan for, known
    without building it (nothing is imported or loaded): the decoding can start before the models load."""
    from .scenes.base import DEFAULT_KEYFRAME_WIDTH

    if captioning.captioner in ("auto", "tagger") and not _wants_clip(captioning):
        from .scenes.tagger import TaggerCaptioner

        return max(TaggerCaptioner.keyframe_width, DEFAULT_KEYFRAME_WIDTH)  # beside the visual cues
    return DEFAULT_KEYFRAME_WIDTH


def with_shot_list(captioner: Captioner, captions: str | Path | None, mode: str = "replace") -> Captioner:
    """A sidecar shot list (``captions``: one video's SRT/JSON/CSV) replaces or enriches the descriptions of
    ``captioner``; per call, since the backends serve many videos."""
    if captions is None:
        return captioner
    from .scenes.sidecar import SidecarCaptioner

    return SidecarCaptioner(captions, base=captioner, mode=mode)


def _layout(path: Path) -> str | None:
    from audiostory_core.models.published import detect_layout

    return detect_layout(path) if path.is_dir() else None


def is_audiostory_folder(path: Path) -> bool:
    from audiostory_core.models.published import detect_layout

    return detect_layout(path) in ("dubkit-audiostory", "published-audiostory")


def load_model_backends(
    model: str | Path, *, device: str | None = None, steps: int | None = None, t5: str | Path | None = None,
    preset: str | None = None, music: MusicOptions | None = None, composer: Renderer | None = None,
) -> tuple[Planner, Renderer, dict[str, str]]:
    """A model folder → planner + DiT renderer.

    - An AudioStory folder (ours, or the published AudioStory-3B layout): the LLM planner conditions the DiT
      with its fused query tokens; the DiT renders whatever it plans, music included (``music`` is not used).
    - A DiT-only folder (TangoFlux layout or ours): the offline planner plans (with ``music``: a score too,
      played by ``composer``, else by one built from ``music``), and the DiT is conditioned by flan-t5 caption
      embeddings (``t5`` folder, else ``flan-t5-large`` from `dubkit models pull`).
    """
    path = Path(model)
    if not path.is_dir():
        raise CheckpointError(f"{path}: model folder not found (see `dubkit models list`)")
    kwargs: dict[str, Any] = {"device": device, "preset": preset}
    if steps:
        kwargs["steps"] = steps
    from audiostory_core.models.published import detect_layout

    layout = detect_layout(path)
    if layout in ("dubkit-audiostory", "published-audiostory"):
        return _audiostory_backends(path, t5, kwargs)
    if layout == "dit":
        music = music or MusicOptions(music="off")
        return _dit_only_backends(path, t5, kwargs, music, composer or build_composer(music))
    raise CheckpointError(
        f"{path}: not a model folder: expected audiostory.json (dubkit format), config.yaml + pytorch_model.bin "
        "(published AudioStory-3B) or config.json + weights (a DiT)")


def _audiostory_backends(path: Path, t5: str | Path | None, kwargs: dict[str, Any]):
    from audiostory_core.models.published import load_model
    from audiostory_core.plan.llm_planner import AudioStoryPlanner
    from audiostory_core.render.dit_renderer import DiTRenderer

    # Device and dtype chosen once for the whole model (cuda bf16 > mps fp16 > cpu fp32): the LLM too, not
    # only the DiT, or a 3B planner would run in fp32 on the CPU beside a GPU.
    m = load_model(path, t5_dir=t5).place(kwargs["device"], preset=kwargs["preset"])
    renderer = DiTRenderer(m.dit, **kwargs)
    planner = AudioStoryPlanner(m, device=kwargs["device"], preset=kwargs["preset"])
    return planner, renderer, {"model": f"audiostory ({path})", "preset": planner.preset.name}


def _dit_only_backends(path: Path, t5: str | Path | None, kwargs: dict[str, Any], music: MusicOptions,
                       composer: Renderer | None):
    from audiostory_core.models.dit import TangoFluxDiT
    from audiostory_core.models.hub import local_path
    from audiostory_core.render.dit_renderer import DiTRenderer

    text = Path(t5) if t5 is not None else local_path("flan-t5-large")
    if not text.is_dir():
        raise CheckpointError(
            f"{path} is a DiT-only model: it needs a flan-t5 folder for caption embeddings; pass `t5` (the folder) "
            "or run `dubkit models pull flan-t5-large`")
    dit, notes = DiTRenderer(TangoFluxDiT.from_pretrained(path), text_encoder=text, **kwargs), {}
    renderer, notes = with_composer(dit, composer)
    return offline_planner(music), renderer, {"model": f"dit ({path}) + t5 ({text})", "preset": dit.preset.name,
                                              **notes}
