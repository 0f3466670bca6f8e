"""Unit tests of the workflow machinery, in-process: queue states and durability, job identity, stability,
per-folder config, retries, the folder lock, and batch runs (with the ``workflows.dryrun:remux`` job function so
they take seconds; tests/test_workflows_watch.py runs the real ``dub`` in real processes)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dubkit.errors import InputError
from workflows.batch import BatchItem, read_manifest, run_batch
from workflows.config import RetryPolicy, WorkflowConfig, load_config
from workflows.dryrun import remux
from workflows.failures import is_transient, out_of_space
from workflows.identity import file_key
from workflows.lock import FolderLock, FolderLocked
from workflows.queue import DONE, FAILED, QUEUED, RUNNING, JobQueue
from workflows.runner import Reporter, Runner
from workflows.stability import StabilityTracker

from .conftest import make_test_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 1 s silent test-pattern video (the only media these tests need)."""
    return make_test_clip(tmp_path_factory.mktemp("media") / "clip.mp4", 1, size="96x64", rate=10)


def _key(path: Path, size=10, mtime=1):
    from workflows.identity import FileKey

    return FileKey(str(path), size, mtime, "")


# -- queue ------------------------------------------------------------------------------------------------------
def test_queue_enqueue_is_idempotent_and_survives_reopen(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite")
    job, created = q.enqueue(_key(tmp_path / "a.mp4"), tmp_path / "out/a.mp4", {"mix": "duck"})
    again, created2 = q.enqueue(_key(tmp_path / "a.mp4"), tmp_path / "out/a.mp4", {"mix": "other"})
    assert created and not created2 and again.id == job.id and again.options == {"mix": "duck"}
    changed, created3 = q.enqueue(_key(tmp_path / "a.mp4", mtime=2), tmp_path / "out/a.mp4")
    assert created3 and changed.id != job.id  # a rewritten file is a new job
    q.close()
    q2 = JobQueue(tmp_path / "q.sqlite")
    assert [j.state for j in q2.jobs()] == [QUEUED, QUEUED]
    assert q2.path.with_name("q.sqlite-wal").exists() or q2._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_queue_state_machine_claim_lease_recover(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite")
    a, _ = q.enqueue(_key(tmp_path / "a.mp4"), tmp_path / "a.out")
    b, _ = q.enqueue(_key(tmp_path / "b.mp4"), tmp_path / "b.out")
    ja = q.claim("w1", lease_s=0.05)
    jb = q.claim("w2", lease_s=100)
    assert (ja.id, ja.state, ja.attempts) == (a.id, RUNNING, 1) and jb.id == b.id
    assert q.claim("w3", 100) is None  # nothing left: each job goes to exactly one worker
    time.sleep(0.1)
    assert [j.id for j in q.recover(max_attempts=3)] == [a.id]  # a's lease ran out (worker died); b's did not
    assert q.get(a.id).state == QUEUED and q.get(b.id).state == RUNNING
    assert not q.heartbeat(a.id, "w1", 10)  # the dead worker cannot take it back
    assert q.requeue(b.id, "w2") and q.get(b.id).attempts == 0  # shutdown hand-back does not count
    assert q.claim("w", 100, ids=[a.id]).attempts == 2  # a crashes its worker three times in all ...
    q.recover(max_attempts=3, everything=True)
    assert q.claim("w", 100, ids=[a.id]).attempts == 3
    q.recover(max_attempts=3, everything=True)
    assert q.get(a.id).state == FAILED and "died" in q.get(a.id).error  # ... → failed, not an endless loop


def test_file_key_tracks_rewrites(tmp_path):
    f = tmp_path / "v.mp4"
    f.write_bytes(b"x" * 200_000)
    k1 = file_key(f, content_hash=True)
    st = f.stat()
    assert file_key(f, content_hash=True) == k1
    with open(f, "r+b") as fh:  # same size, timestamps restored, content changed at the end
        fh.seek(199_000)
        fh.write(b"y")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_key(f) == file_key(f)  # without the hash this rewrite is invisible ...
    assert file_key(f, content_hash=True) != k1  # ... with it, it is a new version


def test_stability_waits_for_size_and_mtime_to_settle(tmp_path):
    now = [0.0]
    tracker = StabilityTracker(2.0, clock=lambda: now[0])
    f = tmp_path / "growing.mp4"
    f.write_bytes(b"a")
    tracker.nominate(f)
    for t in (0.5, 1.0, 1.5, 2.5):  # still being written every half second
        now[0] = t
        with open(f, "ab") as fh:
            fh.write(b"b")
        assert tracker.ready() == []
    now[0] = 4.0
    assert tracker.ready() == []
    now[0] = 4.6  # 2.1 s since the last change
    assert [p for p, _ in tracker.ready()] == [f] and len(tracker) == 0


# -- config -----------------------------------------------------------------------------------------------------
def test_config_per_folder_options(tmp_path):
    cfg_file = tmp_path / "wf.toml"
    cfg_file.write_text('[watch]\nstable_seconds = 1.5\nworkers = 2\n[retry]\nmax_attempts = 5\n'
                        '[dub]\nmix = "auto"\nloudness = -23.0\n[folders."trailers"]\nmix = "replace"\nstems = true\n')
    inbox = tmp_path / "in"
    (inbox / "trailers" / "teasers").mkdir(parents=True)
    (inbox / "trailers" / "teasers" / "dubkit.toml").write_text("[dub]\nloudness = -16.0\n")
    cfg = load_config(cfg_file)
    assert (cfg.stable_seconds, cfg.workers, cfg.retry.max_attempts) == (1.5, 2, 5)
    assert cfg.dub_options(inbox, inbox / "x.mp4") == {"mix": "auto", "loudness": -23.0}
    assert cfg.dub_options(inbox, inbox / "trailers" / "t.mp4") == {"mix": "replace", "loudness": -23.0, "stems": True}
    assert cfg.dub_options(inbox, inbox / "trailers" / "teasers" / "t.mp4") == {
        "mix": "replace", "loudness": -16.0, "stems": True}
    cfg_file.write_text("[watch]\nstable_secs = 3\n")
    with pytest.raises(InputError, match="stable_secs"):
        load_config(cfg_file)
    cfg_file.write_text("[watch\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(cfg_file)


# -- runner: retries --------------------------------------------------------------------------------------------
def test_transient_errors_retry_with_backoff_permanent_ones_do_not(tmp_path, clip):
    calls: list[float] = []

    def flaky(video, output, **opts):
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise OSError(5, "Input/output error (share went away)")
        return remux(video, output)

    cfg = WorkflowConfig(retry=RetryPolicy(max_attempts=3, backoff_seconds=0.3))
    q = JobQueue(tmp_path / "q.sqlite")
    runner = Runner(q, cfg, flaky, reporter=Reporter(quiet=True))
    job, _ = q.enqueue(file_key(clip), tmp_path / "out" / "clip.mp4")
    stop = threading.Event()
    runner.work("w", stop, ids=[job.id], until_idle=True)
    done = q.get(job.id)
    assert (done.state, done.attempts) == (DONE, 3) and (tmp_path / "out" / "clip.mp4").is_file()
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6  # exponential back-off between attempts

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    job, _ = q.enqueue(file_key(bad), tmp_path / "out" / "bad.mp4")
    Runner(q, cfg, remux, reporter=Reporter(quiet=True)).work("w", stop, ids=[job.id], until_idle=True)
    failed = q.get(job.id)
    assert (failed.state, failed.attempts) == (FAILED, 1) and "not a readable video" in failed.error
    assert not (tmp_path / "out" / "bad.mp4").exists() and not list((tmp_path / "out").glob(".*"))


def test_transient_classification():
    assert is_transient(OSError(28, "No space left on device"))
    assert is_transient(TimeoutError()) and is_transient(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert not is_transient(InputError("corrupt"))
    assert not is_transient(FileNotFoundError(2, "gone")) and not is_transient(ValueError("bug"))


def test_a_full_disk_is_waited_out_never_failed(tmp_path, clip):
    """ENOSPC (injected) on every attempt but the last, with max_attempts=1: the job waits with back-off, says
    "no space left on ...", the attempts are not counted, and the input is never moved to failed/."""
    import errno

    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    src = inbox / "clip.mp4"
    src.write_bytes(clip.read_bytes())
    calls: list[float] = []

    def full_disk_then_ok(video, output, **opts):
        calls.append(time.monotonic())
        if len(calls) <= 3:
            Path(output).write_bytes(b"\0" * 1000)  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(output))
        return remux(video, output)

    said: list[str] = []
    reporter = Reporter(quiet=True)
    reporter.say = said.append
    cfg = WorkflowConfig(retry=RetryPolicy(max_attempts=1, backoff_seconds=0.2))
    q = JobQueue(tmp_path / "q.sqlite")
    runner = Runner(q, cfg, full_disk_then_ok, inbox=inbox, on_failure="move", reporter=reporter)
    job, _ = q.enqueue(file_key(src), out / "clip.mp4")
    runner.work("w", threading.Event(), ids=[job.id], until_idle=True)
    done = q.get(job.id)
    assert (done.state, done.attempts, done.error) == (DONE, 1, None)
    assert src.is_file() and not (inbox / "failed").exists()
    waits = [m for m in said if "waits: no space left on " in m]
    assert len(waits) == 3 and "OSError" in waits[0] and "free" in waits[0]
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.8  # exponential back-off while it waits
    from workflows.staging import probe_duration

    assert probe_duration(out / "clip.mp4") == pytest.approx(1.0, abs=0.05)
    assert not list(out.glob(".dubkit-partial-*"))


def test_disk_full_is_named_from_errno_words_or_free_space(tmp_path):
    import errno

    from dubkit.errors import MediaToolError

    e = out_of_space(OSError(errno.EDQUOT, "Disk quota exceeded", str(tmp_path / "x.wav")), tmp_path)
    assert e is not None and str(e).startswith("disk quota exceeded on ") and " free" in str(e)
    e = out_of_space(MediaToolError("ffmpeg could not write the mp4 file: No space left on device"), tmp_path)
    assert e is not None and "no space left on" in str(e) and "MediaToolError" in str(e)
    assert out_of_space(InputError("not a video"), tmp_path) is None  # plenty of space here: the input's fault
    huge = 1 << 60  # an input bigger than any disk: its output cannot fit, whatever the error says
    e = out_of_space(InputError("System error."), tmp_path, needed=huge)
    assert e is not None and f"at least {huge / 1e9:.1f} GB needed" in str(e)
    assert is_transient(e) and not is_transient(InputError("corrupt"))


def test_an_input_that_looks_truncated_while_a_writer_holds_it_is_not_quarantined(tmp_path, clip):
    """The copy resumes while the job runs (a real writer process reopens the input and pauses): the dub fails
    on the half file, but the runner re-checks before quarantining. Still open: the job waits (not counted).
    Grown: its new version is a new job and the input stays where it is."""
    inbox = tmp_path / "in"
    inbox.mkdir()
    src = inbox / "growing.mp4"
    data = clip.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    writers: list[subprocess.Popen] = []

    def copy_resumes_during_the_job(video, output, **opts):
        if not writers:  # the writer comes back while we are dubbing; it appends the rest after 2 s
            writers.append(subprocess.Popen([sys.executable, "-c", (
                "import sys, time\n"
                "f = open(sys.argv[1], 'ab'); print('open', flush=True); time.sleep(2)\n"
                "f.write(open(sys.argv[2], 'rb').read()[%d:]); f.close()") % (len(data) // 2), str(video),
                str(clip)], stdout=subprocess.PIPE, text=True))
            assert writers[0].stdout.readline().strip() == "open"
        return remux(video, output)

    said: list[str] = []
    reporter = Reporter(quiet=True)
    reporter.say = said.append
    cfg = WorkflowConfig(retry=RetryPolicy(max_attempts=1, backoff_seconds=0.5))
    q = JobQueue(tmp_path / "q.sqlite")
    runner = Runner(q, cfg, copy_resumes_during_the_job, inbox=inbox, on_failure="move", reporter=reporter)
    job, _ = q.enqueue(file_key(src), tmp_path / "out" / "growing.mp4")
    try:
        runner.work("w", threading.Event(), ids=[job.id], until_idle=True)
    finally:
        for p in writers:
            p.wait(30)
    waited = [m for m in said if "looks incomplete" in m or "still open for writing" in m]
    assert waited and f"pid {writers[0].pid}" in waited[0] and "not a readable video" in waited[0]
    old = q.get(job.id)
    assert old.state == FAILED and "changed" in old.error  # it grew: this version is over, the new one is a job
    assert src.read_bytes() == data and not (inbox / "failed").exists() and not list(inbox.glob("*.error.txt"))
    new, created = q.enqueue(file_key(src), tmp_path / "out" / "growing.mp4")
    assert created
    runner.work("w", threading.Event(), ids=[new.id], until_idle=True)
    assert q.get(new.id).state == DONE and q.get(new.id).attempts == 1


# -- lock -------------------------------------------------------------------------------------------------------
def test_folder_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    lockfile = tmp_path / "watch.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from workflows.lock import FolderLock\n"
        "FolderLock(%r).acquire(); print('locked', flush=True); time.sleep(60)") % (str(ROOT), str(lockfile))],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLocked, match=f"pid {holder.pid}.*--if-locked wait"):
            FolderLock(lockfile).acquire()
        holder.send_signal(signal.SIGKILL)  # no cleanup code runs: the kernel must drop the flock
        holder.wait(10)
        lock = FolderLock(lockfile)
        lock.acquire()
        assert lockfile.read_text().strip() == str(os.getpid())
        lock.release()
    finally:
        holder.kill()


# -- batch ------------------------------------------------------------------------------------------------------
def test_batch_summary_resume_and_manifest(tmp_path, clip):
    src = tmp_path / "src"
    src.mkdir()
    names = ["one.mp4", "two words.mp4", "-dash.mp4"]
    for n in names:
        (src / n).write_bytes(clip.read_bytes())
    (src / "broken.mp4").write_bytes(b"\x00" * 4096)
    out = tmp_path / "out"
    items = [BatchItem(src / n) for n in names + ["broken.mp4"]] + [BatchItem(src / "missing.mp4")]
    s = run_batch(items, out, WorkflowConfig(workers=2), job_fn=remux, reporter=Reporter(quiet=True))
    states = {r.input.name: r.state for r in s.rows}
    assert states == {"one.mp4": "done", "two words.mp4": "done", "-dash.mp4": "done", "broken.mp4": "failed",
                      "missing.mp4": "failed"}
    assert not s.ok and sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(names)
    log = [json.loads(line) for line in (out / ".dubkit" / "jobs.log").read_text().splitlines()]
    assert sorted(r["state"] for r in log) == ["done", "done", "done", "failed"]
    assert all(r["duration"] == pytest.approx(1.0, abs=0.05) for r in log if r["state"] == "done")

    # run again: finished inputs are skipped, not redone
    s2 = run_batch(items[:3], out, job_fn=remux, reporter=Reporter(quiet=True))
    assert [r.state for r in s2.rows] == ["skipped"] * 3 and s2.ok
    s2b = run_batch([BatchItem(src / "one.mp4", Path("elsewhere/one.mp4"))], out, job_fn=remux,
                    reporter=Reporter(quiet=True))  # same input, new destination: a new delivery
    assert [r.state for r in s2b.rows] == ["done"] and (out / "elsewhere" / "one.mp4").is_file()
    with pytest.raises(InputError, match="listed twice with different outputs"):
        run_batch([BatchItem(src / "one.mp4", Path("x.mp4")), BatchItem(src / "one.mp4", Path("y.mp4"))], out,
                  job_fn=remux, reporter=Reporter(quiet=True))

    # a manifest: relative paths, per-row options reach the job function typed
    seen = {}

    def spy(video, output, **opts):
        seen[Path(video).name] = opts
        return remux(video, output)

    (src / "list.csv").write_text('input,output,mix,loudness,stems\none.mp4,renamed/one-final.mp4,duck,-16,true\n'
                                  '"two words.mp4",,,,\n')
    s3 = run_batch(read_manifest(src / "list.csv"), tmp_path / "out2", job_fn=spy, reporter=Reporter(quiet=True))
    assert s3.ok and (tmp_path / "out2" / "renamed" / "one-final.mp4").is_file()
    assert seen == {"one.mp4": {"mix": "duck", "loudness": -16, "stems": True}, "two words.mp4": {}}
    with pytest.raises(InputError, match="'input' column"):
        (src / "bad.csv").write_text("file\nx.mp4\n")
        read_manifest(src / "bad.csv")


def test_batch_and_jobs_commands(tmp_path, clip, monkeypatch):
    """The CLI layer in-process (typer's runner): '--' before a leading-dash name, the table, the exit code."""
    from typer.testing import CliRunner

    from workflows.__main__ import app

    src = tmp_path / "src"
    src.mkdir()
    (src / "-lead.mp4").write_bytes(clip.read_bytes())
    (src / "junk.mp4").write_bytes(b"junk" * 100)
    monkeypatch.chdir(src)
    monkeypatch.setenv("COLUMNS", "200")
    cli = CliRunner()
    out = str(tmp_path / "out")
    res = cli.invoke(app, ["batch", "--out", out, "--job", "workflows.dryrun:remux", "-q", "--", "-lead.mp4",
                           "junk.mp4"])
    assert res.exit_code == 1, res.output  # one input failed
    assert "-lead.mp4" in res.output and "1/2 ok, 1 failed" in res.output and "not a readable video" in res.output
    assert (tmp_path / "out" / "-lead.mp4").is_file()
    res = cli.invoke(app, ["jobs", out, "--json"])
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert sorted((Path(r["input"]).name, r["state"]) for r in rows) == [("-lead.mp4", "done"), ("junk.mp4", "failed")]
    res = cli.invoke(app, ["batch", "--out", out, "--job", "workflows.dryrun:remux", "-q", "--", "-lead.mp4"])
    assert res.exit_code == 0 and "skipped" in res.output  # finished earlier: not redone
    res = cli.invoke(app, ["jobs", str(tmp_path)])
    assert res.exit_code == 2 and "no job queue" in res.output
    # the same commands inside `dubkit` (entry point dubkit.commands): the exit code survives its main()
    from dubkit.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["batch", "--out", out, "--job", "workflows.dryrun:remux", "-q", "--", "junk.mp4"])
    assert exc.value.code == 1


