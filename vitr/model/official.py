"""Run the official CLIP4Clip / CLIP2Video releases in vitr (clip2video.md §11).

A released `pytorch_model.bin.N` is a plain `torch.save` state dict of the whole official model: OpenAI CLIP under
`clip.*` (fp16 Linear/Conv/attention weights) and the temporal modules under their own names. This module reads it
without running code, infers the CLIP architecture from tensor shapes (as open_clip's
`build_model_from_openai_state_dict` does) and the head from which temporal modules are present, maps every name
through `NAME_TABLE` onto a `VideoTextModel`, and upcasts to fp32. Keys no vitr module takes are listed in the
report, never dropped unseen; keys a module needs but the file lacks are a `CheckpointError`.

CLIP2Video checkpoints switch on the official attention-mask tiling (`mask_tiling="clip2video_repeat"`) and the
official TDB difference mask (`difference_mask="official"`), so scores reproduce the released code exactly.
`write_model_dir` / `load_model_dir` store the converted model as `model.safetensors` plus a `config.json` that
describes the architecture, which is what `vitr convert` writes and every `--checkpoint` option reads.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import torch

from vitr.backbones.open_clip_backbone import OpenClipBackbone, build_open_clip_model, cast_to_precision
from vitr.backbones.weights import read_state_dict
from vitr.errors import CheckpointError, ConfigError
from vitr.files import atomic_write, derived_buffers, load_state_strict, save_safetensors
from vitr.heads.base import create_head
from vitr.heads.temporal_transformer import default_heads
from vitr.model.retrieval import VideoTextModel

log = logging.getLogger(__name__)

MODEL_DIR_FORMAT = "vitr.model"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

# official name (prefix when it ends with ".", else the exact key) -> name in vitr's VideoTextModel
NAME_TABLE: tuple[tuple[str, str], ...] = (
    ("clip.", "backbone.model."),
    ("frame_position_embeddings.", "head.frame_position_embeddings."),
    ("type_position_embeddings.", "head.type_position_embeddings."),
    ("transformerClip.", "head.transformerClip."),
    ("frame2t_attention.", "head.frame2t_attention."),
    ("actionClip.", "head.actionClip."),
    ("trans_layernorm.", "head.trans_layernorm."),
    ("weight_center", "head.weight_center"),
    ("emb_center", "head.emb_center"),
    ("frame2t_projection", "head.frame2t_projection"),
)
# Official modules vitr does not implement: loading without them would silently change the model.
UNSUPPORTED = {
    "lstm_visual.": "CLIP4Clip's seqLSTM head",
    "cross.": "CLIP4Clip's tightTransf cross-encoder",
    "similarity_dense.": "CLIP4Clip's tightTransf cross-encoder",
    "clip.visual.conv2.": "CLIP4Clip's 3-D patch embedding (--linear_patch 3d)",
}
# Integers OpenAI's JIT CLIP keeps next to its weights; not parameters of any module.
CLIP_METADATA = ("input_resolution", "context_length", "vocab_size")
CLIP2VIDEO_KEYS = ("type_position_embeddings.weight", "weight_center", "frame2t_attention.", "actionClip.")
_BLOCK_INDEX = re.compile(r"^transformerClip\.resblocks\.(\d+)\.")
_RESBLOCK = re.compile(r"^(.*\.resblocks\.\d+)\.")
_SHOWN_KEYS = 12


@dataclass
class OfficialCheckpointReport:
    """What `load_official_checkpoint` found and decided; `summary()` is what `vitr convert` prints."""

    source: str
    release: str  # "clip2video", "clip4clip" or "openai-clip" (a bare CLIP state dict)
    head: str
    head_kwargs: dict[str, Any]
    backbone: str  # open_clip architecture name, or a descriptive one for unregistered shapes
    backbone_cfg: dict[str, Any]
    loaded: int = 0  # tensors copied into the model
    upcast: int = 0  # fp16/bf16 tensors converted to fp32
    unknown: list[str] = field(default_factory=list)  # keys no vitr module takes (not loaded)
    ignored: list[str] = field(default_factory=list)  # CLIP metadata and derived buffers (the causal mask)

    def summary(self) -> str:
        lines = [
            f"{self.source}: {self.release} checkpoint, head {self.head!r} "
            f"{json.dumps(self.head_kwargs, sort_keys=True)}",
            f"  backbone {self.backbone}; {self.loaded} tensors loaded, {self.upcast} upcast from half precision",
        ]
        if self.ignored:
            lines.append(f"  ignored (metadata, recomputed buffers): {', '.join(self.ignored)}")
        if self.unknown:
            lines.append(f"  NOT loaded ({len(self.unknown)} keys no vitr module takes): {_grouped(self.unknown)}")
        return "\n".join(lines)


def read_official_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely; also accepts the official `pytorch_model.bin.{epoch}` names."""
    return read_state_dict(path)


