"""Long audio in blocks: file-backed tracks give the same soundtrack, mix, loudness, stems and report as arrays,
and a long mastering pass holds a few blocks, not copies of the audio."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from audiostory_core import Clip, Plan, SubEvent
from audiostory_core.assemble import Assembler, assemble, assign_tails
from audiostory_core.audio import resample
from audiostory_core.tracks import BLOCK, ArrayTrack, FileTrack, TrackStore, resample_track, to_array
from dubkit.io import WavTrack, decode_audio_into, read_audio
from dubkit.soundtrack.loudness import integrated_loudness, normalize_loudness, short_term_loudness, true_peak_dbtp
from dubkit.soundtrack.master import master_soundtrack
from dubkit.soundtrack.mix import mix_tracks
from dubkit.soundtrack.stems import mix_stems, write_stems

SR = 48000
ROOT = Path(__file__).resolve().parents[1]


def _noisy(seconds: float, seed: int = 0, peaks: bool = True) -> np.ndarray:
    """A bed with a swell and (optionally) loud bursts: several blocks long, so every join is exercised."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = (0.05 * rng.standard_normal(t.size) + 0.1 * np.sin(2 * np.pi * 220 * t)) * (0.6 + 0.4 * np.sin(t))
    a = np.stack([x, 0.8 * x]).astype(np.float32)
    if peaks:
        for k in (BLOCK - 100, 2 * BLOCK + 7, int(1.5 * BLOCK)):  # two right at block joins
            if k + 300 <= a.shape[-1]:
                a[:, k : k + 300] += (0.9 * np.hanning(300) * np.sin(np.arange(300) * 0.7)).astype(np.float32)
    return a


def _file_track(store: TrackStore, audio: np.ndarray, name: str = "t") -> FileTrack:
    track = store.new(name, *audio.shape)
    track.write(0, audio)
    return track


def test_file_track_reads_back_what_was_written_and_zeros_outside(tmp_path):
    audio = _noisy(1.0)
    with TrackStore(tmp_path) as store:
        track = _file_track(store, audio)
        np.testing.assert_array_equal(track.read(0, track.samples), audio)
        edge = track.read(-5, 5)
        assert edge.shape == (2, 10) and not edge[:, :5].any() and np.array_equal(edge[:, 5:], audio[:, :5])
        assert not track.read(track.samples, track.samples + 3).any()
        assert store.folder is not None and store.folder.name.startswith(".dubkit-scratch.")
        folder = store.folder
    assert not folder.exists()  # closing the store removes its files


def test_file_track_reads_do_not_share_its_kept_buffer_and_a_sum_of_files_is_the_sum(tmp_path):
    from audiostory_core.tracks import SumTrack

    a, b = _noisy(12.0, seed=1), _noisy(12.0, seed=2)  # over two blocks
    with TrackStore(tmp_path) as store:
        ta, tb = _file_track(store, a, "a"), _file_track(store, b, "b")
        first, second = ta.read(0, BLOCK), ta.read(BLOCK, 2 * BLOCK)  # the second read reuses the buffer
        assert np.array_equal(first, a[:, :BLOCK]) and np.array_equal(second, a[:, BLOCK : 2 * BLOCK])
        total = SumTrack([ta, tb], 2, ta.samples)
        for lo, hi in [(-7, 100), (BLOCK - 3, 2 * BLOCK + 5), (ta.samples - 50, ta.samples + 9)]:
            want = np.zeros((2, hi - lo), np.float32)
            inside = slice(max(lo, 0) - lo, min(hi, ta.samples) - lo)
            want[:, inside] = a[:, max(lo, 0) : min(hi, ta.samples)] + b[:, max(lo, 0) : min(hi, ta.samples)]
            assert np.array_equal(total.read(lo, hi), want)  # bit for bit, zeros outside the tracks
        assert np.array_equal(ta.read(0, ta.samples), a)  # longer than what is kept: read through a fresh array
        assert all(buf.shape[0] <= 2 * BLOCK for buf in ta._kept.values())  # nothing of a track's length is kept


