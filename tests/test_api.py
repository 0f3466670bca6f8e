"""The Python API's shape: grouped options, flat keywords, already-built backends reused, and errors that speak
the API's words (the CLI's flags only on the command line)."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import dubkit
from dubkit.backends import build_backends
from dubkit.errors import InputError
from dubkit.options import (
    MUSIC_MODE_NAMES, MUSIC_STYLE_NAMES, CaptionOptions, FinishingOptions, ModelOptions, MusicOptions, apply_keywords)

from .conftest import make_test_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_test_clip(tmp_path_factory.mktemp("api") / "clip.mp4", 2)


def test_flat_keywords_land_in_their_groups_and_unknown_ones_are_refused():
    models, finishing = apply_keywords(
        "dub", {"mix": "duck", "loudness": "streaming", "library": "sfx"},
        [(ModelOptions, None), (FinishingOptions, FinishingOptions(stems=True))])
    assert models == ModelOptions(library=(Path("sfx"),))
    assert finishing == FinishingOptions(mix="duck", loudness=-14.0, stems=True)  # the given group keeps its fields
    assert apply_keywords("dub", {}, [(CaptionOptions, None)]) == [None]  # not given, not named: left to backends
    with pytest.raises(TypeError, match="unexpected keyword argument 'duck'"):
        apply_keywords("dub", {"duck": True}, [(FinishingOptions, None)])


def test_music_options_are_the_core_s_choices_and_a_group_of_their_own():
    from audiostory_core.music.planner import MUSIC_MODES
    from audiostory_core.music.types import MUSIC_STYLES

    assert MUSIC_MODE_NAMES == MUSIC_MODES and MUSIC_STYLE_NAMES == ("auto", *MUSIC_STYLES)
    (music,) = apply_keywords("dub", {"music": "only", "soundfont": "my.sf2"}, [(MusicOptions, None)])
    assert music == MusicOptions(music="only", soundfont=Path("my.sf2"))
    assert MusicOptions(music=None) == MusicOptions(music="off")  # a watch folder's "off" arrives as None


@pytest.mark.parametrize("bad, needle", [
    (dict(mix="loud"), "unknown mix mode 'loud'"),
    (dict(duck_db=3), "`duck_db` must be zero or negative"),
    (dict(loudness="cinema"), "not a number or preset"),
    (dict(captioner="magic"), "unknown captioner 'magic'"),
    (dict(music="loud"), "unknown `music` mode 'loud'"),
    (dict(music_style="jazz"), "unknown `music_style` 'jazz'"),
])
def test_bad_options_fail_before_any_work_in_the_api_s_words(clip, tmp_path, bad, needle):
    with pytest.raises(InputError) as exc:
        dubkit.dub(clip, tmp_path / "x.mp4", **bad)
    assert needle in str(exc.value) and "--" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_output_over_input_names_the_parameter_and_the_cli_names_the_flag(clip, tmp_path):
    with pytest.raises(dubkit.DubkitError, match="choose another name for `output`"):
        dubkit.dub(clip, clip)
    proc = subprocess.run([sys.executable, "-m", "dubkit.cli", "dub", str(clip), "-o", str(clip)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr.strip().endswith("choose another name for --output")


def test_no_flag_names_outside_the_cli():
    """Every string dubkit/ writes (messages, progress, docstrings) outside cli.py is free of the CLI's flags."""
    from dubkit.cli import _flags

    flags = sorted(set(_flags().values()) | {"-o", "-d", "-q"}, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, flags)) + r")(?![\w-])")
    found = []
    for path in sorted((ROOT / "dubkit").rglob("*.py")):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.search(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {pattern.search(node.value).group(0)}")
    assert len(flags) > 15 and found == []


def _count_constructions(monkeypatch, *classes) -> list[str]:
    """The names of ``classes`` constructed from now on, in order."""
    built: list[str] = []
    for cls in classes:
        init = cls.__init__
        monkeypatch.setattr(cls, "__init__", lambda self, *a, _i=init, _n=cls.__name__, **k: (built.append(_n), _i(self, *a, **k))[1])
    return built


def test_backends_built_once_serve_every_mode_and_nothing_reloads(clip, tmp_path, monkeypatch):
    """A worker builds the backends once; the first dub builds the captioner, and after it dub, plan, story and
    continue_audio load nothing, and the pipeline runs with those very planner and renderer objects."""
    import audiostory_core.pipeline as pipeline
    from audiostory_core.plan.auto import AutoPlanner
    from audiostory_core.plan.continuation_planner import ContinuationPlanner
    from audiostory_core.render.foley.renderer import FoleyRenderer
    from dubkit.scenes.combined import CombinedCaptioner
    from dubkit.scenes.tagger import TaggerCaptioner
    from dubkit.scenes.visual_cues import VisualCuesCaptioner

    backends = build_backends(ModelOptions(), CaptionOptions())
    built = _count_constructions(monkeypatch, AutoPlanner, FoleyRenderer, VisualCuesCaptioner, TaggerCaptioner,
                                 CombinedCaptioner, ContinuationPlanner)
    used: list[tuple[object, object]] = []
    real = pipeline.AudioStoryPipeline.__init__
    monkeypatch.setattr(pipeline.AudioStoryPipeline, "__init__",
                        lambda self, p, r, *a, **k: (used.append((p, r)), real(self, p, r, *a, **k))[1])

    first = dubkit.dub(clip, tmp_path / "a.mp4", backends=backends, deliverables=False)
    assert sorted(built) == ["CombinedCaptioner", "TaggerCaptioner", "VisualCuesCaptioner"]  # once, lazily
    assert "load" in first.timings and first.backends["captioner"] == "tagger+visual-cues"
    built.clear()
    seen: list[str] = []
    dubbed = dubkit.dub(clip, tmp_path / "b.mp4", backends=backends, deliverables=False, mix="replace",
                        progress=seen.append)
    planned = dubkit.plan(clip, backends=backends)
    told = dubkit.story("rain, then thunder", 3.0, tmp_path / "s.wav", backends=backends)
    more = dubkit.continue_audio(tmp_path / "s.wav", 2.0, tmp_path / "c.wav", backends=backends)

    assert built == []  # no planner, renderer or captioner constructed after the first dub
    assert used and all(p is backends.planner and r is backends.renderer for p, r in used)
    assert "load" not in dubbed.timings and not any(m.startswith("loading") for m in seen)
    assert dubbed.backends == first.backends and planned.backends["captioner"] == "tagger+visual-cues"
    assert dubbed.backends["renderer"] == told.backends["renderer"] == backends.renderer.name
    assert planned.backends["planner"] == "scene" and told.backends["planner"] == "text"
    assert more.backends == {"planner": "continuation (audio analysis)", "renderer": "foley bank + sound library"}
    assert sf.info(str(tmp_path / "c.wav")).frames == round(2.0 * sf.info(str(tmp_path / "c.wav")).samplerate)


def test_story_and_continuation_never_build_the_captioner_nor_import_torch(tmp_path):
    """A text story (and a continuation) on fresh backends builds no image captioner, and in a fresh process
    never imports torch: only a video run needs the image model."""
    code = f"""
import sys, dubkit
from dubkit.backends import build_backends
from dubkit.scenes.tagger import TaggerCaptioner
from dubkit.scenes.visual_cues import VisualCuesCaptioner
built = []
for cls in (TaggerCaptioner, VisualCuesCaptioner):
    init = cls.__init__
    cls.__init__ = lambda self, *a, _i=init, _n=cls.__name__, **k: (built.append(_n), _i(self, *a, **k))[1]
b = build_backends()
told = dubkit.story("rain, then thunder", 2.0, {str(tmp_path / "s.wav")!r}, backends=b)
more = dubkit.continue_audio({str(tmp_path / "s.wav")!r}, 1.0, {str(tmp_path / "c.wav")!r}, backends=b)
print(built, b.captioner, "captioner" in told.backends, "torch" in sys.modules)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == "[] None False False"


def test_backends_and_other_model_options_together_are_refused(tmp_path):
    backends = build_backends()
    with pytest.raises(InputError, match="built with other model options"):
        dubkit.story("rain", 1.0, backends=backends, steps=4)
    res = dubkit.story("rain", 1.0, backends=backends, models=ModelOptions())  # the same options: fine
    with pytest.raises(InputError, match="built with other music options"):
        dubkit.story("rain", 1.0, backends=backends, music="off")
    assert res.soundtrack.audio.shape[-1] == round(1.0 * res.soundtrack.sample_rate)


def test_dub_result_carries_the_loudness_report_and_the_deliverables(clip, tmp_path):
    from dubkit.deliver.package import Deliverables
    from dubkit.soundtrack.loudness import LoudnessReport

    res = dubkit.dub(clip, tmp_path / "clip.dubbed.mp4", finishing=FinishingOptions(mix="replace", loudness=-16))
    assert isinstance(res.loudness, LoudnessReport) and res.loudness.target_lufs == -16.0
    assert isinstance(res.deliverables, Deliverables) and res.deliverables.report.is_file()
    assert res.deliverables.folder == tmp_path / "clip.dubbed.mp4.dubkit" and res.mix_mode == "replace"
    off = dubkit.dub(clip, tmp_path / "off.mp4", loudness=None, deliverables=False)
    assert off.loudness is None and off.deliverables is None
    assert np.isfinite(res.loudness.output_lufs)


@pytest.mark.parametrize("captioner, clip_weights", [("auto", None), ("tagger", None), ("cues", None),
                                                      ("clip", None), ("auto", "clip.safetensors")])
def test_the_keyframe_width_known_before_the_captioner_is_built_is_the_one_it_asks_for(captioner, clip_weights):
    # The command line starts the scan's decoding at this width before any model loads; a wrong guess would
    # throw that decoding away.
    from dubkit.backends import build_captioner, captioner_keyframe_width
    from dubkit.scenes.base import keyframe_width
    from dubkit.scenes.clip_tagger import ClipTagger

    options = CaptionOptions(captioner=captioner, clip_weights=clip_weights)
    if options.captioner == "clip" or clip_weights:  # (no weights here: the built captioner, minus its model)
        from unittest import mock

        with mock.patch.object(ClipTagger, "__init__", lambda self, *a, **k: None):
            built = build_captioner(options)
    else:
        built = build_captioner(options)
    assert captioner_keyframe_width(options) == keyframe_width(built)
