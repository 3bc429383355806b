"""An open_clip CLIP model as a vitr `Backbone`, with per-token text features for token-level heads."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from copy import deepcopy
from functools import cached_property
from typing import Any

import open_clip
import torch
from open_clip.tokenizer import HFTokenizer
from open_clip.transform import PreprocessCfg, merge_preprocess_dict
from torch import nn

from vitr.backbones.base import Backbone, TextFeatures
from vitr.backbones.fingerprint import WeightsFingerprint
from vitr.errors import ConfigError
from vitr.precision import dtype_of

_SUPPORTED_TEXT_POOLING = ("argmax", "eos")


def build_open_clip_model(
    model_cfg: dict[str, Any], preprocess_cfg: dict[str, Any] | None = None, precision: str = "fp32"
) -> open_clip.CLIP:
    """A randomly initialised fp32 `open_clip.CLIP` from a model-config dict (open_clip's JSON format).

    Layers that compute in fp32 under low precision (LayerNormFp32) are chosen here; the weights themselves
    are cast by `cast_to_precision` after loading, as open_clip does.
    """
    dtype_of(precision)  # an unknown name is a one-line ConfigError
    cfg = deepcopy(model_cfg)
    if cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {}):
        raise ConfigError(
            "vitr's open_clip backend needs a CLIP with open_clip's own text transformer; "
            "configs with custom_text or a Hugging Face text tower are not supported"
        )
    try:
        model = open_clip.CLIP(**cfg, cast_dtype=open_clip.get_cast_dtype(precision))
    except TypeError as exc:
        raise ConfigError(f"invalid open_clip model config: {exc}") from exc
    preprocess = merge_preprocess_dict(PreprocessCfg(), preprocess_cfg or {})
    preprocess["size"] = model.visual.image_size
    open_clip.set_model_preprocess_cfg(model, preprocess)
    return model


def cast_to_precision(model: open_clip.CLIP, precision: str) -> None:
    """OpenAI-style mixed precision: conv/linear/attention weights and projections in bf16/fp16."""
    if dtype_of(precision) != torch.float32:
        open_clip.convert_weights_to_lp(model, dtype=dtype_of(precision))


def open_clip_tokenizer(name: str, model_cfg: dict[str, Any]) -> Callable[..., torch.Tensor]:
    """open_clip's tokenizer for a registered architecture; for a custom config, the one its text_cfg names."""
    if name in open_clip.list_models():
        return open_clip.get_tokenizer(name)
    text_cfg = model_cfg.get("text_cfg", {})
    context_length = text_cfg.get("context_length", 77)
    if text_cfg.get("hf_tokenizer_name"):
        return HFTokenizer(text_cfg["hf_tokenizer_name"], context_length=context_length)
    return open_clip.SimpleTokenizer(context_length=context_length, **text_cfg.get("tokenizer_kwargs", {}))


class OpenClipBackbone(Backbone):
    """Wraps `open_clip.CLIP`. `model_cfg` is the architecture dict it was built from, so it can be saved."""

    def __init__(self, model: open_clip.CLIP, name: str, model_cfg: dict[str, Any]) -> None:
        super().__init__()
        if not isinstance(model, open_clip.CLIP):
            raise ConfigError(f"OpenClipBackbone wraps open_clip.CLIP models, got {type(model).__name__}")
        if model.text_pool_type not in _SUPPORTED_TEXT_POOLING:
            raise ConfigError(
                f"text pooling {model.text_pool_type!r} of {name!r} has no end-of-text position; "
                f"supported: {_SUPPORTED_TEXT_POOLING}"
            )
        self.model = model
        self.name = name
        self.model_cfg = deepcopy(model_cfg)
        preprocess = open_clip.get_model_preprocess_cfg(model)
        self.image_size = _square_size(model.visual.image_size, name)
        self.image_mean = tuple(float(v) for v in preprocess["mean"])
        self.image_std = tuple(float(v) for v in preprocess["std"])
        self.embed_dim = int(model_cfg["embed_dim"])
        self.context_length = int(model.context_length)
        self._fingerprint = WeightsFingerprint(f"open_clip:{name}:{json.dumps(model_cfg, sort_keys=True)}")
        self._visual_fingerprint = WeightsFingerprint(
            f"open_clip-visual:{json.dumps({k: v for k, v in model_cfg.items() if k != 'text_cfg'}, sort_keys=True)}:"
            f"{self.image_mean}:{self.image_std}"
        )

    @property
    def logit_scale(self) -> nn.Parameter:  # type: ignore[override]
        return self.model.logit_scale

    @property
    def preprocess_cfg(self) -> dict[str, Any]:
        return dict(open_clip.get_model_preprocess_cfg(self.model))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, 3, S, S) normalised -> (N, D) projected CLS, fp32, not normalised."""
        dtype = self.model.visual.conv1.weight.dtype
        return self.model.encode_image(images.to(dtype)).float()

    def encode_text(self, tokens: torch.Tensor) -> TextFeatures:
        """tokens: (B, L), L <= context_length -> pooled (B, D), per-position (B, L, D), mask (B, L).

        Mirrors `CLIP.encode_text` step by step but keeps every position; a shorter L uses positional rows
        0..L-1 and the top-left L x L of the causal mask, which is what CLIP4Clip does with 32-token captions.
        """
        m = self.model
        length = tokens.shape[1]
        if length > self.context_length:
            raise ConfigError(f"{length} tokens exceed the context length {self.context_length} of {self.name!r}")
        cast_dtype = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast_dtype)  # (B, L, W)
        x = x + m.positional_embedding[:length].to(cast_dtype)
        attn_mask = None if m.attn_mask is None else m.attn_mask[:length, :length]
        x = m.transformer(x, attn_mask=attn_mask)
        x = m.ln_final(x)  # (B, L, W)
        end = self._end_of_text_positions(tokens)  # (B,)
        pooled = self._project(x[torch.arange(x.shape[0], device=x.device), end])  # (B, D)
        positions = torch.arange(length, device=tokens.device)
        mask = (positions[None, :] <= end[:, None]).float()  # (B, L)
        return TextFeatures(pooled=pooled.float(), tokens=self._project(x).float(), mask=mask)

    def _end_of_text_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B,) index of the token CLIP pools (the largest id, or the first eos id)."""
        if self.model.text_pool_type == "eos":
            return (tokens == self.model.text_eos_id).int().argmax(dim=-1)
        return tokens.argmax(dim=-1)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        projection = self.model.text_projection
        if projection is None:
            return x
        if isinstance(projection, nn.Linear):
            return projection(x)
        return x @ projection

    @cached_property
    def _tokenizer(self) -> Callable[..., torch.Tensor]:
        """Built on first use: reading the BPE vocabulary costs time that frame encoding never needs."""
        return open_clip_tokenizer(self.name, self.model_cfg)

    def tokenize(self, texts: Sequence[str], context_length: int | None = None) -> torch.Tensor:
        """Captions -> (B, L) ids; long captions are truncated, keeping the end-of-text token."""
        return self._tokenizer(list(texts), context_length=context_length or self.context_length)

    def fingerprint(self) -> str:
        return self._fingerprint.of(self.model)

    def visual_fingerprint(self) -> str:
        return self._visual_fingerprint.of(self.model.visual)

    def export_config(self) -> dict[str, Any]:
        """What `save_backbone` writes next to the weights to rebuild this exact architecture."""
        return {
            "backend": "open_clip",
            "arch": self.name,
            "model_cfg": self.model_cfg,
            "preprocess_cfg": self.preprocess_cfg,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
        }


def _square_size(size: int | tuple[int, int], name: str) -> int:
    if isinstance(size, int):
        return size
    if size[0] != size[1]:
        raise ConfigError(f"{name!r} expects non-square {size} images; vitr's frame pipeline makes square crops")
    return int(size[0])
