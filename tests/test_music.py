"""The music layer: a cue sheet from the picture, a composed score on a tempo map that catches the hits, played
by FluidSynth with a General MIDI SoundFont. Everything a user would notice is measured from the rendered audio
or the written file: hits on their frames, the length to the sample, the MIDI's tempo map and markers,
determinism per seed, and one clear error when no SoundFont is installed."""
from __future__ import annotations

import json

import mido
import numpy as np
import pytest

from audiostory_core.errors import PlanError, RenderError
from audiostory_core.music.composer import compose
from audiostory_core.music.midi import write_midi
from audiostory_core.music.planner import plan_score, score_events, score_story, tacet_scenes
from audiostory_core.plan.scene_planner import ScenePlanner
from audiostory_core.plan.types import Plan, SubEvent
from audiostory_core.render import music_renderer
from audiostory_core.request import Cue, Scene, StoryRequest
from audiostory_core.timing import to_samples

from .conftest import SAMPLES, onset_times

pytest.importorskip("fluidsynth", reason="pyfluidsynth / libfluidsynth3 not installed (scripts/setup.sh)")
try:
    SOUNDFONT = music_renderer.find_soundfont()
except RenderError:  # pragma: no cover - setup.sh installs fluid-soundfont-gm
    pytest.skip("no General MIDI SoundFont installed (scripts/setup.sh installs fluid-soundfont-gm)", allow_module_level=True)

RATE = 48000


def _truth_scenes(truth: dict) -> list[Scene]:
    """The cartoon's shots with its true cues (impacts, slam, flashes, the whoosh and the car pass)."""
    shots = json.loads((SAMPLES / "cartoon.shots.json").read_text())["shots"]
    moments = truth["impacts"] + truth["events"]
    scenes = []
    for s in shots:
        cues = [Cue(m["time"], m["kind"], 1.0, m["description"]) for m in moments if s["start"] <= m["time"] < s["end"]]
        scenes.append(Scene(s["start"], s["end"], s["description"], cues))
    return scenes


@pytest.fixture(scope="module")
def renderer() -> music_renderer.MusicRenderer:
    return music_renderer.MusicRenderer()


@pytest.fixture(scope="module")
def cartoon_score(cartoon_truth):
    return plan_score(_truth_scenes(cartoon_truth), cartoon_truth["duration"])


@pytest.fixture(scope="module")
def cartoon_audio(renderer, cartoon_score):
    return renderer.render_score(cartoon_score, seed=0)


def test_every_hit_sounds_within_a_frame_of_its_cue(renderer, cartoon_score, cartoon_audio, cartoon_truth):
    # Each hit as it sounds inside the full performance: the full render minus a render without it (FluidSynth
    # sums voices linearly, so everything else cancels). Every other hit is left out per render, so one hit's
    # ring never hides the next one's attack (the ball's bounces come 0.4 s apart).
    frame = 1.0 / cartoon_truth["fps"]
    cues = sorted(m["time"] for m in cartoon_truth["impacts"] + cartoon_truth["events"])
    assert [round(h.time, 3) for h in cartoon_score.hits] == [round(t, 3) for t in cues]
    errors = {}
    for parity in (0, 1):
        without = renderer.render_score(cartoon_score, seed=0, exclude=lambda n: n.role == "hit" and n.cue % 2 == parity)
        hits_audio = cartoon_audio - without
        onsets = onset_times(hits_audio, RATE)
        for k in range(parity, len(cues), 2):
            t = cues[k]
            errors[t] = float(np.min(np.abs(onsets - t)))
            # ...and loud enough to be heard in the performance (within 12 dB of the music around it).
            lo, hi = to_samples(t, RATE), to_samples(t + 0.15, RATE)
            hit_rms = np.sqrt(np.mean(hits_audio[:, lo:hi] ** 2))
            rest_rms = np.sqrt(np.mean(without[:, lo:hi] ** 2)) + 1e-9
            assert 20 * np.log10(hit_rms / rest_rms) > -12, t
    assert len(errors) == len(cues) and max(errors.values()) <= frame, errors


