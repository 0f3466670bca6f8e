"""The sample dubbed end to end, offline on CPU: what an editor would check by eye and ear."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

import dubkit
from dubkit.io import read_audio

from .conftest import ffprobe_json, onset_times, video_packet_hashes


@pytest.fixture(scope="module")
def dubbed(tmp_path_factory, cartoon):
    work = tmp_path_factory.mktemp("dub")
    src = work / "cartoon.mp4"
    shutil.copyfile(cartoon, src)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    stages = []
    result = dubkit.dub(src, seed=0, progress=stages.append)
    return {"src": src, "result": result, "before": before, "stages": stages, "work": work}


def test_output_is_beside_input_and_input_untouched(dubbed):
    res = dubbed["result"]
    assert res.output == dubbed["src"].with_name("cartoon.dubbed.mp4")
    assert res.output.exists()
    assert hashlib.sha256(dubbed["src"].read_bytes()).hexdigest() == dubbed["before"]
    leftovers = [p.name for p in dubbed["work"].iterdir() if "partial" in p.name or p.suffix == ".wav"]
    assert leftovers == []


def test_duration_matches_within_one_audio_frame(dubbed):
    src = ffprobe_json(dubbed["src"])
    out = ffprobe_json(dubbed["result"].output)
    audio = [s for s in out["streams"] if s["codec_type"] == "audio"]
    assert len(audio) == 1 and int(audio[0]["sample_rate"]) == 48000
    one_frame = 1024 / 48000  # one AAC frame
    assert abs(float(out["format"]["duration"]) - float(src["format"]["duration"])) <= one_frame
    assert abs(float(audio[0]["duration"]) - float(src["format"]["duration"])) <= one_frame


def test_video_packets_are_bit_identical(dubbed):
    assert video_packet_hashes(dubbed["result"].output) == video_packet_hashes(dubbed["src"])


def test_audio_is_not_silent_and_not_clipping(dubbed):
    audio = read_audio(dubbed["result"].output)
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rms > 10 ** (-45 / 20)
    assert float(np.max(np.abs(audio))) < 1.0


def impact_misses(video, truth) -> tuple[list[float], np.ndarray]:
    onsets = onset_times(read_audio(video), 48000)
    tolerance = 2 / truth["fps"]
    misses = [imp["time"] for imp in truth["impacts"]
              if onsets.size == 0 or np.min(np.abs(onsets - imp["time"])) > tolerance]
    return misses, onsets


def test_every_visual_impact_has_an_audio_onset_within_two_frames(dubbed, cartoon_truth):
    misses, onsets = impact_misses(dubbed["result"].output, cartoon_truth)
    assert misses == [], f"no onset within 2 frames of impacts at {misses}; onsets at {np.round(onsets, 3).tolist()}"


def test_every_cut_is_a_shot_boundary_within_one_frame(dubbed, cartoon_truth):
    starts = np.array([s.start for s in dubbed["result"].shots[1:]])
    frame = 1 / cartoon_truth["fps"]
    for cut in cartoon_truth["cuts"]:
        assert np.min(np.abs(starts - cut)) <= frame + 1e-6, cut
    assert len(starts) == len(cartoon_truth["cuts"])


def test_plan_follows_the_picture(dubbed):
    res = dubbed["result"]
    beds = [e for e in res.plan.events if e.layer == "ambience"]
    # An ambience bed per scene, and the beds tile the video exactly.
    assert sum(e.duration for e in beds) == pytest.approx(res.info.duration, abs=1e-6)
    for scene in res.scenes:
        assert any(abs(b.start - scene.start) < 1e-6 for b in beds)
    # Beds crossfade at every cut (a short tail into the next scene), and the last one ends with the video.
    beds.sort(key=lambda e: e.start)
    assert [b.tail for b in beds] == [0.25] * (len(beds) - 1) + [0.0]
    assert all(0 <= e.start < res.info.duration for e in res.plan.events)


def test_progress_timings_and_backends_are_reported(dubbed):
    res = dubbed["result"]
    assert any(msg.startswith("backends:") for msg in dubbed["stages"])
    for stage in ("probe", "load", "scan", "caption", "plan", "render", "assemble", "mux"):
        assert stage in res.timings and res.timings[stage] >= 0
    assert res.backends["renderer"].startswith("foley")


def test_same_seed_same_audio_other_seed_variation(dubbed, tmp_path, cartoon_truth):
    src = dubbed["src"]
    again = dubkit.dub(src, tmp_path / "again.mp4", seed=0, deliverables=False)
    other = dubkit.dub(src, tmp_path / "other.mp4", seed=1, deliverables=False)
    a, b, c = (read_audio(p) for p in (dubbed["result"].output, again.output, other.output))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert impact_misses(other.output, cartoon_truth)[0] == []  # a variation still hits every impact


def test_stream_start_offsets_keep_sound_on_the_picture(tmp_path, cartoon):
    """MPEG-TS starts its clock at 1.4 s: the soundtrack must still start with the first frame, not 1.4 s late."""
    import subprocess

    src = tmp_path / "clip.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(cartoon), "-t", "8", "-c:v", "libx264", "-preset", "ultrafast",
                    "-f", "mpegts", str(src)], check=True)
    res = dubkit.dub(src, tmp_path / "clip.mp4", deliverables=False)
    streams = {s["codec_type"]: s for s in ffprobe_json(res.output)["streams"]}
    assert abs(float(streams["audio"]["start_time"]) - float(streams["video"]["start_time"])) < 0.03
    assert abs(float(streams["audio"]["duration"]) - res.info.duration) <= 1024 / 48000


def test_original_audio_is_placed_on_the_video_clock():
    from dubkit.deliver.sync import align_to_video

    audio = np.arange(10, dtype=np.float32)[None, :].repeat(2, 0)
    late = align_to_video(audio, 3 / 48000, 12)  # audio starts 3 samples after the first frame
    assert late[0, :3].tolist() == [0, 0, 0] and late[0, 3] == 0 and late[0, 4] == 1 and late.shape[-1] == 12
    early = align_to_video(audio, -2 / 48000, 5)
    assert early[0].tolist() == [2, 3, 4, 5, 6]


def test_default_output_keeps_a_writable_container_or_falls_back_to_matroska(tmp_path):
    from dubkit.api import default_output

    assert default_output(tmp_path / "a.mp4") == tmp_path / "a.dubbed.mp4"
    assert default_output(tmp_path / "b.MOV") == tmp_path / "b.dubbed.MOV"
    assert default_output(tmp_path / "c.flv") == tmp_path / "c.dubbed.mkv"
