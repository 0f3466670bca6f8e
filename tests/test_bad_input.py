"""Bad input: one clear line, a non-zero exit, no traceback, nothing partial left behind."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DUBKIT = [sys.executable, "-m", "dubkit.cli"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*DUBKIT, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert lines, "no error message"
    assert "Traceback" not in proc.stderr
    msg = lines[-1]
    assert msg.startswith("dubkit: error:"), proc.stderr
    for needle in needles:
        assert needle.lower() in msg.lower(), msg


def make_bad_inputs(folder: Path, cartoon: Path) -> dict[str, Path]:
    text = folder / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = folder / "empty.mp4"
    empty.touch()
    truncated = folder / "truncated.mp4"
    data = cartoon.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    audio_only = folder / "tone.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(audio_only)],
                   check=True)
    return {"text": text, "empty": empty, "truncated": truncated, "audio_only": audio_only}


@pytest.fixture(scope="module")
def bad(tmp_path_factory, cartoon):
    folder = tmp_path_factory.mktemp("bad")
    return folder, make_bad_inputs(folder, cartoon)


@pytest.mark.parametrize(
    "case, needle",
    [("text", "not a"), ("empty", "empty"), ("truncated", "truncated"), ("audio_only", "no video")],
)
def test_bad_media(bad, case, needle):
    folder, files = bad
    before = sorted(p.name for p in folder.iterdir())
    proc = run("dub", str(files[case]))
    assert_one_line_error(proc, needle)
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing partial left behind


def test_missing_file(tmp_path):
    assert_one_line_error(run("dub", str(tmp_path / "nope.mp4")), "no such file")


def test_missing_output_folder(tmp_path, cartoon):
    assert_one_line_error(run("dub", str(cartoon), "-o", str(tmp_path / "missing" / "out.mp4")), "does not exist")


def test_unwritable_output_folder(tmp_path, cartoon):
    # /proc refuses new files even for root, so this is a real write failure, not a permission-bit guess.
    assert_one_line_error(run("dub", str(cartoon), "-o", "/proc/out.mp4"), "cannot write")


def test_output_over_input_is_refused(tmp_path, cartoon):
    src = tmp_path / "c.mp4"
    shutil.copyfile(cartoon, src)
    assert_one_line_error(run("dub", str(src), "-o", str(src)), "overwrite")
    assert src.read_bytes() == cartoon.read_bytes()


def test_debug_shows_traceback(tmp_path):
    proc = run("--debug", "dub", str(tmp_path / "nope.mp4"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("name, needle", [("out.webm", "webm cannot hold"), ("noext", "unsupported output container")])
def test_output_container_that_cannot_hold_the_video_fails_before_any_work(tmp_path, cartoon, name, needle):
    proc = run("dub", str(cartoon), "-o", str(tmp_path / name))
    assert_one_line_error(proc, needle)
    assert list(tmp_path.iterdir()) == []


def test_bad_options_fail_before_any_work(tmp_path, cartoon):
    assert_one_line_error(run("dub", str(cartoon), "-o", str(tmp_path / "x.mp4"), "--mix", "bogus"), "mix mode")
    assert_one_line_error(run("dub", str(cartoon), "-o", str(tmp_path / "x.mp4"), "--duck-db", "3"), "duck-db")
    assert_one_line_error(run("dub", str(cartoon), "-o", str(tmp_path / "x.mp4"), "--music", "loud"),
                          "unknown --music mode 'loud'")
    assert_one_line_error(run("story", "rain", "-d", "2", "-o", str(tmp_path / "x.wav"), "--music-style", "jazz"),
                          "unknown --music-style 'jazz'")
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_exit_2_without_internal_error():
    for args in ([], ["--bogus"], ["dub", "x.mp4", "--loudness", "loud"]):
        proc = run(*args)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert "internal error" not in proc.stderr


def test_failed_mux_leaves_nothing_and_keeps_an_older_package(tmp_path, cartoon):
    """MXF cannot carry this H.264 profile: ffmpeg fails after the render. No video, no new package, and the
    deliverables an editor already had under that name survive."""
    old = tmp_path / "take.mxf.dubkit"
    old.mkdir()
    (old / "notes.txt").write_text("editor's notes")
    proc = run("dub", str(cartoon), "-o", str(tmp_path / "take.mxf"), "-q")
    assert_one_line_error(proc, "mxf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mxf.dubkit"]
    assert (old / "notes.txt").read_text() == "editor's notes"
