"""PS-SCL training: contrastive fine-tuning on pseudo pairs with SeLeCT, alone or mixed with labelled pairs.

The loop (ps_scl.md §6 (b)), on cached frame features:

    for epoch e:
        each video draws one of its texts (uniform, or softmax(r / T) over the teacher scores r)
        [gmm/soft rules: per-pair losses of every drawn pair under the current model -> 2-GMM -> clean posterior]
        for each batch of B videos:
            l = per-pair symmetric InfoNCE summed over the head's score terms        # (B,)
            w = SeLeCT weights (labelled pairs exempt: always 1)                       # (B,)
            loss = sum(w l) / max(sum(w), 1)

One text per video per batch keeps every in-batch negative a true negative. The optimiser, parameter groups,
freezing and lr schedule are the trainer's (`vitr.train.optim`, `vitr.train.schedule`), so a PS-SCL run and a
supervised run differ only in the data and the selection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import torch
from tqdm.auto import tqdm

from vitr.data.types import RetrievalDataset
from vitr.errors import ConfigError, DatasetFormatError
from vitr.heads.meanp import masked_mean_pool
from vitr.losses.selection import (
    SelectionConfig,
    clean_probability,
    keep_ratio,
    pair_weights,
    per_pair_retrieval_loss,
    selective_loss,
)
from vitr.model.retrieval import VideoTextModel
from vitr.pseudo.label import PseudoLabel
from vitr.pseudo.texts import FORMS
from vitr.train.checkpoint import LATEST, save_checkpoint
from vitr.train.config import TrainConfig, config_to_dict
from vitr.train.distributed import training_device
from vitr.train.optim import build_optimizer, configure_trainable
from vitr.train.schedule import apply_lr, lr_factor
from vitr.train.trainer import MAX_LOGIT_SCALE, seed_everything
from vitr.train.wise_ft import snapshot_trainable, weight_space_ensemble

Anchor = Literal["feature", "relation", "symmetric", "still"]
ANCHORS: tuple[str, ...] = get_args(Anchor)
Tokenize = Callable[[Sequence[str]], torch.Tensor]
ValFn = Callable[[VideoTextModel], Mapping[str, float]]


@dataclass
class PsSclConfig:
    """A PS-SCL run: the trainer's optimisation settings plus selection and text sampling."""

    train: TrainConfig = field(default_factory=TrainConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    text_sampling: Literal["uniform", "teacher"] = "uniform"  # teacher: softmax(r / text_temperature) per video
    text_temperature: float = 0.1
    save: bool = False  # write the final model under train.output_dir/checkpoints
    # WiSE-FT drift guard (ps_scl.md §4 #15): average the trained weights with the starting (zero-shot) ones,
    # theta = (1 - alpha) theta_0 + alpha theta; None: off (the paper does not use it)
    wise_alpha: float | None = None
    # zero-shot anchor (not in the paper): + anchor_weight * mean_i (1 - cos(f(v_i), meanP(v_i))), which keeps each
    # trained video embedding near the zero-shot one of the same frames, so a head that learns time from
    # pseudo-texts does not forget what CLIP saw in a frame (feature distillation against forgetting, as ZSCL,
    # Zheng et al., ICCV 2023); 0: off. Needs a head whose video embedding lives in CLIP's space (meanP,
    # seqTransf, TDB), not TAB's concatenation.
    anchor_weight: float = 0.0
    # what the anchor keeps: "feature" each embedding itself (above); "relation" only the batch's video-to-video
    # retrieval distribution, KL(softmax(S0 / T) || softmax(S / T)) per row with S0, S the zero-shot and trained cosine
    # matrices, diagonal out (relational distillation, Park et al., CVPR 2019; ZSCL distils a distribution too).
    # A relation leaves room to move a video away from its time-reversed twin, which a feature anchor forbids.
    # "symmetric" anchors only the order-free half of the embedding, (f(v) + f(reversed v)) / 2, to meanP: a still
    # video (its own reversal) is held in full, a moving one may leave meanP along what its order says.
    # "still" holds only the pseudo videos in which the tagger saw nothing change (no temporal pseudo-text), in full,
    # and leaves those it saw change free: the pseudo-labels say which videos time may move.
    anchor: Anchor = "feature"
    anchor_temperature: float = 0.01  # T of the relation anchor: 1 / CLIP's learned logit scale of 100

    def __post_init__(self) -> None:
        if self.text_temperature <= 0:
            raise ConfigError(f"text_temperature must be positive, got {self.text_temperature}")
        if self.wise_alpha is not None and not 0.0 <= self.wise_alpha <= 1.0:
            raise ConfigError(f"wise_alpha must lie in [0, 1], got {self.wise_alpha}")
        if self.anchor_weight < 0:
            raise ConfigError(f"anchor_weight must be >= 0, got {self.anchor_weight}")
        if self.anchor not in ANCHORS:
            raise ConfigError(f"anchor must be one of {ANCHORS}, got {self.anchor!r}")
        if self.anchor_temperature <= 0:
            raise ConfigError(f"anchor_temperature must be positive, got {self.anchor_temperature}")
        if self.train.freeze == "none":
            raise ConfigError("PS-SCL trains on cached frame features; use train.freeze=visual or all")


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


@dataclass
class PsSclHistory:
    loss: list[float] = field(default_factory=list)  # per step
    kept: list[float] = field(default_factory=list)  # per step: weight mass of pseudo pairs / their count
    metrics: list[dict[str, float]] = field(default_factory=list)  # per epoch, from val_fn


def train_ps_scl(
    model: VideoTextModel, pool: PairPool, config: PsSclConfig, val_fn: ValFn | None = None, progress: bool = True
) -> PsSclHistory:
    """Train `model` in place on `pool` (cached features) with SeLeCT; returns losses, kept shares, metrics."""
    cfg, sel = config.train, config.selection
    device = training_device(cfg.device)
    model.to(device)
    configure_trainable(model, cfg.freeze, cfg.freeze_patterns)
    optimizer = build_optimizer(model, cfg)
    start = snapshot_trainable(model) if config.wise_alpha is not None else None
    batch = cfg.batch_size
    steps_per_epoch = len(pool) // batch
    if steps_per_epoch == 0:
        raise ConfigError(f"{len(pool)} videos do not fill one batch of {batch}; lower train.batch_size")
    total = steps_per_epoch * cfg.epochs
    seed_everything(cfg.seed)
    history = PsSclHistory()
    still = pool.still()
    bar = tqdm(total=total, desc="PS-SCL", unit="step", disable=not progress)
    step = 0
    for epoch in range(cfg.epochs):
        generator = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        texts = draw_texts(pool, generator, config.text_sampling, config.text_temperature)  # (N,)
        order = torch.randperm(len(pool), generator=generator)
        clean = None
        if sel.needs_clean_probability and epoch >= sel.warmup_epochs:
            clean = _epoch_clean_probability(model, pool, texts, order, batch, steps_per_epoch, device)
        model.train()
        for b in range(steps_per_epoch):
            rows = order[b * batch : (b + 1) * batch]
            apply_lr(optimizer, lr_factor(cfg.schedule, step, total, cfg.warmup))
            frames, mask = pool.frames[rows].to(device), pool.mask[rows].to(device)
            video_emb, text_emb = _pair_embeddings(model, frames, mask, pool.tokens[texts[rows]].to(device))
            per_pair = per_pair_retrieval_loss(model.head, text_emb, video_emb, model.logit_scale.float())
            weights = pair_weights(
                sel,
                epoch + b / steps_per_epoch,
                per_pair.detach(),
                pool.teacher[texts[rows]].to(device),
                None if clean is None else clean[b * batch : (b + 1) * batch].to(device),
                exempt=~pool.pseudo[rows].to(device),
                groups=pool.form[texts[rows]].to(device),
            )
            loss = selective_loss(per_pair, weights)
            if config.anchor_weight:
                held = still[rows].to(device)
                loss = loss + config.anchor_weight * _anchor_term(config, model, video_emb, frames, mask, held)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            params = [p for p in model.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(max=MAX_LOGIT_SCALE)
            step += 1
            weak = pool.pseudo[rows].to(device)
            history.loss.append(loss.item())
            history.kept.append(float(weights[weak].mean()) if weak.any() else 1.0)
            bar.update(1)
            bar.set_postfix(loss=f"{history.loss[-1]:.3f}", rho=f"{keep_ratio(epoch, sel.tau, sel.t_k):.2f}")
        if val_fn is not None:
            model.eval()
            with torch.no_grad():
                history.metrics.append({k: float(v) for k, v in val_fn(model).items()})
    bar.close()
    model.eval()
    if start is not None:
        weight_space_ensemble(model, start, config.wise_alpha)
    if config.save:
        info = {
            "epoch": cfg.epochs,
            "step_in_epoch": 0,
            "total_steps": total,
            "world_size": 1,
            "best_metric": cfg.best_metric,
            "best_value": None,
            "metrics": history.metrics[-1] if history.metrics else {},
            "config": config_to_dict(cfg),
        }
        state = {"loss_history": torch.tensor(history.loss, dtype=torch.float64)}
        save_checkpoint(Path(cfg.output_dir) / "checkpoints", step, model, info, state, (LATEST,))
    return history


def _anchor_term(
    config: PsSclConfig,
    model: VideoTextModel,
    video_emb: torch.Tensor,
    frames: torch.Tensor,
    mask: torch.Tensor,
    still: torch.Tensor | None = None,
) -> torch.Tensor:
    """The configured anchor on a batch; `still` (B,) marks the videos the "still" anchor holds (None: all)."""
    if config.anchor == "still" and still is not None:
        if not still.any():
            return video_emb.new_zeros(())
        return zero_shot_anchor(video_emb[still], frames[still], mask[still])
    if config.anchor == "relation":
        return relation_anchor(video_emb, frames, mask, config.anchor_temperature)
    if config.anchor == "symmetric":
        reversed_emb = model.embed_video_features(reverse_frames(frames, mask), mask).float()
        unit = torch.nn.functional.normalize
        video_emb = (unit(video_emb, dim=-1) + unit(reversed_emb, dim=-1)) / 2
    return zero_shot_anchor(video_emb, frames, mask)


def reverse_frames(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each video's valid frames (a prefix of T, as the cache pads) in reverse order; padding stays where it is."""
    t = torch.arange(frames.shape[1], device=frames.device)
    lengths = mask.sum(1).long()[:, None]
    index = torch.where(t < lengths, lengths - 1 - t, t)  # (B, T)
    return frames.gather(1, index[..., None].expand_as(frames))


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


def _pair_embeddings(
    model: VideoTextModel, frames: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's frames (B, T, D), mask (B, T) and drawn texts' tokens (B, L) -> video and text (B, E), fp32."""
    return model.embed_video_features(frames, mask).float(), model.embed_text(tokens).float()


def _per_pair_losses(
    model: VideoTextModel, pool: PairPool, rows: torch.Tensor, texts: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """rows (B,) videos, texts (B,) their drawn texts -> (B,) per-pair loss over the head's score terms."""
    video_emb, text_emb = _pair_embeddings(
        model, pool.frames[rows].to(device), pool.mask[rows].to(device), pool.tokens[texts].to(device)
    )
    return per_pair_retrieval_loss(model.head, text_emb, video_emb, model.logit_scale.float())


@torch.no_grad()
def _epoch_clean_probability(
    model: VideoTextModel,
    pool: PairPool,
    texts: torch.Tensor,
    order: torch.Tensor,
    batch: int,
    steps: int,
    device: torch.device,
) -> torch.Tensor:
    """NCR `eval_train`: per-pair losses of the epoch's batches under the current model, then the mixture's
    clean posterior, in batch order: (steps * B,). Labelled pairs are left out of the fit."""
    model.eval()
    losses = torch.cat(
        [
            _per_pair_losses(
                model, pool, order[b * batch : (b + 1) * batch], texts[order[b * batch : (b + 1) * batch]], device
            ).cpu()
            for b in range(steps)
        ]
    )
    weak = pool.pseudo[order[: steps * batch]]
    prob = torch.ones_like(losses)
    if int(weak.sum()) >= 2:
        prob[weak] = clean_probability(losses[weak])
    return prob
