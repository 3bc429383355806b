"""Build a `VideoTextModel` from a plain, serialisable description (stored with every index and checkpoint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vitr.backbones.registry import load_backbone
from vitr.backbones.weights import read_state_dict
from vitr.errors import CheckpointError
from vitr.heads.base import create_head
from vitr.model.retrieval import VideoTextModel


@dataclass
class ModelSpec:
    """Which backbone, which head and which fine-tuned weights; enough to rebuild the model anywhere."""

    backbone: str = "ViT-B-32"
    pretrained: str | None = None  # open_clip tag such as "openai" (downloads when online)
    weights: str | None = None  # local backbone weights: file or directory
    head: str = "meanP"
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # a trained vitr model (backbone + head) state dict
    num_frames: int = 12
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def build_model(spec: ModelSpec, device: str | torch.device = "cpu") -> VideoTextModel:
    backbone = load_backbone(spec.backbone, pretrained=spec.pretrained, weights=spec.weights, device=device,
                             precision=spec.precision)
    head = create_head(spec.head, backbone.embed_dim, num_frames=spec.num_frames, **spec.head_kwargs)
    model = VideoTextModel(backbone, head.to(device))
    if spec.checkpoint:
        load_model_weights(model, spec.checkpoint)
    return model.eval()


def load_model_weights(model: VideoTextModel, path: str | Path) -> None:
    """Load a trained model's state dict strictly; name every missing or unexpected key."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    state = read_state_dict(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match the model: missing keys {missing[:20]}, "
                              f"unexpected keys {unexpected[:20]}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
