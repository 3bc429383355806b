"""Precision names, one vocabulary for the whole package.

Two different things share the names fp32 / bf16 / fp16, and vitr keeps them apart:

- the **weight dtype**: what a model's parameters are stored in (`ModelSpec.precision`; a CPU index may keep bf16
  weights to halve memory);
- the **autocast dtype**: what matmuls compute in under `torch.autocast` while the weights stay fp32
  (`TrainConfig.precision`, AMP); fp32 means no autocast.

`vitr.model.fast.run_dtypes` decides the pair for a device; this module only names the dtypes and opens the
autocast context, so no other module writes its own map. It imports nothing of vitr but `errors`, so every layer
(backbones included) may use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from vitr.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def dtype_of(precision: str) -> torch.dtype:
    """fp32 | bf16 | fp16 -> the torch dtype; anything else is a one-line ConfigError."""
    if precision not in DTYPES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    return DTYPES[precision]


@contextlib.contextmanager
def autocast(device_type: str, precision: str) -> Iterator[None]:
    """`torch.autocast` at the autocast dtype `precision`; fp32 runs without autocast."""
    dtype = dtype_of(precision)
    with torch.autocast(device_type, dtype=dtype, enabled=dtype != torch.float32):
        yield
