"""Benchmark the visual cues' claims on real footage (the dev set in samples/real/) and on the synthetic sample.

    .venv/bin/python tests/bench/bench_cues.py            # per-shot table and the summary
    .venv/bin/python tests/bench/bench_cues.py --quiet    # the summary only

For every real clip: one scan, the visual-cues captioner alone, and each claim checked against the clip's truth
file (written by looking at its frames):

- false weather: shots whose description claims rain, snow, a storm or lightning where the truth says none;
- false slams: slam cues (the truth has no slam in any clip);
- impacts with no visible contact: impact cues further than ``--window`` seconds from every contact the truth
  lists (a bottle set down, a hand landing on a rock, footsteps);
- per shot: the share of detected shots with at least one false claim (goal <= 5 %).

For the synthetic sample (samples/cartoon.mp4) it checks the other side: every impact, slam, flash and pass in its
truth has a cue of its kind within 2 frames.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
REAL = ROOT / "samples" / "real"
WEATHER = re.compile(r"\b(rain\w*|snow\w*|drizzl\w*|storm\w*|thunder\w*|lightning|hail\w*|sleet|blizzard)\b", re.I)


def _shot_for(scene, shots: list[dict]) -> dict:
    return max(shots, key=lambda s: max(0.0, min(scene.end, s["end"]) - max(scene.start, s["start"])))


def real_footage(window: float, verbose: bool) -> dict:
    from dubkit.scenes.base import describe_scenes
    from dubkit.scenes.visual_cues import VisualCuesCaptioner
    from dubkit.video.scan import scan_video

    cap = VisualCuesCaptioner()
    totals = {"shots": 0, "false_shots": 0, "weather": 0, "slams": 0, "impacts": 0, "impacts_ok": 0}
    for clip in sorted(REAL.glob("*.mp4")):
        truth = json.loads(clip.with_suffix(".truth.json").read_text())
        contacts = [c["time"] for s in truth["shots"] for c in s.get("contacts", [])]
        for scene in describe_scenes(scan_video(clip), cap):
            shot = _shot_for(scene, truth["shots"])
            claims = []
            if not shot["weather"] and WEATHER.search(scene.description):
                claims.append("weather")
                totals["weather"] += 1
            for c in scene.cues:
                if c.kind == "slam":
                    claims.append(f"slam {c.time:.2f}s ({getattr(c, 'confidence', 1.0):.2f})")
                    totals["slams"] += 1
                elif c.kind == "impact":
                    if any(abs(c.time - t) <= window for t in contacts):
                        totals["impacts_ok"] += 1
                    else:
                        claims.append(f"impact {c.time:.2f}s ({getattr(c, 'confidence', 1.0):.2f})")
                        totals["impacts"] += 1
            totals["shots"] += 1
            totals["false_shots"] += bool(claims)
            if verbose:
                mark = "  FALSE: " + "; ".join(claims) if claims else ""
                print(f"{clip.name:22s} {scene.start:6.2f}-{scene.end:6.2f}  {scene.description}{mark}")
    return totals


def cartoon() -> tuple[int, int, int]:
    """(moments with a cue of their kind within 2 frames, moments, cues near no moment)."""
    from dubkit.scenes.base import describe_scenes
    from dubkit.scenes.visual_cues import VisualCuesCaptioner
    from dubkit.video.scan import scan_video

    truth = json.loads((ROOT / "samples" / "cartoon.truth.json").read_text())
    kind = {"pass": "whoosh"}
    moments = [(kind.get(m["kind"], m["kind"]), m["time"]) for m in truth["impacts"] + truth["events"]]
    cues = [c for s in describe_scenes(scan_video(ROOT / "samples" / "cartoon.mp4"), VisualCuesCaptioner()) for c in s.cues]
    tol = 2 / truth["fps"]
    hit = sum(any(c.kind == k and abs(c.time - t) <= tol for c in cues) for k, t in moments)
    false = sum(not any(abs(c.time - t) <= tol for _, t in moments) for c in cues)
    return hit, len(moments), false


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quiet", action="store_true", help="print the summary only")
    ap.add_argument("--window", type=float, default=0.5, help="seconds an impact may be from a listed contact")
    a = ap.parse_args()
    t = real_footage(a.window, not a.quiet)
    share = 100 * t["false_shots"] / max(1, t["shots"])
    print(f"\nreal footage ({len(list(REAL.glob('*.mp4')))} clips, {t['shots']} detected shots): "
          f"shots with a false claim {t['false_shots']} ({share:.0f} %, goal <= 5 %)")
    print(f"  false weather {t['weather']}, slams {t['slams']}, impacts with no visible contact {t['impacts']} "
          f"(impacts at a listed contact: {t['impacts_ok']})")
    hit, n, false = cartoon()
    print(f"synthetic sample: {hit}/{n} moments with a cue of their kind within 2 frames, {false} cues near none")


if __name__ == "__main__":
    main()