def load_official_checkpoint(
    path: str | Path,
    head: str | None = None,
    head_kwargs: Mapping[str, Any] | None = None,
    num_frames: int = 12,
    precision: str = "fp32",
) -> tuple[VideoTextModel, OfficialCheckpointReport]:
    """A released CLIP4Clip/CLIP2Video checkpoint (or a bare OpenAI CLIP file) -> (eval-mode model, report).

    `head` forces a head ("tab" for a CLIP2Video checkpoint trained without TDB in its global branch); by default it
    is inferred. `head_kwargs` override the inferred options, e.g. {"mask_tiling": "per_sample"} for the corrected
    attention mask.
    """
    state = read_official_file(path)
    return load_official_state(state, str(path), head, head_kwargs, num_frames, precision)


def load_official_state(
    state: Mapping[str, torch.Tensor],
    source: str = "<state dict>",
    head: str | None = None,
    head_kwargs: Mapping[str, Any] | None = None,
    num_frames: int = 12,
    precision: str = "fp32",
) -> tuple[VideoTextModel, OfficialCheckpointReport]:
    """`load_official_checkpoint` on an already read state dict with official key names."""
    state = dict(state)
    _reject_unsupported(state, source)
    bare_clip = not any(key.startswith("clip.") for key in state)
    if bare_clip:
        _require_clip(state, source)
        state = {f"clip.{key}": value for key, value in state.items()}
    ignored = [key for key in (f"clip.{name}" for name in CLIP_METADATA) if state.pop(key, None) is not None]
    clip_state = {key.removeprefix("clip."): value for key, value in state.items() if key.startswith("clip.")}
    backbone_cfg = infer_clip_config(clip_state, source)
    release = "openai-clip" if bare_clip else infer_release(state)
    head_name, kwargs = infer_head(state, backbone_cfg, head, release)
    kwargs.update(head_kwargs or {})

    backbone = _build_backbone(backbone_cfg, precision)
    try:
        temporal_head = create_head(head_name, backbone.embed_dim, num_frames=num_frames, **kwargs)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"cannot build head {head_name!r} with options {kwargs}: {exc}") from exc
    model = VideoTextModel(backbone, temporal_head)
    if bare_clip:
        temporal_head.init_from_clip(clip_state)  # the official fresh start: temporal modules from CLIP's text tower
    report = OfficialCheckpointReport(
        source,
        release,
        head_name,
        kwargs,
        backbone.name,
        backbone_cfg,
        ignored=[k.removeprefix("clip.") for k in ignored],
    )
    mapped = _map_names(state, model, report, keep_fresh_head=bare_clip)
    _require_complete(mapped, model, report)
    load_state_strict(model, mapped, source)
    cast_to_precision(backbone.model, precision)
    if report.unknown:
        log.warning("%s: %d keys were not loaded: %s", source, len(report.unknown), _shown(report.unknown))
    return model.eval(), report


def infer_release(state: Mapping[str, torch.Tensor]) -> str:
    """'clip2video' when any CLIP2Video-only module is present, else 'clip4clip'."""
    c2v = any(
        key == marker or (marker.endswith(".") and key.startswith(marker))
        for key in state
        for marker in CLIP2VIDEO_KEYS
    )
    return "clip2video" if c2v else "clip4clip"


