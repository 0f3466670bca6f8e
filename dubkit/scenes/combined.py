"""Two captioners as one: tags and description of a primary (the image tagger, or CLIP) with the cues of a
secondary (visual cues). Its own module so that the default captioner is built without importing torch (the
CLIP tagger's module needs it)."""
from __future__ import annotations

from audiostory_core.request import Cue, Scene

from ..video.types import Shot, ShotFrames
from .base import Captioner, keyframe_width


class CombinedCaptioner:
    """Tags from both, cues from ``secondary`` (and any the primary has), the description of ``primary`` first:
    "clip tags + visual cues". CLIP says *what* is there, visual cues say *when* something happens, so by default
    both descriptions are kept ("a kitchen (...); a glass falling (...); ... an object hits the ground");
    ``join_descriptions=False`` keeps only the primary's (the secondary's still stands in when it has none)."""

    def __init__(self, primary: Captioner, secondary: Captioner, *, join_descriptions: bool = True) -> None:
        self.primary, self.secondary, self.join_descriptions = primary, secondary, join_descriptions
        self.name = f"{primary.name}+{secondary.name}"
        self.keyframe_width = max(keyframe_width(primary), keyframe_width(secondary))

    def describe(self, frames: ShotFrames, shot: Shot) -> Scene:
        a = self.primary.describe(frames, shot)
        b = self.secondary.describe(frames, shot)
        texts = [t.strip() for t in (a.description, b.description) if t and t.strip()]
        description = "; ".join(texts) if self.join_descriptions else (texts[0] if texts else "")
        cues: list[Cue] = sorted(dict.fromkeys([*b.cues, *a.cues]), key=lambda c: c.time)
        seen = {o.name for o in a.objects}
        objects = [*a.objects, *(o for o in b.objects if o.name not in seen)]  # the primary's first
        return Scene(shot.start, shot.end, description, cues, {**b.tags, **a.tags}, objects=objects)
