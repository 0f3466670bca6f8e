"""Small synthetic clips that real footage is full of and that hold no sound event at all: grain and compression
noise on a still picture, camera moves (pan, tilt, zoom, shake) over a still scene, limited animation (drawings
held for 2–3 frames, poses held), and on-screen text (pop-on, fade, typewriter, a lower third sliding in, a
credit roll). A captioner must find no weather, no impacts and no slams in any of them.

Frames are drawn with numpy/OpenCV (seeded) and encoded with libx264, like everything users give us.
"""
from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

FPS = 24
W, H = 192, 108


def encode(path: Path, frames: Iterator[np.ndarray], *, crf: int = 23, fps: int = FPS) -> Path:
    """RGB uint8 frames → H.264 MP4 at ``fps``."""
    first = next(frames)
    h, w = first.shape[:2]
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps),
         "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p", str(path)],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(first.tobytes())
    for f in frames:
        proc.stdin.write(np.ascontiguousarray(f).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return path


def scenery(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A photo-like still: soft light and shade at several scales, hard-edged shapes, fine texture (float 0..1 RGB)."""
    img = np.zeros((h, w, 3), np.float32)
    for scale, amp in ((64, 0.35), (16, 0.2), (4, 0.08)):
        small = rng.random((max(2, h // scale), max(2, w // scale), 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(w * h // 3000):  # buildings, windows, posts: edges a camera move drags across the frame
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        bw, bh = int(rng.integers(4, 40)), int(rng.integers(4, 60))
        color = tuple(float(c) for c in rng.random(3))
        cv2.rectangle(img, (x, y), (x + bw, y + bh), color, -1 if rng.random() < 0.7 else 1)
    return np.clip(img / img.max(), 0, 1)


def _view(canvas: np.ndarray, cx: float, cy: float, zoom: float, w: int, h: int) -> np.ndarray:
    """The camera's picture: a (w, h) window of ``canvas`` centred at (cx, cy), ``zoom`` times magnified."""
    m = np.array([[zoom, 0, w / 2 - zoom * cx], [0, zoom, h / 2 - zoom * cy]], np.float32)
    out = cv2.warpAffine(canvas, m, (w, h), flags=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def noise_only(path: Path, seconds: float = 4.0, sigma: float = 0.05, seed: int = 1, size: tuple[int, int] = (W, H)) -> Path:
    """A still picture under heavy film grain (fresh every frame), compressed hard: nothing moves."""
    rng = np.random.default_rng(seed)
    W, H = size
    still = scenery(rng, W, H)

    def frames():
        for _ in range(int(seconds * FPS)):
            grain = rng.normal(0, sigma, (H, W, 1)).astype(np.float32) + rng.normal(0, sigma / 3, (H, W, 3))
            yield (np.clip(still + grain, 0, 1) * 255).astype(np.uint8)

    return encode(path, frames(), crf=32)


def camera_moves(path: Path, seed: int = 2, grain: float = 0.0, size: tuple[int, int] = (W, H)) -> Path:
    """Over a still scene: still, a pan that speeds up and stops dead, a fast tilt that stops, a zoom in, handheld
    shake, a whip pan back — every move a camera makes, none of them a sound event (``grain``: add film grain)."""
    rng = np.random.default_rng(seed)
    W, H = size
    k = W / 192  # moves scale with the picture
    canvas = scenery(rng, W * 4, H * 4)
    cx, cy, zoom = W * 1.2, H * 1.5, 1.0
    path_: list[tuple[float, float, float]] = []
    n = FPS  # one second
    path_ += [(cx, cy, zoom)] * (n // 2)
    for i in range(int(1.5 * n)):  # pan right, speeding up, then a dead stop (a camera stop is no slam)
        cx += k * (0.5 + 3.5 * i / (1.5 * n))
        path_.append((cx, cy, zoom))
    path_ += [(cx, cy, zoom)] * (n // 2)
    for _ in range(n // 2):  # fast tilt down, stops dead
        cy += 3.0 * k
        path_.append((cx, cy, zoom))
    path_ += [(cx, cy, zoom)] * (n // 3)
    for _ in range(n):  # zoom in
        zoom *= 1.012
        path_.append((cx, cy, zoom))
    for _ in range(n):  # handheld shake
        path_.append((cx + rng.normal(0, 1.5 * k), cy + rng.normal(0, 1.5 * k), zoom))
    for i in range(n // 3):  # whip pan back
        cx -= 12.0 * k
        path_.append((cx, cy, zoom))
    path_ += [(cx, cy, zoom)] * (n // 2)

    def frames():
        for x, y, z in path_:
            im = _view(canvas, x, y, z, W, H).astype(np.float32) / 255
            if grain:
                im = im + rng.normal(0, grain, (H, W, 1))
            yield (np.clip(im, 0, 1) * 255).astype(np.uint8)

    return encode(path, frames(), crf=26 if grain else 23)


def _ease(s: float) -> float:
    return 0.5 - 0.5 * np.cos(np.pi * min(max(s, 0.0), 1.0))


def limited_animation(path: Path, seed: int = 3) -> Path:
    """A cartoon character on a painted background, animated on twos and threes: it walks across (eased), holds a
    pose, bobs up and settles, waves an arm, holds again. Poses held and drawings held 2–3 frames; no contact."""
    rng = np.random.default_rng(seed)
    bg = (scenery(rng, W, H) * 0.5 + 0.35).clip(0, 1)

    def draw(x: float, y: float, arm: float) -> np.ndarray:
        im = (bg * 255).astype(np.uint8).copy()
        c = (int(x), int(y))
        cv2.ellipse(im, c, (14, 20), 0, 0, 360, (230, 120, 60), -1)  # body
        cv2.circle(im, (c[0], c[1] - 26), 9, (240, 200, 160), -1)  # head
        cv2.circle(im, (c[0] + 3, c[1] - 28), 2, (20, 20, 20), -1)
        end = (int(c[0] + 22 * np.cos(arm)), int(c[1] - 6 - 22 * np.sin(arm)))
        cv2.line(im, (c[0] + 10, c[1] - 6), end, (230, 120, 60), 4)  # arm
        return im

    poses: list[tuple[float, float, float]] = []
    n = FPS
    for i in range(int(1.5 * n)):  # walk right, eased in and out
        s = _ease(i / (1.5 * n))
        poses.append((30 + 110 * s, 70 + 3 * np.sin(i * 0.8), 0.3))
    poses += [poses[-1]] * (n // 2)  # hold the pose
    x = poses[-1][0]
    for i in range(n):  # bob up and settle (ease out)
        poses.append((x, 70 - 12 * np.sin(np.pi * _ease(i / n)), 0.3))
    for i in range(int(1.5 * n)):  # wave the arm
        poses.append((x, 70, 0.3 + 0.9 * np.sin(i / (1.5 * n) * 4 * np.pi) ** 2))
    poses += [poses[-1]] * (n // 2)

    def frames():
        held = None
        for i, p in enumerate(poses):
            step = 2 if i < 2 * n else 3  # on twos, then on threes
            if i % step == 0 or held is None:
                held = draw(*p)
            yield held

    return encode(path, frames())


def on_screen_text(path: Path) -> Path:
    """Titles: a title pops on and fades out, a line types itself out, a lower third slides in and stops dead, a
    credit roll scrolls up. Text everywhere; nothing hits anything."""
    n = FPS
    font = cv2.FONT_HERSHEY_SIMPLEX
    base = np.zeros((H, W, 3), np.uint8)
    base[:] = (25, 30, 45)

    def at(i: int) -> np.ndarray:
        im = base.copy()
        t = i / n
        if 0.4 <= t < 2.0:
            alpha = 1.0 if t < 1.5 else 1 - (t - 1.5) / 0.5
            layer = im.copy()
            cv2.putText(layer, "THE TITLE", (28, 50), font, 0.8, (240, 240, 240), 2, cv2.LINE_AA)
            im = cv2.addWeighted(layer, alpha, im, 1 - alpha, 0)
        if 2.2 <= t < 4.5:
            line = "typed one letter at a time"
            k = min(len(line), int((t - 2.2) * n / 2))
            cv2.putText(im, line[:k], (6, 30), font, 0.4, (220, 220, 120), 1, cv2.LINE_AA)
        if 3.2 <= t < 5.0:
            s = min(1.0, (t - 3.2) / 0.3)
            x0 = int(-120 + 126 * s)  # fast, then stops dead
            cv2.rectangle(im, (x0, 76), (x0 + 120, 96), (40, 90, 200), -1)
            cv2.putText(im, "Jane Doe, director", (x0 + 4, 91), font, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        if t >= 5.0:
            y = int(H + 10 - (t - 5.0) * 40)
            for k, name in enumerate(("CAST", "Jane Doe", "John Roe", "A. N. Other", "MUSIC", "Someone")):
                cv2.putText(im, name, (50, y + 18 * k), font, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
        return im

    return encode(path, (at(i) for i in range(int(7.0 * n))))


def precipitation(path: Path, kind: str = "rain", seconds: float = 4.0, seed: int = 4, pan: float = 0.0,
                  size: tuple[int, int] = (W, H)) -> Path:
    """Rain (thin motion-blurred streaks falling fast, each drop seen on a few frames) or snow (soft flakes drifting
    down and sideways, each seen for seconds) over a still scene with light grain; ``pan``: pixels per frame."""
    rng = np.random.default_rng(seed)
    W, H = size
    canvas = scenery(rng, W * 3, H) * 0.6
    n = int(seconds * FPS)
    count = int((260 if kind == "rain" else 160) * W * H / (192 * 108))
    pos = np.c_[rng.uniform(0, W, count), rng.uniform(0, H, count)]
    speed = (rng.uniform(9, 14, count) if kind == "rain" else rng.uniform(0.8, 1.8, count)) * H / 108
    size = rng.uniform(0.8, 1.6, count) if kind == "snow" else np.ones(count)

    def frames():
        for i in range(n):
            im = _view(canvas, W / 2 + W + pan * i, H / 2, 1.0, W, H).astype(np.float32) / 255
            layer = np.zeros((H, W), np.float32)
            for k, ((x, y), v, r) in enumerate(zip(pos, speed, size)):
                if kind == "rain":  # the streak a drop paints while the shutter is open
                    cv2.line(layer, (int(x), int(y)), (int(x + 0.15 * v), int(y + 0.6 * v)), 0.55, 1, cv2.LINE_AA)
                else:
                    cv2.circle(layer, (int(x), int(y)), int(round(r)), 0.8, -1, cv2.LINE_AA)
            im = np.maximum(im, layer[..., None] * np.array([0.85, 0.9, 1.0], np.float32))
            im += rng.normal(0, 0.015, (H, W, 1))
            pos[:, 1] += speed
            pos[:, 0] += 0.25 * speed if kind == "rain" else rng.normal(0, 0.4, count)
            gone = pos[:, 1] > H + 10
            pos[gone] = np.c_[rng.uniform(-10, W, gone.sum()), rng.uniform(-20, 0, gone.sum())]
            yield (np.clip(im, 0, 1) * 255).astype(np.uint8)

    return encode(path, frames())


CLIPS: dict[str, Callable[[Path], Path]] = {
    "noise": noise_only,
    "camera": camera_moves,
    "camera_grain": lambda p: camera_moves(p, grain=0.04),
    "limited_animation": limited_animation,
    "text": on_screen_text,
}
PRECIPITATION: dict[str, Callable[[Path], Path]] = {
    "rain": precipitation,
    "rain_pan": lambda p: precipitation(p, pan=1.5),
    "snow": lambda p: precipitation(p, "snow"),
}
