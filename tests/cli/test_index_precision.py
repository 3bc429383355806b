"""`vitr index` runs the fast path by default, and never changes the precision of an index that exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.video.clips import write_indexed_video
from vitr.cli.main import main
from vitr.precision import resolve_precision


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    for name in ("a", "b"):
        write_indexed_video(root / f"{name}.mp4", 16, 8.0)
    return root


def index_precision(index: Path) -> str:
    return json.loads((index / "index.json").read_text())["model"]["precision"]


def test_a_new_index_uses_the_fast_paths_precision(folder: Path, tmp_path: Path) -> None:
    index = tmp_path / "idx"
    assert (
        main(
            ["index", str(folder), "--index", str(index), "--model", "vitr-lab-tiny", "--random-init", "--workers", "1"]
        )
        == 0
    )
    assert index_precision(index) == resolve_precision("auto", "cpu")


def test_an_existing_fp32_index_stays_fp32_when_updated_with_the_default(folder: Path, tmp_path: Path) -> None:
    index = tmp_path / "idx32"
    args = ["index", str(folder), "--index", str(index), "--model", "vitr-lab-tiny", "--random-init", "--workers", "1"]
    assert main([*args, "--precision", "fp32"]) == 0
    (folder / "c.mp4").write_bytes((folder / "a.mp4").read_bytes())  # something new to index
    try:
        assert main(args) == 0  # default precision auto: keeps the index's fp32, no "different model" error
    finally:
        (folder / "c.mp4").unlink()
    assert index_precision(index) == "fp32"
    assert json.loads((index / "index.json").read_text())["model"]["backbone"] == "vitr-lab-tiny"
