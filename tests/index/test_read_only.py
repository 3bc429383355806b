"""A read-only index (a replica on a read-only mount, a copy the user may not change) is searchable and is
never written to.

Tests run as root here, and root passes every permission check, so chmod alone proves nothing: the tests
also make `os.access` answer as it would for another user, which is how vitr decides to open read-only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.index.videos import TINY_MODEL, write_shape_video
from vitr.errors import IndexStoreError
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("built")
    for colour in ("red", "green", "blue"):
        write_shape_video(root / "videos" / f"{colour}.mp4", colour)
    index = VideoIndex.create(root / "index", TINY_MODEL)
    update_index(index, root / "videos", progress=False)
    expected = [h.path for h in index.search_text("a red square", k=3)]
    index.close()
    return root / "index", root / "videos", expected


def files_of(directory: Path) -> dict[str, str]:
    """Every file below `directory` -> sha256 of its bytes (a write, a new or a removed file all show)."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def read_only_copy(index_dir: Path, target: Path, keep_vectors: bool = True) -> Path:
    shutil.copytree(index_dir, target)
    if not keep_vectors:
        for path in target.glob("vectors-*.faiss"):
            path.unlink()
    for path in [*target.rglob("*"), target]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return target


@pytest.fixture
def as_other_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.access answers by the permission bits, as for a user other than root."""
    real_access = os.access

    def access(path: str | Path, mode: int, **kwargs: object) -> bool:
        if mode & os.W_OK and not os.stat(path).st_mode & stat.S_IWUSR:
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("keep_vectors", [True, False])
def test_a_read_only_copy_is_searchable_and_untouched(built, tmp_path, as_other_user, keep_vectors, monkeypatch):
    index_dir, videos, expected = built
    copy = read_only_copy(index_dir, tmp_path / "replica", keep_vectors)
    before = files_of(copy)
    opened = []
    real_connect = sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect", lambda target, **kw: opened.append(str(target)) or real_connect(target, **kw)
    )
    index = VideoIndex(copy)
    assert index.read_only
    assert opened and all(uri.endswith("metadata.sqlite?immutable=1") for uri in opened)
    assert [h.path for h in index.search_text("a red square", k=3)] == expected
    assert index.stats()["videos"] == 3
    with pytest.raises(IndexStoreError, match="read-only"):
        update_index(index, videos, progress=False)
    index.close()
    assert files_of(copy) == before


def test_read_only_open_of_a_writable_index_writes_nothing_it_owns(built, tmp_path):
    """mode=ro (an indexer may be writing): the metadata and vector files are left exactly as they were."""
    index_dir, _videos, expected = built
    copy = tmp_path / "copy"
    shutil.copytree(index_dir, copy)
    for path in copy.glob("vectors-*.faiss"):
        path.unlink()
    before = files_of(copy)
    index = VideoIndex(copy, read_only=True)
    assert [h.path for h in index.search_text("a red square", k=3)] == expected
    index.close()
    after = files_of(copy)
    assert {k: v for k, v in after.items() if not k.endswith(("-shm", "-wal"))} == before
