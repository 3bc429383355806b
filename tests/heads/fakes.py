"""Small random frame and text features shared by the head tests."""

import torch

from vitr.backbones.base import TextFeatures

DIM = 16


def make_text(batch: int, length: int = 8, seed: int = 0) -> TextFeatures:
    """Random text features whose captions end at different positions (mask 1 on SOT..EOT)."""
    gen = torch.Generator().manual_seed(seed)
    ends = torch.arange(batch) % (length - 2) + 3  # 3.. tokens incl. SOT and EOT
    mask = (torch.arange(length)[None, :] < ends[:, None]).float()
    tokens = torch.randn(batch, length, DIM, generator=gen)
    return TextFeatures(torch.randn(batch, DIM, generator=gen), tokens, mask)


def make_frames(batch: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random frame embeddings with a different number of real frames per video (always >= 1)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([frames - (b % frames) for b in range(batch)])
    mask = (torch.arange(frames)[None, :] < lengths[:, None]).float()
    return torch.randn(batch, frames, DIM, generator=gen), mask
