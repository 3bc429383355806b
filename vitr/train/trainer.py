"""Fine-tune a `VideoTextModel` on caption-video pairs with symmetric InfoNCE (CLIP4Clip's objective, §5, §7).

The one training loop of vitr: supervised fine-tuning, PS-SCL and TeachText differ only in the pieces plugged in
(`vitr.train.sources`): where batches come from, a per-pair selection, extra loss terms. One optimiser step:

    set this step's lr from the schedule
    for each of grad_accum micro-batches (from the data source):
        text (B, E), video (B, E) = model(batch)            # on this rank's slice of the global batch
        gather both over ranks -> (B_total, E)              # each rank scores the global batch
        loss = retrieval_loss(head, text, video, logit_scale)
            or, with a selection: sum_i w_i l_i / max(sum_i w_i, 1), w = selection(per-pair losses l)
        loss += each extra term (TeachText distillation, PS-SCL anchor)
        backward(loss / grad_accum)
    clip the global gradient norm; optimizer.step(); clamp logit_scale <= ln 100

Validation, checkpoints and logs happen between steps, at points that depend only on the step count, so every
rank takes them at the same time and a resumed run takes the same ones.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from vitr.errors import CheckpointError, ConfigError
from vitr.losses.infonce import retrieval_loss
from vitr.losses.selection import per_pair_retrieval_loss, selective_loss
from vitr.model.retrieval import VideoTextModel
from vitr.precision import autocast, resolve_autocast
from vitr.train.checkpoint import (
    BEST,
    LATEST,
    load_model_state,
    read_info,
    read_training_state,
    resolve_checkpoint,
    save_checkpoint,
)
from vitr.train.config import TrainConfig, config_to_dict, save_config
from vitr.train.distributed import DistContext, barrier, gather_no_grad, gather_with_grad, init_distributed
from vitr.train.optim import build_optimizer, configure_trainable
from vitr.train.schedule import apply_lr, lr_factor
from vitr.train.sources import (
    DatasetSource,
    DataSource,
    LossTerm,
    PairBatch,
    PairSelection,
    StepOutputs,
    restore_state,
    state_of,
)
from vitr.train.wise_ft import snapshot_trainable, weight_space_ensemble

ValFn = Callable[[VideoTextModel], Mapping[str, float]]
MAX_LOGIT_SCALE = math.log(100.0)
# A resumed run replays the same data order and schedule only if these are unchanged.
_RESUME_KEYS = ("batch_size", "grad_accum", "epochs", "seed", "distinct_videos", "schedule", "warmup", "ps_scl")


class PairForward(nn.Module):
    """The part of a step DDP wraps: a batch -> (text (B, E), video (B, E)) embeddings."""

    def __init__(self, model: VideoTextModel, end_to_end: bool, reversed_view: bool = False) -> None:
        super().__init__()
        self.model = model
        self.end_to_end = end_to_end
        self.reversed_view = reversed_view  # also embed each video's frames in reverse order (PS-SCL's anchor)

    def forward(
        self, video: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """video: (B, T, D) cached features, or (B, T, 3, S, S) pixels end-to-end; mask (B, T); tokens (B, L)
        -> text (B, E), video (B, E), and the reversed video (B, E) or None."""
        embed = self.model.embed_video if self.end_to_end else self.model.embed_video_features
        reversed_emb = embed(reverse_frames(video, mask), mask) if self.reversed_view else None
        return self.model.embed_text(tokens), embed(video, mask), reversed_emb


def reverse_frames(frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each video's valid frames (a prefix of T, as the cache pads) in reverse order; padding stays where it is."""
    t = torch.arange(frames.shape[1], device=frames.device)
    lengths = mask.sum(1).long()[:, None]
    index = torch.where(t < lengths, lengths - 1 - t, t)  # (B, T)
    index = index.view(*index.shape, *([1] * (frames.dim() - 2))).expand_as(frames)
    return frames.gather(1, index)


