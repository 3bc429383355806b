"""A Hugging Face `transformers.CLIPModel` as a vitr `Backbone`.

HF CLIP uses the same BPE vocabulary and ids as OpenAI/open_clip, so captions are tokenised with open_clip's
`SimpleTokenizer` (HF's `CLIPTokenizer` needs files it fetches online). Feature calls work with transformers
4.x (tensors) and 5.x (`BaseModelOutputWithPooling`, whose `.pooler_output` is the projected feature).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import open_clip
import torch
from torch import nn

from vitr.backbones.base import Backbone, TextFeatures
from vitr.backbones.fingerprint import WeightsFingerprint
from vitr.errors import ConfigError
from vitr.files import follow_umask

if TYPE_CHECKING:
    from transformers import CLIPModel

PREPROCESSOR_CONFIG = "preprocessor_config.json"
# transformers before PR #24773 stored eos_token_id = 2 and pooled at the largest id; HF keeps that rule.
_LEGACY_EOS_TOKEN_ID = 2
_VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "torch_dtype", "dtype", "architectures")


def pooled_output(output: Any) -> torch.Tensor:
    """The projected feature from `get_*_features`: a tensor in transformers 4.x, `.pooler_output` in 5.x."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class HFClipBackbone(Backbone):
    """Wraps `transformers.CLIPModel`; `name` is the hub id or directory it came from."""

    def __init__(
        self,
        model: CLIPModel,
        name: str,
        image_mean: Sequence[float] = open_clip.OPENAI_DATASET_MEAN,
        image_std: Sequence[float] = open_clip.OPENAI_DATASET_STD,
    ) -> None:
        super().__init__()
        self.model = model
        self.name = name
        config = model.config
        self.embed_dim = int(config.projection_dim)
        self.image_size = int(config.vision_config.image_size)
        self.image_mean = tuple(float(v) for v in image_mean)
        self.image_std = tuple(float(v) for v in image_std)
        self.context_length = int(config.text_config.max_position_embeddings)
        self._eos_token_id = config.text_config.eos_token_id
        architecture = json.dumps(_without_volatile_keys(config.to_dict()), sort_keys=True, default=str)
        self._fingerprint = WeightsFingerprint(f"hf-clip:{architecture}")
        self._visual_fingerprint = WeightsFingerprint(
            f"hf-clip-visual:{architecture}:{self.image_mean}:{self.image_std}"
        )

    @property
    def logit_scale(self) -> nn.Parameter:  # type: ignore[override]
        return self.model.logit_scale

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, 3, S, S) normalised -> (N, D) projected pooled CLS, fp32, not normalised."""
        dtype = self.model.visual_projection.weight.dtype
        return pooled_output(self.model.get_image_features(pixel_values=images.to(dtype))).float()

    def encode_text(self, tokens: torch.Tensor) -> TextFeatures:
        """tokens: (B, L) -> pooled (B, D) equal to `get_text_features`, per-position (B, L, D), mask (B, L)."""
        length = tokens.shape[1]
        if length > self.context_length:
            raise ConfigError(f"{length} tokens exceed the context length {self.context_length} of {self.name!r}")
        text = self.model.text_model(input_ids=tokens, return_dict=True)
        states = text.last_hidden_state  # (B, L, W) after the final LayerNorm
        projection = self.model.text_projection
        end = self._end_of_text_positions(tokens)  # (B,)
        mask = (torch.arange(length, device=tokens.device)[None, :] <= end[:, None]).float()  # (B, L)
        return TextFeatures(pooled=projection(text.pooler_output).float(), tokens=projection(states).float(), mask=mask)

    def _end_of_text_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """The position HF's CLIPTextModel pools: largest id for legacy configs, else the first eos id."""
        if self._eos_token_id == _LEGACY_EOS_TOKEN_ID:
            return tokens.argmax(dim=-1)
        return (tokens == self._eos_token_id).int().argmax(dim=-1)

    @cached_property
    def _tokenizer(self) -> open_clip.SimpleTokenizer:
        """Built on first use: reading the BPE vocabulary costs time that frame encoding never needs."""
        return open_clip.SimpleTokenizer(context_length=self.context_length)

    def tokenize(self, texts: Sequence[str], context_length: int | None = None) -> torch.Tensor:
        return self._tokenizer(list(texts), context_length=context_length or self.context_length)

    def fingerprint(self) -> str:
        return self._fingerprint.of(self.model)

    def visual_fingerprint(self) -> str:
        return self._visual_fingerprint.of(nn.ModuleList([self.model.vision_model, self.model.visual_projection]))

    def save(self, directory: str | Path) -> Path:
        """`save_pretrained` plus the image normalisation, so the directory loads back as this backbone."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        for written in directory.glob("*.safetensors"):  # safetensors writes 0600 whatever the umask
            follow_umask(written)
        preprocessor = {
            "image_processor_type": "CLIPImageProcessor",
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "crop_size": {"height": self.image_size, "width": self.image_size},
            "size": {"shortest_edge": self.image_size},
        }
        (directory / PREPROCESSOR_CONFIG).write_text(json.dumps(preprocessor, indent=2) + "\n")
        return directory


def _without_volatile_keys(config: dict[str, Any]) -> dict[str, Any]:
    """The config minus what changes on a save/load round trip (paths, dtype, library version)."""
    return {
        k: _without_volatile_keys(v) if isinstance(v, dict) else v
        for k, v in config.items()
        if k not in _VOLATILE_CONFIG_KEYS
    }


def load_hf_clip(source: str | Path, dtype: torch.dtype = torch.float32) -> HFClipBackbone:
    """A CLIPModel from a `save_pretrained` directory (offline) or a hub id (online), with its image stats."""
    from transformers import CLIPModel

    is_local = Path(source).is_dir()
    model = CLIPModel.from_pretrained(str(source), dtype=dtype, local_files_only=is_local)
    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    preprocessor_file = Path(source) / PREPROCESSOR_CONFIG
    if is_local and preprocessor_file.is_file():
        preprocessor = json.loads(preprocessor_file.read_text())
        mean = preprocessor.get("image_mean", mean)
        std = preprocessor.get("image_std", std)
    return HFClipBackbone(model, name=str(source), image_mean=mean, image_std=std)
