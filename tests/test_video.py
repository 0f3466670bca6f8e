"""Video understanding on the committed cartoon: probe facts, frame-accurate cuts, keyframes, bounded memory,
variable frame rate and rotation handled, and bad input refused with a message a user can act on."""
from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from dubkit.errors import InputError, MediaToolError
from dubkit.video import camera
from dubkit.video.camera import CameraTracker
from dubkit.video.features import _median, _specks
from dubkit.video.keyframes import KeyframeCollector, ShotReservoir
from dubkit.video.probe import probe
from dubkit.video.scan import scan_video
from dubkit.video.types import VideoScan

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CARTOON = SAMPLES / "cartoon.mp4"
TRUTH = json.loads((SAMPLES / "cartoon.truth.json").read_text())
FPS = TRUTH["fps"]


@functools.lru_cache(maxsize=1)
def scan_cartoon() -> tuple[VideoScan, int]:
    """The sample, scanned once per test session (shared with test_visual_cues), and the scan's peak
    Python-heap use as tracemalloc saw it."""
    tracemalloc.start()
    try:
        scan = scan_video(CARTOON, probe(CARTOON))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return scan, peak


@pytest.fixture(scope="session")
def cartoon_scan() -> VideoScan:
    return scan_cartoon()[0]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def decode_frames(path: Path, indices: list[int], width: int, height: int) -> list[np.ndarray]:
    """Frames ``indices`` as ffmpeg shows them (display orientation), scaled: what the scan must match.
    One ffmpeg run for all of them."""
    select = "+".join(f"eq(n\\,{i})" for i in sorted(set(indices)))
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"select={select},scale={width}:{height}",
         "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    frames = np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)
    by_index = dict(zip(sorted(set(indices)), frames))
    return [by_index[i] for i in indices]


# ----------------------------------------------------------------------------------------------------- probe


def test_probe_reports_the_sample():
    info = probe(CARTOON)
    assert info.duration == pytest.approx(TRUTH["duration"], abs=1e-3)
    assert (info.width, info.height) == (TRUTH["width"], TRUTH["height"])
    assert info.fps == pytest.approx(FPS)
    assert info.frame_count == TRUTH["frame_count"]
    assert info.video_codec == "h264" and info.has_video
    assert not info.variable_frame_rate
    assert info.rotation == 0
    assert not info.has_audio and info.audio_sample_rate == 0 and info.audio_channels == 0


