"""Typed training recipes, loaded from YAML with `key=value` command-line overrides.

`load_config` is the project's one config loader. The configs stay plain dataclasses (other code reads and
builds them directly); pydantic validates a YAML mapping against them, so types, `Literal` choices and nested
sections are checked in one place. Unknown keys are refused, never ignored: a misspelt key would otherwise
silently leave its default in force. Every mistake is one-line `ConfigError` naming the dotted key and where it
came from (the file or the override).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic
import yaml

from vitr.errors import ConfigError
from vitr.model.factory import ModelSpec

T = TypeVar("T")

# How every recipe dataclass is validated; nested dataclasses (ModelSpec) inherit it from the one they sit in.
# Numbers are accepted as text fields (`output_dir=2024`); anything else of the wrong type is an error.
RECIPE_CONFIG = pydantic.ConfigDict(extra="forbid", coerce_numbers_to_str=True)

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

    __pydantic_config__ = RECIPE_CONFIG

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
    """YAML file (or None for defaults) + overrides like `lr=3e-4`, `model.head=seqTransf` -> a `cls` instance.

    `cls` is a dataclass carrying `__pydantic_config__ = RECIPE_CONFIG`. Override values are read as YAML
    (`betas=[0.9, 0.999]`, `model.pretrained=null`); text that is not valid YAML stays text."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(e).split())}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values, got {type(loaded).__name__}")
        raw = loaded or {}
    set_by: dict[tuple[str, ...], str] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        keys = tuple(k.strip() for k in key.split("."))
        if not sep or not all(keys):
            raise ConfigError(f"override {item!r} must look like key=value, e.g. lr=1e-4 or model.head=meanP")
        _set_dotted(raw, keys, _parse_value(value))
        set_by[keys] = item
    source = f"config file {path}" if path is not None else "the defaults"
    overall = f"{source}{' with overrides' if set_by else ''}" if path is not None else "overrides"
    return _validate(cls, raw, lambda loc: _source_of(loc, set_by, source), overall)


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass `cls` from a plain mapping (a stored checkpoint's config), checking every key and type."""
    return _validate(cls, data, lambda loc: "the stored config", "the stored config")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config -> plain YAML/JSON-safe values (tuples become lists)."""
    return _dumper(type(config)).dump_python(config, mode="json")


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


_dumper = functools.cache(pydantic.TypeAdapter)  # any dataclass can be written; only recipes are loaded


@functools.cache
def _adapter(cls: type) -> pydantic.TypeAdapter:
    if getattr(cls, "__pydantic_config__", {}).get("extra") != "forbid":  # else a misspelt key would be dropped
        raise TypeError(f"{cls.__name__} must set `__pydantic_config__ = RECIPE_CONFIG` to be loaded as a config")
    return pydantic.TypeAdapter(cls)


def _validate(cls: type[T], data: Any, source_of: typing.Callable[[tuple], str], overall: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of keys to values, got {type(data).__name__}")
    try:
        return _adapter(cls).validate_python(data)
    except ConfigError as e:  # a rule between fields (`__post_init__`), e.g. batch_size vs grad_accum
        raise ConfigError(f"{e} (in {overall})") from None
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        more = f" (and {e.error_count() - 1} more problems)" if e.error_count() > 1 else ""
        raise ConfigError(_explain(cls, first, source_of(first["loc"])) + more) from None


def _explain(cls: type, error: Any, source: str) -> str:
    """One pydantic error -> one line naming the dotted key, what it expects and where the value came from."""
    loc = tuple(error["loc"])
    kind, value = error["type"], error.get("input")
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        parent, name = _dotted(loc[:-1]), str(loc[-1])
        known = _field_names(_type_at(cls, loc[:-1]))
        close = difflib.get_close_matches(name, known, n=3)
        prefix = f"{parent}." if parent else ""
        nearby = (f"did you mean {', '.join(repr(prefix + k) for k in close)}?" if close
                  else f"valid keys{f' under {parent!r}' if parent else ''}: {', '.join(known)}")
        return f"unknown key {_dotted(loc)!r} in {source}; {nearby}"
    key_loc = loc
    while key_loc and isinstance(key_loc[-1], int):  # betas[1] missing -> betas has too few items
        key_loc = key_loc[:-1]
    field_type = _type_at(cls, key_loc)
    if kind == "missing" and typing.get_origin(field_type) is tuple:
        expected = f"must have {len(typing.get_args(field_type))} items"
    elif kind == "literal_error":
        choices = typing.get_args(field_type) or error["ctx"]["expected"]
        expected = f"must be one of {list(choices) if isinstance(choices, tuple) else choices}"
    else:
        expected = _EXPECTED.get(kind.split("_")[0]) or _EXPECTED.get(kind) or error["msg"].lower()
    return f"{_dotted(key_loc)} {expected}, got {value!r} (in {source})"


# What a value must be, by the first word of pydantic's error type (int_parsing, float_type, bool_parsing, ...).
_EXPECTED = {
    "int": "must be an integer",
    "float": "must be a number",
    "bool": "must be true or false",
    "string": "must be text",
    "list": "must be a list",
    "tuple": "must be a list",
    "dict": "must be a mapping",
    "dataclass": "must be a mapping",
    "too_long": "has too many items",
    "too_short": "has too few items",
}


def _dotted(loc: Sequence[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f"{'.' if i else ''}{p}" for i, p in enumerate(loc))


def _type_at(cls: Any, loc: Sequence[Any]) -> Any:
    """The declared type at a dotted location, looking through optionals, dicts, lists and tuples."""
    tp = cls
    for part in loc:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]
        if dataclasses.is_dataclass(tp) and isinstance(part, str):
            tp = typing.get_type_hints(tp).get(part, Any)
        elif typing.get_origin(tp) in (dict, list, tuple):
            tp = typing.get_args(tp)[-1]
        else:
            return Any
    return tp


def _field_names(tp: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(tp) if f.init] if dataclasses.is_dataclass(tp) else []


def _source_of(loc: Sequence[Any], set_by: dict[tuple[str, ...], str], file: str) -> str:
    keys = tuple(str(p) for p in loc)
    for n in range(len(keys), 0, -1):
        if keys[:n] in set_by:
            return f"override {set_by[keys[:n]]!r}"
    return file


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_dotted(raw: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    node = raw
    for i, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {'.'.join(keys)}: {'.'.join(keys[: i + 1])} is not a mapping")
        node = child
    node[keys[-1]] = value
