"""Benchmark video understanding: probe, the single-pass scan and visual cues, against the scenedetect CLI alone.

    .venv/bin/python tests/bench/bench_video.py            # the sample + a generated 60 s 1280x720 clip

Each measurement runs in a fresh child process so peak memory (ru_maxrss, and tracemalloc's Python-heap peak)
belongs to that file alone. Also reports a decode-only pass (the scan's ffmpeg pipe at its size), to show what the
analysis costs on top of decoding, and how the cuts compare with the truth and with the scenedetect CLI.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TRUTH = json.loads((ROOT / "samples" / "cartoon.truth.json").read_text())


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: str) -> dict:
    """Runs in the child: probe, scan, describe; times and memory."""
    from dubkit.scenes.base import describe_scenes
    from dubkit.scenes.visual_cues import VisualCuesCaptioner
    from dubkit.video.probe import probe
    from dubkit.video.scan import scan_video

    base = _rss_mb()
    t0 = time.perf_counter()
    info = probe(path)
    t1 = time.perf_counter()
    tracemalloc.start()
    scan = scan_video(path, info)
    t2 = time.perf_counter()
    heap = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    t3 = time.perf_counter()
    scenes = describe_scenes(scan, VisualCuesCaptioner())
    t4 = time.perf_counter()
    return {
        "duration": info.duration, "frames": info.frame_count, "size": f"{info.width}x{info.height}",
        "probe_s": t1 - t0, "scan_s": t2 - t1, "describe_s": t4 - t3, "heap_peak_mb": heap,
        "rss_base_mb": base, "rss_peak_mb": _rss_mb(),
        "cuts": [s.start for s in scan.shots[1:]], "cues": [(c.kind, c.time) for s in scenes for c in s.cues],
    }  # fmt: skip


def decode_only(path: str) -> dict:
    """Runs in the child: the scan's decoder (ffmpeg pipe with timestamps) at its decode size, nothing else."""
    from dubkit.video.decode import decode_frames
    from dubkit.video.probe import probe

    info = probe(path)
    h = int(round(320 * info.height / info.width / 2)) * 2
    t0 = time.perf_counter()
    for _ in decode_frames(path, info, 320, h):
        pass
    return {"decode_s": time.perf_counter() - t0, "rss_peak_mb": _rss_mb()}


def child(fn: str, path: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", fn, path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def scenedetect_cli(path: str) -> dict:
    exe = Path(sys.executable).with_name("scenedetect")
    t0 = time.perf_counter()
    out = subprocess.run([str(exe), "-i", path, "detect-content", "list-scenes", "-n"], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    m = re.search(r"Comma-separated timecode list:\s*\n\s*(\S+)", out.stdout)
    cuts = []
    for tc in (m.group(1).split(",") if m else []):
        h, mi, s = tc.split(":")
        cuts.append(int(h) * 3600 + int(mi) * 60 + float(s))
    return {"cli_s": wall, "cuts": cuts}


def truth_for(repeat: int) -> tuple[list[float], list[tuple[str, float]]]:
    d = TRUTH["duration"]
    cuts, moments = [], []
    kind = {"pass": "whoosh"}
    for r in range(repeat):
        cuts += [r * d + c for c in ([0.0] if r else []) + TRUTH["cuts"]]
        moments += [(kind.get(m["kind"], m["kind"]), r * d + m["time"]) for m in TRUTH["impacts"] + TRUTH["events"]]
    return cuts, moments


def score(found_cuts: list[float], found_cues: list, repeat: int, fps: float) -> str:
    cuts, moments = truth_for(repeat)
    hit = sum(any(abs(f - c) <= 1.01 / fps for f in found_cuts) for c in cuts)
    extra = sum(not any(abs(f - c) <= 1.01 / fps for c in cuts) for f in found_cuts)
    text = f"cuts {hit}/{len(cuts)} within 1 frame, {extra} extra"
    if found_cues:
        errs = [min((abs(t - mt) * fps for k, t in found_cues if k == mk), default=99) for mk, mt in moments]
        false = sum(not any(abs(t - mt) * fps <= 2 for _, mt in moments) for _, t in found_cues)
        text += f"; cues {sum(e <= 2 for e in errs)}/{len(moments)} within 2 frames (max err {max(errs):.2f} fr), {false} false"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--long-seconds", type=int, default=60, help="length of the generated 1280x720 clip")
    a = ap.parse_args()
    repeat = max(1, round(a.long_seconds / TRUTH["duration"]))
    with tempfile.TemporaryDirectory() as tmp:
        long = Path(tmp) / f"cartoon_{repeat * 30}s_720p.mp4"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "samples" / "make_samples.py"), "--out", str(long),
                        "--size", "1280x720", "--repeat", str(repeat)], check=True, capture_output=True)  # fmt: skip
        print(f"generated {long.name} in {time.perf_counter() - t0:.1f} s")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (timings scale with load)")
        for path, rep in ((ROOT / "samples" / "cartoon.mp4", 1), (long, repeat)):
            m = child("measure", str(path))
            d = child("decode_only", str(path))
            cli = scenedetect_cli(str(path))
            dur = m["duration"]
            print(f"\n== {path.name}: {m['size']}, {dur:.1f} s, {m['frames']} frames")
            print(f"probe      {m['probe_s'] * 1e3:7.0f} ms")
            print(f"scan       {m['scan_s']:7.2f} s   {dur / m['scan_s']:6.1f}x real time  {m['frames'] / m['scan_s']:6.0f} frames/s")
            print(f"  decode-only (ffmpeg pipe, same size) {d['decode_s']:.2f} s -> analysis adds {m['scan_s'] - d['decode_s']:.2f} s")
            print(f"describe   {m['describe_s'] * 1e3:7.0f} ms  (VisualCuesCaptioner, all shots)")
            print(f"memory     heap peak {m['heap_peak_mb']:.1f} MB (tracemalloc, during scan); "
                  f"RSS {m['rss_base_mb']:.0f} MB after imports -> {m['rss_peak_mb']:.0f} MB peak")  # fmt: skip
            print(f"scenedetect CLI (detect-content list-scenes -n): {cli['cli_s']:.2f} s wall, {dur / cli['cli_s']:.1f}x real time")
            print(f"  ours:        {score(m['cuts'], m['cues'], rep, 24.0)}")
            print(f"  scenedetect: {score(cli['cuts'], [], rep, 24.0)}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps({"measure": measure, "decode_only": decode_only}[sys.argv[2]](sys.argv[3])))
    else:
        main()
