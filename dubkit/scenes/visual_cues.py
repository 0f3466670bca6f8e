"""A captioner with no weights: what moves, how, when it hits, flashes or whizzes past — from the scan's features.

Why: a sound designer spots effects on *moments* (the frame a ball lands, a door shuts, lightning strikes) and
lays beds on *character* (dark and rainy, bright and calm). Both can be read from cheap per-frame measurements
taken during the single decoding pass (``FrameFeatures``: brightness, motion, the centroid of the changed pixels,
mean colour) plus the shot's keyframes for its palette. No model, so it always works and is exact in time.

The features are read with the camera's own motion already removed (``video/features.py``), so a pan, a zoom or
a shaking hand is not an object moving, and a camera that stops is not a slam.

How the moments are found (times come from the frames' own timestamps, so variable frame rates are fine):
- flash: brightness jumps up and falls back within ``flash_return`` seconds (lightning, a camera flash);
- impact: the moving region travelled smoothly and then, within about a frame, reversed or swerved (a ball
  bouncing, a glass hitting the floor);
- slam: a compact moving region travels, still speeding up, and stops dead inside the frame, and nothing moves
  for a quarter of a second after it (a door shutting). A pose that eases into a hold, a title fading in or
  popping on, a drawing held for a few frames (limited animation) do not travel into a dead stop;
- whoosh: a region travels fast and straight across the frame without hitting anything; the cue sits where it
  crosses the middle of the frame (where a pass-by is loudest), or at its fastest.

Every cue carries a ``confidence``: how well the moment matches its pattern and how trustworthy the reading was
(one compact moving thing, a still camera, no scattered specks). Below ``min_confidence`` a cue is not reported;
below ``sure`` it is reported in plain words ("something hits something" rather than "object hits the ground").

Precipitation is only said when the change has its structure for most of the shot: many small specks over the
whole frame that are streaks sharing one near-vertical direction (rain), or flakes that persist and drift down
(snow). Grain and compression noise have neither; grass and leaves stirring in place repeat at no shift. No
other weather is guessed from motion.
"""
from __future__ import annotations

import numpy as np

from audiostory_core.request import Cue, Scene

from ..video.types import FrameFeatures, Shot, ShotFrames

# Named colours for palettes (sRGB 0..255); nearest-name in RGB is plenty for "a dark blue-grey scene".
COLOR_NAMES: dict[str, tuple[int, int, int]] = {
    "black": (15, 15, 18), "dark grey": (60, 62, 68), "grey": (128, 128, 132), "light grey": (195, 195, 198),
    "white": (245, 245, 245), "red": (200, 35, 40), "dark red": (120, 25, 25), "orange": (230, 130, 40),
    "yellow": (250, 215, 60), "beige": (225, 205, 160), "brown": (125, 80, 45), "green": (70, 150, 55),
    "dark green": (30, 80, 30), "teal": (35, 80, 85), "sky blue": (120, 180, 235), "blue": (45, 75, 200),
    "navy": (30, 40, 75), "blue-grey": (85, 95, 115), "purple": (110, 55, 130), "pink": (230, 150, 180),
}  # fmt: skip
_NAMES = list(COLOR_NAMES)
_RGB = np.array([COLOR_NAMES[n] for n in _NAMES], dtype=np.float32)


def palette(images: list[np.ndarray], top: int = 3, min_share: float = 0.08) -> list[tuple[str, float]]:
    """The named colours covering the most of the keyframes, with their share of the pixels."""
    if not images:
        return []
    px = np.concatenate([im[::4, ::4].reshape(-1, 3) for im in images]).astype(np.float32)
    nearest = np.argmin(((px[:, None, :] - _RGB[None]) ** 2).sum(-1), axis=1)
    share = np.bincount(nearest, minlength=len(_NAMES)) / len(px)
    order = np.argsort(-share)[:top]
    return [(_NAMES[i], float(share[i])) for i in order if share[i] >= min_share]


def _brightness_word(b: float) -> str:
    return "very dark" if b < 0.15 else "dark" if b < 0.3 else "dim" if b < 0.45 else "bright" if b > 0.65 else ""


