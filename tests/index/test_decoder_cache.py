"""Indexing with torchcodec: the videos are found the same way, and their frame features go to a cache
namespace of their own, never to PyAV's entries."""

from __future__ import annotations

import numpy as np
import pytest

from tests.index.videos import TINY_MODEL, write_shape_video
from tests.video.test_decoders import needs_torchcodec
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex


@needs_torchcodec
@pytest.mark.slow
def test_torchcodec_features_are_cached_apart_and_search_alike(tmp_path) -> None:
    root = tmp_path / "videos"
    write_shape_video(root / "red.mp4", "red")
    write_shape_video(root / "blue.mp4", "blue")
    vectors = {}
    namespaces = {}
    for decoder in ("pyav", "torchcodec"):
        index = VideoIndex.create(tmp_path / decoder, TINY_MODEL)
        report = update_index(index, root, progress=False, workers=0, decoder=decoder)
        assert report.added == 2 and not report.failed
        namespaces[decoder] = {p.name for p in (tmp_path / decoder / "cache").iterdir() if p.is_dir()}
        vectors[decoder] = index.meta.all_segments()[1]
        index.close()
    assert len(namespaces["pyav"]) == len(namespaces["torchcodec"]) == 1
    assert namespaces["pyav"] != namespaces["torchcodec"]
    # on the CPU both decoders give the same pixels for these files, so the same vectors
    np.testing.assert_allclose(vectors["torchcodec"], vectors["pyav"], atol=1e-5)
