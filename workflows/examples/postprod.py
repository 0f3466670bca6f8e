"""Example post-production script on the Python API: dub a reel, then hand the editor what they need.

    python workflows/examples/postprod.py reel.mp4 --out deliveries/ [--library ~/sfx]

It dubs with a fixed seed (re-running reproduces the exact soundtrack), prints per-stage timings and the
backends used, lists the plan's sound events as a cue sheet, and appends a line to a CSV delivery log. For many
files use ``dubkit batch`` or ``dubkit watch`` (same options), which add the durable queue and retries.
"""
from __future__ import annotations

import argparse
import csv
import sys
from datetime import datetime, timezone
from pathlib import Path

import dubkit
from dubkit.errors import DubkitError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--out", type=Path, default=Path("deliveries"))
    ap.add_argument("--library", type=Path, action="append", default=[], help="a folder of your own sound effects")
    ap.add_argument("--loudness", type=float, default=-23.0, help="integrated LUFS target (-23 broadcast, -14 web)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    output = args.out / f"{args.video.stem}.dubbed{args.video.suffix or '.mp4'}"
    try:
        result = dubkit.dub(args.video, output, seed=args.seed, library=args.library, loudness=args.loudness,
                            stems=True, progress=lambda msg: print(f"  {msg}", file=sys.stderr))
    except DubkitError as e:  # bad input, missing model files, ...: one actionable line
        print(f"error: {e}", file=sys.stderr)
        return 2

    print(f"wrote {result.output}")
    print("backends: " + ", ".join(f"{k}={v}" for k, v in result.backends.items()))
    print("timings:  " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()))
    print("cue sheet:")
    for ev in result.plan.events:
        print(f"  {ev.start:8.3f}  {ev.duration:6.3f}  {ev.caption}")

    log = args.out / "deliveries.csv"
    new = not log.exists()
    with open(log, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["when", "input", "output", "seconds", "backends"])
        w.writerow([datetime.now(timezone.utc).isoformat(timespec="seconds"), args.video, result.output,
                    f"{sum(result.timings.values()):.1f}", ";".join(f"{k}={v}" for k, v in result.backends.items())])
    return 0


if __name__ == "__main__":
    sys.exit(main())
