"""Text tracks in the index: subtitle sidecars found by their words with the cue's timestamps, fused with the visual
ranking, re-read only when they change, and a broken one reported without stopping the run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.index.videos import TINY_MODEL, write_shape_video
from vitr.cli.main import main
from vitr.index.hybrid import default_mode, search
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex

MODEL_ARGS = ["--model", "vitr-lab-tiny", "--random-init", "--frames", "4", "--workers", "0"]


def srt(*cues: tuple[float, float, str]) -> str:
    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"00:{ms // 60000:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "".join(f"{i}\n{stamp(s)} --> {stamp(e)}\n{text}\n\n" for i, (s, e, text) in enumerate(cues, 1))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Four shape videos; two say things (in sidecars) that no frame shows, one sidecar is not UTF-8."""
    root = tmp_path / "videos"
    for colour in ("red", "green", "blue", "yellow"):
        write_shape_video(root / f"{colour}.mp4", [colour, colour], seconds_each=1.0)
    (root / "green.en.srt").write_text(srt((0.0, 0.8, "welcome aboard"), (1.2, 1.9, "the lighthouse keeper sings")))
    (root / "blue.vtt").write_text("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nan orchestra of kettles\n")
    (root / "yellow.srt").write_bytes(srt((0.0, 1.0, "caf\u00e9 au lait")).encode("latin-1"))
    return root


def test_text_and_hybrid_search_find_the_spoken_words_at_the_cue(folder: Path, tmp_path: Path, capsys) -> None:
    index_dir = tmp_path / "index"
    assert main(["index", str(folder), "--index", str(index_dir), *MODEL_ARGS]) == 0
    out = capsys.readouterr().out
    assert "added 4" in out and f"subtitles not used from {folder / 'yellow.srt'}: not UTF-8 text" in out
    assert json.loads((index_dir / "index.json").read_text())["text"] == ["subtitles"]

    for mode in ("text", "hybrid"):
        assert main(["search", "lighthouse keeper", "--index", str(index_dir), "--mode", mode, "--json"]) == 0
        hits = json.loads(capsys.readouterr().out)
        assert Path(hits[0]["path"]).name == "green.mp4"
        assert (hits[0]["start"], hits[0]["end"]) == (1.2, 1.9)  # the cue, not the whole video
        said = hits[0]["evidence"][0]
        assert said["source"] == "subtitles" and said["language"] == "en"
        assert said["snippet"] == "the lighthouse keeper sings"
        assert [said["snippet"][a:b] for a, b in said["highlights"]] == ["lighthouse", "keeper"]
        assert "subtitles" in hits[0]["sources"]
    assert "visual" in hits[0]["sources"] and len(hits) == 4  # hybrid keeps the visually ranked rest
    assert main(["search", "lighthouse", "--index", str(index_dir), "--mode", "text", "--json"]) == 0
    assert [Path(h["path"]).name for h in json.loads(capsys.readouterr().out)] == ["green.mp4"]

    assert main(["search", "kettles orchestra", "--index", str(index_dir)]) == 0  # hybrid: the default here
    table = capsys.readouterr().out
    assert "blue.mp4" in table and "0.5 s  an orchestra of kettles" in table and "subtitles" in table

    index = VideoIndex(index_dir)
    assert default_mode(index) == "hybrid"
    weighted = search(index, "kettles", k=4, mode="hybrid", fusion="weighted", text_weight=0.9)
    assert Path(weighted[0].path).name == "blue.mp4" and (weighted[0].start, weighted[0].end) == (0.5, 1.5)
    index.close()


