"""Benchmark what the default captioner understands of real footage (the dev set in samples/real/).

    .venv/bin/python tests/bench/bench_understanding.py           # all clips, with the per-shot table
    .venv/bin/python tests/bench/bench_understanding.py --quiet   # the summary only

For every clip: one scan, then the tagger alone and the tagger combined with the visual cues (the default
captioner). Against each clip's truth file (written by looking at its frames) it prints:

- named: truth shots whose main visible object, animal or place the tagger names (goal >= 60 %);
- false names: things the tagger named that are not in the shot (per detected shot), and the names' precision
  (names said that the truth lists as visible, main or also, over all names said);
- false weather: detected shots whose description claims rain, snow, a storm or lightning where the truth says
  there is no weather, for the tagger and for the default captioner (goal: 0; at most 5 %);
- speed: the dev set scaled to 1280x720 and joined into one file, scanned (keyframes only) and described with
  the tagger on, in multiples of real time (goal >= 20x on this machine), and the tagger's cost per frame.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
REAL = ROOT / "samples" / "real"
WEATHER = re.compile(r"\b(rain\w*|snow\w*|drizzl\w*|storm\w*|thunder\w*|lightning|hail\w*|sleet|blizzard)\b", re.I)


def named_concepts(scene) -> set[str]:
    return {o.name for o in scene.objects}


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def truth_shot_for(scene, shots: list[dict]) -> dict:
    return max(shots, key=lambda s: _overlap(scene.start, scene.end, s["start"], s["end"]))


def false_names(scene, shot: dict) -> list[str]:
    ok = set(shot["main"]) | set(shot.get("also", []))
    ok |= {"room"} if shot["interior"] else {"outdoors"}
    return sorted(o.name for o in scene.objects if o.name not in ok)


def evaluate(clips: list[Path], captioners: dict, verbose: bool, keyframe_width: int) -> dict:
    from dubkit.scenes.base import describe_scenes
    from dubkit.video.scan import scan_video

    totals = {"truth_shots": 0, "named": 0, "scenes": 0, "false_names": 0, "scenes_with_false_name": 0, "names": 0,
              **{f"weather_{k}": 0 for k in captioners}}
    for clip in clips:
        truth = json.loads(clip.with_suffix(".truth.json").read_text())
        scan = scan_video(clip, keyframe_width=keyframe_width)
        scenes = {k: describe_scenes(scan, c) for k, c in captioners.items()}
        tagged = scenes["tagger"]
        if verbose:
            print(f"\n{clip.name}: {len(scan.shots)} detected shot(s), {len(truth['shots'])} true")
        for shot in truth["shots"]:
            best = max(tagged, key=lambda s: _overlap(s.start, s.end, shot["start"], shot["end"]))
            hit = bool(named_concepts(best) & set(shot["main"]))
            totals["truth_shots"] += 1
            totals["named"] += hit
            if verbose:
                print(f"  truth {shot['start']:5.2f}-{shot['end']:5.2f} main={'/'.join(shot['main']):22s} "
                      f"{'NAMED' if hit else 'missed'}")
        for i, scene in enumerate(tagged):
            shot = truth_shot_for(scene, truth["shots"])
            wrong = false_names(scene, shot)
            totals["scenes"] += 1
            totals["false_names"] += len(wrong)
            totals["names"] += len(scene.objects)
            totals["scenes_with_false_name"] += bool(wrong)
            for k in captioners:
                claim = bool(WEATHER.search(scenes[k][i].description)) and not shot["weather"]
                totals[f"weather_{k}"] += claim
            if verbose:
                print(f"    scene {scene.start:5.2f}-{scene.end:5.2f} {scene.description!r}"
                      + (f"  false: {', '.join(wrong)}" if wrong else ""))
                if "default" in scenes and WEATHER.search(scenes["default"][i].description):
                    print(f"      default says: {scenes['default'][i].description!r}")
    return totals


def speed(clips: list[Path], tagger, keyframe_width: int) -> dict:
    """Scan + tagger on the dev set scaled to 1280x720, joined into one file."""
    from dubkit.scenes.base import describe_scenes
    from dubkit.video.probe import probe
    from dubkit.video.scan import scan_video

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dev720.mp4"
        inputs = [a for c in clips for a in ("-i", str(c))]
        chains = "".join(f"[{i}:v]scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:-1:-1,"
                         f"fps=25,setsar=1[v{i}];" for i in range(len(clips)))
        joined = "".join(f"[v{i}]" for i in range(len(clips))) + f"concat=n={len(clips)}:v=1:a=0[v]"
        subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", chains + joined, "-map", "[v]",
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(out)], check=True)
        info = probe(out)
        t0, c0 = time.perf_counter(), time.process_time()
        scan = scan_video(out, info, keyframe_width=keyframe_width)
        t1, c1 = time.perf_counter(), time.process_time()
        describe_scenes(scan, tagger)
        t2, c2 = time.perf_counter(), time.process_time()
    frames = sum(len(f.keyframes) for f in scan.frames)
    return {"duration": info.duration, "shots": len(scan.shots), "keyframes": frames, "scan_s": t1 - t0,
            "tagger_s": t2 - t1, "realtime": info.duration / (t2 - t0), "ms_per_keyframe": 1000 * (t2 - t1) / frames,
            "scan_cpu_s": c1 - c0, "tagger_cpu_s": c2 - c1, "realtime_cpu": info.duration / (c2 - c0),
            "cpu_ms_per_keyframe": 1000 * (c2 - c1) / frames}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quiet", action="store_true", help="print the summary only")
    ap.add_argument("--no-speed", action="store_true", help="skip the 720p speed run")
    ap.add_argument("--keyframe-width", type=int, default=None,
                    help="scan keyframes at this width (default: the tagger's preferred width)")
    args = ap.parse_args()

    from dubkit.scenes.combined import CombinedCaptioner
    from dubkit.scenes.tagger import TaggerCaptioner
    from dubkit.scenes.visual_cues import VisualCuesCaptioner

    clips = sorted(REAL.glob("*.mp4"))
    t0 = time.perf_counter()
    tagger = TaggerCaptioner()
    load_s = time.perf_counter() - t0
    captioners = {"tagger": tagger, "default": CombinedCaptioner(tagger, VisualCuesCaptioner())}
    width = args.keyframe_width or tagger.keyframe_width
    t = evaluate(clips, captioners, verbose=not args.quiet, keyframe_width=width)
    n, s = t["truth_shots"], t["scenes"]
    print(f"\ndev set: {len(clips)} clips, {n} true shots, {s} detected shots (keyframes {width} px wide, tagger "
          f"backend {tagger.classifier.backend}, loaded in {load_s:.2f} s)")
    print(f"named (main object/animal/place):  {t['named']}/{n} = {100 * t['named'] / n:.0f} %   (goal >= 60 %)")
    print(f"false names:                       {t['false_names']} in {t['scenes_with_false_name']}/{s} shots "
          f"= {100 * t['scenes_with_false_name'] / s:.0f} % of shots")
    right = t["names"] - t["false_names"]
    print(f"names said:                        {t['names']}, {right} right: precision {100 * right / max(1, t['names']):.0f} %")
    for k in captioners:
        w = t[f"weather_{k}"]
        print(f"false weather claims ({k + '):':9s}   {w}/{s} shots = {100 * w / s:.0f} %   (goal <= 5 %)")
    if not args.no_speed:
        sp = speed(clips, tagger, width)
        print(f"speed at 1280x720: {sp['duration']:.1f} s of video, {sp['shots']} shots, {sp['keyframes']} keyframes: "
              f"scan {sp['scan_s']:.1f} s + tagger {sp['tagger_s']:.1f} s = {sp['realtime']:.1f}x real time "
              f"(goal >= 20x); tagger {sp['ms_per_keyframe']:.0f} ms per keyframe")
        print(f"  in CPU time (what a shared machine's load does not inflate): scan {sp['scan_cpu_s']:.1f} s + tagger "
              f"{sp['tagger_cpu_s']:.1f} s = {sp['realtime_cpu']:.1f}x real time per core; tagger "
              f"{sp['cpu_ms_per_keyframe']:.0f} ms per keyframe")


if __name__ == "__main__":
    main()
