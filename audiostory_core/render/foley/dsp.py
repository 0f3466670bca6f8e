"""Small signal-processing building blocks the procedural bank is made of (numpy/scipy only).

Everything works on float64 arrays shaped (samples,) or (channels, samples) and takes a ``numpy.random.Generator``
where randomness is involved, so a sound is a pure function of (duration, rate, rng state).
"""
from __future__ import annotations

import functools

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.signal import butter, lfilter, oaconvolve, sosfilt

TAU = 2.0 * np.pi


def times(n: int, sr: int) -> np.ndarray:
    """Sample times in seconds. The sample numbers are made as floats: dividing an integer array converts it on
    the way, at 2-4x the cost; the numbers are exact either way, so the times are the same."""
    return np.arange(n, dtype=np.float64) / float(sr)


def seconds(sr: int, s: float) -> int:
    return max(1, int(round(s * sr)))


# --- filters -----------------------------------------------------------------------------------------------------

def _clamp(f: float, sr: int) -> float:
    return float(min(max(f, 5.0), 0.45 * sr))


@functools.lru_cache(maxsize=1024)
def _sos(order: int, cutoff: float | tuple[float, float], kind: str, sr: int) -> np.ndarray:
    """A Butterworth design, kept: designing one costs ~2 ms, and the bank asks for the same few again and again
    (the 20 Hz high-pass of every sound, fixed bands); the coefficients, hence the samples, are the same."""
    return butter(order, list(cutoff) if isinstance(cutoff, tuple) else cutoff, kind, fs=sr, output="sos")


def lowpass(x: np.ndarray, f: float, sr: int, order: int = 2) -> np.ndarray:
    return sosfilt(_sos(order, _clamp(f, sr), "lowpass", sr).copy(), x, axis=-1)


def highpass(x: np.ndarray, f: float, sr: int, order: int = 2) -> np.ndarray:
    return sosfilt(_sos(order, _clamp(f, sr), "highpass", sr).copy(), x, axis=-1)


def bandpass(x: np.ndarray, lo: float, hi: float, sr: int, order: int = 2) -> np.ndarray:
    lo, hi = _clamp(lo, sr), _clamp(hi, sr)
    if hi <= lo * 1.05:
        lo = hi / 1.5
    return sosfilt(_sos(order, (lo, hi), "bandpass", sr).copy(), x, axis=-1)


def resonator(x: np.ndarray, f: float, q: float, sr: int) -> np.ndarray:
    """Two-pole resonance at ``f`` Hz (bandwidth f/q): the ring of a body, a whistle, a formant."""
    f = _clamp(f, sr)
    r = np.exp(-np.pi * (f / q) / sr)
    a = [1.0, -2.0 * r * np.cos(TAU * f / sr), r * r]
    return lfilter([1.0 - r], a, x, axis=-1)


# --- noises and control curves -----------------------------------------------------------------------------------

