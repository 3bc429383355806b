"""OpenClipBackbone gives open_clip's own features, plus per-token states and masks for token-level heads."""

from __future__ import annotations

import open_clip
import pytest
import torch

from tests.backbones.builders import caption_tokens, images
from vitr.backbones import OpenClipBackbone, load_backbone
from vitr.backbones.open_clip_backbone import build_open_clip_model
from vitr.errors import ConfigError


@pytest.fixture
def backbone(micro_cfg: dict) -> OpenClipBackbone:
    torch.manual_seed(0)
    return OpenClipBackbone(build_open_clip_model(micro_cfg), "micro", micro_cfg).eval()


@torch.no_grad()
def test_image_embedding_is_open_clips_unnormalised_projected_cls(backbone: OpenClipBackbone) -> None:
    pixels = images(32)
    out = backbone.encode_image(pixels)
    assert out.shape == (2, 32)
    assert torch.equal(out, backbone.model.encode_image(pixels, normalize=False))
    assert not torch.allclose(out.norm(dim=-1), torch.ones(2))


@torch.no_grad()
def test_pooled_text_equals_open_clip_encode_text_exactly(backbone: OpenClipBackbone) -> None:
    tokens = caption_tokens(77)
    features = backbone.encode_text(tokens)
    assert torch.equal(features.pooled, backbone.model.encode_text(tokens, normalize=False))


@torch.no_grad()
def test_token_states_and_mask_follow_the_end_of_text_position(backbone: OpenClipBackbone) -> None:
    tokens = caption_tokens(77)
    features = backbone.encode_text(tokens)
    end = tokens.argmax(dim=-1)  # the end-of-text id 49407 is the largest
    assert features.tokens.shape == (3, 77, 32)
    assert features.mask.shape == (3, 77)
    assert features.mask.sum(dim=1).tolist() == (end + 1).tolist()
    for row, position in enumerate(end.tolist()):
        assert features.mask[row, : position + 1].eq(1).all() and features.mask[row, position + 1 :].eq(0).all()
        torch.testing.assert_close(features.tokens[row, position], features.pooled[row], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_short_context_matches_the_zero_padded_full_context(backbone: OpenClipBackbone) -> None:
    """CLIP4Clip feeds 32 ids; causal attention makes them equal to the first 32 of the padded 77."""
    short = caption_tokens(32)
    padded = torch.zeros(3, 77, dtype=short.dtype)
    padded[:, :32] = short
    short_features = backbone.encode_text(short)
    full_features = backbone.encode_text(padded)
    assert short_features.tokens.shape == (3, 32, 32)
    torch.testing.assert_close(short_features.tokens, full_features.tokens[:, :32], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(short_features.pooled, full_features.pooled, rtol=1e-5, atol=1e-5)
    assert torch.equal(short_features.mask, full_features.mask[:, :32])


def test_more_tokens_than_the_context_is_a_config_error(backbone: OpenClipBackbone) -> None:
    with pytest.raises(ConfigError, match="context length 77"):
        backbone.encode_text(torch.zeros(1, 78, dtype=torch.long))


def test_tokenize_uses_open_clips_tokenizer_and_context(backbone: OpenClipBackbone) -> None:
    captions = ["a dog runs on the beach", "cooking"]
    assert torch.equal(backbone.tokenize(captions), open_clip.get_tokenizer("ViT-B-32")(captions))
    short = backbone.tokenize(captions, context_length=8)
    assert short.shape == (2, 8)
    assert short[0, -1].item() == 49407  # truncated captions keep their end-of-text token


def test_lab_tiny_architecture_is_registered_with_clip_preprocessing() -> None:
    backbone = load_backbone("vitr-lab-tiny", random_init=True)
    assert (backbone.embed_dim, backbone.image_size, backbone.context_length) == (128, 64, 32)
    assert backbone.image_mean == pytest.approx(open_clip.OPENAI_DATASET_MEAN)
    assert backbone.image_std == pytest.approx(open_clip.OPENAI_DATASET_STD)
    assert backbone.logit_scale is backbone.model.logit_scale
    assert backbone.tokenize(["a cat"]).shape == (1, 32)
    with torch.no_grad():
        assert backbone.encode_image(images(64)).shape == (2, 128)


def test_visual_fingerprint_ignores_the_text_tower(backbone: OpenClipBackbone) -> None:
    """Frame-feature caches survive text-tower fine-tuning but not a change of the image tower."""
    visual, whole = backbone.visual_fingerprint(), backbone.fingerprint()
    with torch.no_grad():
        backbone.model.transformer.resblocks[0].mlp.c_proj.bias[0] += 1e-3
    assert backbone.visual_fingerprint() == visual and backbone.fingerprint() != whole
    with torch.no_grad():
        backbone.model.visual.proj[0, 0] += 1e-3
    assert backbone.visual_fingerprint() != visual


def test_fingerprint_is_stable_and_tracks_every_weight_change(backbone: OpenClipBackbone) -> None:
    first = backbone.fingerprint()
    assert backbone.fingerprint() == first
    with torch.no_grad():
        backbone.model.transformer.resblocks[1].mlp.c_proj.bias[3] += 1e-3
    changed = backbone.fingerprint()
    assert changed != first
    optimizer = torch.optim.SGD(backbone.parameters(), lr=0.1)
    backbone.encode_image(images(32)).sum().backward()
    optimizer.step()
    assert backbone.fingerprint() not in (first, changed)


def test_fingerprint_depends_on_the_architecture_description(micro_cfg: dict) -> None:
    torch.manual_seed(0)
    a = OpenClipBackbone(build_open_clip_model(micro_cfg), "micro", micro_cfg)
    torch.manual_seed(0)
    b = OpenClipBackbone(build_open_clip_model(micro_cfg), "micro", micro_cfg)
    quick_cfg = {**micro_cfg, "quick_gelu": True}
    torch.manual_seed(0)
    quick = OpenClipBackbone(build_open_clip_model(quick_cfg), "micro", quick_cfg)
    assert a.fingerprint() == b.fingerprint()
    assert quick.fingerprint() != a.fingerprint()  # same tensors, different activation


def test_non_clip_text_pooling_is_rejected(micro_cfg: dict) -> None:
    micro_cfg["text_cfg"]["pool_type"] = "last"
    with pytest.raises(ConfigError, match="pooling"):
        OpenClipBackbone(build_open_clip_model(micro_cfg), "micro", micro_cfg)
