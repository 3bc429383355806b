"""The fast inference path, chosen by device: how many threads, which precision, which compiler passes.

On a CPU the frame encoder is compute-bound and the cores are shared with video decoding, so the plan is:
every core for torch's intra-op pool, weights cast to bf16 once (CPUs with AVX512-BF16/AMX run bf16 matmuls
several times faster than fp32; autocast over fp32 weights is *slower* than plain fp32 because it re-casts
every weight on every call), decoding in one thread ahead of the encoder, frames of several videos per batch.
Where the encoder runs fp32 (CPUs without fast bf16, e.g. AVX2 only) it takes about 1 s a video against 0.2 s
of decoding, and two things that pay with bf16 cost time instead: 96-frame batches encode slower per frame than
one video's 12 frames (their activations leave the caches), and on two cores or fewer a decode thread (with
FFmpeg's own threads) pre-empts the encoder's OpenMP team, whose threads then wait for each other. So fp32 on a
CPU encodes one video a batch, and on two cores or fewer decodes in the encoder's thread (docs/performance.md).

On a GPU the plan is AMP: fp32 weights under bf16 autocast (fp16 where bf16 is missing), channels-last
input for the convolutional patch embedding, and `torch.compile` of the visual tower, whose compile time is
repaid after a few hundred batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vitr.backbones.base import Backbone
from vitr.backbones.registry import load_backbone
from vitr.errors import ConfigError
from vitr.precision import PRECISIONS, auto_precision, run_dtypes

PRECISION_CHOICES = ("auto", *PRECISIONS)
SMALL_CPU_CORES = 2  # at most this many cores: an fp32 encoder gets them all and decoding takes turns with it


@dataclass(frozen=True)
class ThreadSettings:
    """torch's thread pools as they are after `configure_threads`."""

    intra_op: int  # threads one operator (a matmul) splits its work over
    inter_op: int  # threads that run independent operators at once


@dataclass(frozen=True)
class InferencePlan:
    """How to run the frame encoder on one device.

    `weights_precision` is the dtype the backbone's weights are stored in (`load_backbone(precision=...)`);
    `autocast_precision` is what `vitr.inference.extract.encode_pixels` receives: "fp32" means no autocast.
    """

    device: str
    weights_precision: str
    autocast_precision: str
    channels_last: bool
    compile: bool
    batch_videos: int  # videos whose frames go through the encoder in one batch
    decode_workers: int  # threads decoding ahead of the encoder


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


def configure_threads(intra_op: int | None = None, inter_op: int | None = None) -> ThreadSettings:
    """Give torch every available core (or the counts given) and return what took effect.

    The inter-op pool can only be sized before torch first uses it; after that the call keeps its size
    rather than failing, since the intra-op pool is what matters for a single encoder.
    """
    cores = available_cores()
    intra = cores if intra_op is None else intra_op
    inter = min(2, cores) if inter_op is None else inter_op
    if intra < 1 or inter < 1:
        raise ConfigError(f"thread counts must be at least 1, got intra_op={intra}, inter_op={inter}")
    torch.set_num_threads(intra)
    if torch.get_num_interop_threads() != inter:
        try:
            torch.set_num_interop_threads(inter)
        except RuntimeError:  # "cannot set number of interop threads after parallel work has started"
            pass
    return ThreadSettings(intra_op=torch.get_num_threads(), inter_op=torch.get_num_interop_threads())


def plan_inference(
    device: str | torch.device = "cpu", precision: str = "auto", compile: bool | None = None
) -> InferencePlan:
    """The fast path for `device`. precision "auto": bf16 where the hardware runs it fast, else fp32 (CPU) or
    fp16 (old GPUs). compile None: on for CUDA only (on a CPU, compiling takes minutes for a few % gain)."""
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {PRECISION_CHOICES}")
    device = torch.device(device)
    precision = auto_precision(device) if precision == "auto" else precision
    if device.type == "cuda":
        weights, autocast = run_dtypes(precision, device)
        return InferencePlan(
            device=str(device),
            weights_precision=weights,
            autocast_precision=autocast,
            channels_last=True,
            compile=True if compile is None else compile,
            batch_videos=32,
            decode_workers=min(8, available_cores()),
        )
    if precision == "fp16":
        raise ConfigError("fp16 inference is for GPUs; on a CPU use bf16 (or fp32 where bf16 is not fast)")
    weights, autocast = run_dtypes(precision, device)
    encoder_bound = weights == "fp32"  # encoding ~5x decoding: overlap hides little, contention costs much
    return InferencePlan(
        device=str(device),
        weights_precision=weights,
        autocast_precision=autocast,
        channels_last=False,
        compile=bool(compile),
        batch_videos=1 if encoder_bound else 8,
        decode_workers=0 if encoder_bound and available_cores() <= SMALL_CPU_CORES else 1,
    )


def load_fast_backbone(
    spec: str,
    pretrained: str | None = None,
    weights: str | Path | None = None,
    plan: InferencePlan | None = None,
) -> Backbone:
    """`load_backbone` laid out for `plan` (default: the CPU plan): weights in the plan's dtype, channels-last
    and a compiled visual tower where the plan asks for them. State-dict keys stay those of the plain model."""
    plan = plan or plan_inference("cpu")
    backbone = load_backbone(
        spec, pretrained=pretrained, weights=weights, device=plan.device, precision=plan.weights_precision
    )
    if plan.channels_last:
        backbone.to(memory_format=torch.channels_last)
    if plan.compile:
        visual_tower(backbone).compile(dynamic=False)
    return backbone


def visual_tower(backbone: Backbone) -> nn.Module:
    """The image encoder module inside a backbone (what `encode_image` runs), for compiling it alone."""
    model = getattr(backbone, "model", None)
    for name in ("visual", "vision_model"):  # open_clip, Hugging Face CLIPModel
        tower = getattr(model, name, None)
        if isinstance(tower, nn.Module):
            return tower
    raise ConfigError(f"{type(backbone).__name__} has no known visual tower (model.visual or model.vision_model)")
