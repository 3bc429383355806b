"""Caption length at evaluation: the official CLIP4Clip/CLIP2Video protocol cuts captions at 32 tokens."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch

from tests.backbones.builders import MICRO_ARCH, MICRO_CFG
from vitr.cli.eval_cmd import caption_length
from vitr.errors import ConfigError
from vitr.inference.evaluate import embed_texts
from vitr.model.factory import ModelSpec, build_model

LONG = (
    "a man in a red shirt walks down the street with his small dog while the sun sets behind the tall "
    "buildings of the old city and cars pass by slowly"
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A random micro CLIP with a 77-token context (like OpenAI's) and a meanP head."""
    config_dir = tmp_path_factory.mktemp("model_configs")
    (config_dir / f"{MICRO_ARCH}.json").write_text(json.dumps(MICRO_CFG))
    open_clip.add_model_config(config_dir)
    torch.manual_seed(0)
    return build_model(ModelSpec(backbone=MICRO_ARCH, random_init=True))


def test_max_words_embeds_the_caption_cut_as_the_official_code_cuts_it(model) -> None:  # noqa: ANN001
    full = model.tokenize([LONG])  # (1, 77)
    assert int((full != 0).sum()) > 32, "the caption must be longer than 32 tokens for this test"
    # CLIP4Clip: [start] + the first max_words - 2 word tokens + [end]
    official = torch.zeros_like(full)
    official[0, :31] = full[0, :31]
    official[0, 31] = full.max()  # the end-of-text token has the largest id
    with torch.inference_mode():
        expected = model.embed_text(official).numpy()
    cut = embed_texts(model, [LONG], max_words=32)
    uncut = embed_texts(model, [LONG])
    assert cut == pytest.approx(expected, abs=1e-5)
    assert abs(cut - uncut).max() > 1e-3  # the default (model context) really differs for a long caption


def test_short_captions_are_the_same_at_any_length(model) -> None:  # noqa: ANN001
    short = ["a dog runs on the beach"]
    assert embed_texts(model, short, max_words=32) == pytest.approx(embed_texts(model, short), abs=1e-5)


@pytest.mark.parametrize(
    ("requested", "paragraph", "expected"),
    [(None, False, 32), (None, True, 64), (0, False, None), (20, True, 20)],
)
def test_vitr_eval_defaults_to_the_official_caption_length(requested, paragraph, expected) -> None:  # noqa: ANN001
    assert caption_length(requested, paragraph) == expected


@pytest.mark.parametrize("requested", [-1, 1])
def test_vitr_eval_rejects_caption_lengths_that_cannot_hold_start_and_end(requested) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="--max-words"):
        caption_length(requested, False)