def white(shape, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(shape)


def pink(shape, rng: np.random.Generator) -> np.ndarray:
    """1/f noise by spectral shaping (unit variance, float64 like the rest of the bank). Shaped at the next
    FFT-friendly length and cut to ``n``: an event's length in samples is often near-prime, where an FFT costs
    5-8x more (measured: 332 ms vs 40 ms for 5 s of stereo at 48 kHz); drawn and shaped in single precision,
    at half the cost (10 s of stereo: 52 -> 27 ms) — noise has no detail that float32's 24 bits would lose."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    n = shape[-1]
    if n < 4:
        return np.zeros(shape)
    size = next_fast_len(n, real=True)
    spec = rfft(rng.standard_normal((*shape[:-1], size), dtype=np.float32), axis=-1)
    # spec /= sqrt(f), as numpy divides a complex by a real (both parts times 1 / sqrt(f)): no complex copy of f
    spec.view(np.float32).reshape(*spec.shape, 2)[...] *= _pink_gains(spec.shape[-1])[:, None]
    spec[..., 0] = 0.0
    out = irfft(spec, n=size, axis=-1)[..., :n]
    return np.multiply(out, 1.0 / (float(out.std()) + 1e-12), dtype=np.float64)


def _pink_gains(bins: int) -> np.ndarray:
    """1 / sqrt(f) per FFT bin (bin 0 as 1), float32. Not cached: nearly every event has a length of its own (a
    60 s dub asked for 26 lengths, 3 of them again), and a cache of a long video's bed-length arrays held
    hundreds of MB."""
    f = np.arange(bins, dtype=np.float32)
    f[0] = 1.0
    return np.divide(1.0, np.sqrt(f, out=f), out=f)


def brown(shape, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Red (1/f^2) noise: a leaky integrator of white noise, DC-free above ~10 Hz (unit variance)."""
    x = lfilter([1.0], [1.0, -0.998], rng.standard_normal(shape), axis=-1)
    x = highpass(x, 15.0, sr)
    return x / (x.std() + 1e-12)


def smooth_curve(n: int, sr: int, rate: float, rng: np.random.Generator, upto: int | None = None) -> np.ndarray:
    """A slowly wandering random curve (~``rate`` control points per second), zero-mean, unit-ish range.
    ``upto``: only its first ``upto`` samples (the same values, the same random draws as the whole curve)."""
    if n == 0:
        return np.zeros(0)
    k = int(np.ceil(n / sr * rate)) + 2
    pts = rng.uniform(-1.0, 1.0, k)
    pos = times(n if upto is None else max(0, min(n, upto)), sr)
    pos *= rate
    i = pos.astype(np.intp)  # truncation is the floor here: pos >= 0
    w = np.subtract(pos, i, out=pos)  # in place from here: the same values, fewer fresh arrays
    w *= np.pi
    np.cos(w, out=w)
    w *= 0.5
    np.subtract(0.5, w, out=w)  # the raised-cosine weight of the next point
    out = pts[i]
    i += 1
    ahead = pts[i]
    ahead *= w
    np.subtract(1.0, w, out=w)
    out *= w
    out += ahead
    return out


def decay(n: int, sr: int, tau: float) -> np.ndarray:
    return np.exp(-times(n, sr) / max(tau, 1e-5))


def stereo(mono_a: np.ndarray, mono_b: np.ndarray, width: float) -> np.ndarray:
    """Mix two independent signals into a stereo pair with correlation set by ``width`` (0 mono, 1 independent)."""
    mid = (mono_a + mono_b) * 0.5
    return np.stack([mid + width * (mono_a - mid), mid + width * (mono_b - mid)])


def pan(mono: np.ndarray, pos) -> np.ndarray:
    """Equal-power pan; ``pos`` in [-1 (left), 1 (right)], scalar or per sample."""
    ang = (np.clip(pos, -1.0, 1.0) + 1.0) * (np.pi / 4)
    out = np.empty((2, *np.broadcast_shapes(np.shape(mono), np.shape(ang))))
    np.multiply(mono, np.cos(ang, out=out[0] if np.ndim(ang) else None), out=out[0])
    np.multiply(mono, np.sin(ang, out=out[1] if np.ndim(ang) else None), out=out[1])
    return out


# --- events ------------------------------------------------------------------------------------------------------

def place(n: int, onsets: np.ndarray, gains: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Sum copies of ``kernel`` (1-D) starting at sample ``onsets`` with ``gains``: a sparse train, convolved."""
    onsets = np.asarray(onsets, dtype=int)
    gains = np.broadcast_to(np.asarray(gains, dtype=float), onsets.shape)
    ok = (onsets >= 0) & (onsets < n)
    onsets, gains = onsets[ok], gains[ok]
    k = len(kernel)
    if len(onsets) * k <= 4 * n:  # sparse: add the copies directly (much cheaper than an FFT of the whole train)
        idx = (onsets[:, None] + np.arange(k)[None, :]).ravel()
        return np.bincount(idx, weights=(gains[:, None] * kernel[None, :]).ravel(), minlength=n + k)[:n]
    train = np.zeros(n)
    np.add.at(train, onsets, gains)
    return oaconvolve(train, kernel)[:n]


def place_stereo(n: int, onsets, gains, pans, kernel: np.ndarray) -> np.ndarray:
    """Like :func:`place` but each copy is panned to ``pans`` (equal power)."""
    ang = (np.clip(np.asarray(pans, float), -1, 1) + 1.0) * (np.pi / 4)
    g = np.asarray(gains, float)
    return np.stack([place(n, onsets, g * np.cos(ang), kernel), place(n, onsets, g * np.sin(ang), kernel)])


def poisson_onsets(n: int, sr: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Random event times (samples) at ``rate`` per second, uniformly spread."""
    count = rng.poisson(rate * n / sr)
    return np.sort(rng.integers(0, max(n, 1), count))


def regular_onsets(n: int, sr: int, period: float, jitter: float, rng: np.random.Generator,
                   first: float = 0.0) -> np.ndarray:
    """Nearly periodic event times (samples): ``period`` s apart with relative ``jitter``."""
    count = int(n / sr / period) + 2
    steps = period * (1.0 + jitter * rng.uniform(-1, 1, count))
    t = first + np.concatenate([[0.0], np.cumsum(steps[:-1])])
    return (t * sr).astype(int)


def decaying_partials(n: int, sr: int, freqs, amps, taus, phases=None, glide: float = 0.0,
                      glide_tau: float = 0.01) -> np.ndarray:
    """Sum of exponentially decaying sines: the ring of struck objects (bells, panels, shards).

    ``glide`` bends every partial up by that fraction at the strike, relaxing with ``glide_tau`` (a pitch drop).
    """
    t = times(n, sr)
    out = np.zeros(n)
    bend = 1.0 + glide * np.exp(-t / glide_tau) if glide else 1.0
    for i, (f, a, tau) in enumerate(zip(freqs, amps, taus)):
        if f >= 0.48 * sr:
            continue
        ph = 0.0 if phases is None else phases[i]
        if glide:
            phase = TAU * np.cumsum(f * bend) / sr + ph
        else:
            phase = TAU * f * t + ph
        out += a * np.exp(-t / tau) * np.sin(phase)
    return out


def burst(n: int, sr: int, rng: np.random.Generator, tau: float, lo: float | None = None,
          hi: float | None = None) -> np.ndarray:
    """A decaying noise burst, optionally band-limited: the body of clicks, claps, cracks and blasts."""
    x = rng.standard_normal(n) * decay(n, sr, tau)
    if lo and hi:
        x = bandpass(x, lo, hi, sr)
    elif lo:
        x = highpass(x, lo, sr)
    elif hi:
        x = lowpass(x, hi, sr)
    return x


def chirp(n: int, sr: int, f0: float, f1: float, curve: str = "exp") -> np.ndarray:
    """Phase of a tone gliding from f0 to f1 over n samples (exponential or linear)."""
    u = np.linspace(0.0, 1.0, n, endpoint=False)
    f = f0 * (f1 / f0) ** u if curve == "exp" else f0 + (f1 - f0) * u
    return TAU * np.cumsum(f) / sr


def reverb(x: np.ndarray, sr: int, rng: np.random.Generator, t60: float, wet: float,
           damp: float = 6000.0) -> np.ndarray:
    """Add a synthetic room: decorrelated exponentially decaying noise impulse responses (one per channel).

    The tail is cut at the input length (a oneshot's natural decay is synthesised long enough by the caller).
    """
    x = np.atleast_2d(x)
    if x.shape[0] == 1:
        x = np.repeat(x, 2, axis=0)
    n = x.shape[-1]
    m = min(seconds(sr, t60), n)
    env = np.exp(-6.9 * times(m, sr) / t60)
    ir = lowpass(rng.standard_normal((2, m)) * env, damp, sr)
    ir /= np.sqrt((ir ** 2).sum(axis=-1, keepdims=True)) + 1e-12
    tail = np.empty((2, n))
    for c in range(2):
        tail[c] = oaconvolve(x[c], ir[c])[:n]
    tail *= wet
    tail += x  # x + wet * tail
    return tail


def fade(x: np.ndarray, fade_in: int, fade_out: int) -> np.ndarray:
    """Raised-cosine fades in place on the last axis (lengths in samples)."""
    n = x.shape[-1]
    fi, fo = min(fade_in, n // 2), min(fade_out, n // 2)
    if fi > 0:
        x[..., :fi] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(fi) / fi)
    if fo > 0:
        x[..., n - fo:] *= 0.5 + 0.5 * np.cos(np.pi * (np.arange(fo) + 1) / fo)
    return x
