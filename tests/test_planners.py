"""The no-LLM planners: reconciled timings, scene beds and spots, text storylines, mode dispatch."""
import math

import pytest

from audiostory_core.errors import PlanError
from audiostory_core.plan.reconcile import fit_to_scenes, reconcile_sequence
from audiostory_core.plan.scene_planner import ScenePlanner
from audiostory_core.plan.auto import AutoPlanner
from audiostory_core.plan.text_planner import TextPlanner, parse_instruction
from audiostory_core.plan.types import SubEvent
from audiostory_core.request import Cue, Scene, StoryRequest


def assert_tiles(events, total, start=0.0):
    """Back-to-back events from ``start`` ending exactly at ``total`` (bit-exact boundaries)."""
    assert events[0].start == start
    for a, b in zip(events, events[1:]):
        assert a.end == b.start, (a, b)
    assert events[-1].end == total
    assert math.isclose(math.fsum(e.duration for e in events), total - start, abs_tol=1e-9)
    assert all(e.duration > 0 for e in events)


# --- reconcile ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("total", [30.0, 10.1, 0.3, 123.456, 7.0 / 3.0, 59.999999])
def test_reconcile_tiles_the_total_exactly(total):
    events = reconcile_sequence([("a", 1.0), ("b", 2.0), ("c", 3.0)], total)
    assert [e.caption for e in events][:1] == ["a"]
    assert_tiles(events, total)


def test_reconcile_keeps_proportions_and_fills_missing():
    ev = reconcile_sequence([("rain", 10), ("thunder", 20)], 30)
    assert [(e.caption, e.start, e.duration) for e in ev] == [("rain", 0.0, 10.0), ("thunder", 10.0, 20.0)]
    ev = reconcile_sequence([("rain", 5), ("thunder", 10)], 30)  # rescaled to fit
    assert [e.duration for e in ev] == [10.0, 20.0]
    ev = reconcile_sequence([("rain", 10), ("wind", None), ("car", float("nan"))], 30)
    assert ev[0].duration == 10.0 and ev[1].duration == ev[2].duration == 10.0  # the rest split fairly
    assert_tiles(ev, 30)


def test_reconcile_splits_events_longer_than_max():
    ev = reconcile_sequence([("ocean", None)], 95)
    assert len(ev) == 4 and all(e.duration <= 30 for e in ev)
    assert ev[0].caption == "ocean" and all(e.caption.startswith("ocean") for e in ev)
    assert "(continued)" in ev[1].caption
    assert_tiles(ev, 95)
    ev = reconcile_sequence([("a", 50), ("b", 10)], 60, max_event=20)
    assert [e.caption.split()[0] for e in ev] == ["a", "a", "a", "b"]
    assert max(e.duration for e in ev) <= 20 + 1e-9


@pytest.mark.parametrize(
    "garbage",
    [None, [], [None, 5, object()], [("", float("inf")), (None, -3), ("  ", 0)], "not a list", [("x", "abc")]],
)
def test_reconcile_survives_garbage(garbage):
    ev = reconcile_sequence(garbage, 12.5)
    assert ev and all(e.caption.strip() for e in ev)
    assert_tiles(ev, 12.5)


def test_reconcile_enforces_minimum_and_rejects_bad_total():
    ev = reconcile_sequence([("tick", 0.01), ("long hum", 100)], 10, min_event=0.5)
    assert ev[0].duration == pytest.approx(0.5) and ev[1].duration == pytest.approx(9.5)
    many = reconcile_sequence([("a", 1)] * 50, 3.0)  # more events than the minimum allows: equal shares
    assert len(many) == 50
    assert_tiles(many, 3.0)
    for bad in (0, -1, float("nan"), "x"):
        with pytest.raises(PlanError):
            reconcile_sequence([("a", 1)], bad)


