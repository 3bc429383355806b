"""PS-SCL: contrastive fine-tuning on pseudo pairs with SeLeCT, alone or mixed with labelled pairs.

PS-SCL is what the paper describes, plugged into the one training loop (`vitr.train.trainer.Trainer`):

- a data source, `PsSclSource`: the pseudo pair pool, each epoch every video drawing one of its texts (uniform,
  or softmax(r / T) over the teacher scores r), batches of B videos (ps_scl.md §6 (b)); for the gmm/soft rules it
  fits the epoch's 2-GMM on the per-pair losses of every drawn pair under the current model first;
- a per-pair selection inside the loss (SeLeCT, `vitr.losses.selection`), the same source's `__call__`:
  w = SeLeCT weights of the global batch (labelled pairs exempt: always 1), loss = sum(w l) / max(sum(w), 1);
- optionally a zero-shot anchor term, `AnchorTerm`.

One text per video per batch keeps every in-batch negative a true negative. AMP, gradient accumulation, DDP,
exact resume (the epoch's mixture fit and the kept shares are in the checkpoint), validation and logs are the
trainer's, so a PS-SCL run and a supervised run differ only in the data and the selection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import torch

from vitr.data.types import RetrievalDataset
from vitr.errors import ConfigError, DatasetFormatError
from vitr.heads.meanp import masked_mean_pool
from vitr.losses.selection import clean_probability, pair_weights
from vitr.model.retrieval import VideoTextModel
from vitr.pseudo.label import PseudoLabel
from vitr.pseudo.texts import FORMS
from vitr.train.config import Anchor, PsSclConfig, TrainConfig
from vitr.train.distributed import DistContext, init_distributed
from vitr.train.sources import LossTerm, PairBatch, PairScorer, StepOutputs
from vitr.train.trainer import Trainer, reverse_frames

ANCHORS: tuple[str, ...] = get_args(Anchor)
Tokenize = Callable[[Sequence[str]], torch.Tensor]
ValFn = Callable[[VideoTextModel], Mapping[str, float]]

__all__ = [
    "ANCHORS",
    "AnchorTerm",
    "PairPool",
    "PsSclConfig",
    "PsSclHistory",
    "PsSclSource",
    "draw_texts",
    "pool_from_dataset",
    "pool_from_pseudo_labels",
    "ps_scl_trainer",
    "relation_anchor",
    "reverse_frames",
    "train_ps_scl",
    "zero_shot_anchor",
]


@dataclass
class PairPool:
    """Videos (cached frame features) with one or more texts each; pseudo videos go through selection."""

    frames: torch.Tensor  # (N, T, D)
    mask: torch.Tensor  # (N, T)
    tokens: torch.Tensor  # (M, L) every text of every video
    text_video: torch.Tensor  # (M,) long: the video of each text
    teacher: torch.Tensor  # (M,) frozen-teacher cosine of (video, text); 0 where unknown
    pseudo: torch.Tensor  # (N,) bool: the video's texts are pseudo-texts (selected) or labels (exempt)
    form: torch.Tensor | None = None  # (M,) long: each text's form (index in FORMS; -1 a label), for stratified SeLeCT

    def __post_init__(self) -> None:
        n = len(self.frames)
        if self.mask.shape != self.frames.shape[:2] or len(self.pseudo) != n:
            raise DatasetFormatError("frames, mask and pseudo flags of a pair pool disagree in size")
        if self.form is None:
            self.form = torch.full((len(self.text_video),), -1, dtype=torch.long)
        if not len(self.tokens) == len(self.teacher) == len(self.form) == len(self.text_video):
            raise DatasetFormatError("tokens, text owners, teacher scores and forms of a pair pool disagree in size")
        without = sorted(set(range(n)) - set(self.text_video.tolist()))
        if without:
            raise DatasetFormatError(f"{len(without)} videos of the pair pool have no text, e.g. rows {without[:5]}")

    def __len__(self) -> int:
        return len(self.frames)

    def still(self) -> torch.Tensor:
        """(N,) bool: pseudo videos without a temporal pseudo-text, those the tagger saw nothing change in."""
        moving = torch.zeros(len(self), dtype=torch.bool)
        moving[self.text_video[self.form == FORMS.index("temporal")]] = True
        return self.pseudo & ~moving

    def concat(self, other: PairPool) -> PairPool:
        """This pool followed by `other` (e.g. pseudo-labelled pool + labelled split)."""
        length = max(self.tokens.shape[1], other.tokens.shape[1])
        return PairPool(
            torch.cat([self.frames, other.frames]),
            torch.cat([self.mask, other.mask]),
            torch.cat([_pad(self.tokens, length), _pad(other.tokens, length)]),
            torch.cat([self.text_video, other.text_video + len(self)]),
            torch.cat([self.teacher, other.teacher]),
            torch.cat([self.pseudo, other.pseudo]),
            torch.cat([self.form, other.form]),
        )


def _pad(tokens: torch.Tensor, length: int) -> torch.Tensor:
    return torch.nn.functional.pad(tokens, (0, length - tokens.shape[1]))


def pool_from_pseudo_labels(
    labels: Sequence[PseudoLabel],
    frames: torch.Tensor,
    mask: torch.Tensor,
    tokenize: Tokenize,
    forms: Sequence[str] = (),
) -> PairPool:
    """labels[i] describes the video of frames[i] (N, T, D); videos left without a text are an error."""
    if len(labels) != len(frames):
        raise DatasetFormatError(f"{len(labels)} pseudo-labels for {len(frames)} videos")
    texts, owners, scores, kinds = [], [], [], []
    for i, label in enumerate(labels):
        for t in label.texts:
            if not forms or t["form"] in forms:
                texts.append(t["text"])
                owners.append(i)
                scores.append(float(t.get("score") or 0.0))
                kinds.append(FORMS.index(t["form"]) if t["form"] in FORMS else len(FORMS))
    return PairPool(
        frames,
        mask,
        tokenize(texts),
        torch.tensor(owners, dtype=torch.long),
        torch.tensor(scores, dtype=torch.float32),
        torch.ones(len(frames), dtype=torch.bool),
        torch.tensor(kinds, dtype=torch.long),
    )


def pool_from_dataset(
    dataset: RetrievalDataset, frames: torch.Tensor, mask: torch.Tensor, tokenize: Tokenize
) -> PairPool:
    """Labelled pairs: frames[i] (N, T, D) belong to dataset.videos[i]; its captions are exempt from selection."""
    index = dataset.video_index()
    owners = [index[c.video_id] for c in dataset.captions]
    return PairPool(
        frames,
        mask,
        tokenize([c.text for c in dataset.captions]),
        torch.tensor(owners),
        torch.zeros(len(owners)),
        torch.zeros(len(frames), dtype=torch.bool),
    )


def draw_texts(
    pool: PairPool, generator: torch.Generator, sampling: str = "uniform", temperature: float = 0.1
) -> torch.Tensor:
    """One text per video: (N,) indices into pool.tokens, uniform or by softmax(teacher / temperature)."""
    logits = pool.teacher / temperature if sampling == "teacher" else torch.zeros_like(pool.teacher)
    noise = -torch.log(-torch.log(torch.rand(len(logits), generator=generator).clamp(1e-12, 1 - 1e-12)))
    keyed = logits + noise  # Gumbel-max: argmax per video samples its softmax
    best = torch.full((len(pool),), -math.inf)
    best = best.scatter_reduce(0, pool.text_video, keyed, reduce="amax")
    is_best = keyed == best[pool.text_video]
    chosen = torch.full((len(pool),), -1, dtype=torch.long)
    chosen[pool.text_video[is_best]] = torch.nonzero(is_best).flatten()
    return chosen


class PsSclSource:
    """The pool as the trainer's data source and SeLeCT as its pair selection (`vitr.train.sources`).

    Epoch e's text draw and video order come from a generator seeded with (seed, e) alone, so every rank and a
    resumed run see the same batches. Each micro-batch is B = batch_size / grad_accum videos; rank r takes the
    r-th slice. The selection runs on the global batch after the gather, so every rank keeps the same pairs.
    """

    def __init__(self, pool: PairPool, config: TrainConfig, dist: DistContext | None = None) -> None:
        if config.ps_scl is None:
            raise ConfigError("a PS-SCL run needs a ps_scl section in its config")
        dist = dist or DistContext()
        self.pool = pool
        self.ps = config.ps_scl
        self.seed = config.seed
        self.micro = config.batch_size // config.grad_accum
        if self.micro % dist.world_size:
            raise ConfigError(f"micro-batch {self.micro} is not divisible by {dist.world_size} processes")
        self.local = self.micro // dist.world_size
        self.rank = dist.rank
        self.still = pool.still()
        self.clean: torch.Tensor | None = None  # (steps * B,) the epoch's clean posteriors, in batch order
        self.clean_epoch = -1  # the epoch `clean` belongs to
        self.kept: list[float] = []  # per micro-batch: weight mass of the pseudo pairs / their count

    def __len__(self) -> int:
        return len(self.pool)

    def num_batches(self, epoch: int) -> int:
        return len(self.pool) // self.micro

    def plan(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(texts (N,): the text each video draws this epoch, order (N,): the video order)."""
        generator = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        texts = draw_texts(self.pool, generator, self.ps.text_sampling, self.ps.text_temperature)
        return texts, torch.randperm(len(self.pool), generator=generator)

    def prepare_epoch(self, epoch: int, score_pairs: PairScorer) -> None:
        """NCR `eval_train`: per-pair losses of the epoch's batches under the current model, then the mixture's
        clean posterior, in batch order. Labelled pairs are left out of the fit."""
        sel = self.ps.selection
        if self.clean_epoch == epoch:  # resumed inside this epoch: the fit was made at its start
            return
        self.clean, self.clean_epoch = None, epoch
        if not sel.needs_clean_probability or epoch < sel.warmup_epochs:
            return
        texts, order = self.plan(epoch)
        steps = self.num_batches(epoch)
        losses = torch.cat([score_pairs(self._batch(texts, order, b)).cpu() for b in range(steps)])
        weak = self.pool.pseudo[order[: steps * self.micro]]
        prob = torch.ones_like(losses)
        if int(weak.sum()) >= 2:
            prob[weak] = clean_probability(losses[weak])
        self.clean = prob

    def batches(self, epoch: int, skip: int) -> Iterator[PairBatch]:
        texts, order = self.plan(epoch)
        for b in range(skip, self.num_batches(epoch)):
            yield self._batch(texts, order, b)

    def _batch(self, texts: torch.Tensor, order: torch.Tensor, b: int) -> PairBatch:
        first = b * self.micro + self.rank * self.local  # this rank's slice of global micro-batch b
        rows = order[first : first + self.local]
        drawn = texts[rows]
        pool = self.pool
        extras = {
            "teacher": pool.teacher[drawn],
            "exempt": (~pool.pseudo[rows]).float(),
            "group": pool.form[drawn],
            "still": self.still[rows].float(),
        }
        if self.clean is not None:
            extras["clean"] = self.clean[first : first + self.local]
        return PairBatch(pool.frames[rows], pool.mask[rows], pool.tokens[drawn], rows, drawn, extras)

    def __call__(self, per_pair: torch.Tensor, out: StepOutputs) -> torch.Tensor:
        """SeLeCT weights (B_total,) of the global batch at the step's fractional epoch."""
        exempt = out.extra("exempt").bool()
        weights = pair_weights(
            self.ps.selection,
            out.progress,
            per_pair,
            out.extra("teacher"),
            out.extra("clean") if "clean" in out.batch.extras else None,
            exempt=exempt,
            groups=out.extra("group"),
        )
        weak = ~exempt
        self.kept.append(float(weights[weak].mean()) if weak.any() else 1.0)
        return weights

    def state_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean if self.clean is not None else torch.empty(0),
            "has_clean": self.clean is not None,
            "clean_epoch": self.clean_epoch,
            "kept": torch.tensor(self.kept, dtype=torch.float64),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.clean = state["clean"] if state["has_clean"] else None
        self.clean_epoch = int(state["clean_epoch"])
        self.kept = state["kept"].tolist()


