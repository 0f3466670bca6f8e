"""`continue` keeps the character of real recordings: a drum loop goes on as its own rhythm, hiss as hiss, a choir as
voices — measured the way a listener would notice (the onset envelope's period, spectral centroid and flatness,
pitch), with a seam that does not click. Inputs are real recordings from sonic-pi-samples (CC0)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiostory_core.analysis import analyse_audio
from audiostory_core.continuation import continue_audio
from audiostory_core.plan.continuation_planner import INPUT_SOUND, ContinuationPlanner
from audiostory_core.render.foley.library import SoundLibrary
from audiostory_core.render.foley.recorded import RecordingBank
from dubkit.backends import OWN_TEXTURE_DB

SAMPLES = Path("/usr/share/sonic-pi/samples")
pytestmark = pytest.mark.skipif(not (SAMPLES / "loop_amen_full.flac").is_file(),
                                reason="needs sonic-pi-samples (scripts/setup.sh installs it)")


def read(name: str, start: float = 0.0, end: float | None = None) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(SAMPLES / f"{name}.flac"), dtype="float32", always_2d=True)
    return np.ascontiguousarray(x.T[:, int(start * sr): None if end is None else int(end * sr)]), sr


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> SoundLibrary:
    """An installed source of real CC0 recordings: the second half of the vinyl hiss (the tests continue its first
    half), a drone, a lunar ambience and a breakbeat — no choir, and not the amen break."""
    from audiostory_core.embeddings import TextEmbedder

    folder = tmp_path_factory.mktemp("source")
    clips = [("vinyl_hiss", 4.0, None, "vinyl record hiss, crackle"), ("ambi_drone", 0.0, None, "ambient drone"),
             ("ambi_lunar_land", 0.0, None, "ambient lunar land"), ("loop_breakbeat", 0.0, None, "loop breakbeat")]
    entries = []
    for name, start, end, text in clips:
        x, sr = read(name, start, end)
        sf.write(folder / f"{name}.wav", x.T, sr)
        entries.append({"file": f"{name}.wav", "description": text, "kind": "texture", "licence": "CC0-1.0",
                        "licence_class": "cc0", "title": name, "attribution": f"{name} (Sonic Pi)"})
    (folder / "dubkit-library.json").write_text(json.dumps({"version": 1, "source": "sonic-pi", "clips": entries}))
    return SoundLibrary([folder], TextEmbedder(), cache_dir=tmp_path_factory.mktemp("cache"), label="installed")


def planner(library: SoundLibrary, *, without: str = "") -> ContinuationPlanner:
    bank = RecordingBank([(s, library) for s in library.sounds if not without or without not in s.path])
    return ContinuationPlanner(bank, bank.synthesize, embedder=None, own_texture_db=OWN_TEXTURE_DB)


# --- what a listener notices ---------------------------------------------------------------------------------------

def rhythm_period(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    """The strongest period (s) between ``lo`` and ``hi`` of the onset envelope: 10 ms log-energy rises,
    smoothed over ±20 ms, autocorrelated."""
    hop = int(0.01 * sr)
    mono = x.mean(axis=0).astype(np.float64)
    k = mono.size // hop
    db = 10 * np.log10(np.mean(mono[: k * hop].reshape(k, hop) ** 2, axis=1) + 1e-10)
    env = np.convolve(np.maximum(np.diff(db), 0.0), np.hanning(7)[1:-1], mode="same")
    env -= env.mean()
    ac = np.correlate(env, env, mode="full")[env.size - 1:] / np.arange(env.size, 0, -1)
    lags = np.arange(int(lo / 0.01), int(hi / 0.01) + 1)
    return float(lags[np.argmax(ac[lags])] * 0.01)


def assert_no_click(x: np.ndarray, out: np.ndarray, sr: int) -> None:
    """At the seam (``out`` = input + continuation) no sample step larger than the input's own largest 0.1 %, and
    no 5 ms window louder than the input's loudest (a click is a step and a burst of energy)."""
    n = x.shape[-1]
    mono, own = out.mean(axis=0).astype(np.float64), x.mean(axis=0).astype(np.float64)
    step = np.abs(np.diff(mono[n - 5: n + 5])).max()
    assert step <= max(np.percentile(np.abs(np.diff(own)), 99.9), 1e-4), step
    w = int(0.005 * sr)
    seam = [np.mean(mono[k: k + w] ** 2) for k in range(n - 4 * w, n + 4 * w, w)]
    loudest = max(np.mean(own[k: k + w] ** 2) for k in range(0, n - w, w))
    assert max(seam) <= loudest * 1.05


def centroid(x: np.ndarray, sr: int, low: float = 40.0) -> float:
    """Spectral centroid (Hz) of what is heard: above ``low`` (sub-audible rumble left out)."""
    spec = np.abs(np.fft.rfft(x.mean(axis=0).astype(np.float64))) ** 2
    f = np.fft.rfftfreq(x.shape[-1], 1.0 / sr)
    keep = f >= low
    return float((f[keep] * spec[keep]).sum() / spec[keep].sum())


