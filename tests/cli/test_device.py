"""`--device`: every command that embeds or trains resolves one device and passes it, with the precision and the
inference plan resolved for it, down to the model and the decoder. A GPU is faked where one is needed: these tests
check the plumbing, not CUDA."""

from __future__ import annotations

import pytest
import torch

import vitr.backbones.registry
import vitr.data.readers
import vitr.index.indexer
import vitr.index.video_index
import vitr.model.factory
import vitr.precision
import vitr.train.pipeline
from vitr.cli.main import build_parser, main
from vitr.errors import ConfigError
from vitr.index.video_index import VideoIndex
from vitr.inference.plan import SMALL_CPU_CORES, available_cores
from vitr.model.factory import ModelSpec, build_model
from vitr.precision import resolve_device, run_dtypes

EMBEDDING_COMMANDS = ("index", "search", "eval", "serve", "pseudo-label", "train", "train-pseudo", "pretrain",
                      "quickstart")


class Reached(Exception):
    """Raised by a stand-in once the command has handed over what it resolved."""


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("command", EMBEDDING_COMMANDS)
def test_every_command_that_embeds_or_trains_documents_device(command: str) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    assert "--device" in sub.format_help()


def test_auto_is_the_cpu_without_a_gpu_and_the_first_gpu_with_one(no_gpu, monkeypatch) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda:0")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match="sees 2 GPU"):
        resolve_device("cuda:2")


