"""Offline continuation: analysis, matching sounds from the foley bank, exact length, a seam you cannot hear."""
import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from audiostory_core.analysis import analyse_audio, shape_distance
from audiostory_core.continuation import continue_audio
from audiostory_core.errors import PlanError
from audiostory_core.plan.continuation_planner import ContinuationPlanner
from audiostory_core.render.foley.bank import BANK, synthesize
from audiostory_core.request import StoryRequest

SR = 22050  # fast, and still 11 kHz of bandwidth for the spectral shape


@pytest.fixture(scope="module")
def planner():
    # words only (fast); previews are cached across the module
    return ContinuationPlanner(BANK, synthesize, embedder=None)


def rms_db(x):
    return 20 * np.log10(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-12)


def hissy_noise(seconds, seed=0):
    """Rain-like input that is not from the bank: high-passed noise, stereo, -26 dBFS RMS."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, int(seconds * SR)))
    x = sosfilt(butter(4, 1500, "highpass", fs=SR, output="sos"), x, axis=-1)
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (-26 / 20)).astype(np.float32)


def clicks(seconds, period, first, seed=0):
    """Short decaying clicks every ``period`` s over quiet noise (a clock, footsteps)."""
    rng = np.random.default_rng(seed)
    x = 0.002 * rng.standard_normal(int(seconds * SR))
    k = np.arange(int(0.03 * SR))
    click = np.sin(2 * np.pi * 2500 * k / SR) * np.exp(-k / (0.004 * SR)) * 0.5
    for t in np.arange(first, seconds - 0.05, period):
        s = int(round(t * SR))
        x[s : s + k.size] += click[: x.size - s]
    return x[None, :].astype(np.float32)


# --- analysis ----------------------------------------------------------------------------------------------------


def test_analyse_audio_measures_what_it_says():
    t = np.arange(2 * SR) / SR
    tone = analyse_audio(0.3 * np.sin(2 * np.pi * 220 * t), SR)
    assert tone.pitch == pytest.approx(220, rel=0.02)
    assert tone.rms_db == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.1)
    noise = analyse_audio(hissy_noise(2), SR)
    assert noise.pitch is None and noise.flatness > tone.flatness and noise.onset_rate < 0.6
    low = analyse_audio(sosfilt(butter(4, 500, fs=SR, output="sos"), hissy_noise(2, 1) * 0 + np.random.default_rng(1).standard_normal((1, 2 * SR))), SR)
    assert low.centroid < 1000 < noise.centroid and low.tilt < 0 < noise.tilt
    tick = analyse_audio(clicks(4, 0.4, 0.1), SR)
    assert tick.rhythmic and tick.onset_period == pytest.approx(0.4, abs=0.01)
    assert np.allclose(tick.onset_times, np.arange(0.1, 3.95, 0.4), atol=0.004)


# --- continue_audio ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_input", [False, True])
def test_exact_length_and_input_untouched(planner, include_input):
    x = hissy_noise(2.5)
    res = continue_audio(x, SR, 3.3333, include_input=include_input, planner=planner)
    n_new = int(np.floor(3.3333 * SR + 0.5))
    assert res.audio.dtype == np.float32 and res.audio.shape == (2, n_new + (x.shape[1] if include_input else 0))
    assert res.sample_rate == SR
    if include_input:
        assert np.array_equal(res.audio[:, : x.shape[1]], x)
    beds = [e for e in res.plan.events if e.layer != "fx"]
    assert beds and beds[-1].end == pytest.approx(3.3333, abs=1e-9)  # the bed reaches the very end
    assert np.all(np.isfinite(res.audio))


def test_rain_continues_as_rain_with_an_inaudible_seam(planner):
    x = synthesize("rain", 5.0, SR, seed=1234)  # the bank's rain, a take the previews never saw
    res = continue_audio(x, SR, 4.0, include_input=True, planner=planner, seed=7)
    new = res.audio[:, x.shape[1] :]
    assert res.choice.texture.name == "rain"
    assert "rain" in res.plan.reasoning
    # The continuation sounds like the input, not like unrelated sounds.
    p_in, p_new = analyse_audio(x[:, -2 * SR :], SR), analyse_audio(new, SR)
    d_self = shape_distance(p_in, p_new)
    for other in ("siren", "bell", "engine_idle"):
        p_other = analyse_audio(synthesize(other, 2.0, SR, 0), SR)
        assert d_self < shape_distance(p_other, p_new) / 2, other
    _assert_seamless(res.audio, x.shape[1])


def test_foreign_noise_continues_closer_to_itself_than_to_unrelated_sounds(planner):
    x = hissy_noise(4.0, seed=3)
    res = continue_audio(x, SR, 3.0, planner=planner)
    p_in, p_new = analyse_audio(x, SR), analyse_audio(res.audio, SR)
    for other in ("siren", "bell", "drone_hum"):
        assert shape_distance(p_in, p_new) < shape_distance(analyse_audio(synthesize(other, 2.0, SR, 0), SR), p_new)
    assert rms_db(res.audio[:, SR:]) == pytest.approx(rms_db(x[:, -SR:]), abs=1.5)  # loudness matched
    _assert_seamless(np.concatenate([x, res.audio], axis=1), x.shape[1])


def _assert_seamless(audio, seam):
    # No click: the largest sample step near the seam is no larger than the largest step inside the input.
    step_in = np.abs(np.diff(audio[:, :seam], axis=-1)).max()
    near = audio[:, seam - int(0.01 * SR) : seam + int(0.01 * SR)]
    assert np.abs(np.diff(near, axis=-1)).max() <= step_in
    # Short-window loudness stays within a few dB of the input's tail across the seam and the crossfade.
    w = int(0.05 * SR)
    tail = rms_db(audio[:, seam - SR : seam])
    windows = [rms_db(audio[:, k : k + w]) for k in range(seam - 4 * w, seam + 30 * w, w)]
    assert max(abs(v - tail) for v in windows) < 4.0, np.round(windows, 1)


def test_rhythm_keeps_its_rate_and_phase(planner):
    x = clicks(4.0, 0.4, 0.13)  # last click at 3.73 s → the next beat is 0.13 s into the continuation
    res = continue_audio(x, SR, 4.0, planner=planner)
    assert res.choice.onset_times[0] == pytest.approx(0.13, abs=0.01)
    got = analyse_audio(res.audio, SR)
    assert got.onset_rate == pytest.approx(2.5, rel=0.25)
    later = got.onset_times[got.onset_times > 0.6]  # past the crossfade
    phase = np.abs(((later - 0.13) / 0.4) - np.round((later - 0.13) / 0.4)) * 0.4
    assert np.median(phase) < 0.02, later
    assert "repeat" in res.plan.reasoning  # "repeating onsets" (bank hits) or "repeat every" (its own hits)


def test_instruction_biases_the_choice(planner):
    rng = np.random.default_rng(5)
    noise = sosfilt(butter(1, 800, fs=SR, output="sos"), rng.standard_normal((1, 3 * SR))).astype(np.float32) * 0.1
    plain = planner.choose(noise, SR, 2.0)
    steered = planner.choose(noise, SR, 2.0, instruction="the ocean waves keep washing in")
    assert steered.texture.name == "ocean_waves"
    assert plain.texture.name != "ocean_waves"
    assert planner.choose(noise, SR, 2.0, instruction="nothing in particular").texture.name == plain.texture.name


@pytest.mark.slow
def test_instruction_steers_by_meaning_with_the_sentence_embedder():
    rng = np.random.default_rng(5)
    noise = sosfilt(butter(1, 800, fs=SR, output="sos"), rng.standard_normal((1, 3 * SR))).astype(np.float32) * 0.1
    words_only = ContinuationPlanner(BANK, synthesize, embedder=None)
    semantic = ContinuationPlanner(BANK, synthesize)  # loads the packaged MiniLM
    text = "the tide keeps rolling in"  # shares no word with ocean_waves' name, description or keywords
    assert words_only.choose(noise, SR, 2.0, instruction=text).texture.name != "ocean_waves"
    assert semantic.choose(noise, SR, 2.0, instruction=text).texture.name == "ocean_waves"


def test_same_seed_same_audio_and_planner_seam(planner):
    x = hissy_noise(2.0, seed=9)
    a = continue_audio(x, SR, 1.5, seed=3, planner=planner).audio
    b = continue_audio(x, SR, 1.5, seed=3, planner=planner).audio
    c = continue_audio(x, SR, 1.5, seed=4, planner=planner).audio
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    plan = planner.plan(StoryRequest.from_audio(x, SR, 65.0, instruction="keep the rain going"))
    beds = [e for e in plan.events if e.layer == "ambience"]
    assert len(beds) == 3 and all(e.duration <= 30 for e in beds) and beds[-1].end == 65.0
    assert plan.planner == "continuation" and "Closest textures" in plan.reasoning


def test_bad_input_says_what_to_do(planner):
    with pytest.raises(PlanError, match="NaN"):
        continue_audio(np.full((1, 1000), np.nan, np.float32), SR, 1.0, planner=planner)
    with pytest.raises(PlanError, match="positive"):
        continue_audio(hissy_noise(1), SR, 0, planner=planner)
    with pytest.raises(PlanError, match="samples"):
        continue_audio(np.zeros((1, 0), np.float32), SR, 1.0, planner=planner)
    with pytest.raises(PlanError, match="sample rate"):
        continue_audio(hissy_noise(1), 100, 1.0, planner=planner)
    silent = continue_audio(np.zeros((2, SR), np.float32), SR, 1.0, planner=planner)
    assert silent.audio.shape == (2, SR) and not np.any(silent.audio)


def test_any_renderer_can_voice_the_plan(planner):
    """With a renderer (e.g. the DiT, at its own rate) the result still has the input's rate, length and level."""
    from audiostory_core.render.base import Clip

    class NoiseRenderer:
        name, sample_rate = "noise16k", 16000

        def render(self, plan, conditioning=None, *, seed=0):
            rng = np.random.default_rng(seed)
            return [Clip(0.5 * rng.standard_normal((1, round(e.render_duration * 16000))).astype(np.float32), 16000, e)
                    for e in plan.events]

    x = hissy_noise(2.0, seed=11)
    res = continue_audio(x, SR, 2.5, renderer=NoiseRenderer(), planner=planner, include_input=True)
    assert res.audio.shape == (2, x.shape[1] + int(2.5 * SR + 0.5))
    assert np.array_equal(res.audio[:, : x.shape[1]], x)
    assert rms_db(res.audio[:, -SR:]) == pytest.approx(rms_db(x[:, -SR:]), abs=1.5)
    step_in = np.abs(np.diff(x, axis=-1)).max()
    seam = x.shape[1]
    assert np.abs(np.diff(res.audio[:, seam - 200 : seam + 200], axis=-1)).max() <= step_in


