"""Benchmark the hard-cut detector against every clip with a truth file (samples/ and samples/real/).

    .venv/bin/python tests/bench/bench_cuts.py            # per-clip table and totals
    .venv/bin/python tests/bench/bench_cuts.py --frames   # also the detected and the true cut times

A detected cut counts as true when it lies within one frame of a truth cut (each truth cut matched once).
Precision = true / detected, recall = true / truth. Clips whose truth file has no "cuts" list (talk.mp4, one
continuous shot) count as having none. Two generated clips join them: the camera-move trap of
tests/synthetic_clips.py (one continuous take: pan, tilt, zoom, shake, whip pan) and the whip pan of
tests/test_cut_veto.py (a hard cut at frame 65).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def clips(tmp: Path) -> list[tuple[Path, list[float]]]:
    """Every sample with its truth cuts, then the generated clips."""
    from tests.synthetic_clips import camera_moves
    from tests.test_cut_veto import FPS, whip_then_cut

    paths = sorted((ROOT / "samples").glob("*.mp4")) + sorted((ROOT / "samples" / "real").glob("*.mp4"))
    out = [(p, json.loads(p.with_suffix(".truth.json").read_text()).get("cuts") or []) for p in paths]
    out.append((camera_moves(tmp / "synthetic_camera_moves.mp4"), []))
    out.append((whip_then_cut(tmp / "synthetic_whip_pan.mp4", cut_frame=65), [65 / FPS]))
    return out


def match(found: list[float], truth: list[float], tol: float) -> int:
    """True positives: detected cuts within ``tol`` of a truth cut, each truth cut used once."""
    left, hits = list(truth), 0
    for f in found:
        near = [c for c in left if abs(f - c) <= tol]
        if near:
            left.remove(min(near, key=lambda c: abs(f - c)))
            hits += 1
    return hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", action="store_true", help="print the detected and the true cut times")
    args = ap.parse_args()
    from dubkit.video.scan import scan_video

    tot = {"truth": 0, "found": 0, "hit": 0}
    print(f"{'clip':27s} {'fps':>6s} {'truth':>5s} {'found':>5s} {'true':>5s} {'false':>5s} {'missed':>6s}")
    tmp = tempfile.TemporaryDirectory()
    for clip, truth in clips(Path(tmp.name)):
        scan = scan_video(clip)
        fps = scan.info.fps or 24.0
        found = [s.start for s in scan.shots[1:]]
        hit = match(found, truth, 1.01 / fps)
        tot["truth"] += len(truth)
        tot["found"] += len(found)
        tot["hit"] += hit
        print(f"{clip.name:27s} {fps:6.2f} {len(truth):5d} {len(found):5d} {hit:5d} {len(found) - hit:5d} "
              f"{len(truth) - hit:6d}")
        if args.frames:
            print(f"    detected at {[round(t, 3) for t in found]}, truth {truth}")
    p = tot["hit"] / tot["found"] if tot["found"] else 1.0
    r = tot["hit"] / tot["truth"] if tot["truth"] else 1.0
    print(f"\nall clips: {tot['truth']} true cuts, {tot['found']} detected, {tot['hit']} correct (within 1 frame): "
          f"precision {100 * p:.1f} %, recall {100 * r:.1f} %, F1 {200 * p * r / (p + r) if p + r else 0:.1f} %")


if __name__ == "__main__":
    main()
