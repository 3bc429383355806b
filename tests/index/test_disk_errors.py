"""A full disk, a read-only file system or a missing permission while indexing is one clear error that names
the path, and everything committed before it stays (a rerun resumes)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import faiss
import numpy as np
import pytest

import vitr.data.cache
from tests.index.videos import TINY_MODEL, write_shape_video
from vitr import files
from vitr.cli.main import main
from vitr.errors import IndexStoreError
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex, Windowing


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    for colour in ("red", "green", "blue"):
        write_shape_video(tmp_path / "videos" / f"{colour}.mp4", colour)
    return tmp_path / "videos"


def fail_cache_writes_after(monkeypatch: pytest.MonkeyPatch, ok: int, code: int = errno.ENOSPC) -> None:
    """The feature cache's shard writes succeed `ok` times, then fail with `code` (a full disk by default)."""
    real_save = vitr.data.cache.save_safetensors
    calls = []

    def save_safetensors(path: Path, tensors: dict, metadata: dict | None = None) -> Path:
        calls.append(path)
        if len(calls) > ok:
            raise OSError(code, os.strerror(code), str(path))
        return real_save(path, tensors, metadata)

    monkeypatch.setattr(vitr.data.cache, "save_safetensors", save_safetensors)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_cache_write_failure_keeps_what_was_committed(videos, tmp_path, monkeypatch, code):
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    fail_cache_writes_after(monkeypatch, ok=1, code=code)
    with pytest.raises(IndexStoreError, match=f"cannot write the feature cache under {tmp_path}/index/cache"):
        update_index(index, videos, commit_every=1, progress=False)
    assert index.meta.count()[0] == 1  # the first video was committed before the disk filled up
    monkeypatch.undo()
    report = update_index(index, videos, commit_every=1, progress=False)
    assert (report.added, report.unchanged) == (2, 1)


def test_a_full_disk_is_one_line_from_the_cli(videos, tmp_path, monkeypatch, capsys):
    fail_cache_writes_after(monkeypatch, ok=0)
    args = ["index", str(videos), "--index", str(tmp_path / "index"), "--model", "vitr-lab-tiny", "--random-init"]
    assert main([*args, "--frames", "4", "--workers", "0"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]  # after the progress bar, closed first
    assert error.startswith("vitr index: error: cannot write the feature cache under ")
    assert error.endswith("No space left on device") and "Traceback" not in capsys.readouterr().err


def test_a_full_metadata_database_rolls_back_the_batch(videos, tmp_path):
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, videos, progress=False)
    db = index.meta.db
    db.execute("VACUUM")
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")  # SQLite: disk full
    small = ("/v/small.mp4", 1, 1, "d1", 1.0, [(None, None, np.zeros(4, np.float32))])
    large = ("/v/large.mp4", 1, 1, "d2", 1.0, [(None, None, np.zeros(100_000, np.float32))])
    with pytest.raises(IndexStoreError, match=f"cannot write {tmp_path}/index/metadata.sqlite: database or disk"):
        index.meta.commit_batch([small, large])
    assert sorted(Path(p).name for p in index.meta.videos()) == ["blue.mp4", "green.mp4", "red.mp4"]
    assert len(index.search_text("a red square", k=3)) == 3


def test_a_read_only_file_system_names_index_json(tmp_path, monkeypatch):
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    real_open = open

    def read_only(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if "w" in mode:
            raise OSError(errno.EROFS, "Read-only file system", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(files, "open", read_only, raising=False)  # the one place vitr writes a file atomically
    with pytest.raises(IndexStoreError, match=f"cannot write {tmp_path}/index/index.json: Read-only file system"):
        index.set_windowing(Windowing(4.0, 2.0))
    assert json.loads((tmp_path / "index" / "index.json").read_text())["windows"] is None
    assert not list((tmp_path / "index").glob(".*.partial"))


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_a_damaged_index_json_is_a_clear_error(tmp_path, content):
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.json").write_bytes(content)
    with pytest.raises(IndexStoreError, match=f"{tmp_path}/index/index.json"):
        VideoIndex(tmp_path / "index")


def test_search_goes_on_when_the_vector_file_cannot_be_saved(videos, tmp_path, monkeypatch, caplog):
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, videos, progress=False)
    for path in (tmp_path / "index").glob("vectors-*.faiss"):
        path.unlink()
    monkeypatch.setattr(faiss, "write_index", lambda *args: (_ for _ in ()).throw(RuntimeError("No space left")))
    assert len(index.search_text("a red square", k=3)) == 3
    assert "cannot write" in caplog.text and "searching from memory" in caplog.text
    assert not list((tmp_path / "index").glob("*.faiss*")) and not list((tmp_path / "index").glob(".*partial"))
