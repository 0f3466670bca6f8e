"""The three modes through one pipeline with a model folder (`--model DIR`): a tiny random AudioStory model saved
in dubkit's format, used by the public API and the CLI exactly as a real checkpoint would be."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import dubkit
from dubkit.io import read_audio

from .conftest import video_packet_hashes


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from audiostory_core.models.audiostory import AudioStoryModel

    folder = tmp_path_factory.mktemp("tiny-audiostory")
    AudioStoryModel.tiny(seed=0, with_audio_encoder=True).save_pretrained(folder)
    return folder


def test_story_with_model_exact_length_and_deterministic(model_dir, tmp_path):
    a = dubkit.story("rain, then thunder, then a car passes", 7.5, tmp_path / "a.wav", model=model_dir, steps=2, seed=3)
    dubkit.story("rain, then thunder, then a car passes", 7.5, tmp_path / "b.wav", model=model_dir, steps=2, seed=3)
    assert a.backends["planner"].startswith("audiostory")
    assert a.backends["renderer"].startswith("dit")
    x, sr = sf.read(str(tmp_path / "a.wav"), dtype="float32")
    y, _ = sf.read(str(tmp_path / "b.wav"), dtype="float32")
    assert len(x) == round(7.5 * sr) and sr == a.soundtrack.sample_rate
    np.testing.assert_array_equal(x, y)
    assert a.plan.conditioning is not None and len(a.plan.conditioning) == len(a.plan.events)
    assert sum(e.duration for e in a.plan.events) == pytest.approx(7.5, abs=1e-9)


def test_continue_with_model_keeps_input_and_length(model_dir, tmp_path):
    src = tmp_path / "in.wav"
    sr = 16000
    t = np.arange(2 * sr) / sr
    sf.write(str(src), (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, subtype="PCM_24")
    res = dubkit.continue_audio(src, 3.0, tmp_path / "out.wav", model=model_dir, steps=2, include_input=True)
    out, out_sr = sf.read(str(tmp_path / "out.wav"), dtype="float32", always_2d=True)
    inp, _ = sf.read(str(src), dtype="float32", always_2d=True)
    assert out_sr == sr and len(out) == len(inp) + 3 * sr
    np.testing.assert_array_equal(out[: len(inp)], inp)
    assert res.plan.planner.startswith("audiostory")


@pytest.mark.slow
def test_dub_with_model_events_inside_scenes(model_dir, cartoon, tmp_path):
    out = tmp_path / "m.mp4"
    res = dubkit.dub(cartoon, out, model=model_dir, steps=2, deliverables=False)
    assert video_packet_hashes(out) == video_packet_hashes(cartoon)
    audio = read_audio(out)
    assert abs(audio.shape[-1] / 48000 - res.info.duration) <= 1024 / 48000
    bounds = [(s.start, s.end) for s in res.scenes]
    for ev in res.plan.events:
        assert any(s - 1e-6 <= ev.start and ev.end <= e + 1e-6 for s, e in bounds), ev


@pytest.mark.slow
def test_cli_story_with_model(model_dir, tmp_path):
    out = tmp_path / "s.wav"
    proc = subprocess.run([sys.executable, "-m", "dubkit.cli", "story", "wind then birds", "-d", "4", "-o", str(out),
                           "--model", str(model_dir), "--steps", "2", "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "planner=audiostory" in proc.stderr
    assert sf.info(str(out)).frames == round(4 * sf.info(str(out)).samplerate)


def test_wrong_model_folder_is_one_clear_error(tmp_path, cartoon):
    bad = tmp_path / "notamodel"
    bad.mkdir()
    (bad / "readme.txt").write_text("hi")
    proc = subprocess.run([sys.executable, "-m", "dubkit.cli", "story", "rain", "-d", "2", "-o", str(tmp_path / "x.wav"),
                           "--model", str(bad)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "not a model folder" in proc.stderr.strip().splitlines()[-1]


def test_model_loaded_once_serves_story_and_continuation(model_dir, tmp_path, monkeypatch):
    """A script builds the backends from the model folder once; later calls load no weights."""
    import audiostory_core.models.published as audiostory
    from dubkit.backends import build_backends
    from dubkit.options import ModelOptions

    backends = build_backends(ModelOptions(model=model_dir, steps=2, device="cpu"))
    loads: list[object] = []
    real = audiostory.load_model
    monkeypatch.setattr(audiostory, "load_model", lambda *a, **k: (loads.append(a), real(*a, **k))[1])
    a = dubkit.story("wind then birds", 3.0, tmp_path / "a.wav", seed=1, backends=backends)
    b = dubkit.story("wind then birds", 3.0, tmp_path / "b.wav", seed=1, backends=backends)
    src = tmp_path / "a.wav"
    more = dubkit.continue_audio(src, 2.0, tmp_path / "c.wav", include_input=True, backends=backends)
    assert loads == []
    np.testing.assert_array_equal(a.soundtrack.audio, b.soundtrack.audio)  # reused, still deterministic
    assert more.plan.planner.startswith("audiostory") and more.backends["renderer"].startswith("dit")
    assert sf.info(str(tmp_path / "c.wav")).frames == sf.info(str(src)).frames + 2 * sf.info(str(src)).samplerate
