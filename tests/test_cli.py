"""The CLI surface: help, version, plan JSON, story/continue lengths."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import soundfile as sf

import dubkit

DUBKIT = [sys.executable, "-m", "dubkit.cli"]


def run(*args, **kw):
    return subprocess.run([*DUBKIT, *map(str, args)], capture_output=True, text=True, timeout=600, **kw)


def test_version_and_help():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"dubkit {dubkit.__version__}"
    helptext = run("--help").stdout
    for cmd in ("dub", "plan", "story", "continue", "models", "watch", "batch", "jobs"):
        assert cmd in helptext
    assert "--keep-original-audio" in run("dub", "--help").stdout
    for cmd in ("dub", "plan", "story"):
        text = run(cmd, "--help").stdout
        assert all(flag in text for flag in ("--music", "--music-style", "--soundfont", "Music")), cmd


def test_the_console_script_exits_with_the_commands_code_after_its_exit_handlers(tmp_path):
    # `run` leaves the process without the interpreter's teardown: exit handlers, threads still at work and
    # buffered output must all have had their turn, and the exit code must be the command's.
    mark = tmp_path / "handler-ran"
    script = ("import atexit, sys, threading, time\n"
              "import dubkit.cli\n"
              f"atexit.register(lambda: open({str(mark)!r}, 'w').write('yes'))\n"
              "threading.Thread(target=lambda: (time.sleep(0.3), print('late line'))).start()\n"
              "sys.argv = ['dubkit', *sys.argv[1:]]\n"
              "dubkit.cli.run()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # output buffered, as in a pipe
    proc = subprocess.run([sys.executable, "-c", script, "--version"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["dubkit", dubkit.__version__, "late", "line"]
    assert mark.read_text() == "yes"
    proc = subprocess.run([sys.executable, "-c", script, "dub", str(tmp_path / "missing.mp4")], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 1 and proc.stderr.startswith("dubkit: error:"), proc.stderr


@pytest.mark.slow
def test_plan_writes_scenes_and_events_json(tmp_path, cartoon, cartoon_truth):
    out = tmp_path / "plan.json"
    proc = run("plan", cartoon, "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert len(data["scenes"]) == len(cartoon_truth["cuts"]) + 1
    assert data["plan"]["events"] and all("caption" in e for e in data["plan"]["events"])
    assert data["video"]["duration"] > 0
    # Music is on by default for a cartoon: a cue sheet, and score events that tile the video.
    score = [e for e in data["plan"]["events"] if e["layer"] == "score"]
    assert data["plan"]["score"]["sections"] and score and score[0]["start"] == 0
    assert sum(e["duration"] for e in score) == pytest.approx(data["video"]["duration"], abs=1e-6)


def test_story_exact_duration(tmp_path):
    out = tmp_path / "story.wav"
    proc = run("story", "rain, then thunder, then a car passes", "--duration", 12.5, "-o", out)
    assert proc.returncode == 0, proc.stderr
    info = sf.info(str(out))
    assert info.frames == round(12.5 * info.samplerate)
    assert "backends:" in proc.stderr


@pytest.mark.slow
def test_continue_exact_duration_with_input(tmp_path):
    story = tmp_path / "rain.wav"
    assert run("story", "steady rain", "--duration", 4, "-o", story, "-q").returncode == 0
    out = tmp_path / "more.wav"
    proc = run("continue", story, "--duration", 3, "--include-input", "-o", out)
    assert proc.returncode == 0, proc.stderr
    a, sr_a = sf.read(str(story), dtype="float32")
    b, sr_b = sf.read(str(out), dtype="float32")
    assert sr_a == sr_b and len(b) == len(a) + 3 * sr_b


def test_dub_says_the_time_it_took_not_the_sum_of_its_stages(tmp_path, monkeypatch, capsys):
    # The mux runs beside the mastering and the deliverables: the stages' times add up to more than the run took.
    import re
    import time
    from types import SimpleNamespace

    import dubkit.api
    from dubkit.cli import main

    def fake_dub(video, output, **kw):
        time.sleep(0.2)
        return SimpleNamespace(output=output, info=SimpleNamespace(duration=30.0), mix_mode="replace",
                               plan=SimpleNamespace(events=[1, 2]), deliverables=None,
                               timings={"scan": 40.0, "mux": 30.0, "deliverables": 30.0})

    monkeypatch.setattr(dubkit.api, "dub", fake_dub)
    video = tmp_path / "in.mp4"
    video.write_bytes(b"")
    t0 = time.perf_counter()
    assert main(["dub", str(video), "-o", str(tmp_path / "out.mp4"), "-q"]) == 0
    took = time.perf_counter() - t0
    said = float(re.search(r"events, mix replace\) in ([\d.]+) s", capsys.readouterr().out).group(1))
    assert 0.15 <= said <= took + 0.05
