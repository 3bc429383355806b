"""The fast inference path: thread settings, per-device plans, and bf16 features that agree with fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vitr.backbones import load_backbone, save_backbone
from vitr.data.types import VideoItem
from vitr.errors import ConfigError
from vitr.inference import plan as inference_plan
from vitr.inference.extract import encode_pixels, extract_features, frame_spec_for, open_cache
from vitr.inference.plan import (
    InferencePlan,
    available_cores,
    configure_threads,
    load_fast_backbone,
    plan_inference,
    visual_tower,
)
from vitr.precision import cpu_has_fast_bf16, resolve_precision
from vitr.video.writer import write_video

ARCH = "vitr-lab-tiny"  # 64 px ViT, 4 layers: the same code paths as ViT-B/32 in milliseconds


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return save_backbone(load_backbone(ARCH, random_init=True), tmp_path_factory.mktemp("backbone"))


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def bf16_plan() -> InferencePlan:
    return plan_inference("cpu", "bf16")


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.flatten(0, -2), b.flatten(0, -2), dim=-1)


def test_configure_threads_sets_the_requested_counts(restore_threads) -> None:
    settings = configure_threads(intra_op=1)
    assert torch.get_num_threads() == 1
    assert settings.intra_op == 1
    assert settings.inter_op == torch.get_num_interop_threads()


def test_configure_threads_defaults_to_every_available_core(restore_threads) -> None:
    torch.set_num_threads(1)
    assert configure_threads().intra_op == available_cores()
    assert torch.get_num_threads() == available_cores()


def test_configure_threads_rejects_zero_threads(restore_threads) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        configure_threads(intra_op=0)


def test_cpu_plan_uses_bf16_weights_only_where_the_cpu_runs_them_fast() -> None:
    plan = plan_inference("cpu")
    assert plan.weights_precision == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert plan.autocast_precision == "fp32"  # autocast over fp32 weights is slower than fp32 on a CPU
    if cpu_has_fast_bf16():
        assert plan.decode_workers >= 1 and plan.batch_videos > 1
    else:
        assert plan.batch_videos == 1


def test_an_fp32_encoder_on_two_cores_decodes_in_its_own_thread_and_encodes_one_video_a_batch(monkeypatch) -> None:
    monkeypatch.setattr(inference_plan, "available_cores", lambda: 2)
    small = plan_inference("cpu", "fp32")
    assert (small.batch_videos, small.decode_workers) == (1, 0)
    bf16 = plan_inference("cpu", "bf16")  # a fast encoder: decoding is the larger part, overlapping it pays
    assert (bf16.batch_videos, bf16.decode_workers) == (8, 1)
    monkeypatch.setattr(inference_plan, "available_cores", lambda: 8)
    assert plan_inference("cpu", "fp32").decode_workers == 1


def test_gpu_plan_is_amp_with_channels_last_and_compile() -> None:
    plan = plan_inference("cuda", "bf16")
    assert (plan.weights_precision, plan.autocast_precision) == ("fp32", "bf16")
    assert plan.channels_last and plan.compile
    assert plan_inference("cuda:0", "fp16", compile=False).compile is False


def test_auto_precision_is_the_fast_paths_choice_and_explicit_ones_pass_through() -> None:
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_fast_bf16() else "fp32")
    assert resolve_precision("auto", "cuda") in {"bf16", "fp16"}  # AMP on any GPU
    assert [resolve_precision(p) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]


@pytest.mark.parametrize("precision", ["int8", "fp64"])
def test_unknown_precision_is_a_config_error(precision: str) -> None:
    with pytest.raises(ConfigError, match="unknown precision"):
        plan_inference("cpu", precision)


def test_fp16_on_cpu_is_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="bf16"):
        plan_inference("cpu", "fp16")


def test_bf16_precision_reaches_the_encoder_weights(model_dir: Path) -> None:
    fast = load_fast_backbone(str(model_dir), plan=bf16_plan())
    assert visual_tower(fast).conv1.weight.dtype == torch.bfloat16
    reference = load_backbone(str(model_dir))
    pixels = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(0))  # (B, T, 3, S, S)
    out = encode_pixels(fast, pixels, bf16_plan().autocast_precision)
    expected = encode_pixels(reference, pixels)
    assert out.dtype == torch.float32 and out.shape == expected.shape == (2, 3, 128)
    assert not torch.equal(out, expected)  # bf16 arithmetic really ran
    assert cosine(out, expected).min() > 0.99


def test_fp32_plan_gives_the_plain_model_exactly(model_dir: Path) -> None:
    fast = load_fast_backbone(str(model_dir), plan=plan_inference("cpu", "fp32"))
    reference = load_backbone(str(model_dir))
    pixels = torch.randn(1, 2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(encode_pixels(fast, pixels), encode_pixels(reference, pixels))


def test_compiled_tower_keeps_state_dict_keys_and_fingerprint(model_dir: Path) -> None:
    plain = load_backbone(str(model_dir))
    compiled = load_fast_backbone(str(model_dir), plan=plan_inference("cpu", "fp32", compile=True))
    assert list(compiled.state_dict()) == list(plain.state_dict())  # checkpoints and caches stay compatible
    assert compiled.fingerprint() == plain.fingerprint()


def test_fast_extraction_matches_fp32_features(model_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    items = []
    for i in range(3):
        frames = rng.integers(0, 255, (1, 48, 64, 3), dtype=np.uint8).repeat(10, axis=0)
        frames[:, :, : 6 * (i + 1)] = 255  # a bar whose width tells the videos apart
        items.append(VideoItem(f"v{i}", str(write_video(tmp_path / f"v{i}.mp4", frames, fps=5.0))))
    features = {}
    for plan in (plan_inference("cpu", "fp32"), bf16_plan()):
        backbone = load_fast_backbone(str(model_dir), plan=plan)
        spec = frame_spec_for(backbone, num_frames=4)
        cache = open_cache(tmp_path / "cache", backbone, spec)
        result = extract_features(
            backbone,
            items,
            cache,
            spec,
            batch_size=plan.batch_videos,
            workers=plan.decode_workers,
            precision=plan.autocast_precision,
            progress=False,
        )
        assert result.failures == {} and result.extracted == 3
        features[plan.weights_precision] = cache.stacked([result.keys[item.video_id] for item in items])[0]
    assert features["fp32"].shape == features["bf16"].shape == (3, 4, 128)
    assert cosine(features["bf16"], features["fp32"]).min() > 0.99


def test_visual_tower_names_backbones_it_cannot_open() -> None:
    with pytest.raises(ConfigError, match="visual tower"):
        visual_tower(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
