"""Which parameters train, at which learning rate and weight decay, and the optimisers that update them.

A pretrained backbone and a freshly initialised head need learning rates three orders of magnitude apart
(CLIP4Clip: 1e-7 vs 1e-4), so parameters fall into groups by (backbone | head) x (decay | no decay). Each group
remembers its `base_lr`; the schedule multiplies it every step (`vitr.train.schedule.apply_lr`).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatch

import torch
from torch import nn

from vitr.errors import ConfigError
from vitr.model.retrieval import VideoTextModel
from vitr.train.config import TrainConfig

BACKBONE_PREFIX = "backbone."


def text_tower_parameters(model: VideoTextModel) -> set[str]:
    """Names of the backbone parameters that `encode_text` uses, found by one probing backward pass.

    Backbones name their towers differently (open_clip `visual.*`, Hugging Face `vision_model.*`), but the
    contract says what the text tower is: whatever `encode_text` touches. The probe neither stores gradients
    nor consumes random numbers.
    """
    named = [(n, p) for n, p in model.named_parameters() if n.startswith(BACKBONE_PREFIX) and p.requires_grad]
    device = model.logit_scale.device
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        tokens = model.backbone.tokenize(["a probe caption"]).to(device)
        features = model.backbone.encode_text(tokens)
        probe = features.pooled.float().sum() + features.tokens.float().sum()
        grads = torch.autograd.grad(probe, [p for _, p in named], allow_unused=True)
    return {name for (name, _), grad in zip(named, grads, strict=True) if grad is not None}


def configure_trainable(model: VideoTextModel, freeze: str, patterns: Iterable[str] = ()) -> list[str]:
    """Set `requires_grad` for a freeze mode; returns the names of the frozen parameters.

    visual: only the text tower (and logit_scale) of the backbone trains: frame features come from the cache.
    all: the backbone is frozen except logit_scale, which sets the loss temperature and is trained in every
    mode (at backbone_lr, as in CLIP4Clip). none: everything trains (end-to-end on pixels).
    `patterns` (fnmatch on parameter names) freeze more, e.g. CLIP4Clip's embeddings: `*token_embedding*`.
    """
    if freeze not in ("visual", "all", "none"):
        raise ConfigError(f"freeze must be one of visual, all, none; got {freeze!r}")
    for p in model.parameters():
        p.requires_grad_(True)
    text = text_tower_parameters(model) if freeze == "visual" else set()
    patterns = list(patterns)
    frozen = []
    for name, p in model.named_parameters():
        in_backbone = name.startswith(BACKBONE_PREFIX) and p is not model.logit_scale
        freeze_it = (freeze == "all" and in_backbone) or (freeze == "visual" and in_backbone and name not in text)
        if freeze_it or any(fnmatch(name, pattern) for pattern in patterns):
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def _decays(name: str, param: nn.Parameter, rule: str) -> bool:
    """standard (open_clip): matrices decay; biases, norm gains and logit_scale (ndim < 2) do not.
    c4c: every parameter whose name lacks "bias" decays, LayerNorm gains and logit_scale included (§7)."""
    if rule == "c4c":
        return "bias" not in name
    return param.ndim >= 2 and "logit_scale" not in name


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """Trainable parameters as optimiser groups `{name, params, lr, base_lr, weight_decay}`; empty ones dropped.

    Parameters under `backbone.` (logit_scale included) train at `backbone_lr`, everything else at `lr`.
    """
    buckets: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        part = "backbone" if name.startswith(BACKBONE_PREFIX) else "head"
        buckets.setdefault((part, _decays(name, p, config.decay_rule)), []).append(p)
    groups = []
    for part in ("backbone", "head"):
        lr = config.backbone_lr if part == "backbone" else config.lr
        for decay in (True, False):
            params = buckets.get((part, decay))
            if params:
                groups.append(
                    {
                        "name": f"{part}/{'decay' if decay else 'no_decay'}",
                        "params": params,
                        "lr": lr,
                        "base_lr": lr,
                        "weight_decay": config.weight_decay if decay else 0.0,
                    }
                )
    if not groups:
        raise ConfigError(
            f"freeze={config.freeze!r} with freeze_patterns={config.freeze_patterns} leaves nothing to train"
        )
    return groups


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, config)
    if config.optimizer == "bertadam_c4c":
        return BertAdamC4C(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)


class BertAdamC4C(torch.optim.Optimizer):
    """CLIP4Clip's BertAdam (`modules/optimization.py`), for reproduction runs (clip2video.md §7).

    Differs from AdamW in three ways that change results: no bias correction of the moments; each tensor's
    gradient is clipped to norm `max_grad_norm` before the moments see it; and weight decay is added to the
    update (p <- p - lr (m / (sqrt(v) + eps) + wd p)), so it is scaled by the lr but not by the moments.
    The schedule lives outside (the official class folds `warmup_cosine` in; see `c4c_warmup_cosine`).
    """

    def __init__(
        self,
        params: Iterable[nn.Parameter] | Iterable[dict],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        max_grad_norm: float = 1.0,
    ) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "max_grad_norm": max_grad_norm}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201  (torch.optim.Optimizer signature)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["max_grad_norm"] > 0:
                    torch.nn.utils.clip_grad_norm_(p, group["max_grad_norm"])
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                update = exp_avg / (exp_avg_sq.sqrt() + group["eps"])
                if group["weight_decay"] > 0:
                    update.add_(p, alpha=group["weight_decay"])
                p.add_(update, alpha=-group["lr"])
        return loss
