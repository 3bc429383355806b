"""Zero-shot concept recognition on frames, aggregated over a video (ps_scl.md §4 #8, #9; §6 (a)).

Per frame and category: prob = softmax(scale * n(frame) @ W_c^T) over the category's concepts. Per video:
- count (default, VidIL `aggregate_frame_tokens`): each frame votes for its `frame_top_k` concepts; concepts
  are ranked by votes (ties by mean probability) and scored by the share of frames that voted for them;
- mean: ranked and scored by the mean frame probability;
- max: ranked and scored by the highest frame probability (keeps short-lived concepts).
A category marked `temporal` also gets its transition over time: the majority top-1 concept of the first third
of the frames and of the last third; when they differ, the video shows "early, then late" (lab.md §4).
A category about a subject ("subject": "objects") is classified with the video's top subject filled into its
templates, on the frames whose own top subject is that one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from vitr.backbones.base import Backbone
from vitr.pseudo.prompts import TemplateMode, category_classifier
from vitr.pseudo.vocab import Category, Vocabulary

Aggregation = Literal["count", "mean", "max"]
CLIP_SCALE = 100.0  # CLIP's zero-shot logit scale (exp of the trained logit_scale, clamped at 100)


@dataclass(frozen=True)
class ScoredConcept:
    concept: str
    score: float  # count: share of frames voting for it; mean/max: that frame probability
    probability: float  # mean frame probability, for every aggregation


@dataclass(frozen=True)
class Transition:
    """A category whose leading concept changes over the video: `early` in the first third, `late` in the last."""

    early: str
    late: str
    support: float  # the smaller of the two majorities' shares of their third


@dataclass
class VideoConcepts:
    """What zero-shot recognition found in one video, best first per category."""

    concepts: dict[str, list[ScoredConcept]] = field(default_factory=dict)
    transitions: dict[str, Transition] = field(default_factory=dict)

    def top(self, category: str, n: int = 1) -> list[str]:
        return [c.concept for c in self.concepts.get(category, [])[:n]]


def frame_probabilities(frames: torch.Tensor, classifier: torch.Tensor, scale: float = CLIP_SCALE) -> torch.Tensor:
    """frames (N, T, D) unnormalised, classifier (C, D) unit rows -> (N, T, C) softmax over concepts."""
    return torch.softmax(scale * F.normalize(frames.float(), dim=-1) @ classifier.T, dim=-1)


def aggregate(
    prob: torch.Tensor, mask: torch.Tensor, frame_top_k: int, method: Aggregation = "count"
) -> tuple[torch.Tensor, torch.Tensor]:
    """prob (N, T, C), mask (N, T) -> (rank key (N, C), score (N, C)); sort by the key, report the score."""
    m = mask.float().unsqueeze(-1)  # (N, T, 1)
    frames = m.sum(dim=1).clamp(min=1)  # (N, 1)
    mean_prob = (prob * m).sum(dim=1) / frames  # (N, C)
    if method == "count":
        k = min(frame_top_k, prob.shape[-1])
        votes = torch.zeros_like(prob).scatter_(-1, prob.topk(k, dim=-1).indices, 1.0)  # (N, T, C)
        share = (votes * m).sum(dim=1) / frames  # (N, C)
        return share + mean_prob * 1e-3, share  # mean probability (< 1) only breaks ties between equal counts
    if method == "mean":
        return mean_prob, mean_prob
    if method == "max":
        peak = prob.masked_fill(m == 0, 0.0).amax(dim=1)
        return peak, peak
    raise ValueError(f"unknown aggregation {method!r}; choose count, mean or max")


def transition(prob: torch.Tensor, mask: torch.Tensor, min_support: float = 0.5) -> tuple[int, int, float] | None:
    """prob (T, C), mask (T,) of one video -> (early index, late index, support) or None when nothing changes.

    The video's real frames are cut into thirds; the majority top-1 concept of the first and of the last third
    must differ, and each majority must hold at least `min_support` of its third.
    """
    top1 = prob[mask.bool()].argmax(dim=-1)  # (T_real,)
    third = len(top1) // 3
    if third == 0:
        return None
    early_votes = torch.bincount(top1[:third], minlength=prob.shape[-1])
    late_votes = torch.bincount(top1[-third:], minlength=prob.shape[-1])
    early, late = int(early_votes.argmax()), int(late_votes.argmax())
    support = min(float(early_votes[early]), float(late_votes[late])) / third
    if early == late or support < min_support:
        return None
    return early, late, support


class ConceptTagger:
    """Frozen zero-shot classifiers of every vocabulary category, applied to frame embeddings."""

    def __init__(
        self,
        backbone: Backbone,
        vocabulary: Vocabulary,
        template_mode: TemplateMode = "ensemble",
        aggregation: Aggregation = "count",
        scale: float = CLIP_SCALE,
        temporal: bool = True,
        min_support: float = 0.5,
    ) -> None:
        self.vocabulary = vocabulary
        self.aggregation = aggregation
        self.scale = scale
        self.temporal = temporal
        self.min_support = min_support
        self.backbone, self.template_mode = backbone, template_mode
        self.classifiers = {
            c.name: category_classifier(backbone, c, template_mode) for c in vocabulary.categories if c.subject is None
        }
        self._about: dict[tuple[str, str], torch.Tensor] = {}  # (category, subject) -> classifier

    @torch.inference_mode()
    def tag(self, frames: torch.Tensor, mask: torch.Tensor) -> list[VideoConcepts]:
        """frames (N, T, D) frame embeddings, mask (N, T) -> one `VideoConcepts` per video."""
        if frames.dim() != 3 or mask.shape != frames.shape[:2]:
            raise ValueError(
                f"frames must be (N, T, D) with mask (N, T), got {tuple(frames.shape)} and {tuple(mask.shape)}"
            )
        results = [VideoConcepts() for _ in range(len(frames))]
        frames, mask = frames.cpu(), mask.cpu()
        frame_top1: dict[str, torch.Tensor] = {}  # category -> (N, T) index of each frame's top concept
        for category in self.vocabulary.categories:
            if category.subject is None:
                prob = frame_probabilities(frames, self.classifiers[category.name], self.scale)  # (N, T, C)
                frame_top1[category.name] = prob.argmax(dim=-1)
                self._add_category(results, category, prob, mask)
                continue
            subjects = self.vocabulary.category(category.subject).concepts
            by_subject: dict[str, list[int]] = {}  # videos without a subject get no concepts of this category
            for i, result in enumerate(results):
                for subject in result.top(category.subject)[:1]:
                    by_subject.setdefault(subject, []).append(i)
            for subject, rows in by_subject.items():
                prob = frame_probabilities(frames[rows], self._classifier_about(category, subject), self.scale)
                # only frames that show the subject answer "where is it": not the empty frames before it
                # appears, nor frames where another object leads
                seen = mask[rows] * (frame_top1[category.subject][rows] == subjects.index(subject))
                self._add_category([results[i] for i in rows], category, prob, seen)
        return results

    def _classifier_about(self, category: Category, subject: str) -> torch.Tensor:
        key = (category.name, subject)
        if key not in self._about:
            self._about[key] = category_classifier(self.backbone, category.about(subject), self.template_mode)
        return self._about[key]

    def _add_category(
        self, results: list[VideoConcepts], category: Category, prob: torch.Tensor, mask: torch.Tensor
    ) -> None:
        key, score = aggregate(prob, mask, category.frame_top_k, self.aggregation)
        m = mask.float().unsqueeze(-1)
        mean_prob = (prob * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)  # (N, C)
        k = min(category.top_k, prob.shape[-1])
        order = key.topk(k, dim=-1).indices  # (N, k)
        for i, result in enumerate(results):
            if not mask[i].any():
                continue
            # under `count`, a concept that no frame voted for is not a tag of the video (VidIL counts tokens seen)
            result.concepts[category.name] = [
                ScoredConcept(category.concepts[j], round(float(score[i, j]), 4), round(float(mean_prob[i, j]), 4))
                for j in order[i].tolist()
                if self.aggregation != "count" or score[i, j] > 0
            ]
            if self.temporal and category.temporal:
                found = transition(prob[i], mask[i], self.min_support)
                if found is not None:
                    early, late, support = found
                    result.transitions[category.name] = Transition(
                        category.concepts[early], category.concepts[late], round(support, 4)
                    )