def test_a_gpu_asked_for_on_a_machine_without_one_is_a_one_line_error(no_gpu, tmp_path, capsys) -> None:
    (tmp_path / "videos").mkdir()
    code = main(["index", str(tmp_path / "videos"), "--index", str(tmp_path / "i"), "--device", "cuda",
                 "--model", "vitr-lab-tiny", "--random-init"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("vitr index: error: device cuda asked for, but torch sees no CUDA")


def test_a_misspelt_device_is_refused_with_the_subcommands_usage(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "a dog", "--device", "gpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "vitr search: error: argument --device: expected auto, cpu, cuda or cuda:N, got 'gpu'" in err


def test_gpu_runs_fp32_weights_under_autocast_and_cpu_stores_the_precision() -> None:
    assert run_dtypes("bf16", "cuda:0") == ("fp32", "bf16")
    assert run_dtypes("bf16", "cpu") == ("bf16", "fp32")
    assert run_dtypes("fp32", "cuda") == ("fp32", "fp32")


def test_build_model_stores_weights_in_the_dtype_the_device_runs() -> None:
    spec = ModelSpec(backbone="vitr-lab-tiny", random_init=True, precision="bf16")
    model = build_model(spec, "cpu")
    assert model.backbone.model.visual.conv1.weight.dtype == torch.bfloat16


def capture_index(monkeypatch: pytest.MonkeyPatch) -> dict:
    seen: dict = {}

    def create(index_dir, spec, store="flat", device="cpu", exist_ok=True, windowing=None):  # noqa: ANN001, ARG001
        seen.update(spec=spec, device=device)
        return object()

    def update(index, root, batch_size=16, workers=2, shard=None, **_):  # noqa: ANN001, ARG001
        seen.update(batch_size=batch_size, workers=workers)
        raise Reached

    monkeypatch.setattr(vitr.index.video_index.VideoIndex, "create", staticmethod(create))
    monkeypatch.setattr(vitr.index.indexer, "update_index", update)
    return seen


def test_index_on_a_gpu_host_uses_the_gpu_plan(fake_gpu, monkeypatch, tmp_path) -> None:
    seen = capture_index(monkeypatch)
    (tmp_path / "videos").mkdir()
    with pytest.raises(Reached):
        main(["index", str(tmp_path / "videos"), "--index", str(tmp_path / "i"), "--model", "vitr-lab-tiny",
              "--random-init"])
    assert seen["device"] == "cuda:0" and seen["spec"].precision == "bf16"
    assert seen["batch_size"] == 32 and seen["workers"] == min(8, available_cores())


def test_index_with_device_cpu_uses_the_cpu_plan(fake_gpu, monkeypatch, tmp_path) -> None:
    seen = capture_index(monkeypatch)
    (tmp_path / "videos").mkdir()
    with pytest.raises(Reached):
        main(["index", str(tmp_path / "videos"), "--index", str(tmp_path / "i"), "--model", "vitr-lab-tiny",
              "--random-init", "--device", "cpu", "--precision", "fp32", "--batch-size", "4"])
    assert seen["device"] == "cpu" and seen["spec"].precision == "fp32"
    assert seen["batch_size"] == 4 and seen["workers"] == (0 if available_cores() <= SMALL_CPU_CORES else 1)


def test_an_index_opened_on_a_gpu_encodes_under_autocast(fake_gpu, tmp_path) -> None:
    VideoIndex.create(tmp_path / "i", ModelSpec(backbone="vitr-lab-tiny", random_init=True, precision="bf16"))
    assert VideoIndex(tmp_path / "i", device="cuda:0").autocast_precision == "bf16"
    assert VideoIndex(tmp_path / "i", device="cpu").autocast_precision == "fp32"


def test_search_opens_the_index_on_the_device_asked_for(fake_gpu, monkeypatch, tmp_path) -> None:
    VideoIndex.create(tmp_path / "i", ModelSpec(backbone="vitr-lab-tiny", random_init=True))
    seen: dict = {}

    class Opened(VideoIndex):
        def __init__(self, index_dir, device="cpu", read_only=None):  # noqa: ANN001
            seen["device"] = device
            raise Reached

    monkeypatch.setattr(vitr.index.video_index, "VideoIndex", Opened)
    with pytest.raises(Reached):
        main(["search", "a dog", "--index", str(tmp_path / "i"), "--device", "cuda:0"])
    assert seen["device"] == "cuda:0"


def test_eval_builds_its_model_on_the_device(fake_gpu, monkeypatch, tmp_path) -> None:
    seen: dict = {}

    def build(spec, device="cpu"):  # noqa: ANN001
        seen.update(spec=spec, device=str(device))
        raise Reached

    monkeypatch.setattr(vitr.data.readers, "load_dataset", lambda *a, **k: object())
    monkeypatch.setattr(vitr.model.factory, "build_model", build)
    (tmp_path / "videos").mkdir()
    with pytest.raises(Reached):
        main(["eval", "--dataset", "msrvtt", "--root", str(tmp_path), "--videos", str(tmp_path / "videos"),
              "--model", "vitr-lab-tiny", "--random-init", "--precision", "auto"])
    assert seen["device"] == "cuda:0" and seen["spec"].precision == "bf16"


@pytest.mark.parametrize(
    ("gpu", "fast_bf16", "expected"),
    [
        (True, False, {"device": "cuda:0", "weights": "fp32", "autocast": "bf16"}),  # fp32 weights under AMP
        (False, True, {"device": "cpu", "weights": "bf16", "autocast": "fp32"}),  # a CPU stores bf16 when fast
        (False, False, {"device": "cpu", "weights": "fp32", "autocast": "fp32"}),
    ],
)
def test_pseudo_label_resolves_auto_precision_for_its_device(gpu, fast_bf16, expected, monkeypatch, tmp_path) -> None:
    import vitr.pseudo.label

    seen: dict = {}

    def load(spec, pretrained=None, weights=None, device="cpu", precision="fp32", **_):  # noqa: ANN001, ARG001
        seen.update(device=str(device), weights=precision)
        return object()

    def labeler(backbone, vocabulary, autocast_precision="fp32", **_):  # noqa: ANN001, ARG001
        seen["autocast"] = autocast_precision
        raise Reached

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(gpu))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(vitr.precision, "cpu_has_fast_bf16", lambda: fast_bf16)
    monkeypatch.setattr(vitr.backbones.registry, "load_backbone", load)
    monkeypatch.setattr(vitr.pseudo.label, "PseudoLabeler", labeler)
    (tmp_path / "videos").mkdir()
    with pytest.raises(Reached):
        main(["pseudo-label", str(tmp_path / "videos"), "--out", str(tmp_path / "p.jsonl"), "--model",
              "vitr-lab-tiny", "--random-init", "--precision", "auto"])
    assert seen == expected


@pytest.mark.parametrize(("gpu", "expected"), [(True, "bf16"), (False, "fp32")])
def test_pretrain_auto_precision_is_amp_on_a_gpu_and_none_on_a_cpu(gpu, expected, monkeypatch, tmp_path) -> None:
    import vitr.cli.lab_cmds
    import vitr.lab.synth

    seen: dict = {}

    def pretrain(lab, out, steps, batch_size, lr, seed, precision, *_, device="cpu"):  # noqa: ANN001, ARG001
        seen.update(device=device, precision=precision)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(gpu))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(vitr.precision, "cpu_has_fast_bf16", lambda: True)  # even then: no autocast on a CPU
    monkeypatch.setattr(vitr.lab.synth.LabConfig, "read", staticmethod(lambda root: vitr.lab.synth.LabConfig()))
    monkeypatch.setattr(vitr.cli.lab_cmds, "pretrain_lab_clip", pretrain)
    (tmp_path / "lab").mkdir()
    assert main(["pretrain", "--lab", str(tmp_path / "lab"), "--precision", "auto"]) == 0
    assert seen == {"device": "cuda:0" if gpu else "cpu", "precision": expected}


@pytest.mark.parametrize("device", ["cpu", None])
def test_train_builds_on_the_device_flag_or_the_configs(device, fake_gpu, monkeypatch, tmp_path) -> None:
    seen: dict = {}

    def build(spec, device="cpu"):  # noqa: ANN001
        seen["device"] = str(device)
        raise Reached

    config = tmp_path / "train.yaml"
    config.write_text("model:\n  backbone: vitr-lab-tiny\n  random_init: true\ndevice: auto\n")
    monkeypatch.setattr(vitr.data.readers, "load_dataset", lambda *a, **k: object())
    monkeypatch.setattr(vitr.train.pipeline, "build_model", build)  # what `training_model` builds with
    (tmp_path / "videos").mkdir()
    argv = ["train", str(config), "--dataset", "msrvtt", "--root", str(tmp_path), "--videos", str(tmp_path / "videos")]
    with pytest.raises(Reached):
        main(argv + (["--device", device] if device else []))
    assert seen["device"] == (device or "cuda:0")




TRAINING_COMMANDS = ("train", "train-pseudo", "pretrain")


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_every_command_that_trains_documents_its_autocast_precision(command: str) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    text = " ".join(sub.format_help().split())
    assert "--precision {auto,fp32,bf16,fp16}" in text and "autocast dtype; auto: AMP in bf16" in text


def _trainer_precision(monkeypatch: pytest.MonkeyPatch, tmp_path, command: str, extra: list[str]) -> tuple:
    """(the recipe `vitr COMMAND` hands to training, the autocast dtype a Trainer built from it resolves)."""
    from tests.train.fakes import tiny_model, toy_pairs, toy_pseudo_pool
    from vitr.train.ps_scl import ps_scl_trainer
    from vitr.train.trainer import Trainer

    seen: dict = {}

    def train(model, config, *_, **__):  # noqa: ANN001
        """The trainer `vitr.train.pipeline.train` builds for the recipe, on toy data."""
        if config.ps_scl is not None:
            trainer = ps_scl_trainer(tiny_model(), toy_pseudo_pool(), config)
        else:
            trainer = Trainer(tiny_model(), config, toy_pairs(tmp_path / "features"))
        seen.update(config=config, autocast=trainer.autocast_precision)
        raise Reached

    recipe = tmp_path / "train.yaml"
    recipe.write_text(f"precision: bf16\ndevice: cpu\nbatch_size: 4\noutput_dir: {tmp_path / 'run'}\n")
    monkeypatch.setattr(vitr.data.readers, "load_dataset", lambda *a, **k: object())
    monkeypatch.setattr(vitr.train.pipeline, "training_model", lambda config: None)
    monkeypatch.setattr(vitr.train.pipeline, "train", train)
    (tmp_path / "videos").mkdir(exist_ok=True)
    (tmp_path / "p.jsonl").touch()
    data = (["--dataset", "msrvtt", "--root", str(tmp_path), "--videos", str(tmp_path / "videos")] if command == "train"
            else ["--pseudo", str(tmp_path / "p.jsonl"), "--videos", str(tmp_path / "videos")])
    with pytest.raises(Reached):
        main([command, str(recipe), *extra, *data])
    return seen["config"], seen["autocast"]


@pytest.mark.parametrize("command", ["train", "train-pseudo"])
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], "bf16"),  # the recipe's precision
        (["--precision", "fp16"], "fp16"),
        (["--precision", "auto"], "fp32"),  # auto on a CPU: no autocast
        (["precision=fp32", "--precision", "fp16"], "fp16"),  # the flag wins over the override
    ],
)
def test_train_precision_flag_overrides_the_recipe_and_reaches_the_trainer(command, extra, expected, monkeypatch,
                                                                           tmp_path) -> None:
    _, autocast = _trainer_precision(monkeypatch, tmp_path, command, extra)
    assert autocast == expected


