"""Contrastive retrieval losses over score matrices (clip2video.md §5).

CE(S) = mean_i -log_softmax(S, dim=1)[i, i];  symCE(S) = (CE(S) + CE(S^T)) / 2, rows = texts, columns = videos.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F


class ScoreTermHead(Protocol):
    """What a retrieval loss needs of a head: its named, weighted cosine terms (`TemporalHead.score_terms`)."""

    def score_terms(self, text_emb: torch.Tensor, video_emb: torch.Tensor) -> dict[str, tuple[float, torch.Tensor]]:
        """(Bt, E), (Bv, E) -> {name: (weight, (Bt, Bv) cosines)}."""
        ...


def _check_square(logits: torch.Tensor) -> None:
    if logits.dim() != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"InfoNCE needs a square (B, B) matrix with matched pairs on the diagonal, got {logits.shape}")


def per_pair_infonce(logits: torch.Tensor) -> torch.Tensor:
    """(B, B) logits, pair i on the diagonal -> (B,) per-pair loss: the mean of its text->video and video->text CE.

    The mean over pairs equals `symmetric_infonce`; keeping pairs apart lets a caller weight or select them.
    """
    _check_square(logits)
    text_to_video = -torch.diagonal(F.log_softmax(logits, dim=1))  # (B,)
    video_to_text = -torch.diagonal(F.log_softmax(logits, dim=0))  # (B,)
    return (text_to_video + video_to_text) / 2


def symmetric_infonce(logits: torch.Tensor) -> torch.Tensor:
    """symCE: (CE(S) + CE(S^T)) / 2 for (B, B) logits -> scalar."""
    return per_pair_infonce(logits).mean()


def infonce_with_hard_negatives(logits: torch.Tensor, negative_logits: torch.Tensor) -> torch.Tensor:
    """symCE where each image also competes against extra negative texts (NegCLIP, Yuksekgonul et al. 2023).

    logits: (B, B) image->text scores, pair i on the diagonal; negative_logits: (B, N) image->hard-negative-text
    scores. The image->text softmax runs over all B + N texts; the text->image one over the B images only (a
    negative text has no image of its own). With N = 0 this equals `symmetric_infonce`.
    """
    _check_square(logits)
    if negative_logits.dim() != 2 or negative_logits.shape[0] != logits.shape[0]:
        raise ValueError(f"negative_logits must be (B, N) with B = {logits.shape[0]}, got {negative_logits.shape}")
    image_to_text = -torch.diagonal(F.log_softmax(torch.cat([logits, negative_logits], dim=1), dim=1))
    text_to_image = -torch.diagonal(F.log_softmax(logits, dim=0))
    return (image_to_text.mean() + text_to_image.mean()) / 2


def multi_positive_infonce(logits: torch.Tensor, positive_mask: torch.Tensor) -> torch.Tensor:
    """MIL-NCE: -log(sum over positives of exp / sum over all of exp), in both directions, averaged -> scalar.

    logits: (Bt, Bv); positive_mask: (Bt, Bv), true where the text describes the video (several per row or
    column, e.g. every caption of a video in the batch). Rows and columns without any positive carry no signal
    and are left out; with an identity mask this equals `symmetric_infonce`.
    """
    if positive_mask.shape != logits.shape:
        raise ValueError(f"positive_mask {tuple(positive_mask.shape)} must match logits {tuple(logits.shape)}")
    positive = positive_mask.bool()
    if not positive.any():
        raise ValueError("positive_mask has no positive pair; every batch needs at least one matched text-video pair")
    directions = []
    for scores, pos in ((logits, positive), (logits.T, positive.T)):
        rows = pos.any(dim=1)  # rows without a positive would give -inf - -inf = NaN gradients
        scores, pos = scores[rows], pos[rows]
        positives_only = scores.masked_fill(~pos, float("-inf"))
        directions.append((torch.logsumexp(scores, dim=1) - torch.logsumexp(positives_only, dim=1)).mean())
    return (directions[0] + directions[1]) / 2


def retrieval_loss(
    head: ScoreTermHead, text_emb: torch.Tensor, video_emb: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """sum over the head's terms of weight * symCE(exp(logit_scale) * cosines) -> scalar.

    One term (weight 1) for CLIP4Clip heads; 0.5 symCE(global) + 0.5 symCE(TAB) for CLIP2Video, every term
    with the same scale. `logit_scale` is the log inverse temperature, as stored by CLIP.
    """
    scale = logit_scale.exp()
    terms = head.score_terms(text_emb, video_emb)
    return sum(weight * symmetric_infonce(scale * cosines) for weight, cosines in terms.values())
