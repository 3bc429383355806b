"""One indexing run over a folder of odd and broken files: every broken file is skipped and reported, every
sound one is indexed, and a rerun neither retries the broken ones nor crashes."""

from __future__ import annotations

import pytest

from tests.index.videos import TINY_MODEL, write_odd_corpus
from vitr.cli.main import main
from vitr.errors import VideoDecodeError
from vitr.index.indexer import search_by_video, update_index
from vitr.index.video_index import VideoIndex


@pytest.mark.slow
def test_odd_corpus_indexes_in_one_run(tmp_path):
    sound, broken = write_odd_corpus(tmp_path / "videos")
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    report = update_index(index, tmp_path / "videos", workers=2, progress=False)

    assert sorted(report.failed) == sorted(str(p.resolve()) for p in broken)
    assert all(reason for reason in report.failed.values())
    assert report.added == len(sound)
    assert sorted(index.meta.videos()) == sorted(str(p.resolve()) for p in sound)
    assert index.meta.video_by_path(str((tmp_path / "videos" / "ten minutes.mp4").resolve())).duration > 590

    again = update_index(index, tmp_path / "videos", progress=False)
    assert (again.added, again.updated, again.unchanged, len(again.failed)) == (0, 0, len(sound), len(broken))
    assert index.search_text("a red square", k=3)
    index.close()


def test_search_by_a_broken_video_is_a_decode_error(tmp_path):
    _sound, broken = write_odd_corpus(tmp_path / "videos")
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    for path in broken:
        with pytest.raises(VideoDecodeError):
            search_by_video(index, path)


def test_vitr_search_by_a_broken_video_is_one_line(tmp_path, capsys):
    _sound, broken = write_odd_corpus(tmp_path / "videos")
    VideoIndex.create(tmp_path / "index", TINY_MODEL).close()
    for path in broken:
        assert main(["search", "--video", str(path), "--index", str(tmp_path / "index")]) == 2
        error = capsys.readouterr().err
        *usage, last = error.splitlines()
        assert " ".join(usage).startswith("usage: vitr search") and "Traceback" not in error
        assert last.startswith(f"vitr search: error: cannot decode video {str(path)!r}")
