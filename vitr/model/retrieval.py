"""`VideoTextModel`: the one composition of a backbone and a temporal head used by training, eval and index."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vitr.backbones.base import Backbone
from vitr.heads.base import TemporalHead


class VideoTextModel(nn.Module):
    """backbone -> frame embeddings (B, T, D) -> head -> video vectors (B, E); text -> head -> (B, E)."""

    def __init__(self, backbone: Backbone, head: TemporalHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def logit_scale(self) -> nn.Parameter:
        """CLIP's learnable log inverse temperature; shared by every score term (clip2video.md §4)."""
        return self.backbone.logit_scale

    def encode_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels: (B, T, 3, S, S) normalised -> (B, T, D) unnormalised frame embeddings."""
        b, t = pixels.shape[:2]
        return self.backbone.encode_image(pixels.flatten(0, 1)).float().view(b, t, -1)

    def embed_video_features(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Cached frame embeddings (B, T, D) + mask (B, T) -> (B, E)."""
        return self.head.embed_video(frames.float(), mask.float())

    def embed_video(self, pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.embed_video_features(self.encode_frames(pixels), mask)

    def tokenize(self, texts: Sequence[str], context_length: int | None = None) -> torch.Tensor:
        """Captions -> (B, L) ids, cut to `context_length` tokens (start and end included; default: the model's)."""
        return self.backbone.tokenize(texts, context_length=context_length)

    def embed_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, E)."""
        return self.head.embed_text(self.backbone.encode_text(tokens))

    def embed_texts(self, texts: Sequence[str], context_length: int | None = None) -> torch.Tensor:
        device = self.logit_scale.device
        return self.embed_text(self.tokenize(texts, context_length).to(device))
