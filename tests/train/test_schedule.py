"""Learning-rate factors at the boundaries that decide a run."""

import math

import pytest

from vitr.errors import ConfigError
from vitr.train.schedule import lr_factor


def test_warmup_cosine_boundaries():
    total, warmup = 100, 0.1  # 10 warm-up steps
    assert lr_factor("warmup_cosine", 0, total, warmup) == pytest.approx(0.1)
    assert lr_factor("warmup_cosine", 9, total, warmup) == pytest.approx(1.0)
    assert lr_factor("warmup_cosine", 10, total, warmup) == pytest.approx(1.0)
    assert lr_factor("warmup_cosine", 55, total, warmup) == pytest.approx(0.5)
    assert 0 < lr_factor("warmup_cosine", 99, total, warmup) < 1e-3
    assert lr_factor("warmup_cosine", 0, total, 0.0) == pytest.approx(1.0)


def test_c4c_warmup_cosine_matches_official_quirks():
    total = 100
    assert lr_factor("c4c_warmup_cosine", 0, total, 0.1) == 0.0  # the first update has lr 0
    assert lr_factor("c4c_warmup_cosine", 5, total, 0.1) == pytest.approx(0.5)
    assert lr_factor("c4c_warmup_cosine", 9, total, 0.1) == pytest.approx(0.9)
    # the cosine spans the whole run, so the factor drops to 0.976 right after warm-up
    assert lr_factor("c4c_warmup_cosine", 10, total, 0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.1)))
    assert lr_factor("c4c_warmup_cosine", 50, total, 0.1) == pytest.approx(0.5)
    assert lr_factor("c4c_warmup_cosine", 99, total, 0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.99)))


def test_constant_after_warmup_and_errors():
    assert lr_factor("constant", 1, 10, 0.2) == pytest.approx(1.0)
    assert lr_factor("constant", 0, 10, 0.2) == pytest.approx(0.5)
    assert lr_factor("constant", 9, 10, 0.2) == 1.0
    with pytest.raises(ConfigError, match="unknown schedule"):
        lr_factor("linear", 0, 10, 0.1)
    with pytest.raises(ConfigError, match="at least one step"):
        lr_factor("constant", 0, 0, 0.1)
