"""Reading the published TangoFlux / AudioStory DiT checkpoints: key names, config fields, strict checks.

The published files name things differently from our modules (``fc`` for the pooled projection, the
misspelled ``duration_emebdder``, the VAE keys without any prefix). Every published key is mapped here
explicitly, one table, so a wrong or partial checkpoint fails with a message that names the keys instead of
silently loading random weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

from ..errors import CheckpointError


def config_from_dict(cls: type, data: Mapping, what: str):
    """A config dataclass from saved JSON, refusing unknown fields: a foreign or newer checkpoint must fail
    loudly, not load with settings silently dropped."""
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(f"{what} config has unknown field(s) {unknown}; expected a subset of {sorted(known)}")
    return cls(**data)

# Our parameter name (inside TangoFluxDiT)  <-  the published TangoFlux name (no "transformer." prefix here).
TANGOFLUX_RENAMES: dict[str, str] = {
    "pooled_proj.weight": "fc.0.weight",
    "pooled_proj.bias": "fc.0.bias",
    "duration_embedder.freqs": "duration_emebdder.time_positional_embedding.0.weights",
    "duration_embedder.proj.weight": "duration_emebdder.time_positional_embedding.1.weight",
    "duration_embedder.proj.bias": "duration_emebdder.time_positional_embedding.1.bias",
}
# Published prefixes that belong to the DiT; "transformer." keys keep their names (both sides use diffusers).
# Published prefixes we know and deliberately do not load: the flan-t5 encoder TangoFlux carried inside its
# module (we load T5 separately, only when a caller wants caption conditioning) and DPO's reference copy.
IGNORED_PREFIXES = ("text_encoder.", "ref_transformer.")
# The Oobleck VAE's top-level modules; in the published DiT folder they appear without any prefix.
VAE_PREFIXES = ("encoder.", "decoder.")
# Where AudioStory keeps the DiT inside its whole-model state dict (``pytorch_model.bin``).
AUDIOSTORY_DIT_PREFIX = "tangoflux."

# Fields of the published DiT config.json and the DiTConfig field each one sets.
TANGOFLUX_CONFIG_FIELDS: dict[str, str] = {
    "num_layers": "num_layers",
    "num_single_layers": "num_single_layers",
    "in_channels": "in_channels",
    "attention_head_dim": "attention_head_dim",
    "joint_attention_dim": "joint_attention_dim",
    "num_attention_heads": "num_attention_heads",
    "max_duration": "max_duration",
}
# Published fields we read but that have no effect on inference here.


def _first(keys: Iterable[str], n: int = 5) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:n])
    return shown + (f" … (+{len(keys) - n} more)" if len(keys) > n else "")


def split_published_state(state: Mapping[str, torch.Tensor]) -> tuple[dict, dict, list[str]]:
    """Split one published state dict into (DiT weights under our names, VAE weights, unknown keys).

    Accepts keys with or without AudioStory's ``tangoflux.`` prefix and with or without a ``vae.`` prefix on
    the VAE weights, so the same function serves the DiT folder, TangoFlux's own files and the sub-dict the
    AudioStory whole-model loader hands over.
    """
    ours = {v: k for k, v in TANGOFLUX_RENAMES.items()}
    dit: dict[str, torch.Tensor] = {}
    vae: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        name = key[len(AUDIOSTORY_DIT_PREFIX):] if key.startswith(AUDIOSTORY_DIT_PREFIX) else key
        if name.startswith("vae."):
            vae[name[len("vae."):]] = value
        elif name.startswith(VAE_PREFIXES):
            vae[name] = value
        elif name.startswith("transformer."):
            dit[name] = value
        elif name in ours:
            dit[ours[name]] = value
        elif name.startswith(IGNORED_PREFIXES):
            continue
        else:
            unknown.append(key)
    return dit, vae, unknown


def load_state_checked(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str, files: str) -> None:
    """Load ``state`` into ``module`` only if keys and shapes match exactly; otherwise a CheckpointError."""
    check_state(module.state_dict(), state, what=what, files=files)
    module.load_state_dict(dict(state), strict=True)


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
        problems.append(f"{len(missing)} missing key(s): {_first(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_first(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_first(mismatched, 3)}")
    if problems:
        raise CheckpointError(
            f"{files} does not hold the {what} this config describes: " + "; ".join(problems)
            + ". Check that the weights and config.json come from the same release (re-download with "
            "`dubkit models pull`)."
        )


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Load a safetensors file to CPU, turning a missing or corrupt file into a CheckpointError."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the folder is incomplete (re-download with `dubkit models pull`).")
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt headers
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); re-download it.") from exc
