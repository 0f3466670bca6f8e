"""Batch runs on a real local Ray cluster (127.0.0.1, 2 CPUs): two actors serve four clips, one actor process is
killed with SIGKILL while its job's output sits in staging; every output must exist once, be valid media, and no
partial may be left or published. Also the one-line error for a cluster nobody answers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import ffmpeg
import pytest

ray = pytest.importorskip("ray")

from workflows import ray_runner  # noqa: E402
from workflows.batch import BatchItem, run_batch  # noqa: E402
from workflows.config import RetryPolicy, WorkflowConfig  # noqa: E402
from workflows.staging import STAGING_PREFIX  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _clip(path: Path, freq: int) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=160x90:rate=25:duration=2", "-f", "lavfi", "-i", f"sine=frequency={freq}:duration=2",
                    "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def cluster():
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), before or ""])  # the actors import tests.ray_jobs
    ray_runner.connect(num_cpus=2)
    yield
    ray_runner.shutdown()
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


def _run(tmp_path: Path, n: int, delay: float, kill: bool):
    inbox, out, trace = tmp_path / "in", tmp_path / "out", tmp_path / "trace"
    for d in (inbox, out, trace):
        d.mkdir()
    clips = [_clip(inbox / f"clip{i}.mp4", 300 + 100 * i) for i in range(n)]
    pool = ray_runner.RayPool(2, job_spec="tests.ray_jobs:slow_remux")
    pids = set(pool.pids())
    assert len(pids) == 2  # two actor processes
    cfg = WorkflowConfig(workers=2, retry=RetryPolicy(max_attempts=3, backoff_seconds=0.2),
                         dub={"trace_dir": str(trace), "delay": delay})
    progress: list[str] = []

    from workflows.runner import Reporter

    class Capture(Reporter):
        def say(self, msg: str) -> None:
            progress.append(msg)

    killed: list[tuple[int, str, bool]] = []  # pid, input name, was its output in staging when killed

    def killer() -> None:  # the first actor that reports a finished-but-unpublished output dies
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for f in trace.iterdir():
                text = f.read_text()
                if not text:  # being written
                    continue
                pid, staged = int(f.name.split("-", 1)[0]), Path(text)
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, f.name.split("-", 1)[1],
                               staged.is_file() and staged.parent.name.startswith(STAGING_PREFIX)))
                return
            time.sleep(0.02)

    t = threading.Thread(target=killer, daemon=True)
    if kill:
        t.start()
    summary = run_batch([BatchItem(c) for c in clips], out, cfg, job_fn=pool.job_function, reporter=Capture(quiet=False))
    if kill:
        t.join(1)
    pool.close()
    return clips, out, summary, progress, killed, pids


def _check_outputs(clips, out: Path, summary) -> list[dict]:
    assert summary.ok, [(r.input.name, r.state, r.error) for r in summary.rows]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(c.name for c in clips)
    assert not list(out.rglob(f"{STAGING_PREFIX}*")), "a staging folder (partial output) was left behind"
    for c in clips:
        info = ffmpeg.probe(str(out / c.name))
        assert abs(float(info["format"]["duration"]) - 2.0) < 0.1
        assert {s["codec_type"] for s in info["streams"]} == {"video", "audio"}
    log = [json.loads(line) for line in (out / ".dubkit" / "jobs.log").read_text().splitlines()]
    done = [e for e in log if e["state"] == "done"]
    assert sorted(Path(e["output"]).name for e in done) == sorted(c.name for c in clips)  # each exactly once
    return log


@pytest.mark.slow
def test_ray_batch_two_actors(cluster, tmp_path):
    clips, out, summary, progress, _, _ = _run(tmp_path, 3, delay=0.2, kill=False)
    _check_outputs(clips, out, summary)
    # per-job progress streamed from the actors to the driver
    for c in clips:
        assert any("remuxed" in m and c.name in m for m in progress), progress


def test_ray_job_error_reaches_the_driver(cluster, tmp_path):
    """The job's own exception (bad input) comes back from the actor as itself: a failed row, not retried."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    pool = ray_runner.RayPool(1, job_spec="tests.ray_jobs:slow_remux")
    cfg = WorkflowConfig(workers=1, retry=RetryPolicy(max_attempts=3, backoff_seconds=0.2),
                         dub={"trace_dir": str(tmp_path), "delay": 0})
    summary = run_batch([BatchItem(junk)], tmp_path / "out", cfg, job_fn=pool.job_function)
    pool.close()
    (row,) = summary.rows
    assert row.state == "failed" and row.error.startswith("InputError: junk.mp4 is not a readable video"), row
    log = [json.loads(line) for line in (tmp_path / "out" / ".dubkit" / "jobs.log").read_text().splitlines()]
    assert [(e["state"], e["attempts"]) for e in log] == [("failed", 1)]
    assert not (tmp_path / "out" / "junk.mp4").exists()


def test_ray_batch_survives_killed_actor(cluster, tmp_path):
    clips, out, summary, progress, killed, pids = _run(tmp_path, 4, delay=1.5, kill=True)
    assert killed, "no job was seen mid-run"
    pid, name, staged = killed[0]
    assert pid in pids and staged  # an actor died holding a complete-looking, unpublished output
    log = _check_outputs(clips, out, summary)
    victim = next(e for e in log if e["state"] == "done" and Path(e["output"]).name == name)
    assert victim["attempts"] == 2  # the killed attempt did not publish; the retry did
    assert any("WorkerLost" in m for m in progress), progress


def test_unreachable_cluster_is_one_line(tmp_path):
    clip = _clip(tmp_path / "a.mp4", 440)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "workflows", "batch", str(clip), "--out", str(tmp_path / "out"),
                           "--ray", "127.0.0.1:1", "--job", "workflows.dryrun:remux"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: cannot reach the Ray cluster at 127.0.0.1:1: Connection refused (is `ray start "
                      "--head` running there, and the port open?)"], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "a.mp4").exists()


def test_gpus_per_job_needs_ray(tmp_path):
    clip = _clip(tmp_path / "a.mp4", 440)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "workflows", "batch", str(clip), "--out", str(tmp_path / "out"),
                           "--gpus-per-job", "1", "--job", "workflows.dryrun:remux"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert (proc.returncode, proc.stderr.strip()) == (2, "error: --gpus-per-job needs --ray")
    assert not (tmp_path / "out" / "a.mp4").exists()
