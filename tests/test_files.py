"""vitr.files: a write is whole or absent, files follow the umask, and a wrong checkpoint is named, never loaded."""

from __future__ import annotations

import errno
import os
import stat

import pytest
import torch
from torch import nn

from vitr import files
from vitr.errors import CheckpointError
from vitr.files import atomic_path, atomic_write, load_safetensors_strict, load_state_strict, save_safetensors


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_atomic_write_replaces_the_file_with_the_umask_mode(tmp_path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("old")
    atomic_write(target, "néw")
    assert target.read_text(encoding="utf-8") == "néw"
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~files.current_umask()
    assert _leftovers(tmp_path) == []


def test_a_write_that_fails_midway_keeps_the_old_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "index.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="encoder crashed"), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("encoder crashed")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_a_failing_sync_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch) -> None:
    target = tmp_path / "model.safetensors"
    save_safetensors(target, {"w": torch.ones(2)})

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        save_safetensors(target, {"w": torch.zeros(3)})
    monkeypatch.undo()
    assert torch.equal(files.read_safetensors(target)["w"], torch.ones(2))
    assert _leftovers(tmp_path) == []


def test_safetensors_round_trip_keeps_metadata_and_follows_the_umask(tmp_path) -> None:
    from safetensors import safe_open

    path = save_safetensors(tmp_path / "w.safetensors", {"a": torch.arange(4)}, {"format": "vitr.model"})
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == {"format": "vitr.model"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~files.current_umask()  # safetensors alone writes 0600


class _Tiny(nn.Module):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(width, 2)
        self.register_buffer("steps", torch.zeros(1, dtype=torch.long))
        self.register_buffer("mask", torch.ones(2), persistent=False)


def test_the_strict_loader_loads_an_exact_file_and_converts_float_widths(tmp_path) -> None:
    source = _Tiny()
    state = {k: v.half() if v.is_floating_point() else v for k, v in source.state_dict().items()}
    path = save_safetensors(tmp_path / "m.safetensors", {**state, "mask": torch.zeros(2)})  # a derived buffer too
    target = _Tiny()
    load_safetensors_strict(target, path)
    assert target.linear.weight.dtype == torch.float32
    assert torch.equal(target.linear.weight, source.linear.weight.half().float())


def test_the_strict_loader_names_the_file_and_every_kind_of_mismatch(tmp_path) -> None:
    state = dict(_Tiny(width=4).state_dict())
    state.pop("linear.bias")
    state["extra.weight"] = torch.zeros(1)
    state["steps"] = torch.zeros(1)  # float where the model counts in integers
    path = save_safetensors(tmp_path / "other.safetensors", state)
    target = _Tiny()
    before = target.linear.weight.clone()
    with pytest.raises(CheckpointError) as caught:
        load_safetensors_strict(target, path)
    message = str(caught.value)
    assert str(path) in message and "_Tiny" in message
    assert "missing keys [linear.bias]" in message
    assert "unexpected keys [extra.weight]" in message
    assert "shape mismatches [linear.weight (file (2, 4), model (2, 3))]" in message
    assert "dtype mismatches [steps (file torch.float32, model torch.int64)]" in message
    assert torch.equal(target.linear.weight, before)  # nothing was half-loaded


def test_the_strict_loader_lists_only_the_first_keys() -> None:
    many = {f"k{i:02d}": torch.zeros(1) for i in range(25)}
    with pytest.raises(CheckpointError, match=r"unexpected keys \[k00, .*k19, \.\.\. and 5 more\]"):
        load_state_strict(nn.Module(), many, "many.safetensors")


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all"])
def test_an_unreadable_safetensors_file_is_a_checkpoint_error_naming_it(tmp_path, content) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"cannot read safetensors file '{path}'"):
        load_safetensors_strict(_Tiny(), path)


def test_atomic_directory_appears_whole_or_not_at_all(tmp_path) -> None:
    target = tmp_path / "step_00000003"
    with pytest.raises(RuntimeError, match="killed"), files.atomic_directory(target) as tmp:
        (tmp / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed while saving")
    assert not target.exists() and _leftovers(tmp_path) == []
    with files.atomic_directory(target) as tmp:
        assert files.is_partial(tmp) and not target.exists()
        (tmp / "trainer.json").write_text("{}")
    assert (target / "trainer.json").read_text() == "{}" and _leftovers(tmp_path) == []
