from __future__ import annotations

from pathlib import Path

import pytest

from vitr.cli.main import main


@pytest.fixture(scope="session")
def tiny_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The main job at the tiny scale (`vitr quickstart --scale tiny`, few pretraining steps), built once per session
    as DIR/lab, where DIR is a fresh folder outside the checkout."""
    out = tmp_path_factory.mktemp("tiny-lab") / "lab"
    assert main(["quickstart", "--out", str(out), "--scale", "tiny", "--steps", "4", "--workers", "1"]) == 0
    return out
