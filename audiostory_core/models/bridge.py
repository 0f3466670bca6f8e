"""From LLM hidden states to the DiT's condition: two query projectors and their attention fusion.

For each event the LLM emits N semantic ("bridge") and M residual query tokens. Their last-layer hidden states go
through two projectors (Linear → GELU → Linear, LLM width → condition width). Semantic queries attend to the
residual ones and the sum is scaled back to T5 range::

    condition = (semantic + MHA(q=semantic, k=v=residual)) / feature_scale      # (N, width)

which replaces the T5 text embedding as the DiT's cross-attention input. Module names and layer indices
(``semantic_proj.0``/``.2``, ``fusion.in_proj_weight``…) mirror the published ``projector`` /
``audio_projector`` / ``multihead_attention`` so published weights map one to one.
"""
from __future__ import annotations

import torch
from torch import nn


def query_projector(hidden: int, width: int) -> nn.Sequential:
    """Linear → GELU → Linear (the published ``mlp2x_gelu``)."""
    return nn.Sequential(nn.Linear(hidden, width), nn.GELU(), nn.Linear(width, width))


class QueryBridge(nn.Module):
    """Projects semantic and residual query states and fuses them into one condition per event."""

    def __init__(self, hidden: int, width: int = 1024, heads: int = 8, feature_scale: float = 10.0) -> None:
        super().__init__()
        self.semantic_proj = query_projector(hidden, width)
        self.residual_proj = query_projector(hidden, width)
        self.fusion = nn.MultiheadAttention(width, heads, batch_first=True)
        self.feature_scale = float(feature_scale)

    def forward(self, semantic_states: torch.Tensor, residual_states: torch.Tensor) -> torch.Tensor:
        """(E, N, hidden) and (E, M, hidden) query states → (E, N, width) conditions, one row per event."""
        semantic = self.semantic_proj(semantic_states)
        residual = self.residual_proj(residual_states)
        attended, _ = self.fusion(semantic, residual, residual, need_weights=False)
        return (semantic + attended) / self.feature_scale