def test_instruction_naming_an_event_adds_it_over_the_matched_bed(planner):
    x = synthesize("rain", 4.0, SR, seed=21)
    res = continue_audio(x, SR, 9.0, instruction="the rain goes on, then thunder", planner=planner)
    hits = [e for e in res.plan.events if e.layer == "fx"]
    assert res.choice.texture.name == "rain" and res.choice.requested.name == "thunder"
    assert len(hits) == 1 and hits[0].start == 3.0 and "thunder" in hits[0].caption
    assert "names 'thunder'" in res.plan.reasoning
    # The bed (before the thunder) is at the input's loudness; the thunder stands out above it.
    before = rms_db(res.audio[:, SR : int(2.9 * SR)])
    assert before == pytest.approx(rms_db(x[:, -SR:]), abs=1.5)
    assert rms_db(res.audio[:, 3 * SR : 5 * SR]) > before + 2


def test_plan_json_names_the_sound_each_event_plays(planner):
    import json

    from audiostory_core.plan.types import Plan, SubEvent

    x = synthesize("rain", 3.0, SR, seed=5)
    plan = planner.plan(StoryRequest.from_audio(x, SR, 4.0, instruction="the rain goes on, then thunder"))
    assert [e.sound for e in plan.events] == ["rain", "thunder"]
    doc = json.loads(json.dumps(plan.to_dict()))
    assert [e["sound"] for e in doc["events"]] == ["rain", "thunder"]
    assert Plan.from_dict(doc).events == plan.events
    assert "sound" not in SubEvent("x", 0.0, 1.0).to_dict()  # unset: the renderer matches the caption


