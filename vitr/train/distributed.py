"""Data-parallel training in a few plain lines: torchrun's environment, one process per device.

A single process is the world of size 1, so training has one code path: `python -m ...` and
`torchrun --nproc_per_node N -m ...` run the same loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vitr.errors import ConfigError
from vitr.precision import resolve_device


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs and checkpoints and runs validation."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def training_device(device: str = "auto") -> torch.device:
    """The device this process trains on: "auto" is the GPU of this torchrun rank (LOCAL_RANK) when torch sees
    one, else the CPU; any other name is checked by `resolve_device` (a missing GPU is a ConfigError)."""
    if device == "auto":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    return resolve_device(device)


def init_distributed(device: str = "auto") -> DistContext:
    """Read RANK / LOCAL_RANK / WORLD_SIZE (set by torchrun); join the process group when there are several.

    Backend: nccl on CUDA, gloo on CPU. Calling it again in an initialised process reuses the group.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = training_device(device)
    if world_size == 1:
        return DistContext(0, 0, 1, chosen)
    if "MASTER_ADDR" not in os.environ:
        raise ConfigError("WORLD_SIZE > 1 but MASTER_ADDR is not set; launch with torchrun --nproc_per_node N")
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistContext(rank, local_rank, world_size, chosen)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        dist.barrier()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each rank the gradient of the global loss w.r.t. its own slice.

    Every rank computes the loss on the gathered batch, so the gradient reaching one rank's slice is the sum
    of that slice's gradients over all ranks' losses (an all-reduce). See `gather_with_grad`.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.batch = dist.get_rank(), x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.batch : (ctx.rank + 1) * ctx.batch]


def gather_with_grad(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """(B_local, ...) on every rank -> (B_local * world, ...) in rank order; identity in a single process.

    Gradient scaling, chosen so that one optimiser step equals the single-process step on the global batch:
    each rank computes the same global loss L over all B_total x B_total logits. Backward all-reduces the
    gradient of the gathered embeddings, so rank r's slice receives world * dL/d(slice_r); DDP then averages
    the parameter gradients over ranks, giving exactly dL/dtheta. Parameters used after the gather
    (logit_scale) get dL/ds on every rank, and the average keeps it. No extra loss factor is needed.
    CLIP4Clip instead keeps only the local slice's own gradient, so its encoders see dL/dtheta / world while
    logit_scale sees dL/ds (clip2video.md §7).
    """
    if not ctx.is_distributed:
        return x
    return _GatherWithGrad.apply(x)


def gather_no_grad(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """(B_local, ...) -> (B_local * world, ...) in rank order, for tensors that need no gradient (indices)."""
    if not ctx.is_distributed:
        return x
    parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)
