"""The shared audio helpers: one check, one resample, one channel rule, one length rule for the whole project."""
import numpy as np
import pytest

from audiostory_core.audio import check_audio, check_rate, fit_length, match_channels, resample
from audiostory_core.errors import PlanError, RenderError


def test_check_audio_accepts_mono_and_names_what_is_wrong():
    a = check_audio(np.arange(5, dtype=np.float64))
    assert a.dtype == np.float32 and a.shape == (1, 5)
    with pytest.raises(PlanError, match="NaN"):
        check_audio(np.array([[0.0, np.inf]]))
    with pytest.raises(PlanError, match="samples"):
        check_audio(np.zeros((2, 0)))
    with pytest.raises(PlanError, match="transposed"):
        check_audio(np.zeros((1000, 2)))
    with pytest.raises(RenderError, match="clip audio"):
        check_audio(np.zeros((2, 2, 2)), "clip audio", RenderError)
    with pytest.raises(PlanError, match="8000"):
        check_rate(100)
    assert check_rate("16000") == 16000


def test_resample_keeps_a_tone_and_its_length():
    t = np.arange(48000) / 48000
    x = np.sin(2 * np.pi * 440 * t)[None].astype(np.float32)
    y = resample(x, 48000, 44100)
    assert y.dtype == np.float32 and y.shape == (1, 44100)
    ref = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
    assert np.max(np.abs(y[0, 1000:-1000] - ref[1000:-1000])) < 1e-3
    assert resample(x.astype(np.float64), 48000, 24000, dtype=np.float64).dtype == np.float64
    assert resample(x, 16000, 16000) is x


def test_match_channels_repeats_mono_and_downmixes_the_rest():
    assert match_channels(np.ones(4, np.float32), 2).shape == (2, 4)
    six = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_allclose(match_channels(six, 2), np.repeat(six.mean(axis=0, keepdims=True), 2, axis=0))


def test_fit_length_cuts_pads_silence_and_holds_a_rounding_shortfall():
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    assert fit_length(x, 2).tolist() == [[1.0, 2.0]]
    assert fit_length(x, 5).tolist() == [[1.0, 2.0, 3.0, 3.0, 3.0]]  # 2 short: held, no step to zero
    assert fit_length(x, 10)[0, 3:].tolist() == [0.0] * 7  # really short: silence
    assert fit_length(np.zeros((2, 0)), 3).tolist() == [[0.0] * 3] * 2
    assert fit_length(np.ones(3), 4).shape == (4,)  # any leading shape, the last axis is time


def test_an_audio_prompt_is_checked_where_the_request_is_made():
    from audiostory_core.request import StoryRequest

    req = StoryRequest.from_audio(np.zeros(100), 16000, 1.0)
    assert req.audio_prompt.shape == (1, 100) and req.audio_prompt.dtype == np.float32
    with pytest.raises(PlanError, match="audio prompt contains NaN"):
        StoryRequest.from_audio(np.full((1, 10), np.nan), 16000, 1.0)
