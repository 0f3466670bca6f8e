"""Sync on every container, measured as a viewer would see it: against the output's first frame.

Each case is a real file built with ffmpeg the way such files reach users (MPEG-TS remuxes, ``-ss … -c copy`` cuts,
late-starting video, broadcast clocks at 26001 s, VP9/AV1 from other encoders, extra tracks). For each: the shot
cuts the scan finds against the truth relative to the first frame, the video's presentation interval, and where a
click placed in the soundtrack lands in the written file relative to that file's first frame (decoded with
ffmpeg, on presentation timestamps).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dubkit.deliver.mux import MuxStream
from dubkit.deliver.sync import soundtrack_samples
from dubkit.video.probe import probe
from dubkit.video.scan import scan_video

from .conftest import onset_times, video_packet_hashes

FPS = 24
SR = 48000
CLICKS = (1.0, 3.0)  # seconds after the first frame, in the soundtrack we mux


def ff(*args) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *map(str, args)], check=True)


def has_encoder(name: str) -> bool:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return f" {name} " in out


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A tiny 8 s clip (160x90, 24 fps) whose picture changes completely at 2, 4 and 6 s, and a tone beside it."""
    d = tmp_path_factory.mktemp("sync")
    ff("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=24:duration=8",
       "-vf", "hue=h='90*floor(t/2)':s=1,eq=brightness='0.3*mod(floor(t/2),2)-0.1'",
       "-c:v", "libx264", "-preset", "ultrafast", "-g", "48", "-pix_fmt", "yuv420p", d / "cuts.mp4")  # fmt: skip
    for secs in (8, 9.5):
        ff("-f", "lavfi", "-i", f"sine=f=300:d={secs}:sample_rate=48000", d / f"tone{secs}.wav")
    return d


