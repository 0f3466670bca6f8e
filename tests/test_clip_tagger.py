"""ClipTagger on a tiny, randomly initialised open_clip model built here (no weights download, no sample video)."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

open_clip = pytest.importorskip("open_clip")
from safetensors.torch import save_file  # noqa: E402

from audiostory_core.request import Cue, Scene  # noqa: E402
from dubkit.errors import CheckpointError  # noqa: E402
from dubkit.scenes.base import Captioner  # noqa: E402
from dubkit.scenes.clip_tagger import ClipTagger, cached_pretrained, describe_tags  # noqa: E402
from dubkit.scenes.combined import CombinedCaptioner  # noqa: E402
from dubkit.scenes.vocabulary import DEFAULT_VOCABULARY, GROUPS, Label, Vocabulary  # noqa: E402
from dubkit.video.types import FrameFeatures, Shot, ShotFrames  # noqa: E402

TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(config path, weights path) of a seeded tiny CLIP."""
    d = tmp_path_factory.mktemp("tiny_clip")
    cfg = d / "tiny-clip.json"
    cfg.write_text(json.dumps(TINY))
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY)
    weights = d / "tiny.safetensors"
    save_file(model.state_dict(), str(weights))
    torch.save({"state_dict": model.state_dict()}, d / "tiny.pt")  # the training-checkpoint layout
    return cfg, weights


