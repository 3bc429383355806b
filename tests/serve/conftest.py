"""One small windowed index shared by the server tests of a module (building a model takes seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.index.videos import TINY_MODEL, write_shape_video
from tests.video.clips import TONE_RATE, tone_bursts
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex
from vitr.serve.app import ServeSettings, create_app


@dataclass
class Served:
    index: VideoIndex
    root: Path
    outside: Path
    client: TestClient


def serve_folder(tmp: Path, settings: ServeSettings | None = None, sound: bool = False) -> Served:
    """videos/{red,green,blue}.mp4 and clips/yellow.mp4 under one root, plus a secret file outside it that a
    symlink inside the root points to. With `sound`, red.mp4 has a sound track (`tone_bursts`)."""
    root = tmp / "videos"
    tone = {"audio": tone_bursts(4.0), "sample_rate": TONE_RATE} if sound else {}
    write_shape_video(root / "red.mp4", ["red", "red"], **tone)
    write_shape_video(root / "green.mp4", ["blue", "green"])
    write_shape_video(root / "blue.mp4", "blue")
    write_shape_video(root / "clips" / "yellow.mp4", "yellow")
    outside = write_shape_video(tmp / "secret" / "secret.mp4", "green")
    (root / "linked.mp4").symlink_to(outside)
    (root / "linked_dir").symlink_to(outside.parent, target_is_directory=True)
    index = VideoIndex.create(tmp / "index", TINY_MODEL)
    report = update_index(index, root, window=1.0, stride=0.5, progress=False, workers=0)
    assert report.added == 4 and not report.failed
    return Served(index, root, outside, TestClient(create_app(index, [root], settings)))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    result = serve_folder(tmp_path_factory.mktemp("served"))
    yield result
    result.client.close()
    result.index.close()
