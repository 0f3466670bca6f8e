"""Benchmark: do everyday captions sound like what they say? Each caption is rendered offline for 5 s through the
story path (AudioStoryPipeline: text planner + foley renderer, the same backends `dubkit story` uses) and tagged
by the independent AudioSet tagger in ../shared/eval/tag-audio (evaluation only, never a dependency). A caption
counts as recognised when one of its AudioSet classes is in the tagger's top 5. Prints the share and the misses,
with the library (installed sound sources) and, for comparison, synthesis only.

Measured 2026-12-01 with every default source installed (413 recordings, licence by): 36/45 (80 %); was 32/45.

Not a test (pytest does not collect it). Run from the project root after scripts/setup.sh:
    .venv/bin/python tests/bench/bench_library.py [--licence by] [--cache-dir DIR] [--no-baseline]
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
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# caption -> AudioSet classes (display names) that name that sound
CAPTIONS: dict[str, tuple[str, ...]] = {
    "a dog barking": ("Dog", "Bark", "Bow-wow", "Yip", "Growling", "Canidae, dogs, wolves", "Howl"),
    "a cat meowing": ("Cat", "Meow", "Caterwaul", "Purr"),
    "a rooster crowing": ("Chicken, rooster", "Crowing, cock-a-doodle-doo", "Cluck"),
    "a cow mooing": ("Cattle, bovinae", "Moo"),
    "a horse neighing": ("Horse", "Neigh, whinny", "Clip-clop"),
    "sheep bleating": ("Sheep", "Bleat", "Goat"),
    "a pig oinking": ("Pig", "Oink"),
    "a duck quacking": ("Duck", "Quack", "Goose"),
    "an owl hooting": ("Owl", "Hoot"),
    "frogs croaking": ("Frog", "Croak"),
    "a crow cawing": ("Crow", "Caw"),
    "birds singing": ("Bird", "Bird vocalization, bird call, bird song", "Chirp, tweet"),
    "a lion roaring": ("Roaring cats (lions, tigers)", "Roar"),
    "thunder": ("Thunder", "Thunderstorm"),
    "heavy rain": ("Rain", "Rain on surface", "Raindrop"),
    "wind blowing": ("Wind", "Wind noise (microphone)", "Rustling leaves"),
    "fire crackling": ("Fire", "Crackle"),
    "water pouring": ("Pour", "Water", "Water tap, faucet", "Trickle, dribble", "Fill (with liquid)", "Stream",
                      "Gush", "Liquid", "Sink (filling or washing)"),
    "a door slams shut": ("Door", "Slam"),
    "a knock on the door": ("Knock", "Door", "Tap"),
    "footsteps": ("Walk, footsteps", "Run", "Shuffle"),
    "applause": ("Applause", "Clapping", "Cheering"),
    "people chattering in a crowd": ("Chatter", "Crowd", "Hubbub, speech noise, speech babble", "Conversation",
                                     "Speech"),
    "a baby crying": ("Baby cry, infant cry", "Crying, sobbing"),
    "a helicopter flying overhead": ("Helicopter",),
    "a car horn honking": ("Vehicle horn, car horn, honking", "Toot", "Air horn, truck horn"),
    "a car engine revving": ("Car", "Engine", "Idling", "Accelerating, revving, vroom", "Engine starting",
                             "Motor vehicle (road)", "Medium engine (mid frequency)", "Race car, auto racing"),
    "a bus pulling away": ("Bus", "Truck", "Engine", "Idling", "Air brake", "Motor vehicle (road)",
                           "Heavy engine (low frequency)", "Accelerating, revving, vroom", "Engine starting"),
    "a jet plane taking off": ("Aircraft", "Aircraft engine", "Jet engine", "Fixed-wing aircraft, airplane"),
    "a train passing": ("Train", "Rail transport", "Railroad car, train wagon", "Train wheels squealing",
                        "Clickety-clack", "Train horn", "Train whistle"),
    "a steam train whistle": ("Train whistle", "Steam whistle", "Train", "Train horn", "Rail transport"),
    "a ship horn": ("Foghorn", "Ship", "Boat, Water vehicle", "Air horn, truck horn"),
    "a siren": ("Siren", "Police car (siren)", "Ambulance (siren)", "Emergency vehicle", "Civil defense siren",
                "Fire engine, fire truck (siren)"),
    "an explosion": ("Explosion", "Boom", "Eruption", "Artillery fire"),
    "a gunshot": ("Gunshot, gunfire", "Cap gun", "Machine gun", "Fusillade", "Artillery fire"),
    "a chainsaw": ("Chainsaw",),
    "a jackhammer": ("Jackhammer", "Power tool", "Drill"),
    "church bells ringing": ("Bell", "Church bell", "Change ringing (campanology)"),
    "a telephone ringing": ("Telephone", "Telephone bell ringing", "Ringtone"),
    "a clock ticking": ("Clock", "Tick", "Tick-tock"),
    "glass breaking": ("Glass", "Shatter", "Chink, clink", "Breaking"),
    "typing on a keyboard": ("Typing", "Computer keyboard", "Typewriter"),
    "coins dropping": ("Coin (dropping)",),
    "a cash register": ("Cash register",),
    "a drum roll": ("Drum roll", "Snare drum", "Drum"),
}
DURATION = 5.0


def render_all(out_dir: Path, *, use_library: bool, licence: str, cache_dir: str | None) -> dict[str, dict]:
    """Render every caption through the offline story path; returns caption -> {path, sources, seconds}."""
    from audiostory_core.pipeline import AudioStoryPipeline
    from audiostory_core.plan.auto import AutoPlanner
    from audiostory_core.render.foley.renderer import FoleyRenderer
    from audiostory_core.request import StoryRequest
    import soundfile as sf

    t0 = time.perf_counter()
    renderer = FoleyRenderer(use_system_samples=use_library, licence=licence, cache_dir=cache_dir)
    print(f"   renderer ready in {time.perf_counter() - t0:.1f} s: "
          f"{sum(len(lib.sounds) for lib in renderer.libraries)} recordings indexed, "
          f"{len(renderer.recordings)} admitted by licence {licence!r}")
    for note in renderer.notes:
        print(f"   note: {note}")
    pipe = AudioStoryPipeline(AutoPlanner(), renderer, crossfade=3.0)
    results = {}
    for k, caption in enumerate(CAPTIONS):
        t = time.perf_counter()
        track = pipe.generate(StoryRequest.from_text(caption, DURATION), seed=0)
        path = out_dir / f"{k:02d}.wav"
        sf.write(str(path), track.audio.T, track.sample_rate, subtype="PCM_24")
        results[caption] = {"path": path, "seconds": time.perf_counter() - t,
                            "sources": [Path(c.source.split(":", 1)[1]).name if c.source.startswith("library:")
                                        else c.source for c in track.clips],
                            "licences": sorted({cr["licence"] for c in track.clips for cr in c.credits})}
    return results


def tag(paths: list[Path]) -> dict[str, list[str]]:
    """Top-5 AudioSet classes per file, from the independent tagger (one process for all files)."""
    tool = ROOT.parent / "shared" / "eval" / "tag-audio"
    if not tool.exists():
        tool = Path("/work/shared/eval/tag-audio")
    env = dict(os.environ, PYTHONPATH="")
    env.setdefault("PYTHON", sys.executable)
    for attempt in range(3):  # the tagger unpacks its model into /tmp: a concurrent run can crash it
        run = subprocess.run([str(tool), "-k", "5", *map(str, paths)], capture_output=True, text=True, env=env,
                             cwd=ROOT)
        if run.returncode == 0:
            break
        time.sleep(5)
    else:
        raise SystemExit(f"tag-audio failed: {run.stderr.strip()[-500:]}")
    out = run.stdout
    tags = {}
    for line in out.splitlines():
        if " | " not in line:
            continue
        path, rest = line.split(" | ", 1)
        tags[path.strip()] = [re.sub(r"\s+\d+\.\d+$", "", item.strip()) for item in rest.split(";")]
    return tags


def score(results: dict[str, dict], label: str) -> float:
    tags = tag([r["path"] for r in results.values()])
    hits, misses = 0, []
    for caption, r in results.items():
        top5 = tags.get(str(r["path"]), [])
        ok = any(t in CAPTIONS[caption] for t in top5)
        hits += ok
        if not ok:
            misses.append((caption, r["sources"], top5))
    share = hits / len(results)
    print(f"\n== {label}: {hits}/{len(results)} recognised in the top 5 ({100 * share:.0f} %)")
    for caption, sources, top5 in misses:
        print(f"   MISS {caption!r:34} used {', '.join(sources)}\n        heard: {'; '.join(top5)}")
    return share


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--licence", default="by", help="cc0 | by | any")
    ap.add_argument("--cache-dir", default=None, help="the dubkit cache holding the installed library")
    ap.add_argument("--no-baseline", action="store_true", help="skip the synthesis-only comparison")
    ap.add_argument("--show", action="store_true", help="print every caption's sources and licences")
    a = ap.parse_args()
    print(f"{len(CAPTIONS)} captions, {DURATION:g} s each")
    with tempfile.TemporaryDirectory(prefix="bench-library-") as tmp:
        runs = [("library", True)] + ([] if a.no_baseline else [("synthesis only", False)])
        for label, use in runs:
            d = Path(tmp) / label.replace(" ", "-")
            d.mkdir()
            print(f"\n-- rendering ({label})")
            results = render_all(d, use_library=use, licence=a.licence, cache_dir=a.cache_dir)
            secs = [r["seconds"] for r in results.values()]
            print(f"   render: {sum(secs):.1f} s total, {max(secs):.2f} s slowest caption")
            if a.show:
                for caption, r in results.items():
                    print(f"   {caption!r:34} {', '.join(r['sources'])}  [{', '.join(r['licences'])}]")
            score(results, label)


if __name__ == "__main__":
    main()
