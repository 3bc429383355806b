"""Image-text contrastive pretraining of a CLIP from scratch: how the lab gets a CLIP that knows still images.

The lab's CLIP sees single frames with static captions only (colours, shapes, sizes, positions, backgrounds),
so like the real CLIP it knows objects and never saw time (docs/lab.md). The loss is CLIP's: symmetric
InfoNCE over in-batch image-text pairs with a learnable temperature; optionally each image also competes with a
hard-negative caption (NegCLIP), drawn afresh every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from vitr.backbones.base import Backbone
from vitr.losses.infonce import infonce_with_hard_negatives, symmetric_infonce
from vitr.precision import autocast
from vitr.train.schedule import lr_factor
from vitr.video.transforms import preprocess_frames


@dataclass
class PretrainConfig:
    steps: int = 600
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: float = 0.05  # fraction of steps
    precision: str = "fp32"  # autocast dtype (vitr.precision); fp32: no autocast, as `vitr pretrain` defaults
    seed: int = 0
    log_every: int = 50


def crop_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """(B, L) ids -> (B, L') with L' = the batch's longest caption. Exact for CLIP's pooled feature: attention is
    causal, so positions after a caption's end-of-text token never reach it; only the compute shrinks."""
    length = int((tokens != 0).sum(1).max())
    return tokens[:, : max(length, 1)]


def pretrain_clip(
    backbone: Backbone,
    images: np.ndarray,
    captions: list[str],
    cfg: PretrainConfig,
    progress: bool = True,
    negative_caption: Callable[[str, np.random.Generator], str | None] | None = None,
) -> list[float]:
    """Train `backbone` in place on (N, H, W, 3) uint8 images and their captions; returns the loss per step.

    `negative_caption(caption, rng)` -> a caption false of that image (or None): each step, every image's
    negative joins the texts it is contrasted with (`infonce_with_hard_negatives`).
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    generator = torch.Generator().manual_seed(cfg.seed)
    negative_rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    tokens = backbone.tokenize(captions)  # (N, L), tokenised once
    device = backbone.logit_scale.device
    decay = [p for n, p in backbone.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in backbone.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
        fused=True,  # fused: one kernel, not a Python loop per tensor
    )
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")  # fp16 gradients would underflow
    backbone.train()
    losses: list[float] = []
    order = torch.randperm(len(images), generator=generator)
    cursor = 0
    bar = tqdm(range(cfg.steps), desc="pretraining CLIP", unit="step", disable=not progress)
    for step in bar:
        if cursor + cfg.batch_size > len(order):
            order, cursor = torch.randperm(len(images), generator=generator), 0
        idx = order[cursor : cursor + cfg.batch_size]
        cursor += cfg.batch_size
        pixels = preprocess_frames(
            images[idx.numpy()], size=backbone.image_size, mean=backbone.image_mean, std=backbone.image_std
        ).to(device)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor("warmup_cosine", step, cfg.steps, cfg.warmup)
        texts = tokens[idx]
        negatives = _negative_tokens(backbone, captions, idx, negative_caption, negative_rng)
        if negatives is not None:
            texts = torch.cat([texts, negatives])
        with autocast(device.type, cfg.precision):
            img = torch.nn.functional.normalize(backbone.encode_image(pixels).float(), dim=-1)
            txt = torch.nn.functional.normalize(
                backbone.encode_text(crop_tokens(texts).to(device)).pooled.float(), dim=-1
            )
        logits = backbone.logit_scale.exp() * img @ txt.T  # (B, B [+ negatives])
        batch = len(idx)
        if negatives is None:
            loss = symmetric_infonce(logits)
        else:
            loss = infonce_with_hard_negatives(logits[:, :batch], logits[:, batch:])
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        torch.nn.utils.clip_grad_norm_(backbone.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        with torch.no_grad():
            backbone.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            bar.set_postfix(loss=f"{np.mean(losses[-cfg.log_every :]):.3f}")
    backbone.eval()
    return losses


def _negative_tokens(
    backbone: Backbone,
    captions: list[str],
    idx: torch.Tensor,
    negative_caption: Callable[[str, np.random.Generator], str | None] | None,
    rng: np.random.Generator,
) -> torch.Tensor | None:
    """Token ids of one fresh hard negative per caption of the batch that has one; None when there is none."""
    if negative_caption is None:
        return None
    negatives = [n for n in (negative_caption(captions[i], rng) for i in idx.tolist()) if n is not None]
    return backbone.tokenize(negatives) if negatives else None
