"""Training checkpoints: what a run needs to continue exactly where it stopped, written so a crash never corrupts one.

Layout under `<output_dir>/checkpoints/`:

    step_00000300/
        model.safetensors     model state dict (the format `vitr.model.factory.load_model_weights` reads)
        trainer.json          step, epoch, position in the epoch, best metric, world size, the config
        training_state.pt     optimiser, grad scaler, RNG states, loss history: plain tensors and dicts,
                              read back with torch.load(weights_only=True)
    latest                    text file naming the directory to resume from
    best                      text file naming the directory with the best validation metric

A step directory is filled under a temporary name and renamed into place (`vitr.files.atomic_directory`); the
pointer files are replaced atomically afterwards, so `latest` always names a complete checkpoint. Directories no
pointer names are removed.
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vitr.errors import CheckpointError
from vitr.files import atomic_directory, atomic_write, is_partial, save_safetensors
from vitr.model.factory import load_model_weights

MODEL_FILE = "model.safetensors"
INFO_FILE = "trainer.json"
STATE_FILE = "training_state.pt"
LATEST, BEST = "latest", "best"
FORMAT_VERSION = 1


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def save_checkpoint(
    root: str | Path,
    step: int,
    model: nn.Module,
    info: dict[str, Any],
    training_state: dict[str, Any],
    tags: Sequence[str] = (LATEST,),
) -> Path:
    """Write the checkpoint of `step` under `root` (once per step) and point every tag in `tags` at it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    info = {"format": FORMAT_VERSION, "step": step, **info}
    if final.is_dir():  # same step, same weights: only the (small) info may have changed
        atomic_write(final / INFO_FILE, json.dumps(info, indent=2))
    else:
        with atomic_directory(final) as tmp:
            state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
            save_safetensors(tmp / MODEL_FILE, state, metadata={"format": "vitr.model", "step": str(step)})
            torch.save(training_state, tmp / STATE_FILE)
            (tmp / INFO_FILE).write_text(json.dumps(info, indent=2))
    for tag in tags:
        atomic_write(root / tag, final.name)
    _prune(root)
    return final


def resolve_checkpoint(root: str | Path, tag: str = LATEST) -> Path | None:
    """The step directory a tag points to, or None when the run has no such checkpoint yet."""
    pointer = Path(root) / tag
    if not pointer.is_file():
        return None
    target = pointer.parent / pointer.read_text().strip()
    if not (target / INFO_FILE).is_file():
        raise CheckpointError(
            f"{pointer} names {target.name}, which is missing or incomplete; delete {pointer} "
            "to start over or point it at another step directory"
        )
    return target


def resolve_weights(path: str | Path) -> Path:
    """The model file that `path` names. A run's output directory, or its `checkpoints` directory, means the model
    of the run's `latest` checkpoint (its final step once it has finished), so a recipe names a run rather than a
    step number that changes whenever the run does; any other path (a file, a step directory, a converted model) is
    returned as it is."""
    path = Path(path)
    for root in (path / "checkpoints", path):
        if (root / LATEST).is_file():
            return resolve_checkpoint(root, LATEST) / MODEL_FILE
    if (path / "checkpoints").is_dir():
        raise CheckpointError(f"run {path} has no finished checkpoint yet ({path / 'checkpoints' / LATEST} is missing)")
    return path


def read_info(path: str | Path) -> dict[str, Any]:
    try:
        info = json.loads((Path(path) / INFO_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {Path(path) / INFO_FILE}: {e}") from e
    if info.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {info.get('format')!r}; this vitr reads format {FORMAT_VERSION}"
        )
    return info


def read_training_state(path: str | Path) -> dict[str, Any]:
    """Optimiser, scaler and RNG state; only tensors and plain containers are accepted."""
    file = Path(path) / STATE_FILE
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"cannot read training state {file}: {e}") from e


def load_model_state(model: nn.Module, path: str | Path) -> None:
    """Load the model weights of a step directory strictly (every missing or unexpected key is named)."""
    load_model_weights(model, Path(path) / MODEL_FILE)


def _prune(root: Path) -> None:
    """Remove step directories no tag names, and temporaries of interrupted writes."""
    keep = {(root / tag).read_text().strip() for tag in (LATEST, BEST) if (root / tag).is_file()}
    for entry in root.iterdir():
        stale_tmp = is_partial(entry)
        if entry.is_dir() and (stale_tmp or (entry.name.startswith("step_") and entry.name not in keep)):
            shutil.rmtree(entry, ignore_errors=True)
