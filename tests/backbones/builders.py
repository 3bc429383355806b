"""Tiny CLIP architectures and random models, built fresh so tests never need downloaded weights."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import open_clip
import torch

import vitr.backbones  # noqa: F401  (registers vitr's model configs with open_clip)

MICRO_ARCH = "vitr-test-micro"
MICRO_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def random_clip(model_cfg: dict, seed: int = 0) -> open_clip.CLIP:
    """A randomly initialised open_clip CLIP in eval mode, with a non-default logit scale."""
    torch.manual_seed(seed)
    model = open_clip.CLIP(**model_cfg).eval()
    with torch.no_grad():
        model.logit_scale.fill_(3.0)
    return model


@functools.cache
def _tokenizer() -> open_clip.SimpleTokenizer:
    return open_clip.SimpleTokenizer()


def caption_tokens(context_length: int = 77) -> torch.Tensor:
    """(3, context_length) ids of captions of different lengths."""
    return _tokenizer()(
        ["a dog", "a man is cooking pasta in a small kitchen", "two cats play with a red ball"], context_length
    )


def images(size: int = 32, n: int = 2) -> torch.Tensor:
    """(n, 3, size, size) normalised pixels."""
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path
