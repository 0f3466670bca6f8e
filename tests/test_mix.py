"""Mixing: replace / under / duck, click-free ramps, and stems that sum to the pre-limiter mix."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dubkit.errors import InputError
from dubkit.soundtrack.loudness import normalize_loudness
from dubkit.soundtrack.mix import duck_curve, mix_tracks
from dubkit.soundtrack.stems import mix_stems, write_stems

SR = 48000
SPEECH = [(1.0, 2.0), (3.5, 4.2)]


def _rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20)


def _bed(seconds: float = 6.0, level: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal((2, int(seconds * SR)))).astype(np.float32)


def test_duck_drops_new_soundtrack_by_duck_db_inside_speech():
    new, original = _bed(seed=1), _bed(level=0.1, seed=2)
    res = mix_tracks(new, original, SR, mode="duck", speech=SPEECH, duck_db=-12.0)
    assert res.mode == "duck" and res.dialogue is not None
    contribution = res.audio - original  # what the new soundtrack adds to the mix
    inside = np.concatenate([contribution[:, int(s * SR) : int(e * SR)] for s, e in SPEECH], axis=1)
    outside = np.concatenate([contribution[:, : int(0.8 * SR)], contribution[:, int(4.7 * SR) :]], axis=1)
    drop = _rms_db(outside) - _rms_db(inside)
    assert drop >= 12.0 - 0.05, drop
    np.testing.assert_allclose(res.audio, new * res.gain + original, atol=1e-6)


def test_duck_ramps_are_click_free_on_a_constant_signal():
    new = np.full((2, 6 * SR), 0.5, dtype=np.float32)
    original = np.zeros_like(new)
    res = mix_tracks(new, original, SR, mode="duck", speech=SPEECH, duck_db=-12.0, attack=0.08, release=0.35)
    jumps = np.abs(np.diff(res.audio, axis=1))
    # A raised-cosine attack of 80 ms moves a 0.5 signal by at most 0.5*(1-0.25)*pi/2/3840 ≈ 1.5e-4 per sample.
    assert jumps.max() < 2e-4, jumps.max()
    # The ramps really happen: full depth at the speech edges, unity attack/release away from them.
    g = res.gain
    assert g[int(1.0 * SR)] == pytest.approx(10 ** (-12 / 20), rel=1e-5)
    assert g[int(1.0 * SR) - int(0.08 * SR) - 1] == pytest.approx(1.0)
    assert g[int(2.0 * SR) + int(0.35 * SR) + 1] == pytest.approx(1.0)
    assert 0.3 < g[int(2.0 * SR) + int(0.175 * SR)] < 0.9  # half-way through the release
    assert np.all(np.diff(g[int(0.9 * SR) : int(1.0 * SR)]) <= 0)  # monotonic attack


def test_overlapping_ramps_take_the_deeper_gain_and_edges_clamp():
    g = duck_curve(SR, SR, [(0.0, 0.3), (0.5, 1.2)], duck_db=-20.0, attack=0.3, release=0.3)
    floor = 10 ** (-20 / 20)
    assert g.shape == (SR,) and g.min() == pytest.approx(floor, rel=1e-5)
    assert g[: int(0.3 * SR)].max() == pytest.approx(floor, rel=1e-5)
    assert g[int(0.4 * SR)] < 0.7  # between the regions the two ramps overlap; it never pops back to unity
    assert np.abs(np.diff(g)).max() < 1e-3


def test_under_and_replace_and_auto():
    new, original = _bed(seed=3), _bed(level=0.1, seed=4)
    under = mix_tracks(new, original, SR, mode="under", under_db=-6.0)
    np.testing.assert_allclose(under.gain, 10 ** (-6 / 20), rtol=1e-6)
    np.testing.assert_allclose(under.audio, new * 10 ** (-6 / 20) + original, atol=1e-6)
    rep = mix_tracks(new, original, SR, mode="replace")
    assert rep.dialogue is None and np.array_equal(rep.audio, new) and np.all(rep.gain == 1)
    assert mix_tracks(new, original, SR, speech=SPEECH).mode == "duck"
    assert mix_tracks(new, original, SR, speech=[]).mode == "replace"
    assert mix_tracks(new, None, SR, speech=SPEECH).mode == "replace"
    # A mono original is spread to the soundtrack's channels.
    mono = mix_tracks(new, original[:1], SR, mode="under")
    np.testing.assert_allclose(mono.dialogue[1], original[0])


def test_mix_rejects_bad_input_with_a_clear_message():
    new = _bed(1.0)
    with pytest.raises(InputError, match="no|none"):
        mix_tracks(new, None, SR, mode="duck", speech=SPEECH)
    with pytest.raises(InputError, match="video length"):
        mix_tracks(new, new[:, :-10], SR, mode="under")
    with pytest.raises(InputError, match="mix mode"):
        mix_tracks(new, new, SR, mode="loud")
    with pytest.raises(InputError, match="NaN"):
        mix_tracks(np.full((2, 100), np.nan, np.float32), None, SR)


def test_stems_sum_to_the_pre_limiter_mix_and_write_as_24_bit(tmp_path):
    # Soundtrack layers (they sum to the new soundtrack), one of them peaky so the limiter has to act.
    layers = {"ambience": _bed(level=0.05, seed=5), "fx": _bed(level=0.02, seed=6), "narrative": _bed(level=0.03, seed=7)}
    for k in range(1, 6):
        layers["fx"][:, k * SR : k * SR + 100] += 0.8
    new = sum(layers.values())
    original = _bed(level=0.05, seed=8)
    mixed = mix_tracks(new, original, SR, mode="duck", speech=SPEECH)
    out, report = normalize_loudness(mixed.audio, SR, target_lufs=-14.0)
    assert report.limited  # the post-limiter output differs from the pre-limiter sum...
    stems = mix_stems(layers, mixed, report.gain_db)
    assert set(stems) == {"ambience", "fx", "narrative", "dialogue"}
    pre_limiter = mixed.audio * np.float32(10 ** (report.gain_db / 20))
    total = sum(stems.values())
    np.testing.assert_allclose(total, pre_limiter, atol=1e-5)  # ...but the stems sum to the pre-limiter mix
    assert not np.allclose(out, pre_limiter, atol=1e-3)

    quiet = {k: v * np.float32(0.05) for k, v in stems.items()}  # under full scale → 24-bit PCM
    paths = write_stems(tmp_path / "stems", quiet, SR)
    assert [p.name for p in paths.values()] == ["ambience.wav", "fx.wav", "narrative.wav", "dialogue.wav"]
    back = []
    for layer, path in paths.items():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 2, new.shape[-1], "PCM_24")
        back.append(sf.read(path, dtype="float32", always_2d=True)[0].T)
    np.testing.assert_allclose(sum(back), sum(quiet.values()), atol=4 * 2.0**-23)


def test_stems_over_full_scale_are_written_as_float_so_they_do_not_clip(tmp_path):
    stems = {"fx": np.full((2, 1000), 1.5, np.float32), "ambience": np.zeros((2, 1000), np.float32)}
    paths = write_stems(tmp_path, stems, SR)
    assert sf.info(paths["fx"]).subtype == "FLOAT"
    assert sf.read(paths["fx"], dtype="float32")[0].max() == pytest.approx(1.5)
    with pytest.raises(InputError, match="same shape"):
        write_stems(tmp_path, {"fx": np.zeros((2, 10)), "ambience": np.zeros((2, 11))})


def test_master_on_the_talk_sample_ducks_under_detected_speech(tmp_path):
    """The finishing chain as `dubkit dub` runs it: speech found in the original, bed ducked, loudness met."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    from dubkit.soundtrack.loudness import integrated_loudness, true_peak_dbtp
    from dubkit.soundtrack.master import master_soundtrack

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    samples = Path(__file__).resolve().parents[1] / "samples"
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(samples / "talk.mp4"), "-ac", "2", "-ar", str(SR), "-f", "f32le", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    original = np.frombuffer(raw, np.float32).reshape(-1, 2).T.copy()
    truth = json.loads((samples / "talk.truth.json").read_text())["speech"]
    t = np.arange(original.shape[1]) / SR
    bed = np.stack([0.2 * np.sin(2 * np.pi * 110 * t)] * 2).astype(np.float32)
    done = master_soundtrack(bed, original, SR, mode="auto", loudness="broadcast")
    assert done.mix.mode == "duck" and len(done.speech) == len(truth)
    mid = [int((r["start"] + r["end"]) / 2 * SR) for r in truth]
    assert all(done.mix.gain[m] == pytest.approx(10 ** (-12 / 20), rel=1e-5) for m in mid)
    assert done.mix.gain[int(0.2 * SR)] == pytest.approx(1.0)  # before the first line: full level
    assert abs(integrated_loudness(done.audio, SR) + 23.0) <= 0.5 and true_peak_dbtp(done.audio) <= -1.0
    assert {"speech", "mix", "loudness"} <= set(done.timings)
    plain = master_soundtrack(bed, None, SR, loudness=None)
    assert plain.mix.mode == "replace" and plain.loudness is None and np.array_equal(plain.audio, bed)
