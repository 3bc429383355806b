import numpy as np
import pytest

from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.errors import DatasetFormatError


def _dataset(captions):
    videos = [VideoItem(f"v{i}", f"/videos/v{i}.mp4") for i in range(3)]
    return RetrievalDataset("toy", "test", videos, captions)


def test_caption_video_index_points_each_caption_at_its_video():
    dataset = _dataset([Caption("v2", "c"), Caption("v0", "a"), Caption("v2", "d")])
    index = dataset.caption_video_index()
    assert index.dtype == np.int64
    assert index.tolist() == [2, 0, 2]
    assert dataset.is_multi_caption


def test_one_caption_per_video_is_not_multi_caption():
    assert not _dataset([Caption("v0", "a"), Caption("v1", "b")]).is_multi_caption


def test_subset_keeps_tagged_captions_and_the_whole_gallery():
    dataset = _dataset(
        [
            Caption("v0", "moves left then right", frozenset({"temporal"})),
            Caption("v0", "a red ball"),
            Caption("v1", "grows", frozenset({"temporal", "size"})),
        ]
    )
    temporal = dataset.subset("temporal")
    assert [c.text for c in temporal.captions] == ["moves left then right", "grows"]
    assert temporal.videos == dataset.videos
    assert temporal.caption_video_index().tolist() == [0, 1]
    assert len(dataset.captions) == 3


def test_captions_of_unknown_videos_and_duplicate_ids_are_errors():
    with pytest.raises(DatasetFormatError, match="not in the split"):
        _dataset([Caption("v9", "lost")]).caption_video_index()
    duplicated = RetrievalDataset("toy", "test", [VideoItem("a", "x"), VideoItem("a", "y")], [])
    with pytest.raises(DatasetFormatError, match="duplicate"):
        duplicated.caption_video_index()


def test_items_are_immutable_and_hashable():
    item = VideoItem("v0", "/x.mp4", 0.0, 31.0)
    with pytest.raises(AttributeError):
        item.start = 1.0  # type: ignore[misc]
    assert len({item, VideoItem("v0", "/x.mp4", 0.0, 31.0)}) == 1
