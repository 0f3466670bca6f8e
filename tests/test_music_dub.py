"""The music layer through the API and the command line: what an editor gets from `dubkit dub` by default (a score
stem that catches the picture's hits, a MIDI score they can re-orchestrate), `--music off`, a bad SoundFont, and
music asked for in a story's words."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

import dubkit
from audiostory_core.plan.types import Plan
from audiostory_core.render import music_renderer
from audiostory_core.timing import to_samples

from .conftest import ROOT, onset_times

RATE = 48000

try:
    music_renderer.find_soundfont()
except Exception as exc:  # noqa: BLE001 - setup.sh installs fluid-soundfont-gm; say so instead of failing oddly
    pytest.skip(f"no General MIDI SoundFont installed ({exc})", allow_module_level=True)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "dubkit.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=900)


@pytest.fixture(scope="module")
def scored(tmp_path_factory, cartoon):
    """`dubkit dub cartoon.mp4 --stems`, defaults otherwise (music auto)."""
    work = tmp_path_factory.mktemp("scored")
    shutil.copyfile(cartoon, work / "cartoon.mp4")
    proc = run_cli("dub", "cartoon.mp4", "--stems", "-q", cwd=work)
    assert proc.returncode == 0, proc.stderr
    folder = work / "cartoon.dubbed.mp4.dubkit"
    return {"folder": folder, "doc": json.loads((folder / "cartoon.plan.json").read_text()), "stdout": proc.stdout}


def test_default_dub_of_a_cartoon_has_a_score_stem_and_a_midi_score(scored, cartoon_truth):
    folder, doc = scored["folder"], scored["doc"]
    plan = Plan.from_dict(doc["plan"])
    assert plan.score is not None and plan.score.style == "orchestral" and plan.score.seed == 0
    assert doc["backends"]["renderer"] == "foley + composer (score)" and "music" in doc["backends"]
    # The score stem beside the effects and the beds, exactly the video's length.
    stems = {p.stem: p for p in (folder / "stems").glob("*.wav")}
    assert set(stems) == {"ambience", "fx", "score"}
    info = sf.info(str(stems["score"]))
    assert info.samplerate == RATE and info.frames == to_samples(cartoon_truth["duration"], RATE)
    # The MIDI reads back: its tempo map is the score's, a marker at every section's start, notes on its tracks.
    mid = mido.MidiFile(str(folder / "cartoon.score.mid"))
    tempos, markers, ticks = [], [], 0
    for msg in mid.tracks[0]:
        ticks += msg.time
        if msg.type == "set_tempo":
            tempos.append(mido.tempo2bpm(msg.tempo))
        elif msg.type == "marker":
            markers.append(ticks)
    assert len(tempos) == len(plan.score.tempo_map.bpm)
    assert np.allclose(tempos, plan.score.tempo_map.bpm, rtol=1e-5)  # MIDI keeps whole microseconds per beat
    assert len(markers) == len(plan.score.sections)
    assert abs(mid.length - cartoon_truth["duration"]) < 0.05
    assert sum(m.type == "note_on" and m.velocity > 0 for t in mid.tracks[1:] for m in t) > 100


def test_every_hit_is_heard_within_a_frame_of_its_cue_in_the_score_stem(scored, cartoon_truth):
    """Measured from the delivered stem: it is the composed performance (scaled by the mix's loudness gain), and
    the stem minus the same performance without every other hit leaves those hits, whose onsets must fall within
    one video frame of the picture's impacts and events (the truth file's frames)."""
    plan = Plan.from_dict(scored["doc"]["plan"])
    stem, sr = sf.read(str(scored["folder"] / "stems" / "score.wav"), always_2d=True, dtype="float32")
    stem = stem.T
    renderer = music_renderer.MusicRenderer()
    full = renderer.render_score(plan.score, plan.score.seed)
    gain = float(np.sum(stem * full) / np.sum(full * full))
    assert np.max(np.abs(stem - gain * full)) < 1e-4 * gain  # the stem is the score as composed, to 24-bit precision
    frame = 1.0 / cartoon_truth["fps"]
    cues = sorted(m["time"] for m in cartoon_truth["impacts"] + cartoon_truth["events"])
    hits = sorted(h.time for h in plan.score.hits)
    assert len(hits) == len(cues)
    errors = {}
    for parity in (0, 1):
        without = renderer.render_score(plan.score, plan.score.seed,
                                        exclude=lambda n: n.role == "hit" and n.cue % 2 == parity)
        onsets = onset_times(stem - gain * without, sr)
        for k in range(parity, len(cues), 2):
            errors[cues[k]] = float(np.min(np.abs(onsets - cues[k]))) if onsets.size else np.inf
    assert max(errors.values()) <= frame, errors


@pytest.mark.slow
def test_music_off_writes_no_score(tmp_path, cartoon):
    shutil.copyfile(cartoon, tmp_path / "cartoon.mp4")
    proc = run_cli("dub", "cartoon.mp4", "--stems", "--music", "off", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "cartoon.dubbed.mp4.dubkit"
    assert {p.stem for p in (folder / "stems").glob("*.wav")} == {"ambience", "fx"}
    assert not (folder / "cartoon.score.mid").exists()
    doc = json.loads((folder / "cartoon.plan.json").read_text())
    assert doc["plan"].get("score") is None and {e["layer"] for e in doc["plan"]["events"]} == {"ambience", "fx"}
    assert "music" not in doc["backends"] and doc["backends"]["renderer"].startswith("foley")


def test_a_missing_soundfont_is_one_error_line_and_nothing_written(tmp_path, cartoon):
    shutil.copyfile(cartoon, tmp_path / "cartoon.mp4")
    proc = run_cli("dub", "cartoon.mp4", "--soundfont", "/nonexistent.sf2", "-q", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dubkit: error: --soundfont:") and "/nonexistent.sf2" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartoon.mp4"]


def test_no_soundfont_installed_names_the_package_and_the_flag(tmp_path, cartoon, monkeypatch):
    """Without any SoundFont the error says what to install and how to do without music, before any work."""
    monkeypatch.delenv(music_renderer.SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(music_renderer, "SOUNDFONT_CANDIDATES", (str(tmp_path / "none.sf2"),))
    with pytest.raises(dubkit.DubkitError) as exc:
        dubkit.dub(cartoon, tmp_path / "x.mp4")
    assert "fluid-soundfont-gm" in str(exc.value) and "`music` off" in str(exc.value)
    assert list(tmp_path.iterdir()) == []
    res = dubkit.dub(cartoon, tmp_path / "x.mp4", music="off", deliverables=False)  # and without music it works
    assert res.plan.score is None and res.output.is_file()


def test_story_composes_the_clause_that_asks_for_music(tmp_path):
    proc = run_cli("story", "playful orchestral music, then heavy rain", "-d", "8", "-o", "story.wav", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = sf.info(str(tmp_path / "story.wav"))
    assert info.frames == to_samples(8.0, info.samplerate)
    # One line per event: start, duration, caption.
    events = [m.groups() for m in re.finditer(r"^\s*([\d.]+)s \+\s*([\d.]+)s  (.+)$", proc.stderr, re.M)]
    music = [e for e in events if e[2].startswith("music: playful")]
    assert len(events) == 2 and music and float(music[0][0]) == 0.0 and "orchestra" in music[0][2]
    assert any("rain" in e[2] for e in events if not e[2].startswith("music"))
    # The WAV is that plan played: the score alone over the music clause, the rain alone after it.
    res = dubkit.story("playful orchestral music, then heavy rain", 8.0, seed=0)
    audio, sr = sf.read(str(tmp_path / "story.wav"), always_2d=True, dtype="float32")
    assert res.plan.score is not None and np.max(np.abs(audio.T - res.soundtrack.audio)) < 1e-5
    split = to_samples(float(next(e[0] for e in events if "rain" in e[2])), sr)

    def dbfs(x: np.ndarray) -> float:
        return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))

    score, rain = res.soundtrack.stems["score"], res.soundtrack.stems["narrative"]
    assert dbfs(score[:, :split]) > -40 and dbfs(rain[:, :split]) < -100
    assert dbfs(rain[:, split:]) > -40 and dbfs(score[:, split:]) < -100


def test_the_original_audio_is_decoded_and_searched_for_speech_once(tmp_path, monkeypatch):
    """Auto music needs each scene's share of speech before planning, the mix needs the regions after: one
    decode and one detection serve both."""
    import dubkit.soundtrack.dialogue as dialogue
    import dubkit.soundtrack.master as master

    src = tmp_path / "tone.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=12",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-pix_fmt", "yuv420p", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(src)], check=True)
    calls: list[str] = []
    import dubkit.api as api

    real_read, real_detect = api.decode_audio_into, dialogue.detect_speech
    monkeypatch.setattr(api, "decode_audio_into", lambda *a, **k: (calls.append("decode"), real_read(*a, **k))[1])
    spy = lambda *a, **k: (calls.append("speech"), real_detect(*a, **k))[1]  # noqa: E731
    monkeypatch.setattr(dialogue, "detect_speech", spy)
    monkeypatch.setattr(master, "detect_speech", spy)
    res = dubkit.dub(src, tmp_path / "out.mp4", deliverables=False)
    assert calls == ["decode", "speech"]
    assert all("speech" in s.features for s in res.scenes)
    order = list(res.timings)
    assert order.index("speech") < order.index("plan") < order.index("mix")


def test_a_dit_only_model_renders_the_rest_and_the_composer_the_score(tmp_path, monkeypatch):
    """With a DiT-only model the offline planners still plan the score; a router gives the DiT everything but
    the score layer, which the composer plays."""
    import torch

    from audiostory_core.models.dit import DiTConfig, TangoFluxDiT
    from dubkit.backends import build_backends
    from dubkit.options import ModelOptions

    from .test_dit import WIDTH, make_t5_folder

    dit = TangoFluxDiT(DiTConfig.tiny()).eval()
    dit.set_null_tokens(torch.randn(dit.config.null_tokens, WIDTH) * 0.1, source="test")
    dit.save_pretrained(tmp_path / "dit")
    make_t5_folder(tmp_path / "t5")
    backends = build_backends(ModelOptions(model=tmp_path / "dit", t5=tmp_path / "t5", steps=2, device="cpu"))
    assert backends.renderer.name == "dit + composer (score)" and "music" in backends.summary("text")
    res = dubkit.story("playful orchestral music, then rain", 4.0, backends=backends)
    made = {c.event.layer: c.source for c in res.soundtrack.clips}
    assert made["score"].startswith("composer:orchestral") and made["narrative"] == "dit"
    assert np.abs(res.soundtrack.stems["score"]).max() > 0.01
    loads: list[object] = []
    monkeypatch.setattr(TangoFluxDiT, "from_pretrained", classmethod(lambda cls, *a, **k: loads.append(a)))
    with pytest.raises(dubkit.DubkitError, match="`soundfont`"):
        build_backends(ModelOptions(model=tmp_path / "dit", t5=tmp_path / "t5"), music=dubkit.MusicOptions(
            soundfont=tmp_path / "none.sf2"))
    assert loads == []  # the SoundFont is checked before any weights load
