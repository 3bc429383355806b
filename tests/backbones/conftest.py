"""Fixtures: the micro architecture registered with open_clip under a name, and fresh copies of its config."""

from __future__ import annotations

import json
from copy import deepcopy

import open_clip
import pytest

from tests.backbones.builders import MICRO_ARCH, MICRO_CFG


@pytest.fixture(scope="session")
def micro_arch(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A registered open_clip architecture name for the micro config (width 64, 2 layers, 32 px)."""
    config_dir = tmp_path_factory.mktemp("model_configs")
    (config_dir / f"{MICRO_ARCH}.json").write_text(json.dumps(MICRO_CFG))
    open_clip.add_model_config(config_dir)
    return MICRO_ARCH


@pytest.fixture
def micro_cfg() -> dict:
    return deepcopy(MICRO_CFG)