def test_probe_reports_audio(tmp_path):
    out = tmp_path / "with_audio.mp4"
    ffmpeg("-i", str(CARTOON), "-f", "lavfi", "-i", "sine=frequency=300:duration=30:sample_rate=44100",
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-ac", "2", "-shortest", str(out))  # fmt: skip
    info = probe(out)
    assert info.has_audio and info.audio_sample_rate == 44100 and info.audio_channels == 2
    assert info.frame_count == TRUTH["frame_count"]


# ----------------------------------------------------------------------------------------------------- shots


def test_every_cut_found_to_the_frame_and_no_extra_cut(cartoon_scan):
    starts = [s.start_frame for s in cartoon_scan.shots[1:]]
    assert len(starts) == len(TRUTH["cut_frames"]), f"found cuts at frames {starts}, truth {TRUTH['cut_frames']}"
    for found, truth in zip(starts, TRUTH["cut_frames"]):
        assert abs(found - truth) <= 1
    for shot, truth in zip(cartoon_scan.shots[1:], TRUTH["cuts"]):
        assert shot.start == pytest.approx(truth, abs=1.01 / FPS)


def test_shots_tile_the_whole_duration(cartoon_scan):
    shots = cartoon_scan.shots
    assert shots[0].start == 0.0 and shots[0].start_frame == 0
    assert shots[-1].end == pytest.approx(TRUTH["duration"], abs=1e-6)
    assert shots[-1].end_frame == TRUTH["frame_count"]
    for a, b in zip(shots, shots[1:]):
        assert a.end == b.start and a.end_frame == b.start_frame  # end exclusive, no gaps
    assert [s.index for s in shots] == list(range(len(shots)))


def test_lightning_is_not_a_cut(cartoon_scan):
    rain = next(s for s in TRUTH["shots"] if s["name"] == "rain")
    inside = [s.start_frame for s in cartoon_scan.shots if rain["start_frame"] < s.start_frame < rain["end_frame"]]
    assert inside == []


# ----------------------------------------------------------------------------------------------------- features


def test_features_cover_every_frame_with_true_times(cartoon_scan):
    f = cartoon_scan.features
    assert len(f) == TRUTH["frame_count"]
    np.testing.assert_allclose(f.times, np.arange(len(f)) / FPS, atol=1e-5)
    assert f.centroid.shape == (len(f), 2) and f.color.shape == (len(f), 3)
    for shot, frames in zip(cartoon_scan.shots, cartoon_scan.frames):
        assert len(frames.features) == shot.end_frame - shot.start_frame
    lightning = [i["frame"] for i in TRUTH["impacts"] if i["kind"] == "flash"]
    for k in lightning:
        assert f.brightness[k] > f.brightness[k - 1] + 0.3  # the flash frame really is brighter
    door = next(s for s in TRUTH["shots"] if s["name"] == "door")
    assert f.motion[door["start_frame"] + 2 : door["start_frame"] + 25].max() < 1e-3  # the open door waits, still
    assert np.isnan(f.centroid[door["start_frame"] + 5]).all()  # nothing moved: no centre of motion



def test_noise_median_is_numpys_to_the_bit():
    """The noise bar's median (a sort, faster than np.median's partition on frame differences) must be
    np.median's value: quantised differences with many ties, odd and even counts, a masked subset."""
    rng = np.random.default_rng(7)
    gray = rng.integers(0, 256, (144, 256)).astype(np.float32) * (1 / 255)
    prev = np.clip(gray + rng.integers(-4, 5, gray.shape) * (rng.random(gray.shape) < 0.4) / 255, 0, 1)
    diff = np.abs(gray - prev.astype(np.float32))
    for values in (diff[::2, ::2], diff[::2, ::2][diff[::2, ::2] > 0], diff[:7, :9], rng.random(1001, np.float32),
                   rng.random(1000, np.float32)):
        assert _median(values) == float(np.median(values))
        assert _median(values) == _median(values)  # the input is left alone


@pytest.mark.parametrize("size", [(144, 256), (720, 1280)])  # 16-bit labels, and 32-bit where they may not fit
def test_specks_counts_small_blobs_not_streaks(size):
    h, w = size
    mask = np.zeros(size, bool)
    ys, xs = np.meshgrid(np.arange(8, h // 2, 12), np.arange(8, w - 8, 12), indexing="ij")
    for y, x in zip(ys.ravel()[:60], xs.ravel()[:60]):
        mask[y : y + 2, x : x + 2] = True  # 60 flakes, 2x2 pixels, in the top half
    mask[h - 10, :] = True  # a long edge: not a speck
    (density, spread, changed), small = _specks(mask)
    assert density == pytest.approx(60 * 1e4 / (w * h))
    assert spread == pytest.approx(len({(int(x * 4 // w), int(y * 4 // h)) for y, x in
                                        zip(ys.ravel()[:60] + 0.5, xs.ravel()[:60] + 0.5)}) / 16)  # fmt: skip
    assert changed == pytest.approx(mask.mean())
    flakes = small()
    assert flakes.sum() == 60 * 4 and not flakes[h - 10].any()


def test_camera_tracks_the_strongest_half_first_and_answers_as_all_the_points_do():
    """The tracker stops after the strongest half of the points when enough of them stood still; on a real
    clip (a street: a camera still at times, moving at others) every frame must get the answer that tracking all
    the points at once gives: STILL, UNKNOWN, or the very same point pairs."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(SAMPLES / "real" / "street_bikes.mp4"), "-frames:v",
                          "150", "-vf", "scale=256:144", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True, check=True).stdout  # fmt: skip
    tracker, seen = CameraTracker(), {"early": 0, "still": 0, "moved": 0}
    for gray in np.frombuffer(raw, np.uint8).reshape(-1, 144, 256):
        prev = tracker._prev
        tracker.step(gray)
        if prev is None:
            continue
        pts = cv2.goodFeaturesToTrack(prev, maxCorners=120, qualityLevel=0.01, minDistance=3, blockSize=3)
        if pts is None or len(pts) < 8:
            continue
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, tracker._prev, pts, None, **camera._LK)  # all at once
        ok = status.ravel() == 1
        p0, p1 = pts.reshape(-1, 2)[ok], nxt.reshape(-1, 2)[ok]
        still = np.linalg.norm(p1 - p0, axis=1) < tracker.still_px
        got = tracker._track(prev, tracker._prev, pts)
        if ok.sum() < 8:
            assert got is camera.UNKNOWN
        elif still.mean() >= 0.3:
            assert got is camera.STILL
            half = still[: ok[: (len(pts) + 1) // 2].sum()].sum()
            seen["early" if half >= 8 and half / len(pts) >= 0.3 else "still"] += 1
        else:
            assert np.array_equal(got[0], p0) and np.array_equal(got[1], p1)
            seen["moved"] += 1
    assert min(seen.values()) > 0, seen  # each way through the tracker was taken


# ----------------------------------------------------------------------------------------------------- keyframes


def test_keyframes_per_shot_are_evenly_spaced_and_show_the_right_frame(cartoon_scan):
    for shot, frames in zip(cartoon_scan.shots, cartoon_scan.frames):
        assert len(frames.keyframes) == 3
        for k, (im, t) in enumerate(zip(frames.keyframes, frames.keyframe_times)):
            assert im.shape == (180, 320, 3) and im.dtype == np.uint8
            third = shot.duration / 3
            assert shot.start + k * third <= t < shot.start + (k + 1) * third  # one per third of the shot
    # The keyframe is the frame at its timestamp (compare the middle keyframe of every shot with ffmpeg's decode).
    middle = [round(frames.keyframe_times[1] * FPS) for frames in cartoon_scan.frames]
    for frames, ref in zip(cartoon_scan.frames, decode_frames(CARTOON, middle, 320, 180)):
        assert np.abs(ref.astype(int) - frames.keyframes[1]).mean() < 3.0


def test_reservoir_holds_a_bounded_evenly_spaced_subset():
    res = ShotReservoir(capacity=16)
    tiny = np.zeros((2, 2, 3), np.uint8)
    most = 0
    for i in range(100_000):
        res.add(i, i / 24, tiny)
        most = max(most, len(res.held))
    assert most <= 16
    picks = res.pick(3)
    assert [p.index for p in picks] == sorted(p.index for p in picks)
    for k, p in enumerate(picks):
        target = (k + 0.5) * 100_000 / 3
        assert abs(p.index - target) <= res.stride  # within one stride of the centre of its third
    offsets = [h.offset for h in res.held]
    assert len(set(np.diff(offsets))) == 1  # what it holds is evenly spaced


def test_keyframe_collector_memory_does_not_grow_with_the_video():
    col = KeyframeCollector(per_shot=3, delay=9)
    tiny = np.zeros((2, 2, 3), np.uint8)
    cuts = set(range(5000, 60_000, 5000))
    most = 0
    for i in range(60_000):
        col.push(i, i / 24, tiny, cuts)
        most = max(most, col.held_frames)
    shots = col.finish(cuts)
    assert most <= col.delay + col.capacity + 1
    assert len(shots) == 12 and all(len(s) == 3 for s in shots)
    assert all(5000 * k <= idx < 5000 * (k + 1) for k, s in enumerate(shots) for idx, _, _ in s)


def test_scan_never_holds_the_decoded_video():
    scan, peak = scan_cartoon()
    whole = TRUTH["frame_count"] * 180 * 320 * 3  # every frame at keyframe size: 124 MB
    assert peak < whole / 4, f"peak {peak / 1e6:.1f} MB"


def test_a_scan_started_early_reads_ahead_and_gives_the_very_same_scan(cartoon_scan):
    # The command line starts the decoding before it loads the rest of dubkit: ffmpeg must really be decoding
    # meanwhile, and the scan that takes it over must be the scan of the file, frame for frame.
    import time

    from dubkit.video.early import start_scan

    with start_scan(CARTOON) as early:
        decoder = early.decoder
        frames = decoder.frames
        deadline = time.monotonic() + 30
        while len(frames.queue) < 100 and time.monotonic() < deadline:  # far more than the usual read-ahead
            time.sleep(0.01)
        assert len(frames.queue) >= 100
        scan = scan_video(CARTOON, early.info, early=early)
        assert early.decoder is None  # taken over: the caller's `with` has nothing left to close
        assert not frames.queue and decoder.proc.returncode == 0  # its frames were the scan's, to the end
    assert [(s.start_frame, s.end_frame) for s in scan.shots] == [(s.start_frame, s.end_frame) for s in cartoon_scan.shots]
    assert np.array_equal(scan.features.times, cartoon_scan.features.times)
    assert np.array_equal(scan.features.motion, cartoon_scan.features.motion)
    for a, b in zip(scan.frames, cartoon_scan.frames):
        assert a.keyframe_times == b.keyframe_times and all(np.array_equal(x, y) for x, y in zip(a.keyframes, b.keyframes))


def test_an_early_start_that_does_not_fit_the_scan_or_is_never_used_is_stopped():
    from dubkit.video.early import start_scan

    early = start_scan(CARTOON, keyframe_width=320)
    proc = early.decoder.proc
    scan = scan_video(CARTOON, early.info, keyframe_width=448, keyframes_per_shot=1)  # another size: decoded anew
    assert len(scan.shots) == len(TRUTH["cuts"]) + 1
    scan = scan_video(CARTOON, early.info, keyframe_width=448, keyframes_per_shot=1, early=early)
    assert proc.poll() is not None and early.decoder is None and len(scan.shots) == len(TRUTH["cuts"]) + 1
    with start_scan(CARTOON) as unused:
        proc = unused.decoder.proc
    assert proc.poll() is not None  # ffmpeg does not outlive the `with`


# ----------------------------------------------------------------------------------------------------- VFR, rotation


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory) -> Path:
    """Meadow tail + ball shot at 24 fps, then the door shot played at 30 fps: a variable-frame-rate file."""
    out = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    ffmpeg("-i", str(CARTOON), "-filter_complex",
           "[0:v]trim=start_frame=96:end_frame=228,setpts=PTS-STARTPTS,settb=1/120[a];"
           "[0:v]trim=start_frame=228:end_frame=324,settb=1/120,setpts=N*4[b];[a][b]concat=n=2:v=1[v]",
           "-map", "[v]", "-fps_mode", "passthrough", "-enc_time_base", "1/120", "-video_track_timescale", "120",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", str(out))  # fmt: skip
    return out


def test_variable_frame_rate_is_detected_and_times_stay_true(vfr_clip):
    from dubkit.scenes.base import describe_scenes
    from dubkit.scenes.visual_cues import VisualCuesCaptioner

    info = probe(vfr_clip)
    assert info.variable_frame_rate
    assert info.frame_count == 132 + 96
    assert info.duration == pytest.approx(132 / 24 + 96 / 30, abs=0.01)
    scan = scan_video(vfr_clip, info)
    assert [s.start for s in scan.shots] == pytest.approx([0.0, 12 / 24, 132 / 24], abs=1e-3)
    assert scan.shots[-1].end == pytest.approx(info.duration)
    cues = [c for s in describe_scenes(scan, VisualCuesCaptioner()) for c in s.cues]
    expected = [(i["time"] - 96 / 24, i["kind"]) for i in TRUTH["impacts"] if 108 <= i["frame"] < 228]
    expected.append((132 / 24 + (280 - 228) / 30, "slam"))  # the door shot runs at 30 fps
    for t, kind in expected:
        near = [c for c in cues if c.kind == kind and abs(c.time - t) <= 1 / 30 + 1e-6]
        assert near, f"no {kind} cue within a frame of {t:.3f}s: {[(c.kind, round(c.time, 3)) for c in cues]}"


def test_rotation_is_reported_and_keyframes_are_upright(tmp_path):
    plain, rotated = tmp_path / "plain.mp4", tmp_path / "rotated.mp4"
    ffmpeg("-i", str(CARTOON), "-frames:v", "48", "-c:v", "libx264", "-preset", "ultrafast", str(plain))
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    info = probe(rotated)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (854, 480)  # coded size; display is portrait
    scan = scan_video(rotated, info)
    im, t = scan.frames[0].keyframes[1], scan.frames[0].keyframe_times[1]
    assert im.shape[0] > im.shape[1] and im.shape[1] == 320  # upright (portrait), 320 wide
    [ref] = decode_frames(rotated, [round(t * FPS)], im.shape[1], im.shape[0])  # ffmpeg applies the display matrix
    assert np.abs(ref.astype(int) - im).mean() < 3.0


@pytest.mark.parametrize("tags", [
    ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"],  # HD: the BT.709 matrix
    ["-colorspace", "bt470bg"],  # SD: BT.601's
    ["-pix_fmt", "yuvj420p", "-color_range", "pc"],  # full range (phones, screen recordings)
])
def test_frames_have_the_colours_a_player_shows(tmp_path, tags):
    # Saturated colour bars, where reading BT.709 as BT.601 (or full range as limited) is off by 10-40 levels.
    from dubkit.video.decode import decode_frames as scan_frames

    clip = tmp_path / "bars.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24:duration=1", "-c:v", "libx264", "-preset",
           "ultrafast", "-crf", "12", *tags, str(clip))  # fmt: skip
    info = probe(clip)
    frames = [im for _, im in scan_frames(clip, info, 448, 252)]
    assert len(frames) == 24
    [ref] = decode_frames(clip, [12], 448, 252)  # ffmpeg's own RGB, honouring the stream's tags
    # Colours, not edges (the two scalers place the chroma of a sharp edge a pixel apart): 16x16 pixel means.
    means = [im.reshape(252 // 12, 12, 448 // 16, 16, 3).astype(float).mean(axis=(1, 3)) for im in (ref, frames[12])]
    diff = np.abs(means[0] - means[1])
    assert diff.mean() < 1.5 and diff.max() <= 6, (diff.mean(), diff.max())


# ----------------------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    data = CARTOON.read_bytes()
    files = {
        "missing": d / "nope.mp4",
        "folder": d,
        "text": d / "notes.mp4",
        "empty": d / "empty.mp4",
        "truncated": d / "half.mp4",
        "no_index": d / "no_moov.mp4",
        "audio_only": d / "tone.m4a",
        "still": d / "still.png",
    }
    files["text"].write_text("this is not a video\n" * 50)
    files["empty"].touch()
    files["truncated"].write_bytes(data[: len(data) // 2])  # faststart: header intact, frames missing
    whole = d / "moov_at_end.mp4"
    ffmpeg("-i", str(CARTOON), "-c", "copy", str(whole))  # no faststart: the index is written last
    files["no_index"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(files["audio_only"]))
    ffmpeg("-i", str(CARTOON), "-frames:v", "1", str(files["still"]))
    return files


@pytest.mark.parametrize(
    "case, needles",
    [
        ("missing", ["no such file", "check the path"]),
        ("folder", ["folder", "video file"]),
        ("text", ["not a media file"]),
        ("empty", ["empty", "0 bytes"]),
        ("truncated", ["truncated", "again"]),
        ("no_index", ["truncated", "moov"]),
        ("audio_only", ["no video stream", "only audio"]),
        ("still", ["still image"]),
    ],
)
def test_bad_input_is_refused_with_an_actionable_line(bad_files, case, needles):
    with pytest.raises(InputError) as e:
        probe(bad_files[case])
    msg = str(e.value)
    assert "\n" not in msg and str(bad_files[case]) in msg
    for needle in needles:
        assert needle in msg, msg


def test_scan_refuses_bad_input_too(bad_files):
    with pytest.raises(InputError, match="truncated"):
        scan_video(bad_files["truncated"])


def test_missing_ffprobe_says_to_install_ffmpeg(tmp_path):
    with pytest.raises(MediaToolError, match="install ffmpeg"):
        probe(CARTOON, ffprobe=str(tmp_path / "no-ffprobe-here"))


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")
def test_probe_accepts_str_and_path():
    assert probe(str(CARTOON)).frame_count == probe(CARTOON).frame_count


def test_each_shot_is_handed_over_while_decoding_goes_on_as_the_scan_returns_it(cartoon):
    """``on_shot`` gets every shot as soon as it is known — the first ones before the decoder has reached the end
    of the video — and each is exactly the shot (times, frames, keyframes, features) the finished scan holds."""
    events: list[tuple[str, object]] = []
    scan = scan_video(cartoon, on_shot=lambda shot, frames: events.append(("shot", (shot, frames))),
                      progress=lambda line: events.append(("progress", line)))
    handed = [item for kind, item in events if kind == "shot"]
    assert [s for s, _ in handed] == scan.shots
    for (_, frames), final in zip(handed, scan.frames):
        assert frames.keyframe_times == final.keyframe_times
        assert all(np.array_equal(a, b) for a, b in zip(frames.keyframes, final.keyframes))
        assert len(frames.keyframes) == len(final.keyframes)
        assert np.array_equal(frames.features.motion, final.features.motion)
        assert np.array_equal(frames.features.times, final.features.times)
    last_progress = max(i for i, (kind, _) in enumerate(events) if kind == "progress")
    first_shot = min(i for i, (kind, _) in enumerate(events) if kind == "shot")
    assert first_shot < last_progress, "no shot was handed over before the decoding finished"


def test_shots_described_during_the_scan_equal_those_described_after_it(cartoon):
    from dubkit.scenes.base import ShotDescriber, describe_scenes
    from dubkit.scenes.visual_cues import VisualCuesCaptioner

    captioner = VisualCuesCaptioner()
    with ShotDescriber(captioner) as describer:
        scan = scan_video(cartoon, on_shot=describer.submit)
        early = describer.scenes(scan)
    after = describe_scenes(scan, captioner)
    assert [(s.start, s.end, s.description, s.cues, s.features) for s in early] == \
        [(s.start, s.end, s.description, s.cues, s.features) for s in after]
    # A shot the scan drew differently once it had finished (a cut confirmed late) is described again.
    with ShotDescriber(captioner) as describer:
        wrong = scan.shots[1]
        describer.submit(scan.shots[0], scan.frames[0])
        describer.submit(type(wrong)(1, wrong.start, wrong.end + 1, wrong.start_frame, wrong.end_frame + 24),
                         scan.frames[1])
        redone = describer.scenes(scan)
    assert [(s.start, s.end, s.description) for s in redone] == [(s.start, s.end, s.description) for s in after]
