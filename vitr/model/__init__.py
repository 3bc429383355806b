"""A retrieval model = a backbone (frames, text) + a temporal head (video vector)."""

from vitr.model.retrieval import VideoTextModel

__all__ = ["VideoTextModel"]
