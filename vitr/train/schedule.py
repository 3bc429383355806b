"""Learning-rate schedules as pure functions of the optimiser step, so resuming needs nothing but the step count.

`lr_factor(name, step, total_steps, warmup)` multiplies each parameter group's base lr; `step` is the number
of optimiser updates already done (0 for the first update).
"""

from __future__ import annotations

import math

import torch

from vitr.errors import ConfigError

SCHEDULES = ("warmup_cosine", "c4c_warmup_cosine", "constant")


def warmup_cosine(step: int, total_steps: int, warmup: float) -> float:
    """Linear warm-up over the first `warmup` fraction of steps (first update at 1/W), then cosine to 0.

    The cosine starts at the end of warm-up, so the factor is exactly 1 at step W and reaches 0 only after the
    last update.
    """
    warmup_steps = round(warmup * total_steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def c4c_warmup_cosine(step: int, total_steps: int, warmup: float) -> float:
    """CLIP4Clip's `warmup_cosine` (clip2video.md §7): x = step / total; x / warmup below warmup, else
    0.5 (1 + cos(pi x)).

    The cosine spans the whole run (so the factor drops from ~1 to cos-value at x = warmup), and the step is
    read before it is incremented, so the first update has lr 0.
    """
    x = step / total_steps
    if x < warmup:
        return x / warmup
    return 0.5 * (1.0 + math.cos(math.pi * x))


def constant(step: int, total_steps: int, warmup: float) -> float:
    """Linear warm-up as in `warmup_cosine`, then a constant lr."""
    warmup_steps = round(warmup * total_steps)
    return (step + 1) / warmup_steps if step < warmup_steps else 1.0


_FACTORS = {"warmup_cosine": warmup_cosine, "c4c_warmup_cosine": c4c_warmup_cosine, "constant": constant}


def lr_factor(name: str, step: int, total_steps: int, warmup: float) -> float:
    """The multiplier of the base lr for update number `step` (0-based) of `total_steps`."""
    if name not in _FACTORS:
        raise ConfigError(f"unknown schedule {name!r}; choose one of {list(_FACTORS)}")
    if total_steps <= 0:
        raise ConfigError(f"a schedule needs at least one step, got total_steps={total_steps}")
    return _FACTORS[name](step, total_steps, warmup)


def apply_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Set every group's lr to its `base_lr` (recorded by `vitr.train.optim.build_optimizer`) times `factor`."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
