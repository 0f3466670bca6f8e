"""Benchmark: `dubkit dub` against the scenedetect CLI on the same files, side by side in one run.

Cases (each a fresh process, as a user runs them, default offline backends and deliverables):
- a 60 s 1280×720 24 fps clip cut from the real excerpts in samples/real/ (scaled and letterboxed to 720p), dubbed
  and detected `--repeat` times: best-of wall seconds, the ratio dub / scenedetect (goal ≤ 1.5×) and × real time
  (goal ≥ 20× at 720p), then the in-process time of every stage of one dub;
- the scaling table: that clip looped (stream copy) to each of `--lengths` minutes (default 1,5,10; add 30 when
  asked), to show the time grows linearly;
- a 10 s 3840×2160 clip from the same excerpts.
Each row prints wall s, × real time and the child's peak RSS. Not a test (pytest does not collect it); timings on a
shared machine are noisy: note `uptime` and take the best of several repeats.

With ``--variants``, the 60 s dub is also timed with features left out (no tagger, no score, neither, no
deliverables), to show what the time goes to.

Run:  .venv/bin/python tests/bench/bench_dub.py [--lengths 1,5,10,30] [--repeat 3] [--no-4k] [--no-stages] [--variants]
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "samples" / "real"
# The excerpts in an order that alternates looks (cartoon, street, hands, traffic ...): 87 s in all.
EXCERPTS = ["bbb_meadow", "cars_topdown", "bottles_hand", "street_bikes", "bbb_stream_bird", "person_room",
            "bbb_burrow_title", "bbb_wakeup", "dog_fireplace", "pigs_polka"]


def make_real_clip(path: Path, seconds: float, width: int, height: int) -> Path:
    """The real excerpts, each scaled (aspect kept, letterboxed) to ``width``×``height`` at 24 fps, one after
    the other, cut to ``seconds``; H.264 (veryfast, crf 23), no audio."""
    inputs: list[str] = []
    filt = ""
    for i, name in enumerate(EXCERPTS):
        inputs += ["-i", str(REAL / f"{name}.mp4")]
        filt += (f"[{i}:v]scale={width}:{height}:force_original_aspect_ratio=decrease,"
                 f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,fps=24,format=yuv420p,setsar=1[v{i}];")
    filt += "".join(f"[v{i}]" for i in range(len(EXCERPTS)))
    filt += f"concat=n={len(EXCERPTS)}:v=1:a=0,trim=duration={seconds}[out]"
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", filt, "-map", "[out]",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(path)], check=True)
    return path


def looped(base: Path, path: Path, seconds: float) -> Path:
    """``base`` repeated to ``seconds`` by stream copy (no re-encode: a 30 min clip is made in seconds)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(base), "-t", f"{seconds}",
                    "-c", "copy", str(path)], check=True)
    return path


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Run ``cmd``; its wall seconds, its peak RSS (MiB) and its CPU seconds (user + system, its own children
    included: ffmpeg), from wait4 for this child only. CPU seconds barely move with the machine's load."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): {stderr.decode()[-800:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def scenedetect(path: Path) -> tuple[float, float, float]:
    exe = shutil.which("scenedetect") or str(Path(sys.executable).with_name("scenedetect"))
    return timed([exe, "-q", "-i", str(path), "detect-content", "list-scenes", "-n", "-q"])


def _env() -> dict[str, str]:
    # As on a user's machine, dubkit's modules load from their cached bytecode: a PYTHONDONTWRITEBYTECODE in this
    # shell would have every run compile its ~120 modules from source again (0.2 s here).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def dub(path: Path, out_dir: Path, flags: tuple[str, ...] = ()) -> tuple[float, float, float]:
    return timed([sys.executable, "-m", "dubkit.cli", "dub", str(path), "-o", str(out_dir / f"{path.stem}.dubbed.mp4"),
                  "-q", *flags], _env())


def dub_without_deliverables(path: Path, out_dir: Path) -> tuple[float, float, float]:
    out = out_dir / f"{path.stem}.dubbed.mp4"  # (the API: the CLI always writes them)
    return timed([sys.executable, "-c", f"import dubkit; dubkit.dub({str(path)!r}, {str(out)!r}, deliverables=False)"],
                 _env())


# What the time goes to, by leaving features out (each a flag a user has): the captioner's tagger (the visual
# cues alone describe the shots), the score, or both; and the deliverables.
VARIANTS = {
    "dub (default)": (),
    "no tagger (--captioner cues)": ("--captioner", "cues"),
    "no score (--music off)": ("--music", "off"),
    "neither": ("--captioner", "cues", "--music", "off"),
}


