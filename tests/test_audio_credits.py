"""Credits beside `dubkit story` and `dubkit continue` outputs: every library clip heard is listed with its source,
licence and attribution in <output name>.dubkit/credits.txt and licences.json, and the licence filter holds there too."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import dubkit
from dubkit.errors import OutputError
from .test_sound_library import SR, make_source, rain_texture

STORY = "a heavy wooden door slams shut, then rain falling on a roof"


@pytest.fixture()
def test_cache(tmp_path, monkeypatch) -> Path:
    """A dubkit cache whose only installed source is the test source (CC0, CC-BY and CC-BY-SA clips)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DUBKIT_CACHE_DIR", str(cache))
    make_source(cache)
    return cache


def _credits(res) -> tuple[dict, str]:
    assert res.credits == res.output.with_name(f"{res.output.name}.dubkit") / "credits.txt"
    return json.loads(res.licences.read_text()), res.credits.read_text()


def _heard(res) -> dict[str, dict]:
    return {c["path"]: c for clip in res.soundtrack.clips for c in clip.credits}


def test_story_credits_list_every_clip_heard_with_its_licence(test_cache, tmp_path):
    res = dubkit.story(STORY, 8.0, tmp_path / "story.wav", seed=0, licence="any")
    heard = _heard(res)
    assert heard, "the story used no library clip: the test source should match both captions"
    data, text = _credits(res)
    listed = {c["file"]: c for c in data["clips"]}
    for path, credit in heard.items():
        name = Path(path).name
        assert listed[name]["licence"] == credit["licence"] and listed[name]["attribution"] == credit["attribution"]
        assert name in text and credit["licence"] in text and credit["attribution"] in text
    assert set(listed) == {Path(p).name for p in heard}  # nothing listed that is not heard
    assert not list(tmp_path.glob(".story*"))  # no temporary files or folders left behind


def test_story_with_licence_cc0_never_uses_an_attribution_clip(test_cache, tmp_path):
    by = dubkit.story(STORY, 8.0, tmp_path / "by.wav", seed=0, licence="by")
    assert any(c["licence_class"] == "by" for c in _heard(by).values())  # the door slam is CC-BY
    cc0 = dubkit.story(STORY, 8.0, tmp_path / "cc0.wav", seed=0, licence="cc0")
    data, _ = _credits(cc0)
    assert all(c["licence_class"] == "cc0" for c in _heard(cc0).values())
    assert data["clips"] and all(c["licence"] == "CC0-1.0" for c in data["clips"])  # rain is CC0: still used


def test_continue_writes_credits_beside_its_output(test_cache, tmp_path):
    rng = np.random.default_rng(0)
    hiss = (0.05 * rng.standard_normal((int(3 * SR), 2))).astype(np.float32)
    sf.write(tmp_path / "hiss.wav", hiss, SR)
    res = dubkit.continue_audio(tmp_path / "hiss.wav", 3.0, tmp_path / "hiss.more.wav", seed=0)
    data, text = _credits(res)
    assert res.output.is_file() and data["version"] == 1
    for credit in _heard(res).values():
        assert Path(credit["path"]).name in text and credit["licence"] in text
    assert data["procedural_events"] + data["input_events"] + len(data["clips"]) >= 1


def test_continuation_chooses_only_among_recordings_the_licence_admits(test_cache):
    from audiostory_core.render.foley.recorded import RecordedSound
    from dubkit.backends import build_backends
    from dubkit.options import ModelOptions

    make_source(test_cache, "textures", [
        {"file": f"{name}.wav", "audio": rain_texture(2.0, seed), "description": f"{name} texture", "kind": "texture",
         "licence": licence} for seed, (name, licence) in enumerate(
            [("drizzle", "CC0-1.0"), ("breeze", "CC-BY-3.0"), ("surf", "CC-BY-SA-3.0")])])
    for licence, admitted in (("cc0", {"cc0"}), ("by", {"cc0", "by"}), ("any", {"cc0", "by", "sa"})):
        bank = build_backends(ModelOptions(licence=licence)).continuation.planner.bank
        recorded = [bank[n] for n in bank if isinstance(bank[n], RecordedSound)]
        assert {r.sound.licence_class for r in recorded} == admitted
        assert all(r.credits[0]["licence"] == r.sound.licence for r in recorded)


def test_credits_beside_an_existing_package_keep_its_other_files(tmp_path):
    from dubkit.deliver.package import write_audio_credits

    folder = tmp_path / "take.wav.dubkit"
    folder.mkdir()
    (folder / "report.html").write_text("kept")
    txt, js = write_audio_credits(tmp_path / "take.wav", [])
    assert txt.parent == folder and js.is_file() and (folder / "report.html").read_text() == "kept"
    assert "No third-party recordings" in txt.read_text()
    (tmp_path / "clash.wav.dubkit").write_text("a file")
    with pytest.raises(OutputError, match="in the way"):
        write_audio_credits(tmp_path / "clash.wav", [])

