"""A trained vitr `VideoTextModel` (CLIP text tower + any temporal head) used as a frozen teacher."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from vitr.model.retrieval import VideoTextModel


class ModelTeacher:
    """Teacher view of a `VideoTextModel`: the head's own text and video vectors, scored by their dot product.

    Head outputs are re-normalised so every teacher scores in cosines; for CLIP2Video's concatenated
    sqrt(weight)-scaled vectors this leaves the dot product unchanged (their norm is already 1).
    """

    def __init__(self, model: VideoTextModel, name: str = "clip") -> None:
        self.model = model.eval().requires_grad_(False)
        self.name = name

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return F.normalize(self.model.embed_texts(list(texts)).float(), dim=-1).cpu()  # (N, E)

    @torch.inference_mode()
    def embed_videos(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        device = self.model.logit_scale.device
        video = self.model.embed_video_features(frames.to(device), mask.to(device))
        return F.normalize(video.float(), dim=-1).cpu()  # (N, E)

    def temperature_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp())
