"""Dataset readers for the standard benchmark files and the types they return."""

from vitr.data.readers import load_dataset
from vitr.data.types import Caption, RetrievalDataset, VideoItem

__all__ = ["Caption", "RetrievalDataset", "VideoItem", "load_dataset"]
