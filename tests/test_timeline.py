"""OTIO timeline (tracks, clips, exact ranges, markers) and the text deliverables (SRT, plan JSON)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import soundfile as sf

from audiostory_core.plan.types import Plan, SubEvent
from dubkit.deliver.subtitles import srt_time, write_plan_json, write_srt
from dubkit.deliver.timeline import write_timeline
from dubkit.errors import InputError

SR = 48000
FPS = 25.0
DURATION = 12.0
EVENTS = [
    SubEvent("rain on a tin roof", 0.0, 6.0, layer="ambience"),
    SubEvent("wind through a narrow street", 6.0, 6.0, layer="ambience"),
    SubEvent("door slams", 2.48, 0.8, layer="fx", kind="impact"),
    SubEvent("glass shatters", 2.9, 1.2, layer="fx"),  # overlaps the slam → second fx lane
    SubEvent("footsteps on gravel", 7.123456, 2.0, layer="fx"),
    SubEvent("a low drone swells", 9.0, 5.0, layer="narrative"),  # runs past the end → clamped
]
CUTS = [4.0, 8.52]


@pytest.fixture()
def timeline(tmp_path):
    pkg = tmp_path / "clip.dubkit"
    (pkg / "stems").mkdir(parents=True)
    stems = {}
    for layer in ("ambience", "fx", "narrative"):
        stems[layer] = pkg / "stems" / f"{layer}.wav"
        sf.write(stems[layer], np.zeros((int(DURATION * SR), 2), np.float32), SR, subtype="PCM_24")
    video = tmp_path / "clip.dubbed.mp4"
    video.write_bytes(b"")
    path = write_timeline(
        pkg / "clip.otio", video_path=video, video_duration=DURATION, fps=FPS, stem_paths=stems,
        events=EVENTS, cuts=CUTS, sample_rate=SR,
    )  # fmt: skip
    return path, stems, video


def test_timeline_reads_back_with_expected_tracks_and_clips(timeline):
    path, stems, video = timeline
    tl = otio.adapters.read_from_file(str(path))
    assert [t.name for t in tl.tracks] == ["Video", "ambience", "fx", "fx 2", "narrative"]
    assert [t.kind for t in tl.tracks] == [otio.schema.TrackKind.Video] + [otio.schema.TrackKind.Audio] * 4
    clips = {t.name: list(t.find_clips()) for t in tl.tracks}
    assert [c.name for c in clips["ambience"]] == ["rain on a tin roof", "wind through a narrow street"]
    assert [c.name for c in clips["fx"]] == ["door slams", "footsteps on gravel"]
    assert [c.name for c in clips["fx 2"]] == ["glass shatters"]
    assert sum(len(c) for c in clips.values()) == 1 + len(EVENTS)
    # Every track spans the whole video, exactly.
    for track in tl.tracks:
        assert track.duration().to_seconds() == pytest.approx(DURATION, abs=1e-9)


def test_clip_ranges_are_exact_samples_and_sit_at_their_event_times(timeline):
    path, stems, _ = timeline
    tl = otio.adapters.read_from_file(str(path))
    by_name = {c.name: (c, t) for t in tl.tracks for c in t.find_clips()}
    for ev in EVENTS:
        clip, track = by_name[ev.caption]
        sr = clip.source_range
        end = min(ev.end, DURATION)
        assert sr.start_time.rate == SR and sr.duration.rate == SR
        assert sr.start_time.value == int(np.floor(ev.start * SR + 0.5))  # same rounding as assembly
        assert sr.start_time.value + sr.duration.value == int(np.floor(end * SR + 0.5))
        # The clip sits on the track at its event time (the stem is time-aligned with the video).
        placed = track.range_of_child(clip)
        assert placed.start_time.value == sr.start_time.value
        target = (path.parent / clip.media_reference.target_url).resolve()
        assert target == stems[ev.layer].resolve() and target.is_file()
        assert clip.media_reference.available_range.duration.value == DURATION * SR
        assert clip.metadata["dubkit"]["layer"] == ev.layer


def test_video_clip_and_cut_markers(timeline):
    path, _, video = timeline
    tl = otio.adapters.read_from_file(str(path))
    vtrack = tl.tracks[0]
    (vclip,) = list(vtrack.find_clips())
    assert vclip.source_range.duration.value == DURATION * FPS and vclip.source_range.duration.rate == FPS
    assert (path.parent / vclip.media_reference.target_url).resolve() == video.resolve()
    frames = [m.marked_range.start_time.value for m in vtrack.markers]
    assert frames == [round(c * FPS) for c in CUTS]
    assert all(m.marked_range.start_time.rate == FPS for m in vtrack.markers)


def test_missing_stem_gives_missing_reference_and_bad_duration_raises(tmp_path):
    path = write_timeline(
        tmp_path / "t.otio", video_path=tmp_path / "v.mp4", video_duration=5.0, fps=24.0, stem_paths={},
        events=[SubEvent("hum", 1.0, 2.0, layer="ambience")],
    )  # fmt: skip
    tl = otio.adapters.read_from_file(str(path))
    (clip,) = list(tl.tracks[1].find_clips())
    assert isinstance(clip.media_reference, otio.schema.MissingReference)
    with pytest.raises(InputError, match="positive"):
        write_timeline(tmp_path / "x.otio", video_path="v.mp4", video_duration=0, fps=24, stem_paths={}, events=[])


def test_srt_lists_every_event_in_time_order(tmp_path):
    path = write_srt(tmp_path / "events.srt", EVENTS, duration=DURATION)
    blocks = path.read_text(encoding="utf-8").strip().split("\n\n")
    assert len(blocks) == len(EVENTS)
    first = blocks[0].splitlines()
    assert first == ["1", "00:00:00,000 --> 00:00:06,000", "[ambience] rain on a tin roof"]
    times = [b.splitlines()[1] for b in blocks]
    assert "00:00:07,123 --> 00:00:09,123" in times
    assert times[-1].endswith("00:00:12,000")  # clamped to the video
    assert srt_time(3725.0456) == "01:02:05,046"


def test_plan_json_round_trips_and_is_strict_json(tmp_path):
    plan = Plan(reasoning="rain, then wind", events=EVENTS, duration=DURATION, planner="scene")
    path = write_plan_json(
        tmp_path / "plan.json", plan, loudness={"input_lufs": float("-inf")}, speech=np.array([[1.0, 2.0]]),
        video=Path("clip.mp4"),
    )  # fmt: skip
    doc = json.loads(path.read_text())
    assert Plan.from_dict(doc["plan"]).events == EVENTS
    assert doc["loudness"]["input_lufs"] is None and doc["speech"] == [[1.0, 2.0]] and doc["video"] == "clip.mp4"


# ------------------------------------------------------------------------------------------- the whole package


def _package_inputs(tmp_path):
    from dubkit.deliver.package import Picture
    from dubkit.soundtrack.loudness import normalize_loudness
    from dubkit.soundtrack.master import Mastered
    from dubkit.soundtrack.mix import mix_tracks

    n = int(DURATION * SR)
    rng = np.random.default_rng(0)
    layers = {
        "ambience": (0.05 * rng.standard_normal((2, n))).astype(np.float32),
        "fx": np.zeros((2, n), np.float32),
        "narrative": (0.02 * rng.standard_normal((2, n))).astype(np.float32),
    }
    layers["fx"][:, int(2.48 * SR) : int(2.48 * SR) + 2000] = 0.6
    original = (0.03 * rng.standard_normal((2, n))).astype(np.float32)
    speech = [(1.0, 3.0), (6.0, 7.5)]
    mixed = mix_tracks(sum(layers.values()), original, SR, mode="duck", speech=speech)
    final, loud = normalize_loudness(mixed.audio, SR, target_lufs=-23.0)
    video = tmp_path / "clip.dubbed.mp4"
    video.write_bytes(b"")
    plan = Plan(reasoning="rain, then wind", events=list(EVENTS), duration=DURATION, planner="scene")
    return dict(
        picture=Picture(video, DURATION, FPS, CUTS, thumbnails=[(0.0, np.zeros((90, 160, 3), np.uint8))]),
        plan=plan, mastered=Mastered(audio=final, mix=mixed, loudness=loud, speech=speech), stems=layers,
        backends={"renderer": "foley"}, timings={"render": 1.0},
    ), mixed, loud


def test_deliverables_package_is_complete_and_consistent(tmp_path):
    from dubkit.deliver.package import write_deliverables

    kwargs, mixed, loud = _package_inputs(tmp_path)
    out = write_deliverables(tmp_path, "clip", **kwargs)
    assert out.folder == tmp_path / "clip.dubkit" and out.folder.is_dir()
    names = sorted(p.relative_to(out.folder).as_posix() for p in out.folder.rglob("*") if p.is_file())
    assert names == [
        "clip.events.srt", "clip.otio", "clip.plan.json", "report.html",
        "stems/ambience.wav", "stems/dialogue.wav", "stems/fx.wav", "stems/narrative.wav",
    ]  # fmt: skip
    # Stems (24-bit) sum to the normalised mix before the limiter.
    total = sum(sf.read(p, dtype="float32", always_2d=True)[0].T for p in out.stems.values())
    np.testing.assert_allclose(total, mixed.audio * np.float32(10 ** (loud.gain_db / 20)), atol=1e-5)
    # The timeline's clips point at the stems inside the package, after the rename.
    tl = otio.adapters.read_from_file(str(out.timeline))
    for track in tl.tracks[1:]:
        for clip in track.find_clips():
            assert (out.timeline.parent / clip.media_reference.target_url).resolve().is_file()
    doc = json.loads(out.plan.read_text())
    assert doc["mix_mode"] == "duck" and doc["loudness"]["gain_db"] == pytest.approx(loud.gain_db)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_deliverables_replace_an_existing_package_and_keep_it_on_failure(tmp_path, monkeypatch):
    import dubkit.deliver.package as package

    kwargs, _, _ = _package_inputs(tmp_path)
    old = tmp_path / "clip.dubkit"
    old.mkdir()
    (old / "stale.txt").write_text("old")
    kwargs_no_stems = dict(kwargs, stems=None)
    out = package.write_deliverables(tmp_path, "clip", **kwargs_no_stems)
    assert not (out.folder / "stale.txt").exists() and out.stems == {} and out.report.is_file()

    def broken(*a, **k):
        raise OSError("disk full")

    (out.folder / "marker.txt").write_text("keep me")
    monkeypatch.setattr(package, "write_report", broken)
    with pytest.raises(OSError):
        package.write_deliverables(tmp_path, "clip", **kwargs)
    assert (out.folder / "marker.txt").read_text() == "keep me"  # the previous package is untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    from dubkit.errors import OutputError

    with pytest.raises(OutputError, match="does not exist"):
        package.write_deliverables(tmp_path / "missing", "clip", **kwargs)