def _build(case: str, d: Path) -> tuple[Path, list[float], float, float | None]:
    """(file, cuts on screen relative to its first frame, video interval, video start to keep or None)."""
    c = d / "cuts.mp4"
    if case == "mpegts":
        ff("-i", c, "-map", "0:v", "-c", "copy", "-bsf:v", "h264_mp4toannexb", d / "x.ts")
        return d / "x.ts", [2, 4, 6], 8.0, None
    if case == "edit_list_trim":
        ff("-ss", "1.0", "-i", c, "-c", "copy", d / "trim.mp4")
        return d / "trim.mp4", [1, 3, 5], 7.0, 0.0
    if case == "video_late_beside_audio":
        ff("-i", c, "-i", d / "tone9.5.wav", "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", d / "t.mp4")
        ff("-itsoffset", "1.5", "-i", c, "-i", d / "t.mp4", "-map", "0:v", "-map", "1:a", "-c", "copy", d / "va15.mp4")
        return d / "va15.mp4", [2, 4, 6], 8.0, 1.5
    if case == "audio_outlasts_video":
        ff("-i", c, "-i", d / "tone8.wav", "-t", "5", "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
           d / "v5.mp4")  # fmt: skip
        ff("-i", d / "v5.mp4", "-i", d / "tone8.wav", "-map", "0:v", "-map", "1:a", "-c", "copy", "-c:a", "aac",
           d / "v5a8.mp4")  # fmt: skip
        return d / "v5a8.mp4", [2, 4], 5.0, 0.0
    if case == "late_video_no_audio":
        ff("-itsoffset", "1.075", "-i", c, "-c", "copy", d / "late.mp4")
        return d / "late.mp4", [2, 4, 6], 8.0, 1.075
    if case in ("broadcast_ts", "copyts_mp4_26001", "copyts_mp4_80000"):
        at = 80000 if case.endswith("80000") else 26001
        ts = d / f"bc{at}.ts"
        ff("-i", c, "-i", d / "tone8.wav", "-map", "0:v", "-map", "1:a", "-c:v", "mpeg2video", "-q:v", "4",
           "-c:a", "mp2", "-output_ts_offset", at, "-f", "mpegts", ts)  # fmt: skip
        if case == "broadcast_ts":
            return ts, [2, 4, 6], 8.0, None
        ff("-copyts", "-i", ts, "-c", "copy", d / f"big{at}.mp4")
        return d / f"big{at}.mp4", [2, 4, 6], 8.0, None  # (the start, ~at s, is checked below)
    if case == "vp9_realtime":
        ff("-i", c, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k", d / "vp9.webm")
        return d / "vp9.webm", [2, 4, 6], 8.0, None
    if case == "av1_svt":
        ff("-i", c, "-c:v", "libsvtav1", "-preset", "12", d / "svt.mkv")
        return d / "svt.mkv", [2, 4, 6], 8.0, None
    if case == "av1_aom":
        ff("-i", c, "-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime", "-b:v", "100k", d / "aom.mp4")
        return d / "aom.mp4", [2, 4, 6], 8.0, None
    raise AssertionError(case)


def first_frame_time(path: Path, select: str) -> float:
    """Presentation time of the first frame ffmpeg decodes from stream ``select`` (edit lists applied)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", select, "-show_frames", "-read_intervals",
                          "%+#200", "-show_entries", "frame=best_effort_timestamp_time", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return float(json.loads(out)["frames"][0]["best_effort_timestamp_time"])


def audio_on_video_clock(path: Path, stream: int = 0) -> np.ndarray:
    """Mono audio of ``path`` whose sample 0 plays with its first video frame, as a player schedules them."""
    shift = round((first_frame_time(path, f"a:{stream}") - first_frame_time(path, "v:0")) * SR)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:a:{stream}", "-ac", "1",
                          "-ar", str(SR), "-f", "f32le", "-"], capture_output=True, check=True).stdout  # fmt: skip
    a = np.frombuffer(raw, np.float32)
    return np.r_[np.zeros(shift, np.float32), a] if shift >= 0 else a[-shift:]


def click_track(path: Path, samples: int) -> Path:
    a = np.zeros((samples, 2), np.float32)
    for t in CLICKS:
        a[round(t * SR) : round(t * SR) + 96] = 0.8
    sf.write(str(path), a, SR, subtype="PCM_24")
    return path


def mux(video: Path, wav: Path, out: Path, **kw) -> Path:
    """What `dub` does: the soundtrack fed to ffmpeg block by block (uneven blocks) as it is mastered."""
    stream = MuxStream(video, out, sample_rate=SR, **kw)
    audio = sf.read(str(wav), dtype="float32", always_2d=True)[0].T
    for lo in range(0, audio.shape[-1], 10007):
        stream.write(audio[:, lo : lo + 10007])
    stream.finish()
    return out


def click_times(audio: np.ndarray) -> list[float]:
    loud = np.nonzero(np.abs(audio) > 0.3)[0]
    starts = loud[np.r_[True, np.diff(loud) > SR // 10]] if len(loud) else loud
    return [float(i) / SR for i in starts]


CASES = ["mpegts", "edit_list_trim", "video_late_beside_audio", "audio_outlasts_video", "late_video_no_audio",
         "broadcast_ts", "copyts_mp4_26001", "copyts_mp4_80000", "vp9_realtime", "av1_svt", "av1_aom"]  # fmt: skip
ENCODER = {"vp9_realtime": "libvpx-vp9", "av1_svt": "libsvtav1", "av1_aom": "libaom-av1"}


@pytest.mark.parametrize("case", CASES)
def test_cuts_interval_and_soundtrack_sit_on_the_first_frame(work, case):
    if case in ENCODER and not has_encoder(ENCODER[case]):
        pytest.skip(f"this ffmpeg has no {ENCODER[case]} encoder")
    src, cuts, interval, keep_start = _build(case, work)
    info = probe(src)
    # The timeline is the picture's: its length is the video's presentation interval (not the container's, not
    # the audio's, not 26009 s of broadcast clock), to within a millisecond (WebM stores milliseconds).
    assert info.duration == pytest.approx(interval, abs=1.5e-3)
    scan = scan_video(src, info)
    assert scan.features.times[0] == pytest.approx(0.0, abs=1e-6)
    found = [s.start for s in scan.shots[1:]]
    assert len(found) == len(cuts), f"{case}: cuts at {found}, truth {cuts}"
    errors = [(f - t) * FPS for f, t in zip(found, cuts)]
    assert max(map(abs, errors)) <= 1.0 + 1e-6, f"{case}: cut errors in frames {errors}"

    ext = {".ts": ".ts", ".webm": ".webm", ".mkv": ".mkv"}.get(src.suffix, ".mp4")
    out = work / f"{case}.dubbed{ext}"
    samples = soundtrack_samples(info, SR)
    mux(src, click_track(work / f"{case}.wav", samples), out, info=info)
    heard = audio_on_video_clock(out)
    found_clicks = click_times(heard)
    assert len(found_clicks) == len(CLICKS)
    for got, want in zip(found_clicks, CLICKS):
        assert abs(got - want) * 1000 <= 0.5, f"{case}: click {want}s lands {1000 * (got - want):+.2f} ms off"
    # The soundtrack covers the picture, no more: within one audio codec frame (AAC 1024, Opus 960 samples).
    assert abs(len(heard) / SR - interval) <= 1024 / SR + 1e-3
    assert video_packet_hashes(out) == video_packet_hashes(src)
    if keep_start is not None:
        assert probe(out).video_start == pytest.approx(keep_start, abs=1e-3)  # the start offset is kept
    if case.startswith("copyts_mp4"):
        at = 80000 if case.endswith("80000") else 26001
        assert at < info.video_start < at + 2 and probe(out).video_start == pytest.approx(info.video_start, abs=1e-3)


def test_the_issue_mpegts_remux_of_the_sample_keeps_its_cuts(cartoon, cartoon_truth, tmp_path):
    """``ffmpeg -i cartoon.mp4 -map 0:v -c copy -bsf:v h264_mp4toannexb x.ts``: the plan was 4 s early."""
    ts = tmp_path / "x.ts"
    ff("-i", cartoon, "-map", "0:v", "-c", "copy", "-bsf:v", "h264_mp4toannexb", ts)
    info = probe(ts)
    assert info.origin > 1.0 and info.video_start == 0.0  # MPEG-TS clocks start at 1.4 s; the picture at 0
    starts = [s.start for s in scan_video(ts, info).shots[1:]]
    assert starts == pytest.approx(cartoon_truth["cuts"], abs=1.01 / FPS)


@pytest.mark.slow
def test_dub_of_a_transport_stream_hits_every_impact(cartoon, cartoon_truth, tmp_path):
    """End to end on MPEG-TS (the first 10 s of the sample: the meadow and the bouncing ball): every impact has an
    onset within 2 frames of its frame, measured against the output's first frame."""
    import dubkit

    ts = tmp_path / "ten.ts"
    ff("-i", cartoon, "-t", "10", "-map", "0:v", "-c", "copy", "-bsf:v", "h264_mp4toannexb", ts)
    res = dubkit.dub(ts, tmp_path / "ten.dubbed.ts", deliverables=False)
    assert [s.start for s in res.shots[1:]] == pytest.approx([c for c in cartoon_truth["cuts"] if c < 10], abs=1.01 / FPS)
    onsets = onset_times(audio_on_video_clock(res.output)[None, :], SR)
    impacts = [i["time"] for i in cartoon_truth["impacts"] if i["time"] < 10]
    misses = [t for t in impacts if onsets.size == 0 or np.min(np.abs(onsets - t)) > 2 / FPS]
    assert impacts and misses == [], f"no onset within 2 frames of {misses}; onsets {np.round(onsets, 3).tolist()}"


def test_dub_of_a_late_video_beside_audio_covers_the_picture_only(work):
    """Video from 1.5 s beside audio from 0 (9.5 s file): the soundtrack is the picture's 8 s, starts with its first
    frame, the video keeps its 1.5 s start, and the file does not grow past 9.5 s."""
    import dubkit

    src, _, interval, start = _build("video_late_beside_audio", work)
    res = dubkit.dub(src, work / "va15.dubbed.mp4", keep_original_audio=True, mix="replace", deliverables=False)
    out = probe(res.output)
    assert out.video_start == pytest.approx(start, abs=1e-3)
    assert out.container_duration == pytest.approx(9.5, abs=0.03)
    heard = audio_on_video_clock(res.output)
    assert abs(len(heard) / SR - interval) <= 1024 / SR + 1e-3
    kept = audio_on_video_clock(res.output, stream=1)  # the original track, copied: it still starts 1.5 s early
    assert abs(len(kept) / SR - 8.0) <= 1024 / SR + 1e-3 and np.abs(kept[: SR // 2]).max() > 0.05


def test_original_audio_is_read_onto_the_video_clock(work):
    """The mix's copy of the original sound, decoded as ``dub`` decodes it: the audio's first 1.5 s (before the
    picture) are not in it, so its sample 0 is the audio's sample at 1.5 s."""
    from audiostory_core.assemble import to_samples
    from audiostory_core.tracks import ArrayTrack
    from dubkit.io import decode_audio_into, read_audio

    src, _, interval, _ = _build("video_late_beside_audio", work)
    info = probe(src)
    samples = soundtrack_samples(info, SR)
    assert samples == round(interval * SR)
    assert info.audio_start - info.video_start == pytest.approx(-1.5, abs=1e-3)
    shift = to_samples(info.audio_start - info.video_start, SR)
    track = decode_audio_into(ArrayTrack(np.zeros((2, samples), np.float32)), src, SR, shift=shift)
    whole = read_audio(src, SR, 2)
    np.testing.assert_array_equal(track.audio, whole[:, -shift : -shift + samples])


# ----------------------------------------------------------------------------------------------------- streams


@pytest.fixture(scope="module")
def many_streams(work) -> dict[str, Path]:
    """A MOV with a timecode, two audio languages and a text subtitle; an MKV of it with a font attachment."""
    srt = work / "s.srt"
    srt.write_text("1\n00:00:00,500 --> 00:00:01,500\nhello\n\n2\n00:00:02,000 --> 00:00:03,000\nworld\n")
    (work / "font.ttf").write_bytes(b"not really a font, but an attachment all the same\n")
    mov, mkv = work / "multi.mov", work / "multi.mkv"
    ff("-i", work / "cuts.mp4", "-f", "lavfi", "-i", "sine=f=300:d=8", "-f", "lavfi", "-i", "sine=f=500:d=8", "-i", srt,
       "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3", "-c:v", "copy", "-c:a", "aac", "-c:s", "mov_text",
       "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra", "-metadata:s:s:0", "language=eng",
       "-timecode", "01:00:00:00", mov)  # fmt: skip
    ff("-i", mov, "-attach", work / "font.ttf", "-metadata:s:t", "mimetype=application/x-truetype-font",
       "-map", "0:v", "-map", "0:a", "-map", "0:s", "-c", "copy", "-c:s", "srt", mkv)  # fmt: skip
    return {"mov": mov, "mkv": mkv}


def _streams(path: Path) -> list[dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_streams", str(path)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return json.loads(out)["streams"]


def _tag(s: dict, key: str) -> str | None:
    return next((v for k, v in (s.get("tags") or {}).items() if k.lower() == key), None)


@pytest.mark.parametrize("src, ext", [("mov", ".mp4"), ("mkv", ".mkv"), ("mkv", ".mov"), ("mov", ".ts")])
def test_other_streams_are_carried_or_named(work, many_streams, src, ext):
    path = many_streams[src]
    info = probe(path)
    out = work / f"carry_{src}{ext}"
    said: list[str] = []
    mux(path, click_track(work / "carry.wav", soundtrack_samples(info, SR)), out, info=info,
        keep_original_audio=True, say=said.append)  # fmt: skip
    streams = _streams(out)
    audio = [s for s in streams if s["codec_type"] == "audio"]
    # Every original audio track the user keeps follows the soundtrack, bit for bit, language and all.
    assert [_tag(s, "language") for s in audio[1:]] == ["eng", "fra"]
    if ext != ".ts":  # (MPEG-TS has no track names)
        assert "dubkit soundtrack" in (_tag(audio[0], "title"), _tag(audio[0], "handler_name"))
    subs = [s for s in streams if s["codec_type"] == "subtitle"]
    attachments = [s for s in streams if s["codec_type"] == "attachment"]
    timecode = any(_tag(s, "timecode") == "01:00:00:00" for s in streams)
    warning = " ".join(said)
    if ext == ".ts":  # MPEG-TS holds no text subtitles and no timecode: the warning names both
        assert subs == [] and not timecode
        assert "subtitle #3 (mov_text, eng)" in warning and "timecode 01:00:00:00" in warning
        return
    assert len(subs) == 1 and _tag(subs[0], "language") == "eng"  # converted to the container's text format
    assert timecode
    if src == "mkv" and ext == ".mkv":
        assert len(attachments) == 1 and said == []
    elif src == "mkv":
        assert attachments == [] and "attachment #4 (ttf)" in warning  # MOV cannot hold it: named
    else:
        assert said == []


def test_keeping_no_original_audio_warns_about_nothing(work, many_streams):
    path = many_streams["mov"]
    info = probe(path)
    said: list[str] = []
    out = work / "replace.mp4"
    mux(path, click_track(work / "r.wav", soundtrack_samples(info, SR)), out, info=info, say=said.append)
    assert said == [] and sum(s["codec_type"] == "audio" for s in _streams(out)) == 1


def test_a_streamed_mux_that_ffmpeg_refuses_says_why_and_stops(work):
    """ffmpeg exits at once (an H.264 picture cannot go into WebM): the blocks still written go nowhere, without
    a broken-pipe error, and ``finish`` raises one line naming the container; ``abort`` leaves no process."""
    from dubkit.errors import MediaToolError

    src = work / "cuts.mp4"
    info = probe(src)
    stream = MuxStream(src, work / "refused.webm", info=info, sample_rate=SR)
    block = np.zeros((2, SR), np.float32)
    for _ in range(20):  # more than the pipe and the queue hold
        stream.write(block)
    with pytest.raises(MediaToolError, match="webm"):
        stream.finish()
    stream = MuxStream(src, work / "aborted.mp4", info=info, sample_rate=SR)
    stream.write(block)
    stream.abort()
    assert stream.proc.poll() is not None

