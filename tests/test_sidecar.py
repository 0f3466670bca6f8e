"""SidecarCaptioner: the editor's shot list (SRT / JSON / CSV) over a base captioner."""
from __future__ import annotations

import json

import numpy as np
import pytest

from audiostory_core.request import Cue, Scene
from dubkit.errors import InputError
from dubkit.scenes.base import Captioner, describe_scenes
from dubkit.scenes.sidecar import SidecarCaptioner, parse_time, read_shot_list
from dubkit.video.types import FrameFeatures, MediaInfo, Shot, ShotFrames, VideoScan

SRT = """1
00:00:00,000 --> 00:00:02,500
A red <i>ball</i> bounces on a wooden floor

2
00:00:02,500 --> 00:00:05,000 X1:10 X2:20
A door slams
in the hallway

3
00:00:05,000 --> 00:00:08,000
Night street, a car drives past
"""

ENTRIES = [
    {"start": 0, "end": 2.5, "description": "A red ball bounces on a wooden floor",
     "cues": [{"time": 1.2, "kind": "impact", "description": "ball hits the floor", "strength": 0.8}]},
    {"start": "00:00:02.500", "end": "00:00:05.000", "description": "A door slams in the hallway",
     "cues": [{"time": 3.1, "kind": "slam"}]},
    {"start": 5, "end": "00:08.000", "description": "Night street, a car drives past"},
]

CSV = """start,end,description,cues
0,2.5,A red ball bounces on a wooden floor,1.2 impact ball hits the floor
00:00:02.500,00:00:05.000,A door slams in the hallway,3.1 slam
5,00:00:08,"Night street, a car drives past",
"""

DESCRIPTIONS = ["A red ball bounces on a wooden floor", "A door slams in the hallway",
                "Night street, a car drives past"]


def frames() -> ShotFrames:
    z = np.zeros(0)
    return ShotFrames([np.zeros((8, 8, 3), np.uint8)], [0.0], FrameFeatures(z, z, z, np.zeros((0, 2)), np.zeros((0, 3))))


def shot(i: int, start: float, end: float, fps: float = 24.0) -> Shot:
    return Shot(i, start, end, round(start * fps), round(end * fps))


# detected cuts land a frame off the editor's timecodes
SHOTS = [shot(0, 0.0, 2.542), shot(1, 2.542, 4.958), shot(2, 4.958, 8.0)]


class Base:
    """A stand-in base captioner (like visual cues): a description, one cue and a tag per shot."""

    name = "cues"

    def describe(self, frames, shot):
        return Scene(shot.start, shot.end, f"motion in shot {shot.index}",
                     [Cue(shot.start + 0.1, "motion", 0.5, "movement")], {"motion": 0.5})


@pytest.fixture
def lists(tmp_path):
    paths = {}
    for ext, text in (("srt", SRT), ("json", json.dumps(ENTRIES)), ("csv", CSV)):
        paths[ext] = tmp_path / f"shots.{ext}"
        paths[ext].write_text(text)
    return paths


def test_all_three_formats_read_the_same_shots(lists):
    notes = {ext: read_shot_list(p) for ext, p in lists.items()}
    for ext, ns in notes.items():
        assert [(n.start, n.end, n.description) for n in ns] == [
            (0.0, 2.5, DESCRIPTIONS[0]), (2.5, 5.0, DESCRIPTIONS[1]), (5.0, 8.0, DESCRIPTIONS[2])], ext
    assert notes["json"][0].cues == (Cue(1.2, "impact", 0.8, "ball hits the floor"),)
    assert [n.cues for n in notes["csv"]] == [(Cue(1.2, "impact", 1.0, "ball hits the floor"),),
                                              (Cue(3.1, "slam", 1.0, ""),), ()]
    scenes = {ext: [SidecarCaptioner(p).describe(frames(), s).description for s in SHOTS] for ext, p in lists.items()}
    assert scenes["srt"] == scenes["json"] == scenes["csv"] == DESCRIPTIONS


