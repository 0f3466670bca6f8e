"""The examples in workflows/examples/ keep working: the post-production script runs the real API, the systemd
unit only uses options `dubkit watch` has, the example config loads."""
from __future__ import annotations

import csv
import importlib.util
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "workflows" / "examples"


def test_example_config_and_systemd_unit_match_the_cli():
    import typer.main

    from workflows.__main__ import app
    from workflows.config import load_config

    cfg = load_config(EXAMPLES / "watch.toml")
    assert cfg.stable_seconds == 10 and cfg.folders["web"]["loudness"] == -14.0
    unit = (EXAMPLES / "dubkit-watch.service").read_text()
    logical_lines = unit.replace("\\\n", " ").splitlines()  # join backslash continuations
    argv = shlex.split(next(line for line in logical_lines if line.startswith("ExecStart="))[len("ExecStart="):])
    assert argv[0].endswith("/dubkit") and argv[1] == "watch"
    command = typer.main.get_command(app).commands["watch"]
    known = {opt for p in command.params for opt in p.opts}
    used = [a for a in argv if a.startswith("--")]
    assert used and set(used) <= known, set(used) - known
    command.make_context("watch", argv[2:])  # parses: the unit's command line is valid


def test_postprod_example_dubs_and_writes_a_cue_sheet_and_delivery_log(tmp_path, capsys):
    clip = tmp_path / "reel.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=12",
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", str(clip)], check=True)
    spec = importlib.util.spec_from_file_location("postprod", EXAMPLES / "postprod.py")
    postprod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(postprod)
    out = tmp_path / "deliveries"
    assert postprod.main([str(clip), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'reel.dubbed.mp4'}" in printed and "cue sheet:" in printed
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                            str(out / "reel.dubbed.mp4")], capture_output=True, text=True, check=True)
    assert float(probe.stdout) == pytest.approx(2.0, abs=0.1)
    rows = list(csv.DictReader(open(out / "deliveries.csv")))
    assert len(rows) == 1 and rows[0]["output"].endswith("reel.dubbed.mp4") and "renderer=" in rows[0]["backends"]
    assert postprod.main([str(tmp_path / "missing.mp4"), "--out", str(out)]) == 2  # one actionable line, no trace
    assert "error:" in capsys.readouterr().err
