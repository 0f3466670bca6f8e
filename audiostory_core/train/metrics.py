"""The metrics logs, kept consistent across resumes: ``OUTPUT/metrics.csv`` one row per logged training step,
``OUTPUT/eval.csv`` one row per evaluation (fixed noise, so rows compare)."""
from __future__ import annotations

import csv
import os
from pathlib import Path

COLUMNS = ("step", "loss", "lm", "rec", "flow", "lr", "grad_norm", "tokens_per_s", "frames_per_s", "elapsed_s")
EVAL_COLUMNS = ("step", "loss", "lm", "rec", "flow")


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a metrics CSV as floats (empty cells dropped)."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


class MetricsLog:
    """Appends rows to ``path``. Resuming at ``start_step`` first drops rows after it (written by the run that
    was interrupted), so the file is one curve."""

    def __init__(self, path: Path, start_step: int = 0, columns: tuple[str, ...] = COLUMNS) -> None:
        self.path, self.columns = path, columns
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if start_step > 0 and path.is_file():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if float(r.get("step") or 0) <= start_step]
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)

    def write(self, row: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore").writerow(
                {k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in row.items()})
