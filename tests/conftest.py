"""Shared fixtures: the committed samples, their truth files, and media measurements (ffprobe, packet hashes,
onsets) that tests use to check what a user would notice."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def pytest_configure(config):
    """Tests never see the user's dubkit cache (their installed sound library, cached vectors): they get their
    own, kept between runs in pytest's cache folder (a fresh temporary one when that is off)."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        folder = cache.mkdir("dubkit-cache")
    else:
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="dubkit-test-cache-"))
    os.environ["DUBKIT_CACHE_DIR"] = str(folder)


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models are dominated by thread start-up on a shared 2-core machine: run them on one thread."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_test_clip(path: Path, seconds: float, size: str = "160x120", rate: int = 12) -> Path:
    """A short silent H.264 test-pattern video (for tests that need a file, not a picture)."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate={rate}",
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def cartoon() -> Path:
    return SAMPLES / "cartoon.mp4"


@pytest.fixture(scope="session")
def cartoon_truth() -> dict:
    return json.loads((SAMPLES / "cartoon.truth.json").read_text())


def ffprobe_json(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def video_packet_hashes(path: Path) -> list[str]:
    """One MD5 per video packet, straight from the container (no decoding): equal lists = bit-identical stream."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    )
    return [line.rsplit(",", 1)[-1].strip() for line in out.stdout.splitlines() if line and not line.startswith("#")]


def onset_times(audio: np.ndarray, sr: int, rise_db: float = 9.0) -> np.ndarray:
    """Times where short-term energy jumps by ``rise_db`` over the preceding 60 ms (sharp attacks)."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    hop = int(sr * 0.0025)
    win = 2 * hop
    n = (len(mono) - win) // hop
    frames = np.lib.stride_tricks.sliding_window_view(mono, win)[::hop][:n]
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    back = int(0.06 / 0.0025)
    onsets = []
    for i in range(back, n):
        before = np.mean(energy[i - back : i - 1])
        if energy[i] - before > rise_db and energy[i] > -50 and (not onsets or i - onsets[-1] > 8):
            onsets.append(i)
    return np.asarray(onsets, dtype=float) * hop / sr


class CountingEmbedder:
    """Wraps a real text embedder and records every batch it is asked to encode (tests count model calls)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.dim, self.model_id = inner.dim, inner.model_id

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)
