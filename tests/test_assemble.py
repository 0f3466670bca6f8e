"""Long-form assembly: exact lengths, sample-exact placement, click-free crossfades, stems that sum to the mix."""
import numpy as np
import pytest

from audiostory_core import Clip, Plan, SubEvent
from audiostory_core.assemble import assemble, assign_tails, to_samples


def _clips(plan, sr, fill):
    return [Clip(fill(i, ev, int(round(ev.render_duration * sr))), sr, ev) for i, ev in enumerate(plan.events)]


def test_exact_length_and_placement_at_odd_rates():
    sr = 48000
    plan = Plan("", [SubEvent("hit", 1.2345, 0.1, kind="impact"), SubEvent("bed", 0.0, 7.0, layer="ambience")], 7.0)
    assign_tails(plan, 1.0)

    def fill(i, ev, n):
        a = np.zeros((2, n), np.float32)
        a[:, 0] = 1.0  # a click at the very first sample marks where the clip landed
        return a

    track = assemble(_clips(plan, sr, fill), plan, sr, total_samples=to_samples(7.0, sr) + 3)
    assert track.audio.shape == (2, to_samples(7.0, sr) + 3)
    fx = track.stems["fx"][0]
    assert np.flatnonzero(fx)[0] == to_samples(1.2345, sr)


def test_sequential_crossfade_keeps_constant_level_and_sums_exactly():
    sr = 1000
    plan = Plan("", [SubEvent("a", 0, 4, layer="narrative"), SubEvent("b", 4, 3, layer="narrative"),
                     SubEvent("c", 7, 3, layer="narrative")], 10.0)
    assign_tails(plan, 1.0)
    assert [e.tail for e in plan.events] == [1.0, 1.0, 0.0]
    track = assemble(_clips(plan, sr, lambda i, ev, n: np.full((2, n), 0.5, np.float32)), plan, sr, crossfade=1.0)
    # Equal-gain linear crossfade of two equal constants stays constant: no dip, no bump, no click.
    np.testing.assert_allclose(track.audio[0], 0.5, atol=1e-6)


def test_short_next_event_is_joined_hard_like_the_published_script():
    plan = Plan("", [SubEvent("a", 0, 2, layer="narrative"), SubEvent("b", 2, 0.5, layer="narrative")], 2.5)
    assign_tails(plan, 1.0)
    assert plan.events[0].tail == 0.0


def test_stems_hold_their_own_layer_and_are_resampled_to_the_mix_rate():
    plan = Plan("", [SubEvent("bed", 0, 2, layer="ambience"), SubEvent("hit", 0.5, 0.3, kind="impact")], 2.0)
    rng = np.random.default_rng(0)
    clips = [Clip(rng.standard_normal((1, int(round(e.render_duration * 44100)))).astype(np.float32) * 0.1, 44100, e)
             for e in plan.events]
    track = assemble(clips, plan, 48000)
    assert track.audio.shape == (2, 96000) and set(track.stems) == {"ambience", "fx"}
    fx, bed = track.stems["fx"][0], track.stems["ambience"][0]
    # The hit lives in the fx stem only, between 0.5 s and 0.8 s (a few samples of resampler spread at most);
    # the bed fills the ambience stem from start to end; both are mono clips spread to stereo.
    assert np.max(np.abs(fx[: 24000 - 8])) < 1e-3 and np.max(np.abs(fx[38400 + 8 :])) < 1e-3
    assert np.sqrt(np.mean(fx[24000:38400] ** 2)) > 0.05
    assert all(np.sqrt(np.mean(bed[i : i + 4800] ** 2)) > 0.05 for i in range(0, 96000, 4800))
    np.testing.assert_array_equal(track.stems["fx"][0], track.stems["fx"][1])


@pytest.mark.parametrize("gain_db", [-6.0, 0.0])
def test_event_gain_is_applied(gain_db):
    plan = Plan("", [SubEvent("x", 0, 1, gain_db=gain_db)], 1.0)
    track = assemble([Clip(np.ones((2, 100), np.float32), 100, plan.events[0])], plan, 100)
    assert track.audio[0, 50] == pytest.approx(10 ** (gain_db / 20), rel=1e-5)


def test_spot_effects_are_never_faded_in_even_when_they_abut_or_overlap():
    sr = 1000
    hits = [SubEvent("thunder", 0.0, 2.0, kind="flash"), SubEvent("thunder", 2.0, 2.0, kind="flash"),
            SubEvent("bounce", 3.5, 0.5, kind="impact")]
    plan = Plan("", hits, 4.0)
    assign_tails(plan, 1.0)
    assert all(e.tail == 0 for e in plan.events)
    track = assemble(_clips(plan, sr, lambda i, ev, n: np.ones((2, n), np.float32)), plan, sr, crossfade=1.0)
    fx = track.stems["fx"][0]
    # Each hit starts at full level on its own sample; overlapping hits add up.
    assert fx[0] == 1.0 and fx[2000] == 1.0 and fx[3500] == 2.0


@pytest.mark.parametrize("clip_rate", [48000, 44100])
def test_hard_joins_at_awkward_times_leave_no_gap_and_do_not_ring(clip_rate):
    """Seven back-to-back events over 10 s (boundaries between samples), rendered at 48 or 44.1 kHz and mixed at
    48 kHz: a constant signal must stay constant across every join — no zero sample, no resampling ripple."""
    from audiostory_core.render.base import event_samples

    bounds = np.linspace(0, 10, 8)
    events = [SubEvent("bed", float(a), float(b - a), layer="narrative") for a, b in zip(bounds, bounds[1:])]
    plan = Plan("", events, 10.0)
    clips = [Clip(np.full((2, event_samples(e, clip_rate)), 0.5, np.float32), clip_rate, e) for e in events]
    track = assemble(clips, plan, 48000)
    inner = track.audio[0, 200:-200]  # the track's own two ends may ring in the resampler; joins may not
    assert track.audio.shape[-1] == 480000
    assert np.max(np.abs(inner - 0.5)) < 2e-3


def test_tails_never_push_an_event_past_the_renderers_limit():
    plan = Plan("", [SubEvent("a", 0, 28.5, layer="narrative"), SubEvent("b", 28.5, 30, layer="narrative"),
                     SubEvent("c", 58.5, 10, layer="narrative")], 68.5)
    assign_tails(plan, 3.0, max_render=30.0)
    assert [e.tail for e in plan.events] == [1.5, 0.0, 0.0]
