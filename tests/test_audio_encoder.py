"""Audio prompt encoder (Whisper encoder + perceiver resampler) on a tiny random config."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from audiostory_core.errors import CheckpointError, PlanError
from audiostory_core.models.audio_encoder import AudioEncoderConfig, AudioPromptEncoder


@pytest.fixture(scope="module")
def encoder() -> AudioPromptEncoder:
    torch.manual_seed(0)
    return AudioPromptEncoder(AudioEncoderConfig.tiny()).eval()


def tone(seconds: float, sr: int = 44100, freq: float = 440.0, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return np.tile(0.3 * np.sin(2 * np.pi * freq * t, dtype=np.float64), (channels, 1)).astype(np.float32)


def test_shapes_for_any_rate_length_and_layout(encoder):
    cfg = encoder.config
    with torch.no_grad():
        for audio, sr in [(tone(1.3), 44100), (tone(5.0, 22050, channels=1)[0], 22050), (tone(0.05, 16000), 16000)]:
            out = encoder.encode(audio, sr)
            assert out.shape == (1, cfg.n_queries, cfg.llm_hidden) and torch.isfinite(out).all()
    assert encoder.n_queries == 4
    # the window is chunk_length seconds of 16 kHz audio → 100 mel frames per second
    assert encoder.log_mel(tone(1.0), 44100).shape == (1, 16, 200)


def test_deterministic_and_sensitive_to_the_audio(encoder):
    with torch.no_grad():
        a = encoder.encode(tone(1.0), 44100)
        b = encoder.encode(tone(1.0), 44100)
        c = encoder.encode(tone(1.0, freq=1200.0), 44100)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_batch_forward_matches_single(encoder):
    feats = torch.cat([encoder.log_mel(tone(1.0), 44100), encoder.log_mel(tone(1.0, freq=900.0), 44100)])
    with torch.no_grad():
        both = encoder(feats)
        one = encoder(feats[1:])
    torch.testing.assert_close(both[1:], one, atol=1e-5, rtol=1e-5)


def test_save_load_round_trip(encoder, tmp_path):
    encoder.save_pretrained(tmp_path / "enc")
    loaded = AudioPromptEncoder.from_pretrained(tmp_path / "enc")
    assert loaded.config == encoder.config
    with torch.no_grad():
        assert torch.equal(loaded.encode(tone(0.7), 48000), encoder.encode(tone(0.7), 48000))
    with pytest.raises(CheckpointError, match="config.json is missing"):
        AudioPromptEncoder.from_pretrained(tmp_path / "nothing")
    (tmp_path / "enc" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        AudioPromptEncoder.from_pretrained(tmp_path / "enc")


def test_bad_audio_is_a_plan_error(encoder):
    with pytest.raises(PlanError, match="non-empty"):
        encoder.encode(np.zeros((2, 0), np.float32), 44100)
    with pytest.raises(PlanError, match="NaN"):
        encoder.encode(np.full((1, 100), np.nan, np.float32), 44100)
