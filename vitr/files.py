"""File modes: what vitr writes is readable as the user's umask says, like any file the shell creates.

safetensors (and so Hugging Face's `save_pretrained`) create their files with mode 0600 whatever the umask, so a
model written on a shared machine would be private to its author; `follow_umask` gives such a file the mode an
ordinary `open(path, "w")` would have had."""

from __future__ import annotations

import os
import threading
from pathlib import Path

_lock = threading.Lock()
_umask: int | None = None


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
