"""Audio prompt encoder for continuation: input audio → a few embeddings the LLM reads as input tokens.

As in the AudioStory paper: a Whisper encoder over log-mel features of the input audio, then a resampler —
learned queries cross-attending to the encoder states, perceiver style — that compresses the ~1500 encoder
frames of a 30 s window into ``n_queries`` vectors of the LLM's hidden width. The LLM side splices them in at
placeholder positions of the prompt (``AudioStoryModel.input_embeddings``).

Only the last ``chunk_length`` seconds of a longer input are encoded: for continuation the most recent audio
is what the next events must follow.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, PlanError
from .checkpoint import config_from_dict, load_state_checked, read_safetensors, save_safetensors

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "dubkit-audio-prompt-encoder"
WHISPER_RATE = 16000
MEL_HOP = 160  # Whisper's STFT hop: 100 mel frames per second; the encoder halves that


@dataclass
class AudioEncoderConfig:
    """Whisper encoder size (``whisper``: WhisperConfig kwargs), window length and resampler shape."""

    whisper: dict[str, Any] = field(default_factory=lambda: dict(
        d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536, num_mel_bins=80
    ))
    chunk_length: int = 30  # seconds of audio per window (Whisper: 30)
    n_queries: int = 32
    resampler_layers: int = 2
    resampler_heads: int = 8
    llm_hidden: int = 2048  # Qwen2.5-3B

    @classmethod
    def tiny(cls) -> "AudioEncoderConfig":
        return cls(
            whisper=dict(d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=16),
            chunk_length=2, n_queries=4, resampler_layers=1, resampler_heads=2, llm_hidden=48,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AudioEncoderConfig":
        return config_from_dict(cls, d, "audio encoder")


class ResamplerBlock(nn.Module):
    """Queries attend to the audio states, then a feed-forward layer; pre-norm residuals."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, q: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(states)
        q = q + self.attn(self.norm_q(q), kv, kv, need_weights=False)[0]
        return q + self.ff(self.norm_ff(q))


class Resampler(nn.Module):
    """(B, frames, in_dim) → (B, n_queries, out_dim) with learned queries."""

    def __init__(self, in_dim: int, n_queries: int, layers: int, heads: int, out_dim: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(n_queries, in_dim) * in_dim**-0.5)
        self.blocks = nn.ModuleList([ResamplerBlock(in_dim, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        q = self.queries[None].expand(states.shape[0], -1, -1)
        for block in self.blocks:
            q = block(q, states)
        return self.proj(self.norm(q))


class AudioPromptEncoder(nn.Module):
    """Whisper encoder + resampler. ``encode(audio, sample_rate)`` → (1, n_queries, llm_hidden)."""

    def __init__(self, config: AudioEncoderConfig | None = None) -> None:
        super().__init__()
        from transformers import WhisperConfig, WhisperFeatureExtractor
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        self.config = config = config or AudioEncoderConfig()
        mel_frames = config.chunk_length * WHISPER_RATE // MEL_HOP
        whisper = WhisperConfig(**{**config.whisper, "max_source_positions": mel_frames // 2})
        self.encoder = WhisperEncoder(whisper)
        self.resampler = Resampler(
            whisper.d_model, config.n_queries, config.resampler_layers, config.resampler_heads, config.llm_hidden
        )
        self.features = WhisperFeatureExtractor(
            feature_size=whisper.num_mel_bins, sampling_rate=WHISPER_RATE, hop_length=MEL_HOP,
            chunk_length=config.chunk_length,
        )

    @property
    def n_queries(self) -> int:
        return self.config.n_queries

    def log_mel(self, audio: np.ndarray, sample_rate: int) -> torch.Tensor:
        """Audio (channels, samples) or (samples,) at any rate → (1, mel_bins, frames) Whisper log-mel of the
        last ``chunk_length`` seconds, mono, 16 kHz, zero-padded to the full window."""
        import torchaudio.functional as AF

        wave = np.asarray(audio, dtype=np.float32)
        if wave.ndim == 2:
            wave = wave.mean(axis=0)
        if wave.ndim != 1 or wave.size == 0 or sample_rate <= 0:
            raise PlanError(
                f"the audio prompt must be a non-empty (channels, samples) array with a positive sample rate; got "
                f"shape {np.shape(audio)} at {sample_rate} Hz."
            )
        if not np.isfinite(wave).all():
            raise PlanError("the audio prompt contains NaN or infinite samples.")
        mono = torch.from_numpy(np.ascontiguousarray(wave))
        if sample_rate != WHISPER_RATE:
            mono = AF.resample(mono, int(sample_rate), WHISPER_RATE)
        mono = mono[-self.config.chunk_length * WHISPER_RATE :]
        feats = self.features(mono.numpy(), sampling_rate=WHISPER_RATE, return_tensors="pt").input_features
        return feats.to(self.resampler.proj.weight.dtype)

    def forward(self, input_features: torch.Tensor) -> torch.Tensor:
        """(B, mel_bins, frames) → (B, n_queries, llm_hidden)."""
        states = self.encoder(input_features.to(self.resampler.proj.weight)).last_hidden_state
        return self.resampler(states)

    def encode(self, audio: np.ndarray, sample_rate: int) -> torch.Tensor:
        """An audio prompt → (1, n_queries, llm_hidden) LLM input embeddings."""
        device = self.resampler.proj.weight.device
        return self(self.log_mel(audio, sample_rate).to(device))

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_NAME).write_text(json.dumps({"format": FORMAT, **self.config.to_dict()}, indent=2))
        save_safetensors(self, out / WEIGHTS_NAME, FORMAT)
        return out

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "AudioPromptEncoder":
        folder = Path(path)
        cfg_file = folder / CONFIG_NAME
        if not cfg_file.is_file():
            raise CheckpointError(f"{cfg_file} is missing; an audio encoder folder needs config.json + model.safetensors.")
        meta = json.loads(cfg_file.read_text())
        if meta.pop("format", None) != FORMAT:
            raise CheckpointError(f"{cfg_file} is not an audio prompt encoder config (format {FORMAT!r}).")
        model = cls(AudioEncoderConfig.from_dict(meta))
        load_state_checked(model, read_safetensors(folder / WEIGHTS_NAME), what="audio prompt encoder",
                           files=str(folder / WEIGHTS_NAME))
        return model.eval()
