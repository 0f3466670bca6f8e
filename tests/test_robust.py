"""Nothing lost, nothing silently wrong: a full disk, signals, names that look like options, two inputs with one
name, damaged inputs and queues, and numbers out of range — each ends in one clear line and leaves nothing behind.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dubkit
from dubkit.errors import DiskFullError, InputError, OutputError
from dubkit.options import FinishingOptions

from .conftest import ffprobe_json

DUBKIT = [sys.executable, "-m", "dubkit.cli"]
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*DUBKIT, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})


def last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def everything(folder: Path) -> list[str]:
    """Every name in ``folder``, hidden ones included, recursively."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def make_clip(path: Path, seconds: float, bitrate: str = "2000k") -> Path:
    """640x360 busy test picture at ``bitrate`` with an AAC tone, faststart MP4 (as the issue's base.mp4)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24",
                    "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", bitrate, "-c:a", "aac",
                    "-movflags", "+faststart", "-shortest", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("robust-media")


@pytest.fixture(scope="module")
def clip4(media) -> Path:
    return make_clip(media / "base4.mp4", 4)


@pytest.fixture(scope="module")
def backends():
    from dubkit.backends import build_backends

    return build_backends()


@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs of the size asked for (``small_disk("4M")``); skipped where mounting is not allowed."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        disk = tmp_path / f"disk-{len(mounted)}"
        disk.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip() or 'not permitted'})")
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# --- 1. full disk -------------------------------------------------------------------------------------------------


def test_nearly_full_disk_is_refused_up_front_with_the_numbers(media, small_disk):
    """The issue's case: 8 s 640x360 with AAC into a 4 MB tmpfs used to exit 0 with an MP4 without its moov."""
    base = make_clip(media / "base8.mp4", 8)
    disk = small_disk("4M")
    proc = run("dub", str(base), "-o", str(disk / "out.mp4"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line = last_line(proc)
    assert line.startswith(f"dubkit: error: no space left on {disk}") and "MB needed" in line and "MB free" in line
    assert everything(disk) == []


def test_a_disk_that_fills_during_the_dub_is_named_and_left_empty(clip4, small_disk, backends, monkeypatch):
    """With the up-front estimate out of the way, the disk fills at every later step in turn (scratch tracks, the
    mixed WAV, the mux, the deliverables): each one fails with the one line and leaves the disk as it was; with
    room, the output is complete."""
    import dubkit.deliver.space as space

    monkeypatch.setattr(space, "dub_space_needed", lambda *a, **k: 0)
    steps, done = set(), 0
    for size in ("1M", "2M", "3M", "5M", "8M"):
        disk = small_disk(size)
        try:
            res = dubkit.dub(clip4, disk / "out.mp4", backends=backends)
        except OutputError as e:
            assert str(e).startswith(f"no space left on {disk} for "), e
            assert everything(disk) == [], (size, everything(disk))
            steps.add(str(e).split(" for ", 1)[1].split(":")[0].split(" (")[0])
            continue
        done += 1
        info = ffprobe_json(res.output)
        assert float(info["format"]["duration"]) == pytest.approx(4.0, abs=0.1)
        assert sorted(os.listdir(disk)) == ["out.mp4", "out.mp4.dubkit"]
    assert done >= 1 and len(steps) >= 2, steps


def test_injected_enospc_and_edquot_name_the_disk_and_leave_nothing(clip4, tmp_path, backends, monkeypatch):
    """Where no tmpfs can be mounted: the kernel's answers injected where the scratch space is reserved and
    where it is written."""
    import audiostory_core.tracks as tracks
    from workflows.failures import is_transient

    src = tmp_path / "in.mp4"
    shutil.copyfile(clip4, src)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tracks.os, "posix_fallocate", full)
    with pytest.raises(DiskFullError, match=f"^no space left on {tmp_path} for dubbing in.mp4: .* MB needed") as exc:
        dubkit.dub(src, tmp_path / "out.mp4", backends=backends)
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]
    assert is_transient(exc.value)  # a watch folder retries it instead of failing a good input
    monkeypatch.undo()

    real, calls = tracks.os.pwrite, []

    def quota(fd, data, offset):  # the first write lands, the second meets the quota
        calls.append(offset)
        if len(calls) > 1:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        return real(fd, data, offset)

    monkeypatch.setattr(tracks.os, "pwrite", quota)
    with pytest.raises(OutputError, match=f"^disk quota exceeded on {tmp_path}"):
        dubkit.dub(src, tmp_path / "out.mp4", backends=backends)
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_a_muxed_file_cut_short_is_rejected_before_it_is_renamed(clip4, tmp_path):
    from dubkit.deliver.mux import verify_muxed
    from dubkit.video.probe import probe

    info = probe(clip4)
    verify_muxed(clip4, info, audio_streams=1)  # the complete file passes
    data = clip4.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.7)])  # faststart: the index survives, the end of the media does not
    with pytest.raises(OutputError, match="failed its check .*video frames"):
        verify_muxed(cut, info, audio_streams=1, shown_as="out.mp4")
    with pytest.raises(OutputError, match="failed its check"):
        verify_muxed(clip4, info, audio_streams=2)


