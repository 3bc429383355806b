"""vitr against the official CLIP4Clip / CLIP2Video code on one tiny random model (clip2video.md §14).

`fixtures/clip2video_tiny.safetensors` is an official-layout CLIP2Video state dict and `fixtures/reference.safetensors`
holds the inputs and the outputs the official classes computed from it; scripts/make_official_fixtures.py wrote
both. Each test loads the state through vitr's checkpoint loader, so the name mapping is under test as well.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vitr.backbones.base import TextFeatures
from vitr.losses.infonce import retrieval_loss
from vitr.model.official import load_official_checkpoint, load_official_state

FIXTURES = Path(__file__).parent / "fixtures"
STATE = FIXTURES / "clip2video_tiny.safetensors"
ATOL = 1e-5
MASKS = ("full", "mixed")


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    return load_file(FIXTURES / "reference.safetensors")


@pytest.fixture(scope="module")
def clip2video():
    return load_official_checkpoint(STATE)[0]


def official_text(ref: dict[str, torch.Tensor]) -> TextFeatures:
    return TextFeatures(ref["text_pooled"], ref["text_hidden"], ref["attention_mask"].float())


def logits(model, ref: dict[str, torch.Tensor], mask: str) -> torch.Tensor:
    """exp(logit_scale) * text . video for the official text features and frames: (B_text, B_video)."""
    with torch.no_grad():
        text = model.head.embed_text(official_text(ref))
        video = model.embed_video_features(ref["frames"], ref[f"{mask}.mask"])
        return model.logit_scale.exp() * model.head.similarity(text, video)


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)


def test_text_encoder_matches_eot_feature_and_every_hidden_state(clip2video, ref):
    with torch.no_grad():
        text = clip2video.backbone.encode_text(ref["ids"])
    close(text.pooled, ref["text_pooled"])
    close(text.tokens, ref["text_hidden"])
    assert torch.equal(text.mask, ref["attention_mask"].float())


def test_image_encoder_matches_projected_cls(clip2video, ref):
    with torch.no_grad():
        close(clip2video.backbone.encode_image(ref["images"]), ref["image_embeddings"])


@pytest.mark.parametrize("mask", MASKS)
def test_clip2video_inference_logits(clip2video, ref, mask):
    close(logits(clip2video, ref, mask), ref[f"{mask}.final"])


@pytest.mark.parametrize("mask", MASKS)
def test_tdb_global_and_tab_terms(clip2video, ref, mask):
    with torch.no_grad():
        text = clip2video.head.embed_text(official_text(ref))
        video = clip2video.embed_video_features(ref["frames"], ref[f"{mask}.mask"])
        terms = clip2video.head.score_terms(text, video)
    scale = clip2video.logit_scale.exp()
    assert terms["global"][0] == terms["tab"][0] == 0.5
    close(scale * terms["global"][1], ref[f"{mask}.tdb"])
    close(scale * terms["tab"][1], ref[f"{mask}.tab"])


@pytest.mark.parametrize("mask", MASKS)
def test_training_loss(clip2video, ref, mask):
    with torch.no_grad():
        text = clip2video.head.embed_text(official_text(ref))
        video = clip2video.embed_video_features(ref["frames"], ref[f"{mask}.mask"])
        loss = retrieval_loss(clip2video.head, text, video, clip2video.logit_scale)
    close(loss, ref[f"{mask}.loss"])


@pytest.mark.parametrize("mask", MASKS)
def test_whole_pipeline_from_token_ids(clip2video, ref, mask):
    """ids -> vitr's own text encoder (77-context CLIP fed 32 tokens) -> head gives the official logits."""
    with torch.no_grad():
        text = clip2video.embed_text(ref["ids"])
        video = clip2video.embed_video_features(ref["frames"], ref[f"{mask}.mask"])
        close(clip2video.logit_scale.exp() * clip2video.head.similarity(text, video), ref[f"{mask}.final"])


def clip4clip_state(*prefixes: str) -> dict[str, torch.Tensor]:
    """The fixture reduced to what a CLIP4Clip checkpoint with the given temporal modules holds."""
    return {k: v for k, v in load_file(STATE).items() if k.startswith(("clip.", *prefixes))}


@pytest.mark.parametrize("mask", MASKS)
def test_clip4clip_meanp(ref, mask):
    model, report = load_official_state(clip4clip_state())
    assert (report.release, report.head) == ("clip4clip", "meanP")
    close(logits(model, ref, mask), ref[f"{mask}.meanP"])


@pytest.mark.parametrize("mask", MASKS)
def test_clip4clip_seqtransf_with_per_sample_tiling(ref, mask):
    model, report = load_official_state(clip4clip_state("frame_position_embeddings.", "transformerClip."))
    assert (report.head, report.head_kwargs["mask_tiling"]) == ("seqTransf", "per_sample")
    close(logits(model, ref, mask), ref[f"{mask}.seqTransf.per_sample"])


@pytest.mark.parametrize("mask", MASKS)
def test_clip2video_seqtransf_branch_with_repeat_tiling(ref, mask):
    model, report = load_official_checkpoint(STATE, head="seqTransf")
    assert report.head_kwargs["mask_tiling"] == "clip2video_repeat"
    assert "weight_center" in report.unknown and "actionClip.resblocks.0.ln_1.weight" in report.unknown
    close(logits(model, ref, mask), ref[f"{mask}.seqTransf.repeat"])


def test_the_two_tilings_differ_only_when_masks_differ_within_the_batch(ref):
    assert torch.allclose(ref["full.seqTransf.repeat"], ref["full.seqTransf.per_sample"], atol=ATOL)
    assert not torch.allclose(ref["mixed.seqTransf.repeat"], ref["mixed.seqTransf.per_sample"], atol=1e-2)


def test_strict_difference_mask_departs_from_the_release_only_with_padding(ref):
    model = load_official_checkpoint(STATE, head_kwargs={"difference_mask": "strict"})[0]
    close(logits(model, ref, "full"), ref["full.final"])
    assert not torch.allclose(logits(model, ref, "mixed"), ref["mixed.final"], atol=1e-2)
