"""Rectified-flow sampling with classifier-free guidance, for many events of different lengths at once.

Each event brings its own condition tokens, its own unconditional ("null") tokens, its duration and its own
latent length. All of them — conditional and unconditional rows together — go through the DiT in ONE batched
forward per step; rows shorter than the longest are padded and masked out of attention, so an event's result
does not depend on what it was batched with. Each event's starting noise comes from its own seeded
``torch.Generator`` on the CPU, so batching, ordering and device never change an event's noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..models.dit import TangoFluxDiT

# As the authors ship them: AudioStory's inference script (query-token conditioning) and TangoFlux's
# (caption conditioning).
DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = 4.0
TANGOFLUX_STEPS = 25
TANGOFLUX_GUIDANCE = 4.5


@dataclass
class EventCondition:
    """What the DiT is conditioned on for one event.

    ``tokens`` (S, D): caption T5 embedding or fused AudioStory query tokens. ``null`` (S', D): the
    unconditional context for guidance. ``pool_mask``/``null_pool_mask`` (bool, per token) choose which tokens
    the pooled vector averages; None means all of them.
    """

    tokens: torch.Tensor
    null: torch.Tensor
    seconds: float
    frames: int
    seed: int
    pool_mask: torch.Tensor | None = None
    null_pool_mask: torch.Tensor | None = None


def flow_sigmas(steps: int) -> np.ndarray:
    """Noise levels 1 → 1/steps, linearly spaced (the TangoFlux schedule; the scheduler appends 0)."""
    return np.linspace(1.0, 1.0 / steps, steps)


def initial_noise(frames: int, channels: int, seed: int) -> torch.Tensor:
    """(frames, channels) float32 standard normal noise from the event's own CPU generator."""
    return torch.randn(frames, channels, generator=torch.Generator("cpu").manual_seed(int(seed)))


def _pad_rows(rows: Sequence[torch.Tensor], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (n_i, D) tensors into (B, length, D) zero-padded, plus a (B, length) mask of real rows."""
    out = rows[0].new_zeros(len(rows), length, rows[0].shape[-1])
    mask = torch.zeros(len(rows), length, dtype=torch.bool)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
        mask[i, : r.shape[0]] = True
    return out, mask


def _pool_rows(masks: Sequence[torch.Tensor | None], lengths: Sequence[int], width: int) -> torch.Tensor:
    out = torch.zeros(len(masks), width, dtype=torch.bool)
    for i, (m, n) in enumerate(zip(masks, lengths)):
        out[i, :n] = True if m is None else m.to(torch.bool).cpu()
    return out


@torch.inference_mode()
def sample_latents(
    dit: TangoFluxDiT, events: Sequence[EventCondition], *, steps: int = DEFAULT_STEPS,
    guidance: float = DEFAULT_GUIDANCE, published_dtypes: bool = False, on_device: bool = False,
) -> list[torch.Tensor]:
    """Denoise every event's latents in one batch; returns one float32 (frames_i, C) CPU tensor per event
    (``on_device``: left on the DiT's device, for a VAE decode there: no round trip through the host).

    Guidance > 1 runs the conditional and unconditional rows in the same forward and combines them as
    ``v = v_uncond + guidance * (v_cond - v_uncond)``; guidance ≤ 1 runs the conditional rows only.
    ``published_dtypes`` follows the published loop's arithmetic in a half-precision DiT: guidance combined in
    the DiT's dtype, and the latents in that dtype after the first step (the scheduler returns its velocity's
    dtype); otherwise both stay float32. On a float32 DiT the two are the same.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    if not events:
        return []
    device, channels = dit.device, dit.config.in_channels
    use_cfg = guidance > 1.0
    n = len(events)
    frames = [int(e.frames) for e in events]
    longest = max(frames)

    x, frame_mask = _pad_rows([initial_noise(f, channels, e.seed) for f, e in zip(frames, events)], longest)
    token_rows = [e.tokens.float().cpu() for e in events]
    pool_masks = [e.pool_mask for e in events]
    seconds = [e.seconds for e in events]
    if use_cfg:
        token_rows += [e.null.float().cpu() for e in events]
        pool_masks += [e.null_pool_mask for e in events]
        seconds += seconds
        frame_mask = torch.cat([frame_mask, frame_mask])
    lengths = [r.shape[0] for r in token_rows]
    tokens, token_mask = _pad_rows(token_rows, max(lengths))
    pool_mask = _pool_rows(pool_masks, lengths, max(lengths))
    ragged = not (bool(token_mask.all()) and bool(frame_mask.all()))

    context, pooled, context_mask = dit.encode_condition(
        tokens.to(device), torch.tensor(seconds, device=device), token_mask.to(device) if ragged else None,
        pool_mask.to(device),
    )
    frame_mask_dev = frame_mask.to(device) if ragged else None
    x = x.to(device)
    keep = frame_mask[:n].to(device)[..., None]

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(dit.scheduler.config)
    scheduler.set_timesteps(sigmas=flow_sigmas(steps), device=device)
    for t in scheduler.timesteps:
        rows = torch.cat([x, x]) if use_cfg else x
        sigma = (t / scheduler.config.num_train_timesteps).expand(rows.shape[0])
        v = dit.velocity(rows, sigma, context, pooled, context_mask, frame_mask_dev)
        v = v if published_dtypes else v.float()  # published: the scheduler keeps the velocity's dtype
        if use_cfg:
            v_cond, v_uncond = v.chunk(2)
            v = v_uncond + guidance * (v_cond - v_uncond)
        x = scheduler.step(v, t, x).prev_sample * keep  # padded frames stay at zero
    return [x[i, : frames[i]].float() if on_device else x[i, : frames[i]].float().cpu() for i in range(n)]
