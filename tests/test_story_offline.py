"""`dubkit story` offline: the instruction's events in order, each with its own sound, exactly the length asked."""
import pytest
import soundfile as sf

import dubkit


def test_rain_then_thunder_then_car(tmp_path):
    res = dubkit.story("rain, then thunder, then a car passes", 30.0, tmp_path / "s.wav", seed=0)
    events = res.plan.events
    assert len(events) == 3
    assert [e.start for e in events] == sorted(e.start for e in events)
    sources = [c.source for c in sorted(res.soundtrack.clips, key=lambda c: c.event.start)]
    assert sources == ["synth:rain", "synth:thunder", "synth:car_pass_by"]
    assert sum(e.duration for e in events) == pytest.approx(30.0, abs=1e-9)
    audio, sr = sf.read(str(tmp_path / "s.wav"), dtype="float32", always_2d=True)
    assert audio.shape[0] == round(30.0 * sr)
    # Each event sounds different: spectral shapes (1/3-octave, dB) of the events differ far more than two
    # stretches of the same event do.
    from audiostory_core.analysis import analyse_audio, shape_distance

    x = audio.T
    shape = {i: analyse_audio(x[:, int((e.start + 0.5) * sr) : int((e.end - 0.5) * sr)], sr) for i, e in enumerate(events)}
    same = shape_distance(analyse_audio(x[:, 1 * sr : 5 * sr], sr), analyse_audio(x[:, 8 * sr : 12 * sr], sr))
    across = min(shape_distance(shape[i], shape[j]) for i in range(3) for j in range(i + 1, 3))
    assert across > 5 * same