class ReweightedTerms:
    """A head whose score terms carry the weights of `TrainConfig.loss_weights` instead of its own."""

    def __init__(self, head: nn.Module, weights: Mapping[str, float]) -> None:
        self.head = head
        self.weights = dict(weights)

    def score_terms(self, text_emb: torch.Tensor, video_emb: torch.Tensor) -> dict[str, tuple[float, torch.Tensor]]:
        terms = self.head.score_terms(text_emb, video_emb)
        unknown = sorted(set(self.weights) - set(terms))
        if unknown:
            raise ConfigError(
                f"loss_weights names {unknown}, but head {type(self.head).__name__} has score terms {sorted(terms)}"
            )
        return {name: (self.weights.get(name, weight), scores) for name, (weight, scores) in terms.items()}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """This process's random generators as tensors and plain values (loadable with weights_only=True)."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached_gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": (version, torch.tensor(mt, dtype=torch.int64), gauss),
        "numpy": (torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached_gauss),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt.tolist()), gauss))
    keys, pos, has_gauss, cached_gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached_gauss))


class Trainer:
    """Trains `model` in place under `config` on `train_data`: a pair dataset (`CachedPairDataset`,
    `PixelPairDataset`, every caption a sample) or any `DataSource` (PS-SCL's pair pool).

    `selection` weights the pairs of every batch (SeLeCT); `extra_losses` are added to the loss (TeachText,
    anchors); their `state_dict`s, if they have one, go into every checkpoint with the source's. `val_fn(model) ->
    {metric: value}` runs on rank 0 in eval mode; the checkpoint with the best `config.best_metric` is kept as
    `best`. Launch with torchrun for several processes; nothing else changes.
    """

    def __init__(
        self,
        model: VideoTextModel,
        config: TrainConfig,
        train_data: Dataset | DataSource,
        val_fn: ValFn | None = None,
        dist_ctx: DistContext | None = None,
        extra_losses: Sequence[LossTerm] = (),
        selection: PairSelection | None = None,
    ) -> None:
        self.config = config
        self.extra_losses = list(extra_losses)
        self.selection = selection
        self.dist = dist_ctx or init_distributed(config.device)
        self.model = model.to(self.dist.device)
        self.val_fn = val_fn
        self.output_dir = Path(config.output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoints"

        self.frozen = configure_trainable(model, config.freeze, config.freeze_patterns)
        self.micro_batch = config.batch_size // config.grad_accum  # global, summed over ranks
        if isinstance(train_data, DataSource):
            self.source = train_data
        elif config.ps_scl is not None:  # a recipe section must never be silently ignored
            raise ConfigError("the config has a ps_scl section: train on a pair pool (vitr.train.ps_scl.train_ps_scl)")
        else:
            self.source = DatasetSource(
                train_data, self.micro_batch, config.seed, self.dist, config.distinct_videos, config.num_workers
            )
        self.steps_per_epoch = [self.source.num_batches(e) // config.grad_accum for e in range(config.epochs)]
        self.total_steps = sum(self.steps_per_epoch)
        if self.total_steps == 0:
            raise ConfigError(
                f"{len(self.source)} training pairs do not fill one batch of {config.batch_size}; lower batch_size"
            )
        self.loss_head = ReweightedTerms(model.head, config.loss_weights) if config.loss_weights else model.head

        self.step = 0  # optimiser updates done
        self.epoch = 0
        self.step_in_epoch = 0
        self.history: list[float] = []  # training loss of every step
        self.best_value: float | None = None
        self.last_metrics: dict[str, float] = {}
        self.val_history: list[dict[str, float]] = []  # every validation of this process's fit

        resume_from = resolve_checkpoint(self.checkpoint_dir, LATEST) if config.resume else None
        # WiSE-FT averages back towards the weights training starts from: the caller's model, before any resume
        self.start_weights = snapshot_trainable(model) if config.wise_alpha is not None else None
        if resume_from is not None:
            load_model_state(model, resume_from)
        self.optimizer = build_optimizer(model, config)
        # the recipe's precision ("auto": AMP at the GPU's fast dtype, none on a CPU) as one autocast dtype
        self.autocast_precision = resolve_autocast(config.precision, self.dist.device)
        self.scaler = torch.amp.GradScaler(self.dist.device.type, enabled=self.autocast_precision == "fp16")
        if resume_from is not None:
            self._restore(resume_from)
        else:
            seed_everything(config.seed + self.dist.rank)

        reversed_view = any(getattr(term, "needs_reversed", False) for term in self.extra_losses)
        forward = PairForward(model, end_to_end=config.freeze == "none", reversed_view=reversed_view)
        if self.dist.is_distributed:
            device_ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            forward = DistributedDataParallel(forward, device_ids=device_ids)
        self.forward = forward

    # ----------------------------------------------------------------------------------------------- the loop
    def fit(self, until_step: int | None = None) -> list[float]:
        """Train to the end of the last epoch (or only until `until_step` updates); returns the loss history."""
        stop = self.total_steps if until_step is None else min(until_step, self.total_steps)
        self.model.train()  # backbones load in eval mode
        writer = self._open_writer()
        bar = tqdm(
            total=stop,
            initial=self.step,
            desc="training",
            unit="step",
            disable=not (self.config.progress and self.dist.is_main),
        )
        try:
            for epoch in range(self.epoch, self.config.epochs):
                self._prepare_epoch(epoch)
                for micro_batches in self._epoch_batches(epoch):
                    loss, grad_norm = self._train_step(micro_batches)
                    self.step += 1
                    self.step_in_epoch += 1
                    self.history.append(loss)
                    epoch_done = self.step_in_epoch == self.steps_per_epoch[epoch]
                    if epoch_done:
                        self.epoch, self.step_in_epoch = epoch + 1, 0
                    if self.step == self.total_steps and self.start_weights is not None:
                        weight_space_ensemble(self.model, self.start_weights, self.config.wise_alpha)
                    self._log(writer, bar, loss, grad_norm)
                    self._checkpoint_if_due(writer, epoch_done, stop)
                    if self.step >= stop:
                        return self.history
                if self.steps_per_epoch[epoch] == 0:
                    self.epoch, self.step_in_epoch = epoch + 1, 0
            return self.history
        finally:
            bar.close()
            if writer is not None:
                writer.close()

    def _prepare_epoch(self, epoch: int) -> None:
        """Let the source look at the model before an epoch (PS-SCL fits its mixture on the epoch's losses)."""
        prepare = getattr(self.source, "prepare_epoch", None)
        if prepare is not None and self.steps_per_epoch[epoch] > self.step_in_epoch:
            self.model.eval()
            with torch.no_grad():
                prepare(epoch, self._score_pairs)
            self.model.train()

    def _score_pairs(self, batch: PairBatch) -> torch.Tensor:
        """Per-pair losses (B_total,) of a global batch under the current model; every rank gets the same."""
        device = self.dist.device
        forward = self.forward.module if self.dist.is_distributed else self.forward  # no gradient: no DDP sync
        with autocast(device.type, self.autocast_precision):
            text_emb, video_emb, _ = forward(batch.video.to(device), batch.mask.to(device), batch.tokens.to(device))
        text_all = gather_no_grad(text_emb.float().contiguous(), self.dist)
        video_all = gather_no_grad(video_emb.float().contiguous(), self.dist)
        return per_pair_retrieval_loss(self.loss_head, text_all, video_all, self.model.logit_scale.float())

    def _epoch_batches(self, epoch: int) -> Iterator[list[PairBatch]]:
        """The remaining optimiser steps of `epoch`, each a list of `grad_accum` micro-batches."""
        accum = self.config.grad_accum
        remaining = self.steps_per_epoch[epoch] - self.step_in_epoch
        if remaining <= 0:
            return
        group = []
        for batch in self.source.batches(epoch, self.step_in_epoch * accum):
            group.append(batch)
            if len(group) == accum:
                yield group
                group, remaining = [], remaining - 1
                if remaining == 0:
                    return

    def _train_step(self, micro_batches: list[PairBatch]) -> tuple[float, float]:
        """One optimiser update over `grad_accum` micro-batches -> (mean loss, gradient norm before clipping)."""
        cfg, device = self.config, self.dist.device
        apply_lr(self.optimizer, lr_factor(cfg.schedule, self.step, self.total_steps, cfg.warmup))
        self.optimizer.zero_grad(set_to_none=True)
        progress = self.epoch + self.step_in_epoch / max(1, self.steps_per_epoch[min(self.epoch, cfg.epochs - 1)])
        total = 0.0
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            sync = contextlib.nullcontext() if last or not self.dist.is_distributed else self.forward.no_sync()
            with sync:
                with autocast(device.type, self.autocast_precision):  # weights stay fp32
                    text_emb, video_emb, reversed_emb = self.forward(
                        batch.video.to(device), batch.mask.to(device), batch.tokens.to(device)
                    )
                out = StepOutputs(
                    gather_with_grad(text_emb.float(), self.dist),  # (B_total, E)
                    gather_with_grad(video_emb.float(), self.dist),  # (B_total, E)
                    self.model.logit_scale.float(),
                    batch,
                    progress,
                    self.dist,
                    None if reversed_emb is None else gather_with_grad(reversed_emb.float(), self.dist),
                )
                if self.selection is None:
                    loss = retrieval_loss(self.loss_head, out.text, out.video, out.logit_scale)
                else:
                    per_pair = per_pair_retrieval_loss(self.loss_head, out.text, out.video, out.logit_scale)
                    loss = selective_loss(per_pair, self.selection(per_pair.detach(), out))
                for term in self.extra_losses:
                    loss = loss + term(out)
                self.scaler.scale(loss / len(micro_batches)).backward()
            total += loss.item()
        if not math.isfinite(total):
            raise FloatingPointError(
                f"training loss is {total} at step {self.step}; look for videos without frames "
                "or lower the lr (fp16: try bf16)"
            )
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.requires_grad]
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            self.model.logit_scale.clamp_(max=MAX_LOGIT_SCALE)
        return total / len(micro_batches), grad_norm

    # ------------------------------------------------------------------------------ validation, checkpoints
    def validate(self) -> dict[str, float]:
        """Run `val_fn` on rank 0 in eval mode; {} without one or on other ranks."""
        if self.val_fn is None or not self.dist.is_main:
            return {}
        self.model.eval()
        with torch.no_grad():
            metrics = {k: float(v) for k, v in self.val_fn(self.model).items()}
        self.model.train()
        self.last_metrics = metrics
        self.val_history.append(metrics)
        return metrics

    def _checkpoint_if_due(self, writer: Any, epoch_done: bool, stop: int) -> None:
        cfg = self.config
        final = self.step == self.total_steps
        if cfg.eval_every > 0:
            validate_now = self.step % cfg.eval_every == 0 or final
        else:
            validate_now = epoch_done
        save_now = (
            validate_now or epoch_done or self.step == stop or (cfg.save_every > 0 and self.step % cfg.save_every == 0)
        )
        tags = [LATEST]
        if validate_now and self.val_fn is not None:
            metrics = self.validate()
            if self.dist.is_main:
                if writer is not None:
                    for name, value in metrics.items():
                        writer.add_scalar(f"val/{name}", value, self.step)
                if self._is_best(metrics):
                    tags.append(BEST)
        if save_now:
            self.save(tags)

    def _is_best(self, metrics: Mapping[str, float]) -> bool:
        name = self.config.best_metric
        if name not in metrics:
            raise ConfigError(f"best_metric {name!r} is not among the validation metrics {sorted(metrics)}")
        value = metrics[name]
        better = self.best_value is None or (
            value > self.best_value if self.config.best_mode == "max" else value < self.best_value
        )
        if better:
            self.best_value = value
        return better

    def save(self, tags: list[str] | tuple[str, ...] = (LATEST,)) -> None:
        """Checkpoint the current step (collective: every rank contributes its RNG state; rank 0 writes)."""
        states = [None] * self.dist.world_size
        if self.dist.is_distributed:
            dist.all_gather_object(states, rng_state())
        else:
            states = [rng_state()]
        if self.dist.is_main:
            info = {
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "total_steps": self.total_steps,
                "world_size": self.dist.world_size,
                "best_metric": self.config.best_metric,
                "best_value": self.best_value,
                "metrics": self.last_metrics,
                "config": config_to_dict(self.config),
            }
            training_state = {
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": states,
                "loss_history": torch.tensor(self.history, dtype=torch.float64),
                "plugins": self._plugin_states(),
            }
            save_checkpoint(self.checkpoint_dir, self.step, self.model, info, training_state, tags)
        barrier(self.dist)

    def _restore(self, path: Path) -> None:
        info = read_info(path)
        saved = info["config"]
        current = config_to_dict(self.config)
        changed = [f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in _RESUME_KEYS if saved.get(k) != current[k]]
        if changed:
            raise CheckpointError(
                f"cannot resume {path}: {'; '.join(changed)} would change the data order or schedule; restore "
                "those values, or set resume=false (or a new output_dir) to start afresh"
            )
        state = read_training_state(path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.step_in_epoch = info["step"], info["epoch"], info["step_in_epoch"]
        self.best_value = info["best_value"]
        self.last_metrics = info["metrics"]
        self.history = state["loss_history"].tolist()
        plugins = state.get("plugins", {})
        restore_state(self.source, plugins.get("source"))
        restore_state(self.selection, plugins.get("selection"))
        for term, term_state in zip(self.extra_losses, plugins.get("terms", []), strict=False):
            restore_state(term, term_state)
        if info["world_size"] == self.dist.world_size:
            set_rng_state(state["rng"][self.dist.rank])
        else:  # dropout masks cannot be replayed across a different process count; keep runs reproducible anyway
            seed_everything(self.config.seed + self.step * 1000 + self.dist.rank)

    def _plugin_states(self) -> dict[str, Any]:
        """The state of the source, selection and loss terms (selection statistics, the epoch's mixture fit)."""
        return {
            "source": state_of(self.source),
            "selection": state_of(self.selection),
            "terms": [state_of(term) for term in self.extra_losses],
        }

    # ------------------------------------------------------------------------------------------------ logging
    def _open_writer(self) -> Any:
        if not self.dist.is_main:
            return None
        self.output_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.output_dir / "config.yaml")
        if not self.config.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter  # imported late: tensorboard is slow to import

        return SummaryWriter(str(self.output_dir / "tensorboard"))

    def _log(self, writer: Any, bar: tqdm, loss: float, grad_norm: float) -> None:
        if not self.dist.is_main:
            return
        bar.update(1)
        if self.step % self.config.log_every and self.step != self.total_steps:
            return
        recent = self.history[-self.config.log_every :]
        bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", epoch=self.epoch)
        if writer is None:
            return
        writer.add_scalar("train/loss", loss, self.step)
        writer.add_scalar("train/grad_norm", grad_norm, self.step)
        writer.add_scalar("train/logit_scale", self.model.logit_scale.item(), self.step)
        for group in self.optimizer.param_groups:
            writer.add_scalar(f"train/lr/{group['name']}", group["lr"], self.step)
