"""Generate samples/talk.mp4: a short video with spoken dialogue, and talk.truth.json with its speech regions.

Why: dialogue detection and ducking need a file with known speech. Four phrases are synthesised with espeak-ng
and placed on a quiet room-tone bed with gaps of at least one second; the truth regions are measured from the
synthesised samples themselves (first and last sample above a -50 dBFS floor of each phrase), so they are
sample-accurate at 48 kHz. The picture is a slow moving disc over a gradient, enough to be a real video stream.
Everything is deterministic (fixed phrases, fixed voice, seeded noise).

    .venv/bin/python samples/make_talk.py          # writes samples/talk.mp4 and samples/talk.truth.json
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

HERE = Path(__file__).resolve().parent
SAMPLE_RATE = 48000
FPS = 25
WIDTH, HEIGHT = 640, 360
PHRASES = [
    "Tonight we walk along the old harbour",
    "Listen to the gulls over the water",
    "The storm came in faster than anyone expected",
    "And then at last everything went quiet",
]
LEAD_IN = 1.2  # seconds of room tone before the first phrase
GAP = 1.6  # seconds of room tone between phrases
TAIL = 1.5  # after the last phrase
SILENCE_DBFS = -50.0  # a sample below this is "not speech" when measuring phrase edges
ROOM_TONE_DBFS = -60.0  # RMS of the room-tone bed


def speak(text: str, workdir: Path, index: int) -> np.ndarray:
    """espeak-ng → mono float32 at 48 kHz, trimmed to the non-silent part, peak-normalised to -6 dBFS."""
    wav = workdir / f"phrase{index}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    audio, rate = sf.read(wav, dtype="float32", always_2d=False)
    g = gcd(rate, SAMPLE_RATE)
    audio = resample_poly(audio, SAMPLE_RATE // g, rate // g).astype(np.float32)
    audio *= 10 ** (-6 / 20) / np.abs(audio).max()
    loud = np.flatnonzero(np.abs(audio) > 10 ** (SILENCE_DBFS / 20))
    return audio[loud[0] : loud[-1] + 1]


def room_tone(n: int, seed: int = 7) -> np.ndarray:
    """Low-passed noise at ROOM_TONE_DBFS RMS: quiet but not digital silence, like a real location."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n + 64).astype(np.float32)
    noise = np.convolve(noise, np.hanning(64).astype(np.float32), mode="same")[:n]
    return (noise * (10 ** (ROOM_TONE_DBFS / 20) / noise.std())).astype(np.float32)


def build_audio(workdir: Path) -> tuple[np.ndarray, list[tuple[int, int]]]:
    phrases = [speak(t, workdir, i) for i, t in enumerate(PHRASES)]
    starts, cursor = [], round(LEAD_IN * SAMPLE_RATE)
    for p in phrases:
        starts.append(cursor)
        cursor += len(p) + round(GAP * SAMPLE_RATE)
    total = cursor - round(GAP * SAMPLE_RATE) + round(TAIL * SAMPLE_RATE)
    total = round(total / SAMPLE_RATE * FPS) * SAMPLE_RATE // FPS  # a whole number of video frames
    mono = room_tone(total)
    regions = []
    for start, p in zip(starts, phrases):
        mono[start : start + len(p)] += p
        regions.append((start, start + len(p)))
    stereo = np.stack([mono, mono * np.float32(0.9)])  # slightly off-centre voice, still clearly stereo
    return stereo, regions


def frames(n_frames: int):
    """A disc drifting across a slowly shifting gradient: simple, moving, compresses small."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    for i in range(n_frames):
        t = i / FPS
        img = np.empty((HEIGHT, WIDTH, 3), dtype=np.float32)
        img[..., 0] = 40 + 60 * xx / WIDTH
        img[..., 1] = 50 + 40 * yy / HEIGHT
        img[..., 2] = 90 + 50 * (0.5 + 0.5 * np.sin(t * 0.4))
        cx = WIDTH * (0.15 + 0.7 * (0.5 + 0.5 * np.sin(t * 0.5)))
        cy = HEIGHT * (0.5 + 0.25 * np.sin(t * 0.9))
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 45**2
        img[disc] = (235, 200, 80)
        yield img.astype(np.uint8).tobytes()


def main(out_dir: Path = HERE) -> None:
    if shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None:
        sys.exit("make_talk.py needs espeak-ng and ffmpeg on PATH (apt-get install espeak-ng ffmpeg)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        audio, regions = build_audio(workdir)
        wav = workdir / "talk.wav"
        sf.write(wav, audio.T, SAMPLE_RATE, subtype="PCM_16")
        n_frames = audio.shape[1] * FPS // SAMPLE_RATE
        video = out_dir / "talk.mp4"
        cmd = [
            "ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-", "-i", str(wav),
            "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "medium", "-crf", "30",
            "-pix_fmt", "yuv420p", "-g", str(2 * FPS), "-bitexact", "-c:a", "aac", "-b:a", "96k",
            "-ar", str(SAMPLE_RATE), "-shortest", "-movflags", "+faststart", "-map_metadata", "-1",
            "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", str(video),
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        assert proc.stdin is not None
        for frame in frames(n_frames):
            proc.stdin.write(frame)
        proc.stdin.close()
        if proc.wait() != 0:
            sys.exit("ffmpeg failed to encode talk.mp4")
    truth = {
        "source": "samples/make_talk.py",
        "duration": audio.shape[1] / SAMPLE_RATE,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "speech_threshold_dbfs": SILENCE_DBFS,
        "room_tone_dbfs": ROOM_TONE_DBFS,
        "speech": [
            {"start": s / SAMPLE_RATE, "end": e / SAMPLE_RATE, "start_sample": s, "end_sample": e, "text": t}
            for (s, e), t in zip(regions, PHRASES)
        ],
    }
    (out_dir / "talk.truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {video} ({video.stat().st_size / 1024:.0f} KiB, {truth['duration']:.2f} s, {len(regions)} phrases)")


if __name__ == "__main__":
    main()
