"""A small retrieval model over cached frame features with a pluggable text encoder, and how to train it.

Video side: the frames are mean-pooled inside `segments` equal spans of time (plus the whole clip), the
pooled vectors concatenated and mapped by a two-layer MLP to E. Unlike plain mean pooling this sees coarse
order ("on the left, then on the right"), at the cost of a few thousand parameters. Text side: any module
with `featurize` and `forward` (`text_encoders`). Score: cosine of the two unit vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vitr.losses.infonce import multi_positive_infonce


def segment_pool(frames: torch.Tensor, mask: torch.Tensor, segments: int) -> torch.Tensor:
    """frames (N, T, D), mask (N, T) -> (N, (segments + 1) * D): masked means over the clip and each time span."""
    n, t, d = frames.shape
    lengths = mask.sum(dim=1).clamp(min=1.0)  # (N,)
    position = torch.cumsum(mask, dim=1) - 1  # (N, T): index among real frames
    span = (position * segments / lengths.unsqueeze(1)).floor().clamp(0, segments - 1).long()  # (N, T)
    one_hot = F.one_hot(span, segments).float() * mask.unsqueeze(-1)  # (N, T, S)
    per_span = torch.einsum("nts,ntd->nsd", one_hot, frames) / one_hot.sum(dim=1).clamp(min=1.0).unsqueeze(-1)
    whole = (frames * mask.unsqueeze(-1)).sum(dim=1) / lengths.unsqueeze(-1)  # (N, D)
    return torch.cat([whole, per_span.reshape(n, segments * d)], dim=1)


class SegmentPoolVideo(nn.Module):
    """(N, T, D) frame embeddings -> (N, E) via `segment_pool` and an MLP."""

    def __init__(self, frame_dim: int, embed_dim: int, segments: int = 3, hidden: int | None = None) -> None:
        super().__init__()
        self.segments = segments
        hidden = hidden or 2 * embed_dim
        self.mlp = nn.Sequential(nn.Linear((segments + 1) * frame_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = segment_pool(F.normalize(frames.float(), dim=-1), mask.float(), self.segments)
        return self.mlp(pooled)


class ProjectionTeacher(nn.Module):
    """text encoder + `SegmentPoolVideo`, cosine similarity, learnable temperature (CLIP init ln(1/0.07))."""

    def __init__(self, name: str, text: nn.Module, frame_dim: int, embed_dim: int = 256, segments: int = 3) -> None:
        super().__init__()
        self.name = name
        self.text = text
        self.video = SegmentPoolVideo(frame_dim, embed_dim, segments)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def featurize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.text.featurize(texts)

    def text_vectors(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(features), dim=-1)  # (N, E)

    def video_vectors(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.video(frames, mask), dim=-1)  # (N, E)

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.text_vectors(self.featurize(texts))

    @torch.inference_mode()
    def embed_videos(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.video_vectors(frames, mask)

    def temperature_scale(self) -> float:
        return float(self.logit_scale.detach().exp())


@dataclass
class TeacherFitConfig:
    """How a projection teacher is trained: multi-positive InfoNCE over in-batch captions, AdamW, cosine lr."""

    epochs: int = 20
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0


def fit_teacher(
    teacher: ProjectionTeacher,
    text_features: torch.Tensor,
    video_of_caption: torch.Tensor,
    frames: torch.Tensor,
    mask: torch.Tensor,
    config: TeacherFitConfig | None = None,
) -> list[float]:
    """Train `teacher` in place as a retrieval model; returns the loss of every step.

    text_features: (C, X) from `teacher.featurize`; video_of_caption: (C,) row of each caption's video in
    frames (V, T, D) / mask (V, T). Two captions of one video in a batch are both positives (MIL-NCE), so a
    multi-caption split gives no false negatives.
    """
    cfg = config or TeacherFitConfig()
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    num = len(text_features)
    steps_per_epoch = max(1, num // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    teacher.train()
    history = []
    for _ in range(cfg.epochs):
        order = torch.randperm(num, generator=generator)
        for step in range(steps_per_epoch):
            rows = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]  # (B,)
            videos = video_of_caption[rows]  # (B,)
            text = teacher.text_vectors(text_features[rows])  # (B, E)
            video = teacher.video_vectors(frames[videos], mask[videos])  # (B, E)
            positive = videos.unsqueeze(1) == videos.unsqueeze(0)  # (B, B)
            loss = multi_positive_infonce(teacher.logit_scale.exp() * text @ video.T, positive)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                teacher.logit_scale.clamp_(max=math.log(100.0))
            history.append(loss.item())
    teacher.eval().requires_grad_(False)
    return history
