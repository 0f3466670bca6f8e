"""Test-only entry point: ``python -m tests.slow_workflows SECONDS watch ...`` is ``python -m workflows watch ...``
with every job function made to wait SECONDS after it wrote its output and before the runner verifies and
publishes it, so a test can kill the watcher "during a render" deterministically. The product has no such hook:
the delay is wrapped around the job function here."""
from __future__ import annotations

import functools
import sys
import time
from typing import Any, Callable

import workflows.runner


def slowed(fn: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    """``fn``, then a pause (only after it succeeded); the signature stays ``fn``'s, so ``progress`` still flows."""
    @functools.wraps(fn)
    def slow(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        time.sleep(seconds)
        return result

    return slow


def main(argv: list[str]) -> None:
    seconds, args = float(argv[0]), argv[1:]
    load = workflows.runner.load_job_function
    # Patched before the CLI is imported, so every ``from workflows.runner import load_job_function`` sees it.
    workflows.runner.load_job_function = lambda spec=None: slowed(load(spec), seconds)
    from workflows.__main__ import app

    app(args, prog_name="workflows")


if __name__ == "__main__":
    main(sys.argv[1:])