class AnchorTerm:
    """anchor_weight x the configured zero-shot anchor on the global batch (a `LossTerm`)."""

    def __init__(self, config: PsSclConfig) -> None:
        self.config = config
        self.needs_reversed = config.anchor == "symmetric"

    def __call__(self, out: StepOutputs) -> torch.Tensor:
        frames, mask = out.inputs()
        held = out.extra("still").bool()
        return self.config.anchor_weight * anchor_loss(self.config, out.video, frames, mask, held, out.reversed_video)


@dataclass
class PsSclHistory:
    loss: list[float] = field(default_factory=list)  # per step
    kept: list[float] = field(default_factory=list)  # per micro-batch: weight mass of pseudo pairs / their count
    metrics: list[dict[str, float]] = field(default_factory=list)  # per validation, from val_fn


def ps_scl_trainer(
    model: VideoTextModel,
    pool: PairPool,
    config: TrainConfig,
    val_fn: ValFn | None = None,
    dist_ctx: DistContext | None = None,
    extra_losses: Sequence[LossTerm] = (),
) -> Trainer:
    """The trainer of a PS-SCL run on `pool` (cached features): its source and selection, plus the anchor."""
    if config.ps_scl is None:
        raise ConfigError("a PS-SCL run needs a ps_scl section in its config")
    dist = dist_ctx or init_distributed(config.device)
    source = PsSclSource(pool, config, dist)
    terms = [*extra_losses]
    if config.ps_scl.anchor_weight:
        terms.append(AnchorTerm(config.ps_scl))
    return Trainer(model, config, source, val_fn=val_fn, dist_ctx=dist, extra_losses=terms, selection=source)