def test_previews_are_kept_on_disk_and_read_back_equal(tmp_path, monkeypatch):
    from audiostory_core.plan import continuation_planner as CP
    from audiostory_core.render.foley.recorded import RecordingBank

    monkeypatch.setenv("DUBKIT_CACHE_DIR", str(tmp_path))
    bank = RecordingBank([])  # the bank sounds alone: their key is the synthesis code
    calls = []

    def counting(name, duration, sr, seed):
        calls.append(name)
        return bank.synthesize(name, duration, sr, seed)

    names = ["rain", "wind", "clock_ticking"]
    monkeypatch.setattr(CP, "_PREVIEW_CACHE", {})
    first = {n: CP.ContinuationPlanner(bank, counting, embedder=None).preview(n, SR) for n in names}
    assert calls == names and len(list((tmp_path / "continuation-previews").glob("*.npz"))) == 3
    monkeypatch.setattr(CP, "_PREVIEW_CACHE", {})  # a new process: only the disk remembers
    again = {n: CP.ContinuationPlanner(bank, counting, embedder=None).preview(n, SR) for n in names}
    assert calls == names  # nothing rendered a second time
    for n in names:
        a, b = first[n], again[n]
        assert a.pitch == b.pitch and a.onset_period == b.onset_period and a.centroid == b.centroid
        assert np.array_equal(a.band_db, b.band_db) and np.array_equal(a.onset_times, b.onset_times)
