"""Typed training configuration, loaded from YAML with `key=value` command-line overrides.

`load_config` is the project's one config loader: it fills any dataclass (nested dataclasses, `Literal`
choices, optionals, lists, dicts) from a YAML mapping, and every unknown key or ill-typed value raises
`ConfigError` naming the dotted key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from vitr.errors import ConfigError
from vitr.model.factory import ModelSpec

T = TypeVar("T")

Precision = Literal["fp32", "bf16", "fp16"]
Freeze = Literal["visual", "all", "none"]
OptimizerName = Literal["adamw", "bertadam_c4c"]
ScheduleName = Literal["warmup_cosine", "c4c_warmup_cosine", "constant"]
DecayRule = Literal["standard", "c4c"]


@dataclass
class TrainConfig:
    """Everything that decides a fine-tuning run; stored next to every checkpoint.

    Defaults follow the CLIP4Clip recipe (clip2video.md §7) except the optimiser: AdamW with bias correction
    and `decay_rule="standard"`; `optimizer="bertadam_c4c"`, `schedule="c4c_warmup_cosine"`,
    `decay_rule="c4c"` reproduce the official run.
    """

    model: ModelSpec = field(default_factory=ModelSpec)  # backbone, head name and head kwargs
    freeze: Freeze = "visual"  # visual: cached frame features, text tower at backbone_lr; all: head only; none: e2e
    freeze_patterns: list[str] = field(default_factory=list)  # extra fnmatch patterns of parameter names to freeze
    lr: float = 1e-4  # new modules (the temporal head)
    backbone_lr: float = 1e-7  # absolute; CLIP4Clip: lr * coef_lr = 1e-4 * 1e-3
    weight_decay: float = 0.2
    decay_rule: DecayRule = "standard"  # standard: no decay on biases, norms, logit_scale; c4c: only biases exempt
    optimizer: OptimizerName = "adamw"
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    schedule: ScheduleName = "warmup_cosine"
    warmup: float = 0.1  # fraction of all optimiser steps
    grad_clip: float = 1.0  # global gradient norm; 0 disables
    epochs: int = 5
    batch_size: int = 128  # global: summed over processes and accumulation steps
    grad_accum: int = 1  # micro-batches per optimiser step; negatives come from one micro-batch
    distinct_videos: bool = False  # never put two captions of one video in a batch (no false negatives)
    precision: Precision = "fp32"  # autocast dtype of the forward pass; the loss is always fp32
    max_words: int = 32  # caption tokens, start and end included
    loss_weights: dict[str, float] = field(default_factory=dict)  # override a head's score-term weights by name
    seed: int = 42
    eval_every: int = 0  # optimiser steps between validations; 0: at the end of every epoch
    save_every: int = 0  # optimiser steps between `latest` checkpoints; 0: at every validation and epoch end
    best_metric: str = "t2v/R@1"
    best_mode: Literal["max", "min"] = "max"
    output_dir: str = "runs/train"
    resume: bool = True  # continue from output_dir's `latest` checkpoint when there is one
    num_workers: int = 0
    device: str = "auto"  # auto: cuda:<local rank> when available, else cpu
    log_every: int = 10
    progress: bool = True
    tensorboard: bool = True

    def __post_init__(self) -> None:
        positive = {
            "lr": self.lr,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "max_words": self.max_words,
            "log_every": self.log_every,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        non_negative = {
            "backbone_lr": self.backbone_lr,
            "weight_decay": self.weight_decay,
            "eps": self.eps,
            "grad_clip": self.grad_clip,
            "eval_every": self.eval_every,
            "save_every": self.save_every,
            "num_workers": self.num_workers,
        }
        for name, value in non_negative.items():
            if value < 0 or (isinstance(value, float) and math.isnan(value)):
                raise ConfigError(f"{name} must be >= 0, got {value}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"warmup is a fraction of the run in [0, 1), got {self.warmup}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas must lie in [0, 1), got {self.betas}")
        if self.batch_size % self.grad_accum:
            raise ConfigError(f"batch_size {self.batch_size} is not divisible by grad_accum {self.grad_accum}")


def load_config(path: str | Path | None, overrides: Sequence[str] = (), cls: type[T] = TrainConfig) -> T:
    """YAML file (or None for defaults) + overrides like `lr=3e-4`, `model.head=seqTransf` -> a `cls` instance."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values, got {type(loaded).__name__}")
        raw = loaded or {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like key=value, e.g. lr=1e-4 or model.head=meanP")
        _set_dotted(raw, key.strip().split("."), _CliText(value))
    return config_from_dict(cls, raw)


def config_from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a plain mapping, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'} must be a mapping, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"; did you mean '{where}{close[0]}'?" if close else f"; known keys: {sorted(fields)}"
            raise ConfigError(f"unknown config key '{where}{key}'{hint}")
    hints = typing.get_type_hints(cls)
    values = {name: _coerce(hints[name], value, f"{where}{name}") for name, value in data.items()}
    return cls(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config -> plain YAML/JSON-safe values (tuples become lists)."""
    return _plain(dataclasses.asdict(config))


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


class _CliText(str):
    """A raw command-line value: parsed as YAML unless the field wants a string."""


def _set_dotted(raw: dict[str, Any], keys: list[str], value: Any) -> None:
    node = raw
    for i, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {'.'.join(keys)}: {'.'.join(keys[: i + 1])} is not a mapping")
        node = child
    node[keys[-1]] = value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _accepts_str(tp: Any) -> bool:
    """Whether a command-line value should stay text; `Any` fields (head kwargs) are parsed as YAML."""
    if tp is str:
        return True
    origin = typing.get_origin(tp)
    if origin is Literal:
        return all(isinstance(a, str) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return any(_accepts_str(a) for a in typing.get_args(tp) if a is not type(None))
    return False


def _coerce(tp: Any, value: Any, where: str) -> Any:  # noqa: C901  (one branch per kind of type)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(value, _CliText):
        is_optional = origin in (typing.Union, types.UnionType) and type(None) in args
        if is_optional and value.strip() in ("null", "None", "~"):
            return None
        value = str(value) if _accepts_str(tp) else _parse_yaml(value, where)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {_describe(value)} fits none of {tp}: {'; '.join(errors)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {list(args)}, got {_describe(value)}")
        return value
    if dataclasses.is_dataclass(tp):
        return config_from_dict(tp, {} if value is None else value, f"{where}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {_describe(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {_describe(value)}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {_describe(value)}")
        item_types = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            raise ConfigError(f"{where} must have {len(item_types)} items, got {_describe(value)}")
        return tuple(_coerce(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(item_types, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {_describe(value)}")
        key_type, value_type = args
        return {_coerce(key_type, k, f"{where}"): _coerce(value_type, v, f"{where}.{k}") for k, v in value.items()}
    raise ConfigError(f"{where}: fields of type {tp} cannot be read from a config")


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: cannot parse {text!r}: {e}") from None
