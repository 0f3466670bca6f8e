"""Generate ``samples/cartoon.mp4`` (a silent cartoon) and its truth file ``samples/cartoon.truth.json``.

Why generated and not downloaded: tests need to know *exactly* where every cut and every impact is. Every frame is
drawn from numbers (numpy + PIL, seeded), so a cut sits on a known frame boundary and a ball touches the floor on a
known frame; the truth file records those frames and tests measure dubkit's sync against them.

Run:  .venv/bin/python samples/make_samples.py            (writes samples/cartoon.mp4 + cartoon.truth.json)
      .venv/bin/python samples/make_samples.py --size 1280x720 --repeat 2 --out /tmp/long.mp4   (a bench clip)
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

W, H, FPS = 854, 480, 24
SEED = 20260
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ShotSpec:
    start: int  # first frame
    end: int  # exclusive
    name: str
    description: str


SHOTS = [
    ShotSpec(0, 108, "meadow", "calm sunny meadow: blue sky, white clouds drifting slowly, green grass swaying"),
    ShotSpec(108, 228, "ball", "a red ball drops into a beige room and bounces five times on a brown floor, then rolls to a stop"),
    ShotSpec(228, 324, "door", "dark teal hallway: an open wooden door swings faster and faster and slams shut"),
    ShotSpec(324, 408, "whizz", "bright yellow sky over orange hills: a blue rocket whizzes across the frame from left to right"),
    ShotSpec(408, 552, "rain", "dark blue-grey stormy night with rain streaks falling; two lightning flashes"),
    ShotSpec(552, 648, "glass", "purple kitchen: a glass slides off a table, falls and shatters on the floor"),
    ShotSpec(648, 720, "car", "pale road scene: a red car drives past from right to left"),
]
N_FRAMES = SHOTS[-1].end

# Exact frames of the events (absolute frame indices).
BALL_IMPACTS = [122, 144, 162, 176, 186]  # ball touches the floor (shot 1 starts at 108)
DOOR_SHUT = 280  # first frame on which the door is fully shut
WHIZZ_CENTRE = 364  # rocket crosses the frame centre at its top speed
LIGHTNING = [448, 508]  # first frame of each flash
GLASS_HIT = 588  # glass touches the floor and shatters
CAR_CENTRE = 684  # car's centre crosses the frame centre


def _vgradient(top: tuple[int, int, int], bottom: tuple[int, int, int], h: int, w: int = W) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    row = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    return np.broadcast_to(row, (h, w, 3)).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------- the shots


def _meadow(rng: np.random.Generator) -> Iterator[np.ndarray]:
    sky = _vgradient((70, 140, 230), (170, 210, 245), 330)
    grass = _vgradient((80, 170, 60), (40, 110, 30), H - 330)
    base = np.concatenate([sky, grass], axis=0)
    clouds = [(rng.uniform(0, W), rng.uniform(30, 180), rng.uniform(50, 100)) for _ in range(4)]
    blades = [(rng.uniform(0, W), rng.uniform(345, H), rng.uniform(15, 35), rng.uniform(0, 2 * math.pi)) for _ in range(90)]
    for i in range(108):
        im = Image.fromarray(base.copy())
        d = ImageDraw.Draw(im)
        d.ellipse((700, 40, 780, 120), fill=(255, 235, 120))  # the sun
        for cx, cy, r in clouds:
            x = (cx + 0.6 * i) % (W + 200) - 100  # slow drift
            for dx, dy, rr in ((0, 0, 1.0), (-0.8, 0.2, 0.7), (0.8, 0.2, 0.7)):
                rad = r * rr * 0.6
                d.ellipse((x + dx * r - rad, cy + dy * r - rad, x + dx * r + rad, cy + dy * r + rad), fill=(250, 250, 252))
        for bx, by, ln, ph in blades:
            sway = 4 * math.sin(2 * math.pi * i / 60 + ph)
            d.line((bx, by, bx + sway, by - ln), fill=(30, 95, 25), width=3)
        yield np.asarray(im)


def _ball(rng: np.random.Generator) -> Iterator[np.ndarray]:
    wall = _vgradient((235, 215, 175), (220, 195, 150), 410)
    floor = _vgradient((140, 90, 50), (110, 70, 40), H - 410)
    base = np.concatenate([wall, floor], axis=0)
    floor_y, r, g = 410.0, 30.0, 4.0  # floor line, ball radius, gravity in px/frame^2
    impacts = [f - 108 for f in BALL_IMPACTS]
    for i in range(120):
        if i <= impacts[0]:
            bottom = floor_y - 0.5 * g * (impacts[0] ** 2 - i**2)  # dropped from rest above the frame
        elif i >= impacts[-1]:
            bottom = floor_y  # came to rest vertically, keeps rolling
        else:
            k = max(j for j, f in enumerate(impacts) if f <= i)
            s, T = i - impacts[k], impacts[k + 1] - impacts[k]
            bottom = floor_y - 0.5 * g * s * (T - s)  # parabola between two floor hits
        # Horizontal: steady drift while bouncing, then rolls to a stop.
        roll = min(max(i - 78, 0), 20)
        x = 120 + 4.0 * min(i, 78) + 4.0 * roll - 0.1 * roll**2
        im = Image.fromarray(base.copy())
        d = ImageDraw.Draw(im)
        d.rectangle((560, 90, 720, 220), fill=(120, 160, 200), outline=(90, 70, 50), width=6)  # a window
        d.ellipse((x - 45, floor_y - 6, x + 45, floor_y + 6), fill=(95, 60, 35))  # shadow
        cy = bottom - r
        d.ellipse((x - r, cy - r, x + r, cy + r), fill=(220, 30, 40))
        d.ellipse((x - r * 0.5, cy - r * 0.6, x - r * 0.1, cy - r * 0.2), fill=(250, 150, 150))
        yield np.asarray(im)


def _door(rng: np.random.Generator) -> Iterator[np.ndarray]:
    base = _vgradient((40, 85, 90), (25, 60, 65), H)
    shut_rel, start_rel = DOOR_SHUT - 228, 30
    x0, y0, w, h = 300, 90, 200, 330  # door frame opening
    for i in range(96):
        # The free edge of the panel sweeps towards the frame ever faster and stops dead on `shut_rel`.
        s = min(max((i - start_rel) / (shut_rel - start_rel), 0.0), 1.0)
        closed = s * s
        im = Image.fromarray(base.copy())
        d = ImageDraw.Draw(im)
        d.rectangle((0, 420, W, H), fill=(60, 45, 35))  # floor
        d.rectangle((x0 - 14, y0 - 14, x0 + w + 14, y0 + h), fill=(90, 60, 35))  # frame
        d.rectangle((x0, y0, x0 + w, y0 + h), fill=(10, 10, 15))  # dark doorway
        pw = 35 + (w - 35) * closed  # apparent width of the panel, hinged on the left
        skew = 25 * (1 - closed)
        d.polygon([(x0, y0), (x0 + pw, y0 - skew), (x0 + pw, y0 + h + skew * 0.2), (x0, y0 + h)], fill=(190, 130, 70))
        if pw > 30:
            d.ellipse((x0 + pw - 28, y0 + 160, x0 + pw - 14, y0 + 174), fill=(230, 200, 90))  # knob
        d.rectangle((620, 150, 720, 250), fill=(200, 200, 170), outline=(90, 60, 35), width=5)  # a picture
        yield np.asarray(im)


def _whizz(rng: np.random.Generator) -> Iterator[np.ndarray]:
    sky = _vgradient((255, 225, 60), (255, 190, 70), 360)
    hills = _vgradient((230, 130, 40), (190, 100, 30), H - 360)
    base = np.concatenate([sky, hills], axis=0)
    centre = WHIZZ_CENTRE - 324
    for i in range(84):
        im = Image.fromarray(base.copy())
        d = ImageDraw.Draw(im)
        d.ellipse((-100, 320, 300, 520), fill=(200, 105, 35))
        d.ellipse((500, 330, 1000, 560), fill=(205, 110, 35))
        x = W / 2 + 700 * math.tanh((i - centre) / 5.0)  # fastest exactly at the centre frame
        v = 140 / math.cosh((i - centre) / 5.0) ** 2
        y = 200 - 20 * math.tanh((i - centre) / 5.0)
        if -80 < x < W + 80:
            for k in range(1, 4):  # speed lines behind it
                d.line((x - 40 - k * 0.4 * v, y - 12 + 12 * (k - 2), x - 40, y - 12 + 12 * (k - 2)), fill=(255, 250, 210), width=3)
            d.polygon([(x - 45, y - 18), (x + 25, y - 18), (x + 55, y), (x + 25, y + 18), (x - 45, y + 18)], fill=(40, 70, 200))
            d.polygon([(x - 45, y - 18), (x - 60, y - 34), (x - 25, y - 18)], fill=(200, 30, 30))
            d.polygon([(x - 45, y + 18), (x - 60, y + 34), (x - 25, y + 18)], fill=(200, 30, 30))
        yield np.asarray(im)


def _rain(rng: np.random.Generator) -> Iterator[np.ndarray]:
    sky = _vgradient((35, 45, 70), (55, 65, 85), 380)
    ground = _vgradient((30, 35, 40), (20, 25, 30), H - 380)
    base = np.concatenate([sky, ground], axis=0).astype(np.float32)
    flash_profile = [1.0, 0.55, 0.25, 0.08]  # one bright spike that fades over a few frames
    flashes = {f - 408: k for k, f in enumerate(LIGHTNING)}
    bolts = [[(250, 0), (230, 80), (270, 140), (240, 230), (280, 300)], [(620, 0), (650, 90), (600, 170), (640, 260)]]
    glow = 0.0
    bolt = None
    for i in range(144):
        if i in flashes:
            glow, age, bolt = 1.0, 0, bolts[flashes[i]]
        elif bolt is not None:
            age += 1
            glow = flash_profile[age] if age < len(flash_profile) else 0.0
        lit = base + glow * (np.array([215, 215, 225], np.float32) - base) * 0.85
        im = Image.fromarray(lit.clip(0, 255).astype(np.uint8))
        d = ImageDraw.Draw(im)
        d.polygon([(0, 380), (120, 300), (260, 360), (420, 290), (600, 370), (854, 310), (854, 380)], fill=(20, 25, 35))
        if bolt is not None and glow > 0.3:
            d.line(bolt, fill=(255, 255, 240), width=5)
        xs, ys = rng.uniform(-40, W, 70), rng.uniform(-30, H, 70)
        for x, y in zip(xs, ys):  # fresh streaks every frame: fast, fine, downward
            d.line((x, y, x + 6, y + 26), fill=(150, 165, 190), width=1)
        yield np.asarray(im)


def _glass(rng: np.random.Generator) -> Iterator[np.ndarray]:
    wall = _vgradient((120, 60, 140), (95, 45, 115), 400)
    floor = _vgradient((70, 40, 60), (55, 30, 45), H - 400)
    base = np.concatenate([wall, floor], axis=0)
    hit = GLASS_HIT - 552
    table_y, floor_y, edge = 200, 420, 330
    shards = [(rng.uniform(-9, 9), rng.uniform(-14, -5), rng.uniform(8, 18)) for _ in range(18)]
    for i in range(96):
        im = Image.fromarray(base.copy())
        d = ImageDraw.Draw(im)
        d.rectangle((0, table_y, edge, table_y + 18), fill=(150, 100, 55))  # table top
        d.rectangle((40, table_y + 18, 60, floor_y), fill=(120, 80, 45))
        if i < hit:
            # Slides to the edge, then falls: timed so the bottom touches the floor exactly on frame `hit`.
            fall = 14  # frames in the air
            if i < hit - fall:
                x, bottom = 200 + 130 * min(1.0, (i / (hit - fall))), table_y
            else:
                s = i - (hit - fall)
                x, bottom = 330 + 3 * s, table_y + (floor_y - table_y) * (s / fall) ** 2
            d.polygon([(x - 27, bottom - 90), (x + 27, bottom - 90), (x + 19, bottom), (x - 19, bottom)], fill=(190, 235, 245))
            d.rectangle((x - 19, bottom - 45, x + 19, bottom - 5), fill=(150, 210, 235))
        else:
            s = i - hit
            x0 = 330 + 3 * 14
            if s < 2:  # a cartoon burst on the frame of the hit and the next
                r = 34 - 12 * s
                star = [(x0 + (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 6),
                         floor_y - 8 + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 6) * 0.7) for k in range(12)]
                d.polygon(star, fill=(235, 250, 255))
            for vx, vy, size in shards:  # shards fly out and up, then lie on the floor
                t = s
                y = floor_y - 6 + vy * t + 0.5 * 2.0 * t * t
                landed = y > floor_y - 4
                y = min(y, floor_y - 4)
                t_land = (-vy + math.sqrt(vy * vy + 2 * 2.0 * 2)) / 2.0 if landed else t
                x = x0 + vx * min(t, t_land) * 1.5
                d.polygon([(x, y - size), (x + size * 0.7, y), (x - size * 0.6, y + size * 0.3)], fill=(200, 240, 250))
        yield np.asarray(im)


def _car(rng: np.random.Generator) -> Iterator[np.ndarray]:
    sky = _vgradient((205, 225, 230), (225, 235, 235), 300)
    road = _vgradient((150, 150, 155), (120, 120, 125), H - 300)
    base = np.concatenate([sky, road], axis=0)
    centre = CAR_CENTRE - 648
    for i in range(72):
        im = Image.fromarray(base.copy())
        d = ImageDraw.Draw(im)
        for k in range(6):
            d.rectangle((k * 170 + 20, 395, k * 170 + 110, 403), fill=(240, 240, 240))  # lane marks
        x = W / 2 - 32.0 * (i - centre)  # right to left, constant speed
        d.rounded_rectangle((x - 120, 300, x + 120, 370), radius=18, fill=(200, 35, 35))
        d.polygon([(x - 70, 300), (x - 40, 255), (x + 50, 255), (x + 80, 300)], fill=(180, 30, 30))
        d.polygon([(x - 55, 298), (x - 35, 265), (x + 5, 265), (x + 5, 298)], fill=(170, 210, 230))
        for wx in (x - 70, x + 70):
            d.ellipse((wx - 26, 345, wx + 26, 397), fill=(25, 25, 25))
            d.ellipse((wx - 10, 361, wx + 10, 381), fill=(170, 170, 170))
        yield np.asarray(im)


RENDERERS = {"meadow": _meadow, "ball": _ball, "door": _door, "whizz": _whizz, "rain": _rain, "glass": _glass, "car": _car}


def frames(seed: int = SEED) -> Iterator[np.ndarray]:
    """Every frame of the cartoon, in order, as (H, W, 3) uint8 RGB."""
    rng = np.random.default_rng(seed)
    for shot in SHOTS:
        n = 0
        for frame in RENDERERS[shot.name](rng):
            n += 1
            yield frame
        assert n == shot.end - shot.start, (shot.name, n)


# ---------------------------------------------------------------------------------------------------- writing


def encode(frame_iter: Iterator[np.ndarray], out: Path, *, size: tuple[int, int] = (W, H), fps: int = FPS, crf: int = 23) -> None:
    """Pipe RGB frames to ffmpeg (rawvideo → H.264 yuv420p, no audio). ``size`` other than the drawing size scales."""
    cmd = [
        "ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
        "-framerate", str(fps), "-i", "-", "-an",
        *(["-vf", f"scale={size[0]}:{size[1]}:flags=bicubic"] if size != (W, H) else []),
        "-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv420p", "-g", str(4 * fps),
        "-threads", "1", "-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact",
        "-flags:v", "+bitexact", str(out),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        for f in frame_iter:
            proc.stdin.write(np.ascontiguousarray(f, dtype=np.uint8).tobytes())
    finally:
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed writing {out}")


def truth(fps: int = FPS) -> dict:
    """Where everything is, in frames and seconds (a frame's time is index / fps)."""

    def t(frame: int) -> float:
        return round(frame / fps, 6)

    def impact(frame: int, kind: str, description: str) -> dict:
        return {"time": t(frame), "frame": frame, "kind": kind, "description": description}

    impacts = [impact(f, "impact", f"red ball hits the floor (bounce {k + 1})") for k, f in enumerate(BALL_IMPACTS)]
    impacts.append(impact(DOOR_SHUT, "slam", "wooden door slams shut"))
    impacts += [impact(f, "flash", f"lightning flash {k + 1}") for k, f in enumerate(LIGHTNING)]
    impacts.append(impact(GLASS_HIT, "impact", "glass hits the floor and shatters"))
    impacts.sort(key=lambda d: d["frame"])
    return {
        "fps": fps,
        "width": W,
        "height": H,
        "frame_count": N_FRAMES,
        "duration": t(N_FRAMES),
        "has_audio": False,
        "cuts": [t(s.start) for s in SHOTS[1:]],
        "cut_frames": [s.start for s in SHOTS[1:]],
        "impacts": impacts,
        # Not impacts, but moments a sound designer scores: the time of fastest motion / closest pass.
        "events": [
            impact(WHIZZ_CENTRE, "whoosh", "blue rocket whizzes across, fastest at the frame centre"),
            impact(CAR_CENTRE, "pass", "red car drives past, crossing the frame centre"),
        ],
        "shots": [
            {"start": t(s.start), "end": t(s.end), "start_frame": s.start, "end_frame": s.end, "name": s.name,
             "description": s.description}
            for s in SHOTS
        ],  # fmt: skip
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "cartoon.mp4")
    ap.add_argument("--size", default=f"{W}x{H}", help="output WxH (drawn at 854x480, scaled by ffmpeg)")
    ap.add_argument("--repeat", type=int, default=1, help="play the cartoon this many times (longer bench clips)")
    ap.add_argument("--crf", type=int, default=23)
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x"))

    def all_frames() -> Iterator[np.ndarray]:
        for _ in range(a.repeat):
            yield from frames()

    encode(all_frames(), a.out, size=size, crf=a.crf)  # type: ignore[arg-type]
    if a.repeat == 1:
        a.out.with_suffix(".truth.json").write_text(json.dumps(truth(), indent=2) + "\n")
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
