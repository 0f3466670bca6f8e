"""Where models run: one rule for the device and dtype every model user (LLM, DiT, T5, CLIP) takes.

One function so a run never puts the planner on one device and the renderer on another, or loads one model in
bf16 and the next in fp32 beside it.
"""
from __future__ import annotations

import torch


def pick_device_dtype(
    device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> tuple[torch.device, torch.dtype]:
    """cuda > mps > cpu, and the dtype that device runs fastest without losing range: bf16 on cuda (fp16 where
    the GPU has no bf16), fp16 on mps, fp32 on cpu. Either may be given to override the choice."""
    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    device = torch.device(device)
    if dtype is None:
        if device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float16 if device.type == "mps" else torch.float32
    return device, dtype
