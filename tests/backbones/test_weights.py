"""Weight files are read without running code from them, in every format CLIP users have on disk."""

from __future__ import annotations

import errno
import os
import pickle
import zipfile
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from tests.backbones.builders import MICRO_CFG, random_clip
from vitr import files
from vitr.backbones import load_backbone, save_backbone
from vitr.backbones.weights import is_torchscript_archive, read_state_dict
from vitr.errors import CheckpointError

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.(script|save)` is deprecated:FutureWarning")


def _small_state() -> dict[str, torch.Tensor]:
    return {"layer.weight": torch.randn(3, 4), "layer.bias": torch.randn(3), "scale": torch.tensor(2.5)}


def _assert_same_state(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert sorted(actual) == sorted(expected)
    for key, tensor in expected.items():
        assert actual[key].dtype == tensor.dtype, key
        assert torch.equal(actual[key], tensor), key


def test_reads_safetensors(tmp_path: Path) -> None:
    state = _small_state()
    save_file(state, tmp_path / "w.safetensors")
    _assert_same_state(read_state_dict(tmp_path / "w.safetensors"), state)


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth"])
def test_reads_torch_save_state_dicts(tmp_path: Path, suffix: str) -> None:
    state = _small_state()
    torch.save(state, tmp_path / f"w{suffix}")
    _assert_same_state(read_state_dict(tmp_path / f"w{suffix}"), state)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_unwraps_training_checkpoints_and_ddp_prefix(tmp_path: Path, wrapper: str) -> None:
    state = _small_state()
    torch.save({"epoch": 3, wrapper: {f"module.{k}": v for k, v in state.items()}}, tmp_path / "ckpt.pt")
    _assert_same_state(read_state_dict(tmp_path / "ckpt.pt"), state)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nope.safetensors.*does not exist"):
        read_state_dict(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("name", ["w.safetensors", "w.bin"])
def test_garbage_files_are_checkpoint_errors(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\x00not weights at all" * 10)
    with pytest.raises(CheckpointError, match=name):
        read_state_dict(tmp_path / name)


def test_truncated_torch_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    torch.save(_small_state(), tmp_path / "full.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "full.pt").read_bytes()[:300])
    with pytest.raises(CheckpointError, match="cut.pt"):
        read_state_dict(tmp_path / "cut.pt")


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    (tmp_path / "w.npz").write_bytes(b"PK")
    with pytest.raises(CheckpointError, match="unknown extension '.npz'"):
        read_state_dict(tmp_path / "w.npz")


def test_entries_that_are_not_tensors_are_named(tmp_path: Path) -> None:
    torch.save({"weight": torch.ones(2), "note": "hello"}, tmp_path / "mixed.bin")
    with pytest.raises(CheckpointError, match=r"\[note\] are not tensors"):
        read_state_dict(tmp_path / "mixed.bin")


class _RunsCode:
    """Unpickling this object would create a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickle_that_would_execute_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    torch.save({"weight": torch.ones(2), "payload": _RunsCode(marker)}, tmp_path / "evil.bin")
    with pytest.raises(CheckpointError, match="arbitrary code"):
        read_state_dict(tmp_path / "evil.bin")
    assert not marker.exists()


def _openai_style_archive(path: Path) -> dict[str, torch.Tensor]:
    """A TorchScript CLIP with fp16 conv/linear weights, the layout of OpenAI's released ViT-B-32.pt."""
    model = random_clip({**MICRO_CFG, "quick_gelu": True})
    open_clip.convert_weights_to_lp(model, torch.float16)
    torch.jit.save(torch.jit.script(model), path)
    return model.state_dict()


def test_reads_torchscript_archive_tensors_without_loading_its_code(tmp_path: Path) -> None:
    expected = _openai_style_archive(tmp_path / "ViT-micro.pt")
    assert is_torchscript_archive(tmp_path / "ViT-micro.pt")
    state = read_state_dict(tmp_path / "ViT-micro.pt")
    assert state.pop("attn_mask").shape == (77, 77)  # TorchScript keeps non-persistent buffers too
    _assert_same_state(state, expected)
    assert state["visual.conv1.weight"].dtype == torch.float16


def test_plain_tensor_attributes_of_a_script_module_are_not_weights(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(_ModuleWithCache()), tmp_path / "m.pt")
    assert sorted(read_state_dict(tmp_path / "m.pt")) == ["linear.bias", "linear.weight", "running"]


class _ModuleWithCache(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        self.register_buffer("running", torch.zeros(2))
        self.cache = torch.ones(3)  # a plain attribute, not part of state_dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.cache.sum()


def test_torchscript_archive_with_a_code_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(_RunsCode(marker), protocol=2))
        archive.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
    with pytest.raises(CheckpointError, match="evil.pt.*not allowed"):
        read_state_dict(path)
    assert not marker.exists()


def test_torchscript_record_outside_its_storage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 4)), path)
    with zipfile.ZipFile(path) as source:
        entries = {name: source.read(name) for name in source.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data[:4] if name.endswith("data/0") else data)  # storage cut short
    with pytest.raises(CheckpointError, match="m.pt"):
        read_state_dict(path)


def test_a_failed_backbone_write_is_a_checkpoint_error_and_keeps_the_old_model(tmp_path, monkeypatch) -> None:
    backbone = load_backbone("vitr-lab-tiny", random_init=True)
    target = save_backbone(backbone, tmp_path / "clip")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def full_disk(tensors: dict, filename: str | Path, metadata: dict | None = None) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filename))

    monkeypatch.setattr(files, "save_file", full_disk)
    with pytest.raises(CheckpointError, match=f"cannot write the backbone to {target}: No space left on device"):
        save_backbone(backbone, target)

    def refused(tensors: dict, filename: str | Path, metadata: dict | None = None) -> None:
        raise SafetensorError(f"Error while serializing: {filename}")

    monkeypatch.setattr(files, "save_file", refused)
    with pytest.raises(CheckpointError, match=f"cannot write the backbone to {target}: Error while serializing"):
        save_backbone(backbone, target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # old model intact, no temporary left
