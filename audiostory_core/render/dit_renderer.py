"""The DiT renderer: a plan's events → audio clips with the TangoFlux DiT and the Oobleck VAE.

Conditioning per event is either given — the fused AudioStory query tokens (tokens, 1024) the LLM planner
puts in ``plan.conditioning`` — or, where none is given, the flan-t5 embedding of the event's caption.

How events are sampled follows the inference preset (``audiostory_core.models.presets``): ``faithful`` denoises every
event at the DiT's full 645 latent frames (30 s) from noise seeded with the call's seed, as the published
scripts do; ``fast`` denoises each event at the latent length it needs (``ceil(render_duration * sr / hop)``
frames, at most 645) from its own seeded noise, and renders events in batched DiT calls: sorted by length,
grouped so little padding is wasted, padding masked out of attention. Batched results agree with one-by-one
results within float tolerance (not bit for bit: matrix kernels depend on the batch size), so faithful renders
one event per call, as published.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..audio import fit_length
from ..device import pick_device_dtype
from ..errors import RenderError
from ..models.dit import T5TextEncoder, TangoFluxDiT
from ..models.presets import Preset, get_preset
from ..plan.types import Plan, SubEvent
from .base import Clip, Renderer, event_samples, event_seed
from .sampling import (
    DEFAULT_GUIDANCE, DEFAULT_STEPS, TANGOFLUX_GUIDANCE, TANGOFLUX_STEPS, EventCondition, sample_latents,
)

# A batch only takes an event at least this fraction of the batch's longest: bounds padding waste at ~25 %.
MIN_BATCH_FILL = 0.75


def group_by_length(frames: Sequence[int], batch_size: int, min_fill: float = MIN_BATCH_FILL) -> list[list[int]]:
    """Indices grouped into batches: longest first, a batch closes when full or when the next event is
    shorter than ``min_fill`` × the batch's longest (so padding never dominates the work)."""
    order = sorted(range(len(frames)), key=lambda i: (-frames[i], i))
    groups: list[list[int]] = []
    for i in order:
        g = groups[-1] if groups else None
        if g and len(g) < batch_size and frames[i] >= min_fill * frames[g[0]]:
            g.append(i)
        else:
            groups.append([i])
    return groups


