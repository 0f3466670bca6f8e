"""Jobs on a Ray cluster: the batch/watch machinery stays on the driver, the dubbing runs in Ray actors.

Why this split: the driver keeps what must be exactly-once — the SQLite queue (on its local disk), the staging
folders' verify-and-rename (``staging.py``) and the job log — so the guarantees of a one-host run hold unchanged.
Each actor loads its backends once (``dubkit.backends.build_backends``) and serves many jobs, writing into the
job's staging folder on storage every node sees. An actor that dies mid-job (node lost, OOM kill, ``kill -9``)
makes its job fail with a *transient* error: the runner retries it as a new attempt in a new staging folder, on
whichever actor is free (Ray restarts the dead one), and discards the dead attempt's folder, so its partial output
never reaches DONE.

``RayPool(...).job_function`` is an ordinary job function for ``workflows.runner.Runner``; run one runner worker
thread per actor.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import queue as _queue
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from audiostory_core.errors import DubkitError
from workflows.failures import mark_transient

_DONE = "__dubkit_done__"


class ClusterUnreachable(DubkitError):
    """``ray.init`` could not join (or start) the cluster."""


class WorkerLost(RuntimeError):
    """The actor running a job died before it finished; the job is retried on another actor."""

    transient = True


def _import_ray():
    try:
        import ray
    except ImportError as e:  # the extra is optional
        raise DubkitError("Ray is not installed; install the cluster extra: pip install 'dubkit[cluster]'") from e
    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` (``host:port`` or ``ray://host:port``), or start a local Ray instance when
    None; a cluster that cannot be reached is one ``ClusterUnreachable`` line, not a traceback."""
    ray = _import_ray()
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = num_cpus
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    if address and address != "auto":
        _probe(address, where)
    try:
        ray.init(**kwargs)
    except Exception as e:  # ConnectionError, RuntimeError, ValueError depending on what is wrong
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ClusterUnreachable(f"cannot reach {where}: {first}") from e