def test_strong_cues_land_on_beats(cartoon_score):
    tmap = cartoon_score.tempo_map
    on = [h for h in cartoon_score.hits if h.on_beat]
    assert len(on) / len(cartoon_score.hits) >= 0.6
    for h in on:  # on a beat means the tempo map's beat at the cue's time is whole
        assert abs(tmap.beat_at(h.time) - round(tmap.beat_at(h.time))) * 60 / tmap.tempo_at(h.time) < 0.01
    # Every cut is a downbeat: each section starts on a whole beat, and the map bends the tempo only a little
    # inside a section (the last stretch before a cut may ritard or push more).
    for s in cartoon_score.sections:
        assert tmap.beat_at(s.start) == pytest.approx(s.start_beat, abs=1e-6)
        inside = [b for t, b in zip(tmap.times, tmap.bpm) if s.start <= t < s.end]
        assert all(abs(np.log(b / s.tempo)) <= 0.26 for b in inside)


def test_score_is_exactly_the_video_length(renderer, cartoon_audio, cartoon_truth):
    assert cartoon_audio.shape == (2, to_samples(cartoon_truth["duration"], RATE))
    odd = 3.3337
    audio = renderer.render_score(plan_score([Scene(0, odd, "a calm meadow")], odd), seed=1)
    assert audio.shape == (2, to_samples(odd, RATE))
    # The resolution is still sounding on the last frame (the final tonic holds to the end).
    last = audio[:, -to_samples(1 / 24, RATE) :]
    assert 20 * np.log10(np.sqrt(np.mean(last**2)) + 1e-12) > -60


def test_clips_reassemble_the_performance(renderer):
    from audiostory_core.assemble import assemble, assign_tails

    scenes = [Scene(0, 2.5, "a calm sunny meadow"), Scene(2.5, 5.0, "a calm sunny meadow, gentle breeze"),
              Scene(5.0, 6.5, "a dark hallway, a door slams", [Cue(5.8, "slam")])]
    score = plan_score(scenes, 6.5)
    plan = Plan("", score_events(score, gain_db=0.0), 6.5, score=score)
    assign_tails(plan, 0.25)
    clips = renderer.render(plan, seed=3)
    assert [c.event for c in clips] == plan.events
    track = assemble(clips, plan, RATE, crossfade=0.25)
    direct = renderer.render_score(score, seed=3)
    assert track.stems["score"].shape == direct.shape
    assert np.max(np.abs(track.stems["score"] - direct)) < 1e-5


def test_score_played_block_by_block_assembles_to_the_same_track(renderer, tmp_path, monkeypatch):
    """The streamed path (``render_iter``: parts of each event, a block at a time, into file tracks) gives the
    whole-array render to float precision: fades split across parts, the end fade, every join."""
    from audiostory_core.assemble import Assembler, assemble, assign_tails
    from audiostory_core.tracks import TrackStore, to_array

    scenes = [Scene(0, 2.5, "a calm sunny meadow"), Scene(2.5, 5.0, "a calm sunny meadow, gentle breeze"),
              Scene(5.0, 6.5, "a dark hallway, a door slams", [Cue(5.8, "slam")])]
    score = plan_score(scenes, 6.5)
    plan = Plan("", score_events(score, gain_db=-3.0), 6.5, score=score)
    assign_tails(plan, 0.25)
    whole = assemble(renderer.render(plan, seed=3), plan, RATE, crossfade=0.25).stems["score"]
    real = music_renderer.synthesize_blocks
    monkeypatch.setattr(music_renderer, "synthesize_blocks", lambda *a, **k: real(*a, **{**k, "block": 10007}))
    parts = list(renderer.render_iter(plan, seed=3))
    assert len(parts) > 3 * len(plan.events) and all(p.offset is not None for p in parts)
    assert max(p.audio.shape[-1] for p in parts) <= 10007
    with TrackStore(tmp_path) as store:
        asm = Assembler(plan, RATE, store=store, layout_rate=RATE)
        for part in parts:
            asm.add(part)
        streamed = asm.finish()
        assert [c.event for c in streamed.clips] == plan.events and all(c.audio.size == 0 for c in streamed.clips)
        np.testing.assert_allclose(to_array(streamed.stems["score"]), whole, atol=1e-6)


