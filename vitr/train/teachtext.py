"""TeachText glue for training: teacher matrices for a batch, the distillation term, and noisy-caption removal.

A `TeacherBank` built with `teacher_bank_for_dataset` holds a row per caption id and per video id
(`RetrievalDataset.caption_ids`), so a training set that loses a video (one that fails to decode) loses exactly
that video's rows: every other caption still meets its own teacher row. `TeachTextTargets.for_pairs` maps the
trainer's sample and video indices to bank rows by id.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitr.data.cache import FeatureCache
from vitr.data.types import RetrievalDataset
from vitr.errors import ConfigError, DatasetFormatError
from vitr.files import atomic_path, atomic_write
from vitr.losses.distill import Aggregation, aggregate_teachers, distillation_loss
from vitr.model.factory import build_model, weights_identity
from vitr.teachers import (
    BagOfWordsText,
    ModelTeacher,
    ProjectionTeacher,
    SentenceEncoderText,
    TeacherFitConfig,
    fit_teacher,
)
from vitr.teachers.bank import TeacherBank, build_teacher_bank, content_key, tensors_digest
from vitr.teachers.base import Teacher
from vitr.train.checkpoint import resolve_weights
from vitr.train.config import CaptionFilterConfig, TeacherSpec, TeachTextConfig
from vitr.train.datasets import CachedPairDataset
from vitr.train.sources import StepOutputs

# A video-side teacher (its spec, the built model) -> its frames of the bank's videos, (V, T', D') and mask (V, T'),
# in the dataset's video order.
OwnFrames = Callable[[TeacherSpec, ModelTeacher], tuple[torch.Tensor, torch.Tensor]]

__all__ = [
    "CaptionFilterConfig",
    "CaptionFilterResult",
    "TeachTextConfig",
    "TeachTextTargets",
    "caption_ranks",
    "filter_captions",
    "filter_precision_recall",
    "teacher_bank_for_dataset",
    "write_filter_report",
]


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
        if bank.key == key and bank.names == [t.name for t in teachers] and bank.caption_ids:
            return bank
    missing = [vid for vid in video_ids if vid not in video_keys or video_keys[vid] not in cache]
    if missing:
        raise DatasetFormatError(
            f"{len(missing)} training videos have no cached features, e.g. {missing[:5]}; "
            "extract them first (vitr.inference.extract.extract_features)"
        )
    frames, mask = cache.stacked([video_keys[vid] for vid in video_ids])  # (V, T, D), (V, T)
    bank = build_teacher_bank(teachers, texts, frames, mask, video_ids, caption_ids=dataset.caption_ids())
    if path is not None:
        bank.save(path)
    return bank


class TeachTextTargets:
    """Teacher side of a training step: (caption idx (B,), video idx (B,)) -> teacher matrices and L_d."""

    def __init__(
        self,
        bank: TeacherBank,
        config: TeachTextConfig | None = None,
        caption_rows: torch.Tensor | None = None,
        video_rows: torch.Tensor | None = None,
    ) -> None:
        self.bank = bank
        self.config = config or TeachTextConfig()
        if self.config.teacher_weights is not None and len(self.config.teacher_weights) != len(bank.names):
            raise ConfigError(f"{len(self.config.teacher_weights)} teacher_weights for teachers {bank.names}")
        self.caption_rows = caption_rows  # (num_samples,) long: bank row of each training sample; None: identity
        self.video_rows = video_rows  # (num_videos,) long: bank row of each training video index; None: identity

    @classmethod
    def for_pairs(
        cls,
        bank: TeacherBank,
        pairs: CachedPairDataset,
        dataset: RetrievalDataset,
        config: TeachTextConfig | None = None,
    ) -> TeachTextTargets:
        """Targets for the trainer's samples of `pairs` (built from `dataset`), looked up in `bank` by caption and
        video id; a bank built for more captions or videos (a superset) serves as well."""
        if not bank.caption_ids or not bank.video_ids:
            raise ConfigError("the teacher bank has no caption ids (an old file); delete it to rebuild")
        caption_row = {cid: i for i, cid in enumerate(bank.caption_ids)}
        video_row = {vid: i for i, vid in enumerate(bank.video_ids)}
        missing = [cid for cid in pairs.caption_ids if cid not in caption_row]
        if missing:
            raise DatasetFormatError(
                f"the teacher bank has no rows for {len(missing)} training captions, e.g. {missing[:3]}; "
                "it was built for other data: delete it to rebuild"
            )
        captions = torch.tensor([caption_row[cid] for cid in pairs.caption_ids], dtype=torch.long)
        videos = torch.tensor([video_row.get(v.video_id, -1) for v in dataset.videos], dtype=torch.long)
        return cls(bank, config, captions, videos)

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

    def extra_loss(self, out: StepOutputs) -> torch.Tensor:
        """The term a trainer adds to L_r (a `LossTerm`): the student's text (B, E) @ video (B, E).T against the
        teachers' matrices of the batch's captions and videos -> weight * L_d."""
        captions, videos = out.sample_index.cpu(), out.video_index.cpu()
        if self.caption_rows is not None:
            captions = self.caption_rows[captions]
        if self.video_rows is not None:
            videos = self.video_rows[videos]
        return self.loss(out.text @ out.video.T, captions, videos, out.logit_scale)


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
    ids = dataset.caption_ids()  # stamped, so the kept captions keep the ids (and teacher rows) of the full set
    kept = [replace(c, caption_id=cid) for c, cid, k in zip(dataset.captions, ids, keep, strict=True) if k]
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
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as f:
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
    atomic_write(json_path, json.dumps(summary, indent=2))
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


# ------------------------------------------------------------------------------------ teachers from a recipe
def teacher_names(config: TeachTextConfig) -> list[str]:
    """Each teacher's name: its own, else its kind (numbered when there are several)."""
    several = len(config.teachers) > 1
    return [spec.name or (f"{spec.kind}{i}" if several else spec.kind) for i, spec in enumerate(config.teachers)]


