"""The contract of a temporal head: frame embeddings -> one video vector, text features -> one text vector.

Every head scores a (text, video) pair by a dot product of the two vectors it emits. That keeps indexing
uniform (any head's video vectors go into an inner-product index). Heads whose score is a weighted sum of
several cosine terms (CLIP2Video: 0.5 global + 0.5 aligned) emit the concatenation of sqrt(weight)-scaled
unit vectors, so the dot product equals the weighted sum exactly; `score_terms` exposes the terms for losses
that treat them separately (clip2video.md §5).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from vitr.backbones.base import TextFeatures


class TemporalHead(nn.Module, ABC):
    """Maps frame embeddings (B, T, D) and a frame mask (B, T) to video vectors (B, E)."""

    name: ClassVar[str]

    @abstractmethod
    def embed_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """frames: (B, T, D) unnormalised frame embeddings; mask: (B, T) 1 on real frames -> (B, E)."""

    @abstractmethod
    def embed_text(self, text: TextFeatures) -> torch.Tensor:
        """Text features -> (B, E); the dot product with `embed_video` output is the similarity."""

    def score_terms(self, text_emb: torch.Tensor, video_emb: torch.Tensor) -> dict[str, tuple[float, torch.Tensor]]:
        """Named (weight, (Bt, Bv) cosine matrix) terms whose weighted sum is the similarity."""
        return {"global": (1.0, text_emb @ video_emb.T)}

    def similarity(self, text_emb: torch.Tensor, video_emb: torch.Tensor) -> torch.Tensor:
        """(Bt, E), (Bv, E) -> (Bt, Bv) scores."""
        return text_emb @ video_emb.T


_REGISTRY: dict[str, Callable[..., TemporalHead]] = {}


def register_head(name: str) -> Callable[[type[TemporalHead]], type[TemporalHead]]:
    """Class decorator: make a head constructible by name through `create_head`."""

    def wrap(cls: type[TemporalHead]) -> type[TemporalHead]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def create_head(name: str, embed_dim: int, **kwargs: object) -> TemporalHead:
    """The one way to build a head: `create_head("tdb", 512, num_frames=12)`."""
    from vitr import heads as _heads  # noqa: F401  (importing the package registers every head)

    if name not in _REGISTRY:
        raise KeyError(f"unknown head {name!r}; known heads: {sorted(_REGISTRY)}")
    return _REGISTRY[name](embed_dim=embed_dim, **kwargs)


def available_heads() -> list[str]:
    from vitr import heads as _heads  # noqa: F401

    return sorted(_REGISTRY)