# --- 4. one package per output --------------------------------------------------------------------------------


def test_clip_mp4_and_clip_mov_in_one_folder_keep_their_own_packages(clip4, tmp_path, backends):
    mp4, mov = tmp_path / "clip.mp4", tmp_path / "clip.mov"
    shutil.copyfile(clip4, mp4)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip4), "-c", "copy", str(mov)], check=True)
    a = dubkit.dub(mp4, backends=backends, seed=1)
    b = dubkit.dub(mov, backends=backends, seed=2)
    assert a.deliverables.folder == tmp_path / "clip.dubbed.mp4.dubkit"
    assert b.deliverables.folder == tmp_path / "clip.dubbed.mov.dubkit"
    for res, video in ((a, "clip.dubbed.mp4"), (b, "clip.dubbed.mov")):
        plan = json.loads(res.deliverables.plan.read_text())
        assert plan["video"] == video and res.deliverables.report.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["clip.mp4", "clip.mov", "clip.dubbed.mp4", "clip.dubbed.mov", "clip.dubbed.mp4.dubkit", "clip.dubbed.mov.dubkit"])


# --- 8. signals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig, stage, code, word", [
    (signal.SIGTERM, "writing ", 143, "terminated"),  # scratch files, the partial video and the package all exist
    (signal.SIGINT, "mixing", 130, "interrupted"),
])
def test_a_signal_cleans_every_temporary_and_says_so(tmp_path, clip4, sig, stage, code, word):
    src = tmp_path / "c.mp4"
    shutil.copyfile(clip4, src)
    # As from a terminal: SIGINT not ignored (a test runner started in the background would pass that on).
    proc = subprocess.Popen([*DUBKIT, "dub", "c.mp4"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if stage in line:
                hidden = [p for p in os.listdir(tmp_path) if p.startswith(".")]
                proc.send_signal(sig)
                break
        rest = proc.stderr.read()
        proc.wait(60)
    finally:
        proc.kill()
    assert hidden, "the signal came before any temporary existed"
    assert proc.returncode == code, "".join(seen) + rest
    assert rest.strip().splitlines()[-1] == f"dubkit: {word}" and "Traceback" not in rest
    assert sorted(os.listdir(tmp_path)) == ["c.mp4"]


# --- 9. names starting with '-' -------------------------------------------------------------------------------


def test_names_that_start_with_a_dash_work_everywhere(tmp_path, clip4):
    shutil.copyfile(clip4, tmp_path / "-leading.mp4")
    proc = run("dub", "-q", "--", "-leading.mp4", "-o", "-out.mp4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert float(ffprobe_json(tmp_path / "-out.mp4")["format"]["duration"]) == pytest.approx(4.0, abs=0.1)
    assert (tmp_path / "-out.mp4.dubkit" / "report.html").is_file()
    proc = run("plan", "./-leading.mp4", "-o", "./-plan.json", "-q", cwd=tmp_path)
    assert proc.returncode == 0 and json.loads((tmp_path / "-plan.json").read_text())["plan"]["events"], proc.stderr
    proc = run("batch", "--job", "workflows.dryrun:remux", "-q", "--", "-leading.mp4", "--out", "DONE", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "DONE" / "-leading.mp4").is_file()


def test_options_after_double_dash_are_still_options_for_path_commands():
    from dubkit.cli import _load_plugins, _operands_after_dashes

    _load_plugins()
    assert _operands_after_dashes(["batch", "--", "-a.mp4", "--out", "D", "b.mp4"]) == \
        ["batch", "./-a.mp4", "--out", "D", "b.mp4"]
    assert _operands_after_dashes(["dub", "--", "-a.mp4", "-o=x.mp4"]) == ["dub", "./-a.mp4", "-o=x.mp4"]
    assert _operands_after_dashes(["story", "--", "-rain", "-d", "3"]) == ["story", "--", "-rain", "-d", "3"]
    assert _operands_after_dashes(["dub", "-q", "x.mp4"]) == ["dub", "-q", "x.mp4"]


# --- 10. messages ----------------------------------------------------------------------------------------------


def test_a_bare_h264_stream_says_what_it_is_and_how_to_wrap_it(tmp_path, clip4):
    from dubkit.video.probe import probe

    raw = tmp_path / "cam.h264"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip4), "-map", "0:v", "-c", "copy", "-bsf:v", "h264_mp4toannexb",
                    "-f", "h264", str(raw)], check=True)
    with pytest.raises(InputError, match=r"bare H\.264 stream with no container, .* `ffmpeg -framerate 24 -i cam\.h264"):
        probe(raw)


