"""Benchmark: peak memory (RSS) of a whole `dubkit dub` by video length — it should not grow with the length.

Each length gets a generated 160x90 24 fps H.264 video (ffmpeg testsrc, a cut every 5 minutes from a second
pattern) with an AAC sine as its original audio, dubbed with the offline backends in a child process; the
table shows the child's peak RSS (kernel's ru_maxrss, as /usr/bin/time -v reports it), the stage at which it
was reached, and the wall time. 160x90 keeps the decode cheap: the audio side (48 kHz stereo, whatever the
picture size) is what used to grow, and the scan's keyframes are small at any resolution.

Not a test (pytest does not collect it). Run:  .venv/bin/python tests/bench/bench_memory.py [--minutes 1 10 60]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_video(path: Path, minutes: float) -> Path:
    """testsrc with a smptebars shot every 5 minutes (so the scan sees cuts), a 440 Hz sine as the sound."""
    seconds = minutes * 60
    shot = min(300.0, seconds)
    filt = f"[0:v][1:v]overlay=enable='gte(mod(t,{2 * shot}),{shot})'[v]"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x90:rate=24",
                    "-f", "lavfi", "-i", "smptebars=size=160x90:rate=24",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
                    "-filter_complex", filt, "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast",
                    "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def child(video: str, output: str) -> None:
    """Dub ``video`` and print the high-water mark of this process after every stage."""
    sys.path.insert(0, str(ROOT))
    import dubkit

    def hwm() -> int:
        return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) // 1024

    last = {"mark": 0, "stage": "start", "current": "start"}

    def progress(message: str) -> None:  # each message starts a stage: a new high was reached in the one before
        now = hwm()
        if now > last["mark"]:
            last["mark"], last["stage"] = now, last["current"]
        last["current"] = message.split(" (")[0]

    dubkit.dub(video, output, progress=progress)
    progress("done")
    print(f"PEAK-STAGE {last['stage']}", flush=True)


def run(minutes: float, folder: Path) -> tuple[float, float, str]:
    video = make_video(folder / f"bench-{minutes:g}min.mp4", minutes)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(video), str(folder / f"out-{minutes:g}.mp4")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"dub of {minutes:g} min failed (exit {proc.returncode})")
    stage = next((line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("PEAK-STAGE ")), "?")
    for p in folder.glob(f"bench-{minutes:g}min.mp4"):
        p.unlink()
    return usage.ru_maxrss / 1024, wall, stage


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    ap.add_argument("--child", nargs=2, metavar=("VIDEO", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    print("| video (160x90, AAC sine) | peak RSS | reached while | wall |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="dubkit-bench-mem-") as tmp:
        for minutes in args.minutes:
            peak, wall, stage = run(minutes, Path(tmp))
            print(f"| {minutes:g} min | {peak:,.0f} MiB | {stage} | {wall:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
