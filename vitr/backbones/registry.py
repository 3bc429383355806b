"""`load_backbone`: the one way to turn a name string (plus a tag or a weights file) into a `Backbone`.

Specs follow open_clip's conventions (ecosystem.md §1.3): an architecture name with a pretrained tag
(`ViT-B-32` + `laion2b_s34b_b79k`), `hf-hub:org/name` (an open_clip repo on the Hugging Face hub),
`local-dir:PATH` or a directory path, plus `hf:org/name` for a `transformers.CLIPModel` on the hub. The
activation follows the weights, not the name: OpenAI weights (tag `openai` or an OpenAI `.pt`) get QuickGELU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import open_clip
from open_clip.pretrained import download_pretrained_from_hf
from safetensors import SafetensorError

from vitr.backbones.base import Backbone
from vitr.backbones.hf_clip import load_hf_clip
from vitr.backbones.open_clip_backbone import OpenClipBackbone, build_open_clip_model, cast_to_precision
from vitr.backbones.weights import (
    CONFIG_NAME,
    VITR_FORMAT,
    WEIGHTS_NAME,
    is_torchscript_archive,
    read_state_dict,
)
from vitr.errors import CheckpointError, ConfigError
from vitr.files import load_state_strict
from vitr.precision import dtype_of

HF_PREFIX = "hf:"
HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
OPEN_CLIP_CONFIG = "open_clip_config.json"
# open_clip's own preference order for the weights file of a local or hub directory.
_OPEN_CLIP_WEIGHT_FILES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
)
_WEIGHTS_HINT = "pass --weights PATH (a .safetensors, .bin/.pth state dict or OpenAI .pt file) or a saved directory"


def load_backbone(
    spec: str,
    pretrained: str | None = None,
    weights: str | Path | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    random_init: bool = False,
) -> Backbone:
    """Build a backbone in eval mode on `device`. `pretrained` is an open_clip tag (or a weights file path);
    `weights` is a state-dict file loaded into the named architecture with every key checked.

    An architecture name with neither is refused unless `random_init` allows random weights: embeddings of a
    random model are noise, so that must be the caller's choice (pretraining from scratch, tests), never a
    silent default. Where weights are given, `random_init` changes nothing."""
    dtype_of(precision)  # an unknown name is a one-line ConfigError
    return _resolve(str(spec), pretrained, weights, precision, random_init).to(device).eval()


def names_architecture(spec: str) -> bool:
    """True when `spec` is an open_clip architecture name (whose weights must come from a tag or a file)."""
    return not spec.startswith((HF_PREFIX, HF_HUB_PREFIX, LOCAL_DIR_PREFIX)) and spec.replace("/", "-") in (
        open_clip.list_models()
    )


def backbone_directory(spec: str) -> Path | None:
    """The local directory a backbone spec names (`local-dir:PATH` or a path), None for an architecture or hub name."""
    if spec.startswith(LOCAL_DIR_PREFIX):
        return Path(spec.removeprefix(LOCAL_DIR_PREFIX))
    if spec.startswith((HF_PREFIX, HF_HUB_PREFIX)) or names_architecture(spec):
        return None
    return Path(spec)


def _resolve(spec: str, pretrained: str | None, weights: str | Path | None, precision: str,
             random_init: bool) -> Backbone:
    if names_architecture(spec):
        return _load_architecture(spec.replace("/", "-"), pretrained, weights, precision, random_init)
    if pretrained is not None or weights is not None:
        raise ConfigError(
            f"pretrained tags and --weights apply to open_clip architecture names such as 'ViT-B-32'; "
            f"{spec!r} is not one (a directory or hub repo names its own weights)"
        )
    if spec.startswith(HF_PREFIX):
        return _load_hf(spec.removeprefix(HF_PREFIX), precision)
    if spec.startswith(HF_HUB_PREFIX):
        return _load_open_clip_hub(spec.removeprefix(HF_HUB_PREFIX), precision)
    if spec.startswith(LOCAL_DIR_PREFIX):
        return _load_directory(Path(spec.removeprefix(LOCAL_DIR_PREFIX)), precision)
    if Path(spec).is_dir():
        return _load_directory(Path(spec), precision)
    if Path(spec).exists() or len(Path(spec).parts) > 1:  # meant as a path: say which one is missing
        raise CheckpointError(
            f"backbone directory {spec!r} not found (looked for {str(Path(spec).absolute())!r}: "
            f"{'not a directory' if Path(spec).exists() else 'no such directory'})"
        )
    raise ConfigError(
        f"unknown backbone {spec!r}: not an open_clip architecture and not a directory; use an architecture from "
        f"open_clip.list_models() (e.g. 'ViT-B-32', 'vitr-lab-tiny'), 'hf:org/name', 'hf-hub:org/name' "
        f"or 'local-dir:PATH'"
    )


def _load_architecture(
    arch: str, pretrained: str | None, weights: str | Path | None, precision: str, random_init: bool
) -> Backbone:
    if pretrained is None and weights is None and not random_init:
        raise CheckpointError(
            f"{arch!r} has no weights: pass --pretrained TAG (e.g. openai for ViT-B-32) or --weights PATH, a trained "
            f"--checkpoint, or --random-init to use random weights on purpose (their search results are noise)"
        )
    model_cfg = open_clip.get_model_config(arch)
    preprocess_cfg: dict[str, Any] = {}
    weights_path = Path(weights) if weights is not None else None
    if pretrained is not None and weights_path is None and Path(pretrained).is_file():
        weights_path = Path(pretrained)
    elif pretrained is not None:
        tag_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
        if not tag_cfg:
            known = open_clip.list_pretrained_tags_by_model(arch)
            raise CheckpointError(
                f"unknown pretrained tag {pretrained!r} for {arch!r}; known tags: {known or 'none'}; or {_WEIGHTS_HINT}"
            )
        model_cfg["quick_gelu"] = tag_cfg.get("quick_gelu", model_cfg.get("quick_gelu", False))
        preprocess_cfg = tag_cfg
        if weights_path is None:
            weights_path = _download_tag(arch, pretrained, tag_cfg)
    state = None
    if weights_path is not None:
        state = read_state_dict(weights_path)
        if is_torchscript_archive(weights_path):
            model_cfg["quick_gelu"] = True
    return _build_open_clip(arch, model_cfg, preprocess_cfg, state, weights_path, precision)


def _download_tag(arch: str, tag: str, tag_cfg: dict[str, Any]) -> Path:
    try:
        path = open_clip.download_pretrained(tag_cfg)
    except Exception as exc:  # hub and url downloads fail with many network/cache exception types
        raise CheckpointError(
            f"cannot download the {arch!r} weights tagged {tag!r} (offline?); {_WEIGHTS_HINT}"
        ) from exc
    if not path:
        raise CheckpointError(f"open_clip has no download location for {arch!r} tag {tag!r}; {_WEIGHTS_HINT}")
    return Path(path)


def _build_open_clip(
    name: str,
    model_cfg: dict[str, Any],
    preprocess_cfg: dict[str, Any],
    state: dict | None,
    source: Path | None,
    precision: str,
) -> OpenClipBackbone:
    model = build_open_clip_model(model_cfg, preprocess_cfg, precision)
    if state is not None:
        load_state_strict(model, state, source or name)
    cast_to_precision(model, precision)
    return OpenClipBackbone(model, name, model_cfg)


def is_backbone_directory(path: Path) -> bool:
    """True for a directory vitr wrote with `save_backbone`: a CLIP on its own (what `vitr pretrain` makes)."""
    config_file = path / CONFIG_NAME
    return config_file.is_file() and _read_json(config_file).get("format") == VITR_FORMAT


def _load_directory(path: Path, precision: str) -> Backbone:
    if not path.is_dir():
        raise CheckpointError(f"backbone directory {str(path)!r} does not exist")
    config_file = path / CONFIG_NAME
    if config_file.is_file():
        config = _read_json(config_file)
        if config.get("format") == VITR_FORMAT:
            return _load_vitr_dir(path, config, precision)
        if config.get("model_type") == "clip":
            return _load_hf(str(path), precision)
    if (path / OPEN_CLIP_CONFIG).is_file():
        weights = next((path / n for n in _OPEN_CLIP_WEIGHT_FILES if (path / n).is_file()), None)
        return _load_open_clip_files(path.name, path / OPEN_CLIP_CONFIG, weights, precision)
    raise CheckpointError(
        f"{str(path)!r} is not a backbone directory: expected {CONFIG_NAME} + {WEIGHTS_NAME} written by vitr, "
        f"a Hugging Face CLIP save_pretrained directory ({CONFIG_NAME} with model_type 'clip'), "
        f"or an open_clip directory ({OPEN_CLIP_CONFIG} + weights)"
    )


def _load_vitr_dir(path: Path, config: dict[str, Any], precision: str) -> Backbone:
    if config.get("backend") != "open_clip" or not isinstance(config.get("model_cfg"), dict):
        raise CheckpointError(f"{str(path / CONFIG_NAME)!r} lacks an open_clip 'model_cfg'; was it written by vitr?")
    preprocess_cfg = dict(config.get("preprocess_cfg", {}))
    preprocess_cfg.update(mean=config.get("image_mean"), std=config.get("image_std"))
    state = read_state_dict(path / WEIGHTS_NAME)
    arch = str(config.get("arch", path.name))
    return _build_open_clip(arch, config["model_cfg"], preprocess_cfg, state, path / WEIGHTS_NAME, precision)


def _load_open_clip_files(name: str, config_file: Path, weights: Path | None, precision: str) -> Backbone:
    """An open_clip export: `open_clip_config.json` ({"model_cfg", "preprocess_cfg"}) next to its weights."""
    config = _read_json(config_file)
    if weights is None:
        raise CheckpointError(
            f"no weights file next to {str(config_file)!r}; expected one of {_OPEN_CLIP_WEIGHT_FILES}"
        )
    model_cfg = config.get("model_cfg", config)
    state = read_state_dict(weights)
    return _build_open_clip(name, model_cfg, config.get("preprocess_cfg", {}), state, weights, precision)


def _load_open_clip_hub(repo: str, precision: str) -> Backbone:
    try:
        config_file = Path(download_pretrained_from_hf(repo, filename=OPEN_CLIP_CONFIG))
        weights = Path(download_pretrained_from_hf(repo))
    except Exception as exc:  # hub downloads fail with many network/cache exception types
        raise CheckpointError(
            f"cannot fetch open_clip repo {repo!r} from the Hugging Face hub (offline?); download it and use "
            f"local-dir:PATH, or {_WEIGHTS_HINT}"
        ) from exc
    return _load_open_clip_files(repo, config_file, weights, precision)


def _load_hf(source: str, precision: str) -> Backbone:
    try:
        return load_hf_clip(source, dtype=dtype_of(precision))
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise CheckpointError(
            f"cannot load Hugging Face CLIPModel {source!r} (offline, or not a CLIP checkpoint?): {exc}; "
            "download it with save_pretrained and pass its directory"
        ) from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r}: {exc}") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{str(path)!r} does not hold a JSON object")
    return config
