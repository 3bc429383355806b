"""A Hugging Face CLIPModel directory loads as a backbone whose features equal transformers' own."""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from tests.backbones.builders import caption_tokens, images
from vitr.backbones import HFClipBackbone, load_backbone, save_backbone
from vitr.backbones.hf_clip import pooled_output
from vitr.errors import CheckpointError


def tiny_hf_clip(eos_token_id: int = 49407) -> CLIPModel:
    config = CLIPConfig(
        text_config={
            "vocab_size": 49408,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "eos_token_id": eos_token_id,
        },
        vision_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 16,
        },
        projection_dim=32,
    )
    torch.manual_seed(0)
    return CLIPModel(config).eval()


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hf_clip")
    tiny_hf_clip().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def reference(hf_dir: Path) -> CLIPModel:
    return CLIPModel.from_pretrained(hf_dir, local_files_only=True).eval()


@torch.no_grad()
def test_features_equal_transformers_get_features(hf_dir: Path, reference: CLIPModel) -> None:
    backbone = load_backbone(str(hf_dir))
    assert isinstance(backbone, HFClipBackbone)
    pixels, tokens = images(32), caption_tokens(77)
    expected_image = pooled_output(reference.get_image_features(pixel_values=pixels))
    expected_text = pooled_output(reference.get_text_features(input_ids=tokens))
    torch.testing.assert_close(backbone.encode_image(pixels), expected_image, rtol=0, atol=1e-5)
    torch.testing.assert_close(backbone.encode_text(tokens).pooled, expected_text, rtol=0, atol=1e-5)


@torch.no_grad()
def test_attributes_and_open_clip_tokenisation(hf_dir: Path, reference: CLIPModel) -> None:
    backbone = load_backbone(f"local-dir:{hf_dir}")
    assert (backbone.embed_dim, backbone.image_size, backbone.context_length) == (32, 32, 77)
    assert backbone.image_mean == pytest.approx(open_clip.OPENAI_DATASET_MEAN)
    assert backbone.logit_scale is backbone.model.logit_scale
    assert torch.equal(backbone.tokenize(["a red car"]), open_clip.tokenize(["a red car"]))


@pytest.mark.parametrize("eos_token_id", [49407, 2])
@torch.no_grad()
def test_token_features_and_mask_end_at_the_pooled_position(eos_token_id: int) -> None:
    """Current configs pool at the first eos id; legacy ones (eos_token_id 2) at the largest id."""
    model = tiny_hf_clip(eos_token_id)
    backbone = HFClipBackbone(model, "tiny")
    tokens = caption_tokens(32)  # shorter than the 77 positions of the model
    features = backbone.encode_text(tokens)
    end = tokens.argmax(dim=-1)
    assert features.tokens.shape == (3, 32, 32)
    assert features.mask.sum(dim=1).tolist() == (end + 1).tolist()
    torch.testing.assert_close(features.tokens[torch.arange(3), end], features.pooled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(features.pooled, pooled_output(model.get_text_features(input_ids=tokens)))


def test_save_backbone_round_trips_weights_and_image_statistics(tmp_path: Path) -> None:
    original = HFClipBackbone(tiny_hf_clip(), "tiny", image_mean=(0.5, 0.5, 0.5), image_std=(0.2, 0.2, 0.2))
    save_backbone(original, tmp_path / "saved")
    loaded = load_backbone(str(tmp_path / "saved"))
    assert loaded.image_mean == (0.5, 0.5, 0.5) and loaded.image_std == (0.2, 0.2, 0.2)
    assert loaded.fingerprint() == original.fingerprint()
    with torch.no_grad():
        original.model.visual_projection.weight[0, 0] += 1.0
    assert loaded.fingerprint() != original.fingerprint()


def test_bf16_precision_casts_the_model(hf_dir: Path) -> None:
    backbone = load_backbone(str(hf_dir), precision="bf16")
    assert backbone.model.visual_projection.weight.dtype == torch.bfloat16
    with torch.no_grad():
        assert backbone.encode_image(images(32)).dtype == torch.float32


def test_broken_hf_directory_is_a_checkpoint_error(tmp_path: Path, hf_dir: Path) -> None:
    (tmp_path / "config.json").write_text((hf_dir / "config.json").read_text())
    (tmp_path / "model.safetensors").write_bytes(b"\x00broken")
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        load_backbone(str(tmp_path))
