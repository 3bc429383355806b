"""Searches running while an indexer commits always see one whole committed state, never a torn one."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tests.index.videos import TINY_MODEL, write_shape_video
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex


def test_searches_during_reindexing_always_see_every_video(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    paths = [write_shape_video(root / f"{c}.mp4", c, seconds_each=1.0) for c in ("red", "green", "blue", "yellow")]
    writer = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(writer, root, progress=False, workers=0)
    reader = VideoIndex(tmp_path / "index")
    query = reader.embed_texts(["a moving square"])
    expected = {str(p) for p in paths}
    rounds = 4
    done = threading.Event()
    problems: list[str] = []
    generations: set[int] = set()

    def reindex() -> None:
        """Every commit replaces one video (new ids for its rows): the moment a torn read would lose it."""
        try:
            for round_ in range(rounds):
                for path in paths:
                    os.utime(path, ns=(round_ * 10**9 + 1, (round_ + 1) * 10**9 + paths.index(path)))
                update_index(writer, root, commit_every=1, progress=False, workers=0)
        finally:
            done.set()

    def search() -> None:
        while not done.is_set():
            hits = reader.search_vectors(query, k=4)[0]
            generations.add(reader.meta.generation())
            found = {h.path for h in hits}
            if found != expected or len(hits) != 4:
                problems.append(f"saw {sorted(found)}")

    threads = [threading.Thread(target=reindex)] + [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not problems, problems[:3]
    assert len(generations) > 3  # the readers really ran across many commits
    assert writer.stats()["generation"] == 1 + rounds * 4
    reader.close()
    writer.close()
