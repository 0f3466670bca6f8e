"""GPU check: both inference presets of the DiT renderer in half precision, their speed and how far they move.

Where a CUDA GPU is available, a random mid-size DiT (the published latent and condition shapes: 64 channels,
1024-d tokens, 44.1 kHz, hop 2048; fewer, narrower blocks) renders a 50 s story (5 events, 3 s tails) with:
- ``faithful`` in float16 (as published), and the same in float32 as its reference;
- ``fast`` in bfloat16 (its CUDA default), and the same in float32 as its reference;
- ``fast`` with one seed for every event in float32: isolates what per-event latent lengths alone change.
It prints the DiT sampling time of each (CUDA-synchronised, best of ``--rounds``), the speed-up of fast, and the
largest latent difference of each half-precision run against its float32 reference (and of per-event lengths
against 645 frames, on the frames both have). Without a GPU it says so and exits 0.

Run: ``.venv/bin/python tests/bench/gpu_check.py [--steps 50] [--rounds 3]`` (not collected by pytest).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from audiostory_core.models.dit import DiTConfig, TangoFluxDiT  # noqa: E402
from audiostory_core.plan.types import Plan, SubEvent  # noqa: E402
from audiostory_core.models.presets import FAITHFUL, FAST  # noqa: E402
from audiostory_core.render.dit_renderer import DiTRenderer  # noqa: E402

DURATIONS = [14.0, 8.0, 11.0, 5.0, 12.0]
CROSSFADE = 3.0
QUERY_TOKENS = 64


def check_config() -> DiTConfig:
    return DiTConfig(
        in_channels=64, num_layers=2, num_single_layers=4, num_attention_heads=8, attention_head_dim=128,
        joint_attention_dim=1024,
        vae=dict(encoder_hidden_size=8, downsampling_ratios=[2, 4, 4, 8, 8], channel_multiples=[1, 1, 1, 1, 1],
                 decoder_channels=8, decoder_input_channels=64, audio_channels=2, sampling_rate=44100),
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine; nothing to check (run it where a GPU is available).")
        return 0

    torch.manual_seed(0)
    base = TangoFluxDiT(check_config()).eval()
    with torch.no_grad():  # random everywhere, so every block moves the latents
        for name, p in base.named_parameters():
            if not name.startswith("vae."):
                p.copy_(torch.randn_like(p) * 0.02)
    base.set_null_tokens(torch.randn(base.config.null_tokens, 1024, generator=torch.Generator().manual_seed(1)) * 0.1)
    events, t = [], 0.0
    for i, d in enumerate(DURATIONS):
        events.append(SubEvent(f"event {i}", t, d, tail=CROSSFADE if i < len(DURATIONS) - 1 else 0.0))
        t += d
    plan = Plan(reasoning="", events=events, duration=t)
    g = torch.Generator().manual_seed(2)
    cond = [torch.randn(QUERY_TOKENS, 1024, generator=g) * 0.1 for _ in events]

    def run(preset, dtype) -> tuple[float, list[torch.Tensor]]:
        dit = TangoFluxDiT(base.config)
        dit.load_state_dict(base.state_dict())
        r = DiTRenderer(dit, steps=args.steps, device="cuda", dtype=dtype, preset=preset)
        best, out = float("inf"), []
        for _ in range(args.rounds):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = r.denoise(plan, cond, seed=0)
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        return best, out

    def diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
        return max(float((x[: min(len(x), len(y))] - y[: min(len(x), len(y))]).abs().max()) for x, y in zip(a, b))

    print(f"GPU: {torch.cuda.get_device_name(0)}; DiT {sum(p.numel() for p in base.transformer.parameters()) / 1e6:.0f}M "
          f"transformer params, {args.steps} steps; story {t:.0f} s, events {DURATIONS} s + {CROSSFADE} s tails")
    t_faith16, faith16 = run(FAITHFUL, torch.float16)
    _, faith32 = run(FAITHFUL, torch.float32)
    t_fast16, fast16 = run(FAST, torch.bfloat16)
    _, fast32 = run(FAST, torch.float32)
    _, lengths_only = run(replace(FAST, same_seed_per_event=True, batch_events=False), torch.float32)
    scale = max(float(z.abs().max()) for z in faith32)
    print(f"faithful float16: {t_faith16:7.3f} s; max |latent - float32| {diff(faith16, faith32):.3g} (latents up to {scale:.3g})")
    print(f"fast bfloat16:    {t_fast16:7.3f} s; max |latent - float32| {diff(fast16, fast32):.3g}")
    print(f"speed-up of fast: {t_faith16 / t_fast16:.2f}x")
    print(f"per-event lengths alone (float32, same seeds, on shared frames): max |latent difference| "
          f"{diff(lengths_only, faith32):.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
