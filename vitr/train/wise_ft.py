"""WiSE-FT (Wortsman et al., CVPR 2022): average fine-tuned weights with the weights training started from.

    theta = (1 - alpha) * theta_start + alpha * theta_finetuned

A drift guard for training on noisy supervision such as pseudo-texts (ps_scl.md §4 #15, FitCLIP's
`encoder=wise`): alpha 1 keeps the fine-tuned model, 0 returns to the start (zero-shot CLIP), values between
keep part of what fine-tuning learned while staying close to what the pretrained model knew.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from vitr.errors import ConfigError


def snapshot_trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the parameters that will train: the starting point WiSE-FT averages back towards."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def weight_space_ensemble(model: nn.Module, start: Mapping[str, torch.Tensor], alpha: float) -> list[str]:
    """Set every parameter named in `start` to (1 - alpha) * start + alpha * current; returns the names mixed.

    Parameters not in `start` (nothing to go back to) keep their fine-tuned values.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"WiSE-FT alpha must lie in [0, 1], got {alpha}")
    params = dict(model.named_parameters())
    unknown = sorted(set(start) - set(params))
    if unknown:
        raise ConfigError(f"WiSE-FT: the model has no parameters named {unknown[:3]}")
    mixed = []
    for name, initial in start.items():
        current = params[name]
        if initial.shape != current.shape:
            raise ConfigError(f"WiSE-FT: {name} is {tuple(current.shape)} now but {tuple(initial.shape)} at the start")
        current.lerp_(initial.to(device=current.device, dtype=current.dtype), 1.0 - alpha)
        mixed.append(name)
    return mixed
