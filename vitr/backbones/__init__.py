"""CLIP backbones: open_clip and Hugging Face adapters, safe weight loading, and vitr's own model configs.

Importing the package registers `model_configs/` (e.g. `vitr-lab-tiny`) with open_clip, so those names work
everywhere an open_clip architecture name does.
"""

from pathlib import Path

import open_clip

from vitr.backbones.base import Backbone, TextFeatures
from vitr.backbones.hf_clip import HFClipBackbone
from vitr.backbones.open_clip_backbone import OpenClipBackbone
from vitr.backbones.registry import load_backbone
from vitr.backbones.weights import read_state_dict, save_backbone

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
if "vitr-lab-tiny" not in open_clip.list_models():
    open_clip.add_model_config(MODEL_CONFIG_DIR)

__all__ = [
    "MODEL_CONFIG_DIR",
    "Backbone",
    "HFClipBackbone",
    "OpenClipBackbone",
    "TextFeatures",
    "load_backbone",
    "read_state_dict",
    "save_backbone",
]
