"""OpenAI's released CLIP files are TorchScript archives; vitr reads their tensors without running their code."""

import open_clip
import pytest
import torch

from vitr.model.official import load_official_checkpoint


@pytest.fixture(scope="module")
def torchscript_clip(tmp_path_factory):
    """A tiny QuickGELU CLIP saved with torch.jit.save, the format of OpenAI's ViT-B-32.pt."""
    torch.manual_seed(3)
    model = open_clip.CLIP(
        embed_dim=64,
        vision_cfg={"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        text_cfg={"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
        quick_gelu=True,
    ).eval()
    example = {"encode_image": (torch.randn(1, 3, 64, 64),), "encode_text": (torch.zeros(1, 77, dtype=torch.long),)}
    path = tmp_path_factory.mktemp("openai") / "ViT-tiny.pt"
    torch.jit.save(torch.jit.trace_module(model, example), path)
    return model, path


def test_torchscript_clip_loads_as_a_meanp_model_with_identical_encoders(torchscript_clip):
    reference, path = torchscript_clip
    model, report = load_official_checkpoint(path)
    assert (report.release, report.head, report.unknown) == ("openai-clip", "meanP", [])
    assert "attn_mask" in report.ignored
    images = torch.randn(2, 3, 64, 64)
    tokens = model.tokenize(["a cat on a sofa", "two people dancing"])
    with torch.no_grad():
        torch.testing.assert_close(model.backbone.encode_image(images), reference.encode_image(images))
        torch.testing.assert_close(model.backbone.encode_text(tokens).pooled, reference.encode_text(tokens))


def test_torchscript_clip_can_start_a_temporal_head_from_its_text_tower(torchscript_clip):
    reference, path = torchscript_clip
    model, _ = load_official_checkpoint(path, head="clip2video")
    block0 = reference.transformer.resblocks[0].mlp.c_fc.weight
    assert torch.equal(model.head.actionClip.resblocks[0].mlp.c_fc.weight, block0)
    assert torch.equal(model.head.frame2t_attention.resblocks[0].mlp.c_fc.weight, block0)
    assert torch.equal(model.head.type_position_embeddings.weight, reference.positional_embedding[:2])