def _probe(address: str, where: str, timeout: float = 5.0) -> None:
    """A TCP connect to the head's port first: ``ray.init`` on an address nobody answers retries for minutes."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnreachable(f"cannot reach {where}: the address must look like HOST:PORT "
                                 "(the head's GCS port, 6379 by default), 'auto' or 'local'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ClusterUnreachable(f"cannot reach {where}: {e.strerror or e} (is `ray start --head` running "
                                 "there, and the port open?)") from None


def shutdown() -> None:
    """Leave the cluster (stops the local instance if we started it)."""
    ray = _import_ray()
    if ray.is_initialized():
        ray.shutdown()


class DubWorker:
    """The actor body: one per worker, backends loaded once in ``__init__``, one job at a time.

    ``job_spec`` is the job function (``package.module:function``; None = ``dubkit.dub``). For ``dubkit.dub``
    the backends are built from the model/caption fields of ``dub_options`` and passed to every call."""

    def __init__(self, job_spec: str | None, dub_options: dict[str, Any], device: str | None = None):
        from workflows.runner import load_job_function

        self.fn = load_job_function(job_spec)
        self.backends = None
        self.device, self.model_fields = device, frozenset()
        if job_spec in (None, "dubkit:dub"):
            from dubkit.backends import build_backends
            from dubkit.options import CaptionOptions, FinishingOptions, ModelOptions, apply_keywords

            opts = {k: None if v == "off" else v for k, v in dub_options.items()}
            if device is not None and "device" not in opts:
                opts["device"] = device
            models, captioning, _ = apply_keywords(
                "dub", opts, [(ModelOptions, None), (CaptionOptions, None), (FinishingOptions, None)])
            self.backends = build_backends(models, captioning)
            self.model_fields = frozenset(f.name for f in dataclasses.fields(ModelOptions))

    def pid(self) -> int:
        return os.getpid()

    def run(self, video: str, output: str, options: dict[str, Any]) -> Iterator[Any]:
        """Run one job, yielding its progress messages as ``(args, kwargs)`` and last ``(_DONE, backends)``.

        The job runs in a thread of the actor so its progress can be streamed while it works."""
        from workflows.runner import _accepts_kwarg

        messages: _queue.Queue = _queue.Queue()
        kwargs = dict(options)
        if self.backends is not None:
            kwargs.setdefault("backends", self.backends)
            if self.device is not None and self.model_fields & kwargs.keys():  # as the backends were built
                kwargs.setdefault("device", self.device)
        if _accepts_kwarg(self.fn, "progress"):
            kwargs["progress"] = lambda *a, **k: messages.put(("progress", [str(x) for x in a],
                                                               {str(x): str(y) for x, y in k.items()}))

        def target() -> None:
            try:
                result = self.fn(Path(video), Path(output), **kwargs)
                backends = {str(k): str(v) for k, v in (getattr(result, "backends", None) or {}).items()}
                messages.put(("done", backends, None))
            except BaseException as e:  # re-raised in the generator, so the driver sees the job's own error
                messages.put(("error", e, None))

        threading.Thread(target=target, name="dubkit-job", daemon=True).start()
        while True:
            kind, a, k = messages.get()
            if kind == "progress":
                yield (a, k)
            elif kind == "done":
                yield (_DONE, a)
                return
            else:
                raise a


class RayPool:
    """``size`` DubWorker actors and the job function that hands a job to a free one.

    ``gpus_per_job`` reserves that many GPUs per actor (and sets the model device to ``cuda`` unless the dub
    options name one); ``cpus_per_job`` likewise for CPUs."""

    def __init__(self, size: int, *, job_spec: str | None = None, dub_options: dict[str, Any] | None = None,
                 gpus_per_job: float = 0.0, cpus_per_job: float = 1.0):
        ray = _import_ray()
        if size < 1:
            raise DubkitError("a Ray pool needs at least one worker")
        self._ray = ray
        device = "cuda" if gpus_per_job and "device" not in (dub_options or {}) else None
        actor_cls = ray.remote(DubWorker).options(num_cpus=cpus_per_job, num_gpus=gpus_per_job or 0,
                                                  max_restarts=-1, max_task_retries=0)
        self.actors = [actor_cls.remote(job_spec, dict(dub_options or {}), device) for _ in range(size)]
        self._idle: _queue.Queue = _queue.Queue()
        for a in self.actors:
            self._idle.put(a)

    @property
    def size(self) -> int:
        return len(self.actors)

    def pids(self, timeout: float = 60.0) -> list[int]:
        """The actors' process ids (for operators and tests); waits for them to start."""
        return self._ray.get([a.pid.remote() for a in self.actors], timeout=timeout)

    def job_function(self, input: Path, output: Path, progress: Callable[..., Any] | None = None,
                     **options: Any) -> Any:
        """Run one job on a free actor; its progress arrives on the driver through ``progress``.

        An actor that dies mid-job raises ``WorkerLost`` (transient): the runner retries the job."""
        from types import SimpleNamespace

        ray = self._ray
        actor = self._idle.get()
        lost = False
        try:
            backends: dict[str, str] = {}
            for ref in actor.run.remote(str(Path(input).absolute()), str(Path(output).absolute()), options):
                a, k = ray.get(ref)
                if a == _DONE:
                    backends = k
                elif progress is not None:
                    progress(*a, **k)
            return SimpleNamespace(output=Path(output), backends=backends)
        except ray.exceptions.RayTaskError as e:  # the job's own exception, raised in the actor
            original = getattr(e, "cause", None)
            raise (original if isinstance(original, BaseException) else e.as_instanceof_cause()) from None
        except (ray.exceptions.ActorDiedError, ray.exceptions.ActorUnavailableError,
                ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as e:
            lost = True
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise mark_transient(WorkerLost(f"the Ray worker died during the job ({first[:160]})")) from None
        finally:
            if lost:  # Ray restarts it (max_restarts=-1); it takes jobs again once it answers, so the retry runs
                threading.Thread(target=self._rejoin, args=(actor,), daemon=True).start()  # on a live actor
            else:
                self._idle.put(actor)

    def _rejoin(self, actor: Any) -> None:
        """Back into the idle set once the restarted actor answers (its backends are loaded again by then)."""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                self._ray.get(actor.pid.remote(), timeout=30)
                self._idle.put(actor)
                return
            except Exception:
                time.sleep(1)

    def close(self) -> None:
        for a in self.actors:
            try:
                self._ray.kill(a)
            except Exception:
                pass


def default_size(gpus_per_job: float = 0.0, cpus_per_job: float = 1.0) -> int:
    """One actor per GPU share (model path) or per CPU share of the whole cluster."""
    ray = _import_ray()
    res = ray.cluster_resources()
    if gpus_per_job:
        return max(1, int(res.get("GPU", 0) // gpus_per_job))
    return max(1, int(res.get("CPU", 1) // cpus_per_job))


@contextlib.contextmanager
def cluster_jobs(address: str | None, workers: int | None, *, job_spec: str | None = None,
                 dub_options: dict[str, Any] | None = None, gpus_per_job: float = 0.0,
                 say: Callable[[str], None] = lambda _m: None) -> Iterator[tuple[Callable[..., Any], int]]:
    """Connect (``address`` None or ``"local"``: a local instance), start the actors, yield ``(job_function,
    number of actors)`` for a runner with that many worker threads, and leave the cluster afterwards."""
    connect(None if address in (None, "", "local") else address)
    pool = None
    try:
        size = workers or default_size(gpus_per_job)
        pool = RayPool(size, job_spec=job_spec, dub_options=dub_options, gpus_per_job=gpus_per_job)
        say(f"ray: {size} worker actor(s)" + (f", {gpus_per_job:g} GPU each" if gpus_per_job else "")
            + f" on {_import_ray().cluster_resources().get('CPU', 0):.0f} CPU(s)")
        yield pool.job_function, size
    finally:
        if pool is not None:
            pool.close()
        shutdown()