def build_teachers(
    config: TeachTextConfig, dataset: RetrievalDataset, frames: torch.Tensor, mask: torch.Tensor, device: str = "cpu"
) -> list[Teacher]:
    """The recipe's teachers: trained vitr models as they are, projection teachers fitted on `dataset`'s captions
    over frames (V, T, D) / mask (V, T) of its videos (teachtext.md §1.1: shared video side, own text side)."""
    if not config.teachers:
        raise ConfigError("teachtext.teachers is empty: name at least one teacher (kind model, minilm or bow)")
    texts = [c.text for c in dataset.captions]
    video_of_caption = torch.as_tensor(dataset.caption_video_index())
    teachers: list[Teacher] = []
    for spec, name in zip(config.teachers, teacher_names(config), strict=True):
        if spec.kind in ("model", "video"):
            teachers.append(ModelTeacher(build_model(spec.model, device), name))
            continue
        text = (
            SentenceEncoderText.minilm(spec.embed_dim)
            if spec.kind == "minilm"
            else BagOfWordsText.from_corpus(texts, spec.embed_dim)
        )
        teacher = ProjectionTeacher(name, text, frames.shape[-1], spec.embed_dim)
        fit_teacher(
            teacher,
            teacher.featurize(texts),
            video_of_caption,
            frames,
            mask,
            TeacherFitConfig(epochs=spec.epochs, seed=spec.seed),
        )
        teachers.append(teacher.eval())
    return teachers


def with_resolved_checkpoints(config: TeachTextConfig) -> TeachTextConfig:
    """`config` with each model teacher's `checkpoint` resolved to a weights file (`resolve_weights`: a run's
    output directory means its latest checkpoint), so the bank's key is taken from the weights that teach."""
    teachers = [
        replace(spec, model=replace(spec.model, checkpoint=str(resolve_weights(spec.model.checkpoint))))
        if spec.model is not None and spec.model.checkpoint
        else spec
        for spec in config.teachers
    ]
    return replace(config, teachers=teachers)


def teacher_identity(spec: TeacherSpec) -> dict[str, Any]:
    """What a teacher is, for the bank's key: its spec, a model's weights named by their content
    (`weights_identity`), so a checkpoint rewritten in place rebuilds the bank and a moved one does not."""
    identity = asdict(spec)
    if spec.model is not None:
        identity["model"] = weights_identity(spec.model)
    return identity


def recipe_teacher_bank(
    config: TeachTextConfig,
    dataset: RetrievalDataset,
    frames: torch.Tensor,
    mask: torch.Tensor,
    path: str | Path,
    device: str = "cpu",
    own_frames: OwnFrames | None = None,
    teachers: Sequence[Teacher] | None = None,
) -> TeacherBank:
    """The bank of the recipe's teachers for `dataset` (frames (V, T, D) in its video order), cached at `path`:
    a bank there for the same captions, videos, teachers (`teacher_identity`: a model teacher by the content of
    its weights files, read once per call) and frame features (the teachers are fitted on them and embed them: a
    student with another backbone has other ones) is reused and no teacher is built or fitted.

    A teacher of kind `video` embeds the videos from its own frames, `own_frames(spec, teacher)` (V, T', D'), mask
    (V, T'), in the same video order (`vitr.train.video_distill.own_frames_reader`); the others share `frames`.
    `teachers`, the recipe's teachers already built by `build_teachers` (say, to score them on a test split too),
    are embedded as they are and their bank written to `path`, replacing any bank there.
    """
    config = with_resolved_checkpoints(config)
    names = teacher_names(config)
    texts, video_ids = [c.text for c in dataset.captions], [v.video_id for v in dataset.videos]
    specs = json.dumps([teacher_identity(spec) for spec in config.teachers], sort_keys=True)  # others: rebuild
    key = content_key(texts, [*video_ids, specs, tensors_digest(frames, mask)])
    if teachers is None and Path(path).is_file():
        bank = TeacherBank.load(path)
        if bank.key == key and bank.names == names and bank.caption_ids:
            return bank
    if teachers is not None and [t.name for t in teachers] != names:
        raise ValueError(f"teachers {[t.name for t in teachers]} are not the recipe's teachers {names}")
    if own_frames is None and any(spec.kind == "video" for spec in config.teachers):
        raise ConfigError("a teacher of kind 'video' reads its own frames: train it through vitr.train.pipeline")
    caption_ids = dataset.caption_ids()
    built = build_teachers(config, dataset, frames, mask, device) if teachers is None else teachers
    banks = []
    for spec, teacher in zip(config.teachers, built, strict=True):
        video, video_mask = own_frames(spec, teacher) if spec.kind == "video" else (frames, mask)
        banks.append(build_teacher_bank([teacher], texts, video, video_mask, video_ids, caption_ids=caption_ids))
    bank = TeacherBank.concat(banks, key)
    bank.save(path)
    return bank
