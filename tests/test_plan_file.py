"""Plan files: `dubkit plan -o x.plan.json` output, edited by hand, renders as given with `dub --plan`; a bad edit
gets one error naming the event and the field."""
from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import make_test_clip  # noqa: E402

from audiostory_core.errors import PlanError  # noqa: E402
from audiostory_core.plan.io import PLAN_FILE_VERSION, FixedPlanner, load_plan, plan_document  # noqa: E402
from audiostory_core.plan.types import Plan, SubEvent  # noqa: E402
from audiostory_core.request import StoryRequest  # noqa: E402


def _doc() -> dict:
    plan = Plan("", [SubEvent("rain on a window", 0.0, 4.0, layer="ambience", kind="bed"),
                     SubEvent("a door slams shut", 1.5, 0.8, layer="fx", kind="slam", sound="door_slam")], 4.0)
    return plan_document(plan)


def _write(tmp_path, doc) -> str:
    p = tmp_path / "x.plan.json"
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(p)


def test_a_valid_plan_file_round_trips_with_every_edit_kept(tmp_path):
    doc = _doc()
    doc["events"][1].update(caption="a gunshot", start=2.25, sound="gunshot", gain_db=-3.0)
    plan = load_plan(_write(tmp_path, doc), duration=4.0)
    assert [e.caption for e in plan.events] == ["rain on a window", "a gunshot"]
    ev = plan.events[1]
    assert (ev.start, ev.duration, ev.layer, ev.kind, ev.sound, ev.gain_db) == (2.25, 0.8, "fx", "slam", "gunshot", -3.0)
    assert FixedPlanner(plan).plan(StoryRequest.from_text("ignored", 4.0)) is plan  # no re-planning


@pytest.mark.parametrize("edit, field", [
    ({"start": "two"}, "start"), ({"start": -1}, "start"), ({"duration": 0}, "duration"),
    ({"duration": 9.0}, "duration"), ({"layer": "fxx"}, "layer"), ({"caption": ""}, "caption"),
    ({"gain_db": 60}, "gain_db"), ({"scene_index": "1"}, "scene_index"), ({"sound": 3}, "sound"),
    ({"volume": 1}, "volume"), ({"tail": float("nan")}, "tail"),
])
def test_a_bad_edit_gets_one_error_naming_the_event_and_field(tmp_path, edit, field):
    doc = _doc()
    doc["events"][1].update(edit)
    with pytest.raises(PlanError) as e:
        load_plan(_write(tmp_path, json.dumps(doc, allow_nan=True)), duration=4.0)
    msg = str(e.value)
    assert "event 1" in msg and repr(field) in msg, msg
    assert "\n" not in msg


def test_version_json_and_video_length_are_checked(tmp_path):
    doc = _doc()
    del doc["version"]
    with pytest.raises(PlanError, match="'version'"):
        load_plan(_write(tmp_path, doc))
    with pytest.raises(PlanError, match="not valid JSON.*line 1"):
        load_plan(_write(tmp_path, "{oops"))
    with pytest.raises(PlanError, match="another video"):
        load_plan(_write(tmp_path, _doc()), duration=10.0)
    with pytest.raises(PlanError, match="cannot read"):
        load_plan(tmp_path / "missing.plan.json")


def test_dub_renders_the_edited_plan_file_as_given(tmp_path):
    """End to end through the CLI: plan, edit (move the slam, pick a clip, drop an event), dub --plan: the
    rendered plan is the edited one, not a new plan; a bad edit fails with one line and writes nothing."""
    from dubkit.cli import main

    clip = make_test_clip(tmp_path / "clip.mp4", 3.0)
    plan_path = tmp_path / "clip.plan.json"
    assert main(["plan", str(clip), "-o", str(plan_path), "--quiet"]) == 0
    doc = json.loads(plan_path.read_text())
    assert doc["version"] == PLAN_FILE_VERSION
    doc["plan"]["events"] = [{"caption": "a door slams shut", "start": 1.0, "duration": 0.5, "layer": "fx",
                              "kind": "slam", "sound": "door_slam"},
                             {"caption": "quiet room tone", "start": 0.0, "duration": 3.0, "layer": "ambience",
                              "kind": "bed"}]
    doc["plan"].pop("score", None)
    plan_path.write_text(json.dumps(doc))
    import dubkit

    out = tmp_path / "clip.dubbed.mp4"
    res = dubkit.dub(clip, out, plan_file=plan_path)
    assert [(e.caption, e.start, e.duration, e.sound) for e in res.plan.events] == [
        ("a door slams shut", 1.0, 0.5, "door_slam"), ("quiet room tone", 0.0, 3.0, None)]
    assert out.is_file()
    doc["plan"]["events"][0]["layer"] = "sfx"
    plan_path.write_text(json.dumps(doc))
    bad = tmp_path / "bad.mp4"
    assert main(["dub", str(clip), "-o", str(bad), "--plan", str(plan_path), "--quiet"]) != 0
    assert not bad.exists()