def test_runner_publishes_what_the_job_wrote_and_nothing_hidden(tmp_path, clip):
    from types import SimpleNamespace

    def job(video, output, *, tag="v1"):
        out = Path(output)
        remux(video, out)
        out.chmod(0o600)  # like a mkstemp temp file
        deliverables = out.with_name(out.stem + ".dubkit")
        deliverables.mkdir()
        (deliverables / "report.html").write_text(tag)
        (out.parent / ".scratch.partial.wav").write_bytes(b"temp")  # the job's own hidden temp: never published
        return SimpleNamespace(backends={"renderer": "test"})

    q = JobQueue(tmp_path / "q.sqlite")
    runner = Runner(q, WorkflowConfig(), job, reporter=Reporter(quiet=True))
    src, out = tmp_path / "clip.mp4", tmp_path / "out"
    src.write_bytes(clip.read_bytes())
    umask = os.umask(0o022)
    try:
        for n, tag in enumerate(("v1", "v2")):  # a second version replaces the first one's deliverables
            os.utime(src, (1e9 + n, 1e9 + n))
            job_row, created = q.enqueue(file_key(src), out / "clip.mp4", {"tag": tag})
            assert created
            runner.work("w", threading.Event(), ids=[job_row.id], until_idle=True)
            assert q.get(job_row.id).state == DONE, q.get(job_row.id).error
    finally:
        os.umask(umask)
    assert sorted(os.listdir(out)) == ["clip.dubkit", "clip.mp4"]
    assert (out / "clip.dubkit" / "report.html").read_text() == "v2"
    assert (out / "clip.mp4").stat().st_mode & 0o777 == 0o644
    assert q.get(job_row.id).backends == {"renderer": "test"}