def test_fit_to_scenes_puts_each_event_inside_one_scene():
    scenes = [Scene(0, 4, "kitchen"), Scene(4, 9.5, "street"), Scene(9.5, 12, "car")]
    events = [
        SubEvent("a", 0.0, 3.0), SubEvent("b", 3.0, 3.0), SubEvent("c", 6.0, 5.0),
        SubEvent("late", 20.0, 2.0), SubEvent("early", -3.0, 1.0),
    ]
    fitted = fit_to_scenes(events, scenes)
    assert len(fitted) == 5
    for e in fitted:
        s = scenes[e.scene_index]
        assert s.start <= e.start and e.end <= s.end and e.duration > 0
    by = {e.caption: e for e in fitted}
    assert by["b"].scene_index == 1 and by["b"].start == 4.0  # mostly in scene 2: clipped to its start
    assert by["c"].scene_index == 1 and by["c"].end == 9.5
    assert by["late"].scene_index == 2 and by["late"].end == 12  # moved into the nearest scene
    assert by["early"].scene_index == 0 and by["early"].start == 0.0
    assert [e.start for e in fitted] == sorted(e.start for e in fitted)
    with pytest.raises(PlanError):
        fit_to_scenes(events, [Scene(3, 3, "empty")])


# --- scene planner -----------------------------------------------------------------------------------------------


def _cartoon_scenes():
    return [
        Scene(0.0, 4.0, "a kitchen", [Cue(1.0, "impact", 1.0, "pan hits the floor"), Cue(2.0, "impact"),
                                     Cue(3.8, "slam", 0.5, "door slams")]),
        Scene(4.0, 70.0, "a stormy street at night", [Cue(10.0, "flash", 1.0, "lightning"), Cue(69.7, "whoosh")]),
        Scene(70.0, 80.0, "beyond the end", [Cue(75.0, "impact")]),
    ]


def test_scene_planner_beds_cover_scenes_and_spots_hit_cues():
    total = 69.9  # the last scene lies past the end and scene 2 is cut short
    plan = ScenePlanner().plan(StoryRequest.from_scenes(_cartoon_scenes(), total))
    beds = [e for e in plan.events if e.layer == "ambience"]
    spots = [e for e in plan.events if e.layer == "fx"]
    # Scene 1: one bed exactly [0, 4]; scene 2: [4, 69.9] in parts of at most 30 s, back to back.
    s1 = [b for b in beds if b.scene_index == 0]
    s2 = [b for b in beds if b.scene_index == 1]
    assert len(s1) == 1 and s1[0].start == 0.0 and s1[0].end == 4.0 and "kitchen" in s1[0].caption
    assert len(s2) == 3 and all(b.duration <= 30 for b in s2)
    assert_tiles(s2, total, start=4.0)
    assert not [e for e in plan.events if e.scene_index == 2]
    # Spots start exactly on their cues, never leave their scene or the video.
    assert [s.start for s in spots] == [1.0, 2.0, 3.8, 10.0, 69.7]
    assert [s.kind for s in spots] == ["impact", "impact", "slam", "flash", "whoosh"]
    assert spots[0].duration == 0.5 and spots[3].duration == 2.5
    assert spots[2].end == 4.0  # slam clipped at the cut
    assert spots[4].end == pytest.approx(total) and spots[4].end <= total
    assert "thunder" in spots[3].caption and "pan hits the floor" in spots[0].caption
    assert spots[2].gain_db < spots[0].gain_db  # weaker visual evidence, quieter spot
    for e in plan.events:
        scene = _cartoon_scenes()[e.scene_index]
        assert scene.start <= e.start and e.end <= min(scene.end, total)
    assert [e.start for e in plan.events] == sorted(e.start for e in plan.events)
    assert plan.reasoning.splitlines()[1].startswith("Scene 1 (0.00–4.00 s): a kitchen → bed + 2 impacts at 1.00, 2.00 s")
    assert plan.planner == "scene" and plan.duration == total


def test_scene_planner_options_and_errors():
    scenes = [Scene(0, 2, "room", [Cue(0.5, "impact")])]
    plan = ScenePlanner(spot_durations={"impact": 0.2}, max_bed=0.5, bed_gain_db=-12).plan(
        StoryRequest.from_scenes(scenes, 2.0, instruction="cartoon style"))
    beds = [e for e in plan.events if e.layer == "ambience"]
    assert len(beds) == 4 and all(b.gain_db == -12 for b in beds) and "cartoon style" in beds[0].caption
    assert [e.duration for e in plan.events if e.layer == "fx"] == [0.2]
    with pytest.raises(PlanError):
        ScenePlanner().plan(StoryRequest.from_text("rain", 5))
    with pytest.raises(PlanError, match="no scene"):
        ScenePlanner().plan(StoryRequest.from_scenes([Scene(10, 12, "late")], 5))