def test_replace_keeps_base_cues_and_tags_and_adds_sidecar_cues(lists):
    cap = SidecarCaptioner(lists["json"], base=Base())
    assert isinstance(cap, Captioner) and cap.name == "sidecar+cues"
    s0 = cap.describe(frames(), SHOTS[0])
    assert s0.description == DESCRIPTIONS[0] and s0.tags == {"motion": 0.5}
    assert s0.cues == [Cue(0.1, "motion", 0.5, "movement"), Cue(1.2, "impact", 0.8, "ball hits the floor")]
    s1 = cap.describe(frames(), SHOTS[1])
    assert [c.kind for c in s1.cues] == ["motion", "slam"] and s1.cues[1].time == 3.1


class Detector:
    """A base that detects the slam 20 ms off the editor's time, plus an earlier creak."""

    name = "cues"

    def describe(self, frames, shot):
        return Scene(shot.start, shot.end, "", [Cue(2.8, "whoosh", 0.4), Cue(3.12, "impact", 0.7, "hit")])


def test_a_moment_the_base_also_detected_appears_once_as_the_editor_wrote_it(lists):
    s1 = SidecarCaptioner(lists["json"], base=Detector()).describe(frames(), SHOTS[1])
    assert s1.cues == [Cue(2.8, "whoosh", 0.4), Cue(3.1, "slam", 1.0, "")]


def test_enrich_puts_the_editor_first_then_the_base(lists):
    cap = SidecarCaptioner(lists["srt"], base=Base(), mode="enrich")
    assert cap.describe(frames(), SHOTS[2]).description == f"{DESCRIPTIONS[2]}; motion in shot 2"
    with pytest.raises(InputError, match="replace, enrich"):
        SidecarCaptioner(lists["srt"], mode="merge")


def test_each_shot_takes_the_entry_it_overlaps_most_and_uncovered_shots_keep_the_base(tmp_path):
    p = tmp_path / "partial.json"
    p.write_text(json.dumps([
        {"start": 0.0, "end": 3.0, "description": "rain on a window"},  # covers shot 0 and 0.5 s of shot 1
        {"start": 3.0, "end": 3.4, "description": "a thunder clap"},  # short note inside shot 1
        {"start": 9.5, "end": 10.6, "description": "a dog barks"},  # mostly inside shot 3
    ]))
    shots = [shot(0, 0.0, 2.5), shot(1, 2.5, 6.0), shot(2, 6.0, 9.6), shot(3, 9.6, 12.0)]
    got = [SidecarCaptioner(p, base=Base()).describe(frames(), s).description for s in shots]
    # shot 1 (3.5 s): rain overlaps it 0.5 s, neither a quarter of the shot nor half of the note: a spill-over;
    # the thunder note overlaps less (0.4 s) but lies wholly inside, so it is the shot's note.
    assert got[0] == "rain on a window"
    assert got[1] == "a thunder clap"  # the only note covering a real part of it (all of itself)
    assert got[2] == "motion in shot 2"  # 0.1 s of the dog note: a sliver, not coverage → base kept
    assert got[3] == "a dog barks"
    no_base = SidecarCaptioner(p).describe(frames(), shots[2])
    assert no_base.description == "" and no_base.cues == []


def test_describe_scenes_over_a_scan(lists):
    z = np.zeros(0)
    feats = FrameFeatures(z, z, z, np.zeros((0, 2)), np.zeros((0, 3)))
    scan = VideoScan(MediaInfo("x.mp4", 8.0), SHOTS, feats, [frames() for _ in SHOTS])
    scenes = describe_scenes(scan, SidecarCaptioner(lists["csv"], base=Base()))
    assert [s.description for s in scenes] == DESCRIPTIONS
    assert [(s.start, s.end) for s in scenes] == [(s.start, s.end) for s in SHOTS]


@pytest.mark.parametrize("value, seconds", [
    (12, 12.0), ("12.5", 12.5), ("00:01:02.500", 62.5), ("00:01:02,500", 62.5), ("01:02.25", 62.25),
    ("1:00:00", 3600.0),
])
def test_times(value, seconds):
    assert parse_time(value, "here") == pytest.approx(seconds)


