"""The one device/dtype rule and the one cache-folder rule every model and cache user shares."""
from __future__ import annotations

from pathlib import Path

import torch

from audiostory_core.cache import cache_dir
from audiostory_core.device import pick_device_dtype
from audiostory_core.models import hub


def test_device_rule_and_overrides(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device_dtype() == (torch.device("cpu"), torch.float32)
    assert pick_device_dtype("cpu", torch.bfloat16) == (torch.device("cpu"), torch.bfloat16)
    assert pick_device_dtype("mps") == (torch.device("mps"), torch.float16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_device_dtype() == (torch.device("cuda"), torch.bfloat16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert pick_device_dtype() == (torch.device("cuda"), torch.float16)  # older GPUs: half precision, not fp32


def test_cache_rule_env_order(monkeypatch, tmp_path):
    monkeypatch.delenv("DUBKIT_CACHE_DIR", raising=False)
    monkeypatch.delenv("DUBKIT_MODELS_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "dubkit"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("clip_text") == tmp_path / "xdg" / "dubkit" / "clip_text"
    assert hub.models_dir() == tmp_path / "xdg" / "dubkit" / "models"  # the hub follows XDG too
    monkeypatch.setenv("DUBKIT_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir("foley-library") == tmp_path / "mine" / "foley-library"
    assert hub.models_dir() == tmp_path / "mine" / "models"
    monkeypatch.setenv("DUBKIT_MODELS_DIR", str(tmp_path / "weights"))
    assert hub.models_dir() == tmp_path / "weights"  # the models override still wins
    assert cache_dir("x", root=tmp_path / "given") == tmp_path / "given" / "x"  # an explicit folder wins over all
    assert not (tmp_path / "mine").exists()  # asking where never creates folders


def test_foley_library_index_lands_in_the_cache_folder(monkeypatch, tmp_path):
    import numpy as np
    import soundfile as sf

    from audiostory_core.render.foley.library import SoundLibrary

    class Embedder:
        dim = 4

        def encode(self, texts):
            return np.ones((len(texts), 4), np.float32) / 2.0

    lib = tmp_path / "lib"
    lib.mkdir()
    sf.write(lib / "door_slam.wav", np.full(800, 0.1, np.float32), 8000)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("DUBKIT_CACHE_DIR", raising=False)
    SoundLibrary([lib], Embedder())
    assert list(Path(tmp_path / "xdg" / "dubkit" / "foley-library").glob("*.npz"))
