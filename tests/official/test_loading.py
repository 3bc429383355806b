"""Loading official checkpoints: what is inferred, what is reported, and the errors a user meets."""

import pytest
import torch

from tests.official.builders import WIDTH, official_state, openai_clip_state, write_official_checkpoint
from vitr.backbones.base import TextFeatures
from vitr.errors import CheckpointError, ConfigError
from vitr.model.factory import ModelSpec, build_model
from vitr.model.official import (
    is_model_dir,
    load_model_dir,
    load_official_checkpoint,
    load_official_state,
    write_model_dir,
)


def embed(model, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Text and video vectors of a fixed batch with mixed frame masks: (3, E), (3, E)."""
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randn(3, 12, WIDTH, generator=gen)
    mask = (torch.arange(12)[None, :] < torch.tensor([[12], [6], [3]])).float()
    with torch.no_grad():
        text = model.embed_texts(["a dog runs", "a red car turns left", "someone cooks"])
        return text, model.embed_video_features(frames, mask)


@pytest.mark.parametrize(
    ("kind", "head", "options"),
    [
        ("meanP", "meanP", {}),
        ("seqTransf", "seqTransf", {"layers": 4, "mask_tiling": "per_sample"}),
        (
            "clip2video",
            "clip2video",
            {"layers": 4, "center_k": 5, "mask_tiling": "clip2video_repeat", "difference_mask": "official"},
        ),
    ],
)
def test_head_and_options_are_inferred_from_the_modules_present(kind, head, options):
    _, report = load_official_state(official_state(kind))
    assert report.head == head
    assert options.items() <= report.head_kwargs.items()
    assert report.unknown == []


def test_center_count_and_temporal_depth_come_from_tensor_shapes():
    model, report = load_official_state(official_state("clip2video", center_k=7, layers=2))
    assert report.head_kwargs["center_k"] == 7 and report.head_kwargs["layers"] == 2
    assert model.head.weight_center.shape == (7, WIDTH) and len(model.head.transformerClip.resblocks) == 2


def test_clip_architecture_is_read_from_shapes_and_half_weights_are_upcast():
    model, report = load_official_state(official_state("meanP"))
    cfg = report.backbone_cfg
    assert cfg["vision_cfg"] == {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16}
    assert (cfg["text_cfg"]["width"], cfg["text_cfg"]["layers"], cfg["embed_dim"]) == (WIDTH, 2, WIDTH)
    assert report.upcast > 0
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_released_file_name_loads_with_the_values_it_holds(tmp_path):
    state = official_state("clip2video")
    path = write_official_checkpoint(tmp_path / "pytorch_model.bin.2", "clip2video")
    model, _ = load_official_checkpoint(path)
    assert torch.equal(model.head.emb_center, state["emb_center"])
    assert torch.equal(model.backbone.model.visual.proj, state["clip.visual.proj"].float())
    assert torch.equal(
        model.head.transformerClip.resblocks[3].mlp.c_fc.weight, state["transformerClip.resblocks.3.mlp.c_fc.weight"]
    )


def test_unknown_keys_are_reported_by_name_and_not_loaded():
    state = official_state("seqTransf")
    state["extra_module.weight"] = torch.zeros(3)
    _, report = load_official_state(state)
    assert report.unknown == ["extra_module.weight"]
    assert "extra_module.weight" in report.summary()


def test_missing_temporal_tensor_is_named_in_official_terms():
    state = official_state("clip2video")
    del state["actionClip.resblocks.0.mlp.c_fc.weight"]
    with pytest.raises(CheckpointError, match=r"actionClip\.resblocks\.0\.mlp\.c_fc\.weight"):
        load_official_state(state)


def test_missing_clip_tensor_is_named():
    state = official_state("meanP")
    del state["clip.ln_final.weight"]
    with pytest.raises(CheckpointError, match=r"clip\.ln_final\.weight"):
        load_official_state(state)


def test_forcing_a_head_the_file_does_not_hold_is_an_error():
    with pytest.raises(CheckpointError, match=r"actionClip\.resblocks\.0\.\* \(12 tensors\).*weight_center"):
        load_official_state(official_state("seqTransf"), head="clip2video")


@pytest.mark.parametrize(
    ("key", "what"), [("lstm_visual.weight_ih_l0", "seqLSTM"), ("cross.pooler.dense.weight", "tightTransf")]
)
def test_heads_vitr_lacks_are_refused_not_dropped(key, what):
    state = official_state("meanP")
    state[key] = torch.zeros(4, 4)
    with pytest.raises(CheckpointError, match=what):
        load_official_state(state)


def test_corrupted_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "pytorch_model.bin.0"
    path.write_bytes(b"\x80\x02this is not a checkpoint" * 50)
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_official_checkpoint(path)


def test_truncated_file_is_a_checkpoint_error(tmp_path):
    path = write_official_checkpoint(tmp_path / "pytorch_model.bin.2", "meanP")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_official_checkpoint(path)


def test_foreign_state_dict_is_named_as_such(tmp_path):
    resnet = {
        "conv1.weight": torch.zeros(8, 3, 7, 7),
        "bn1.running_mean": torch.zeros(8),
        "fc.weight": torch.zeros(2, 8),
    }
    path = tmp_path / "resnet18.pth"
    torch.save(resnet, path)
    with pytest.raises(CheckpointError, match=r"not an official CLIP4Clip/CLIP2Video checkpoint.*conv1\.weight"):
        load_official_checkpoint(path)


def test_bare_openai_clip_gets_a_clip_initialised_head():
    clip = openai_clip_state()
    model, report = load_official_state(clip, head="seqTransf")
    assert report.release == "openai-clip"
    block = model.head.transformerClip.resblocks[0]
    assert torch.equal(block.attn.in_proj_weight, clip["transformer.resblocks.0.attn.in_proj_weight"].float())
    assert torch.equal(model.head.frame_position_embeddings.weight, clip["positional_embedding"])


def test_converted_directory_rebuilds_the_same_model(tmp_path):
    model, report = load_official_state(official_state("clip2video"))
    out = write_model_dir(model, report, tmp_path / "converted")
    assert is_model_dir(out) and not is_model_dir(tmp_path)
    reloaded = load_model_dir(out)
    for a, b in zip(embed(model), embed(reloaded), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_build_model_accepts_the_official_file_and_the_converted_directory(tmp_path):
    path = write_official_checkpoint(tmp_path / "pytorch_model.bin.2", "clip2video")
    model, report = load_official_checkpoint(path)
    out = write_model_dir(model, report, tmp_path / "converted")
    expected = embed(model)
    for checkpoint in (str(path), str(out)):
        built = build_model(ModelSpec(checkpoint=checkpoint))
        assert built.head.name == "clip2video" and built.head.mask_tiling == "clip2video_repeat"
        for a, b in zip(expected, embed(built), strict=True):
            torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_model_spec_head_kwargs_override_the_official_defaults(tmp_path):
    path = write_official_checkpoint(tmp_path / "pytorch_model.bin.2", "clip2video")
    built = build_model(ModelSpec(checkpoint=str(path), head_kwargs={"mask_tiling": "per_sample"}))
    assert built.head.transformerClip.mask_tiling == "per_sample"


def test_official_checkpoint_with_separate_clip_weights_is_refused(tmp_path):
    path = write_official_checkpoint(tmp_path / "pytorch_model.bin.2", "meanP")
    with pytest.raises(ConfigError, match="own CLIP weights"):
        build_model(ModelSpec(checkpoint=str(path), weights=str(path)))


def test_text_features_of_the_head_use_the_loaded_clip(tmp_path):
    """The TAB text side reads per-token states: they must come from the checkpoint's text tower."""
    model, _ = load_official_state(official_state("clip2video"))
    tokens = model.tokenize(["a person is slicing an onion"])
    with torch.no_grad():
        features = model.backbone.encode_text(tokens)
    assert isinstance(features, TextFeatures) and features.tokens.shape[-1] == WIDTH
    assert features.mask.sum() == (tokens.argmax(-1) + 1).item()
