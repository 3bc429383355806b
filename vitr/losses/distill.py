"""TeachText distillation: pull the student's similarity matrix towards an aggregate of frozen teachers' matrices.

Official recipe (teachtext.md §1.4, §1.5): S̄ = (1/N) Σ_n S^(n), the element-wise mean of the teachers' (B, B)
matrices; L_d = SmoothL1(S, S̄, beta=1) averaged over all B×B entries, diagonal included; L = L_r + 1·L_d.
Both matrices are scores (cosines), not softmax outputs; rows = captions, columns = videos.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

Aggregation = Literal["mean", "weighted"]
DistillCriterion = Literal["huber", "l1", "l2"]


def aggregate_teachers(
    teacher_scores: Sequence[torch.Tensor],
    aggregation: Aggregation = "mean",
    weights: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """N teacher matrices (B, B) -> one (B, B) target: their mean, or their weighted mean (weights sum to 1 after
    normalisation, so a weighted aggregate stays on the teachers' score scale)."""
    if not teacher_scores:
        raise ValueError("TeachText needs at least one teacher matrix")
    shapes = {tuple(s.shape) for s in teacher_scores}
    if len(shapes) != 1:
        raise ValueError(f"teacher matrices must share one shape, got {sorted(shapes)}")
    stacked = torch.stack([s.float() for s in teacher_scores])  # (N, B, B)
    if aggregation == "mean":
        if weights is not None:
            raise ValueError("weights are only used with aggregation='weighted'")
        return stacked.mean(dim=0)
    if aggregation != "weighted":
        raise ValueError(f"aggregation must be 'mean' or 'weighted', got {aggregation!r}")
    if weights is None:
        raise ValueError("aggregation='weighted' needs one weight per teacher")
    w = torch.as_tensor(weights, dtype=stacked.dtype, device=stacked.device)
    if w.shape != (len(teacher_scores),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"need {len(teacher_scores)} non-negative teacher weights with a positive sum, got {weights}")
    return torch.einsum("n,nij->ij", w / w.sum(), stacked)


def distillation_loss(
    student_scores: torch.Tensor,
    teacher_scores: Sequence[torch.Tensor],
    aggregation: Aggregation = "mean",
    weights: Sequence[float] | torch.Tensor | None = None,
    loss: DistillCriterion = "huber",
    beta: float = 1.0,
) -> torch.Tensor:
    """L_d = mean over all B×B entries of l(S - Agg(S^(1..N))) -> scalar; the teachers get no gradient.

    `huber` is `SmoothL1Loss(beta)`: 0.5 d²/beta where |d| < beta, else |d| - 0.5 beta (official: beta = 1).
    Pass cosine matrices for the official behaviour, or logits (scores times each model's inverse temperature)
    to distil on that scale instead.
    """
    if student_scores.dim() != 2:
        raise ValueError(f"student scores must be a (B, B) matrix, got shape {tuple(student_scores.shape)}")
    target = aggregate_teachers([s.detach() for s in teacher_scores], aggregation, weights)
    if target.shape != student_scores.shape:
        raise ValueError(
            f"teacher matrices {tuple(target.shape)} do not match the student's "
            f"{tuple(student_scores.shape)}; teachers must score the batch's own captions and videos"
        )
    target = target.to(student_scores.device, student_scores.dtype)
    if loss == "huber":
        if beta <= 0:
            raise ValueError(f"Huber beta must be positive, got {beta}")
        return F.smooth_l1_loss(student_scores, target, beta=beta)
    if loss == "l1":
        return F.l1_loss(student_scores, target)
    if loss == "l2":
        return F.mse_loss(student_scores, target)
    raise ValueError(f"loss must be 'huber', 'l1' or 'l2', got {loss!r}")


def teachtext_loss(
    retrieval: torch.Tensor,
    student_scores: torch.Tensor,
    teacher_scores: Sequence[torch.Tensor],
    weight: float = 1.0,
    aggregation: Aggregation = "mean",
    weights: Sequence[float] | torch.Tensor | None = None,
    loss: DistillCriterion = "huber",
    beta: float = 1.0,
) -> torch.Tensor:
    """L = L_r + weight · L_d (official weight: 1, no hyper-parameter); `retrieval` is the student's L_r."""
    return retrieval + weight * distillation_loss(student_scores, teacher_scores, aggregation, weights, loss, beta)
