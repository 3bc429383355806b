from collections.abc import Sequence

import pytest
import torch
from torch import nn

from tests.teachers.synthetic import make_problem
from vitr.backbones.base import Backbone, TextFeatures
from vitr.errors import CheckpointError
from vitr.files import save_safetensors
from vitr.heads.base import create_head
from vitr.model.retrieval import VideoTextModel
from vitr.teachers import (
    BagOfWordsText,
    ModelTeacher,
    ProjectionTeacher,
    Teacher,
    TeacherBank,
    build_teacher_bank,
    content_key,
)

DIM = 16


class WordBackbone(Backbone):
    """A stand-in text tower: hashed word ids -> embeddings; enough to build a real `VideoTextModel`."""

    embed_dim, image_size, context_length = DIM, 8, 8
    image_mean = image_std = (0.5, 0.5, 0.5)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.words = nn.Embedding(97, DIM)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)[:, :DIM]

    def encode_text(self, tokens: torch.Tensor) -> TextFeatures:
        mask = (tokens > 0).float()
        states = self.words(tokens)  # (B, L, D)
        return TextFeatures((states * mask.unsqueeze(-1)).sum(1), states, mask)

    def tokenize(self, texts: Sequence[str], context_length: int | None = None) -> torch.Tensor:
        ids = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            words = [sum(map(ord, w)) % 96 + 1 for w in text.split()][: self.context_length]
            ids[row, : len(words)] = torch.tensor(words)
        return ids

    def fingerprint(self) -> str:
        return "word-backbone"

    def visual_fingerprint(self) -> str:
        return "word-backbone-visual"


def teachers() -> list[Teacher]:
    dataset, *_ = make_problem()
    model = VideoTextModel(WordBackbone(), create_head("meanP", DIM, num_frames=4))
    bow = BagOfWordsText.from_corpus([c.text for c in dataset.captions], 8)
    return [ModelTeacher(model, "clip"), ProjectionTeacher("bow", bow, frame_dim=DIM, embed_dim=8).eval()]


def test_model_teacher_scores_are_the_models_cosines():
    teacher = teachers()[0]
    dataset, frames, mask, _ = make_problem()
    texts = [c.text for c in dataset.captions[:5]]
    text, video = teacher.embed_texts(texts), teacher.embed_videos(frames[:3], mask[:3])
    assert text.shape == (5, DIM) and video.shape == (3, DIM)
    assert torch.allclose(text.norm(dim=1), torch.ones(5), atol=1e-5)
    model = teacher.model
    raw = (
        nn.functional.normalize(model.embed_texts(texts), dim=-1)
        @ nn.functional.normalize(model.embed_video_features(frames[:3], mask[:3]), dim=-1).T
    )
    assert torch.allclose(text @ video.T, raw, atol=1e-5)
    assert teacher.temperature_scale() == pytest.approx(torch.tensor(2.0).exp().item())
    assert not any(p.requires_grad for p in model.parameters())


def test_bank_matrices_are_aligned_with_the_batch():
    dataset, frames, mask, _ = make_problem()
    texts = [c.text for c in dataset.captions]
    ids = [v.video_id for v in dataset.videos]
    team = teachers()
    bank = build_teacher_bank(team, texts, frames, mask, ids, batch_size=7)  # batches that do not divide C or V
    assert bank.names == ["clip", "bow"] and (bank.num_captions, bank.num_videos) == (len(texts), len(ids))
    captions, videos = torch.tensor([5, 0, 17]), torch.tensor([2, 9, 5])
    for teacher, scores in zip(team, bank.matrices(captions, videos), strict=True):
        assert scores.shape == (3, 3)
        expected = (
            teacher.embed_texts([texts[i] for i in captions]) @ teacher.embed_videos(frames[videos], mask[videos]).T
        )
        assert torch.allclose(scores, expected, atol=1e-5)
    logits = bank.matrices(captions, videos, logits=True)
    assert torch.allclose(logits[0], bank.matrices(captions, videos)[0] * team[0].temperature_scale())
    full = bank.scores_against_all(captions)[1]  # (3, V)
    assert torch.allclose(full[:, videos], bank.matrices(captions, videos)[1])


def test_bank_round_trips_and_refuses_other_data(tmp_path):
    dataset, frames, mask, _ = make_problem(num_videos=6)
    texts, ids = [c.text for c in dataset.captions], [v.video_id for v in dataset.videos]
    bank = build_teacher_bank(teachers(), texts, frames, mask, ids)
    bank.save(tmp_path / "bank.safetensors")
    loaded = TeacherBank.load(tmp_path / "bank.safetensors", expected_key=content_key(texts, ids))
    assert loaded.names == bank.names and loaded.scales == pytest.approx(bank.scales)
    assert all(torch.equal(a, b) for a, b in zip(loaded.text + loaded.video, bank.text + bank.video, strict=True))
    with pytest.raises(CheckpointError, match="other captions"):
        TeacherBank.load(tmp_path / "bank.safetensors", expected_key=content_key(texts[1:], ids))


def _one_line_naming(error: pytest.ExceptionInfo, path) -> None:
    message = str(error.value)
    assert str(path) in message and "\n" not in message, message


def test_a_damaged_or_mismatched_bank_is_one_line_naming_the_file(tmp_path):
    dataset, frames, mask, _ = make_problem(num_videos=6)
    texts, ids = [c.text for c in dataset.captions], [v.video_id for v in dataset.videos]
    bank = build_teacher_bank(teachers(), texts, frames, mask, ids, caption_ids=dataset.caption_ids())
    good = tmp_path / "bank.safetensors"
    bank.save(good)
    assert [p.name for p in tmp_path.iterdir()] == ["bank.safetensors"]  # written whole, no temporary left

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a bank")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    one_teacher_short = tmp_path / "short.safetensors"
    save_safetensors(one_teacher_short, {"0.text": bank.text[0], "0.video": bank.video[0]},
                     metadata={"names": '["clip", "bow"]', "scales": "[1.0, 1.0]", "key": bank.key})
    fewer_ids = tmp_path / "ids.safetensors"
    save_safetensors(fewer_ids, {f"{i}.{side}": t for i, (a, b) in enumerate(zip(bank.text, bank.video, strict=True))
                                 for side, t in (("text", a), ("video", b))},
                     metadata={"names": '["clip", "bow"]', "scales": "[1.0, 1.0]", "key": bank.key,
                               "caption_ids": '["only-one"]'})
    for path, reason in ((junk, "cannot read"), (truncated, "cannot read"), (one_teacher_short, "not a vitr teacher"),
                         (fewer_ids, "inconsistent")):
        with pytest.raises(CheckpointError, match=reason) as error:
            TeacherBank.load(path)
        _one_line_naming(error, path)
