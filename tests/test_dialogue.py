"""Dialogue detection: silero-vad on the talk sample against its measured truth; pyannote plumbing; bad input."""
from __future__ import annotations

import json
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dubkit.errors import CheckpointError, InputError
from dubkit.soundtrack.dialogue import detect_speech, load_pyannote_segmentation

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
TOLERANCE = 0.100  # seconds, at each edge


def decode_audio(path: Path, rate: int = 48000) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vn", "-ac", "2", "-ar", str(rate), "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, 2).T.copy()


@pytest.fixture(scope="module")
def talk():
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    truth = json.loads((SAMPLES / "talk.truth.json").read_text())
    return decode_audio(SAMPLES / "talk.mp4"), truth


def test_silero_finds_each_phrase_within_100ms(talk):
    audio, truth = talk
    regions = detect_speech(audio, 48000)
    expected = [(r["start"], r["end"]) for r in truth["speech"]]
    assert len(regions) == len(expected), f"detected {regions}, expected {expected}"
    for (s, e), (ts, te) in zip(regions, expected):
        assert abs(s - ts) <= TOLERANCE, (s, ts)
        assert abs(e - te) <= TOLERANCE, (e, te)
    assert all(isinstance(x, float) for r in regions for x in r)


def test_padding_widens_regions_and_any_rate_works(talk):
    audio, truth = talk
    tight = detect_speech(audio, 48000, pad=0.0)
    wide = detect_speech(audio, 48000, pad=0.2)
    assert len(tight) == len(wide) == len(truth["speech"])
    for (s0, e0), (s1, e1) in zip(tight, wide):
        assert s1 == pytest.approx(max(0.0, s0 - 0.2), abs=1e-6) and e1 == pytest.approx(e0 + 0.2, abs=1e-6)
    # Mono 44.1 kHz input of the same recording gives the same regions (within a VAD frame).
    from scipy.signal import resample_poly

    mono441 = resample_poly(audio.mean(axis=0), 147, 160).astype(np.float32)
    other = detect_speech(mono441, 44100, pad=0.0)
    assert len(other) == len(tight)
    for (s0, e0), (s1, e1) in zip(tight, other):
        assert abs(s0 - s1) < 0.04 and abs(e0 - e1) < 0.04


_THREADED_VAD = """
import json, sys, threading
import numpy as np
from dubkit.soundtrack.dialogue import detect_speech
audio = np.load(sys.argv[1])
out = {}
def go(i):
    out[i] = [detect_speech(audio, 48000) for _ in range(3)]
threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(out[0] + out[1]))
"""


def test_two_threads_detect_speech_at_once(talk, tmp_path):
    """``watch --workers 2``: two jobs in silero-vad at the same time. A shared model crashed the process
    (SIGSEGV or heap corruption, 3 runs of 3); each thread must get its own and the truth's regions. Run in a
    child process, so a crash is a failed test rather than a dead test run."""
    import os
    import sys

    audio, truth = talk
    np.save(tmp_path / "talk.npy", audio)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _THREADED_VAD, str(tmp_path / "talk.npy")], capture_output=True,
                          text=True, timeout=300, cwd=root, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-500:]}"
    runs = json.loads(proc.stdout)
    single = detect_speech(audio, 48000)
    assert len(runs) == 6 and all(r == [list(x) for x in single] for r in runs)
    assert len(single) == len(truth["speech"])


def test_silence_and_noise_have_no_speech():
    rng = np.random.default_rng(0)
    assert detect_speech(np.zeros((2, 48000 * 2), np.float32), 48000) == []
    hum = (0.01 * rng.standard_normal((2, 48000 * 3))).astype(np.float32)
    assert detect_speech(hum, 48000) == []


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="shape"):
        detect_speech(np.zeros((2, 3, 4), np.float32), 48000)
    with pytest.raises(InputError, match="NaN"):
        detect_speech(np.full(16000, np.nan, np.float32), 16000)
    with pytest.raises(InputError, match="threshold"):
        detect_speech(np.zeros(16000, np.float32), 16000, threshold=1.5)


# ----------------------------------------------------------------------------------------------------- pyannote


def _tiny_pyannet(bias: float | None = None, seed: int = 0):
    torch = pytest.importorskip("torch")
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(seed)
    model = PyanNet(
        sincnet={"stride": 10}, lstm={"hidden_size": 16, "num_layers": 1}, linear={"hidden_size": 16, "num_layers": 1}
    )
    model.specifications = Specifications(
        problem=Problem.MULTI_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=2.0, classes=["speech"]
    )
    model.setup()
    if bias is not None:  # force the classifier's answer so the test can see the model drive the result
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.fill_(bias)
    return model


def _save_checkpoint(model, folder: Path) -> Path:
    """Write the checkpoint layout pyannote.audio's own Model.from_pretrained reads."""
    import lightning
    import torch
    from pyannote.audio import __version__

    folder.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
        "pyannote.audio": {
            "versions": {"pyannote.audio": __version__},
            "architecture": {"module": type(model).__module__, "class": type(model).__name__},
            "specifications": model.specifications,
        },
    }
    torch.save(ckpt, folder / "pytorch_model.bin")
    return folder


def test_pyannote_checkpoint_roundtrips_weights(tmp_path):
    import torch

    model = _tiny_pyannet(seed=3)
    folder = _save_checkpoint(model, tmp_path / "seg")
    loaded = load_pyannote_segmentation(folder)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    # A pyannote-native loader reads the same file (the layout is the real one).
    from pyannote.audio import Model

    native = Model.from_pretrained(folder / "pytorch_model.bin")
    assert torch.equal(native.classifier.weight, loaded.classifier.weight)


def test_pyannote_pipeline_drives_detection(tmp_path):
    rng = np.random.default_rng(1)
    noise = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    everywhere = _save_checkpoint(_tiny_pyannet(bias=8.0), tmp_path / "always")
    nowhere = _save_checkpoint(_tiny_pyannet(bias=-8.0), tmp_path / "never")
    regions = detect_speech(noise, 16000, model_dir=everywhere, pad=0.0)
    assert len(regions) == 1 and regions[0][0] < 0.05 and regions[0][1] > 2.95
    assert detect_speech(noise, 16000, model_dir=nowhere) == []
    # A random (untrained) model runs end to end and returns well-formed regions.
    random_dir = _save_checkpoint(_tiny_pyannet(seed=5), tmp_path / "random")
    out = detect_speech(noise, 16000, model_dir=random_dir / "pytorch_model.bin")
    assert all(0.0 <= s < e <= 3.0 for s, e in out)
    assert all(a[1] < b[0] for a, b in zip(out, out[1:]))


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the hostile file is a plain pickle on purpose
def test_pyannote_bad_checkpoints_raise_checkpoint_error(tmp_path):
    import torch

    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        detect_speech(np.zeros(16000, np.float32) + 0.1, 16000, model_dir=tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_pyannote_segmentation(tmp_path / "junk")
    (tmp_path / "evil").mkdir()
    with open(tmp_path / "evil" / "pytorch_model.bin", "wb") as f:
        pickle.dump({"state_dict": {}, "x": _Evil()}, f)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_pyannote_segmentation(tmp_path / "evil")
    (tmp_path / "plain").mkdir()
    torch.save({"weight": torch.zeros(3)}, tmp_path / "plain" / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="not a pyannote.audio model"):
        load_pyannote_segmentation(tmp_path / "plain")