def _damaged(src: Path, dst: Path, start: float, share: float | None) -> Path:
    """``src`` with random bytes from ``start`` (a share of the file) over ``share`` of it (None: to the end)."""
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(1)
    lo = int(len(data) * start)
    hi = len(data) if share is None else lo + int(len(data) * share)
    data[lo:hi] = rng.integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def test_a_stream_damaged_mid_file_dubs_with_one_warning_saying_where(tmp_path):
    """ffmpeg conceals the broken frames, so the dub goes on — but the editor is told, even with -q."""
    bad = _damaged(ROOT / "samples" / "cartoon.mp4", tmp_path / "damaged.mp4", 1 / 3, 0.2)
    out = tmp_path / "x.mp4"
    proc = run("dub", str(bad), "-o", str(out), "-q")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 0 and out.is_file(), proc.stderr
    text = " ".join(lines)
    assert lines[0].startswith("warning:") and "the video stream is damaged near 0:" in text, proc.stderr
    assert "Invalid data found" in text and "Traceback" not in text


def test_an_undecodable_stream_is_one_line_and_the_failed_note_has_no_traceback(tmp_path, backends):
    from workflows.config import WorkflowConfig
    from workflows.runner import Reporter
    from workflows.watch import Watcher

    inbox, done = tmp_path / "in", tmp_path / "done"
    inbox.mkdir()
    bad = _damaged(ROOT / "samples" / "cartoon.mp4", inbox / "damaged.mp4", 0.05, None)
    proc = run("dub", str(bad), "-o", str(tmp_path / "x.mp4"), "-q")
    assert proc.returncode == 1 and len([l for l in proc.stderr.splitlines() if l.strip()]) == 1, proc.stderr
    assert "the video cannot be decoded (Error while decoding" in proc.stderr and "Conversion failed" not in proc.stderr

    def job(video, output, **opts):
        return dubkit.dub(video, output, backends=backends, **opts)

    Watcher(inbox, done, WorkflowConfig(stable_seconds=0.1), job_fn=job, exit_when_idle=True,
            reporter=Reporter(quiet=True), poll_seconds=0.05).run()
    note = (inbox / "failed" / "damaged.mp4.error.txt").read_text()
    assert "the video cannot be decoded" in note
    assert "Traceback" not in note and ".cc:" not in note


def test_a_damaged_queue_names_its_file(tmp_path):
    from workflows.queue import JobQueue, QueueDamaged

    db = tmp_path / "out" / ".dubkit" / "jobs.sqlite"
    db.parent.mkdir(parents=True)
    db.write_bytes(os.urandom(4096))
    for readonly in (False, True):
        with pytest.raises(QueueDamaged, match=f"^{db}: the job queue is damaged .* move it aside"):
            JobQueue(db, readonly=readonly)
    proc = run("jobs", str(tmp_path / "out"))
    assert proc.returncode != 0 and "internal error" not in proc.stderr and "jobs.sqlite: the job queue is damaged" in proc.stderr


@pytest.mark.parametrize("call, needle", [
    (lambda: dubkit.story("rain", 1e9), "`duration` must be more than 0 s and at most 3600 s, got 1e+09"),
    (lambda: dubkit.story("rain", 5, crossfade=-1), "`crossfade` must be between 0 and 30 s, got -1"),
    (lambda: dubkit.story("rain", 5, seed=-3), "`seed` must be a whole number from 0 to 4294967295, got -3"),
    (lambda: dubkit.continue_audio("x.wav", float("nan")), "`duration` must be more than 0 s"),
    (lambda: dubkit.story("rain", 5, steps=0), "`steps` must be a whole number from 1 to 1000, got 0"),
    (lambda: dubkit.dub("x.mp4", crossfade=-1), "`crossfade` must be between 0 and 30 s"),
    (lambda: FinishingOptions(duck_db=-100), "`duck_db` must be between -60 and 0 dB, got -100"),
])
def test_numbers_out_of_range_are_refused_with_the_range(call, needle):
    with pytest.raises(InputError) as exc:
        call()
    assert needle in str(exc.value)


def test_the_cli_says_the_flag_and_the_range():
    proc = run("story", "rain", "-d", "1e9", "-o", "never.wav")
    assert proc.returncode == 1 and last_line(proc) == \
        "dubkit: error: --duration must be more than 0 s and at most 3600 s, got 1e+09"
    proc = run("dub", "x.mp4", "--crossfade", "-1")
    assert proc.returncode == 1 and last_line(proc) == "dubkit: error: --crossfade must be between 0 and 30 s, got -1"
    assert not Path("never.wav").exists()