def variants(path: Path, out_dir: Path, repeat: int) -> None:
    """Best-of-``repeat`` wall and CPU of each variant against scenedetect, alternating (the plan may change
    with what is left out: a shot named by the tagger can bring other sounds)."""
    cases = {name: functools.partial(dub, flags=flags) for name, flags in VARIANTS.items()}
    cases["no deliverables (API)"] = dub_without_deliverables
    runs: dict[str, list] = {k: [] for k in ["scenedetect", *cases]}
    for _ in range(repeat):
        runs["scenedetect"].append(scenedetect(path))
        for name, run in cases.items():
            runs[name].append(run(path, out_dir))
    sd = min(w for w, _, _ in runs["scenedetect"])
    print("\n| 60 s 720p, what is left out | wall | CPU | dub / scenedetect |\n|---|---|---|---|")
    for name, rs in runs.items():
        wall, cpu = min(w for w, _, _ in rs), min(c for _, _, c in rs)
        print(f"| {name} | {wall:.2f} s | {cpu:.1f} s | {wall / sd:.2f}× |", flush=True)


def duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def side_by_side(path: Path, out_dir: Path, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` wall and peak RSS of scenedetect and of dubkit on ``path``, alternating the two."""
    sd, dk = [], []
    for _ in range(repeat):
        sd.append(scenedetect(path))
        dk.append(dub(path, out_dir))
    (sd_wall, sd_rss, _), (dk_wall, dk_rss, _) = min(sd), min(dk)
    secs = duration(path)
    return {"seconds": secs, "sd": sd_wall, "sd_rss": sd_rss, "dub": dk_wall, "dub_rss": dk_rss,
            "sd_cpu": min(c for *_, c in sd), "dub_cpu": min(c for *_, c in dk),
            "ratio": dk_wall / sd_wall, "xrt": secs / dk_wall, "sd_xrt": secs / sd_wall}


def row(label: str, r: dict[str, float]) -> str:
    return (f"| {label} | {r['dub']:.1f} s | {r['dub_cpu']:.1f} s | {r['xrt']:.1f}× | {r['dub_rss']:.0f} MiB | "
            f"{r['sd']:.1f} s | {r['sd_cpu']:.1f} s | {r['sd_xrt']:.1f}× | {r['sd_rss']:.0f} MiB | {r['ratio']:.2f}× |")


HEADER = ("| input | dub wall | dub CPU | × real time | peak RSS | scenedetect wall | CPU | × real time | peak RSS "
          "| dub / scenedetect (wall) |\n|---|---|---|---|---|---|---|---|---|---|")


def stages(path: Path, out_dir: Path) -> None:
    """Every stage of one in-process dub (backends loaded in the run, deliverables written)."""
    sys.path.insert(0, str(ROOT))
    import dubkit

    t0 = time.perf_counter()
    res = dubkit.dub(path, out_dir / "stages.dubbed.mp4")
    wall = time.perf_counter() - t0
    print(f"\nstages of one dub of {path.name} in this process ({wall:.2f} s after imports):")
    print("  " + ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items()))
    print("  (mux runs beside deliverables: their sum exceeds the wall time they take)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="1,5,10", help="minutes, comma-separated (1,5,10,30 for the full table)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of the 60 s case (best-of)")
    ap.add_argument("--no-4k", action="store_true")
    ap.add_argument("--no-stages", action="store_true")
    ap.add_argument("--variants", action="store_true", help="also time the 60 s dub with features left out")
    args = ap.parse_args()
    print("load:", os.getloadavg(), "cores:", os.cpu_count())
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        base = make_real_clip(tmpd / "real60_720p.mp4", 60, 1280, 720)
        dub(base, tmpd)  # a first run writes the bytecode caches (timed runs then load as a user's do)
        r = side_by_side(base, tmpd, args.repeat)
        print(f"\n60 s 1280×720 (real excerpts), best of {args.repeat}: dub {r['dub']:.2f} s, scenedetect "
              f"{r['sd']:.2f} s -> dub / scenedetect {r['ratio']:.2f}× (goal ≤ 1.5×), {r['xrt']:.1f}× real time "
              f"(goal ≥ 20×); CPU s: dub {r['dub_cpu']:.2f}, scenedetect {r['sd_cpu']:.2f} -> {r['dub_cpu'] / r['sd_cpu']:.2f}×")
        if args.variants:
            variants(base, tmpd, args.repeat)
        print("\n" + HEADER)
        for minutes in [float(m) for m in args.lengths.split(",") if m.strip()]:
            clip = base if minutes == 1 else looped(base, tmpd / f"real{minutes:g}min.mp4", minutes * 60)
            print(row(f"{minutes:g} min 1280×720", r if minutes == 1 else side_by_side(clip, tmpd, 1)), flush=True)
            if clip != base:
                clip.unlink()
        if not args.no_4k:
            uhd = make_real_clip(tmpd / "real10_4k.mp4", 10, 3840, 2160)
            print(row("10 s 3840×2160", side_by_side(uhd, tmpd, 1)), flush=True)
        # Last: a child forked after this process grew reports this process's peak as its own (Linux ru_maxrss).
        if not args.no_stages:
            stages(base, tmpd)
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