def test_the_precision_flag_is_the_precision_override(monkeypatch, tmp_path) -> None:
    from vitr.train.config import config_to_dict

    flagged, _ = _trainer_precision(monkeypatch, tmp_path, "train", ["--precision", "fp16"])
    overridden, _ = _trainer_precision(monkeypatch, tmp_path, "train", ["precision=fp16"])
    assert config_to_dict(flagged) == config_to_dict(overridden)


def test_index_hands_the_decoder_down_and_refuses_one_that_cannot_load(monkeypatch, tmp_path, capsys) -> None:
    import vitr.video.decode

    seen = capture_index(monkeypatch)
    update = vitr.index.indexer.update_index

    def update_with_decoder(index, root, decoder="pyav", **kwargs):  # noqa: ANN001
        seen["decoder"] = decoder
        update(index, root, **kwargs)

    monkeypatch.setattr(vitr.index.indexer, "update_index", update_with_decoder)
    monkeypatch.setattr(vitr.video.decode, "torchcodec_decoder", lambda: object)
    (tmp_path / "videos").mkdir()
    args = ["index", str(tmp_path / "videos"), "--index", str(tmp_path / "i"), "--model", "vitr-lab-tiny",
            "--random-init", "--device", "cpu"]
    with pytest.raises(Reached):
        main([*args, "--decoder", "torchcodec"])
    assert seen["decoder"] == "torchcodec"
    with pytest.raises(Reached):
        main(args)
    assert seen["decoder"] == "pyav"

    def unusable() -> type:
        raise ConfigError("decoder torchcodec is not usable here (no FFmpeg)")

    monkeypatch.setattr(vitr.video.decode, "torchcodec_decoder", unusable)
    assert main([*args, "--decoder", "torchcodec"]) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.endswith("decoder torchcodec is not usable here (no FFmpeg)")