# --- the three characters -------------------------------------------------------------------------------------------

def test_a_drum_loop_goes_on_with_its_own_hits_on_its_period(library):
    x, sr = read("loop_amen_full")  # the amen break, four bars at ~140 bpm
    res = continue_audio(x, sr, 8.0, planner=planner(library), include_input=True)
    new = res.audio[:, x.shape[-1]:]
    assert [e.sound for e in res.plan.events] == [INPUT_SOUND]
    assert res.choice.loop_period == pytest.approx(1.714, rel=0.02) or res.choice.loop_period == pytest.approx(
        3.429, rel=0.02)  # a bar or two: the whole pattern, not a beat
    bar = rhythm_period(x, sr, 1.2, 2.4)
    assert bar == pytest.approx(1.714, abs=0.02)  # 140 bpm, four beats
    assert rhythm_period(new, sr, 1.2, 2.4) == pytest.approx(bar, abs=0.02)
    assert rhythm_period(new, sr, 0.3, 0.6) == pytest.approx(rhythm_period(x, sr, 0.3, 0.6), abs=0.02)  # the beat
    a, b = analyse_audio(x, sr), analyse_audio(new, sr)
    assert b.onset_rate == pytest.approx(a.onset_rate, rel=0.15)
    assert b.centroid == pytest.approx(a.centroid, rel=0.1) and b.flatness == pytest.approx(a.flatness, rel=0.2)
    assert_no_click(x, res.audio, sr)
    assert not [c for c in res.clips if c.credits]  # its own material: nobody else's licence
    named = continue_audio(x, sr, 8.0, planner=planner(library), instruction="then a door slams")
    assert sorted(e.sound for e in named.plan.events) == sorted([INPUT_SOUND, "door_slam"])


def test_hiss_goes_on_as_the_library_s_hiss_with_its_credit(library):
    x, sr = read("vinyl_hiss", 0.0, 4.0)
    res = continue_audio(x, sr, 6.0, planner=planner(library), include_input=True)
    new = res.audio[:, x.shape[-1]:]
    assert [Path(e.sound).name for e in res.plan.events] == ["vinyl_hiss.wav"]
    assert [c["licence"] for clip in res.clips for c in clip.credits] == ["CC0-1.0"]
    a, b = analyse_audio(x, sr), analyse_audio(new, sr)
    assert b.pitch is None and centroid(new, sr) == pytest.approx(centroid(x, sr), rel=0.15)
    assert b.flatness == pytest.approx(a.flatness, rel=0.5)
    w = int(0.05 * sr)  # level holds: 50 ms windows after the seam stay within the input's own last 2 s range

    def levels(a, start, stop):
        return [10 * np.log10(np.mean(a[:, k: k + w] ** 2)) for k in range(start, stop, w)]

    own = levels(x, x.shape[-1] - 2 * sr, x.shape[-1] - w)
    after = levels(res.audio, x.shape[-1], x.shape[-1] + 2 * sr)
    assert min(own) - 2.0 <= min(after) and max(after) <= max(own) + 2.0, (np.round(own, 1), np.round(after, 1))
    typical = np.median(levels(x, 0, x.shape[-1] - w)), np.median(levels(new, 0, new.shape[-1] - w))
    assert abs(typical[1] - typical[0]) < 3.0, typical  # the hiss's usual level, crackles aside
    assert_no_click(x, res.audio, sr)


def test_hiss_nothing_in_the_library_resembles_goes_on_as_its_own_sound(library):
    x, sr = read("vinyl_hiss", 0.0, 4.0)
    res = continue_audio(x, sr, 6.0, planner=planner(library, without="vinyl_hiss"), include_input=True)
    assert res.choice.own_texture and [e.sound for e in res.plan.events] == [INPUT_SOUND]
    a, b = analyse_audio(x, sr), analyse_audio(res.audio[:, x.shape[-1]:], sr)
    assert b.centroid == pytest.approx(a.centroid, rel=0.15) and b.flatness == pytest.approx(a.flatness, rel=0.3)
    assert_no_click(x, res.audio, sr)


def test_a_choir_goes_on_as_voices(library):
    x, sr = read("ambi_choir")  # a recorded choir; the library holds no voices
    res = continue_audio(x, sr, 6.0, planner=planner(library), include_input=True)
    new = res.audio[:, x.shape[-1]:]
    a, b = analyse_audio(x, sr), analyse_audio(new, sr)
    assert res.choice.own_texture  # the drone and the hiss are not voices: neither is chosen
    assert a.pitch is not None and b.pitch is not None  # voiced, not noise
    assert b.flatness < 0.01 and b.centroid == pytest.approx(a.centroid, rel=0.15)
    quiet = [np.sqrt(np.mean(new[:, k: k + sr // 4] ** 2)) for k in range(0, new.shape[-1] - sr // 4, sr // 4)]
    assert min(quiet) > 0.3 * np.sqrt(np.mean(x ** 2))  # the voices keep singing: no gaps
    assert_no_click(x, res.audio, sr)
