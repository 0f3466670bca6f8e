"""The diffusion transformer AudioStory renders with: TangoFlux's Flux-style DiT plus the Oobleck VAE.

A condition is a sequence of 1024-d tokens (flan-t5 caption embeddings, or the fused AudioStory query tokens
the LLM emits per event) plus the event's duration in seconds. The DiT sees three things derived from it:
- the tokens themselves and one duration token (Stable Audio style, 0–30 s) as the joint-attention context,
  projected to the transformer width by the transformer's own context embedder;
- a pooled vector, the mean of the tokens through ``pooled_proj`` + ReLU (TangoFlux's ``fc``), which
  modulates every block together with the diffusion time.
It predicts the rectified-flow velocity ``noise - clean`` of latents shaped (batch, frames, channels); the
Oobleck VAE turns latents into 44.1 kHz stereo at ``hop_length`` samples per latent frame.

Sampling lives in ``audiostory_core.render.sampling``; the renderer in ``audiostory_core.render.dit_renderer``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError
from .checkpoint import config_from_dict, load_state_checked, read_safetensors, save_safetensors

FORMAT = "dubkit-tangoflux-dit"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class DiTConfig:
    """Sizes of the DiT and its VAE. The defaults are the published TangoFlux / AudioStory model (~515M)."""

    in_channels: int = 64  # latent channels (= the VAE's decoder_input_channels)
    num_layers: int = 6  # joint (MMDiT) blocks
    num_single_layers: int = 18
    num_attention_heads: int = 8
    attention_head_dim: int = 128
    joint_attention_dim: int = 1024  # width of the condition tokens (flan-t5-large d_model)
    axes_dims_rope: tuple[int, int, int] = (16, 56, 56)  # must sum to attention_head_dim
    max_duration: float = 30.0  # the duration embedding clamps to [0, max_duration] seconds
    duration_fourier_dim: int = 256
    null_tokens: int = 128  # length of the stored unconditional embedding (classifier-free guidance)
    num_train_timesteps: int = 1000
    vae: dict[str, Any] = field(default_factory=dict)  # AutoencoderOobleck kwargs; {} = Stable Audio Open VAE

    @classmethod
    def tiny(cls) -> "DiTConfig":
        """A model that samples in well under a second on CPU; for tests."""
        return cls(
            in_channels=8,
            num_layers=1,
            num_single_layers=1,
            num_attention_heads=2,
            attention_head_dim=16,
            joint_attention_dim=32,
            axes_dims_rope=(2, 6, 8),  # = published.rope_axes(16): what a published config of this width gets
            vae=dict(
                encoder_hidden_size=4,
                downsampling_ratios=[4, 8, 8],
                channel_multiples=[1, 1, 1],
                decoder_channels=4,
                decoder_input_channels=8,
                audio_channels=2,
                sampling_rate=8000,
            ),
        )

    def __post_init__(self) -> None:
        self.axes_dims_rope = tuple(int(a) for a in self.axes_dims_rope)  # JSON gives lists
        if sum(self.axes_dims_rope) != self.attention_head_dim:
            raise CheckpointError(
                f"DiT config: axes_dims_rope {self.axes_dims_rope} must sum to attention_head_dim "
                f"{self.attention_head_dim}."
            )
        latent = self.vae.get("decoder_input_channels", 64)
        if latent != self.in_channels:
            raise CheckpointError(
                f"DiT config: in_channels {self.in_channels} differs from the VAE's latent channels {latent}."
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["axes_dims_rope"] = list(self.axes_dims_rope)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DiTConfig":
        return config_from_dict(cls, d, "DiT")


class DurationEmbedder(nn.Module):
    """Seconds → one condition token: random Fourier features of the normalised duration, then a linear layer.

    Stable Audio's number conditioner as TangoFlux uses it; the input is clamped to [0, max_seconds].
    """

    def __init__(self, dim: int, max_seconds: float, fourier_dim: int = 256) -> None:
        super().__init__()
        assert fourier_dim % 2 == 0
        self.max_seconds = float(max_seconds)
        self.freqs = nn.Parameter(torch.randn(fourier_dim // 2))
        self.proj = nn.Linear(fourier_dim + 1, dim)

    def forward(self, seconds: torch.Tensor) -> torch.Tensor:
        """(batch,) seconds → (batch, 1, dim)."""
        x = (seconds.float().clamp(0.0, self.max_seconds) / self.max_seconds).to(self.proj.weight.dtype)[:, None]
        angles = x * self.freqs[None] * (2 * math.pi)
        features = torch.cat([x, angles.sin(), angles.cos()], dim=-1)
        return self.proj(features)[:, None, :]


class TangoFluxDiT(nn.Module):
    """TangoFlux's DiT (diffusers ``FluxTransformer2DModel``), its condition embedders, the Oobleck VAE and the
    flow-matching scheduler config, saved and loaded as one folder.

    ``null_tokens`` is the unconditional context for classifier-free guidance: the flan-t5 embedding of the
    empty prompt when one was stored (``set_null_tokens``), zeros otherwise.
    """

    def __init__(self, config: DiTConfig | None = None) -> None:
        super().__init__()
        from diffusers import AutoencoderOobleck, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

        self.config = config = config or DiTConfig()
        width = config.joint_attention_dim
        self.transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=config.in_channels,
            num_layers=config.num_layers,
            num_single_layers=config.num_single_layers,
            attention_head_dim=config.attention_head_dim,
            num_attention_heads=config.num_attention_heads,
            joint_attention_dim=width,
            pooled_projection_dim=width,
            guidance_embeds=False,
            axes_dims_rope=config.axes_dims_rope,
        )
        self.duration_embedder = DurationEmbedder(width, config.max_duration, config.duration_fourier_dim)
        self.pooled_proj = nn.Linear(width, width)
        self.vae = AutoencoderOobleck(**config.vae)
        self.register_buffer("null_tokens", torch.zeros(config.null_tokens, width))
        self.null_source = "zeros"
        self.scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=config.num_train_timesteps)

    # ---- facts the renderer needs -------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return int(self.vae.config.sampling_rate)

    @property
    def hop_length(self) -> int:
        return int(self.vae.hop_length)

    @property
    def audio_channels(self) -> int:
        return int(self.vae.config.audio_channels)

    @property
    def device(self) -> torch.device:
        return self.null_tokens.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pooled_proj.weight.dtype

    def frames_for(self, seconds: float) -> int:
        """Latent frames needed to decode at least ``round(seconds * sample_rate)`` samples."""
        samples = round(float(seconds) * self.sample_rate)
        return max(1, -(-samples // self.hop_length))

    def set_null_tokens(self, tokens: torch.Tensor, source: str = "t5") -> None:
        """Store the unconditional context (e.g. flan-t5 of "" padded to ``config.null_tokens``)."""
        if tuple(tokens.shape) != tuple(self.null_tokens.shape):
            raise CheckpointError(f"null tokens must be {tuple(self.null_tokens.shape)}, got {tuple(tokens.shape)}.")
        self.null_tokens.copy_(tokens.to(self.null_tokens))
        self.null_source = source

    # ---- the network --------------------------------------------------------------------------------------
    def encode_condition(
        self, tokens: torch.Tensor, seconds: torch.Tensor, token_mask: torch.Tensor | None = None,
        pool_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Condition tokens (B, S, D) + seconds (B,) → (context (B, S+1, D), pooled (B, D), context mask).

        ``token_mask`` marks real tokens (False = batch padding, never attended); ``pool_mask`` marks the
        tokens the pooled vector averages (TangoFlux averages only non-pad T5 positions for captions).
        """
        tokens = tokens.to(self.dtype)
        weights = torch.ones(tokens.shape[:2], device=tokens.device, dtype=torch.bool)
        if token_mask is not None:
            weights = weights & token_mask
        if pool_mask is not None:
            weights = weights & pool_mask
        w = weights.to(tokens.dtype)[..., None]
        pooled = (tokens * w).sum(1) / w.sum(1).clamp_min(1.0)
        pooled = F.relu(self.pooled_proj(pooled))
        context = torch.cat([tokens, self.duration_embedder(seconds.to(tokens.device))], dim=1)
        mask = None
        if token_mask is not None:
            mask = torch.cat([token_mask, token_mask.new_ones(token_mask.shape[0], 1)], dim=1)
        return context, pooled, mask

    def velocity(
        self, latents: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, pooled: torch.Tensor,
        context_mask: torch.Tensor | None = None, frame_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicted flow ``noise - clean`` for latents (B, L, C) at noise level ``sigma`` (B,) in [0, 1].

        Masks (B, S+1) / (B, L) mark real context tokens / latent frames; masked positions are never attended,
        so padding an item inside a batch does not change its result.
        """
        b, frames, _ = latents.shape
        device = latents.device
        txt_ids = torch.zeros(context.shape[1], 3, device=device)
        img_ids = torch.arange(frames, device=device, dtype=torch.float32)[:, None].expand(frames, 3)
        kwargs = None
        if context_mask is not None or frame_mask is not None:
            cm = context_mask if context_mask is not None else torch.ones(b, context.shape[1], dtype=torch.bool, device=device)
            fm = frame_mask if frame_mask is not None else torch.ones(b, frames, dtype=torch.bool, device=device)
            kwargs = {"attention_mask": torch.cat([cm, fm], dim=1)[:, None, None, :]}
        return self.transformer(
            hidden_states=latents.to(self.dtype),
            encoder_hidden_states=context,
            pooled_projections=pooled,
            timestep=sigma.to(device=device, dtype=self.dtype),
            img_ids=img_ids,
            txt_ids=txt_ids,
            joint_attention_kwargs=kwargs,
            return_dict=False,
        )[0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, L, C) → audio (B, channels, L * hop_length)."""
        return self.vae.decode(latents.to(self.dtype).transpose(1, 2)).sample

    def flow_matching_loss(
        self, latents: torch.Tensor, tokens: torch.Tensor, seconds: torch.Tensor, *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Rectified-flow training loss (TangoFlux / AudioStory stage 1): MSE between predicted and true flow,
        noise levels drawn logit-normal. ``latents`` are clean VAE latents (B, L, C)."""
        b = latents.shape[0]
        # Draw where the generator lives (a CPU generator keeps runs reproducible across devices), then move.
        gen_device = generator.device if generator is not None else latents.device
        noise = torch.randn(latents.shape, generator=generator, device=gen_device).to(latents.device, latents.dtype)
        sigma = torch.sigmoid(torch.randn(b, generator=generator, device=gen_device)).to(latents.device, latents.dtype)
        noisy = (1 - sigma[:, None, None]) * latents + sigma[:, None, None] * noise
        context, pooled, _ = self.encode_condition(tokens, seconds)
        pred = self.velocity(noisy, sigma, context, pooled)
        return F.mse_loss(pred.float(), (noise - latents).float())

    # ---- files --------------------------------------------------------------------------------------------
    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (all weights under our names, VAE under ``vae.``)."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "dit": self.config.to_dict(),
            "scheduler": dict(self.scheduler.config),
            "null_source": self.null_source,
        }
        (out / CONFIG_NAME).write_text(json.dumps(meta, indent=2, default=str))
        save_safetensors(self, out / WEIGHTS_NAME, FORMAT)
        return out

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, vae_config: dict | None = None) -> "TangoFluxDiT":
        """Load a folder written by ``save_pretrained``, or a published TangoFlux/AudioStory DiT folder."""
        folder = Path(path)
        meta = read_dit_config(folder)
        if meta.get("format") != FORMAT:
            from .published import load_tangoflux_folder

            return load_tangoflux_folder(folder, vae_config=vae_config)
        from diffusers import FlowMatchEulerDiscreteScheduler

        model = cls(DiTConfig.from_dict(meta["dit"]))
        load_state_checked(model, read_safetensors(folder / WEIGHTS_NAME), what="DiT", files=str(folder / WEIGHTS_NAME))
        model.null_source = meta.get("null_source", "zeros")
        if "scheduler" in meta:
            model.scheduler = FlowMatchEulerDiscreteScheduler.from_config(meta["scheduler"])
        return model.eval()


def read_dit_config(folder: Path) -> dict:
    """A DiT folder's ``config.json`` (ours or TangoFlux's), or a CheckpointError saying what to fetch."""
    if not folder.is_dir():
        raise CheckpointError(f"DiT folder {folder} does not exist; pull it with `dubkit models pull tangoflux`.")
    cfg = folder / CONFIG_NAME
    if not cfg.is_file():
        raise CheckpointError(f"{cfg} is missing; a DiT folder needs config.json and model.safetensors.")
    try:
        return json.loads(cfg.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{cfg} is not valid JSON ({exc}).") from exc


class T5TextEncoder:
    """flan-t5 encoder + tokenizer: captions → (tokens, 1024) condition sequences, and the empty-prompt
    embedding classifier-free guidance uses. Each caption keeps its own length (no cross-caption padding),
    exactly as TangoFlux encodes a single prompt.
    """

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 64) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, max_length: int = 64) -> "T5TextEncoder":
        """Load a local flan-t5 folder (never downloads)."""
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise CheckpointError(
                f"T5 folder {folder} has no config.json; pull flan-t5-large with `dubkit models pull flan-t5-large`."
            )
        from transformers import AutoTokenizer, T5EncoderModel

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = T5EncoderModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot load the T5 encoder from {folder}: {exc}") from exc
        return cls(model, tokenizer, max_length)

    @property
    def width(self) -> int:
        return int(self.model.config.d_model)

    @property
    def empty_length(self) -> int:
        """Real (non-pad) tokens of the empty prompt: 1 for T5 (just the end-of-sequence token)."""
        return len(self.tokenizer([""]).input_ids[0])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "T5TextEncoder":
        self.model.to(device=device, dtype=dtype)
        return self

    @torch.inference_mode()
    def encode(self, captions: Sequence[str]) -> list[torch.Tensor]:
        """One (tokens_i, width) tensor per caption, tokens_i = its own token count (≤ max_length)."""
        if not captions:
            return []
        batch = self.tokenizer(
            list(captions), max_length=self.max_length, padding=True, truncation=True, return_tensors="pt"
        )
        device = next(self.model.parameters()).device
        mask = batch.attention_mask.to(device)
        hidden = self.model(input_ids=batch.input_ids.to(device), attention_mask=mask)[0]
        lengths = mask.sum(1).tolist()
        return [hidden[i, : int(n)].float().cpu() for i, n in enumerate(lengths)]

    @torch.inference_mode()
    def null(self, n_tokens: int) -> torch.Tensor:
        """flan-t5 of "" padded to ``n_tokens`` (all positions kept, as the published sampler uses it)."""
        batch = self.tokenizer(
            [""], max_length=n_tokens, padding="max_length", truncation=True, return_tensors="pt"
        )
        device = next(self.model.parameters()).device
        hidden = self.model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device))[0]
        return hidden[0].float().cpu()
