"""A video with dialogue dubbed end to end: the soundtrack ducks under speech, the delivery hits its loudness, the
original audio survives as a second track, and the deliverables folder holds what an editor opens next."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pyloudnorm as pyln
import pytest
import soundfile as sf

import dubkit
from dubkit.io import read_audio
from dubkit.soundtrack.loudness import true_peak_dbtp

from .conftest import ffprobe_json, video_packet_hashes

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def packet_hashes(path: Path, stream: str) -> list[str]:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", stream, "-c", "copy", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True).stdout
    return [line.rsplit(",", 1)[-1].strip() for line in out.splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    out = tmp_path_factory.mktemp("talk") / "talk.dubbed.mp4"
    result = dubkit.dub(SAMPLES / "talk.mp4", out, keep_original_audio=True, stems=True, loudness=-23.0)
    return result


def test_speech_found_and_mix_defaults_to_duck(talk):
    truth = json.loads((SAMPLES / "talk.truth.json").read_text())
    regions = truth.get("speech") or truth.get("speech_regions")
    assert talk.mix_mode == "duck"
    assert len(talk.speech) == len(regions)
    for (s, e), ref in zip(talk.speech, regions):
        rs, re_ = (ref["start"], ref["end"]) if isinstance(ref, dict) else ref
        assert abs(s - rs) <= 0.1 and abs(e - re_) <= 0.1


def test_two_audio_tracks_original_copied_video_copied(talk):
    streams = ffprobe_json(talk.output)["streams"]
    assert [s["codec_type"] for s in streams].count("audio") == 2
    assert packet_hashes(talk.output, "0:a:1") == packet_hashes(SAMPLES / "talk.mp4", "0:a:0")
    assert video_packet_hashes(talk.output) == video_packet_hashes(SAMPLES / "talk.mp4")


def test_delivered_loudness_and_true_peak(talk):
    audio = read_audio(talk.output, 48000, 2, stream=0)  # what a player decodes, after AAC
    lufs = pyln.Meter(48000).integrated_loudness(audio.T.astype(np.float64))
    assert abs(lufs - (-23.0)) <= 0.5
    assert true_peak_dbtp(audio) <= -1.0
    assert talk.loudness.output_lufs == pytest.approx(-23.0, abs=0.5)


def test_stems_exact_length_24bit_and_timeline_reads_back(talk):
    folder = talk.deliverables.folder
    n = round(talk.info.duration * 48000)
    stems = sorted((folder / "stems").glob("*.wav"))
    assert {p.stem for p in stems} >= {"ambience", "dialogue"}
    for p in stems:
        info = sf.info(str(p))
        assert info.samplerate == 48000 and info.frames == n and info.subtype in ("PCM_24", "FLOAT")
    timeline = otio.adapters.read_from_file(str(folder / "talk.otio"))
    audio_tracks = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Audio]
    events = {layer: [e for e in talk.plan.events if e.layer == layer] for layer in ("ambience", "fx")}
    by_name = {t.name: t for t in audio_tracks}
    for layer, evs in events.items():
        if evs:
            clips = [c for c in by_name[layer] if isinstance(c, otio.schema.Clip)]
            assert len(clips) == len(evs)
    assert (folder / "report.html").read_text().count("http://") == 0