def train_ps_scl(
    model: VideoTextModel,
    pool: PairPool,
    config: TrainConfig,
    val_fn: ValFn | None = None,
    dist_ctx: DistContext | None = None,
) -> PsSclHistory:
    """Train `model` in place on `pool` under `config` (with its `ps_scl` section); returns losses, kept shares and
    validation metrics. Checkpoints go to config.output_dir; a run there resumes."""
    trainer = ps_scl_trainer(model, pool, config, val_fn, dist_ctx)
    trainer.fit()
    model.eval()
    return PsSclHistory(trainer.history, trainer.selection.kept, trainer.val_history)


def anchor_loss(
    config: PsSclConfig,
    video_emb: torch.Tensor,
    frames: torch.Tensor,
    mask: torch.Tensor,
    still: torch.Tensor | None = None,
    reversed_emb: torch.Tensor | None = None,
) -> torch.Tensor:
    """The configured anchor on a batch (unweighted): video_emb (B, E), frames (B, T, D), mask (B, T); `still` (B,)
    marks the videos the "still" anchor holds (None: all); `reversed_emb` (B, E) is needed by "symmetric"."""
    if config.anchor == "still" and still is not None:
        if not still.any():
            return video_emb.new_zeros(())
        return zero_shot_anchor(video_emb[still], frames[still], mask[still])
    if config.anchor == "relation":
        return relation_anchor(video_emb, frames, mask, config.anchor_temperature)
    if config.anchor == "symmetric":
        if reversed_emb is None:
            raise ConfigError("the symmetric anchor needs the embeddings of the reversed videos")
        unit = torch.nn.functional.normalize
        video_emb = (unit(video_emb, dim=-1) + unit(reversed_emb, dim=-1)) / 2
    return zero_shot_anchor(video_emb, frames, mask)