def test_blockwise_resampling_equals_one_whole_signal_pass():
    audio = _noisy(13.0, peaks=False)[:, : 3 * BLOCK + 1234]
    for rate_in, rate_out in ((44100, 48000), (16000, 48000), (48000, 16000)):
        whole = resample(audio, rate_in, rate_out)
        out = ArrayTrack(np.zeros((2, whole.shape[-1]), np.float32))
        resample_track(ArrayTrack(audio), out, rate_in, rate_out)
        np.testing.assert_allclose(out.audio, whole, atol=2e-6)


def test_assembly_into_files_equals_assembly_in_memory_in_any_clip_order(tmp_path):
    plan = Plan("", [SubEvent("bed a", 0.0, 7.0, layer="ambience"), SubEvent("bed b", 7.0, 6.0, layer="ambience"),
                     SubEvent("hit", 5.4321, 0.3, kind="impact")], 13.0)
    assign_tails(plan, 1.0)
    rng = np.random.default_rng(1)
    clips = [Clip(rng.standard_normal((2, round(e.render_duration * 44100))).astype(np.float32) * 0.1, 44100, e)
             for e in plan.events]
    memory = assemble(clips, plan, SR)
    with TrackStore(tmp_path) as store:
        asm = Assembler(plan, SR, store=store, layout_rate=44100)
        for clip in reversed(clips):  # a renderer may yield them in any order
            asm.add(clip)
        files = asm.finish()
        assert set(files.stems) == set(memory.stems)
        for layer, stem in memory.stems.items():
            np.testing.assert_allclose(to_array(files.stems[layer]), stem, atol=2e-6)
        np.testing.assert_allclose(to_array(files.audio), memory.audio, atol=4e-6)


def test_streamed_loudness_matches_pyloudnorm_and_the_array_result(tmp_path):
    audio = _noisy(14.0)  # 2.6 blocks, with bursts on the joins
    ref = pyloudnorm.Meter(SR).integrated_loudness(audio.T.astype(np.float64))
    assert integrated_loudness(audio, SR) == pytest.approx(ref, abs=1e-9)
    out_array, rep_array = normalize_loudness(audio, SR, target_lufs=-14.0)
    with TrackStore(tmp_path) as store:
        src = _file_track(store, audio)
        sink = store.new("out", 2, src.samples)
        out_track, rep = normalize_loudness(src, SR, target_lufs=-14.0, out=sink)
        assert out_track is sink
        streamed = to_array(sink)
    assert rep.limited and rep.gain_db == pytest.approx(rep_array.gain_db, abs=1e-9)
    np.testing.assert_allclose(streamed, out_array, atol=1e-6)
    measured = pyloudnorm.Meter(SR).integrated_loudness(streamed.T.astype(np.float64))
    assert rep.output_lufs == pytest.approx(measured, abs=1e-6) and abs(measured + 14.0) <= 0.5
    assert true_peak_dbtp(streamed) <= -1.0 + 1e-6


def test_streamed_mix_stems_and_master_equal_the_array_path(tmp_path):
    bed, fx, original = _noisy(12.0, 1, False), _noisy(12.0, 2) * 0.3, _noisy(12.0, 3, False) * 0.5
    speech = [(2.0, 4.5), (5.44, 5.46), (9.0, 12.5)]  # one region ends past the end, one is across a join
    arrays = mix_tracks(bed + fx, original, SR, mode="duck", speech=speech)
    with TrackStore(tmp_path) as store:
        tb, tf, to = (_file_track(store, a, k) for k, a in (("bed", bed), ("fx", fx), ("orig", original)))
        from audiostory_core.tracks import SumTrack

        new = SumTrack([tb, tf], 2, tb.samples)
        mixed = mix_tracks(new, to, SR, mode="duck", speech=speech)
        np.testing.assert_allclose(to_array(mixed.audio), arrays.audio, atol=1e-6)
        np.testing.assert_array_equal(mixed.gain_at(0, tb.samples), arrays.gain)
        stems = mix_stems({"ambience": tb, "fx": tf}, mixed, -3.0)
        paths = write_stems(tmp_path / "stems", stems, SR)
        expect = mix_stems({"ambience": bed, "fx": fx}, arrays, -3.0)
        for layer, path in paths.items():
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            assert rate == SR and data.shape == (tb.samples, 2)
            np.testing.assert_allclose(data.T, expect[layer], atol=2e-7 + 1 / 2**23)
        wav = WavTrack(tmp_path / "master.wav", 2, tb.samples, SR)
        done = master_soundtrack(new, to, SR, mode="duck", speech=speech, loudness=-20.0, out=wav)
        wav.finish()
        ref = master_soundtrack(bed + fx, original, SR, mode="duck", speech=speech, loudness=-20.0)
        assert done.loudness.gain_db == pytest.approx(ref.loudness.gain_db, abs=1e-9)
        np.testing.assert_allclose(wav.read(0, tb.samples), ref.audio, atol=2e-6)
        # The limiter had nothing to do: the true peak was measured as written, before the 24-bit rounding.
        assert not done.loudness.limited
        assert done.loudness.true_peak_dbtp == pytest.approx(true_peak_dbtp(wav), abs=1e-4)
        times, curve = short_term_loudness(wav, SR)
        np.testing.assert_allclose(curve, short_term_loudness(ref.audio, SR)[1], atol=1e-3)
        wav.close()


