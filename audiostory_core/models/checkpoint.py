"""Strict checkpoint I/O every model folder shares: configs that refuse unknown fields, safetensors reads and
state dicts that must match key for key and shape for shape.

transformers and torch only warn about (or silently keep random) weights a file lacks; a damaged or foreign
checkpoint must fail here with a message that names the files and keys instead.
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from ..errors import CheckpointError


def first(keys: Iterable[str], n: int = 5) -> str:
    """The first ``n`` of ``keys`` (sorted) for a message, with how many more there are."""
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f" … (+{len(keys) - n} more)" if len(keys) > n else "")


def config_from_dict(cls: type, data: Mapping, what: str) -> Any:
    """A config dataclass from saved JSON, refusing unknown fields: a foreign or newer checkpoint must fail
    loudly, not load with settings silently dropped."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(f"{what} config has unknown field(s) {unknown}; expected a subset of {sorted(known)}")
    return cls(**data)


def read_json(path: Path) -> dict:
    """A JSON file's contents, or a CheckpointError naming the file."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e


def require_files(folder: Path, names: Iterable[str]) -> None:
    """A CheckpointError listing every one of ``names`` that ``folder`` lacks."""
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise CheckpointError(f"{folder} is incomplete: missing {', '.join(missing)}")


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file to CPU, turning a missing or corrupt file into a CheckpointError."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the folder is incomplete (re-download with `dubkit models pull`).")
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt headers
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); re-download it.") from exc


def check_state(
    expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], *, what: str, files: str
) -> None:
    """Raise a CheckpointError unless ``state`` has exactly the keys and shapes of ``expected``.

    The message names the files, the first few missing / unexpected / mismatched keys, and what was expected,
    because "size mismatch" deep in a traceback does not tell a user which download is wrong.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {first(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {first(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {first(mismatched, 3)}")
    if problems:
        raise CheckpointError(
            f"{files} does not hold the {what} this config describes: " + "; ".join(problems)
            + ". Check that the weights and config.json come from the same release (re-download with "
            "`dubkit models pull`)."
        )


def load_state_checked(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str, files: str) -> None:
    """Load ``state`` into ``module`` only if keys and shapes match exactly; otherwise a CheckpointError."""
    check_state(module.state_dict(), state, what=what, files=files)
    module.load_state_dict(dict(state), strict=True)


def save_safetensors(module: nn.Module, path: Path, fmt: str) -> None:
    """``module``'s whole state dict as one safetensors file (CPU, contiguous), tagged with ``fmt``."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path), metadata={"format": fmt})
