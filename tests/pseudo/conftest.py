"""A tiny random CLIP and a tiny vocabulary, built fresh (no downloaded weights)."""

from __future__ import annotations

import pytest
import torch

from vitr.backbones.base import Backbone
from vitr.backbones.registry import load_backbone
from vitr.pseudo.vocab import Vocabulary, vocabulary_from_dict

TINY_VOCAB = {
    "categories": {
        "objects": {
            "concepts": ["red circle", "blue square", "green triangle"],
            "templates": ["a {}", "there is a {}"],
            "phrase": "a {}",
            "top_k": 2,
            "frame_top_k": 1,
        },
        "columns": {
            "concepts": ["on the left", "on the right"],
            "templates": ["a circle {}", "a square {}"],
            "top_k": 1,
            "frame_top_k": 1,
            "temporal": True,
            "temporal_template": "a {objects} {early}, then {late}",
        },
        "backgrounds": {
            "concepts": ["black", "white"],
            "templates": ["on a {} background"],
            "top_k": 1,
            "frame_top_k": 1,
        },
    },
    "sentences": ["a {objects:2} {columns} on a {backgrounds} background"],
    "single": ["objects"],
}


@pytest.fixture(scope="session")
def tiny_backbone() -> Backbone:
    torch.manual_seed(0)
    return load_backbone("vitr-lab-tiny", random_init=True)


@pytest.fixture
def tiny_vocab() -> Vocabulary:
    return vocabulary_from_dict(TINY_VOCAB, source="tiny")