@pytest.mark.parametrize("value, message", [
    ("00:00:01:12", "frame timecode"), ("soon", "cannot read time"), (-1, "non-negative"), (True, "seconds"),
])
def test_bad_times(value, message):
    with pytest.raises(InputError, match=message):
        parse_time(value, "here")


@pytest.mark.parametrize("ext, text, where, what", [
    ("srt", "1\n00:00:00,000 --> 00:00:02,000\nok\n\n2\n00:00:02,000 -> 00:00:03,000\nbad arrow\n", "line 5",
     "start --> end"),
    ("srt", "1\n00:00:03,000 --> 00:00:02,000\nbackwards\n", "line 2", "must be after start"),
    ("srt", "1\n00:00:00,000 --> 00:00:02,000\n\n", "line 2", "description is empty"),
    ("srt", "x\n00:00:00,000 --> 00:00:02,000\nhi\n", "line 1", "subtitle number"),
    ("csv", "start,end,description\n0,1,fine\n1,two,broken\n", "line 3", "cannot read time"),
    ("csv", "start,finish,description\n0,1,a\n", "line 1", "missing end"),
    ("csv", "start,end,description\n0,1,a, b\n", "line 2", "more cells than columns"),
    ("csv", "start,end,description,cues\n0,2,a,impact\n", "line 2", "TIME KIND"),
    ("json", '[{"start": 0, "end": 1, "description": "a"},\n {"start": 1, "description": "b"}]', "entry 2",
     "missing end"),
    ("json", '[{"start": 0, "end": 1, "description": "a",\n  "cues": [{"time": 5, "kind": "hit"}]}]', "entry 1",
     "outside the entry"),
    ("json", '[{"start": 0, "end": 1, "description": "a", "cues": [{"time": 0.5}]}]', "entry 1, cue 1",
     "needs a kind"),
    ("json", '[{"start": 0, "end": 1,\n "description": "a",,}]', "line 2", "not valid JSON"),
    ("json", '{"clips": []}', "", "expected a list"),
])
def test_malformed_lists_say_where_and_what(tmp_path, ext, text, where, what):
    p = tmp_path / f"bad.{ext}"
    p.write_text(text)
    with pytest.raises(InputError) as e:
        SidecarCaptioner(p)
    msg = str(e.value)
    assert str(p) in msg and what in msg and where in msg, msg


def test_unknown_format_missing_file_and_empty_list(tmp_path):
    p = tmp_path / "shots.txt"
    p.write_text("0 2 a ball")
    with pytest.raises(InputError, match=r"\.srt, \.json, \.csv"):
        SidecarCaptioner(p)
    with pytest.raises(InputError, match="not found"):
        SidecarCaptioner(tmp_path / "nope.srt")
    (tmp_path / "empty.srt").write_text("\n\n")
    with pytest.raises(InputError, match="no entries"):
        SidecarCaptioner(tmp_path / "empty.srt")


def test_sample_shot_lists_match_the_cartoon_truth():
    """samples/cartoon.shots.{srt,json}: one note per true shot, JSON cues at the true impact/event times."""
    from pathlib import Path

    samples = Path(__file__).resolve().parent.parent / "samples"
    truth = json.loads((samples / "cartoon.truth.json").read_text())
    shots = [shot(i, s["start"], s["end"]) for i, s in enumerate(truth["shots"])]
    srt = SidecarCaptioner(samples / "cartoon.shots.srt")
    js = SidecarCaptioner(samples / "cartoon.shots.json")
    by_srt = [srt.describe(frames(), s) for s in shots]
    by_json = [js.describe(frames(), s) for s in shots]
    assert [s.description for s in by_srt] == [s.description for s in by_json]
    assert len({s.description for s in by_srt}) == len(shots)
    cues = sorted(c.time for s in by_json for c in s.cues)
    true = sorted(m["time"] for m in truth["impacts"] + truth["events"])
    assert len(cues) == len(true) and max(abs(a - b) for a, b in zip(cues, true)) < 1e-3
    assert "slams shut" in by_json[2].description and [c.kind for c in by_json[2].cues] == ["slam"]