class VisualCuesCaptioner:
    """``describe(frames, shot) -> Scene`` from motion, brightness and colour alone (no weights)."""

    name = "visual-cues"

    def __init__(
        self,
        *,
        min_speed: float = 0.4,
        whoosh_speed: float = 0.6,
        flash_jump: float = 0.1,
        flash_return: float = 1.5,
        edge: float = 0.05,
        min_confidence: float = 0.5,
        sure: float = 0.7,
    ):
        self.min_speed = min_speed  # frame sizes per second an object must travel before its hit counts
        self.whoosh_speed = whoosh_speed  # frame sizes per second for a "fast" pass
        self.flash_jump = flash_jump  # brightness rise (0..1) that makes a flash
        self.flash_return = flash_return  # seconds within which a flash must fade again
        self.edge = edge  # centroids this close to the border belong to things entering/leaving
        self.min_confidence = min_confidence  # cues below this are not reported
        self.sure = sure  # cues below this are reported in plain words

    # ------------------------------------------------------------------------------------------------ public

    def describe(self, frames: ShotFrames, shot: Shot) -> Scene:
        f = frames.features
        weather = self.precipitation(f)
        flashes = self.flashes(f)
        quiet = {i for c in flashes for i in range(c[0] - 2, c[0] + 6)}  # a flash moves every pixel: ignore it
        hits = self.impacts(f, quiet)
        slams = self.slams(f, quiet)
        whooshes = self.whooshes(f, quiet, [h[0] for h in hits + slams])
        dark = float(np.mean(f.brightness)) < 0.3 if len(f) else False
        cues: list[Cue] = []
        for i, strength, conf in flashes:
            stormy = weather is not None and weather[0] == "rain" or dark
            words = "bright flash, like lightning" if stormy and conf >= self.sure else "a bright flash"
            cues.append(Cue(float(f.times[i]), "flash", strength, words, conf))
        for t, strength, down, conf in hits:
            words = ("object hits the ground" if down else "object hits something and bounces off") if conf >= self.sure \
                else "something hits something"
            cues.append(Cue(t, "impact", strength, words, conf))
        for t, strength, large, conf in slams:
            words = ("door slams shut" if large else "object thuds to a stop") if conf >= self.sure else "a thud"
            cues.append(Cue(t, "slam", strength, words, conf))
        for t, strength, text, conf in whooshes:
            cues.append(Cue(t, "whoosh", strength, text if conf >= self.sure else "something moves past quickly", conf))
        cues = sorted((c for c in cues if c.confidence >= self.min_confidence), key=lambda c: c.time)
        return Scene(shot.start, shot.end, self._text(frames, f, cues, weather), cues)

    # ------------------------------------------------------------------------------------------------ detectors

    def flashes(self, f: FrameFeatures) -> list[tuple[int, float, float]]:
        """(frame, strength, confidence) where brightness jumps up and comes back down soon after."""
        b, t = f.brightness, f.times
        out: list[tuple[int, float, float]] = []
        for i in range(2, len(b)):
            jump = b[i] - b[i - 1]
            if jump < self.flash_jump or b[i] < 1.3 * b[i - 1] or (out and t[i] - t[out[-1][0]] < 0.25):
                continue
            after = np.nonzero((t > t[i]) & (t <= t[i] + self.flash_return))[0]
            if len(after) and b[after].min() <= b[i - 1] + 0.3 * jump:
                back = after[b[after] <= b[i - 1] + 0.3 * jump][0]
                quick = 1.0 if t[back] - t[i] <= 0.5 else 0.75  # lightning and flashes fade fast; lamps do not
                out.append((i, float(min(1.0, jump / 0.3)), float(min(1.0, jump / 0.15) * quick)))
        return out

    def _velocity(self, f: FrameFeatures, trim_edges: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centroid positions with their sample times, and velocities (frame sizes per second) between them.

        The centroid of frame i's change lies between frames i-1 and i, so it is timed at their midpoint.
        Row 0 of a shot compares against the previous shot and is dropped; with ``trim_edges`` so are
        centroids at the border (half-visible things entering or leaving).
        """
        c = f.centroid.copy()
        c[:1] = np.nan
        ts = f.times.copy()
        ts[1:] = 0.5 * (f.times[1:] + f.times[:-1])
        if trim_edges:
            c[((c < self.edge) | (c > 1 - self.edge)).any(axis=1)] = np.nan
        v = np.full_like(c, np.nan)
        dt = np.diff(ts)
        dt[dt <= 0] = np.nan
        v[1:] = np.diff(c, axis=0) / dt[:, None]
        return c, ts, v

    def reliability(self, f: FrameFeatures, lo: int, hi: int, size: tuple[float, float] = (0.1, 0.2)) -> float:
        """How far the centre of motion over frames ``lo:hi`` can be read as one object's position (0..1): the
        change is compact (its RMS radius under ``size[0]`` frame sizes: full marks, over ``size[1]``: none), not
        scattered specks (rain, grain), the camera still."""
        lo, hi = max(0, lo), min(len(f), max(hi, lo + 1))
        ext = f.extent[lo:hi]
        ext = ext[np.isfinite(ext)]
        a, b = size
        compact = float(np.clip((b - np.median(ext)) / (b - a), 0.0, 1.0)) if len(ext) else 1.0
        scattered = float(np.clip(1.0 - (np.median(f.specks[lo:hi, 0]) - 10.0) / 20.0, 0.0, 1.0))
        cam = f.camera[lo:hi]
        moved = float(np.mean((np.abs(cam[:, :2]).sum(axis=1) > 0) | (np.abs(cam[:, 2] - 1.0) > 0)))
        return compact * scattered * (1.0 - 0.4 * moved)

    def impacts(self, f: FrameFeatures, quiet: set[int]) -> list[tuple[float, float, bool, float]]:
        """(time, strength, downward, confidence) where smooth travel turns sharply within about one frame."""
        _, ts, v = self._velocity(f)
        n = len(v)
        if n < 6:
            return []
        dv = np.linalg.norm(v[1:] - v[:-1], axis=1)  # dv[j]: change between v[j] and v[j+1]
        speed = np.linalg.norm(v, axis=1)
        typical = np.nanmedian(dv) if np.isfinite(dv).any() else 0.0
        out: list[tuple[float, float, bool, float]] = []
        j = 4
        while j < n - 1:
            if not (np.isfinite(dv[j]) and speed[j] >= self.min_speed and dv[j] >= 0.35 * speed[j]) or j + 1 in quiet:
                j += 1
                continue
            # A turn spread over two frame steps starts one step earlier.
            s = j - 1 if np.isfinite(dv[j - 1]) and dv[j - 1] >= 0.25 * speed[j - 1] else j
            vin = v[s]
            # The approach must be smooth: the three velocities before the turn point the same way.
            prev = v[s - 3 : s + 1]
            smooth = min(_cos(prev[i], prev[i + 1]) for i in range(3)) if np.isfinite(prev).all() else -1.0
            if smooth < 0.7:
                j += 1
                continue
            cluster = list(range(s, j + 1))
            if j + 1 < n - 1 and np.isfinite(dv[j + 1]) and dv[j + 1] >= 0.35 * speed[s]:
                cluster.append(j + 1)
            vout = v[cluster[-1] + 1]
            speed_in = float(np.linalg.norm(vin))
            turned = not np.isfinite(vout).all() or np.linalg.norm(vout) < 0.5 * speed_in or _cos(vin, vout) < 0.5
            total = float(sum(dv[k] for k in cluster))
            # A hit, not the top of an arc: a ball turns there too, but slowly and after slowing down. A hit comes
            # at full speed (or is far sharper than anything on the way in).
            approach = float(np.nanmax(dv[s - 3 : s])) if np.isfinite(dv[s - 3 : s]).any() else 0.0
            fastest_in = float(np.max(speed[s - 3 : s]))
            sharp = speed_in >= 0.75 * fastest_in and (max(dv[k] for k in cluster) >= 2 * approach or speed_in >= 0.85 * fastest_in)
            if turned and sharp and total >= 0.6 * speed_in and total >= 2 * typical:
                w = np.array([dv[k] for k in cluster])
                # dv[k] lies between v[k] and v[k+1]; v[k] between centroid samples k-1 and k; each centroid
                # sample half a frame before its frame: the net shift back to frame time is half a sample step.
                times = np.array([0.5 * (ts[k] + ts[k + 1]) for k in cluster])
                t_hit = float(np.sum(w * times) / w.sum()) - 0.5 * float(ts[s] - ts[s - 1])
                down = bool(vin[1] > 0 and abs(vin[1]) >= abs(vin[0]))
                shape = (0.5 + 0.5 * (smooth - 0.7) / 0.3) * min(1.0, 0.5 + 0.5 * speed_in / (2 * self.min_speed))
                # Falling onto something is the clear case; a swerve in mid-frame may be a limb turning round.
                conf = shape * (1.0 if down else 0.5) * self.reliability(f, s - 3, cluster[-1] + 3)
                out.append((t_hit, float(min(1.0, total / 3.0)), down, float(conf)))
                j = cluster[-1] + 3
                continue
            j += 1
        return out

    def slams(self, f: FrameFeatures, quiet: set[int]) -> list[tuple[float, float, bool, float]]:
        """(time, strength, large, confidence) where a compact region travels, speeding up, and stops dead inside
        the frame, with nothing moving for a quarter of a second after."""
        m, c, t = f.motion, f.centroid, f.times
        noise = float(np.percentile(m[1:], 10)) if len(m) > 1 else 0.0  # grain/compression flicker when still
        m = np.maximum(m - noise, 0.0)
        out: list[tuple[float, float, bool, float]] = []
        for i in range(5, len(m) - 3):
            if i in quiet or m[i] < 0.002:
                continue
            before = m[i - 3 : i]
            after = m[i + 1 : i + 1 + max(3, int(np.sum(t[i + 1 :] <= t[i] + 0.25)))]
            if before.min() < 0.4 * m[i] or after.max() > 0.15 * m[i]:
                continue  # not sustained (a drawing held every other frame, a title popping on), or no dead stop
            if not np.isfinite(c[i]).all() or ((c[i] < 2 * self.edge) | (c[i] > 1 - 2 * self.edge)).any():
                continue  # something leaving the frame is not a slam
            path = c[i - 4 : i + 1]
            if not np.isfinite(path).all():
                continue
            steps = np.diff(path, axis=0)
            straight = min(_cos(steps[k], steps[k + 1]) for k in range(len(steps) - 1))
            if np.linalg.norm(path[-1] - path[0]) < 0.02 or straight < 0.3:
                continue  # the change did not travel (a fade, a flicker, a face talking): nothing swung shut
            # A slam is driven into the stop; a pose eases into its hold.
            speeding = m[i] / max(float(m[i - 4 : i - 1].max()), 1e-9)
            if speeding < 0.9:
                continue
            step = np.linalg.norm(c[i] - c[i - 1]) if np.isfinite(c[i - 1]).all() else np.nan
            size = m[i] / step if np.isfinite(step) and step > 0 else 1.0  # wide moving region ⇒ big change per step
            driven = min(1.0, 0.5 + 5.0 * (speeding - 0.9))
            conf = driven * (0.5 + 0.5 * max(0.0, straight)) * self.reliability(f, i - 4, i + 1, size=(0.22, 0.35))
            out.append((float(t[i]), float(min(1.0, m[i] / 0.01)), bool(size >= 0.15), float(conf)))
        return out

    def whooshes(self, f: FrameFeatures, quiet: set[int], hit_times: list[float]) -> list[tuple[float, float, str, float]]:
        """(time, strength, text, confidence) for fast straight travel over a good part of the frame that hits
        nothing."""
        c, ts, v = self._velocity(f, trim_edges=False)  # a pass starts and ends at the border
        speed = np.linalg.norm(v, axis=1)
        out: list[tuple[float, float, str, float]] = []
        n, j = len(v), 1
        while j < n:
            if not (np.isfinite(speed[j]) and speed[j] >= self.whoosh_speed) or j in quiet:
                j += 1
                continue
            k = j
            while k + 1 < n and np.isfinite(speed[k + 1]) and speed[k + 1] >= 0.5 * self.whoosh_speed and _cos(v[k], v[k + 1]) > 0.8:
                k += 1
            run = slice(j - 1, k + 1)  # the positions spanned by velocities j..k
            travel = c[k] - c[j - 1]
            if k - j >= 2 and np.linalg.norm(travel) >= 0.35:
                axis = int(np.argmax(np.abs(travel)))
                start_t, end_t = float(ts[j - 1]), float(ts[k])
                if not any(-0.15 <= h - end_t <= 0.15 or 0 <= start_t - h <= 0.25 for h in hit_times):
                    t = _crossing(c[run, axis], ts[run], 0.5)
                    if t is None:
                        t = float(0.5 * (ts[j - 1 + int(np.nanargmax(speed[j : k + 1]))] + ts[j + int(np.nanargmax(speed[j : k + 1]))]))
                    peak = float(np.nanmax(speed[j : k + 1]))
                    way = ("left to right" if travel[0] > 0 else "right to left") if axis == 0 else ("downward" if travel[1] > 0 else "upward")
                    text = f"something whizzes past, {way}" if peak >= 2.5 * self.whoosh_speed else f"something rushes past, {way}"
                    conf = min(1.0, float(np.linalg.norm(travel)) / 0.5) * self.reliability(f, j - 1, k + 1, size=(0.15, 0.3))
                    out.append((t, float(min(1.0, peak / 3.0)), text, float(conf)))
            j = k + 1
        return out

    # ------------------------------------------------------------------------------------------------ words

    def precipitation(self, f: FrameFeatures) -> tuple[str, float] | None:
        """("rain" | "snow", confidence) when most of the shot's frames show precipitation's structure, else None.

        A frame shows it when small changed specks are dense and reach the whole frame, and they are either
        streaks sharing a near-vertical direction that are fresh each frame or fall on (rain), or flakes whose
        pattern repeats a little lower in the next frame (snow). Confidence: the share of frames that do.
        """
        if len(f) < 12:
            return None
        sp, st, fl = f.specks[1:], f.streaks[1:], f.flow[1:]
        dense = (sp[:, 0] >= 25.0) & (sp[:, 1] >= 0.75)
        streaky = (st[:, 0] >= 0.8) & (np.abs(st[:, 1]) <= np.radians(30))
        falling = (fl[:, 0] >= 0.25) & (fl[:, 2] >= 0.004) & (np.abs(fl[:, 1]) <= 1.5 * fl[:, 2])
        rain = float(np.mean(dense & streaky & ((fl[:, 0] < 0.2) | falling)))
        snow = float(np.mean(dense & ~streaky & falling))
        kind, share = ("rain", rain) if rain >= snow else ("snow", snow)
        return (kind, share) if share >= 0.6 else None

    def _camera(self, f: FrameFeatures) -> str:
        """'the camera pans left to right' when the camera clearly moved over the shot, else ''."""
        cam = f.camera[1:]
        sure = cam[:, 3] >= 0.5
        if len(cam) < 6 or sure.mean() < 0.5:
            return ""
        moved = sure & ((np.abs(cam[:, :2]).sum(axis=1) > 0) | (np.abs(cam[:, 2] - 1.0) > 0))
        if moved.mean() < 0.3:
            return ""
        x, y = -cam[moved, 0].sum(), -cam[moved, 1].sum()  # the camera turns against the picture's motion
        zoom = float(np.prod(cam[moved, 2]))
        moves = []
        if abs(x) >= 0.25:
            moves.append(f"pans {'left to right' if x > 0 else 'right to left'}")
        if abs(y) >= 0.25:
            moves.append(f"tilts {'down' if y > 0 else 'up'}")
        if abs(np.log(zoom)) >= 0.1:
            moves.append("zooms in" if zoom > 1 else "zooms out")
        if moves:
            return "the camera " + (" and ".join(moves) if len(moves) < 3 else f"{moves[0]}, {moves[1]} and {moves[2]}")
        return "a handheld, moving camera"

    def _text(self, frames: ShotFrames, f: FrameFeatures, cues: list[Cue], weather: tuple[str, float] | None) -> str:
        """'a dark navy and dark grey scene with rain streaks falling across the frame, bright flashes like
        lightning': look, then movement, then the moments — each said only as far as it is sure."""
        b = float(np.mean(f.brightness)) if len(f) else 0.0
        colours = [n for n, _ in palette(frames.keyframes)]
        if not colours and len(f):
            colours = [_NAMES[int(np.argmin(((_RGB - f.color.mean(0) * 255) ** 2).sum(-1)))]]
        look = " ".join(w for w in (_brightness_word(b), " and ".join(colours[:2])) if w) or "plain"
        text = f"a {look} scene"

        m = f.motion[1:] if len(f) > 1 else np.zeros(1)
        calm = float(np.median(m))
        camera = self._camera(f)
        dense = (f.specks[1:, 0] >= 25.0) & (f.specks[1:, 1] >= 0.75)
        scattered = len(f) > 1 and float(np.mean(dense)) >= 0.6
        in_place = scattered and float(np.median(f.flow[1:, 0][dense])) >= 0.25  # specks that repeat: texture stirring
        if weather is not None and weather[0] == "rain":
            text += " with rain streaks falling across the frame"
        elif weather is not None:
            text += " with flakes drifting down, like snow"
        elif in_place:
            text += " with fine movement all over the frame"  # foliage, water, a crowd: not said which
        elif scattered and calm < 0.01 and not cues and float(np.median(f.flow[1:, 0][dense])) < 0.1:
            text += ", grainy and otherwise still"  # specks fresh every frame, unrelated, and nothing else: noise
        elif calm < 0.0003 and not cues:
            text += ", almost still"
        elif calm >= 0.0003:
            text += f" with {'steady' if calm > 0.003 else 'some'} movement{self._direction(f)}"

        sure = [c for c in cues if c.confidence >= self.sure]
        count = {k: sum(c.kind == k for c in sure) for k in ("impact", "slam", "whoosh", "flash")}
        plain = {k: sum(c.kind == k for c in cues) - count[k] for k in count}
        moments = []
        if count["impact"]:
            moments.append("an object hits the ground" + (f" {count['impact']} times, bouncing" if count["impact"] > 1 else ""))
        elif plain["impact"]:
            moments.append("something hits something")
        if count["slam"]:
            moments.append("something slams shut")
        elif plain["slam"]:
            moments.append("a thud")
        if count["whoosh"]:
            moments.append("something whizzes across the frame")
        elif plain["whoosh"]:
            moments.append("something moves past quickly")
        flashes = [c for c in cues if c.kind == "flash"]
        if flashes:
            like = all("lightning" in c.description for c in flashes)
            many = len(flashes) > 1
            moments.append(("bright flashes" if many else "a bright flash") + (" like lightning" if like else ""))
        return ", ".join([text, *([camera] if camera else []), *moments])

    def _direction(self, f: FrameFeatures) -> str:
        c = f.centroid[1:]
        ok = np.isfinite(c).all(axis=1)
        if ok.sum() < 4:
            return ""
        d = np.diff(c[ok], axis=0).sum(axis=0)
        if np.linalg.norm(d) < 0.2:
            return ""
        return (" left to right" if d[0] > 0 else " right to left") if abs(d[0]) > abs(d[1]) else (" downward" if d[1] > 0 else " upward")


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if not (np.isfinite(na) and np.isfinite(nb)) or na == 0 or nb == 0:
        return -1.0
    return float(np.dot(a, b) / (na * nb))


def _crossing(x: np.ndarray, t: np.ndarray, level: float) -> float | None:
    """First time ``x`` crosses ``level`` (linear interpolation between samples)."""
    for i in range(len(x) - 1):
        a, b = x[i], x[i + 1]
        if np.isfinite(a) and np.isfinite(b) and (a - level) * (b - level) <= 0 and a != b:
            return float(t[i] + (level - a) / (b - a) * (t[i + 1] - t[i]))
    return None
