"""Every error vitr raises on bad input, so callers can catch one family and users read one clear message."""

from __future__ import annotations

from pathlib import Path


class VitrError(Exception):
    """Base class of all vitr errors."""


class VideoDecodeError(VitrError):
    """A video file cannot be opened or yields no usable frames (corrupt, empty, audio-only, truncated)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path!r}: {reason}")


class CheckpointError(VitrError):
    """A checkpoint file is missing, unreadable, of a foreign layout, or does not match the model."""


class DatasetFormatError(VitrError):
    """An annotation file is missing or not in the format its reader expects."""


class ConfigError(VitrError):
    """A configuration value or command-line override is invalid."""


class IndexStoreError(VitrError):
    """The on-disk index is missing, locked, or inconsistent."""
