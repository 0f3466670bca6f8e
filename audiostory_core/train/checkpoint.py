"""Resumable checkpoints: the model in our ``save_pretrained`` format + accelerate's optimizer, scheduler, RNG
and progress state.

    OUTPUT/checkpoint-000500/model/   AudioStoryModel.save_pretrained (loads with from_pretrained; starts the
                                      next stage)
    OUTPUT/checkpoint-000500/state/   accelerate save_state without the model weights (optimizer.bin,
                                      scheduler.bin, random_states_<rank>.pkl, custom_checkpoint_0.pkl)
    OUTPUT/final/                     the trained model (save_pretrained)

A checkpoint is written under ``<name>.part`` and renamed when complete, so an interrupted save never looks
like a checkpoint. Under FSDP/DeepSpeed accelerate keeps its own sharded weights in ``state/`` as well.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from .errors import ConfigError

_NAME = re.compile(r"^checkpoint-(\d+)$")


class Progress:
    """The optimisation steps done; saved with the accelerate state."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step = int(state["step"])


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:06d}"


def checkpoints(output: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``output``, oldest first."""
    if not output.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output.iterdir() if (m := _NAME.match(p.name)) and (p / "state").is_dir()]
    return sorted(found)


def resume_folder(resume: str | None, output: Path) -> Path | None:
    """The checkpoint to resume from: ``latest`` (None when the output has none yet) or an explicit folder."""
    if resume is None:
        return None
    if resume == "latest":
        found = checkpoints(output)
        return found[-1][1] if found else None
    path = Path(resume)
    if not (path / "state").is_dir() or not (path / "model").is_dir():
        raise ConfigError(f"resume: {path} is not a training checkpoint (it needs model/ and state/); "
                          f"to start a new stage from a model, set model.init instead")
    return path


def _sharded(accelerator: Any) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def install_hooks(accelerator: Any) -> None:
    """Keep model weights out of accelerate's state (they are in ``model/``, in our format) unless sharded."""

    def on_save(models, weights, output_dir):
        if not _sharded(accelerator):
            weights.clear()

    def on_load(models, input_dir):
        if not _sharded(accelerator):
            models.clear()  # the model was built from the checkpoint's model/ folder already

    accelerator.register_save_state_pre_hook(on_save)
    accelerator.register_load_state_pre_hook(on_load)


def export_model(accelerator: Any, objective: Any, folder: Path) -> None:
    """Write the trained ``AudioStoryModel`` with ``save_pretrained`` (main process; all processes call this)."""
    model = accelerator.unwrap_model(objective).model
    if _sharded(accelerator):  # gather the full weights, load them into an unsharded copy on the main process
        state = accelerator.get_state_dict(objective)
        if accelerator.is_main_process:
            from ..models.audiostory import AudioStoryModel

            copy = AudioStoryModel(model.config, model.tokenizer)
            copy.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
            model = copy
    if accelerator.is_main_process:
        tmp = folder.with_name(folder.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    accelerator.wait_for_everyone()


def save_checkpoint(accelerator: Any, objective: Any, output: Path, step: int, keep_last: int | None) -> Path:
    """``output/checkpoint-<step>`` with model and state; older ones beyond ``keep_last`` are removed."""
    final = output / checkpoint_name(step)
    tmp = output / (checkpoint_name(step) + ".part")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    export_model(accelerator, objective, tmp / "model")
    accelerator.save_state(str(tmp / "state"), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        if keep_last:
            for _, old in checkpoints(output)[:-keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