# --- text planner ------------------------------------------------------------------------------------------------


def test_text_planner_orders_events_and_sums_exactly():
    plan = TextPlanner().plan(StoryRequest.from_text("rain then thunder then a car passes", 30))
    ev = plan.events
    assert len(ev) == 3
    assert "rain" in ev[0].caption and "thunder" in ev[1].caption and "car" in ev[2].caption
    assert_tiles(ev, 30)
    assert ev[0].duration > ev[1].duration  # a texture runs longer than a one-shot
    assert plan.reasoning.startswith("The 30.00-second audio contains 3 event(s)")
    assert "Event 2 (" in plan.reasoning and "thunder" in plan.reasoning.splitlines()[2]


def test_text_planner_honours_explicit_durations():
    text = ("Heavy rain for 10 seconds, then thunder (2 s), followed by a car driving away. Finally 5s of silence. "
            "The total duration is 40 seconds.")
    ev = TextPlanner().plan(StoryRequest.from_text(text, 40)).events
    assert [e.caption for e in ev] == ["Heavy rain", "thunder", "a car driving away", "silence"]
    assert [e.duration for e in ev] == [10.0, 2.0, 23.0, 5.0]
    assert_tiles(ev, 40)
    ev = TextPlanner().plan(StoryRequest.from_text("2.5 seconds of beeping and then static", 10)).events
    assert [(e.caption, e.duration) for e in ev] == [("beeping", 2.5), ("static", 7.5)]


def test_text_planner_edge_cases():
    # "A after B" plays B first; long events are split; words like "as" are no duration.
    ev = TextPlanner().plan(StoryRequest.from_text("a dog barks after a door slams", 8)).events
    assert [e.caption for e in ev] == ["a door slams", "a dog barks"]
    ev = TextPlanner().plan(StoryRequest.from_text("waves as the tide comes in", 95)).events
    assert len(ev) == 4 and all(e.duration <= 30 for e in ev) and ev[0].caption == "waves as the tide comes in"
    assert_tiles(ev, 95)
    ev = TextPlanner().plan(StoryRequest.from_text("...", 5)).events
    assert len(ev) == 1 and ev[0].duration == 5
    with pytest.raises(PlanError):
        TextPlanner().plan(StoryRequest(duration=5, instruction="   "))
    assert [c.caption for c in parse_instruction("first birds; next wind, and finally rain")] == ["birds", "wind", "rain"]


def test_auto_planner_dispatches_by_mode():
    auto = AutoPlanner()
    assert auto.plan(StoryRequest.from_text("rain then thunder", 10)).planner == "text"
    assert auto.plan(StoryRequest.from_scenes([Scene(0, 3, "room")], 3)).planner == "scene"

    class Fake:
        name = "fake-continuation"

        def plan(self, request):
            return TextPlanner().plan(StoryRequest.from_text("more", request.duration))

    auto = AutoPlanner(continuation=Fake())
    import numpy as np

    req = StoryRequest.from_audio(np.zeros((1, 100), np.float32), 16000, 2.0)
    assert auto.planner_for_mode(req.mode).name == "fake-continuation"


def test_offline_planner_plans_continuation_over_the_foley_bank():
    import numpy as np

    from audiostory_core.render.foley.bank import synthesize
    from dubkit.backends import offline_planner

    req = StoryRequest.from_audio(synthesize("rain", 2.0, 16000, seed=4), 16000, 3.0)
    plan = offline_planner().plan(req)
    assert plan.planner == "continuation" and [e.sound for e in plan.events] == ["rain"]
    with pytest.raises(PlanError, match="continuation planner"):
        AutoPlanner().plan(req)
    assert np.isclose(plan.events[-1].end, 3.0)
