"""A procedural foley bank: named, recognisable sound types synthesised from noise, resonances and glides.

Each :class:`SoundType` has a natural-language ``description`` (what the renderer matches captions against with
sentence embeddings), a ``kind`` and a ``synth(duration, sample_rate, rng) -> (2, n) float32`` function:

- ``"oneshot"`` — impacts, slams, bangs: audible from sample 0 (the attack lands in the first ~2 ms), then a
  natural decay followed by silence up to the requested length. Longer gestures (whoosh, car pass-by, slide
  whistle) stretch to the requested length within limits.
- ``"texture"`` — stationary beds (rain, wind, crowd…) of any length, with no loop seams and 20 ms fades.

Loudness is normalised so that sounds can be mixed without per-sound tuning: oneshots peak at -6 dBFS
(:data:`ONESHOT_PEAK_DBFS`), textures sit at -24 dBFS RMS (:data:`TEXTURE_RMS_DBFS`) with peaks capped at
-6 dBFS (sparse, clicky textures such as a ticking clock or typing then sit lower in RMS). DC is removed (20 Hz high-pass and
mean subtraction). Every parameter is drawn from ``rng``: a seed gives one variation, always the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...audio import fit_length, resample
from ...errors import RenderError
from .dsp import (
    TAU, bandpass, brown, burst, chirp, decay, decaying_partials, fade, highpass, lowpass, pan, pink,
    place, place_stereo, poisson_onsets, regular_onsets, resonator, reverb, seconds, smooth_curve, stereo, times,
    white,
)

ONESHOT_PEAK_DBFS = -6.0
TEXTURE_RMS_DBFS = -24.0
TEXTURE_PEAK_CEILING_DBFS = -6.0
KINDS = ("oneshot", "texture")

Synth = Callable[[float, int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class SoundType:
    """One named sound the bank can make; ``synth`` returns finished (normalised, faded) stereo float32 audio."""

    name: str
    description: str
    kind: str
    synth: Synth
    keywords: tuple[str, ...] = field(default=())  # extra short phrases to match captions against

    @property
    def phrases(self) -> tuple[str, ...]:
        return (self.description, *self.keywords)


BANK: dict[str, SoundType] = {}


def synthesize(name: str, duration: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Render bank sound ``name`` for ``duration`` s: float32 (2, round(duration * sample_rate))."""
    if name not in BANK:
        raise RenderError(f"unknown foley sound {name!r}; choose one of: {', '.join(sorted(BANK))}")
    return BANK[name].synth(duration, sample_rate, np.random.default_rng(seed))


