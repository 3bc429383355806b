"""Sharded indexing in two processes (as torchrun launches them), then one merged index of everything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.index.videos import write_shape_video
from vitr.errors import ConfigError
from vitr.index.indexer import scan_videos
from vitr.index.shards import merge_indexes, parse_shard, shard_dir, shard_from_env
from vitr.index.video_index import VideoIndex

RANK_SCRIPT = """
import sys
from tests.index.videos import TINY_MODEL
from vitr.index.indexer import update_index
from vitr.index.shards import shard_dir, shard_from_env
from vitr.index.video_index import VideoIndex

shard = shard_from_env()
index = VideoIndex.create(shard_dir(sys.argv[2], shard), TINY_MODEL)
update_index(index, sys.argv[1], shard=shard, progress=False, workers=0)
"""


def test_shards_split_every_file_exactly_once(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"v{i}.mp4").write_bytes(b"x")
    shards = [set(scan_videos(tmp_path, (rank, 3))) for rank in range(3)]
    assert set().union(*shards) == set(scan_videos(tmp_path)) and sum(map(len, shards)) == 12
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "3"}) == (1, 3) and shard_from_env({}) is None
    with pytest.raises(ConfigError, match="RANK/WORLD"):
        parse_shard("two")


@pytest.mark.slow
def test_two_ranks_then_merge_hold_every_video_once(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    colours = ["red", "green", "blue", "yellow", "red", "blue"]
    for i, colour in enumerate(colours):
        write_shape_video(root / f"v{i}.mp4", colour, seconds_each=1.0)
    repo = Path(__file__).resolve().parents[2]
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", RANK_SCRIPT, str(root), str(tmp_path / "index")],
            cwd=repo,
            env={**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "PYTHONPATH": str(repo)},
        )
        for rank in range(2)
    ]
    assert [p.wait(timeout=120) for p in ranks] == [0, 0]
    shards = [shard_dir(tmp_path / "index", (rank, 2)) for rank in range(2)]
    counts = [VideoIndex(s).meta.count()[0] for s in shards]
    assert sum(counts) == 6 and min(counts) >= 1

    merged = merge_indexes(tmp_path / "merged", shards)
    assert sorted(Path(p).name for p in merged.meta.videos()) == [f"v{i}.mp4" for i in range(6)]
    assert merged.meta.roots() == [str(root.resolve())]
    for source in shards:
        shard = VideoIndex(source)
        for path, record in shard.meta.videos().items():
            np.testing.assert_array_equal(
                merged.meta.video_vectors(merged.meta.video_by_path(path).id), shard.meta.video_vectors(record.id)
            )
        shard.close()
    assert len(merged.search_vectors(merged.video_vector(1), k=10)[0]) == 6
    merged.close()
