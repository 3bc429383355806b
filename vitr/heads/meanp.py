"""CLIP4Clip's meanP head and the masked mean pool every CLIP4Clip/CLIP2Video global branch ends with (§2)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from vitr.backbones.base import TextFeatures
from vitr.heads.base import TemporalHead, register_head


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Unit length along the last dim; an all-zero vector stays zero instead of becoming NaN."""
    return F.normalize(x, dim=-1)


def masked_mean_pool(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """pool(h, m) of clip2video.md §2: normalise each frame, masked mean, normalise again.

    frames: (B, T, D), mask: (B, T) -> (B, D) unit vectors. The denominator is clamped at 1 as in the official
    code, so a video with an all-zero mask yields a zero vector rather than NaN.
    """
    weights = mask.to(frames.dtype)[..., None]  # (B, T, 1)
    summed = (l2_normalise(frames) * weights).sum(1)  # (B, D)
    return l2_normalise(summed / weights.sum(1).clamp(min=1.0))


def text_global(text: TextFeatures) -> torch.Tensor:
    """The sentence vector every head scores against: the normalised end-of-text feature, (B, D)."""
    return l2_normalise(text.pooled)


@register_head("meanP")
class MeanPoolHead(TemporalHead):
    """meanP: the video vector is the masked mean of the normalised frame embeddings; no parameters.

    `num_frames` is accepted so every head can be built from the same configuration; it changes nothing here.
    """

    def __init__(self, embed_dim: int, num_frames: int = 12) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.num_frames = num_frames

    def embed_video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean_pool(frames, mask)

    def embed_text(self, text: TextFeatures) -> torch.Tensor:
        return text_global(text)

    def init_from_clip(self, clip_text_state: Mapping[str, torch.Tensor]) -> list[str]:
        """Nothing to initialise; returns the (empty) list of CLIP keys copied, like every head."""
        return []