def finish(x: np.ndarray, n: int, sr: int, kind: str) -> np.ndarray:
    """Exact length, stereo, DC-free, faded and loudness-normalised float32 audio (see module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = np.stack([x, x])
    x = fit_length(x, n)
    x = highpass(x, 20.0, sr)
    x -= x.mean(axis=-1, keepdims=True)
    if kind == "oneshot":
        fade(x, seconds(sr, 0.0002), seconds(sr, 0.01))
        peak = max(x.max(), -x.min())  # the largest magnitude, without an array of them
        if peak > 0:
            x *= 10 ** (ONESHOT_PEAK_DBFS / 20) / peak
    else:
        fade(x, seconds(sr, 0.02), seconds(sr, 0.02))
        rms = np.sqrt(np.mean(x ** 2))
        if rms > 0:
            x *= 10 ** (TEXTURE_RMS_DBFS / 20) / rms
        peak = max(x.max(), -x.min())  # the largest magnitude, without an array of them
        ceiling = 10 ** (TEXTURE_PEAK_CEILING_DBFS / 20)
        if peak > ceiling:
            x *= ceiling / peak
    return np.ascontiguousarray(x, dtype=np.float32)


def _register(name: str, kind: str, description: str, keywords: tuple[str, ...] = ()):
    assert kind in KINDS

    def deco(fn: Callable[[int, int, np.random.Generator], np.ndarray]):
        def synth(duration: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
            if not np.isfinite(duration) or duration < 0:
                raise RenderError(f"cannot synthesise {name!r} for duration {duration!r}; give seconds >= 0")
            if sample_rate < 8000:
                raise RenderError(f"sample rate {sample_rate} is too low for foley synthesis; use >= 8000 Hz")
            n = int(round(duration * sample_rate))
            if n == 0:
                return np.zeros((2, 0), np.float32)
            return finish(fn(n, int(sample_rate), rng), n, int(sample_rate), kind)

        synth.__name__ = f"synth_{name}"
        synth.__doc__ = description
        BANK[name] = SoundType(name, description, kind, synth, tuple(keywords))
        return fn

    return deco


def _oneshot(x: np.ndarray, n: int, sr: int) -> np.ndarray:
    """End a oneshot cleanly (10 ms fade at its own end) and pad it with silence to ``n`` samples."""
    return fit_length(fade(np.array(x, dtype=np.float64), 0, seconds(sr, 0.01)), n)


def _len(n: int, sr: int, s: float) -> int:
    return min(n, seconds(sr, s))


def _at_lower_rate(fn, n: int, sr: int, rng: np.random.Generator, rate: int) -> np.ndarray:
    """Run a band-limited generator at ``rate`` (cheaper) and resample to ``sr``; exact length ``n``."""
    if sr <= rate:
        return fn(n, sr, rng)
    m = int(np.ceil(n * rate / sr)) + 1
    return fit_length(resample(fn(m, rate, rng), rate, sr, dtype=np.float64), n)


# === impacts ======================================================================================================

@_register("impact", "oneshot", "a hard punchy impact, something hits a solid surface with a sharp bang",
           ("hit", "a heavy hit", "smash", "crash impact", "strike"))
def _impact(n, sr, rng):
    m = _len(n, sr, 1.0)
    f0 = rng.uniform(80, 160)
    body = decaying_partials(m, sr, f0 * np.array([1, 2.31, 3.93, 5.1]), [1, 0.6, 0.35, 0.2],
                             rng.uniform(0.05, 0.16, 4), glide=0.6, glide_tau=0.012)
    crack = burst(m, sr, rng, rng.uniform(0.003, 0.008), lo=1200)
    thump = burst(m, sr, rng, rng.uniform(0.03, 0.07), lo=150, hi=2500)
    x = body + 1.5 * crack + 0.8 * thump
    return _oneshot(reverb(x, sr, rng, rng.uniform(0.3, 0.6), 0.15), n, sr)


@_register("thud", "oneshot", "a dull heavy thud of something soft and heavy falling on the floor",
           ("thump", "a body falls down", "heavy bag drops"))
def _thud(n, sr, rng):
    m = _len(n, sr, 0.8)
    f0 = rng.uniform(45, 75)
    low = decaying_partials(m, sr, [f0, f0 * 1.9], [1, 0.3], [rng.uniform(0.08, 0.15), 0.05], glide=0.8,
                            glide_tau=0.02)
    body = lowpass(burst(m, sr, rng, rng.uniform(0.02, 0.05)), rng.uniform(300, 600), sr, order=4)
    return _oneshot(reverb(low + 1.2 * body, sr, rng, 0.35, 0.1, damp=2000), n, sr)


@_register("punch", "oneshot", "a punch lands on a face, a fist hits a body in a fight",
           ("punch", "slap", "fist fight hit", "kick"))
def _punch(n, sr, rng):
    m = _len(n, sr, 0.5)
    low = decaying_partials(m, sr, [rng.uniform(70, 110)], [1.0], [0.07], glide=1.0, glide_tau=0.015)
    slap = burst(m, sr, rng, rng.uniform(0.01, 0.025), lo=800, hi=4500)
    return _oneshot(np.tanh(1.5 * (low + 1.3 * slap)), n, sr)


@_register("knock", "oneshot", "someone knocks on a wooden door, knock knock knock",
           ("knocking", "knock on the door"))
def _knock(n, sr, rng):
    m = _len(n, sr, 1.2)
    f = rng.uniform(160, 320)
    k_len = seconds(sr, 0.15)
    kernel = decaying_partials(k_len, sr, f * np.array([1, 2.7, 5.2]), [1, 0.5, 0.25], [0.04, 0.02, 0.01])
    kernel += 0.6 * burst(k_len, sr, rng, 0.002, lo=1500)
    count = int(rng.integers(2, 5))
    step = rng.uniform(0.14, 0.24)
    onsets = (np.arange(count) * step * sr * (1 + 0.05 * rng.uniform(-1, 1, count))).astype(int)
    onsets[0] = 0
    x = place(m, onsets, rng.uniform(0.8, 1.0, count), kernel)
    return _oneshot(reverb(x, sr, rng, 0.5, 0.25), n, sr)


@_register("door_slam", "oneshot", "a heavy wooden door slams shut with a loud bang",
           ("door slam", "slamming a door", "door shuts hard"))
def _door_slam(n, sr, rng):
    m = _len(n, sr, 1.6)
    f0 = rng.uniform(70, 130)
    panel = decaying_partials(m, sr, f0 * np.array([1, 1.6, 2.9, 4.3]), [1, 0.7, 0.4, 0.25],
                              [rng.uniform(0.12, 0.25), 0.1, 0.06, 0.04], glide=0.3)
    thump = lowpass(burst(m, sr, rng, rng.uniform(0.02, 0.04)), 900, sr)
    latch_at = seconds(sr, rng.uniform(0.004, 0.015))
    latch = np.zeros(m)
    ll = m - latch_at
    if ll > 0:
        latch[latch_at:] = 0.5 * burst(ll, sr, rng, 0.003, lo=2500) + decaying_partials(
            ll, sr, [rng.uniform(2000, 3500), rng.uniform(4000, 5500)], [0.2, 0.1], [0.03, 0.02])
    x = panel + 1.4 * thump + latch
    return _oneshot(reverb(x, sr, rng, rng.uniform(0.6, 1.0), 0.35), n, sr)


@_register("door_creak", "oneshot", "an old wooden door creaks slowly open on a rusty squeaky hinge",
           ("creak", "creaking door", "squeaky hinge", "door opens"))
def _door_creak(n, sr, rng):
    m = _len(n, sr, rng.uniform(1.2, 2.6))
    base = rng.uniform(70, 220)
    curve = smooth_curve(m, sr, rng.uniform(2, 5), rng)
    rate = base * np.exp(0.9 * curve + np.linspace(0, rng.uniform(-0.6, 0.9), m))  # the hinge's pitch wanders
    rate *= 1 + 0.15 * rng.standard_normal(m).clip(-2, 2) * (rng.random(m) < 0.02)
    phase = np.cumsum(rate) / sr
    onsets = np.nonzero(np.diff(np.floor(phase)) > 0)[0] + 1
    onsets = np.concatenate([[0], onsets])
    k_len = seconds(sr, 0.04)
    res = rng.uniform(0.8, 1.25, 4) * np.array([380, 820, 1550, 2600])
    kernel = decaying_partials(k_len, sr, res, [1, 0.8, 0.5, 0.3], [0.005, 0.004, 0.003, 0.002])  # broad wood body
    gains = rng.uniform(0.5, 1.0, len(onsets))
    x = place(m, onsets, gains, kernel)
    u = np.linspace(0, 1, m)
    env = (0.35 + 0.65 * np.sin(np.pi * np.minimum(u * 1.6, 0.5))) * (1 + 0.3 * smooth_curve(m, sr, 6, rng))
    env *= np.where(u > 0.8, 0.5 + 0.5 * np.cos(np.pi * (u - 0.8) / 0.2), 1.0)  # the door comes to rest
    return _oneshot(reverb(x * env, sr, rng, 0.5, 0.2), n, sr)


@_register("glass_break", "oneshot", "a glass window shatters and breaks into pieces that tinkle on the floor",
           ("glass shatter", "breaking glass", "a bottle smashes"))
def _glass_break(n, sr, rng):
    m = _len(n, sr, 1.8)
    x = 1.2 * burst(m, sr, rng, rng.uniform(0.05, 0.12), lo=2000)
    x += 0.8 * burst(m, sr, rng, 0.004, lo=500)
    t = times(m, sr)
    for _ in range(int(rng.integers(60, 140))):
        start = int(min(rng.exponential(0.12), 1.2) * sr)
        if start >= m:
            continue
        ln = min(m - start, seconds(sr, 0.25))
        f = rng.uniform(2500, 9000)
        if f >= 0.45 * sr:
            f = rng.uniform(0.2, 0.4) * sr
        a = rng.uniform(0.05, 0.3) * np.exp(-start / sr / 0.4)
        x[start:start + ln] += a * np.sin(TAU * f * t[:ln] + rng.uniform(0, TAU)) * np.exp(
            -t[:ln] / rng.uniform(0.01, 0.06))
    x = stereo(x, np.roll(x, seconds(sr, 0.0007)), 0.5)
    return _oneshot(reverb(x, sr, rng, 0.6, 0.2), n, sr)


@_register("explosion", "oneshot", "a huge explosion, a bomb blast with a deep booming rumble and debris",
           ("explosion", "blast", "bomb", "kaboom", "big boom"))
def _explosion(n, sr, rng):
    m = _len(n, sr, rng.uniform(3.5, 5.5))
    blast = np.tanh(3 * lowpass(burst(m, sr, rng, rng.uniform(0.06, 0.12)), 5000, sr))
    boom = decaying_partials(m, sr, [rng.uniform(35, 55)], [1.5], [0.5], glide=1.2, glide_tau=0.06)
    rumble_env = decay(m, sr, rng.uniform(0.8, 1.4)) * (1 + 0.4 * smooth_curve(m, sr, 4, rng))
    rumble = lowpass(brown(m, rng, sr), rng.uniform(250, 400), sr, order=4) * rumble_env
    debris_on = poisson_onsets(m, sr, 20, rng)
    debris_on = debris_on[rng.random(len(debris_on)) < np.exp(-debris_on / sr / 0.8)]
    debris = place(m, debris_on, rng.uniform(0.05, 0.3, len(debris_on)),
                   burst(seconds(sr, 0.01), sr, rng, 0.002, lo=1500))
    x = 1.2 * blast + boom + 1.3 * rumble + debris
    x = stereo(x, x + 0.3 * lowpass(brown(m, rng, sr), 300, sr) * rumble_env, 0.4)
    return _oneshot(reverb(x, sr, rng, 2.0, 0.3, damp=3000), n, sr)


@_register("gunshot", "oneshot", "a loud gunshot, a pistol fires a single shot that echoes",
           ("gun shot", "pistol shot", "rifle fires", "bang of a gun"))
def _gunshot(n, sr, rng):
    m = _len(n, sr, 1.8)
    crack = burst(m, sr, rng, 0.0015)
    blast = lowpass(burst(m, sr, rng, rng.uniform(0.03, 0.06)), 4000, sr)
    boom = decaying_partials(m, sr, [rng.uniform(70, 100)], [0.8], [0.08], glide=0.8)
    x = np.tanh(2.5 * (crack + blast + boom))
    return _oneshot(reverb(x, sr, rng, rng.uniform(1.2, 1.8), 0.25, damp=4000), n, sr)


@_register("thunder", "oneshot", "a thunder clap cracks and rolls across the sky during a storm",
           ("thunder", "thunderclap", "lightning strike", "storm thunder"))
def _thunder(n, sr, rng):
    m = _len(n, sr, rng.uniform(4.5, 7.0))
    crack = highpass(burst(m, sr, rng, rng.uniform(0.03, 0.07)), 300, sr)
    for _ in range(int(rng.integers(2, 5))):
        at = seconds(sr, rng.uniform(0.02, 0.35))
        if at < m:
            crack[at:] += rng.uniform(0.3, 0.7) * highpass(burst(m - at, sr, rng, 0.03), 300, sr)
    env = (1 - np.exp(-times(m, sr) / 0.25)) * decay(m, sr, rng.uniform(1.2, 2.2))
    env = 0.1 + env / env.max() * (1 + 0.5 * smooth_curve(m, sr, 3, rng))
    env *= decay(m, sr, 2.5)
    rumble = lowpass(brown((2, m), rng, sr), rng.uniform(150, 260), sr, order=4) * env
    # Close lightning: the crack is the loudest moment and lands on the flash; the rumble rolls in after it.
    x = 2.2 * crack + 1.6 * rumble
    return _oneshot(reverb(x, sr, rng, 2.5, 0.3, damp=2500), n, sr)


@_register("splash", "oneshot", "something falls into water with a big splash and bubbles",
           ("splash", "jumps into the water", "water splash", "dive into a pool"))
def _splash(n, sr, rng):
    m = _len(n, sr, 1.5)
    x = 1.2 * burst(m, sr, rng, rng.uniform(0.08, 0.2), lo=400, hi=5000)
    x += decaying_partials(m, sr, [rng.uniform(60, 100)], [0.6], [0.06], glide=1.0)
    t = times(m, sr)
    for _ in range(int(rng.integers(25, 50))):
        at = int(min(rng.exponential(0.25), 1.0) * sr)
        ln = min(m - at, seconds(sr, 0.06))
        if ln <= 0:
            continue
        f0 = rng.uniform(300, 1800)
        ph = TAU * np.cumsum(f0 * (1 + 2.5 * t[:ln])) / sr
        x[at:at + ln] += rng.uniform(0.05, 0.25) * np.sin(ph) * np.exp(-t[:ln] / rng.uniform(0.008, 0.03))
    x = stereo(x, np.roll(x, seconds(sr, 0.0005)), 0.4)
    return _oneshot(reverb(x, sr, rng, 0.5, 0.15), n, sr)


@_register("bell", "oneshot", "a large church bell rings once with a long resonant tone",
           ("bell", "church bell", "a bell tolls", "ding dong"))
def _bell(n, sr, rng):
    m = _len(n, sr, 6.0)
    f0 = rng.uniform(180, 520)
    ratios = np.array([0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011, 4.166])
    amps = np.array([0.6, 1.0, 0.8, 0.5, 0.6, 0.3, 0.3, 0.2, 0.12]) * rng.uniform(0.7, 1.2, 9)
    taus = np.array([4.0, 2.5, 2.0, 1.5, 1.2, 0.8, 0.7, 0.5, 0.3]) * rng.uniform(0.7, 1.1)
    ph = rng.uniform(0, TAU, 9)
    left = decaying_partials(m, sr, f0 * ratios, amps, taus, ph)
    right = decaying_partials(m, sr, f0 * ratios * (1 + rng.uniform(0.0005, 0.002, 9)), amps, taus, ph)
    strike = burst(m, sr, rng, 0.003, lo=1000)
    x = np.stack([left + 0.3 * strike, right + 0.3 * strike])
    return _oneshot(reverb(x, sr, rng, 2.0, 0.2), n, sr)


@_register("boing", "oneshot", "a cartoon spring boing, a bouncy wobbly twang",
           ("boing", "spring", "cartoon bounce", "jaw harp twang"))
def _boing(n, sr, rng):
    m = _len(n, sr, rng.uniform(0.6, 1.0))
    t = times(m, sr)
    f0 = rng.uniform(110, 260)
    f = f0 * (1 + 0.6 * (1 - np.exp(-t / 0.08))) * (1 + 0.25 * np.exp(-t / 0.25) * np.sin(TAU * rng.uniform(9, 15) * t))
    ph = TAU * np.cumsum(f) / sr
    tone = np.sin(ph) + 0.5 * np.sin(2 * ph) + 0.3 * np.sin(3 * ph) + 0.15 * np.sin(5 * ph)
    return _oneshot(tone * decay(m, sr, rng.uniform(0.2, 0.35)), n, sr)


@_register("slide_whistle", "oneshot", "a cartoon slide whistle glides up in pitch",
           ("slide whistle", "rising whistle", "falling whistle", "cartoon whistle"))
def _slide_whistle(n, sr, rng):
    m = _len(n, sr, float(np.clip(n / sr, 0.4, 2.0)))
    lo, hi = rng.uniform(400, 650), rng.uniform(1500, 2200)
    f0, f1 = (lo, hi) if rng.random() < 0.6 else (hi, lo)
    t = times(m, sr)
    u = np.linspace(0, 1, m)
    f = (f0 + (f1 - f0) * (0.5 - 0.5 * np.cos(np.pi * u))) * (1 + 0.012 * np.sin(TAU * 5.5 * t))
    ph = TAU * np.cumsum(f) / sr
    tone = np.sin(ph) + 0.08 * np.sin(2 * ph)
    breath = 0.05 * bandpass(white(m, rng), 800, 4000, sr)
    env = np.minimum(1.0, 0.4 + t / 0.02)
    return _oneshot((tone + breath) * env, n, sr)


@_register("pop", "oneshot", "a short pop like a cork or a bubble popping",
           ("pop", "cork pops", "bubble pop", "plop"))
def _pop(n, sr, rng):
    m = _len(n, sr, 0.2)
    t = times(m, sr)
    f0 = rng.uniform(700, 1400)
    ph = TAU * np.cumsum(f0 * (0.3 + 0.7 * np.exp(-t / 0.012))) / sr
    x = np.sin(ph) * decay(m, sr, rng.uniform(0.015, 0.03)) + 0.7 * burst(m, sr, rng, 0.0015, lo=1500)
    return _oneshot(x, n, sr)


@_register("zap", "oneshot", "an electric zap, a laser beam or spark with a buzzing sci-fi sweep",
           ("zap", "laser", "electric shock", "spark", "ray gun"))
def _zap(n, sr, rng):
    m = _len(n, sr, rng.uniform(0.25, 0.5))
    ph = chirp(m, sr, rng.uniform(2500, 4000), rng.uniform(120, 250))
    saw = 2 * ((ph / TAU) % 1.0) - 1
    buzz = np.sign(np.sin(TAU * rng.uniform(50, 120) * times(m, sr)))
    crackle = burst(m, sr, rng, 0.2, lo=3000) * (rng.random(m) < 0.05)
    x = np.tanh(2 * saw * (0.7 + 0.3 * buzz)) + 0.6 * crackle
    x = lowpass(x, 8000, sr) * decay(m, sr, rng.uniform(0.12, 0.25))
    return _oneshot(x, n, sr)


@_register("whoosh", "oneshot", "a fast whoosh of air as something swings or flies past quickly",
           ("whoosh", "swoosh", "swish", "fast swing", "flies past"))
def _whoosh(n, sr, rng):
    m = _len(n, sr, float(np.clip(n / sr, 0.35, 1.5)))
    u = np.linspace(0, 1, m)
    peak = rng.uniform(0.35, 0.55)
    env = np.where(u < peak, 0.25 + 0.75 * (u / peak) ** 2, np.exp(-((u - peak) / (1 - peak)) * 4.0))
    centre = np.exp(np.interp(u, [0, peak, 1], np.log([rng.uniform(300, 600), rng.uniform(1500, 3000), 400])))
    x = np.zeros(m)
    noise = white(m, rng)
    for fc in np.geomspace(200, 6000, 9):
        band = bandpass(noise, fc / 1.3, fc * 1.3, sr)
        x += band * np.exp(-0.5 * (np.log(centre / fc) / 0.45) ** 2)
    direction = 1 if rng.random() < 0.5 else -1
    return _oneshot(pan(x * env, direction * np.linspace(-0.8, 0.8, m)), n, sr)


@_register("ball_bounce", "oneshot", "a rubber ball bounces on the floor, bouncing lower and faster",
           ("ball bounces", "bouncing ball", "basketball dribble"))
def _ball_bounce(n, sr, rng):
    first, e = rng.uniform(0.35, 0.6), rng.uniform(0.68, 0.8)
    if n / sr < 0.8:  # a short spot is one bounce (a cue per bounce), a longer event the whole sequence
        first = max(first, n / sr)
    gaps = first * e ** np.arange(40)
    gaps = gaps[gaps > 0.015]
    t_on = np.concatenate([[0.0], np.cumsum(gaps)])
    total = t_on[-1] + 0.1
    m = _len(n, sr, total)
    k_len = seconds(sr, 0.08)
    kernel = decaying_partials(k_len, sr, [rng.uniform(150, 250), rng.uniform(500, 700)], [1, 0.3],
                               [0.025, 0.01], glide=0.3) + 0.3 * burst(k_len, sr, rng, 0.001, lo=2000)
    gains = 0.85 ** np.arange(len(t_on))
    x = place(m, (t_on * sr).astype(int), gains, kernel)
    return _oneshot(reverb(x, sr, rng, 0.4, 0.15), n, sr)


@_register("car_pass_by", "oneshot",
           "a car drives past quickly, its engine approaching and fading away with a doppler pitch shift",
           ("car passes by", "vehicle drives past", "car driving by", "speeding car"))
def _car_pass_by(n, sr, rng):
    return _pass_by(n, sr, rng, speed=rng.uniform(18, 32), closest=rng.uniform(4, 9))


def _pass_by(n: int, sr: int, rng: np.random.Generator, speed: float, closest: float,
             upto: int | None = None) -> np.ndarray:
    """A vehicle passing the listener at the middle of ``n`` samples: delay-line doppler, 1/r level, pan, air.

    ``upto``: only the first ``upto`` samples (at least one) are made, for a car in the street whose tail the
    event cuts off: the whole pass's first samples, as every step is causal, from the same random draws.
    Worked in place where it can (the same operations in the same order, so the same samples): each fresh
    array of a few seconds is a few MB of pages to fault in, which cost more than the arithmetic on them."""
    c = 343.0
    t = times(n, sr)
    x_pos = speed * (t - t[-1] / 2)
    r = np.square(x_pos)
    r += closest ** 2
    np.sqrt(r, out=r)
    delay = r / c
    pad = int(np.ceil(delay.max() * sr)) + 2
    m = n + pad
    e = n if upto is None else max(1, min(n, upto))
    t, x_pos, r, delay = t[:e], x_pos[:e], r[:e], delay[:e]
    firing = rng.uniform(55, 95)
    ph = smooth_curve(m, sr, 2, rng, upto=e + pad)
    ph *= 0.02
    ph += 1
    ph *= firing
    np.cumsum(ph, out=ph)
    ph *= TAU
    ph /= sr
    engine = lowpass(_harmonics(ph, rng.uniform(0, TAU, 8), 0.8), 2500, sr)
    src = bandpass(pink(m, rng)[:e + pad], 300, 3500, sr)  # the tyres
    engine *= 0.6
    src += engine
    src_t = np.arange(-pad, e, dtype=np.float64) / sr  # the same times as integers divided, made cheaper
    np.subtract(t, delay, out=delay)
    y = np.interp(delay, src_t, src)
    far = r - closest
    far /= 60.0
    np.clip(far, 0, 1, out=far)
    air = lowpass(y, 900, sr)
    air *= far
    np.subtract(1, far, out=far)
    y *= far
    y += air
    np.divide(closest, r, out=far)
    y *= far
    np.divide(x_pos, r, out=far)
    far *= 0.9
    return pan(y, far)


def _harmonics(ph: np.ndarray, phases: np.ndarray, tilt: float) -> np.ndarray:
    """sum over k = 1..len(phases) of sin(k * ph + phases[k-1]) / k ** tilt, as the imaginary part of a polynomial
    in z = exp(i ph) (Horner's rule): two sines' worth of work instead of one per harmonic (2.5x faster for the
    8 of an engine). Rounding differs from the sines taken one by one by ~1e-12, never audibly (< 1e-6 a clip)."""
    z = np.empty(ph.shape, np.complex128)
    np.cos(ph, out=z.real)
    np.sin(ph, out=z.imag)
    coef = np.exp(1j * np.asarray(phases)) / np.arange(1, len(phases) + 1) ** tilt
    acc = z * coef[-1]
    for c in coef[-2::-1]:
        acc += c
        acc *= z
    return np.ascontiguousarray(acc.imag)


# === textures =====================================================================================================

@_register("rain", "texture", "heavy rain pouring down on a roof and the street",
           ("rain", "raining", "rainstorm", "downpour", "drizzle"))
def _rain(n, sr, rng):
    hiss = highpass(pink((2, n), rng), rng.uniform(500, 1000), sr)
    hiss = lowpass(hiss, rng.uniform(7000, 10000), sr)
    roof = lowpass(brown((2, n), rng, sr), 400, sr) * 0.4
    drops = np.zeros((2, n))
    k_len = seconds(sr, 0.03)
    for f in rng.uniform(1000, 7000, 10):  # broad-band drop splats, not pitched ticks
        kernel = burst(k_len, sr, rng, rng.uniform(0.002, 0.005), lo=f / 1.8, hi=f * 1.8)
        on = poisson_onsets(n, sr, rng.uniform(25, 80), rng)
        drops += place_stereo(n, on, rng.lognormal(0, 0.5, len(on)) * 0.6, rng.uniform(-1, 1, len(on)), kernel)
    return hiss + roof + lowpass(drops, 9000, sr)


@_register("wind", "texture", "strong wind blowing and howling in gusts",
           ("wind", "windy", "gusts of wind", "howling wind", "breeze"))
def _wind(n, sr, rng):
    # Gusts of broadband noise with a howl: a resonance whose pitch rises with each gust (air over edges). A low
    # brown-noise rumble without the howl is heard as traffic or a train.
    out = []
    blk = seconds(sr, 0.05)
    for _ in range(2):
        noise = pink(n, rng)
        gust = np.clip(0.5 + 0.5 * smooth_curve(n, sr, rng.uniform(0.3, 0.6), rng), 0.05, None)
        fc = rng.uniform(350, 600) * (1 + 0.6 * gust)
        howl = np.zeros(n)
        for k in range(0, n, blk):  # the resonance follows the gust, 50 ms at a time (with a tail to settle)
            howl[k:k + blk] = resonator(noise[k:k + blk + 2000], float(fc[k]), 8, sr)[:min(blk, n - k)]
        body = bandpass(noise, 200, 2500, sr)
        howl *= np.abs(body).max() / (np.abs(howl).max() + 1e-9)
        out.append((0.6 * body + 1.2 * howl) * gust ** 1.5 + 0.05 * highpass(noise, 3000, sr) * gust ** 2)
    return stereo(out[0], out[1], 0.8)


@_register("fire_crackle", "texture", "a wood fire crackling and popping in a fireplace or campfire",
           ("fire", "crackling fire", "campfire", "burning", "flames"))
def _fire_crackle(n, sr, rng):
    roar = lowpass(brown((2, n), rng, sr), 250, sr) * (0.8 + 0.2 * smooth_curve(n, sr, 1, rng))
    hiss = highpass(pink((2, n), rng), 2500, sr) * 0.08
    x = roar * 0.5 + hiss
    for rate, tau, lo, amp in ((30, 0.0015, 2000, 0.6), (6, 0.006, 400, 1.0)):
        k_len = seconds(sr, 0.02)
        kernel = lowpass(burst(k_len, sr, rng, tau, lo=lo), 7000, sr)
        on = poisson_onsets(n, sr, rate * rng.uniform(0.7, 1.4), rng)
        x += amp * place_stereo(n, on, (rng.pareto(2.5, len(on)) + 0.2).clip(0, 3), rng.uniform(-0.7, 0.7, len(on)),
                                kernel)
    return x


@_register("engine_idle", "texture", "a car engine idling, a steady low rumbling motor",
           ("engine", "motor running", "idling car", "truck engine"))
def _engine_idle(n, sr, rng):
    fr = rng.uniform(22, 34)
    rate = fr * (1 + 0.01 * smooth_curve(n, sr, 1, rng))
    phase = np.cumsum(rate) / sr
    onsets = np.nonzero(np.diff(np.floor(phase)) > 0)[0] + 1
    k_len = seconds(sr, 0.06)
    kernel = decaying_partials(k_len, sr, [rng.uniform(60, 90), rng.uniform(150, 220)], [1, 0.4], [0.015, 0.008])
    kernel += 0.5 * burst(k_len, sr, rng, 0.01, hi=1200)
    gains = 1 + 0.15 * rng.standard_normal(len(onsets))
    gains[::2] *= rng.uniform(0.8, 1.0)  # firing order unevenness
    x = place(n, onsets, gains, kernel)
    x = lowpass(x, 2000, sr) + 0.05 * bandpass(pink(n, rng), 500, 3000, sr)
    return stereo(x, x + 0.05 * lowpass(pink(n, rng), 1500, sr), 0.3)


@_register("engine_revving", "texture", "a car engine revving, the motor roars up to high revs and drops back",
           ("engine revving", "revving engine", "car accelerating", "engine roar", "vroom", "motorbike revving"))
def _engine_revving(n, sr, rng):
    # The firing rate of a four-cylinder engine (two firings per revolution) swept by throttle blips from idle to
    # a few thousand rpm, as a harmonic-rich tone (saturated), with exhaust noise that grows with the revs.
    t = times(n, sr)
    rpm = np.full(n, rng.uniform(800, 1000))
    for c in np.arange(rng.uniform(0.3, 0.8), n / sr, rng.uniform(1.4, 2.0)):
        u = t - c
        rpm += rng.uniform(2500, 4000) * np.where(u < 0, 0, np.where(u < 0.5, u / 0.5, np.exp(-(u - 0.5) / 0.5)))
    ph = TAU * np.cumsum(rpm / 60 * 2) / sr
    tone = sum(np.sin(k * ph + rng.uniform(0, TAU)) / k ** 0.8 for k in range(1, 16))
    tone = np.tanh(1.2 * tone) * (0.6 + 0.4 * np.clip(rpm / 4000, 0, 1))
    noise = bandpass(pink(n, rng), 200, 3000, sr) * 0.3 * np.clip(rpm / 3000, 0.3, 1.5)
    x = lowpass(tone, 4000, sr) + noise
    return reverb(stereo(x, x, 0.1), sr, rng, 0.6, 0.2)


@_register("siren", "texture", "a police siren or ambulance wailing as it speeds through the city",
           ("siren", "police siren", "ambulance", "fire truck siren", "emergency"))
def _siren(n, sr, rng):
    # A horn driver: a saw-like tone rich in harmonics, driven into a little distortion, so it reads as a siren
    # and not as a flute; the pitch either wails (a slow rise, a quicker fall, over about an octave) or
    # alternates between two tones (hi-lo) about a fourth apart.
    t = times(n, sr)
    if rng.random() < 0.5:  # wail
        period = rng.uniform(2.0, 3.5)
        u = (t / period + rng.uniform(0, 1)) % 1.0
        lfo = np.where(u < 0.6, np.sin(np.pi / 2 * u / 0.6), np.cos(np.pi / 2 * (u - 0.6) / 0.4))
        f = rng.uniform(650, 750) * 2 ** (lfo * rng.uniform(0.9, 1.1))
    else:  # hi-lo
        period = rng.uniform(1.0, 1.4)
        sq = lowpass(np.sign(np.sin(TAU * t / period)), 30, sr)
        f = rng.uniform(650, 750) * 2 ** ((sq + 1) / 2 * rng.uniform(0.35, 0.45))
    ph = TAU * np.cumsum(f) / sr
    tone = sum(np.sin(k * ph) / k * (1.0 if k % 2 else 0.6) for k in range(1, 12))
    tone = bandpass(np.tanh(1.5 * tone), 400, 3500, sr, order=4)  # bright, but not hiss: little above 4 kHz
    x = tone * (1 + 0.1 * smooth_curve(n, sr, 0.5, rng))
    street = 0.08 * lowpass(pink(n, rng), 800, sr)
    return reverb(stereo(x + street, x + street, 0.1), sr, rng, 1.5, 0.35)


@_register("birds", "texture", "birds chirping and singing in the morning",
           ("birds", "birdsong", "bird chirps", "tweeting", "songbirds"))
def _birds(n, sr, rng):
    return _bird_song(n, sr, rng, density=rng.uniform(0.8, 1.5)) + 0.01 * highpass(pink((2, n), rng), 2000, sr)


def _bird_song(n: int, sr: int, rng: np.random.Generator, density: float) -> np.ndarray:
    """Several birds, each singing phrases of frequency-modulated chirps from its own place in the stereo field."""
    out = np.zeros((2, n))
    t_all = times(seconds(sr, 0.2), sr)
    top = 0.45 * sr
    for _ in range(int(rng.integers(2, 5))):
        f_lo, f_hi = rng.uniform(1800, 3500), rng.uniform(3500, 7000)
        chirp_len, gap = rng.uniform(0.04, 0.12), rng.uniform(0.03, 0.12)
        pos, level = rng.uniform(-0.8, 0.8), rng.uniform(0.4, 1.0)
        mono = np.zeros(n)
        t0 = rng.uniform(0, 2.0)
        while t0 < n / sr:
            for _c in range(int(rng.integers(3, 9))):
                at = int(t0 * sr)
                ln = min(n - at, seconds(sr, chirp_len * rng.uniform(0.7, 1.3)))
                if ln <= 8:
                    break
                t = t_all[:ln] if ln <= len(t_all) else times(ln, sr)
                a, b = min(rng.uniform(f_lo, f_hi), top), min(rng.uniform(f_lo, f_hi), top)
                f = a + (b - a) * (t / t[-1]) + 300 * np.sin(TAU * rng.uniform(20, 60) * t)
                env = np.sin(np.pi * np.arange(ln) / ln) ** 2
                mono[at:at + ln] += env * np.sin(TAU * np.cumsum(f) / sr)
                t0 += ln / sr + gap
            t0 += rng.exponential(2.0 / density) + 0.3
        bird = pan(mono, pos)
        bird *= level
        out += bird
    return reverb(out, sr, rng, 0.8, 0.15)


@_register("crowd_murmur", "texture", "a crowd of people talking and murmuring in a busy room",
           ("crowd", "people talking", "chatter", "restaurant crowd", "walla"))
def _crowd_murmur(n, sr, rng):
    return _at_lower_rate(_crowd_core, n, sr, rng, 16000)


def _crowd_core(n, sr, rng):
    bands = [(250, 450), (450, 800), (800, 1300), (1300, 2000), (2000, 3000)]
    feeds = np.zeros((len(bands), 2, n))
    t = times(n, sr)
    for _ in range(int(rng.integers(10, 18))):
        f0 = rng.uniform(95, 230)
        f = f0 * (1 + 0.08 * smooth_curve(n, sr, 3, rng))
        ph = TAU * np.cumsum(f) / sr
        src = 2 * ((ph / TAU) % 1.0) - 1
        syl_rate = rng.uniform(3.5, 6.0)
        syl = np.floor(t * syl_rate + rng.uniform(0, 1)).astype(int)
        n_syl = syl.max() + 1
        talking = smooth_curve(n, sr, 0.4, rng) > -0.4
        env = np.sin(np.pi * ((t * syl_rate) % 1.0)) ** 2 * (rng.random(n_syl) < 0.85)[syl] * talking
        vowels = rng.dirichlet(np.ones(len(bands)) * 0.7, n_syl)
        side = rng.uniform(-0.9, 0.9)
        lr = np.array([np.cos((side + 1) * np.pi / 4), np.sin((side + 1) * np.pi / 4)])
        level = rng.uniform(0.3, 1.0)
        for k in range(len(bands)):
            g = vowels[:, k][syl] * env * level * src
            feeds[k] += lr[:, None] * g
    x = sum(bandpass(feeds[k], lo, hi, sr) for k, (lo, hi) in enumerate(bands))
    x += 0.05 * bandpass(pink((2, n), rng), 300, 3000, sr)
    return reverb(lowpass(x, 3500, sr), sr, rng, 0.9, 0.4)


@_register("applause", "texture", "an audience applauding, many people clapping their hands",
           ("applause", "clapping", "audience claps", "ovation"))
def _applause(n, sr, rng):
    people = rng.uniform(15, 40)
    k_len = seconds(sr, 0.03)
    x = np.zeros((2, n))
    for _ in range(6):
        fc = rng.uniform(700, 2500)
        kernel = burst(k_len, sr, rng, rng.uniform(0.003, 0.008), lo=fc / 1.6, hi=fc * 1.6)
        on = poisson_onsets(n, sr, people * rng.uniform(3.5, 5.0) / 6, rng)
        x += place_stereo(n, on, rng.lognormal(0, 0.4, len(on)), rng.uniform(-1, 1, len(on)), kernel)
    return reverb(x, sr, rng, 1.0, 0.3)


@_register("clock_ticking", "texture", "a mechanical clock ticking steadily, tick tock",
           ("clock", "ticking clock", "tick tock", "tick", "timer ticking", "watch ticking"))
def _clock_ticking(n, sr, rng):
    period = 1.0 if rng.random() < 0.5 else 0.5
    k_len = seconds(sr, 0.05)
    out = np.zeros(n)
    first = rng.uniform(0.05, 0.3)
    on = regular_onsets(n, sr, period, 0.002, rng, first)
    for j, f in enumerate((rng.uniform(2500, 3500), rng.uniform(1800, 2500))):
        kernel = decaying_partials(k_len, sr, [f, f * 1.7, rng.uniform(700, 1000)], [1, 0.5, 0.6],
                                   [0.006, 0.004, 0.012]) + 0.5 * burst(k_len, sr, rng, 0.0008, lo=3000)
        kernel = lowpass(kernel, 9000, sr)
        out += place(n, on[j::2], np.ones(len(on[j::2])), kernel)
    return reverb(out, sr, rng, 0.4, 0.2)


@_register("footsteps", "texture", "footsteps of a person walking on a hard floor",
           ("footsteps", "walking", "steps", "someone walks", "running footsteps"))
def _footsteps(n, sr, rng):
    period = rng.uniform(0.45, 0.6)
    on = regular_onsets(n, sr, period, 0.05, rng, rng.uniform(0.05, 0.3))
    k_len = seconds(sr, 0.2)
    x = np.zeros((2, n))
    for j in range(2):  # left and right foot
        heel = decaying_partials(k_len, sr, [rng.uniform(80, 130)], [1.0], [0.03], glide=0.5)
        heel += burst(k_len, sr, rng, 0.015, lo=300, hi=3000) * 1.2
        scuff = np.zeros(k_len)
        at = seconds(sr, rng.uniform(0.05, 0.09))
        scuff[at:] = 0.5 * burst(k_len - at, sr, rng, 0.02, lo=1500, hi=6000)
        feet = on[j::2]
        x += place_stereo(n, feet, rng.uniform(0.7, 1.0, len(feet)), np.full(len(feet), 0.15 * (2 * j - 1)),
                          heel + scuff)
    return reverb(x, sr, rng, 0.6, 0.25)


@_register("room_tone", "texture", "quiet room tone, the soft hiss and hum of an empty indoor room",
           ("room tone", "silence", "quiet room", "indoor ambience", "empty room"))
def _room_tone(n, sr, rng):
    air = lowpass(pink((2, n), rng), rng.uniform(1500, 3000), sr)
    mains = 50.0 if rng.random() < 0.5 else 60.0
    t = times(n, sr)
    hum = 0.08 * np.sin(TAU * mains * t) + 0.04 * np.sin(TAU * 2 * mains * t + 1.0)
    return stereo(air[0] + hum, air[1] + hum, 0.7)


@_register("water_stream", "texture", "a babbling brook, water flowing and trickling over stones",
           ("stream", "river", "brook", "flowing water", "creek"))
def _water_stream(n, sr, rng):
    x = 0.4 * bandpass(pink((2, n), rng), 300, 4000, sr)
    t = times(seconds(sr, 0.04), sr)
    for f0 in np.exp(rng.uniform(np.log(300), np.log(3000), 24)):
        kernel = np.sin(TAU * np.cumsum(f0 * (1 + rng.uniform(3, 9) * t)) / sr) * np.exp(-t / rng.uniform(0.004, 0.012))
        on = poisson_onsets(n, sr, rng.uniform(4, 10), rng)
        x += place_stereo(n, on, rng.lognormal(-0.5, 0.5, len(on)), rng.uniform(-0.8, 0.8, len(on)), kernel)
    return x


@_register("ocean_waves", "texture", "ocean waves crashing on the beach and washing over the sand",
           ("ocean", "waves", "sea", "surf", "beach"))
def _ocean_waves(n, sr, rng):
    period = rng.uniform(6, 10)
    on = regular_onsets(n + seconds(sr, 2 * period), sr, period, 0.25, rng) - seconds(sr, period)
    env = np.zeros(n)
    w_len = seconds(sr, period * 1.6)
    u = np.arange(w_len) / sr
    rise = period * 0.35
    shape = np.where(u < rise, (u / rise) ** 2, np.exp(-(u - rise) / (period * 0.3)))
    for o in on:
        lo, hi = max(o, 0), min(o + w_len, n)
        if hi > lo:
            env[lo:hi] += rng.uniform(0.6, 1.0) * shape[lo - o:hi - o]
    env = 0.15 + env
    low = lowpass(brown((2, n), rng, sr), 500, sr)
    high = highpass(pink((2, n), rng), 1500, sr)
    return low * env + 0.6 * high * env ** 2


@_register("keyboard_typing", "texture", "someone typing quickly on a computer keyboard, keys clicking",
           ("typing", "keyboard", "typewriter", "computer keys"))
def _keyboard_typing(n, sr, rng):
    # Bursts of 6-14 keystrokes about 0.1 s apart (log-normal spread: no two alike), short pauses between words.
    # Each stroke is a short band-limited noise click (a key is struck plastic, not a pitched ping: tonal clicks
    # were heard as glass) with the softer click of the key's return 30-60 ms later, in a small room.
    strokes = []
    t = rng.uniform(0.05, 0.2)
    while t < n / sr:
        for _ in range(int(rng.integers(6, 15))):
            strokes.append(t)
            t += rng.lognormal(np.log(0.1), 0.35)
        t += rng.uniform(0.2, 0.6)
    on = (np.array(strokes) * sr).astype(int)
    on = on[on < n]
    k_len = seconds(sr, 0.3)
    x = np.zeros((2, n))
    for _ in range(6):  # six keys, each with its own click
        kernel = burst(k_len, sr, rng, 0.005, lo=600, hi=6000)
        at = seconds(sr, rng.uniform(0.03, 0.06))
        kernel[at:] += 0.5 * burst(k_len - at, sr, rng, 0.0035, lo=900, hi=6000)
        pick = rng.random(len(on)) < 1 / 6
        x += place_stereo(n, on[pick], rng.uniform(0.4, 1.0, pick.sum()), rng.uniform(-0.3, 0.3, pick.sum()),
                          kernel)
    x += 0.02 * lowpass(pink((2, n), rng), 3000, sr)
    return reverb(x, sr, rng, 0.4, 0.2)


@_register("heartbeat", "texture", "a heart beating, a steady thumping heartbeat pulse",
           ("heartbeat", "heart beat", "pulse", "heart pounding"))
def _heartbeat(n, sr, rng):
    period = 60.0 / rng.uniform(55, 85)
    on = regular_onsets(n, sr, period, 0.02, rng, rng.uniform(0.05, 0.3))
    k_len = seconds(sr, 0.5)
    lub = decaying_partials(k_len, sr, [rng.uniform(45, 60)], [1.0], [0.06], glide=0.5)
    dub = np.zeros(k_len)
    at = seconds(sr, rng.uniform(0.28, 0.34))
    dub[at:] = 0.7 * decaying_partials(k_len - at, sr, [rng.uniform(65, 85)], [1.0], [0.045], glide=0.5)
    x = lowpass(place(n, on, np.ones(len(on)), lub + dub), 250, sr)
    return stereo(x, x, 0)


@_register("city_traffic", "texture", "busy city street traffic, cars driving by and distant horns",
           ("traffic", "city street", "cars on the road", "urban", "highway"))
def _city_traffic(n, sr, rng):
    x = lowpass(brown((2, n), rng, sr), 200, sr)
    x *= 0.6
    hiss = bandpass(pink((2, n), rng), 150, 2000, sr)
    hiss *= 0.25
    x += hiss
    count = rng.poisson(n / sr * rng.uniform(0.25, 0.5)) + 1
    for _ in range(count):
        ln = seconds(sr, rng.uniform(3, 6))
        at = int(rng.integers(-ln // 2, max(n - ln // 2, 1)))
        lo, hi = max(at, 0), min(at + ln, n)
        car = _pass_by(ln, sr, rng, speed=rng.uniform(8, 16), closest=rng.uniform(8, 20), upto=hi - at)
        car *= rng.uniform(0.6, 1.4)
        if rng.random() < 0.5:
            car = car[::-1]  # the other direction: swap channels
        x[:, lo:hi] += fade(car[:, lo - at:hi - at].copy(), seconds(sr, 0.05), seconds(sr, 0.05))
    for _ in range(rng.poisson(n / sr / 12)):
        at = int(rng.integers(0, n))
        ln = min(n - at, seconds(sr, rng.uniform(0.2, 0.5)))
        tt = times(ln, sr)
        f = rng.uniform(350, 450)
        horn = sum(np.sin(TAU * f * k * tt) / k for k in (1, 2, 3, 4)) * 0.08
        x[:, at:at + ln] += pan(fade(horn, seconds(sr, 0.01), seconds(sr, 0.02)), rng.uniform(-0.8, 0.8))
    return x


@_register("forest_ambience", "texture", "a calm forest with leaves rustling in a light breeze and distant birds",
           ("forest", "woods", "nature ambience", "jungle", "leaves rustling"))
def _forest(n, sr, rng):
    gust = 0.6 + 0.4 * smooth_curve(n, sr, 0.2, rng)
    leaves = bandpass(pink((2, n), rng), 1200, 7000, sr)  # in place: the same products and sums, fewer arrays
    leaves *= gust
    leaves *= 0.5
    low = lowpass(brown((2, n), rng, sr), 300, sr)
    low *= gust
    low *= 0.3
    leaves += low
    birds = _bird_song(n, sr, rng, density=0.5)
    birds *= 0.5
    leaves += birds
    return leaves


@_register("crickets", "texture", "crickets chirping on a quiet summer night",
           ("crickets", "night insects", "night ambience", "cicadas"))
def _crickets(n, sr, rng):
    x = 0.02 * highpass(pink((2, n), rng), 1000, sr)
    t_k = times(seconds(sr, 0.02), sr)
    for _ in range(int(rng.integers(3, 7))):
        f = min(rng.uniform(3800, 5200), 0.45 * sr)
        pulse = np.sin(TAU * f * t_k) * np.sin(np.pi * np.arange(len(t_k)) / len(t_k)) ** 2
        chirps = regular_onsets(n, sr, rng.uniform(0.4, 1.0), 0.05, rng, rng.uniform(0, 0.8))
        k = int(rng.integers(2, 5))
        on = (chirps[:, None] + np.arange(k)[None, :] * seconds(sr, rng.uniform(0.025, 0.035))).ravel()
        x += place_stereo(n, on, np.full(len(on), rng.uniform(0.2, 0.6)), np.full(len(on), rng.uniform(-0.9, 0.9)),
                          pulse)
    return reverb(x, sr, rng, 0.8, 0.2)


@_register("helicopter", "texture", "a helicopter hovering overhead with its rotor blades chopping",
           ("helicopter", "chopper", "rotor blades"))
def _helicopter(n, sr, rng):
    rate = rng.uniform(10, 18) * (1 + 0.01 * smooth_curve(n, sr, 0.5, rng))
    on = np.nonzero(np.diff(np.floor(np.cumsum(rate) / sr)) > 0)[0] + 1
    k_len = seconds(sr, 0.06)
    kernel = lowpass(burst(k_len, sr, rng, 0.012), 900, sr) + decaying_partials(k_len, sr, [rng.uniform(50, 70)], [1], [0.02])
    x = place(n, on, np.ones(len(on)), kernel)
    t = times(n, sr)
    whine = 0.03 * np.sin(TAU * rng.uniform(1500, 2500) * t) + 0.3 * lowpass(pink(n, rng), 1200, sr)
    return stereo(x + whine, x + whine + 0.1 * lowpass(pink(n, rng), 800, sr), 0.3)


@_register("drone_hum", "texture", "a low constant electrical hum, the drone of machinery or a power transformer",
           ("hum", "drone", "buzzing", "machine hum", "spaceship drone"))
def _drone_hum(n, sr, rng):
    mains = 50.0 if rng.random() < 0.5 else 60.0
    t = times(n, sr)
    amps = rng.uniform(0.2, 1.0, 6) / np.arange(1, 7)
    out = []
    for det in (0.0, rng.uniform(0.1, 0.4)):
        out.append(sum(a * np.sin(TAU * (mains + det) * k * t + rng.uniform(0, TAU)) for k, a in enumerate(amps, 1)))
    noise = 0.05 * lowpass(pink((2, n), rng), 400, sr)
    return np.stack(out) + noise


@_register("water_drip", "texture", "water dripping slowly from a leaky tap in a cave",
           ("drip", "dripping water", "leaky faucet", "water drops"))
def _water_drip(n, sr, rng):
    on = regular_onsets(n, sr, rng.uniform(0.5, 1.3), 0.3, rng, rng.uniform(0.05, 0.4))
    k_len = seconds(sr, 0.08)
    t = times(k_len, sr)
    x = np.zeros(n)
    for j in range(3):
        f0 = rng.uniform(700, 1400)
        kernel = np.sin(TAU * np.cumsum(f0 * (1 + 8 * t)) / sr) * np.exp(-t / rng.uniform(0.01, 0.02))
        x += place(n, on[j::3], rng.uniform(0.5, 1.0, len(on[j::3])), kernel)
    return reverb(x, sr, rng, 1.3, 0.5)


@_register("phone_ring", "texture", "a telephone ringing, an old phone rings repeatedly",
           ("phone", "telephone ringing", "ringtone", "phone rings"))
def _phone_ring(n, sr, rng):
    t = times(n, sr)
    cycle = rng.uniform(1.8, 2.4)  # a double ring: 0.4 s on, 0.2 s off, 0.4 s on, then a pause
    phase = (t + rng.uniform(0, 0.1)) % cycle
    gate = (phase < 0.4) | ((phase >= 0.6) & (phase < 1.0))
    gate = lowpass(gate.astype(float), 80, sr)
    trill = 0.5 + 0.5 * np.sign(np.sin(TAU * 20 * t))
    trill = lowpass(trill, 200, sr)
    tone = np.sin(TAU * 440 * t) + np.sin(TAU * 480 * t) + 0.3 * np.sin(TAU * 1320 * t)
    x = tone * trill * gate
    return reverb(stereo(x, x, 0), sr, rng, 0.5, 0.2)
