"""Inference presets: ``faithful`` reproduces the published AudioStory / TangoFlux inference, ``fast`` is ours.

A preset is the set of decisions where dubkit could differ from the authors' scripts. ``faithful`` takes every
one of them as published, so a published checkpoint gives the authors' outputs (to float error); ``fast``
collects our changes, each named so a user can see what they trade:

==============================  ==========================================  =========================================
decision                        faithful (published)                        fast (dubkit)
==============================  ==========================================  =========================================
constrained decoding            the published logits processors: query      a grammar: always parses, caps reasoning,
                                runs forced only after the model writes     captions, events; numeric timestamps
                                ``<t5>``/``<aud>``, elsewhere query ids 0.0
generation config               the base LLM's own (e.g. Qwen's repetition  plain greedy
                                penalty, its end-of-turn ids)
event durations                 as the LLM wrote them; every event but the  rescaled to fill the requested total,
                                last rendered ``crossfade`` s longer        split at 30 s
latent frames per event         always the DiT's full length (645 = 30 s)   what the event needs
noise seed per event            the call's seed for every event             a different seed per event
dtype on CUDA                   float16                                     bfloat16 (float16 without bf16)
half-precision sampling         guidance and latents in the DiT's dtype     guidance and latents in float32
events per DiT call             one (its conditional + unconditional rows)  up to ``batch_size``, grouped by length
==============================  ==========================================  =========================================

Batching is not bit-exact: even events of equal latent length differ from one-at-a-time sampling in the last
bits on CPU (matrix kernels chosen by batch size; ~3e-6 after two steps on a tiny DiT, tested), so only ``fast``
batches.

Which preset a model gets by default: ``faithful`` for published checkpoints (the AudioStory-3B release, a
TangoFlux folder, or a dubkit folder converted from one), ``fast`` for models dubkit made (tiny test models,
our own training), whose checkpoints record ``default_preset``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..device import pick_device_dtype
from ..errors import DubkitError


@dataclass(frozen=True)
class Preset:
    """One consistent set of inference choices (see the module docstring)."""

    name: str
    published_decoding: bool  # the published logits processors + the LLM's generation config; else our grammar
    raw_durations: bool  # LLM durations as written + crossfade extension; else rescaled to the total
    fixed_latent_length: bool  # every event at the DiT's full latent length; else per-event lengths
    same_seed_per_event: bool  # every event's noise from the call's seed; else event_seed(seed, i)
    cuda_dtype: torch.dtype | None  # dtype on CUDA (None: pick_device_dtype's choice)
    published_dtypes: bool  # half-precision DiT: guidance and latents in its dtype, as the published loop
    batch_events: bool  # several events per DiT call; else one event per call, as published

    def device_dtype(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> tuple[torch.device, torch.dtype]:
        """``pick_device_dtype`` with this preset's CUDA dtype (an explicit ``dtype`` still wins)."""
        dev, _ = pick_device_dtype(device, dtype)
        if dtype is None and dev.type == "cuda" and self.cuda_dtype is not None:
            return dev, self.cuda_dtype
        return pick_device_dtype(dev, dtype)


FAITHFUL = Preset("faithful", published_decoding=True, raw_durations=True, fixed_latent_length=True,
                  same_seed_per_event=True, cuda_dtype=torch.float16, published_dtypes=True,
                  batch_events=False)
FAST = Preset("fast", published_decoding=False, raw_durations=False, fixed_latent_length=False,
              same_seed_per_event=False, cuda_dtype=None, published_dtypes=False,
              batch_events=True)
PRESETS: dict[str, Preset] = {p.name: p for p in (FAITHFUL, FAST)}


def get_preset(preset: "str | Preset | None", default: "str | Preset" = "fast") -> Preset:
    """A ``Preset`` from its name (or the preset itself); None gives ``default``. Unknown names raise a
    ``DubkitError`` listing the known ones."""
    if preset is None:
        preset = default
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[str(preset).strip().lower()]
    except KeyError:
        raise DubkitError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}") from None
