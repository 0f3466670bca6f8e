"""Benchmark: time every stage of `dubkit dub` (offline CPU backends) on the sample and on a generated 60 s
1280×720 clip, with real-time factor and peak memory, and the scenedetect CLI alone on the same files.

Not a test (pytest does not collect it). Run:  .venv/bin/python tests/bench/bench_dub.py [--only-sample]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import dubkit  # noqa: E402


def make_long_clip(path: Path, seconds: int = 60) -> Path:
    """Six 10 s shots from different ffmpeg test sources, hard cuts between them, 1280×720 24 fps H.264."""
    sources = ["testsrc2", "mandelbrot", "smptehdbars", "life=s=320x180:mold=10:r=24:ratio=0.1", "rgbtestsrc", "cellauto"]
    per = seconds / len(sources)
    inputs: list[str] = []
    for src in sources:
        spec = src if "=" in src else f"{src}=size=1280x720:rate=24"
        inputs += ["-f", "lavfi", "-t", f"{per}", "-i", spec]
    filt = "".join(f"[{i}:v]scale=1280:720,fps=24,format=yuv420p,setsar=1[v{i}];" for i in range(len(sources)))
    filt += "".join(f"[v{i}]" for i in range(len(sources))) + f"concat=n={len(sources)}:v=1:a=0[out]"
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", filt, "-map", "[out]",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(path)], check=True)
    return path


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scenedetect_cli(path: Path) -> float:
    exe = shutil.which("scenedetect") or str(Path(sys.executable).with_name("scenedetect"))
    t0 = time.perf_counter()
    subprocess.run([exe, "-q", "-i", str(path), "detect-content", "list-scenes", "-n", "-q"], check=True,
                   capture_output=True)
    return time.perf_counter() - t0


def bench(path: Path, out_dir: Path) -> None:
    t0 = time.perf_counter()
    res = dubkit.dub(path, out_dir / f"{path.stem}.dubbed.mp4", deliverables=False)
    wall = time.perf_counter() - t0
    dur = res.info.duration
    print(f"\n== {path.name}: {dur:.1f} s, {res.info.width}x{res.info.height} @ {res.info.fps:g} fps, "
          f"{len(res.shots)} shots, {len(res.plan.events)} events")
    print(f"   backends: {res.backends}")
    for stage, secs in res.timings.items():
        print(f"   {stage:<10} {secs:8.2f} s   RTF {secs / dur:6.3f}")
    print(f"   {'total':<10} {wall:8.2f} s   RTF {wall / dur:6.3f}   (RTF < 1: faster than real time)")
    print(f"   peak RSS so far: {peak_rss_mib():.0f} MiB")
    sd = scenedetect_cli(path)
    print(f"   scenedetect CLI alone (detect-content): {sd:.2f} s  vs dubkit scan (shots+features+keyframes): "
          f"{res.timings.get('scan', float('nan')):.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only-sample", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        bench(ROOT / "samples" / "cartoon.mp4", tmpd)
        if not args.only_sample:
            bench(make_long_clip(tmpd / "long60.mp4"), tmpd)


if __name__ == "__main__":
    main()
