"""What the trainer's loop is made of beyond the model: where batches come from and what is added to the loss.

A method plugs into `Trainer` through three small interfaces, so supervised fine-tuning, PS-SCL and TeachText share
one loop (AMP, gradient accumulation, DDP, exact resume, validation, logs):

- a `DataSource` yields this rank's slice of every micro-batch of an epoch, in an order that is a function of
  (seed, epoch) alone; it may prepare an epoch with the model (PS-SCL's per-epoch mixture fit) and keep state
  that a checkpoint stores;
- a `PairSelection` turns the per-pair losses of the global batch into pair weights (SeLeCT);
- a `LossTerm` adds a scalar to the loss from the step's gathered embeddings (TeachText's distillation, PS-SCL's
  zero-shot anchor).

Every rank sees the global batch after the gather, so a selection or a loss term computed from `StepOutputs` is
the same on every rank: a multi-process run keeps exactly the pairs a single process keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch.utils.data import DataLoader, Dataset

from vitr.train.datasets import PairBatchSampler
from vitr.train.distributed import DistContext, gather_no_grad


@dataclass
class PairBatch:
    """One micro-batch of (video, caption) pairs; pair i = (tokens i, video i).

    `extras` holds per-pair side data a selection or loss term reads (teacher scores, exemption flags), each
    (B, ...) and numeric (bool travels as float so that every backend can gather it).
    """

    video: torch.Tensor  # (B, T, D) cached frame features, or (B, T, 3, S, S) pixels end-to-end
    mask: torch.Tensor  # (B, T)
    tokens: torch.Tensor  # (B, L)
    video_index: torch.Tensor  # (B,) long: position of the video in the source's video list
    sample_index: torch.Tensor  # (B,) long: position of the pair in the source
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


# A batch -> per-pair losses (B_total,) of the global batch under the current model (no gradient).
PairScorer = Callable[[PairBatch], torch.Tensor]


@runtime_checkable
class DataSource(Protocol):
    """Micro-batches of one epoch; `num_batches` counts global micro-batches, `batches` yields this rank's slices.

    A source may also define `prepare_epoch(epoch, score_pairs)`, called before an epoch's first step with the
    model in eval mode (not again for an epoch a checkpoint resumes inside: its state carries that epoch's work).
    """

    def __len__(self) -> int: ...

    def num_batches(self, epoch: int) -> int: ...

    def batches(self, epoch: int, skip: int) -> Iterator[PairBatch]:
        """The micro-batches of `epoch` after the first `skip` (exact resume)."""
        ...


class StepOutputs:
    """What a selection or loss term sees of one micro-batch: gathered embeddings (with gradient) and the batch.

    `batch` holds this rank's slice; `index`, `extra` and `inputs` gather across ranks on first use (collectives,
    so every rank must ask for the same things, which holds because every rank runs the same terms).
    """

    def __init__(
        self,
        text: torch.Tensor,
        video: torch.Tensor,
        logit_scale: torch.Tensor,
        batch: PairBatch,
        progress: float,
        dist: DistContext,
        reversed_video: torch.Tensor | None = None,
    ) -> None:
        self.text = text  # (B_total, E) fp32
        self.video = video  # (B_total, E) fp32
        self.logit_scale = logit_scale  # () log inverse temperature, fp32
        self.batch = batch
        self.progress = progress  # fractional epoch of this micro-batch: epoch + step_in_epoch / steps_per_epoch
        self.reversed_video = reversed_video  # (B_total, E) embeddings of the reversed frames, when asked for
        self._dist = dist
        self._gathered: dict[str, torch.Tensor] = {}

    def _gather(self, name: str, local: torch.Tensor) -> torch.Tensor:
        if name not in self._gathered:
            self._gathered[name] = gather_no_grad(local.to(self.video.device), self._dist)
        return self._gathered[name]

    @property
    def sample_index(self) -> torch.Tensor:
        """(B_total,) long."""
        return self._gather("sample_index", self.batch.sample_index)

    @property
    def video_index(self) -> torch.Tensor:
        """(B_total,) long."""
        return self._gather("video_index", self.batch.video_index)

    def extra(self, name: str) -> torch.Tensor:
        """A per-pair side tensor of the global batch, (B_total, ...)."""
        return self._gather(f"extra.{name}", self.batch.extras[name])

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The global batch's frame features (B_total, T, D) and mask (B_total, T), without gradient."""
        return self._gather("video_input", self.batch.video.float()), self._gather("mask", self.batch.mask.float())


@runtime_checkable
class PairSelection(Protocol):
    """Per-pair losses of the global batch (B_total,), detached -> pair weights (B_total,) for `selective_loss`."""

    def __call__(self, per_pair: torch.Tensor, out: StepOutputs) -> torch.Tensor: ...


@runtime_checkable
class LossTerm(Protocol):
    """A scalar added to the retrieval loss of every micro-batch. A term that sets `needs_reversed = True` gets
    `out.reversed_video`, computed inside the wrapped forward so DDP sees one forward per step."""

    def __call__(self, out: StepOutputs) -> torch.Tensor: ...


def state_of(obj: Any) -> dict[str, Any] | None:
    """The checkpointable state of a source, selection or loss term, or None for stateless ones."""
    get = getattr(obj, "state_dict", None)
    return get() if callable(get) else None


def restore_state(obj: Any, state: Mapping[str, Any] | None) -> None:
    load = getattr(obj, "load_state_dict", None)
    if state is not None and callable(load):
        load(state)


class DatasetSource:
    """A map-style pair dataset (`CachedPairDataset`, `PixelPairDataset`) batched by `PairBatchSampler`.

    Items are (video, mask, tokens, video_index, sample_index): every caption is a sample each epoch.
    """

    def __init__(
        self,
        data: Dataset,
        micro_batch: int,
        seed: int,
        dist: DistContext,
        distinct_videos: bool = False,
        num_workers: int = 0,
    ) -> None:
        self.data = data
        self.seed = seed
        self.num_workers = num_workers
        self.pin_memory = dist.device.type == "cuda"
        self.sampler = PairBatchSampler(
            data.video_of_sample, micro_batch, seed, dist.rank, dist.world_size, distinct_videos
        )

    def __len__(self) -> int:
        return len(self.data)

    def num_batches(self, epoch: int) -> int:
        return self.sampler.num_batches(epoch)

    def batches(self, epoch: int, skip: int) -> Iterator[PairBatch]:
        self.sampler.set_epoch(epoch, skip=skip)
        loader = DataLoader(  # its generator only seeds workers; fixed per epoch so a resumed epoch matches
            self.data,
            batch_sampler=self.sampler,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed + epoch),
            pin_memory=self.pin_memory,
        )
        for video, mask, tokens, video_index, sample_index in loader:
            yield PairBatch(video, mask, tokens, video_index, sample_index)