class DiTRenderer(Renderer):
    """Renderer seam over a ``TangoFluxDiT``: ``render(plan, conditioning=None, *, seed=0) -> list[Clip]``.

    ``conditioning`` (usually ``plan.conditioning``) is a list with one entry per event: a (tokens, 1024)
    tensor/array of fused AudioStory query states, or None to condition that event on its caption through
    ``text_encoder`` (a ``T5TextEncoder`` or a local flan-t5 folder). The unconditional branch uses flan-t5's
    empty-prompt embedding when a text encoder is available, else the DiT's stored ``null_tokens``.
    Clips are float32 (channels, event_samples(event, sample_rate)) at the VAE's rate (44.1 kHz for the
    published VAE). The DiT (and text encoder) are moved to the chosen device/dtype once, at construction.

    ``preset`` ("faithful" | "fast" | a ``Preset``; default: the DiT's ``default_preset``, "faithful" for
    published weights) sets latent lengths, seeds, the CUDA dtype and ``batch_size``'s default (events per DiT
    call: 1 as published, 8 for fast). ``steps``/``guidance`` default to what
    the authors ship: 50 / 4.0 (AudioStory's script) without a text encoder, 25 / 4.5 (TangoFlux's) with one.
    """

    name = "dit"

    max_duration = 30.0  # seconds: the duration embedding's range; assembly keeps duration + tail within it

    def __init__(
        self,
        dit: TangoFluxDiT,
        *,
        text_encoder: T5TextEncoder | str | os.PathLike | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        batch_size: int | None = None,
        preset: str | Preset | None = None,
    ) -> None:
        captions = text_encoder is not None  # TangoFlux's use: the authors' defaults differ from AudioStory's
        steps = (TANGOFLUX_STEPS if captions else DEFAULT_STEPS) if steps is None else steps
        guidance = (TANGOFLUX_GUIDANCE if captions else DEFAULT_GUIDANCE) if guidance is None else guidance
        self.preset = get_preset(preset, getattr(dit, "default_preset", "fast"))
        batch_size = (8 if self.preset.batch_events else 1) if batch_size is None else batch_size
        if steps < 1:
            raise RenderError(f"steps must be at least 1, got {steps}.")
        if batch_size < 1:
            raise RenderError(f"batch_size must be at least 1, got {batch_size}.")
        self.device, self.dtype = self.preset.device_dtype(device, dtype)
        self.dit = dit.to(device=self.device, dtype=self.dtype).eval()
        self.steps, self.guidance, self.batch_size = int(steps), float(guidance), int(batch_size)
        self.sample_rate = dit.sample_rate
        if isinstance(text_encoder, (str, os.PathLike)):
            text_encoder = T5TextEncoder.from_pretrained(Path(text_encoder))
        self.text_encoder = text_encoder.to(self.device, self.dtype) if text_encoder is not None else None
        width = dit.config.joint_attention_dim
        if self.text_encoder is not None and self.text_encoder.width != width:
            raise RenderError(
                f"the text encoder is {self.text_encoder.width}-d but the DiT expects {width}-d tokens "
                "(AudioStory/TangoFlux use flan-t5-large)."
            )
        if self.text_encoder is not None:
            self.null = self.text_encoder.null(dit.config.null_tokens)
        else:
            self.null = dit.null_tokens.detach().float().cpu()
            if self.guidance > 1.0 and dit.null_source == "zeros":
                warnings.warn(
                    "DiTRenderer: no flan-t5 encoder given and the DiT stores no empty-prompt embedding; "
                    "classifier-free guidance uses zeros as the unconditional context.",
                    stacklevel=2,
                )
        self.forward_calls = 0  # sampling batches run, for benchmarks

    def render(self, plan: Plan, conditioning: Sequence[Any] | None = None, *, seed: int = 0) -> list[Clip]:
        """One clip per event of ``plan``, each exactly ``event_samples(event, sample_rate)`` samples."""
        events = plan.events
        if not events:
            return []
        audio = self._decode(self.denoise(plan, conditioning, seed=seed, on_device=True))
        clips = []
        for event, wave in zip(events, audio):
            n = event_samples(event, self.sample_rate)
            wave = np.ascontiguousarray(fit_length(wave, n), dtype=np.float32)
            clips.append(Clip(audio=wave, sample_rate=self.sample_rate, event=event, source="dit"))
        return clips

    def denoise(self, plan: Plan, conditioning: Sequence[Any] | None = None, *, seed: int = 0,
                on_device: bool = False) -> list[torch.Tensor]:
        """The denoised latents of every event, float32 (frames, channels) on the CPU (``on_device``: on the
        DiT's, where the VAE decodes them), before the VAE: what the oracle tests compare with the authors' own
        sampling loops."""
        events = plan.events
        if not events:
            return []
        conds = self._conditions(events, conditioning, seed)
        latents: list[torch.Tensor | None] = [None] * len(events)
        for group in group_by_length([c.frames for c in conds], self.batch_size):
            for i, z in zip(group, sample_latents(
                self.dit, [conds[i] for i in group], steps=self.steps, guidance=self.guidance,
                published_dtypes=self.preset.published_dtypes, on_device=on_device,
            )):
                latents[i] = z
            self.forward_calls += 1
        return latents  # type: ignore[return-value]

    # ---- helpers ------------------------------------------------------------------------------------------
    def _conditions(self, events: Sequence[SubEvent], conditioning: Sequence[Any] | None, seed: int) -> list[EventCondition]:
        if conditioning is not None and len(conditioning) != len(events):
            raise RenderError(
                f"got {len(conditioning)} conditioning entries for {len(events)} events; pass one per event "
                "(or None to condition on the captions)."
            )
        per_event = list(conditioning) if conditioning is not None else [None] * len(events)
        width = self.dit.config.joint_attention_dim
        need_text = [i for i, c in enumerate(per_event) if c is None]
        if need_text and self.text_encoder is None:
            raise RenderError(
                f"{len(need_text)} event(s) have no conditioning tokens and no text encoder is loaded: pass the "
                "planner's conditioning, or text_encoder=<flan-t5-large folder> (`dubkit models pull flan-t5-large`)."
            )
        texts = self.text_encoder.encode([events[i].caption for i in need_text]) if need_text else []
        text_for = dict(zip(need_text, texts))
        conds = []
        for i, (event, given) in enumerate(zip(events, per_event)):
            if event.render_duration <= 0:
                raise RenderError(f"event {i} ({event.caption!r}) has a non-positive duration {event.render_duration}.")
            if given is None:
                tokens = text_for[i]
                # TangoFlux: the empty prompt padded to the caption's length; its pooled vector averages only
                # the real (end-of-sequence) token.
                null_pool = torch.zeros(tokens.shape[0], dtype=torch.bool)
                null_pool[: self.text_encoder.empty_length] = True
            else:
                tokens = torch.as_tensor(np.asarray(given) if not torch.is_tensor(given) else given).float()
                if tokens.ndim != 2 or tokens.shape[1] != width or tokens.shape[0] == 0:
                    raise RenderError(
                        f"conditioning for event {i} has shape {tuple(tokens.shape)}; expected (tokens, {width})."
                    )
                null_pool = None  # the published sampler averages all positions for query tokens
            if tokens.shape[0] > self.null.shape[0]:
                raise RenderError(
                    f"event {i} has {tokens.shape[0]} condition tokens; the unconditional embedding covers at most "
                    f"{self.null.shape[0]} (raise DiTConfig.null_tokens)."
                )
            conds.append(EventCondition(
                tokens=tokens.cpu(), null=self.null[: tokens.shape[0]], seconds=event.render_duration,
                frames=self.frames_for(event), seed=self.seed_for(seed, i), null_pool_mask=null_pool,
            ))
        return conds

    def frames_for(self, event: SubEvent) -> int:
        """Latent frames ``event`` is denoised at: always the DiT's full length (645) in the faithful preset,
        what its render duration needs (at most that) in the fast one."""
        if self.preset.fixed_latent_length:
            return self.dit.max_frames
        return self.dit.frames_for(event.render_duration)

    def seed_for(self, seed: int, index: int) -> int:
        """The noise seed of event ``index``: the call's seed itself for every event (faithful: the published
        script reseeds 0 before each event), else a different seed per event (fast)."""
        return int(seed) if self.preset.same_seed_per_event else event_seed(seed, index)

    @torch.inference_mode()
    def _decode(self, latents: Sequence[torch.Tensor]) -> list[np.ndarray]:
        """VAE-decode, batching events of equal latent length (the VAE's convolutions see padding, so unequal
        lengths are decoded separately to keep batched == one-by-one)."""
        out: list[np.ndarray | None] = [None] * len(latents)
        by_len: dict[int, list[int]] = {}
        for i, z in enumerate(latents):
            by_len.setdefault(z.shape[0], []).append(i)
        for idx in by_len.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                z = torch.stack([latents[i] for i in chunk]).to(self.device)
                wave = self.dit.decode(z).float().cpu().numpy()
                for j, i in enumerate(chunk):
                    out[i] = wave[j]
        return out  # type: ignore[return-value]
