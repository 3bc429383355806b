"""File I/O every layer shares: one atomic write, the user's umask, one strict loader of weights into a module.

A file vitr writes appears whole or not at all: it is written under a temporary name in the same directory (so the
rename never crosses a file system), flushed to disk, given the mode the umask says and renamed over the target;
a failure removes the temporary and leaves any older file untouched. safetensors (and so Hugging Face's
`save_pretrained`) create files with mode 0600 whatever the umask, so a model written on a shared machine would be
private to its author; `follow_umask` gives such a file the mode an ordinary `open(path, "w")` would have had.

Loading is strict: a state dict that does not fit its module exactly is a CheckpointError naming the file and the
first keys that differ, never a model that silently keeps random weights.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from vitr.errors import CheckpointError

_lock = threading.Lock()
_umask: int | None = None
MAX_LISTED_KEYS = 20


def current_umask() -> int:
    """The process umask, read once: from /proc (no change to the process) where Linux offers it, else by setting
    and restoring it under a lock."""
    global _umask
    with _lock:
        if _umask is None:
            _umask = _read_umask()
        return _umask


def _read_umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | Path) -> None:
    """Give a file vitr wrote the mode 0666 minus the umask (0644 under the usual umask 022)."""
    os.chmod(path, 0o666 & ~current_umask())


# ------------------------------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` for any writer (PyAV, FAISS, safetensors, a stream of lines); when the
    block ends without error the file there is synced, given the umask's mode and renamed over `path`.

    On any error the temporary is removed and `path` keeps its old content. The name is unique per call, so
    threads and processes writing the same target never share a temporary; the last rename wins.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        yield tmp
        _fsync(tmp)
        follow_umask(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a new temporary directory beside `path` to fill; when the block ends without error every file in it is
    synced and the directory is renamed to `path`, which must not exist yet (a checkpoint's step directory).

    On any error the temporary directory is removed. `is_partial` names these temporaries, so a caller can clear
    those a killed process left behind.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                _fsync(file)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _fsync_directory(path.parent)


def is_partial(path: str | Path) -> bool:
    """True for the temporary of an `atomic_path` or `atomic_directory` write (one a crash may leave behind)."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(".partial")


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write `data` (str as UTF-8) to `path` atomically; the parent directory must exist."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def save_safetensors(
    path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write `tensors` as a safetensors file atomically, readable as the umask says."""
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(dict(tensors), str(tmp), metadata=dict(metadata) if metadata is not None else None)
    return path


def _fsync(path: Path) -> None:
    """Flush a written file to disk before the rename, so a power cut cannot leave a renamed but empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; file systems that cannot sync a directory are left as they are."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------------- strict loading


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, on the CPU; an unreadable file is a CheckpointError naming it."""
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read safetensors file {str(path)!r}: {exc}") from exc


def read_safetensors_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file's header; an unreadable file is a CheckpointError naming it."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read safetensors file {str(path)!r}: {exc}") from exc


def load_state_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """Copy `state` into `model`, naming every missing, unexpected, wrongly shaped or wrongly typed key on failure.

    Floating-point widths convert (fp16 weights load into an fp32 model, as OpenAI's release needs); a change of
    kind (a float where the model keeps integers or booleans) is a mismatch: the file was written for another
    model. Non-persistent buffers (CLIP's causal mask) are recomputed by the model, so a file may carry them.
    """
    expected = model.state_dict()
    derived = derived_buffers(model)
    state = {k: v for k, v in state.items() if k not in derived}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shared = sorted(set(expected) & set(state))
    mismatched = [
        f"{k} (file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in shared
        if state[k].shape != expected[k].shape
    ]
    mistyped = [
        f"{k} (file {state[k].dtype}, model {expected[k].dtype})"
        for k in shared
        if _kind(state[k].dtype) != _kind(expected[k].dtype)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {listed(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches {listed(mismatched)}")
    if mistyped:
        problems.append(f"dtype mismatches {listed(mistyped)}")
    if problems:
        raise CheckpointError(
            f"weights {str(source)!r} do not match the {type(model).__name__} architecture: " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def load_safetensors_strict(model: nn.Module, path: str | Path) -> None:
    """Read a safetensors file and load it into `model` strictly (see `load_state_strict`)."""
    load_state_strict(model, read_safetensors(path), path)


def listed(keys: list[str]) -> str:
    """The first keys of a list for an error message, with how many more there are."""
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    more = len(keys) - MAX_LISTED_KEYS
    return f"[{shown}{f', ... and {more} more' if more > 0 else ''}]"


def _kind(dtype: torch.dtype) -> str:
    if dtype.is_floating_point:
        return "float"
    if dtype.is_complex:
        return "complex"
    return "bool" if dtype == torch.bool else "int"


def derived_buffers(model: nn.Module) -> set[str]:
    """Non-persistent buffers (e.g. CLIP's causal mask): recomputed by the model, yet TorchScript archives
    list them with the weights because TorchScript does not record persistence."""
    return {
        f"{prefix}.{name}" if prefix else name
        for prefix, module in model.named_modules()
        for name in module._non_persistent_buffers_set
    }