@pytest.fixture(scope="module")
def tagger(tiny):
    return ClipTagger(str(tiny[0]), tiny[1], min_score=0.0, text_cache_dir=False)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Taggers built with the default text cache write under this test's folder, never the user's home."""
    monkeypatch.setenv("DUBKIT_CACHE_DIR", str(tmp_path / "dubkit-cache"))
    return tmp_path / "dubkit-cache"


def frames(images: list[np.ndarray]) -> ShotFrames:
    z = np.zeros(0)
    return ShotFrames(list(images), [0.1 * i for i in range(len(images))],
                      FrameFeatures(z, z, z, np.zeros((0, 2)), np.zeros((0, 3))))


def noise(seed: int, n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (72, 128, 3), dtype=np.uint8) for _ in range(n)]


SHOT = Shot(0, 1.0, 3.0, 24, 72)


def test_is_a_captioner_with_tags_from_the_vocabulary(tagger):
    assert isinstance(tagger, Captioner) and tagger.device.type == "cpu" and tagger.dtype == torch.float32
    scene = tagger.describe(frames(noise(1)), SHOT)
    assert (scene.start, scene.end) == (1.0, 3.0) and scene.cues == []
    assert scene.tags and set(scene.tags) <= set(DEFAULT_VOCABULARY.names)
    for group in GROUPS:  # top_k per group
        assert sum(DEFAULT_VOCABULARY[n].group == group for n in scene.tags) == 3
    assert list(scene.tags.values()) == sorted(scene.tags.values(), reverse=True)
    assert all(0 < v <= 1 for v in scene.tags.values())


def test_scores_match_a_plain_open_clip_zero_shot_computation(tagger, tiny):
    """The tagger's probabilities are CLIP zero-shot: templates averaged per label, softmax over the vocabulary,
    mean over keyframes. Recomputed here by hand with open_clip."""
    images = noise(2)
    torch.manual_seed(0)
    ref = open_clip.CLIP(**TINY).eval()
    tok = open_clip.get_tokenizer("tiny-clip")
    with torch.no_grad():
        prompts = [[t.format(lab.prompt) for t in DEFAULT_VOCABULARY.templates[lab.group]]
                   for lab in DEFAULT_VOCABULARY.labels]
        flat = ref.encode_text(tok([p for ps in prompts for p in ps]), normalize=True)
        rows, i = [], 0
        for ps in prompts:
            e = flat[i:i + len(ps)].mean(0)
            rows.append(e / e.norm())
            i += len(ps)
        text = torch.stack(rows)
        _, _, pre = open_clip.create_model_and_transforms("tiny-clip")
        from PIL import Image
        img = ref.encode_image(torch.stack([pre(Image.fromarray(i)) for i in images]), normalize=True)
        expected = (ref.logit_scale.exp() * img @ text.T).softmax(-1).mean(0).numpy()
    got = tagger.scores(images)
    assert got.shape == (len(DEFAULT_VOCABULARY),)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert abs(got.sum() - 1) < 1e-4


def test_deterministic_and_image_dependent(tagger, tiny):
    a = tagger.describe(frames(noise(3)), SHOT)
    b = ClipTagger(str(tiny[0]), tiny[1], min_score=0.0, text_cache_dir=False).describe(frames(noise(3)), SHOT)
    assert a.tags == b.tags and a.description == b.description
    black = tagger.scores([np.zeros((72, 128, 3), np.uint8)])
    assert not np.allclose(black, tagger.scores(noise(3)), atol=1e-4)


def test_description_names_the_top_place_object_and_action(tagger):
    scene = tagger.describe(frames(noise(4)), SHOT)
    best = {}
    for name in scene.tags:  # tags are best first
        best.setdefault(DEFAULT_VOCABULARY[name].group, DEFAULT_VOCABULARY[name])
    place, obj, act = best["place"], best["object"], best["action"]
    assert scene.description.startswith(f"{place.phrase} ({place.sound}); {obj.phrase} {act.phrase}")
    assert obj.sound in scene.description and act.sound in scene.description


def test_describe_tags_reads_like_a_sound_designer_note():
    v = DEFAULT_VOCABULARY
    assert describe_tags(v, {"night city": 0.3, "car": 0.5, "driving past": 0.2, "street": 0.1}) == (
        "a street at night (distant traffic hum); a car driving past (engine rumble, tyre hiss, a passing whoosh)")
    assert describe_tags(v, {"explosion": 0.4}) == "something exploding (a deep explosion boom)"
    assert describe_tags(v, {"rain": 0.4}) == "rain (rain patter)"
    assert describe_tags(v, {}) == ""


def test_min_score_filters_and_nothing_confident_gives_no_tags(tiny):
    strict = ClipTagger(str(tiny[0]), tiny[1], min_score=0.5)
    scene = strict.describe(frames(noise(5)), SHOT)
    assert scene.tags == {} and scene.description == ""
    assert strict.describe(frames([]), SHOT).description == ""


def test_text_features_once_and_one_batched_image_forward(tiny, monkeypatch):
    def spied(**kw):
        t = ClipTagger(str(tiny[0]), tiny[1], min_score=0.0, text_batch=64, **kw)
        text_calls, image_batches = [], []
        enc_t, enc_i = t.encode_text, t.model.encode_image
        monkeypatch.setattr(t, "encode_text", lambda x: text_calls.append(len(x)) or enc_t(x))
        monkeypatch.setattr(t.model, "encode_image", lambda x, **k: image_batches.append(len(x)) or enc_i(x, **k))
        scenes = [t.describe(frames(noise(seed, n=5)), SHOT) for seed in range(4)]
        return t, scenes, text_calls, image_batches

    t, scenes, text_calls, image_batches = spied(text_cache_dir=False)
    prompts = sum(len(DEFAULT_VOCABULARY.templates[lab.group]) for lab in DEFAULT_VOCABULARY.labels)
    assert sum(text_calls) == prompts  # every prompt encoded exactly once, across four shots
    assert len(text_calls) == sum(-(-len(DEFAULT_VOCABULARY.group(g)) // 64) for g in GROUPS)  # batched
    assert image_batches == [5, 5, 5, 5]  # all keyframes of a shot in one forward


def test_text_features_persist_on_disk_between_taggers(tiny, tmp_path, monkeypatch, private_cache):
    few = DEFAULT_VOCABULARY.subset(["kitchen", "forest", "glass", "dog", "rain", "shattering glass", "barking"])

    def run(vocabulary=few):
        t = ClipTagger(str(tiny[0]), tiny[1], min_score=0.0, vocabulary=vocabulary)
        calls = []
        enc = t.encode_text
        monkeypatch.setattr(t, "encode_text", lambda x: calls.append(len(x)) or enc(x))
        return t.describe(frames(noise(9)), SHOT), calls, t

    first, calls1, t1 = run()
    assert calls1 and list(private_cache.glob("clip_text/*.safetensors"))  # the default location
    second, calls2, t2 = run()
    assert calls2 == [] and second.tags == first.tags  # read back, not recomputed
    torch.testing.assert_close(t1.text_features, t2.text_features)
    _, calls3, _ = run(DEFAULT_VOCABULARY.subset(["car", "street", "driving past"]))
    assert sum(calls3) == 9  # another vocabulary is another cache entry
    for f in private_cache.glob("clip_text/*.safetensors"):
        f.write_bytes(b"torn")
    again, calls4, _ = run()
    assert calls4 and again.tags == first.tags  # a broken cache file is recomputed


def test_training_checkpoint_and_model_folder_load(tiny, tmp_path):
    cfg, weights = tiny
    few = DEFAULT_VOCABULARY.subset(["street", "beach", "car", "door", "running", "slamming"])
    ref = ClipTagger(str(cfg), weights, vocabulary=few).scores(noise(6))
    np.testing.assert_allclose(ClipTagger(str(cfg), weights.with_suffix(".pt"), vocabulary=few).scores(noise(6)), ref)
    folder = tmp_path / "tiny-folder"  # open_clip's hub layout: config + weights in one folder
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY}))
    (folder / "open_clip_model.safetensors").write_bytes(weights.read_bytes())
    np.testing.assert_allclose(ClipTagger(folder, vocabulary=few).scores(noise(6)), ref, rtol=1e-5)


def test_small_custom_vocabulary(tiny):
    vocab = Vocabulary(
        (Label("dog", "object", "a dog", "barking"), Label("beach", "place", "a beach", "waves")),
        {"object": ("a photo of {}.",), "place": ("a photo of {}.",)},
    )
    scene = ClipTagger(str(tiny[0]), tiny[1], vocabulary=vocab, min_score=0.0).describe(frames(noise(7)), SHOT)
    assert set(scene.tags) == {"dog", "beach"}
    assert scene.description == "a beach (waves); a dog (barking)"
    with pytest.raises(ValueError, match="unique"):
        Vocabulary((vocab.labels[0], vocab.labels[0]), vocab.templates)


def test_default_vocabulary_is_sound_oriented():
    v = DEFAULT_VOCABULARY
    assert 100 <= len(v) <= 200
    for name in ("ball", "door", "car", "glass", "dog", "bird", "crowd", "train", "rain", "fire", "water"):
        assert v[name].group == "object"
    for name in ("street", "forest", "kitchen", "beach", "office", "stadium", "night city"):
        assert v[name].group == "place"
    for name in ("bouncing", "slamming", "explosion", "running", "splashing", "driving past"):
        assert v[name].group == "action"
    assert all(lab.sound and lab.prompt for lab in v.labels)


@pytest.mark.parametrize("bad", ["missing", "garbage", "wrong_shape"])
def test_bad_checkpoint_is_a_checkpoint_error(tiny, tmp_path, bad):
    cfg, weights = tiny
    path = tmp_path / "weights.safetensors"
    if bad == "garbage":
        path.write_bytes(b"this is not a checkpoint" * 10)
    elif bad == "wrong_shape":
        other = dict(TINY, embed_dim=8)
        save_file(open_clip.CLIP(**other).state_dict(), str(path))
    with pytest.raises(CheckpointError) as e:
        ClipTagger(str(cfg), path)
    msg = str(e.value)
    assert str(path) in msg
    assert ("not found" in msg) if bad == "missing" else ("cannot load open_clip weights" in msg)
    if bad == "wrong_shape":
        assert "size mismatch" in msg


def test_uncached_pretrained_tag_fails_fast_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("DUBKIT_MODELS_DIR", str(tmp_path / "models"))  # nothing pulled
    t0 = time.monotonic()
    with pytest.raises(CheckpointError, match="dubkit models pull") as e:
        ClipTagger("ViT-B-32", "laion2b_s34b_b79k", cache_dir=tmp_path)
    assert time.monotonic() - t0 < 5 and "not in the local cache" in str(e.value)
    with pytest.raises(CheckpointError, match="ViT-B-32"):
        ClipTagger("ViT-B-32", cache_dir=tmp_path)  # default tag, same rule
    with pytest.raises(CheckpointError, match="neither a weights file nor a pretrained tag"):
        ClipTagger("ViT-B-32", "no_such_tag", cache_dir=tmp_path)
    with pytest.raises(CheckpointError, match="unknown open_clip model"):
        ClipTagger("ViT-Nope", tmp_path / "w.pt")


def test_default_weights_come_from_the_pulled_model_folder(tmp_path, monkeypatch):
    """After `dubkit models pull clip-vit-b-32`, ClipTagger() finds the folder by itself (here a broken copy,
    so the error names the file it found)."""
    folder = tmp_path / "models" / "clip-vit-b-32"
    folder.mkdir(parents=True)
    (folder / "open_clip_model.safetensors").write_bytes(b"truncated download")
    monkeypatch.setenv("DUBKIT_MODELS_DIR", str(tmp_path / "models"))
    with pytest.raises(CheckpointError, match="cannot load open_clip weights from .*clip-vit-b-32"):
        ClipTagger(cache_dir=tmp_path / "hf")


def test_cached_pretrained_finds_weights_in_a_hub_cache(tmp_path):
    """The lookup `dubkit models pull` relies on: a tag resolves to a file in the HF cache layout, offline."""
    snap = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "open_clip_model.safetensors").write_bytes(b"x")
    (tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "refs").mkdir()
    (tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "refs" / "main").write_text("abc123")
    found = cached_pretrained("ViT-B-32", "laion2b_s34b_b79k", cache_dir=tmp_path)
    assert found is not None and found.name == "open_clip_model.safetensors"
    assert cached_pretrained("ViT-B-32", "openai", cache_dir=tmp_path) is None


class _Cues:
    name = "cues"

    def describe(self, frames, shot):
        return Scene(shot.start, shot.end, "fast motion", [Cue(shot.start + 0.5, "impact", 0.9, "a hit")],
                     {"motion": 0.8})


def test_combined_captioner_takes_tags_from_clip_and_cues_from_visual_cues(tagger):
    both = CombinedCaptioner(tagger, _Cues())
    assert isinstance(both, Captioner) and both.name == "clip+cues"
    scene = both.describe(frames(noise(8)), SHOT)
    alone = tagger.describe(frames(noise(8)), SHOT)
    assert scene.description == f"{alone.description}; fast motion"
    assert scene.cues == [Cue(1.5, "impact", 0.9, "a hit")]
    assert scene.tags == {"motion": 0.8, **alone.tags}
    only = CombinedCaptioner(tagger, _Cues(), join_descriptions=False).describe(frames(noise(8)), SHOT)
    assert only.description == alone.description
    empty = CombinedCaptioner(_Empty(), _Cues()).describe(frames(noise(8)), SHOT)
    assert empty.description == "fast motion"


class _Empty:
    name = "empty"

    def describe(self, frames, shot):
        return Scene(shot.start, shot.end, "")


def test_trimmed_text_forward_equals_the_full_context_forward(tagger):
    """Running only up to the last end-of-text token gives open_clip's full 77-position result."""
    tokens = tagger.tokenizer(["a photo of a dog.", "a cartoon of a city street at night.", "rain"])
    full = tagger.model.encode_text(tokens, normalize=True)
    torch.testing.assert_close(tagger.encode_text(tokens), full, rtol=1e-5, atol=1e-6)