def _anchor_term(
    config: PsSclConfig,
    model: VideoTextModel,
    video_emb: torch.Tensor,
    frames: torch.Tensor,
    mask: torch.Tensor,
    still: torch.Tensor | None = None,
) -> torch.Tensor:
    """`anchor_loss` with the reversed embeddings computed by `model` (outside a training step)."""
    reversed_emb = None
    if config.anchor == "symmetric":
        reversed_emb = model.embed_video_features(reverse_frames(frames, mask), mask).float()
    return anchor_loss(config, video_emb, frames, mask, still, reversed_emb)


def zero_shot_anchor(
    video_emb: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, temperature: float = 0.01
) -> torch.Tensor:
    """mean over the batch of 1 - cos(trained video embedding (B, D), meanP of its frames (B, T, D)).

    `temperature` is unused; it keeps the signature of `relation_anchor`.
    """
    target = _zero_shot_target(video_emb, frames, mask)
    return (1 - torch.nn.functional.cosine_similarity(video_emb, target, dim=-1)).mean()


def relation_anchor(
    video_emb: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, temperature: float = 0.01
) -> torch.Tensor:
    """KL from the zero-shot video-to-video retrieval distribution of a batch to the trained one, diagonal out.

    Only how the batch's videos rank each other is kept, not where each embedding lies, so the head may still
    separate two videos that meanP cannot tell apart when the batch does not say otherwise.
    """
    target = _zero_shot_target(video_emb, frames, mask)
    emb = torch.nn.functional.normalize(video_emb, dim=-1)
    b = len(emb)
    if b < 3:
        raise ConfigError(f"the relation anchor needs a batch of at least 3 videos, got {b}")
    off = ~torch.eye(b, dtype=torch.bool, device=emb.device)
    student = (emb @ emb.T)[off].view(b, b - 1) / temperature
    teacher = (target @ target.T)[off].view(b, b - 1) / temperature
    return torch.nn.functional.kl_div(
        student.log_softmax(-1), teacher.log_softmax(-1), log_target=True, reduction="batchmean"
    )


def _zero_shot_target(video_emb: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """meanP of the frames (B, D), unit, no gradient reaches the cache; refuses heads outside CLIP's space."""
    if video_emb.shape[-1] != frames.shape[-1]:
        raise ConfigError(
            f"the zero-shot anchor compares video embeddings with CLIP's frame space ({frames.shape[-1]}-d), but this "
            f"head embeds a video in {video_emb.shape[-1]} dims; use meanP, seqTransf or TDB, or anchor_weight 0"
        )
    return masked_mean_pool(frames.float(), mask.float())