def test_same_seed_same_audio_other_seed_other_piece(renderer):
    scenes = [Scene(0, 3, "a bright playful cartoon, a ball bounces", [Cue(1.2, "impact")]),
              Scene(3, 6, "a dark stormy night, lightning", [Cue(4.5, "flash")])]
    score = plan_score(scenes, 6.0)
    a = renderer.render_score(score, seed=5)
    b = renderer.render_score(score, seed=5)
    c = renderer.render_score(score, seed=6)
    assert np.array_equal(a, b)
    assert a.shape == c.shape and not np.allclose(a, c, atol=1e-3)
    # A variation, not another cue sheet: the hits are still where the picture has them.
    assert [n.start for n in compose(score, 5).notes if n.role == "hit"] == \
        [n.start for n in compose(score, 6).notes if n.role == "hit"]
    assert compose(score, 5).theme != compose(score, 6).theme


def test_midi_reads_back_with_the_tempo_map_and_markers(tmp_path, cartoon_score):
    pretty_midi = pytest.importorskip("pretty_midi")
    comp = compose(cartoon_score, seed=0)
    path = write_midi(comp, tmp_path / "cartoon.score.mid")
    pm = pretty_midi.PrettyMIDI(str(path))
    times, tempi = pm.get_tempo_changes()
    tmap = cartoon_score.tempo_map
    assert np.allclose(times, tmap.times, atol=1e-3)
    assert np.allclose(tempi, tmap.bpm, rtol=1e-5)
    # One track per instrument, named, with its General MIDI program, and as many notes as were composed.
    assert sorted(i.name for i in pm.instruments) == sorted(comp.tracks)
    assert sum(len(i.notes) for i in pm.instruments) == len(comp.notes)
    # A marker at every cut, at the cut's time as the file's own tempo map places it.
    mid = mido.MidiFile(str(path))
    ticks, markers = 0, []
    for msg in mid.tracks[0]:
        ticks += msg.time
        if msg.type == "marker":
            markers.append(pm.tick_to_time(ticks))
    cuts = [s.start for s in cartoon_score.sections]
    assert np.allclose(markers, cuts, atol=1e-3)
    hits = [pm.tick_to_time(int(t)) for t in np.cumsum([m.time for m in mid.tracks[0]])[
        [k for k, m in enumerate(mid.tracks[0]) if m.type == "cue_marker"]]]
    assert np.allclose(sorted(hits), sorted(h.time for h in cartoon_score.hits), atol=1e-3)


def test_composer_writes_music_not_random_notes(cartoon_score):
    comp = compose(cartoon_score, seed=2)
    secs = [s for s in cartoon_score.sections if s.texture != "tacet"]
    # The piece ends on its last section's tonic: the lowest note sounding at the end is the tonic.
    end_beat = cartoon_score.tempo_map.beat_at(cartoon_score.duration) - 1e-6
    ringing = [n for n in comp.notes if n.start <= end_beat < n.end and n.track != "orchestral kit"]
    assert ringing and min(ringing, key=lambda n: n.pitch).pitch % 12 == secs[-1].tonic
    # Voice leading: over a long calm scene the strings' chord voices move by small steps from chord to chord.
    calm = compose(plan_score([Scene(0, 24, "a calm sunny meadow, a gentle breeze")], 24.0), seed=2)
    harmony = sorted((n for n in calm.notes if n.track == "strings" and n.role == "music"), key=lambda n: n.start)
    chords: dict[float, list[int]] = {}
    for n in harmony:
        chords.setdefault(round(n.start, 3), []).append(n.pitch)
    voiced = [sorted(v)[-3:] for v in chords.values() if len(v) >= 3]  # the three upper voices
    moves = [np.mean(np.abs(np.subtract(a, b))) for a, b in zip(voiced, voiced[1:])]
    assert len(moves) >= 6 and np.mean(moves) <= 2.5
    # Dynamics follow the picture: the most energetic section plays louder than the calmest.
    loud = max(secs, key=lambda s: s.energy)
    soft = min(secs, key=lambda s: s.energy)

    def mean_velocity(s):
        return np.mean([n.velocity for n in comp.notes if n.role == "music" and s.start_beat <= n.start < s.start_beat + s.beats])

    assert mean_velocity(loud) > mean_velocity(soft) + 10


