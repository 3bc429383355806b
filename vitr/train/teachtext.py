"""TeachText glue for training: teacher matrices for a batch, the distillation term, and noisy-caption removal.

Indices follow the training `RetrievalDataset`: a caption index is a position in `dataset.captions`, a video
index a position in `dataset.videos` (the order of a `TeacherBank` built with `teacher_bank_for_dataset`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vitr.data.cache import FeatureCache
from vitr.data.types import RetrievalDataset
from vitr.errors import ConfigError, DatasetFormatError
from vitr.losses.distill import Aggregation, DistillCriterion, aggregate_teachers, distillation_loss
from vitr.teachers.bank import TeacherBank, build_teacher_bank, content_key
from vitr.teachers.base import Teacher

FilterRule = Literal["rank", "fraction", "weight"]


@dataclass
class TeachTextConfig:
    """The distillation term; defaults are the official recipe (teachtext.md §1.4-1.5)."""

    weight: float = 1.0  # L = L_r + weight * L_d
    aggregation: Aggregation = "mean"
    teacher_weights: list[float] | None = None  # only with aggregation="weighted"
    loss: DistillCriterion = "huber"
    beta: float = 1.0
    scores: Literal["cosine", "logits"] = "cosine"  # logits: each model's cosines times its own exp(logit_scale)

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ConfigError(f"teachtext weight must be >= 0, got {self.weight}")
        if (self.aggregation == "weighted") != (self.teacher_weights is not None):
            raise ConfigError("teacher_weights must be given exactly when aggregation='weighted'")


def teacher_bank_for_dataset(
    teachers: Sequence[Teacher],
    dataset: RetrievalDataset,
    cache: FeatureCache,
    video_keys: Mapping[str, str],
    path: str | Path | None = None,
) -> TeacherBank:
    """Every teacher's embeddings of `dataset`'s captions and videos (cached frame features), cached at `path`.

    A bank at `path` built for the same captions and videos is reused; teachers are not re-run.
    """
    video_ids = [v.video_id for v in dataset.videos]
    texts = [c.text for c in dataset.captions]
    key = content_key(texts, video_ids)
    if path is not None and Path(path).is_file():
        bank = TeacherBank.load(path)
        if bank.key == key and bank.names == [t.name for t in teachers]:
            return bank
    missing = [vid for vid in video_ids if vid not in video_keys or video_keys[vid] not in cache]
    if missing:
        raise DatasetFormatError(
            f"{len(missing)} training videos have no cached features, e.g. {missing[:5]}; "
            "extract them first (vitr.model.extract.extract_features)"
        )
    frames, mask = cache.stacked([video_keys[vid] for vid in video_ids])  # (V, T, D), (V, T)
    bank = build_teacher_bank(teachers, texts, frames, mask, video_ids)
    if path is not None:
        bank.save(path)
    return bank


class TeachTextTargets:
    """Teacher side of a training step: (caption idx (B,), video idx (B,)) -> teacher matrices and L_d."""

    def __init__(self, bank: TeacherBank, config: TeachTextConfig | None = None) -> None:
        self.bank = bank
        self.config = config or TeachTextConfig()
        if self.config.teacher_weights is not None and len(self.config.teacher_weights) != len(bank.names):
            raise ConfigError(f"{len(self.config.teacher_weights)} teacher_weights for teachers {bank.names}")

    def matrices(self, caption_index: torch.Tensor, video_index: torch.Tensor) -> list[torch.Tensor]:
        """Per teacher (B, B): row i = caption_index[i], column j = video_index[j]."""
        return self.bank.matrices(caption_index, video_index, logits=self.config.scores == "logits")

    def __call__(self, caption_index: torch.Tensor, video_index: torch.Tensor) -> torch.Tensor:
        """The aggregated teacher matrix S̄ (B, B) for the batch."""
        cfg = self.config
        return aggregate_teachers(self.matrices(caption_index, video_index), cfg.aggregation, cfg.teacher_weights)

    def loss(
        self,
        student_scores: torch.Tensor,
        caption_index: torch.Tensor,
        video_index: torch.Tensor,
        logit_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """weight * L_d for the student's cosine matrix (B, B); `logit_scale` is needed when scores="logits"."""
        cfg = self.config
        if cfg.scores == "logits":
            if logit_scale is None:
                raise ConfigError("teachtext scores='logits' needs the student's logit_scale")
            student_scores = logit_scale.exp() * student_scores
        teachers = [m.to(student_scores.device) for m in self.matrices(caption_index, video_index)]
        return cfg.weight * distillation_loss(
            student_scores, teachers, cfg.aggregation, cfg.teacher_weights, cfg.loss, cfg.beta
        )

    def extra_loss(
        self,
        text_emb: torch.Tensor,
        video_emb: torch.Tensor,
        sample_index: torch.Tensor,
        video_index: torch.Tensor,
        logit_scale: torch.Tensor,
    ) -> torch.Tensor:
        """The term a trainer adds to L_r: text (B, E), video (B, E) of the student, the batch's sample indices
        (= caption indices of a `CachedPairDataset` with no skipped video) and video indices -> weight * L_d."""
        return self.loss(text_emb @ video_emb.T, sample_index, video_index, logit_scale)


