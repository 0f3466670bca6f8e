"""What an ImageNet class means to a sound designer: the 1000 classes grouped into sound-relevant concepts.

ImageNet names 120 dog breeds, five house cats and a dozen cars; a sound designer needs "a dog", "a cat", "a car".
``data/imagenet_concepts.csv`` maps every class to at most one concept and ``data/concepts.json`` says, per
concept, how it reads in a description, what it sounds like, where it is usually seen, and the confidence below
which it is never said. A concept's score in a frame is the summed probability of its classes (so a dog of an
uncertain breed still scores as a dog), taken from the crop of the frame that shows it best; a shot's score is the
mean over its keyframes, so one odd frame does not name a shot. A mean can still be carried by one keyframe alone
(bbb_wakeup: a rabbit's ear read as a bird, 0.85 in one keyframe and 0.06, 0.07 in the others, is a "bird" at
0.33 against its 0.3), so a concept must also be *supported*: in a shot with two or more keyframes, its
second-best keyframe must reach ``AGREEMENT`` of its threshold. On the dev set this drops that bird and still
names every shot named before (tests/bench/bench_understanding.py).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).with_name("data")
KINDS = ("animal", "vehicle", "instrument", "object", "prop", "person", "place", "style")
N_CLASSES = 1000
AGREEMENT = 1 / 3  # share of its threshold a concept's second-best keyframe must reach (2+ keyframes)


@dataclass(frozen=True)
class Concept:
    name: str  # key, e.g. "dog"
    kind: str  # one of KINDS
    text: str  # how it reads: "a dog"
    sound: str  # what it sounds like: "a dog barking and panting, paws on the floor"
    threshold: float  # mean keyframe score below which it is never said
    where: str = ""  # places only: "in a kitchen"
    setting: str = ""  # the place concept this suggests when no place is seen ("" = none)
    weather: bool = False  # says something about the weather (snow): only ever from what is visible
    members: tuple[str, ...] = ()  # a group ("traffic"): scores as the sum of these, said only when none of them is


class ConceptMap:
    """The class → concept matrix and the concepts, loaded from the data files (or given, for tests)."""

    def __init__(self, concepts: dict[str, Concept], class_concept: list[str]) -> None:
        if len(class_concept) != N_CLASSES:
            raise ValueError(f"the class map must cover {N_CLASSES} ImageNet classes, not {len(class_concept)}")
        for c in concepts.values():
            if c.kind not in KINDS:
                raise ValueError(f"concept {c.name!r} has kind {c.kind!r}; use one of {', '.join(KINDS)}")
            if c.setting and concepts.get(c.setting, None) is None:
                raise ValueError(f"concept {c.name!r} names setting {c.setting!r}, which is not a concept")
            if c.setting and concepts[c.setting].kind != "place":
                raise ValueError(f"concept {c.name!r}: its setting {c.setting!r} is not a place")
        unknown = sorted({n for n in class_concept if n and n not in concepts})
        if unknown:
            raise ValueError(f"the class map names unknown concepts: {', '.join(unknown)}")
        for c in concepts.values():
            bad = [m for m in c.members if m not in concepts or concepts[m].members]
            if bad:
                raise ValueError(f"group {c.name!r} has members that are not plain concepts: {', '.join(bad)}")
            if c.members and c.name in class_concept:
                raise ValueError(f"group {c.name!r} has members, so no ImageNet class may map to it directly")
        self.concepts = concepts
        self.names = list(concepts)
        index = {n: j for j, n in enumerate(self.names)}
        self.matrix = np.zeros((N_CLASSES, len(self.names)), np.float32)
        for i, name in enumerate(class_concept):
            if name:
                self.matrix[i, index[name]] = 1.0
        for c in concepts.values():
            for m in c.members:
                self.matrix[:, index[c.name]] += self.matrix[:, index[m]]
        self._member_index = {c.name: [index[m] for m in c.members] for c in concepts.values() if c.members}
        self.thresholds = np.array([concepts[n].threshold for n in self.names], np.float32)

    @classmethod
    def load(cls, concepts_json: str | Path | None = None, classes_csv: str | Path | None = None) -> "ConceptMap":
        return _load(str(concepts_json or DATA_DIR / "concepts.json"), str(classes_csv or DATA_DIR / "imagenet_concepts.csv"))

    def scores(self, probs: np.ndarray, frame_of_view: np.ndarray | None = None) -> np.ndarray:
        """(views, 1000) class probabilities → (concepts,) shot scores. A concept's score in a view is the summed
        probability of its classes; in a frame, the best of that frame's views (crops); in the shot, the mean over
        its frames. ``frame_of_view`` says which frame each view belongs to (default: one view per frame)."""
        per_frame = self.frame_scores(probs, frame_of_view)
        return per_frame.mean(axis=0) if len(per_frame) else np.zeros(len(self.names), np.float32)

    def frame_scores(self, probs: np.ndarray, frame_of_view: np.ndarray | None = None) -> np.ndarray:
        """(views, 1000) class probabilities → (frames, concepts): each concept's best view in each frame."""
        probs = np.asarray(probs, np.float32).reshape(-1, N_CLASSES)
        if len(probs) == 0:
            return np.zeros((0, len(self.names)), np.float32)
        per_view = probs @ self.matrix
        owner = np.arange(len(probs)) if frame_of_view is None else np.asarray(frame_of_view)
        return np.stack([per_view[owner == k].max(axis=0) for k in np.unique(owner)])

    def support(self, per_frame: np.ndarray) -> np.ndarray:
        """Per concept, the second-best keyframe's score (infinite with fewer than two keyframes: nothing to
        agree with) — what ``present`` checks so that no concept rests on one keyframe alone."""
        if len(per_frame) < 2:
            return np.full(len(self.names), np.inf, np.float32)
        return np.sort(per_frame, axis=0)[-2]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def present(self, scores: np.ndarray, support: np.ndarray | None = None) -> list[tuple[Concept, float]]:
        """Concepts at or above their own threshold (and, given ``support``, not resting on one keyframe alone),
        best first; a group only where none of its members is."""
        passed = scores >= self.thresholds
        if support is not None:
            passed &= support >= AGREEMENT * self.thresholds
        for name, members in self._member_index.items():
            if passed[members].any():
                passed[self.names.index(name)] = False
        hits = np.nonzero(passed)[0]
        ranked = sorted(hits, key=lambda j: -float(scores[j]))
        return [(self.concepts[self.names[j]], float(scores[j])) for j in ranked]


@lru_cache(maxsize=4)
def _load(concepts_json: str, classes_csv: str) -> ConceptMap:
    try:
        raw = json.loads(Path(concepts_json).read_text())
        with open(classes_csv, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the tagger's concept data ({e})") from e
    concepts = {}
    for name, d in raw.items():
        if name.startswith("_"):
            continue
        concepts[name] = Concept(name=name, kind=d["kind"], text=d["text"], sound=d.get("sound", ""),
                                 threshold=float(d["threshold"]), where=d.get("where", ""),
                                 setting=d.get("setting", ""), weather=bool(d.get("weather", False)),
                                 members=tuple(d.get("members", ())))
    order = [int(r["index"]) for r in rows]
    if order != list(range(N_CLASSES)):
        raise ValueError(f"{classes_csv} must list the ImageNet classes 0..999 in order")
    return ConceptMap(concepts, [r["concept"].strip() for r in rows])
