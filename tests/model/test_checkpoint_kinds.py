"""A checkpoint is a trained vitr model: a CLIP saved on its own, given where a checkpoint goes, is told apart."""

import pytest

from vitr.backbones import load_backbone, save_backbone
from vitr.errors import ConfigError
from vitr.model.factory import ModelSpec, build_model


def test_a_backbone_directory_given_as_checkpoint_says_to_give_it_as_the_backbone(tmp_path):
    saved = save_backbone(load_backbone("vitr-lab-tiny", random_init=True), tmp_path / "clip")
    with pytest.raises(ConfigError, match=r"holds a CLIP on its own .*\(--model \S*clip,"):
        build_model(ModelSpec(backbone="vitr-lab-tiny", checkpoint=str(saved)))
    assert build_model(ModelSpec(backbone=str(saved), num_frames=4)).backbone.embed_dim > 0
