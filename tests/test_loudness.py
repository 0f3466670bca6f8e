"""Loudness: target LUFS within 0.5 LU and true peak ≤ -1 dBTP for both presets, peaky and silent inputs."""
from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from dubkit.errors import InputError
from dubkit.soundtrack.loudness import (
    LOUDNESS_PRESETS,
    integrated_loudness,
    normalize_loudness,
    resolve_target,
    true_peak_dbtp,
)

SR = 48000


def _music_like(seconds: float = 8.0, seed: int = 0) -> np.ndarray:
    """A tonal bed with noise and a slow level swell: an ordinary, not peaky, soundtrack."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t)
    x = 0.1 * np.sin(2 * np.pi * 330 * t) * swell + 0.03 * rng.standard_normal(t.size)
    return np.stack([x, 0.9 * x]).astype(np.float32)


def _peaky(seconds: float = 8.0, seed: int = 1) -> np.ndarray:
    """A quiet bed with sharp, loud transients (door slams): normalising it to -14 forces heavy limiting."""
    x = _music_like(seconds, seed) * np.float32(0.3)
    rng = np.random.default_rng(seed)
    for k in rng.choice(np.arange(SR // 2, x.shape[1] - SR // 2), size=12, replace=False):
        burst = np.hanning(300) * np.sin(2 * np.pi * 2500 * np.arange(300) / SR)
        x[:, k : k + 300] += (0.95 * burst).astype(np.float32)
    return x


@pytest.mark.parametrize("preset", ["broadcast", "streaming"])
@pytest.mark.parametrize("make", [_music_like, _peaky], ids=["bed", "peaky"])
def test_presets_hit_target_and_true_peak_ceiling(preset, make):
    target = LOUDNESS_PRESETS[preset]
    audio = make()
    out, rep = normalize_loudness(audio, SR, target_lufs=target, true_peak_db=-1.0)
    assert out.shape == audio.shape and out.dtype == np.float32
    measured = pyloudnorm.Meter(SR).integrated_loudness(out.T.astype(np.float64))  # independent measurement
    assert abs(measured - target) <= 0.5, (measured, rep)
    assert rep.output_lufs == pytest.approx(measured, abs=1e-6)
    assert true_peak_dbtp(out) <= -1.0 + 1e-6 and rep.true_peak_dbtp <= -1.0 + 1e-6
    assert rep.input_lufs == pytest.approx(integrated_loudness(audio, SR))


def test_peaky_streaming_input_is_limited_without_hard_gain_steps():
    audio = _peaky()
    out, rep = normalize_loudness(audio, SR, target_lufs=-14.0)
    assert rep.limited and rep.limiter_reduction_db < -3.0
    # Gain reduction is smooth: the ratio out/in (where the input is not tiny) changes slowly sample to sample.
    static = audio * np.float32(10 ** (rep.gain_db / 20))
    mask = np.abs(static[0]) > 0.05
    ratio = out[0][mask] / static[0][mask]
    idx = np.flatnonzero(mask)
    close = np.diff(idx) == 1
    assert np.abs(np.diff(ratio))[close].max() < 0.02
    # The bed keeps its level away from the transients: the limiter only acts around peaks.
    assert np.mean(np.isclose(out, static, rtol=1e-5, atol=1e-7)) > 0.9


def test_unlimited_input_gets_exactly_the_static_gain():
    audio = _music_like() * np.float32(0.1)
    out, rep = normalize_loudness(audio, SR, target_lufs=-23.0)
    assert not rep.limited and rep.limiter_reduction_db == 0.0
    np.testing.assert_allclose(out, audio * np.float32(10 ** (rep.gain_db / 20)), rtol=1e-6)
    assert rep.gain_db == pytest.approx(-23.0 - rep.input_lufs)


def test_true_peak_sees_inter_sample_peaks():
    # A sine at fs/4 sampled 45° off its crest: every sample is at 0.707 of the true amplitude.
    n = np.arange(SR)
    fade = np.minimum(1.0, np.minimum(n, n[::-1]) / 2000)  # no abrupt start: that would overshoot (Gibbs)
    x = (0.9 * fade * np.sin(2 * np.pi * n / 4 + np.pi / 4)).astype(np.float32)[None, :]
    sample_peak = 20 * np.log10(np.abs(x).max())
    assert sample_peak == pytest.approx(20 * np.log10(0.9 * np.sqrt(0.5)), abs=0.01)
    assert true_peak_dbtp(x) == pytest.approx(20 * np.log10(0.9), abs=0.05)  # ~3 dB above the sample peak


def test_silent_and_short_inputs_do_not_crash():
    out, rep = normalize_loudness(np.zeros((2, SR * 2), np.float32), SR)
    assert rep.input_lufs == float("-inf") and rep.output_lufs == float("-inf") and rep.gain_db == 0.0
    assert not rep.limited and np.all(out == 0)
    assert rep.to_dict()["input_lufs"] is None  # JSON-safe
    short = np.full((2, 1000), 0.01, np.float32)
    out, rep = normalize_loudness(short, SR)
    assert rep.gain_db == 0.0 and np.array_equal(out, short)


def test_targets_and_bad_input():
    assert resolve_target("broadcast") == -23.0 and resolve_target("Streaming") == -14.0
    assert resolve_target("-16") == -16.0 and resolve_target(-14) == -14.0
    with pytest.raises(InputError, match="preset"):
        resolve_target("loud")
    with pytest.raises(InputError, match="range"):
        resolve_target(5.0)
    with pytest.raises(InputError, match="NaN"):
        normalize_loudness(np.full((2, SR), np.nan, np.float32), SR)


def _counting(monkeypatch, names):
    """Count the calls of the loudness module's passes (they still run)."""
    import dubkit.soundtrack.loudness as loudness

    calls = {name: 0 for name in names}
    for name in names:
        real = getattr(loudness, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(loudness, name, counted)
    return calls


def test_idle_limiter_skips_the_second_pass_and_reports_what_it_would_measure(monkeypatch):
    from audiostory_core.tracks import ArrayTrack
    from dubkit.soundtrack.loudness import _limited_pass

    audio = _music_like(seconds=20.0)  # longer than one block: the pass is block by block
    calls = _counting(monkeypatch, ["_limited_pass", "true_peak_dbtp"])
    out, rep = normalize_loudness(audio, SR, target_lufs=-23.0)
    assert calls == {"_limited_pass": 0, "true_peak_dbtp": 0}  # no search, no second loudness/true-peak pass
    assert not rep.limited and rep.limiter_reduction_db == 0.0
    full = ArrayTrack(np.zeros_like(audio))  # what the full pass writes and measures at the same gain
    full_lufs, reduction = _limited_pass(ArrayTrack(audio), SR, rep.gain_db, -1.0, write=full)
    assert reduction == 0.0 and np.array_equal(out, full.audio)  # the very same samples
    assert np.array_equal(out, audio * np.float32(10 ** (rep.gain_db / 20)))
    assert abs(rep.output_lufs - full_lufs) < 0.01 and abs(rep.output_lufs - integrated_loudness(out, SR)) < 0.01
    assert abs(rep.true_peak_dbtp - true_peak_dbtp(out)) < 0.01
    assert rep.true_peak_dbtp < -1.0 - 0.1


def test_acting_limiter_still_runs_the_second_pass(monkeypatch):
    calls = _counting(monkeypatch, ["_limited_pass", "true_peak_dbtp"])
    out, rep = normalize_loudness(_peaky(), SR, target_lufs=-14.0)
    assert rep.limited and calls["_limited_pass"] >= 2 and calls["true_peak_dbtp"] == 1
    assert rep.true_peak_dbtp == true_peak_dbtp(out) and rep.true_peak_dbtp <= -1.0 + 1e-6
    assert rep.output_lufs == pytest.approx(integrated_loudness(out, SR), abs=1e-9)


def test_inter_sample_peak_over_the_ceiling_is_limited_though_every_sample_is_under():
    # A quiet bed with a burst of the sine at fs/4, 45° off its crest (its samples 3 dB under its true peak),
    # brought to where the samples sit under the limiter's aim but the true peak is over the ceiling: the limiter
    # must act (the fast path must not be taken on sample peaks).
    x = _music_like() * np.float32(0.3)
    n = np.arange(SR // 5)
    fade = np.minimum(1.0, np.minimum(n, n[::-1]) / 2000)
    x[:, 2 * SR : 2 * SR + n.size] += (0.3 * fade * np.sin(2 * np.pi * n / 4 + np.pi / 4)).astype(np.float32)
    target = integrated_loudness(x, SR) + (-0.5 - true_peak_dbtp(x))  # the true peak to -0.5 dBTP
    gain_db = target - integrated_loudness(x, SR)
    assert 20 * np.log10(np.abs(x).max()) + gain_db < -1.2 and true_peak_dbtp(x) + gain_db > -1.0
    out, rep = normalize_loudness(x, SR, target_lufs=target)
    assert rep.limited and true_peak_dbtp(out) <= -1.0 + 1e-6 and rep.true_peak_dbtp == true_peak_dbtp(out)


@pytest.mark.parametrize("size", [37, 1000, 4096, 70_000])
def test_true_peak_fed_block_by_block_is_the_whole_signal_oversampled(size):
    from dubkit.soundtrack.loudness import _PeakMeter, _true_peak_envelope

    x = _peaky(seconds=3.0)
    whole = float(_true_peak_envelope(x).max())  # every sample oversampled, in one go
    meter = _PeakMeter(2)
    for start in range(0, x.shape[-1], size):
        meter.feed(x[:, start : start + size])
    assert meter.finish() == whole
    assert true_peak_dbtp(x) == 20 * np.log10(whole)