# ------------------------------------------------------------------------------------------ noisy captions
def caption_ranks(
    bank: TeacherBank,
    video_of_caption: Sequence[int] | np.ndarray | torch.Tensor,
    aggregation: Aggregation = "mean",
    weights: Sequence[float] | None = None,
    chunk: int = 1024,
) -> torch.Tensor:
    """(C,) 0-based rank of each caption's own video among all V videos under the aggregated teacher scores.

    Ties count half (the official metric's tie averaging), so a caption all teachers score flat gets a middle
    rank, not rank 0. A low rank means the teachers agree the caption describes its video.
    """
    own = torch.as_tensor(np.asarray(video_of_caption), dtype=torch.long)
    if own.shape != (bank.num_captions,):
        raise ValueError(f"need the video of each of the bank's {bank.num_captions} captions, got {tuple(own.shape)}")
    ranks = []
    for start in range(0, bank.num_captions, chunk):
        rows = torch.arange(start, min(start + chunk, bank.num_captions))
        scores = aggregate_teachers(bank.scores_against_all(rows), aggregation, weights)  # (b, V)
        target = scores.gather(1, own[rows].unsqueeze(1))  # (b, 1)
        higher = (scores > target).sum(dim=1).float()
        tied = (scores == target).sum(dim=1).float() - 1  # the own video always ties with itself
        ranks.append(higher + 0.5 * tied)
    return torch.cat(ranks)


@dataclass
class CaptionFilterConfig:
    """Which captions to drop or down-weight, from their `caption_ranks`.

    rank: keep captions whose own video ranks < max_rank (the official mask names "less100"/"less80");
    fraction: drop the worst `fraction` of captions by rank; weight: keep all, weight = min(1, max_rank/(rank+1)).
    `keep_one_per_video` never leaves a video without a caption (its best-ranked one stays).
    """

    rule: FilterRule = "rank"
    max_rank: float = 100.0
    fraction: float = 0.1
    keep_one_per_video: bool = True

    def __post_init__(self) -> None:
        if self.rule not in ("rank", "fraction", "weight"):
            raise ConfigError(f"filter rule must be 'rank', 'fraction' or 'weight', got {self.rule!r}")
        if self.max_rank <= 0:
            raise ConfigError(f"max_rank must be positive, got {self.max_rank}")
        if not 0 <= self.fraction < 1:
            raise ConfigError(f"fraction must lie in [0, 1), got {self.fraction}")


