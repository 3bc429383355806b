"""load_backbone turns names, tags, weight files and directories into backbones equal to the library's models."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import open_clip
import pytest
import torch
from safetensors.torch import save_file

from tests.backbones.builders import caption_tokens, images, random_clip, write_json
from vitr.backbones import OpenClipBackbone, load_backbone, save_backbone
from vitr.errors import CheckpointError, ConfigError

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.(script|save)` is deprecated:FutureWarning")


@torch.no_grad()
def assert_same_features(backbone: OpenClipBackbone, reference: open_clip.CLIP, atol: float = 1e-5) -> None:
    pixels, tokens = images(backbone.image_size), caption_tokens(backbone.context_length)
    torch.testing.assert_close(backbone.encode_image(pixels), reference.encode_image(pixels), rtol=0, atol=atol)
    torch.testing.assert_close(backbone.encode_text(tokens).pooled, reference.encode_text(tokens), rtol=0, atol=atol)


@pytest.mark.parametrize("file_name", ["weights.safetensors", "weights.bin"])
def test_weights_file_loads_into_the_named_architecture(
    tmp_path: Path, micro_arch: str, micro_cfg: dict, file_name: str
) -> None:
    reference = random_clip(micro_cfg, seed=3)
    path = tmp_path / file_name
    if path.suffix == ".safetensors":
        save_file(reference.state_dict(), path)
    else:
        torch.save(reference.state_dict(), path)
    backbone = load_backbone(micro_arch, weights=path)
    assert not backbone.training
    assert backbone.logit_scale.item() == pytest.approx(3.0)
    assert_same_features(backbone, reference)


def test_pretrained_may_be_a_file_path_as_in_open_clip(tmp_path: Path, micro_arch: str, micro_cfg: dict) -> None:
    reference = random_clip(micro_cfg, seed=4)
    save_file(reference.state_dict(), tmp_path / "w.safetensors")
    assert_same_features(load_backbone(micro_arch, pretrained=str(tmp_path / "w.safetensors")), reference)


def test_openai_torchscript_weights_load_with_quickgelu(tmp_path: Path, micro_arch: str, micro_cfg: dict) -> None:
    """OpenAI's `.pt` files are fp16 TorchScript archives of a QuickGELU CLIP; the architecture name alone
    would pick nn.GELU, so the activation must follow the weights."""
    reference = random_clip({**micro_cfg, "quick_gelu": True}, seed=5)
    with torch.no_grad():
        for tensor in reference.state_dict().values():
            tensor.copy_(tensor.half().float())  # values the fp16 archive holds exactly
    scripted = random_clip({**micro_cfg, "quick_gelu": True})
    scripted.load_state_dict(reference.state_dict())
    open_clip.convert_weights_to_lp(scripted, torch.float16)
    torch.jit.save(torch.jit.script(scripted), tmp_path / "ViT-micro.pt")

    backbone = load_backbone(micro_arch, weights=tmp_path / "ViT-micro.pt")
    assert backbone.model_cfg["quick_gelu"] is True
    assert_same_features(backbone, reference)


def test_key_mismatches_are_listed_by_name(tmp_path: Path, micro_arch: str, micro_cfg: dict) -> None:
    state = random_clip(micro_cfg).state_dict()
    del state["ln_final.weight"]
    state["head.extra"] = torch.zeros(1)
    save_file(state, tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError) as error:
        load_backbone(micro_arch, weights=tmp_path / "w.safetensors")
    message = str(error.value)
    assert "w.safetensors" in message
    assert "missing keys [ln_final.weight]" in message
    assert "unexpected keys [head.extra]" in message


def test_shape_mismatches_are_listed(tmp_path: Path, micro_arch: str, micro_cfg: dict) -> None:
    state = random_clip(micro_cfg).state_dict()
    state["text_projection"] = torch.zeros(64, 16)
    save_file(state, tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match=r"text_projection \(file \(64, 16\), model \(64, 32\)\)"):
        load_backbone(micro_arch, weights=tmp_path / "w.safetensors")


def test_saved_directory_round_trips_a_custom_architecture(tmp_path: Path, micro_cfg: dict) -> None:
    """The saved config carries the model-config dict itself, so unregistered architectures load back."""
    micro_cfg["vision_cfg"]["layers"] = 1
    custom = OpenClipBackbone(random_clip_with_preprocess(micro_cfg), "my-custom-clip", micro_cfg)
    save_backbone(custom, tmp_path / "saved")
    assert {p.name for p in (tmp_path / "saved").iterdir()} == {"config.json", "model.safetensors"}

    for spec in (str(tmp_path / "saved"), f"local-dir:{tmp_path / 'saved'}"):
        loaded = load_backbone(spec)
        assert isinstance(loaded, OpenClipBackbone)
        assert loaded.name == "my-custom-clip" and loaded.model_cfg == micro_cfg
        assert loaded.fingerprint() == custom.fingerprint()
        assert_same_features(loaded, custom.model, atol=0)


def random_clip_with_preprocess(model_cfg: dict) -> open_clip.CLIP:
    from vitr.backbones.open_clip_backbone import build_open_clip_model

    torch.manual_seed(6)
    return build_open_clip_model(model_cfg, {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}).eval()


def test_saved_directory_keeps_image_statistics(tmp_path: Path, micro_cfg: dict) -> None:
    custom = OpenClipBackbone(random_clip_with_preprocess(micro_cfg), "stats", micro_cfg)
    save_backbone(custom, tmp_path)
    loaded = load_backbone(str(tmp_path))
    assert loaded.image_mean == (0.5, 0.5, 0.5) and loaded.image_std == (0.25, 0.25, 0.25)


def test_open_clip_local_dir_export_loads(tmp_path: Path, micro_cfg: dict) -> None:
    reference = random_clip(micro_cfg, seed=7)
    write_json(tmp_path / "open_clip_config.json", {"model_cfg": micro_cfg, "preprocess_cfg": {"mean": [0.4] * 3}})
    save_file(reference.state_dict(), tmp_path / "open_clip_model.safetensors")
    backbone = load_backbone(f"local-dir:{tmp_path}")
    assert backbone.image_mean == (0.4, 0.4, 0.4)
    assert_same_features(backbone, reference)


def test_directory_of_unknown_layout_is_explained(tmp_path: Path) -> None:
    write_json(tmp_path / "config.json", {"model_type": "bert"})
    with pytest.raises(CheckpointError, match="not a backbone directory"):
        load_backbone(str(tmp_path))


def test_saved_directory_without_weights_names_the_file(tmp_path: Path, micro_cfg: dict) -> None:
    custom = OpenClipBackbone(random_clip_with_preprocess(micro_cfg), "x", micro_cfg)
    save_backbone(custom, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_backbone(str(tmp_path))


def test_offline_pretrained_tag_tells_the_user_to_pass_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", "/nonexistent-vitr-cache")
    with pytest.raises(CheckpointError, match="--weights PATH"):
        load_backbone("vitr-lab-tiny", pretrained="openai")  # no such tag for the lab model
    with pytest.raises(CheckpointError, match=r"'ViT-B-32'.*'laion2b_s34b_b79k'.*--weights PATH"):
        load_backbone("ViT-B-32", pretrained="laion2b_s34b_b79k")


@pytest.mark.parametrize("spec", ["hf:openai/clip-vit-base-patch32", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"])
def test_offline_hub_specs_are_checkpoint_errors(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="offline"):
        load_backbone(spec)


def test_unknown_tag_lists_the_known_ones() -> None:
    with pytest.raises(CheckpointError, match="known tags: .*'openai'"):
        load_backbone("ViT-B-32", pretrained="no-such-tag")


def test_tag_with_local_weights_needs_no_download(
    tmp_path: Path, micro_arch: str, micro_cfg: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--pretrained openai --weights ViT-B-32.pt` offline: the tag sets QuickGELU and preprocessing, the file
    gives the weights, nothing is downloaded."""
    tag_cfg = {"hf_hub": "nowhere/none/", "quick_gelu": True, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda arch, tag: tag_cfg if tag == "lab" else {})
    monkeypatch.setattr(open_clip, "download_pretrained", pytest.fail)
    reference = random_clip({**micro_cfg, "quick_gelu": True}, seed=9)
    save_file(reference.state_dict(), tmp_path / "w.safetensors")
    backbone = load_backbone(micro_arch, pretrained="lab", weights=tmp_path / "w.safetensors")
    assert backbone.model_cfg["quick_gelu"] is True
    assert backbone.image_mean == (0.5, 0.5, 0.5)
    assert_same_features(backbone, reference)