def test_no_soundfont_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(music_renderer.SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(music_renderer, "SOUNDFONT_CANDIDATES", (str(tmp_path / "none.sf2"),))
    with pytest.raises(RenderError, match="fluid-soundfont-gm"):
        music_renderer.MusicRenderer()
    with pytest.raises(RenderError, match="not found"):
        music_renderer.MusicRenderer(tmp_path / "mine.sf2")


def test_music_modes_in_the_scene_planner(cartoon_truth):
    scenes = _truth_scenes(cartoon_truth)
    req = StoryRequest.from_scenes(scenes, cartoon_truth["duration"])
    off = ScenePlanner().plan(req)
    assert off.score is None and not any(e.layer == "score" for e in off.events)
    on = ScenePlanner(music="on").plan(req)
    music = [e for e in on.events if e.layer == "score"]
    assert on.score is not None and music
    assert music[0].start == 0 and music[-1].end == pytest.approx(cartoon_truth["duration"])
    assert {e.layer for e in on.events} == {"ambience", "fx", "score"}
    # The spot effects stay exactly where they were; the beds step back under the music.
    assert [e.to_dict() for e in on.events if e.layer == "fx"] == [e.to_dict() for e in off.events if e.layer == "fx"]
    beds_off = [e.gain_db for e in off.events if e.layer == "ambience"]
    assert [e.gain_db for e in on.events if e.layer == "ambience"] == [g - 8.0 for g in beds_off]
    only = ScenePlanner(music="only").plan(req)
    assert {e.layer for e in only.events} == {"score"}
    assert Plan.from_dict(json.loads(json.dumps(on.to_dict()))).score.to_dict() == on.score.to_dict()
    with pytest.raises(PlanError, match="music mode"):
        ScenePlanner(music="loud")


def test_auto_music_skips_dialogue_scenes_in_live_action():
    from dubkit.scenes.look import mark_speech

    live = [Scene(0, 4, "a street", features={"cartoon": 0.1}), Scene(4, 8, "a street at night", features={"cartoon": 0.1})]
    mark_speech(live, [(0.5, 3.7), (7.9, 8.0)])  # someone talks through the first shot
    assert [round(s.features["speech"], 3) for s in live] == [0.8, 0.025]
    assert tacet_scenes("auto", live) == {0}
    drawn = [Scene(0, 4, "a cartoon", features={"cartoon": 0.9, "speech": 0.8})]
    assert tacet_scenes("auto", drawn) == set()
    score = plan_score(live, 8.0, tacet={0})
    assert [s.texture for s in score.sections][0] == "tacet"
    assert [e.start for e in score_events(score)] == [4.0]


def test_story_instruction_can_ask_for_music():
    events = [SubEvent("playful orchestral music", 0.0, 6.0, layer="narrative"),
              SubEvent("heavy rain", 6.0, 6.0, layer="narrative")]
    kept, score = score_story(events, 12.0, mode="auto")
    assert score is not None and score.style == "orchestral"
    assert [(e.layer, e.start) for e in kept] == [("narrative", 6.0), ("score", 0.0)]
    assert score.sections[0].mood == "playful" and score.sections[-1].texture == "tacet"


def test_deliverables_carry_the_score(tmp_path, renderer):
    """A dub with music delivers <name>.score.mid (the piece as heard), a score stem, a score track in the
    timeline and the cue sheet in the report and plan.json."""
    import opentimelineio as otio
    import soundfile as sf

    from audiostory_core.assemble import assemble, assign_tails
    from dubkit.deliver.package import Picture, write_deliverables
    from dubkit.soundtrack.master import Mastered
    from dubkit.soundtrack.mix import MixResult

    scenes = [Scene(0, 3, "a bright playful cartoon", [Cue(1.5, "impact")]), Scene(3, 6, "a calm sunny meadow")]
    plan = ScenePlanner(music="only").plan(StoryRequest.from_scenes(scenes, 6.0))
    assign_tails(plan, 0.25)
    track = assemble(renderer.render(plan, seed=4), plan, RATE, crossfade=0.25)
    n = track.audio.shape[-1]
    mix = MixResult(track.audio, "replace", np.ones(n, np.float32), None, RATE)
    out = write_deliverables(tmp_path, "clip", picture=Picture(tmp_path / "clip.mp4", 6.0, 24.0, [3.0], thumbnails=[]),
                             plan=plan, mastered=Mastered(audio=track.audio, mix=mix, loudness=None, speech=[]),
                             stems=track.stems)
    assert out.score == out.folder / "clip.score.mid" and out.score.is_file()
    assert plan.score.seed == 4
    # The delivered MIDI is the composition that was rendered with seed 4, note for note.
    heard = compose(plan.score, 4)
    assert sum(len(t) for t in mido.MidiFile(str(out.score)).tracks[1:]) > 2 * len(heard.notes)
    ons = sorted(m.note for t in mido.MidiFile(str(out.score)).tracks[1:] for m in t if m.type == "note_on")
    assert ons == sorted(x.pitch for x in heard.notes)
    stem, sr = sf.read(str(out.stems["score"]), always_2d=True)
    assert sr == RATE and stem.shape[0] == to_samples(6.0, RATE)
    tl = otio.adapters.read_from_file(str(out.timeline))
    assert "score" in [t.name for t in tl.tracks]
    page = out.report.read_text(encoding="utf-8")
    assert "<h2>Score</h2>" in page and plan.score.sections[0].key_name in page
    doc = json.loads(out.plan.read_text())
    assert doc["plan"]["score"]["sections"][0]["mood"] == plan.score.sections[0].mood


def test_router_sends_the_score_to_the_composer(renderer):
    """One renderer for the pipeline: score events to the composer, the rest to the other renderer; a plan with
    score events but no cue sheet (an LLM's) is scored from its captions and spot effects."""
    from audiostory_core.render.base import Clip, event_samples
    from audiostory_core.render.router import LayerRouter

    class Silent:
        name, sample_rate = "silent", RATE

        def render(self, plan, conditioning=None, *, seed=0):
            return [Clip(np.zeros((2, event_samples(e, RATE)), np.float32), RATE, e) for e in plan.events]

    events = [SubEvent("music: playful orchestral cartoon music", 0.0, 4.0, layer="score", kind="music"),
              SubEvent("a door slams", 2.0, 1.0, layer="fx", kind="slam"),
              SubEvent("music: a tense chase", 4.0, 3.0, layer="score", kind="music")]
    plan = Plan("", events, 7.0)
    router = LayerRouter(Silent(), {"score": renderer})
    clips = router.render(plan, seed=1)
    assert [c.event for c in clips] == events
    assert plan.score is not None and [h.time for h in plan.score.hits] == [2.0]
    assert np.abs(clips[0].audio).max() > 0.01 and np.abs(clips[1].audio).max() == 0
    assert router.name == "silent + composer (score)"


def test_a_shot_looks_drawn_or_filmed(cartoon):
    """The cartoon sample's shots measure as drawn; a filmed-looking (noisy, textured) frame does not."""
    from dubkit.scenes.look import shot_look
    from dubkit.video.scan import scan_video
    from dubkit.video.types import ShotFrames

    scan = scan_video(cartoon)
    looks = [shot_look(f) for f in scan.frames]
    assert all(x["cartoon"] >= 0.5 for x in looks)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:180, 0:320]
    filmed = np.clip(120 + 40 * np.sin(xx / 7.0) * np.cos(yy / 5.0) + rng.normal(0, 12, (180, 320)), 0, 255)
    frame = np.repeat(filmed[..., None], 3, axis=2).astype(np.uint8)
    assert shot_look(ShotFrames([frame], [0.0], scan.frames[0].features))["cartoon"] < 0.5
    # Brightness and motion are the scan's own: the dark storm is darker and busier than the calm meadow.
    assert looks[4]["brightness"] < looks[0]["brightness"] and looks[4]["motion"] > looks[0]["motion"]
