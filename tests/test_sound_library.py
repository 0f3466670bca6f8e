"""The installed sound library: package readers, licences, the index and its cache, role-aware matching,
credits, the licence filter, the `dubkit library` commands."""
from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiostory_core.assemble import assemble, assign_tails
from audiostory_core.plan.types import Plan, SubEvent
from audiostory_core.render.foley import formats as F
from audiostory_core.render.foley import sources as S
from audiostory_core.render.foley.library import SoundLibrary, loop_to
from .conftest import CountingEmbedder

ROOT = Path(__file__).resolve().parents[1]
SR = 44100


@pytest.fixture(scope="session")
def embedder():
    from audiostory_core.embeddings import TextEmbedder

    return TextEmbedder()


# --- audio the tests build ----------------------------------------------------------------------------------------

def bark(lead: float = 0.0, f: float = 450.0) -> np.ndarray:
    t = np.arange(int(0.4 * SR)) / SR
    hit = np.sin(2 * np.pi * f * t * (1 - 0.3 * t)) * np.exp(-t / 0.08)
    return np.concatenate([np.zeros(int(lead * SR)), hit, np.zeros(int(0.2 * SR))]).astype(np.float32)


def rain_texture(seconds: float = 1.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((int(seconds * SR), 2)) * 0.1
    return (x + 0.05 * np.sin(2 * np.pi * 180 * np.arange(len(x)) / SR)[:, None]).astype(np.float32)


def make_source(cache: Path, name: str = "testsource", clips: list[dict] | None = None) -> Path:
    """An installed source as sources.install leaves it: audio files plus a manifest with per-clip licences."""
    folder = S.sources_dir(cache) / name
    folder.mkdir(parents=True, exist_ok=True)
    clips = clips or [
        {"file": "dog_a.wav", "audio": bark(0.3), "description": "dog barking", "licence": "CC-BY-3.0"},
        {"file": "dog_b.wav", "audio": bark(0.0, 520.0), "description": "dog barking", "licence": "CC0-1.0"},
        {"file": "slam.wav", "audio": bark(0.0, 120.0), "description": "heavy wooden door slamming shut",
         "licence": "CC-BY-3.0"},
        {"file": "rain.wav", "audio": rain_texture(), "description": "rain falling on a roof", "licence": "CC0-1.0",
         "kind": "texture"},
        {"file": "goat.wav", "audio": bark(0.0, 700.0), "description": "goat bleating", "licence": "CC-BY-SA-3.0"},
    ]
    entries = []
    for c in clips:
        sf.write(folder / c["file"], c["audio"], SR)
        entry = {k: v for k, v in c.items() if k != "audio"}
        entry.update(title=c["file"], categories=[], attribution=f"{c['file']} by Tester",
                     licence_class=F.licence_class(c["licence"]))
        entries.append(entry)
    (folder / S.MANIFEST).write_text(json.dumps({"version": 1, "source": name, "clips": entries}))
    # no default source is extracted from this machine's packages into a test cache
    S.write_config(cache, {"folders": [], "removed": list(S.SOURCES)})
    return folder


def renderer(cache: Path, embedder, **kw):
    from audiostory_core.render.foley.renderer import FoleyRenderer

    return FoleyRenderer(embedder=embedder, cache_dir=cache, **kw)


# --- package readers ----------------------------------------------------------------------------------------------

def _wav_bytes(x: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_opensfx_catalogue_titles_give_licence_and_author(tmp_path):
    entries = [('"Crash". Original "crash.wav" by "sagetyrtle". Edited by Janis Lukss. License: Creative Commons '
                'Attribution 3.0 Unported.', _wav_bytes(bark())),
               ('"Sheep". Original "Corner of a sheep field" by David R Barnes. License: Creative Commons Zero 1.0.',
                _wav_bytes(bark(0.1)))]
    table, body = b"", b""
    offset = 8 * len(entries)
    for title, wav in entries:
        name = title.encode() + b"\0"
        record = bytes([len(name)]) + name + wav
        table += struct.pack("<II", (offset + len(body)) | 0x80000000, len(wav))
        body += record
    path = tmp_path / "test.cat"
    path.write_bytes(table + body)
    samples = F.read_opensfx_cat(path)
    assert [s.wav for s in samples] == [e[1] for e in entries]
    crash = S.parse_opensfx_title(samples[0].title)
    assert crash["title"] == "Crash" and crash["licence"] == "CC-BY-3.0" and "sagetyrtle" in crash["credit"]
    assert crash["originals"] == ["crash.wav"]
    assert S.parse_opensfx_title(samples[1].title)["licence"] == "CC0-1.0"
    path.write_bytes(b"\x10\x00\x00\x80garbage")
    with pytest.raises(F.RenderError, match="catalogue"):
        F.read_opensfx_cat(path)


def test_doom_wad_sound_lumps_decode_to_their_samples(tmp_path):
    pcm = (np.arange(100) % 256).astype(np.uint8)
    lump = struct.pack("<HHI", 3, 11025, len(pcm) + 32) + bytes(16) + pcm.tobytes() + bytes(16)
    other = b"not a sound"
    data = lump + other
    directory = struct.pack("<ii8s", 12, len(lump), b"DSPISTOL") + struct.pack("<ii8s", 12 + len(lump), len(other),
                                                                              b"MAP01")
    path = tmp_path / "t.wad"
    path.write_bytes(b"IWAD" + struct.pack("<ii", 2, 12 + len(data)) + data + directory)
    sounds = F.read_wad_sounds(path)
    assert [(s.name, s.rate) for s in sounds] == [("DSPISTOL", 11025)]
    assert np.allclose(sounds[0].samples, (pcm.astype(np.float32) - 128) / 128)
    assert S.doom_description("DSPISTOL")[0] == "pistol gunshot"
    assert S.doom_description("DSCYBSIT") == ("monster growl", "monsters")


def _rcc(files: dict[str, bytes], compress: set[str]) -> bytes:
    """A version-3 Qt resource file with one folder holding ``files``."""
    names = b""
    offsets = {}
    for n in ["res", *files]:
        offsets[n] = len(names)
        names += struct.pack(">HI", len(n), 0) + n.encode("utf-16-be")
    data, data_off = b"", {}
    for n, blob in files.items():
        if n in compress:
            blob = struct.pack(">I", len(blob)) + zlib.compress(blob)
        data_off[n] = len(data)
        data += struct.pack(">I", len(blob)) + blob
    node = lambda *parts: b"".join(parts) + bytes(8)  # noqa: E731 - 8 bytes of modification time
    tree = node(struct.pack(">iHii", 0, 2, 1, 1))  # root: one child at index 1
    tree += node(struct.pack(">iHii", offsets["res"], 2, len(files), 2))
    for n in files:
        tree += node(struct.pack(">iHhhi", offsets[n], 1 if n in compress else 0, 0, 0, data_off[n]))
    header_len = 24
    tree_off = header_len
    data_off0 = tree_off + len(tree)
    names_off = data_off0 + len(data)
    return b"qres" + struct.pack(">iiiii", 3, tree_off, data_off0, names_off, 0) + tree + data + names


def test_qt_resource_files_yield_their_audio(tmp_path):
    files = {"door_close.wav": _wav_bytes(bark()), "notes.txt": b"hello", "car.wav": _wav_bytes(bark(0.2))}
    path = tmp_path / "x.rcc"
    path.write_bytes(_rcc(files, compress={"car.wav"}))
    assert F.read_rcc(path) == {f"res/{k}": v for k, v in files.items()}
    assert set(F.read_rcc(path, want=lambda p: p.endswith(".wav"))) == {"res/door_close.wav", "res/car.wav"}


def test_soundfont_samples_join_stereo_pairs(tmp_path):
    left, right = (np.arange(50) * 100).astype("<i2"), (-np.arange(50) * 100).astype("<i2")
    mono = (np.arange(30) * 50).astype("<i2")
    smpl = left.tobytes() + right.tobytes() + mono.tobytes()

    def head(name, start, end, link, kind):
        return name.encode().ljust(20, b"\0") + struct.pack("<IIIIIBbHH", start, end, start, end, 22050, 60, 0, link,
                                                             kind)
    shdr = head("Bell(L)", 0, 50, 0, 4) + head("Bell(R)", 50, 100, 0, 2) + head("Telephone", 100, 130, 0, 1)
    shdr += head("EOS", 0, 0, 0, 0)

    def chunk(cid, payload):
        return cid + struct.pack("<I", len(payload)) + payload

    body = b"sfbk" + chunk(b"LIST", b"sdta" + chunk(b"smpl", smpl)) + chunk(b"LIST", b"pdta" + chunk(b"shdr", shdr))
    path = tmp_path / "t.sf2"
    path.write_bytes(chunk(b"RIFF", body))
    got = {s.name: s for s in F.read_sf2_samples(path)}
    assert set(got) == {"Bell", "Telephone"}
    assert got["Bell"].audio.shape == (2, 50) and np.allclose(got["Bell"].audio[1], right / 32768)
    assert got["Telephone"].audio.shape == (1, 30) and got["Telephone"].rate == 22050


@pytest.mark.parametrize("text, spdx, cls", [
    ("Creative Commons Attribution 3.0 Unported", "CC-BY-3.0", "by"),
    ("Creative Commons Zero 1.0", "CC0-1.0", "cc0"),
    ("Creative Commons Attribution-ShareAlike 3.0 Unported", "CC-BY-SA-3.0", "sa"),
    ("licensed under the Creative Commons Attribution-Share Alike 3.0 (CC-by-sa) license", "CC-BY-SA-3.0", "sa"),
    ("CC0", "CC0-1.0", "cc0"),
    ("CC0-1.0 and CC-BY-3.0", "CC0-1.0 and CC-BY-3.0", "by"),
    ("GPL-3 or LGPL-2.1", "GPL-3 or LGPL-2.1", "sa"),
    ("CC-sampling-plus-1.0", "CC-sampling-plus-1.0", "other"),
    ("free-art", "free-art", "sa"),
    ("MIT", "MIT", "by"),
])
def test_licences_are_normalised_and_classed(text, spdx, cls):
    assert F.normalise_licence(text) == spdx and F.licence_class(spdx) == cls


def test_licence_filters():
    assert F.allowed_classes("cc0") == {"cc0", "own"}
    assert F.allowed_classes("by") == {"cc0", "by", "own"}
    assert F.allowed_classes("ANY") == {"cc0", "by", "sa", "own"}
    with pytest.raises(F.RenderError, match="cc0, by or any"):
        F.allowed_classes("nc")
    bsd = "Redistribution and use in source and binary forms ... Neither the name of the project ..."
    assert F.normalise_licence("freedoom-license", bsd) == "BSD-3-Clause"


# --- sources ------------------------------------------------------------------------------------------------------

def test_a_missing_source_package_is_reported_not_fatal(tmp_path):
    ghost = S.Source("ghost", "deb", "dubkit-no-such-package", "nothing", "none", ("usr/share/dubkit-ghost/*",),
                     lambda root, dest: [])
    st = S.install(ghost, tmp_path, fetch=False)
    assert not st.ok and "dubkit-no-such-package is not installed" in st.message
    assert not (S.sources_dir(tmp_path) / "ghost").exists()
    if subprocess.run(["which", "apt-get"], capture_output=True).returncode == 0:
        st = S.install(ghost, tmp_path, fetch=True)  # apt-get knows no such package: reported
        assert not st.ok and "apt-get download dubkit-no-such-package failed" in st.message
    # the defaults: each one either installs from this machine or says why not; nothing raises
    statuses = S.install_defaults(tmp_path / "c", fetch=False)
    assert {s.name for s in statuses} == {s.name for s in S.SOURCES.values() if s.default}
    assert all(s.ok or "not installed" in s.message or "not" in s.message for s in statuses)


@pytest.mark.skipif(not Path("/usr/share/sonic-pi/samples").is_dir(), reason="sonic-pi-samples not installed")
def test_sonic_pi_is_extracted_with_the_licence_of_every_file(tmp_path):
    st = S.install(S.SOURCES["sonic-pi-samples"], tmp_path, fetch=False)
    assert st.ok and st.clips > 150 and st.licences.get("CC0-1.0", 0) > 100
    manifest = S.read_manifest(S.sources_dir(tmp_path) / "sonic-pi-samples")
    crow = next(c for c in manifest["clips"] if c["file"] == "misc_crow.flac")
    assert crow["licence"] == "CC0-1.0" and "davidworksonline" in crow["attribution"] and crow["url"]
    assert all(c["licence"] and c["licence_class"] in ("cc0", "by") for c in manifest["clips"])
    assert S.remove("sonic-pi-samples", tmp_path)
    assert "sonic-pi-samples" in S.read_config(tmp_path)["removed"]  # set-up will not bring it back


# --- the index ----------------------------------------------------------------------------------------------------

def test_index_survives_a_deleted_or_corrupt_cache(tmp_path, embedder, caplog):
    folder = make_source(tmp_path)
    first = SoundLibrary([folder], CountingEmbedder(embedder), cache_dir=tmp_path)
    assert first.stats == {"files": 5, "embedded": 5, "cached": 0}
    dog = next(s for s in first.sounds if s.path.endswith("dog_a.wav"))
    assert dog.licence == "CC-BY-3.0" and dog.licence_class == "by" and dog.source == "testsource"
    assert dog.kind == "oneshot" and dog.onset == pytest.approx(0.3, abs=0.006)
    assert next(s for s in first.sounds if s.path.endswith("rain.wav")).kind == "texture"

    again = CountingEmbedder(embedder)
    assert SoundLibrary([folder], again, cache_dir=tmp_path).stats["cached"] == 5 and again.calls == []

    cache_files = list((tmp_path / "foley-library").glob("*.npz"))
    assert len(cache_files) == 1
    cache_files[0].write_bytes(b"this is not an npz file")
    with caplog.at_level(logging.WARNING):
        rebuilt = SoundLibrary([folder], embedder, cache_dir=tmp_path)
    assert rebuilt.stats["embedded"] == 5 and any("unreadable" in n and "rebuilding" in n for n in rebuilt.notes)
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    assert np.allclose(rebuilt.vectors, first.vectors, atol=1e-5)

    cache_files[0].unlink()
    fresh = SoundLibrary([folder], embedder, cache_dir=tmp_path)
    assert fresh.stats["embedded"] == 5 and any("indexing 5" in n for n in fresh.notes)
    assert [s.path for s in fresh.sounds] == [s.path for s in first.sounds]

    (folder / "goat.wav").unlink()  # a clip gone from an installed source: reported, the rest still indexed
    gone = SoundLibrary([folder], embedder, cache_dir=tmp_path)
    assert gone.stats["files"] == 4 and any("missing" in n for n in gone.notes)


def test_lookups_are_fast_and_known_captions_need_no_model(tmp_path, embedder):
    from audiostory_core.embeddings import LazyTextEmbedder

    make_source(tmp_path)
    captions = [f"a dog barking {i}" for i in range(40)] + ["rain on a roof", "a door slams"]
    renderer(tmp_path, embedder)._embed(captions)  # first run: the captions are embedded and cached
    lazy = LazyTextEmbedder()
    r = renderer(tmp_path, lazy)
    events = [SubEvent(c, float(i), 1.0) for i, c in enumerate(captions)]
    t0 = time.perf_counter()
    scores = r._scores(r._embed([e.caption for e in events]), events)
    per_event = (time.perf_counter() - t0) / len(events)
    assert not lazy.loaded  # index, bank and captions all came from the caches
    assert per_event < 0.005 and scores.shape[0] == len(events)


# --- matching, roles, credits, licences -----------------------------------------------------------------------------

def test_a_streamed_soundtrack_keeps_every_clip_s_credits(tmp_path, embedder):
    """``dub`` assembles clip by clip into file tracks: the audio goes, but what made each event and whose
    recordings it holds must still reach credits.txt — the same as the in-memory path."""
    from audiostory_core.pipeline import AudioStoryPipeline
    from audiostory_core.plan.io import FixedPlanner
    from audiostory_core.request import StoryRequest
    from audiostory_core.tracks import TrackStore

    make_source(tmp_path)
    plan = Plan("", [SubEvent("a dog barking", 0.0, 3.0), SubEvent("the door slams shut", 3.5, 1.0, kind="slam"),
                     SubEvent("rain falling on the roof", 0.0, 6.0, layer="ambience")], 6.0)
    pipe = AudioStoryPipeline(FixedPlanner(plan), renderer(tmp_path, embedder, licence="any"), sample_rate=SR)
    memory = pipe.generate(StoryRequest.from_text("x", 6.0), seed=0)
    with TrackStore(tmp_path) as store:
        streamed = pipe.generate(StoryRequest.from_text("x", 6.0), seed=0, store=store)
    assert [c.event.caption for c in streamed.clips] == [e.caption for e in plan.events]
    assert [c.credits for c in streamed.clips] == [c.credits for c in memory.clips]
    assert any(c.credits for c in streamed.clips)


def test_every_used_clip_is_in_the_credits_with_its_licence(tmp_path, embedder):
    from dubkit.deliver.credits import write_credits

    make_source(tmp_path)
    r = renderer(tmp_path, embedder, licence="any")
    plan = Plan("", [SubEvent("a dog barking", 0.0, 3.0), SubEvent("the door slams shut", 3.5, 1.0, kind="slam"),
                     SubEvent("rain falling on the roof", 0.0, 6.0, layer="ambience"),
                     SubEvent("a goat bleats", 5.0, 1.0), SubEvent("a siren wails", 4.0, 2.0)], 6.0)
    clips = r.render(plan, seed=0)
    used = {c["path"]: c["licence"] for clip in clips for c in clip.credits}
    assert any(p.endswith("slam.wav") for p in used) and any(p.endswith("rain.wav") for p in used)
    assert clips[4].source.startswith("synth:") and clips[4].credits == []  # no recording fits: the bank
    txt, js = write_credits(tmp_path, clips, title="test.mp4")
    data = json.loads(js.read_text())
    listed = {Path(c["file"]).name: c["licence"] for c in data["clips"]}
    assert listed == {Path(p).name: lic for p, lic in used.items()}
    text = txt.read_text()
    for path, licence in used.items():
        assert Path(path).name in text and licence in text
    assert data["procedural_events"] == 1
    assert data["share_alike"] == ["CC-BY-SA-3.0"]  # the copyleft goat: the soundtrack says what it inherits
    assert "contains CC-BY-SA-3.0 material" in text and "same licence" in text


def test_licence_cc0_never_uses_an_attribution_clip(tmp_path, embedder):
    make_source(tmp_path)
    plan = Plan("", [SubEvent("a dog barking", 0.0, 2.0), SubEvent("the door slams shut", 2.0, 1.0, kind="slam"),
                     SubEvent("a goat bleats", 3.0, 1.0), SubEvent("rain on the roof", 0.0, 4.0, layer="ambience")],
                4.0)
    for licence, banned in (("cc0", {"by", "sa"}), ("by", {"sa"})):
        r = renderer(tmp_path, embedder, licence=licence)
        assert all(s.licence_class not in banned for s in r.recordings)
        for seed in range(4):
            for clip in r.render(plan, seed=seed):
                assert all(c["licence_class"] not in banned for c in clip.credits)
    cc0 = renderer(tmp_path, embedder, licence="cc0").render(plan, seed=0)
    assert cc0[0].source.endswith("dog_b.wav")  # the CC0 dog, not the CC-BY one
    assert not any(c["clip"] == "slam.wav" for clip in cc0 for c in clip.credits)


def test_beds_loop_without_clicks(tmp_path, embedder):
    make_source(tmp_path)
    r = renderer(tmp_path, embedder)
    bed, = r.render(Plan("", [SubEvent("rain falling on a roof", 0.0, 7.0, layer="ambience")], 7.0), seed=3)
    assert bed.source.endswith("rain.wav")  # a 1.3 s recording, looped to 7 s
    x = bed.audio
    assert x.shape == (2, 7 * 48000)
    frame = 480  # 10 ms
    levels = 20 * np.log10(np.sqrt((x[:, : x.shape[1] // frame * frame].reshape(2, -1, frame) ** 2).mean(axis=(0, 2))))
    inner = levels[5:-5]  # away from the 20 ms edge fades
    assert inner.max() - inner.min() < 6.0  # no dip or bump at the seams
    jumps = np.abs(np.diff(x, axis=-1)).max()
    typical = np.abs(np.diff(x, axis=-1)).std()
    assert jumps < 8 * typical  # no step: every sample-to-sample change is within the noise's own spread
    # an exact loop (a file made to repeat) is tiled end to start: period preserved
    tone = np.sin(2 * np.pi * 441 * np.arange(4400) / 44100)[None]  # exactly 44 periods
    tiled = loop_to(tone, 44100, 44100, exact=True)
    assert np.abs(np.diff(tiled)).max() < 0.07 and abs(np.abs(tiled).max() - 1) < 0.05


def test_spots_land_on_their_cue_frame(tmp_path, embedder):
    make_source(tmp_path)
    r = renderer(tmp_path, embedder)
    cues = [1.234, 2.5, 3.875]
    events = [SubEvent("the door slams shut", t, 0.6, kind="slam") for t in cues]
    plan = Plan("", events, 5.0)
    assign_tails(plan, 0.25)
    clips = r.render(plan, seed=0)
    assert all(c.source.endswith("slam.wav") for c in clips)
    track = assemble(clips, plan, 48000)
    env = np.abs(track.audio).max(axis=0)
    for t in cues:
        start = int(round(t * 48000))
        window = env[start - 480:start + 4800]
        onset = start - 480 + int(np.nonzero(window > 10 ** (-30 / 20) * window.max())[0][0])
        assert abs(onset - start) <= 48  # within 1 ms of the cue (a 25 fps frame is 40 ms)
    # the dog clip with 0.3 s of silence before its bark is trimmed to the bark
    dog, = r.render(Plan("", [SubEvent("a dog barks once", 0.0, 1.0, kind="hit")], 1.0), seed=0)
    assert np.nonzero(np.abs(dog.audio).max(axis=0) > 0.01)[0][0] <= 0.002 * 48000


def test_variation_among_equal_matches_and_no_back_to_back_repeat(tmp_path, embedder):
    make_source(tmp_path)
    r = renderer(tmp_path, embedder)
    picks = {r.render(Plan("", [SubEvent("a dog barking", 0.0, 0.5, kind="hit")], 1.0), seed=s)[0].source
             for s in range(8)}
    assert {Path(p).name for p in picks} == {"dog_a.wav", "dog_b.wav"}  # the seed picks among equal matches
    for seed in range(4):
        plan = Plan("", [SubEvent("a dog barking", float(i), 0.5, kind="hit") for i in range(6)], 6.0)
        sources = [c.source for c in r.render(plan, seed=seed)]
        assert all(a != b for a, b in zip(sources, sources[1:]))
    # a long event of a repeated action repeats its oneshot
    long, = r.render(Plan("", [SubEvent("a dog barking", 0.0, 4.0)], 4.0), seed=0)
    env = np.abs(long.audio).max(axis=0)
    frames = env[: len(env) // 480 * 480].reshape(-1, 480).max(axis=1) > 0.05
    assert np.count_nonzero(np.diff(frames.astype(int)) == 1) + frames[0] >= 3  # at least three barks


# --- the command line ---------------------------------------------------------------------------------------------

def _library(*args, cache: Path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "dubkit.soundlib", *args, "--cache-dir", str(cache)],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_library_commands(tmp_path):
    cache = tmp_path / "cache"
    S.write_config(cache, {"folders": [], "removed": list(S.SOURCES)})
    mine = tmp_path / "my sounds"
    mine.mkdir()
    sf.write(mine / "glass_smash.wav", bark(), SR)
    res = _library("add", str(mine), cache=cache)
    assert res.returncode == 0 and "added folder" in res.stdout
    listing = _library("list", cache=cache)
    assert listing.returncode == 0 and str(mine.resolve()) in listing.stdout and "0ad-data" in listing.stdout
    found = _library("search", "glass shattering", "--top", "1", cache=cache)
    assert found.returncode == 0 and "glass_smash.wav" in found.stdout
    res = _library("add", "0ad-data", "--no-download", cache=cache)
    assert res.returncode == 1 and "inherits CC-BY-SA-3.0" in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("dubkit: error:")
    bad = _library("add", str(tmp_path / "nowhere"), cache=cache)
    assert bad.returncode == 1 and "neither a known source" in bad.stderr and "Traceback" not in bad.stderr
    assert _library("remove", str(mine), cache=cache).returncode == 0
    assert str(mine.resolve()) not in _library("list", cache=cache).stdout


def test_caption_words_pick_between_similar_descriptions():
    """The caption's own words (by stem) separate clips an embedding blurs: "slams" favours "slamming shut" over
    "close"; stop words count for nothing."""
    from audiostory_core.render.foley.renderer import _stems

    caption = _stems("a door slams shut")
    assert caption == {"door", "slam", "shut"}
    assert len(caption & _stems("fast door slamming shut")) == 3
    assert len(caption & _stems("door close")) == 1
    assert _stems("the of a on") == frozenset()


def test_long_ongoing_event_fills_with_a_short_oneshot_but_a_cue_plays_once():
    from audiostory_core.plan.types import SubEvent
    from audiostory_core.render.foley.library import LibrarySound
    from audiostory_core.render.foley.renderer import _fills

    gust = LibrarySound(path="/x/wind.wav", text="wind", duration=2.7, kind="oneshot", size=1, mtime_ns=1)
    assert _fills(SubEvent(caption="wind blowing", start=0.0, duration=5.0), gust)
    assert not _fills(SubEvent(caption="a door slams shut", start=0.0, duration=5.0), gust)
    assert not _fills(SubEvent(caption="wind blowing", start=0.0, duration=5.0, kind="impact"), gust)
    assert not _fills(SubEvent(caption="wind blowing", start=0.0, duration=2.0), gust)
