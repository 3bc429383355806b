"""CLIP4Clip's seqTransf head: a 4-layer temporal Transformer over position-tagged frames (clip2video.md §2):
h = transformerClip(v + P[0:T], m);  u = pool(h + v, m);  score = n(t) . u
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from vitr.backbones.base import TextFeatures
from vitr.errors import CheckpointError, ConfigError
from vitr.heads.base import TemporalHead, register_head
from vitr.heads.meanp import masked_mean_pool, text_global
from vitr.heads.temporal_transformer import TemporalTransformer, default_heads, init_temporal_weights

CLIP_CONTEXT_POSITIONS = 77  # rows of `frame_position_embeddings` in the official heads (CLIP's text context)


def frame_position_embedding(embed_dim: int, num_frames: int) -> nn.Embedding:
    """P: one row per frame position; 77 rows as in the official checkpoints, more only if num_frames needs it."""
    if num_frames < 1:
        raise ConfigError(f"num_frames must be >= 1, got {num_frames}")
    return nn.Embedding(max(CLIP_CONTEXT_POSITIONS, num_frames), embed_dim)


def check_frame_count(frames: torch.Tensor, positions: nn.Embedding) -> None:
    """A video longer than the position table cannot be tagged; say how to fix it instead of an index error."""
    if frames.shape[1] > positions.num_embeddings:
        raise ConfigError(
            f"got {frames.shape[1]} frames but the head has {positions.num_embeddings} frame positions; "
            f"sample fewer frames or build the head with num_frames >= {frames.shape[1]}"
        )


def copy_clip_positions(embedding: nn.Embedding, clip_text_state: Mapping[str, torch.Tensor]) -> list[str]:
    """Initialise the first rows of `embedding` from CLIP's text `positional_embedding` (clip2video.md §6).

    Copies as many rows as both have (77 for P, 2 for the type embedding E); a shorter CLIP context leaves the
    remaining rows at their fresh initialisation. Returns the CLIP keys copied (none if CLIP has no positions).
    """
    key = "positional_embedding"
    if key not in clip_text_state:
        return []
    source = clip_text_state[key]
    if source.shape[-1] != embedding.embedding_dim:
        raise CheckpointError(
            f"CLIP text {key!r} has width {source.shape[-1]} but the head's embed_dim is {embedding.embedding_dim}; "
            "the text width must equal embed_dim to initialise from CLIP"
        )
    rows = min(source.shape[0], embedding.num_embeddings)
    with torch.no_grad():
        embedding.weight[:rows].copy_(source[:rows].to(embedding.weight))
    return [key]


def sequence_transformer_video(
    frames: torch.Tensor, mask: torch.Tensor, positions: nn.Embedding, transformer: TemporalTransformer
) -> torch.Tensor:
    """The seqTransf video vector: frames (B, T, D), mask (B, T) -> (B, D) unit vectors."""
    check_frame_count(frames, positions)
    hidden = transformer(frames + positions.weight[: frames.shape[1]], mask)  # (B, T, D)
    return masked_mean_pool(hidden + frames, mask)


@register_head("seqTransf")
class SequenceTransformerHead(TemporalHead):
    """seqTransf: frames tagged with P run through `transformerClip`; residual + v; masked mean pool."""

    def __init__(
        self,
        embed_dim: int,
        num_frames: int = 12,
        layers: int = 4,
        heads: int | None = None,
        mask_tiling: str = "per_sample",
        ln_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.num_frames = num_frames
        self.frame_position_embeddings = frame_position_embedding(embed_dim, num_frames)
        heads = default_heads(embed_dim) if heads is None else heads
        self.transformerClip = TemporalTransformer(embed_dim, layers, heads, mask_tiling, ln_eps)
        self.apply(init_temporal_weights)

    def embed_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return sequence_transformer_video(frames, mask, self.frame_position_embeddings, self.transformerClip)

    def embed_text(self, text: TextFeatures) -> torch.Tensor:
        return text_global(text)

    def init_from_clip(self, clip_text_state: Mapping[str, torch.Tensor]) -> list[str]:
        """P <- CLIP text positions; transformerClip blocks <- CLIP text blocks 0..layers-1. Returns keys copied."""
        return copy_clip_positions(self.frame_position_embeddings, clip_text_state) + (
            self.transformerClip.init_from_clip_text(clip_text_state)
        )
