"""Precision names, one vocabulary for the whole package.

Two different things share the names fp32 / bf16 / fp16, and vitr keeps them apart:

- the **weight dtype**: what a model's parameters are stored in (`ModelSpec.precision`; a CPU index may keep bf16
  weights to halve memory);
- the **autocast dtype**: what matmuls compute in under `torch.autocast` while the weights stay fp32
  (`TrainConfig.precision`, AMP); fp32 means no autocast.

This is the one precision-and-device module: it names the dtypes, resolves a device name (`resolve_device`) and
"auto" (`auto_precision` for weights and inference, `resolve_autocast` for training), decides the (weights,
autocast) pair for a device (`run_dtypes`) and opens the autocast context, so no other module writes its own map or
rule. It imports nothing of vitr but `errors`, so every layer
(backbones included) may use it; `vitr.inference.plan` builds the inference plan (threads, batching) on top.
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


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The device a command runs on: "auto" is the first GPU torch sees, else the CPU; "cuda" / "cuda:N" must
    exist, so a GPU request on a machine without one is a clear error rather than a silent CPU run."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name} asked for, but torch sees no CUDA GPU here; use --device cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name} asked for, but torch sees {count} GPU(s) (cuda:0 to cuda:{count - 1})")
        return torch.device("cuda", device.index or 0)
    if device.type != "cpu":
        raise ConfigError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN runs bf16 natively here (AVX512-BF16 or AMX), so bf16 weights pay off on this CPU."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def auto_precision(device: str | torch.device) -> str:
    """What "auto" means on `device`: bf16 where the hardware runs it fast (CPUs with AVX512-BF16/AMX, GPUs with
    bf16), fp16 on older GPUs, else fp32."""
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """A weight/compute precision for `precision`: "auto" becomes `auto_precision(device)`, any other value is
    checked and returned as it is."""
    if precision == "auto":
        return auto_precision(device)
    dtype_of(precision)
    return precision


def resolve_autocast(precision: str, device: str | torch.device) -> str:
    """The autocast dtype a training run computes in for `precision` on `device`: "auto" is AMP at the device's
    fast dtype on a GPU (the autocast half of `run_dtypes`) and no autocast (fp32) on a CPU, where bf16 backward
    passes are the slower; any other value is checked and returned as it is."""
    if precision == "auto":
        return run_dtypes(auto_precision(device), device)[1]
    dtype_of(precision)
    return precision


def run_dtypes(precision: str, device: str | torch.device) -> tuple[str, str]:
    """(weights, autocast) precision that compute a model's vectors in `precision` on `device`.

    The one rule for every command: a GPU keeps fp32 weights under autocast (AMP); a CPU stores the weights in
    `precision` and runs without autocast (autocast over fp32 weights re-casts every weight on every call, which
    is slower there than either plain fp32 or bf16 weights)."""
    if precision not in DTYPES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {tuple(DTYPES)}")
    if torch.device(device).type == "cuda":
        return "fp32", precision
    return precision, "fp32"
