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
from vitr.files import atomic_write
from vitr.losses.distill import Aggregation, DistillCriterion
from vitr.losses.selection import SelectionConfig
from vitr.model.factory import ModelSpec

T = TypeVar("T")

# How every recipe dataclass is validated; nested dataclasses (ModelSpec) inherit it from the one they sit in.
# Numbers are accepted as text fields (`output_dir=2024`); anything else of the wrong type is an error.
RECIPE_CONFIG = pydantic.ConfigDict(extra="forbid", coerce_numbers_to_str=True)

Precision = Literal["auto", "fp32", "bf16", "fp16"]  # auto: vitr.precision.resolve_autocast
Freeze = Literal["visual", "all", "none"]
OptimizerName = Literal["adamw", "bertadam_c4c"]
ScheduleName = Literal["warmup_cosine", "c4c_warmup_cosine", "constant"]
DecayRule = Literal["standard", "c4c"]
Anchor = Literal["feature", "relation", "symmetric", "still"]
PseudoForm = Literal["sentence", "list", "single", "temporal"]  # vitr.pseudo.texts.FORMS
FilterRule = Literal["rank", "fraction", "weight"]
TeacherKind = Literal["model", "video", "minilm", "bow"]


@dataclass
class PsSclConfig:
    """The `ps_scl:` section: train on pseudo pairs with SeLeCT (ps_scl.md §5-§6), alone or beside labelled pairs.

    Each epoch every pseudo-labelled video draws one of its texts; the selection weights the pairs of each batch.
    """

    pseudo_labels: str | None = None  # the JSONL file `vitr pseudo-label` wrote (the CLI reads it)
    videos: str | None = None  # the folder that was pseudo-labelled; default: the pseudo-label file's folder
    forms: list[PseudoForm] = field(default_factory=list)  # pseudo-text forms to train on; empty: all
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    text_sampling: Literal["uniform", "teacher"] = "uniform"  # teacher: softmax(r / text_temperature) per video
    text_temperature: float = 0.1
    # zero-shot anchor (not in the paper): + anchor_weight * mean_i (1 - cos(f(v_i), meanP(v_i))), which keeps each
    # trained video embedding near the zero-shot one of the same frames, so a head that learns time from
    # pseudo-texts does not forget what CLIP saw in a frame (feature distillation against forgetting, as ZSCL,
    # Zheng et al., ICCV 2023); 0: off. Needs a head whose video embedding lives in CLIP's space (meanP,
    # seqTransf, TDB), not TAB's concatenation.
    anchor_weight: float = 0.0
    # what the anchor keeps: "feature" each embedding itself (above); "relation" only the batch's video-to-video
    # retrieval distribution, KL(softmax(S0 / T) || softmax(S / T)) per row with S0, S the zero-shot and trained
    # cosine matrices, diagonal out (relational distillation, Park et al., CVPR 2019). "symmetric" anchors only the
    # order-free half of the embedding, (f(v) + f(reversed v)) / 2, to meanP. "still" holds only the pseudo videos
    # in which the tagger saw nothing change (no temporal pseudo-text), in full, and leaves those it saw change free.
    anchor: Anchor = "feature"
    anchor_temperature: float = 0.01  # T of the relation anchor: 1 / CLIP's learned logit scale of 100

    def __post_init__(self) -> None:
        if self.text_temperature <= 0:
            raise ConfigError(f"ps_scl.text_temperature must be positive, got {self.text_temperature}")
        if self.anchor_weight < 0:
            raise ConfigError(f"ps_scl.anchor_weight must be >= 0, got {self.anchor_weight}")
        if self.anchor not in typing.get_args(Anchor):
            raise ConfigError(f"ps_scl.anchor must be one of {list(typing.get_args(Anchor))}, got {self.anchor!r}")
        if self.anchor_temperature <= 0:
            raise ConfigError(f"ps_scl.anchor_temperature must be positive, got {self.anchor_temperature}")


@dataclass
class CaptionFilterConfig:
    """Which captions to drop or down-weight, from their rank under the teachers (`caption_ranks`).

    rank: keep captions whose own video ranks < max_rank (the official mask names "less100"/"less80");
    fraction: drop the worst `fraction` of captions by rank; weight: keep all, weight = min(1, max_rank/(rank+1)).
    `keep_one_per_video` never leaves a video without a caption (its best-ranked one stays).
    """

    rule: FilterRule = "rank"
    max_rank: float = 100.0
    fraction: float = 0.1
    keep_one_per_video: bool = True

    def __post_init__(self) -> None:
        if self.rule not in ("rank", "fraction", "weight"):
            raise ConfigError(f"filter rule must be 'rank', 'fraction' or 'weight', got {self.rule!r}")
        if self.max_rank <= 0:
            raise ConfigError(f"max_rank must be positive, got {self.max_rank}")
        if not 0 <= self.fraction < 1:
            raise ConfigError(f"fraction must lie in [0, 1), got {self.fraction}")


