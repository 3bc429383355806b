"""The contract every image-text backbone fulfils: per-frame embeddings and per-token text features.

Temporal heads need more than pooled vectors (CLIP2Video's TAB aligns word tokens), so text encoding returns
the projected state of every position as well as the pooled end-of-text feature (clip2video.md §1.2).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TextFeatures:
    """Text encoder output for a batch of B captions of L token positions."""

    pooled: torch.Tensor  # (B, D) projected feature at the end-of-text token, not normalised
    tokens: torch.Tensor  # (B, L, D) projected final-LayerNorm state of every position
    mask: torch.Tensor  # (B, L) 1.0 on real tokens (start..end-of-text), 0.0 on padding

    def to(self, device: torch.device | str) -> TextFeatures:
        return TextFeatures(self.pooled.to(device), self.tokens.to(device), self.mask.to(device))


class Backbone(nn.Module, ABC):
    """A CLIP-style dual encoder. Frame embeddings are the projected CLS token, not L2-normalised."""

    embed_dim: int
    image_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    context_length: int
    logit_scale: nn.Parameter  # log of the contrastive temperature's inverse (CLIP init: ln 100)

    @abstractmethod
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, 3, H, W) normalised pixels -> (N, D) projected CLS embeddings."""

    @abstractmethod
    def encode_text(self, tokens: torch.Tensor) -> TextFeatures:
        """tokens: (B, L) ids from `tokenize` -> per-token and pooled features."""

    @abstractmethod
    def tokenize(self, texts: Sequence[str], context_length: int | None = None) -> torch.Tensor:
        """Captions -> (B, L) token ids; L = context_length or the model's own."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A stable hash of architecture and weights, so cached features never outlive the model they came from."""

    @abstractmethod
    def visual_fingerprint(self) -> str:
        """A hash of what `encode_image` depends on (the image tower and preprocessing), nothing else.

        Frame-feature caches are keyed by it, so fine-tuning the text tower over frozen, cached frame features
        (the lab's and CLIP4Clip-style `freeze: visual` runs) never invalidates the cache.
        """
