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