def test_recover_finishes_an_interrupted_move_and_cleans_staging(tmp_path, clip):
    """A crash after a job was marked done but before its input was moved (--move-done), and another with a
    staged half-output: the next owner completes the move and deletes the staging folder."""
    inbox, done, archive = tmp_path / "in", tmp_path / "done", tmp_path / "archive"
    inbox.mkdir()
    (inbox / "a.mp4").write_bytes(clip.read_bytes())
    (inbox / "b.mp4").write_bytes(clip.read_bytes())
    q = JobQueue(tmp_path / "q.sqlite")
    a, _ = q.enqueue(file_key(inbox / "a.mp4"), done / "a.mp4")
    b, _ = q.enqueue(file_key(inbox / "b.mp4"), done / "b.mp4")
    q.claim("dead", 60, ids=[a.id])
    q.complete(a.id, "dead", seconds=1.0, duration=1.0, backends={}, dispose_to=archive / "a.mp4")
    b = q.claim("dead", 60, ids=[b.id])
    runner = Runner(q, WorkflowConfig(), remux, inbox=inbox, move_done=archive, reporter=Reporter(quiet=True))
    staging = runner.staging.folder(b)
    staging.mkdir(parents=True)
    (staging / "b.mp4").write_bytes(b"half a video")
    assert [j.id for j in runner.recover(roots=[done])] == [b.id]
    assert not (inbox / "a.mp4").exists() and _sha256(archive / "a.mp4") == _sha256(clip)
    assert os.listdir(done) == [] and q.get(b.id).state == QUEUED


def _sha256(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_retry_takes_the_options_in_force_now(tmp_path):
    """A file failed under a bad config; the editor fixes the config and drops it again: the retry must use the fix."""
    from workflows.identity import file_key
    from workflows.queue import FAILED, JobQueue

    src = tmp_path / "a.mp4"
    src.write_bytes(b"x")
    q = JobQueue(tmp_path / "jobs.sqlite")
    job, _ = q.enqueue(file_key(src), tmp_path / "out.mp4", {"loudness": "loud"})
    with q._tx() as db:
        db.execute("UPDATE jobs SET state=? WHERE id=?", (FAILED, job.id))
    q.retry(job.id, options={"loudness": -14.0})
    (again,) = [j for j in q.jobs() if j.id == job.id]
    assert again.options == {"loudness": -14.0} and again.state == "queued"
