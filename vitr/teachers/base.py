"""What TeachText asks of a teacher: its own text encoder and its own similarity over the shared video features.

A teacher is a frozen retrieval model. It embeds captions with its own text encoder and videos from the same
cached frame features the student sees (teachtext.md §1.1: shared video side, different text embeddings),
and scores a pair by the dot product of its two unit vectors: a cosine in [-1, 1], the scale of the student's
scores. `logit_scale` (log inverse temperature) lets distillation run on logits instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Teacher(Protocol):
    """A frozen retrieval model whose score is `embed_texts(t) @ embed_videos(v).T`."""

    name: str

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Captions -> (N, E) unit vectors."""
        ...

    def embed_videos(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """frames: (N, T, D) cached frame embeddings, mask: (N, T) -> (N, E) unit vectors."""
        ...

    def temperature_scale(self) -> float:
        """exp(logit_scale): multiplies cosines into the logits the teacher was trained on."""
        ...
