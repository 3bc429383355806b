"""Checkpoint directories: atomic pointers, pruning, strict and safe reading."""

import json

import pytest
import torch

from tests.train.fakes import tiny_model
from vitr.errors import CheckpointError
from vitr.train.checkpoint import (
    BEST,
    INFO_FILE,
    LATEST,
    STATE_FILE,
    load_model_state,
    read_info,
    read_training_state,
    resolve_checkpoint,
    resolve_weights,
    save_checkpoint,
)


class Payload:
    """An arbitrary object: unpickling it would mean importing and running code named by the file."""


def _save(root, step, model, tags=(LATEST,)):
    state = {"optimizer": {"state": {}}, "loss_history": torch.arange(step, dtype=torch.float64)}
    return save_checkpoint(root, step, model, {"epoch": 0}, state, tags)


def test_round_trip_and_pointers(tmp_path):
    model = tiny_model(seed=1)
    _save(tmp_path, 2, model, (LATEST, BEST))
    _save(tmp_path, 4, model)
    assert resolve_checkpoint(tmp_path, LATEST).name == "step_00000004"
    assert resolve_checkpoint(tmp_path, BEST).name == "step_00000002"
    _save(tmp_path, 6, model)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["step_00000002", "step_00000006"]

    other = tiny_model(seed=2)
    load_model_state(other, resolve_checkpoint(tmp_path))
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    info = read_info(resolve_checkpoint(tmp_path))
    assert info["step"] == 6 and info["epoch"] == 0
    assert torch.equal(read_training_state(resolve_checkpoint(tmp_path))["loss_history"], torch.arange(6.0).double())


def test_interrupted_write_leaves_latest_intact(tmp_path):
    model = tiny_model()
    _save(tmp_path, 3, model)
    partial = tmp_path / ".step_00000004.dead0000.partial"  # a killed atomic_directory write
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"trunc")
    assert resolve_checkpoint(tmp_path).name == "step_00000003"
    _save(tmp_path, 5, model)
    assert not partial.exists()
    assert resolve_checkpoint(tmp_path / "nothing") is None


def test_broken_checkpoints_raise_checkpoint_error(tmp_path):
    model = tiny_model()
    path = _save(tmp_path, 1, model)
    (tmp_path / LATEST).write_text("step_00000009")
    with pytest.raises(CheckpointError, match="missing or incomplete"):
        resolve_checkpoint(tmp_path)

    info = json.loads((path / INFO_FILE).read_text())
    (path / INFO_FILE).write_text(json.dumps({**info, "format": 99}))
    with pytest.raises(CheckpointError, match="format 99"):
        read_info(path)

    torch.save({"optimizer": Payload()}, path / STATE_FILE)
    with pytest.raises(CheckpointError, match="cannot read training state"):
        read_training_state(path)

    wrong = tiny_model()
    wrong.head.extra = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match="missing keys"):
        load_model_state(wrong, path)


def test_a_run_directory_names_the_weights_of_its_latest_checkpoint(tmp_path):
    run = tmp_path / "runs" / "teacher"
    model = tiny_model()
    _save(run / "checkpoints", 3, model)
    _save(run / "checkpoints", 7, model)
    final = run / "checkpoints" / "step_00000007" / "model.safetensors"
    assert resolve_weights(run) == final  # the run's output_dir
    assert resolve_weights(run / "checkpoints") == final  # or its checkpoints directory
    assert resolve_weights(final) == final  # a weights file stays as it is
    assert resolve_weights(final.parent) == final.parent  # so does a step directory (load_model_weights reads it)
    (tmp_path / "untrained" / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="no finished checkpoint"):
        resolve_weights(tmp_path / "untrained")
