"""Temporal heads over frame embeddings; importing this package registers every head with `create_head`."""

from vitr.heads import clip2video, meanp, seq_transf  # noqa: F401  (registration side effect)
from vitr.heads.base import TemporalHead, available_heads, create_head, register_head

__all__ = ["TemporalHead", "available_heads", "create_head", "register_head"]