@dataclass
class TeacherSpec:
    """One TeachText teacher: a trained vitr model (`model`: its spec, with `checkpoint` naming the weights or a
    training run's output directory, read as that run's latest checkpoint: `vitr.train.checkpoint.resolve_weights`),
    or a projection teacher fitted on the training captions first (`minilm`: a sentence encoder's text side, `bow`:
    a bag of words), each over the same cached frame features the student sees (teachtext.md §1.1).

    `video` is the journal version's video-side distillation: a trained model with a costlier video side than the
    student's (more frames, `model.num_frames`, from its own frame cache; any head, e.g. CLIP2Video) teaches a
    student with a cheap one through its similarity matrix, as the text-side teachers do.
    """

    kind: TeacherKind = "minilm"
    name: str | None = None  # default: the kind
    model: ModelSpec | None = None  # kind model: the trained model (its backbone must share the student's frames)
    embed_dim: int = 256  # minilm / bow
    epochs: int = 30  # minilm / bow: fitting epochs on the training split
    seed: int = 100

    def __post_init__(self) -> None:
        if (self.kind in ("model", "video")) != (self.model is not None):
            raise ConfigError("a teacher of kind 'model' or 'video' needs a `model:` spec; other kinds take none")
        if self.kind == "video" and not self.model.checkpoint:
            raise ConfigError("a teacher of kind 'video' needs model.checkpoint: the trained weights that teach")


@dataclass
class TeachTextConfig:
    """The `teachtext:` section: L = L_r + weight * L_d; defaults are the official recipe (teachtext.md §1.4-1.5)."""

    teachers: list[TeacherSpec] = field(default_factory=list)  # the CLI builds these; code may pass a bank instead
    bank: str | None = None  # where the teacher bank is cached; default output_dir/teacher_bank.safetensors
    weight: float = 1.0  # L = L_r + weight * L_d
    aggregation: Aggregation = "mean"
    teacher_weights: list[float] | None = None  # only with aggregation="weighted"
    loss: DistillCriterion = "huber"
    beta: float = 1.0
    scores: Literal["cosine", "logits"] = "cosine"  # logits: each model's cosines times its own exp(logit_scale)
    filter: CaptionFilterConfig | None = None  # drop captions the teachers rank far from their video first

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ConfigError(f"teachtext weight must be >= 0, got {self.weight}")
        if (self.aggregation == "weighted") != (self.teacher_weights is not None):
            raise ConfigError("teacher_weights must be given exactly when aggregation='weighted'")
        if self.teacher_weights is not None and self.teachers and len(self.teacher_weights) != len(self.teachers):
            raise ConfigError(f"{len(self.teacher_weights)} teacher_weights for {len(self.teachers)} teachers")


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
    precision: Precision = "fp32"  # autocast dtype of the forward pass (auto: AMP on a GPU, none on a CPU); loss fp32
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
    # WiSE-FT drift guard (Wortsman et al., CVPR 2022; ps_scl.md §4 #15): after the last step the trained weights
    # become (1 - alpha) theta_start + alpha theta; None: off
    wise_alpha: float | None = None
    ps_scl: PsSclConfig | None = None  # train on pseudo pairs with SeLeCT (with a dataset: labelled + pseudo)
    teachtext: TeachTextConfig | None = None  # add TeachText's distillation from a teacher bank

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
        if self.wise_alpha is not None and not 0.0 <= self.wise_alpha <= 1.0:
            raise ConfigError(f"wise_alpha must lie in [0, 1], got {self.wise_alpha}")
        if self.ps_scl is not None and self.freeze == "none":
            raise ConfigError("PS-SCL trains on cached frame features; use freeze: visual or all")
        for spec in self.teachtext.teachers if self.teachtext is not None else []:
            if spec.kind == "video" and spec.model.num_frames < self.model.num_frames:
                raise ConfigError(
                    f"teachtext video teacher {spec.name or 'video'!r} reads {spec.model.num_frames} frames, fewer "
                    f"than the student's {self.model.num_frames}: a video-side teacher has the costlier video side"
                )


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
    atomic_write(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


_dumper = functools.cache(pydantic.TypeAdapter)  # any dataclass can be written; only recipes are loaded


@functools.cache
def _adapter(cls: type) -> pydantic.TypeAdapter:
    if getattr(cls, "__pydantic_config__", {}).get("extra") != "forbid":  # else a misspelt key would be dropped
        raise TypeError(f"{cls.__name__} must set `__pydantic_config__ = RECIPE_CONFIG` to be loaded as a config")
    return pydantic.TypeAdapter(cls)


def _validate(cls: type[T], data: Any, source_of: typing.Callable[[tuple], str], overall: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of keys to values, got {type(data).__name__}")
    _check_booleans(cls, data, (), source_of)
    try:
        return _adapter(cls).validate_python(data)
    except ConfigError as e:  # a rule between fields (`__post_init__`), e.g. batch_size vs grad_accum
        raise ConfigError(f"{e} (in {overall})") from None
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        more = f" (and {e.error_count() - 1} more problems)" if e.error_count() > 1 else ""
        raise ConfigError(_explain(cls, first, source_of(first["loc"])) + more) from None


def _check_booleans(cls: type, data: Any, loc: tuple, source_of: typing.Callable[[tuple], str]) -> None:
    """Refuse true/false for a number and a number for true/false, which pydantic's lax mode would turn into 1/0 or
    a flag (`epochs: true` would train one epoch); strict mode is not an option, it refuses mappings for sections."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        here = (*loc, key)
        tp = _type_at(cls, here)
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
            tp = args[0]
        if isinstance(value, dict):
            _check_booleans(cls, value, here, source_of)
        elif isinstance(value, bool) and tp in (int, float):
            raise ConfigError(f"{_dotted(here)} {_EXPECTED[tp.__name__]}, got {value!r} (in {source_of(here)})")
        elif tp is bool and not isinstance(value, bool):
            raise ConfigError(f"{_dotted(here)} {_EXPECTED['bool']}, got {value!r} (in {source_of(here)})")


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
        literal = _type_at(cls, loc)  # the item's own type for a list of choices (ps_scl.forms[0])
        choices = typing.get_args(literal) if typing.get_origin(literal) is Literal else error["ctx"]["expected"]
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
