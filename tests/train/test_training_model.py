"""The model a recipe trains: the head's tensors that CLIP does not initialise come from the recipe's seed."""

import torch

from vitr.backbones import load_backbone, save_backbone
from vitr.train.config import load_config
from vitr.train.pipeline import init_head_from_clip, training_model


def test_the_recipes_seed_decides_the_heads_fresh_tensors_and_leaves_the_callers_random_state(tmp_path):
    save_backbone(load_backbone("vitr-lab-tiny", random_init=True), tmp_path / "clip")

    def frame_positions(seed: int) -> torch.Tensor:
        config = load_config(None, [f"model.backbone={tmp_path / 'clip'}", "model.head=tdb", f"seed={seed}"])
        model = training_model(config)
        init_head_from_clip(model)  # what CLIP gives is the same for every seed; frame positions are not from CLIP
        return model.head.frame_position_embeddings.weight.detach().clone()

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = frame_positions(0)
    assert torch.rand(3).equal(expected_next)  # the caller's generator did not move
    assert frame_positions(0).equal(first) and not frame_positions(1).equal(first)
