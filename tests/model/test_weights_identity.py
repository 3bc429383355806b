"""`weights_identity`: a model spec named by the bytes its weights are read from, not by their paths."""

import pytest
import torch

from vitr.errors import CheckpointError
from vitr.files import save_safetensors
from vitr.model.factory import ModelSpec, build_model, weights_identity
from vitr.train.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def model():
    return build_model(ModelSpec(backbone="vitr-lab-tiny", random_init=True, num_frames=4))


def test_a_step_directory_is_named_by_its_model_file_alone(model, tmp_path):
    step = save_checkpoint(tmp_path / "checkpoints", 1, model, {"best": None}, {"rng": torch.zeros(3)})
    spec = ModelSpec(backbone="vitr-lab-tiny", checkpoint=str(step))
    before = weights_identity(spec)
    save_checkpoint(tmp_path / "checkpoints", 1, model, {"best": 0.5}, {})  # same step: only trainer.json changes
    assert weights_identity(spec) == before
    assert before["checkpoint"] != str(step) and before["backbone"] == "vitr-lab-tiny"
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state["backbone.model.text_projection"] += 1.0
    save_safetensors(step / "model.safetensors", state)
    assert weights_identity(spec)["checkpoint"] != before["checkpoint"]


def test_the_same_weights_file_anywhere_has_one_identity(model, tmp_path):
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    for name in ("a.safetensors", "b.safetensors"):
        save_safetensors(tmp_path / name, state)
    a, b = (weights_identity(ModelSpec(checkpoint=str(tmp_path / n))) for n in ("a.safetensors", "b.safetensors"))
    assert a == b


def test_missing_weights_are_a_checkpoint_error_naming_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="gone.safetensors' does not exist"):
        weights_identity(ModelSpec(weights=str(tmp_path / "gone.safetensors")))