def infer_clip_config(clip_state: Mapping[str, torch.Tensor], source: str = "<state dict>") -> dict[str, Any]:
    """open_clip model config of an OpenAI-named ViT CLIP state dict, read from tensor shapes."""
    _require_clip(clip_state, source, prefix="clip.")
    if "visual.proj" not in clip_state:
        raise CheckpointError(
            f"{source}: the CLIP in this checkpoint has a ResNet image tower (no visual.proj); "
            "vitr runs the official video models on ViT CLIPs only"
        )
    patch = int(clip_state["visual.conv1.weight"].shape[-1])
    grid = round((clip_state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = int(clip_state["ln_final.weight"].shape[0])
    return {
        "embed_dim": int(clip_state["text_projection"].shape[1]),
        "quick_gelu": True,  # OpenAI CLIP was trained with QuickGELU
        "vision_cfg": {
            "image_size": patch * grid,
            "layers": _count_blocks(clip_state, "visual.transformer.resblocks."),
            "width": int(clip_state["visual.conv1.weight"].shape[0]),
            "patch_size": patch,
        },
        "text_cfg": {
            "context_length": int(clip_state["positional_embedding"].shape[0]),
            "vocab_size": int(clip_state["token_embedding.weight"].shape[0]),
            "width": text_width,
            "heads": max(1, text_width // 64),
            "layers": _count_blocks(clip_state, "transformer.resblocks."),
        },
    }


def infer_head(
    state: Mapping[str, torch.Tensor], backbone_cfg: Mapping[str, Any], head: str | None, release: str
) -> tuple[str, dict[str, Any]]:
    """(head name, its options) for the temporal modules present; `head` (when given) overrides the name."""
    has = set(state)
    tdb_tokens = "type_position_embeddings.weight" in has
    tab = "weight_center" in has
    temporal = any(_BLOCK_INDEX.match(key) for key in has)
    if head is None:
        head = "clip2video" if tab else "tdb" if tdb_tokens else "seqTransf" if temporal else "meanP"
    if head == "meanP":
        return head, {}
    width = int(backbone_cfg["text_cfg"]["width"])
    kwargs: dict[str, Any] = {
        "heads": default_heads(width),
        "mask_tiling": "clip2video_repeat" if release == "clip2video" else "per_sample",
    }
    layers = len({int(m.group(1)) for m in map(_BLOCK_INDEX.match, has) if m})
    if head in ("seqTransf", "tdb", "tab", "clip2video") and layers:
        kwargs["layers"] = layers
    if head in ("tdb", "tab", "clip2video"):
        kwargs["difference_mask"] = "official" if release == "clip2video" else "strict"
        kwargs["temporal_proj"] = _temporal_proj(has, release)
    if head in ("tab", "clip2video") and tab:
        kwargs["center_k"] = int(state["weight_center"].shape[0])
    return head, kwargs


def _temporal_proj(keys: set[str], release: str) -> str:
    """Which difference enhancer the file's modules imply; a bare CLIP gets the released one."""
    if release == "openai-clip" or any(key.startswith("frame2t_attention.") for key in keys):
        return "sigmoid_selfA"
    return "sigmoid_mlp" if "frame2t_projection" in keys else "none"


def _map_names(
    state: Mapping[str, torch.Tensor], model: VideoTextModel, report: OfficialCheckpointReport, keep_fresh_head: bool
) -> dict[str, torch.Tensor]:
    """Official names -> vitr names through NAME_TABLE, fp32; fills report.loaded/upcast/unknown."""
    own = model.state_dict()
    derived = derived_buffers(model)
    mapped = {}
    for key, tensor in state.items():
        target = _vitr_name(key)
        if target in derived:  # e.g. CLIP's causal mask, which TorchScript archives store with the weights
            report.ignored.append(key.removeprefix("clip."))
            continue
        if target is None or target not in own:
            report.unknown.append(key)
            continue
        if tensor.dtype in (torch.float16, torch.bfloat16):
            report.upcast += 1
        mapped[target] = tensor.float() if tensor.is_floating_point() else tensor
    if keep_fresh_head:  # a bare CLIP file carries no head; keep the CLIP-initialised one
        mapped.update({k: v for k, v in own.items() if k.startswith("head.")})
    report.loaded = len(mapped)
    return mapped


def _require_complete(
    mapped: Mapping[str, torch.Tensor], model: VideoTextModel, report: OfficialCheckpointReport
) -> None:
    """Every tensor the model needs must come from the file; name the missing ones as the file would."""
    missing = sorted(_official_name(key) for key in model.state_dict() if key not in mapped)
    if missing:
        raise CheckpointError(
            f"{report.source} lacks {len(missing)} tensors the {report.head!r} head on this CLIP needs: "
            f"{_grouped(missing)}; the file is incomplete, or holds another head (pass head=... to choose it)"
        )


def _official_name(key: str) -> str:
    for official, ours in NAME_TABLE:
        if ours.endswith(".") and key.startswith(ours):
            return official + key.removeprefix(ours)
        if key == ours:
            return official
    return key


def _vitr_name(key: str) -> str | None:
    for official, ours in NAME_TABLE:
        if official.endswith(".") and key.startswith(official):
            return ours + key.removeprefix(official)
        if key == official:
            return ours
    return None


def _reject_unsupported(state: Mapping[str, torch.Tensor], source: str) -> None:
    for prefix, what in UNSUPPORTED.items():
        keys = sorted(key for key in state if key.startswith(prefix))
        if keys:
            raise CheckpointError(f"{source} uses {what} ({_shown(keys)}), which vitr does not implement")


_CLIP_REQUIRED = (
    "visual.conv1.weight",
    "visual.positional_embedding",
    "text_projection",
    "positional_embedding",
    "token_embedding.weight",
    "ln_final.weight",
)


def _require_clip(state: Mapping[str, torch.Tensor], source: str, prefix: str = "") -> None:
    """A clear error for files that are not OpenAI-named CLIP (or CLIP4Clip/CLIP2Video) state dicts."""
    missing = [prefix + key for key in _CLIP_REQUIRED if key not in state]
    if not missing:
        return
    if prefix:
        raise CheckpointError(f"{source}: the clip.* part lacks {', '.join(missing)}; is the checkpoint complete?")
    if state and all(key.startswith(("backbone.", "head.")) for key in state):
        hint = "it looks like vitr's own model weights; pass it as --checkpoint together with the model it belongs to"
    else:
        hint = "expected a CLIP4Clip/CLIP2Video pytorch_model.bin.N (keys clip.*, transformerClip.*, ...)"
    raise CheckpointError(
        f"{source} is not an official CLIP4Clip/CLIP2Video checkpoint: found keys {_shown(sorted(state))}; {hint}"
    )


def _count_blocks(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    return len({key[len(prefix) :].split(".")[0] for key in state if key.startswith(prefix)})


def _build_backbone(model_cfg: dict[str, Any], precision: str) -> OpenClipBackbone:
    name = registered_architecture(model_cfg) or _descriptive_name(model_cfg)
    return OpenClipBackbone(build_open_clip_model(model_cfg, None, precision), name, model_cfg)


def registered_architecture(model_cfg: Mapping[str, Any]) -> str | None:
    """The open_clip architecture (e.g. 'ViT-B-32-quickgelu') with exactly these shapes, if one is registered."""
    for name in open_clip.list_models():
        if _shape_fields(open_clip.get_model_config(name) or {}) == _shape_fields(model_cfg):
            return name
    return None


def _shape_fields(cfg: Mapping[str, Any]) -> tuple:
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    if set(vision) - {"image_size", "layers", "width", "patch_size"} or set(text) - {
        "context_length",
        "vocab_size",
        "width",
        "heads",
        "layers",
    }:
        return ()  # configs with extra options build other models
    return (
        cfg.get("embed_dim"),
        bool(cfg.get("quick_gelu", False)),
        *(vision.get(k) for k in ("image_size", "layers", "width", "patch_size")),
        *(text.get(k) for k in ("context_length", "vocab_size", "width", "heads", "layers")),
    )


def _descriptive_name(cfg: Mapping[str, Any]) -> str:
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    return f"openai-vit-w{v['width']}-l{v['layers']}-p{v['patch_size']}-s{v['image_size']}-t{t['width']}x{t['layers']}"


# ---------------------------------------------------------------------------------------------- model directories


def write_model_dir(
    model: VideoTextModel, report: OfficialCheckpointReport, directory: str | Path, num_frames: int = 12
) -> Path:
    """Write `model.safetensors` (the VideoTextModel state dict) and `config.json` (architecture + ModelSpec)."""
    if not isinstance(model.backbone, OpenClipBackbone):
        raise CheckpointError("only models with an open_clip backbone can be written as a vitr model directory")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    save_safetensors(directory / WEIGHTS_NAME, state, metadata={"format": MODEL_DIR_FORMAT})
    config = {
        "format": MODEL_DIR_FORMAT,
        "model_spec": {
            "backbone": report.backbone,
            "head": report.head,
            "head_kwargs": report.head_kwargs,
            "num_frames": num_frames,
        },
        "backbone": model.backbone.export_config(),
        "converted_from": {"path": report.source, "release": report.release, "not_loaded": report.unknown},
    }
    atomic_write(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return directory


def is_model_dir(path: str | Path) -> bool:
    """True for a directory written by `write_model_dir` (its config.json describes the whole model)."""
    config = Path(path) / CONFIG_NAME
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("format") == MODEL_DIR_FORMAT
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def load_model_dir(
    directory: str | Path,
    head: str | None = None,
    head_kwargs: Mapping[str, Any] | None = None,
    num_frames: int | None = None,
    precision: str = "fp32",
) -> VideoTextModel:
    """Rebuild a model written by `write_model_dir`; `head_kwargs` override the stored options."""
    directory = Path(directory)
    try:
        config = json.loads((directory / CONFIG_NAME).read_text())
        spec, backbone_cfg = config["model_spec"], config["backbone"]
        model_cfg = backbone_cfg["model_cfg"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{directory / CONFIG_NAME} is not a readable vitr model config: {exc}") from exc
    preprocess = {
        **backbone_cfg.get("preprocess_cfg", {}),
        "mean": backbone_cfg.get("image_mean"),
        "std": backbone_cfg.get("image_std"),
    }
    model_obj = build_open_clip_model(model_cfg, {k: v for k, v in preprocess.items() if v is not None}, precision)
    backbone = OpenClipBackbone(model_obj, str(backbone_cfg.get("arch", spec["backbone"])), model_cfg)
    kwargs = {**spec.get("head_kwargs", {}), **(head_kwargs or {})}
    frames = num_frames if num_frames is not None else int(spec.get("num_frames", 12))
    model = VideoTextModel(backbone, create_head(head or spec["head"], backbone.embed_dim, num_frames=frames, **kwargs))
    load_state_strict(model, read_state_dict(directory / WEIGHTS_NAME), directory / WEIGHTS_NAME)
    cast_to_precision(backbone.model, precision)
    return model.eval()


def load_described_model(
    checkpoint: str | Path,
    head: str | None = None,
    head_kwargs: Mapping[str, Any] | None = None,
    num_frames: int = 12,
    precision: str = "fp32",
) -> VideoTextModel | None:
    """The model a checkpoint describes by itself (a vitr model directory or an official CLIP4Clip/CLIP2Video
    file), or None for plain vitr weights, which need the model they belong to."""
    path = Path(checkpoint)
    if path.is_dir():
        return load_model_dir(path, head, head_kwargs, num_frames, precision) if is_model_dir(path) else None
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    state = read_official_file(path)
    if not any(key.startswith("clip.") for key in state):
        return None
    return load_official_state(state, str(path), head, head_kwargs, num_frames, precision)[0]


def _grouped(keys: list[str]) -> str:
    """Keys listed with each fully named block collapsed to one entry: `actionClip.resblocks.0.* (12 tensors)`."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        block = _RESBLOCK.match(key)
        groups.setdefault(f"{block.group(1)}.*" if block else key, []).append(key)
    return _shown(
        [f"{name} ({len(members)} tensors)" if len(members) > 1 else members[0] for name, members in groups.items()]
    )


def _shown(keys: list[str]) -> str:
    more = len(keys) - _SHOWN_KEYS
    return ", ".join(keys[:_SHOWN_KEYS]) + (f", ... and {more} more" if more > 0 else "")