def test_sidecar_changes_reindex_only_that_videos_text(folder: Path, tmp_path: Path) -> None:
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    first = update_index(index, folder, progress=False, workers=0)
    assert first.added == 4 and first.text_read == 4
    assert list(first.text_failed) == [str(folder / "yellow.srt")]
    generation = index.meta.generation()

    again = update_index(index, folder, progress=False, workers=0)  # nothing changed: nothing is done
    assert (again.added, again.updated, again.text_read, again.unchanged) == (0, 0, 0, 4)
    assert list(again.text_failed) == [str(folder / "yellow.srt")]  # still reported, not retried
    assert index.meta.generation() == generation

    green = folder / "green.en.srt"
    green.write_text(srt((3.0, 3.5, "the ferry horn")))
    os.utime(green, ns=(green.stat().st_atime_ns, green.stat().st_mtime_ns + 10**9))
    (folder / "yellow.srt").write_text(srt((0.25, 0.75, "cafe au lait")), encoding="utf-8")  # fixed
    (folder / "red.srt").write_text(srt((0.0, 1.0, "a new red caption")))  # a sidecar appears
    changed = update_index(index, folder, progress=False, workers=0)
    assert (changed.added, changed.updated, changed.unchanged, changed.text_read) == (0, 0, 4, 3)
    assert changed.text_failed == {}
    assert search(index, "lighthouse", mode="text") == []
    ferry = search(index, "ferry", mode="text")
    assert [Path(h.path).name for h in ferry] == ["green.mp4"] and (ferry[0].start, ferry[0].end) == (3.0, 3.5)
    assert [Path(h.path).name for h in search(index, "lait", mode="text")] == ["yellow.mp4"]

    (folder / "blue.vtt").unlink()  # a removed sidecar takes its spans away
    (folder / "red.mp4").unlink()  # a removed video takes its spans away
    gone = update_index(index, folder, progress=False, workers=0)
    assert gone.removed == 1 and gone.text_read == 1
    assert search(index, "kettles", mode="text") == [] and search(index, "caption", mode="text") == []
    assert index.meta.db.execute("SELECT COUNT(*) FROM text_fts WHERE text_fts MATCH 'caption'").fetchone()[0] == 0
    index.close()


def test_text_sources_none_drops_the_spans_and_search_falls_back_to_visual(folder: Path, tmp_path: Path) -> None:
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, folder, progress=False, workers=0)
    assert index.stats()["text_spans"] == 3
    report = update_index(index, folder, progress=False, workers=0, text_sources=())
    assert report.text_read == 4 and index.stats()["text_spans"] == 0  # every video's subtitle track dropped
    assert json.loads((index.dir / "index.json").read_text())["text"] == []
    assert default_mode(index) == "visual"
    hits = search(index, "a red square", k=2)
    assert len(hits) == 2 and all(h.sources == ("visual",) for h in hits)
    index.close()


def test_search_rejects_text_modes_for_a_video_query(folder: Path, tmp_path: Path, capsys) -> None:
    assert main(["index", str(folder), "--index", str(tmp_path / "i"), "--text", "braille", *MODEL_ARGS]) == 2
    assert "--text: unknown text source 'braille'" in capsys.readouterr().err
    assert main(["search", "--video", str(folder / "red.mp4"), "--index", str(tmp_path / "i"), "--mode", "text"]) == 2
    assert "a --video query is visual only" in capsys.readouterr().err


def test_merged_shards_keep_their_text(folder: Path, tmp_path: Path) -> None:
    from vitr.index.shards import merge_indexes

    shards = []
    for rank in range(2):
        shard = VideoIndex.create(tmp_path / f"shard-{rank}", TINY_MODEL)
        update_index(shard, folder, progress=False, workers=0, shard=(rank, 2))
        shards.append(shard.dir)
        shard.close()
    merged = merge_indexes(tmp_path / "merged", shards)
    assert merged.stats()["videos"] == 4 and merged.stats()["text_spans"] == 3
    assert [Path(h.path).name for h in search(merged, "lighthouse", mode="text")] == ["green.mp4"]
    rerun = update_index(merged, folder, progress=False, workers=0)  # sidecar states came along: nothing to re-read
    assert (rerun.text_read, list(rerun.text_failed)) == (0, [str(folder / "yellow.srt")])
    merged.close()


def test_a_video_found_by_its_words_keeps_its_visual_score_outside_the_visual_candidates(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vitr.index import hybrid

    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, folder, progress=False, workers=0)
    query = index.embed_texts(["lighthouse keeper"])[0]
    visual = index.search_vectors(query[None], k=4)[0]
    assert Path(visual[0].path).name != "green.mp4"  # else this test would not leave it out of the candidates
    monkeypatch.setattr(hybrid, "_CANDIDATES", 1)
    hits = search(index, "lighthouse keeper", k=1, mode="hybrid")  # one visual candidate, not green.mp4
    seen = next(e for e in hits[0].evidence if e.source == "visual")
    green = next(h for h in visual if Path(h.path).name == "green.mp4")
    assert Path(hits[0].path).name == "green.mp4" and seen.score == pytest.approx(green.score)
    index.close()