def test_unknown_spec_and_misplaced_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'ViT-Q-99'"):
        load_backbone("ViT-Q-99")
    with pytest.raises(ConfigError, match="pretrained tags and --weights"):
        load_backbone(str(tmp_path), pretrained="openai")
    with pytest.raises(ConfigError, match="precision"):
        load_backbone("vitr-lab-tiny", precision="int3")


def test_low_precision_casts_weights_and_still_encodes(tmp_path: Path, micro_arch: str, micro_cfg: dict) -> None:
    reference = random_clip(micro_cfg, seed=8)
    save_file(reference.state_dict(), tmp_path / "w.safetensors")
    backbone = load_backbone(micro_arch, weights=tmp_path / "w.safetensors", precision="bf16")
    assert backbone.model.visual.conv1.weight.dtype == torch.bfloat16
    assert backbone.model.ln_final.weight.dtype == torch.float32  # LayerNorms stay fp32, as in OpenAI CLIP
    with torch.no_grad():
        out = backbone.encode_image(images(32))
        text = backbone.encode_text(caption_tokens(77))
    assert out.dtype == torch.float32 and text.pooled.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(out, reference.encode_image(images(32)).detach())
    assert cosine.min() > 0.98


def test_an_architecture_without_weights_is_refused_unless_random_init_is_asked_for(micro_arch: str) -> None:
    with pytest.raises(CheckpointError, match="has no weights: pass --pretrained TAG .* --random-init"):
        load_backbone(micro_arch)
    assert load_backbone(micro_arch, random_init=True).embed_dim > 0


def test_a_missing_backbone_directory_names_the_path_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=f"looked for '{tmp_path}/models/clip': no such directory"):
        load_backbone(str(tmp_path / "models" / "clip"))
