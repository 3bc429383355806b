"""Indexes that travel: model paths are stored relative to the index (or absolute), so an index works from
any working directory and after moving together with its model; random weights are an explicit choice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.index.videos import TINY_MODEL, write_shape_video
from vitr.backbones import load_backbone, save_backbone
from vitr.cli.main import main
from vitr.errors import CheckpointError, IndexStoreError
from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex
from vitr.model.factory import ModelSpec


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/lab/{clip, videos, index}: an index built from inside tmp with the relative model path lab/clip."""
    save_backbone(load_backbone("vitr-lab-tiny", random_init=True), tmp_path / "lab" / "clip")
    for colour in ("red", "green", "blue"):
        write_shape_video(tmp_path / "lab" / "videos" / f"{colour}.mp4", colour)
    monkeypatch.chdir(tmp_path)
    spec = ModelSpec(backbone="lab/clip", head="meanP", num_frames=4)
    index = VideoIndex.create(Path("lab/index"), spec)
    update_index(index, Path("lab/videos"), progress=False)
    index.close()
    return tmp_path / "lab"


def test_an_index_and_its_model_move_together_and_search_from_anywhere(lab, tmp_path, monkeypatch, capsys):
    assert json.loads((lab / "index" / "index.json").read_text())["model"]["backbone"] == "../clip"
    assert main(["search", "a red square", "--index", "lab/index", "--json", "-k", "3"]) == 0
    before = json.loads(capsys.readouterr().out)

    moved = tmp_path / "elsewhere" / "lab-copy"
    shutil.move(lab, moved)
    third = tmp_path / "third"
    third.mkdir()
    monkeypatch.chdir(third)
    assert main(["search", "a red square", "--index", str(moved / "index"), "--json", "-k", "3"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert [Path(h["path"]).name for h in after] == [Path(h["path"]).name for h in before]
    assert [h["score"] for h in after] == pytest.approx([h["score"] for h in before], abs=1e-5)


def test_an_index_whose_model_was_left_behind_says_where_it_looked(lab, tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere" / "index"
    shutil.move(lab / "index", moved)
    monkeypatch.chdir(tmp_path / "elsewhere")
    index = VideoIndex(moved)
    with pytest.raises(
        IndexStoreError, match=f"names the model backbone '../clip'.*looked for '{tmp_path}/elsewhere/clip'"
    ):
        index.search_text("a red square")


def test_random_weights_are_refused_unless_asked_for_and_recorded(tmp_path, capsys):
    write_shape_video(tmp_path / "videos" / "red.mp4", "red")
    plain = ["index", str(tmp_path / "videos"), "--model", "vitr-lab-tiny", "--frames", "4", "--workers", "0"]
    assert main([*plain, "--index", str(tmp_path / "refused")]) == 2
    error = capsys.readouterr().err
    *usage, last = error.splitlines()
    assert " ".join(usage).startswith("usage: vitr index") and "Traceback" not in error
    assert last.startswith("vitr index: error:") and "--random-init" in last
    assert not (tmp_path / "refused").exists()  # nothing half-made to trip the next run

    assert main([*plain, "--index", str(tmp_path / "random"), "--random-init"]) == 0
    assert json.loads((tmp_path / "random" / "index.json").read_text())["model"]["random_init"] is True
    assert main([*plain, "--index", str(tmp_path / "random"), "--random-init", "--weights", "w.safetensors"]) == 2
    assert "contradicts" in capsys.readouterr().err


def test_random_weights_are_the_same_in_every_build(tmp_path):
    """An index updated by two runs must not mix two random models."""
    first = VideoIndex.create(tmp_path / "a", TINY_MODEL)
    second = VideoIndex.create(tmp_path / "b", TINY_MODEL)
    assert (first.embed_texts(["a red square"]) == second.embed_texts(["a red square"])).all()
    with pytest.raises(CheckpointError, match="no weights"):
        VideoIndex.create(tmp_path / "c", ModelSpec(backbone="vitr-lab-tiny", num_frames=4))


def test_an_index_built_with_silent_random_weights_says_to_rebuild(tmp_path):
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    index.close()
    config = json.loads((tmp_path / "index" / "index.json").read_text())
    del config["model"]["random_init"]  # as written before random weights had to be asked for
    (tmp_path / "index" / "index.json").write_text(json.dumps(config))
    with pytest.raises(IndexStoreError, match="built with random weights, so its vectors are noise; rebuild"):
        VideoIndex(tmp_path / "index").search_text("a red square")