def test_original_audio_decodes_onto_the_video_clock_like_align_to_video(tmp_path):
    from dubkit.deliver.sync import align_to_video

    src = tmp_path / "orig.wav"
    sf.write(str(src), _noisy(3.0, 4, False).T, SR, subtype="FLOAT")
    whole = read_audio(src, SR, 2)
    for shift, n in ((1234, whole.shape[-1]), (-777, whole.shape[-1] - 100), (3, whole.shape[-1] + 5)):
        track = decode_audio_into(ArrayTrack(np.zeros((2, n), np.float32)), src, SR, shift=shift)
        np.testing.assert_array_equal(track.audio, align_to_video(whole, shift / SR, n, SR))


def _mastering_peak(folder, seconds: int) -> tuple[int, float]:
    """Python-visible peak bytes of mixing, ducking, normalising and limiting ``seconds`` of file-backed stereo."""
    n = seconds * SR
    with TrackStore(folder) as store:
        bed, original = store.new("bed", 2, n), store.new("orig", 2, n)
        for start in range(0, n, BLOCK):
            block = _noisy(BLOCK / SR + 1, seed=start)[:, : min(BLOCK, n - start)]
            bed.write(start, block)
            original.write(start, 0.3 * block[::-1])
        out = WavTrack(folder / f"long{seconds}.wav", 2, n, SR)
        tracemalloc.start()
        try:
            done = master_soundtrack(bed, original, SR, mode="duck", speech=[(10.0, 20.0), (31.0, 32.5)],
                                     loudness=-23.0, out=out)
            out.finish()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert sf.info(str(out.path)).frames == n
        out.close()
    return peak, done.loudness.output_lufs


@pytest.mark.slow
def test_mastering_memory_is_flat_in_the_soundtrack_s_length(tmp_path):
    """40 s and 160 s of stereo (15 and 61 MB as float32): the same few blocks are held either way."""
    short, _ = _mastering_peak(tmp_path, 40)
    long, lufs = _mastering_peak(tmp_path, 160)
    copy = 2 * 4 * 160 * SR
    assert long < 1.15 * short + 2e6, (short, long)
    assert long < copy / 2, f"peak {long / 1e6:.0f} MB for a {copy / 1e6:.0f} MB soundtrack"
    assert abs(lufs + 23.0) <= 0.5


def test_speech_in_a_long_track_is_found_window_by_window_like_in_one_piece(tmp_path, monkeypatch):
    """The talk sample's four lines, detected with 6 s windows overlapping by 2 s (two lines straddle a join):
    the same regions as one call over the whole recording, to a frame of the detector."""
    import dubkit.soundtrack.master as master
    from dubkit.soundtrack.dialogue import detect_speech

    audio = read_audio(ROOT / "samples" / "talk.mp4", SR, 2)
    whole = detect_speech(audio, SR)
    monkeypatch.setattr(master, "SPEECH_CHUNK", 6.0)
    monkeypatch.setattr(master, "SPEECH_OVERLAP", 2.0)
    with TrackStore(tmp_path) as store:
        windowed = master.find_speech(_file_track(store, audio), SR, None)
    assert len(windowed) == len(whole) == 4
    np.testing.assert_allclose(np.array(windowed), np.array(whole), atol=0.04)
