"""Safe readers for the weight files CLIP users have on disk, and the one format vitr writes.

Nothing here executes code from a file: safetensors are plain tensors, `torch.load` runs with
`weights_only=True`, and OpenAI's TorchScript archives (`ViT-B-32.pt`) are read by unpickling only their
tensor records with an allow-list, never by `torch.jit.load` (a TorchScript archive carries code).
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from vitr.backbones.base import Backbone
from vitr.backbones.hf_clip import HFClipBackbone
from vitr.backbones.open_clip_backbone import OpenClipBackbone
from vitr.errors import CheckpointError
from vitr.files import atomic_write, listed, read_safetensors, save_safetensors

PICKLE_SUFFIXES = (".bin", ".pt", ".pth")
VITR_FORMAT = "vitr.backbone"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

# OpenAI's JIT CLIP keeps these ints next to its weights; they are not parameters of any module.
_OPENAI_JIT_METADATA = ("input_resolution", "context_length", "vocab_size")
_NESTED_STATE_KEYS = ("state_dict", "model")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a `.safetensors`, `.bin/.pt/.pth` pickle or TorchScript archive into a flat state dict on CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    # CLIP4Clip / CLIP2Video save one file per epoch: pytorch_model.bin.{epoch}
    numbered = re.fullmatch(r"\.bin\.\d+", "".join(path.suffixes[-2:])) is not None
    if path.suffix not in PICKLE_SUFFIXES and not numbered:
        raise CheckpointError(
            f"cannot read weights file {str(path)!r}: unknown extension {path.suffix!r} "
            f"(expected .safetensors, {', '.join(PICKLE_SUFFIXES)})"
        )
    if is_torchscript_archive(path):
        return _read_torchscript(path)
    return _read_torch_pickle(path)


def is_torchscript_archive(path: str | Path) -> bool:
    """True for a `torch.jit.save` zip (OpenAI's released CLIP `.pt` files are these)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.split("/")[1:] == ["constants.pkl"] for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _read_torch_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):
            raise CheckpointError(
                f"refusing to load {str(path)!r}: it holds Python objects whose loading needs arbitrary code "
                "execution, and vitr never runs code from a weights file; re-save it as a plain state dict "
                "(torch.save(model.state_dict(), ...)) or as .safetensors with a trusted tool"
            ) from exc
        raise CheckpointError(f"{str(path)!r} is not a PyTorch weights file vitr can read safely") from exc
    except Exception as exc:  # a damaged pickle stream fails inside the unpickler with arbitrary error types
        raise CheckpointError(
            f"cannot read weights file {str(path)!r} (corrupt or truncated?): {type(exc).__name__}: {exc}"
        ) from exc
    return _as_flat_state_dict(loaded, path)


def _as_flat_state_dict(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    """Unwrap `{"state_dict": ...}` / `{"model": ...}` training checkpoints and DDP's `module.` prefix."""
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"{str(path)!r} holds a {type(loaded).__name__}, not a state dict")
    for key in _NESTED_STATE_KEYS:
        if isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
            break
    not_tensors = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{str(path)!r} is not a state dict: entries {listed(not_tensors)} are not tensors")
    state = {str(k): v for k, v in loaded.items()}
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


class _ScriptObject:
    """Stand-in for one TorchScript module object: keeps its attributes, has none of its code."""

    qualified_name = ""

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected state of type {type(state).__name__} for {self.qualified_name}")
        self.attributes = state


_STORAGE_DTYPES = {
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


def _rebuild_tensor(
    storage: torch.Tensor,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> torch.Tensor:
    """`torch._utils._rebuild_tensor_v2` on a flat storage tensor; as_strided checks the bounds."""
    return torch.as_strided(storage, size, stride, offset).clone()


def _identity_list(values: Iterable[object]) -> list[object]:
    return list(values)


def _restore_type_tag(value: object, type_str: str) -> object:
    return value


_ALLOWED_FUNCTIONS: dict[tuple[str, str], object] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch.jit._pickle", "build_intlist"): _identity_list,
    ("torch.jit._pickle", "build_doublelist"): _identity_list,
    ("torch.jit._pickle", "build_boollist"): _identity_list,
    ("torch.jit._pickle", "build_tensorlist"): _identity_list,
    ("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
}


class _TorchScriptDataUnpickler(pickle.Unpickler):
    """Unpickles `data.pkl` of a TorchScript archive allowing only tensor records and inert module stand-ins."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(archive.open(f"{prefix}/data.pkl"))
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, torch.Tensor] = {}
        self._classes: dict[str, type[_ScriptObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            if qualified not in self._classes:
                self._classes[qualified] = type(name, (_ScriptObject,), {"qualified_name": qualified})
            return self._classes[qualified]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) in _ALLOWED_FUNCTIONS:
            return _ALLOWED_FUNCTIONS[(module, name)]
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weights archive")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise pickle.UnpicklingError(f"unsupported persistent record {pid!r}")
        dtype, key = pid[1], str(pid[2])
        if key not in self._storages:
            raw = bytearray(self._archive.read(f"{self._prefix}/data/{key}"))
            self._storages[key] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self._storages[key]


def _read_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """Parameters and buffers of a TorchScript archive, found from its pickled module tree without running it."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            prefix = next(n.split("/")[0] for n in names if n.split("/")[1:] == ["data.pkl"])
            byteorder = f"{prefix}/byteorder"
            if byteorder in names and archive.read(byteorder).strip() != b"little":
                raise CheckpointError(f"{str(path)!r} stores big-endian tensors, which vitr does not read")
            declared = _declared_state_names(archive, prefix)
            root = _TorchScriptDataUnpickler(archive, prefix).load()
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, StopIteration, RuntimeError, EOFError) as exc:
        raise CheckpointError(f"cannot read TorchScript archive {str(path)!r} safely: {exc}") from exc
    if not isinstance(root, _ScriptObject):
        raise CheckpointError(f"{str(path)!r} is a TorchScript archive without a module at its root")
    state = dict(_flatten_module(root, declared, ""))
    for key in _OPENAI_JIT_METADATA:
        state.pop(key, None)
    return state


_CLASS_DECLARATION = re.compile(
    r"^class (\w+)\(Module\):\n  __parameters__ = \[([^\]]*)\](?:\n  __buffers__ = \[([^\]]*)\])?", re.MULTILINE
)


def _declared_state_names(archive: zipfile.ZipFile, prefix: str) -> dict[str, set[str]]:
    """qualified class name -> its declared parameters and buffers, read as text from the archive's code files."""
    declared: dict[str, set[str]] = {}
    code_root = f"{prefix}/code/"
    for name in archive.namelist():
        if not (name.startswith(code_root) and name.endswith(".py")):
            continue
        module = name[len(code_root) : -len(".py")].replace("/", ".")
        for cls, params, buffers in _CLASS_DECLARATION.findall(archive.read(name).decode("utf-8", "replace")):
            declared[f"{module}.{cls}"] = set(re.findall(r'"([^"]*)"', params + buffers))
    return declared


def _flatten_module(
    obj: _ScriptObject, declared: dict[str, set[str]], prefix: str
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (dotted name, tensor) like `nn.Module.state_dict`; plain tensor attributes are skipped when the
    class declares its parameters and buffers."""
    allowed = declared.get(obj.qualified_name)
    for name, value in getattr(obj, "attributes", {}).items():
        if isinstance(value, _ScriptObject):
            yield from _flatten_module(value, declared, f"{prefix}{name}.")
        elif isinstance(value, torch.Tensor) and (allowed is None or name in allowed):
            yield f"{prefix}{name}", value


def write_vitr_dir(directory: str | Path, config: dict[str, Any], state: Mapping[str, torch.Tensor]) -> Path:
    """Write `config.json` (tagged as a vitr backbone) and `model.safetensors` into `directory`.

    Each file is written atomically (`vitr.files`), so a killed or failed write never leaves a half-written
    model; a full disk or a read-only target is a CheckpointError naming the directory.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        save_safetensors(directory / WEIGHTS_NAME, {k: v.detach().contiguous().cpu() for k, v in state.items()})
        atomic_write(directory / CONFIG_NAME, json.dumps({"format": VITR_FORMAT, **config}, indent=2) + "\n")
    except (OSError, SafetensorError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CheckpointError(f"cannot write the backbone to {directory}: {reason}") from exc
    return directory


def save_backbone(backbone: Backbone, directory: str | Path) -> Path:
    """Write a backbone so `load_backbone(directory)` rebuilds it offline.

    open_clip backbones become `config.json` (architecture name, the open_clip model-config dict itself so
    custom architectures round-trip, image mean/std) + `model.safetensors`; Hugging Face backbones are
    written with `save_pretrained` plus their image normalisation.
    """
    if isinstance(backbone, OpenClipBackbone):
        return write_vitr_dir(directory, backbone.export_config(), backbone.model.state_dict())
    if isinstance(backbone, HFClipBackbone):
        return backbone.save(directory)
    raise CheckpointError(f"cannot save a {type(backbone).__name__}; vitr saves open_clip and Hugging Face CLIPs")
