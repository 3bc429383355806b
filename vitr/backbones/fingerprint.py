"""Content hashes of model weights, so cached features are tied to the exact weights that produced them."""

from __future__ import annotations

import hashlib

import torch
from torch import nn


class WeightsFingerprint:
    """sha256 over an architecture description and every state-dict tensor, recomputed only when a tensor
    changed: in-place updates (optimizer steps, `load_state_dict`) bump the tensor's version counter."""

    def __init__(self, architecture: str) -> None:
        self.architecture = architecture
        self._versions: tuple[tuple[int, int], ...] | None = None
        self._digest = ""

    def of(self, module: nn.Module) -> str:
        state = module.state_dict(keep_vars=True)
        versions = tuple((t.data_ptr(), t._version) for t in state.values())
        if versions != self._versions:
            self._digest = _hash_state(self.architecture, state)
            self._versions = versions
        return self._digest


def _hash_state(architecture: str, state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256(architecture.encode())
    for name in sorted(state):
        digest.update(f"\0{name}".encode())
        hash_tensor(digest, state[name])
    return digest.hexdigest()


def hash_tensor(digest: hashlib._Hash, tensor: torch.Tensor) -> None:
    """Feed a tensor's dtype, shape and bytes to `digest` (any dtype: the bytes are read as they are stored)."""
    flat = tensor.detach().cpu().contiguous()
    digest.update(f"\0{flat.dtype}\0{tuple(flat.shape)}\0".encode())
    digest.update(flat.reshape(-1).view(torch.uint8).numpy())