@dataclass
class CaptionFilterResult:
    config: CaptionFilterConfig
    ranks: np.ndarray  # (C,) float
    keep: np.ndarray  # (C,) bool
    weights: np.ndarray  # (C,) float in [0, 1]
    dataset: RetrievalDataset  # the kept captions (all videos)
    source: RetrievalDataset = field(repr=False)  # the dataset that was filtered

    @property
    def removed(self) -> np.ndarray:
        """Caption indices (into `source.captions`) that were dropped."""
        return np.flatnonzero(~self.keep)


def filter_captions(
    dataset: RetrievalDataset, ranks: torch.Tensor | np.ndarray, config: CaptionFilterConfig | None = None
) -> CaptionFilterResult:
    """Apply a `CaptionFilterConfig` to the teachers' `caption_ranks` of `dataset.captions`."""
    cfg = config or CaptionFilterConfig()
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.shape != (len(dataset.captions),):
        raise ValueError(f"{ranks.shape[0]} ranks for {len(dataset.captions)} captions")
    weights = np.ones_like(ranks)
    if cfg.rule == "rank":
        keep = ranks < cfg.max_rank
    elif cfg.rule == "fraction":
        drop = int(round(cfg.fraction * len(ranks)))
        keep = np.ones(len(ranks), dtype=bool)
        if drop:
            keep[np.argsort(-ranks, kind="stable")[:drop]] = False
    else:
        keep = np.ones(len(ranks), dtype=bool)
        weights = np.minimum(1.0, cfg.max_rank / (ranks + 1.0))
    if cfg.keep_one_per_video:
        best: dict[str, int] = {}
        for i, c in enumerate(dataset.captions):
            if c.video_id not in best or ranks[i] < ranks[best[c.video_id]]:
                best[c.video_id] = i
        keep[list(best.values())] = True
    kept = [c for c, k in zip(dataset.captions, keep, strict=True) if k]
    filtered = RetrievalDataset(dataset.name, dataset.split, list(dataset.videos), kept, dataset.paragraph)
    return CaptionFilterResult(cfg, ranks, keep, np.where(keep, weights, 0.0), filtered, dataset)


def write_filter_report(
    result: CaptionFilterResult, directory: str | Path, stem: str = "caption_filter"
) -> tuple[Path, Path]:
    """`<stem>.csv`: every removed (or down-weighted) caption; `<stem>.json`: the rule and the counts."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    listed = np.flatnonzero(~result.keep | (result.weights < 1.0))
    csv_path, json_path = directory / f"{stem}.csv", directory / f"{stem}.json"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["caption_index", "video_id", "caption", "rank", "removed", "weight"])
        for i in listed:
            c = result.source.captions[i]
            writer.writerow(
                [
                    int(i),
                    c.video_id,
                    c.text,
                    f"{result.ranks[i]:.1f}",
                    bool(not result.keep[i]),
                    f"{result.weights[i]:.4f}",
                ]
            )
    summary = {
        "filter": asdict(result.config),
        "captions": len(result.keep),
        "removed": int((~result.keep).sum()),
        "down_weighted": int(((result.weights < 1.0) & result.keep).sum()),
        "removed_captions": [
            {
                "caption_index": int(i),
                "video_id": result.source.captions[i].video_id,
                "caption": result.source.captions[i].text,
                "rank": float(result.ranks[i]),
            }
            for i in result.removed
        ],
    }
    json_path.write_text(json.dumps(summary, indent=2))
    return csv_path, json_path


def filter_precision_recall(flagged: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision and recall of flagged captions against known-noisy ones (both (C,) bool)."""
    flagged, truth = np.asarray(flagged, dtype=bool), np.asarray(truth, dtype=bool)
    hits = int((flagged & truth).sum())
    return {
        "precision": hits / max(1, int(flagged.sum())),
        "recall": hits / max(1, int(truth.sum())),
        "flagged": int(flagged.sum()),
        "noisy": int(truth.sum()),
        "chance_precision": float(truth.mean()) if len(truth) else 0.0,
    }
