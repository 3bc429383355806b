import torch

from tests.teachers.synthetic import make_problem
from vitr.teachers import BagOfWordsText, ProjectionTeacher, TeacherFitConfig, fit_teacher, segment_pool


def test_segment_pool_means_whole_clip_and_each_time_span_ignoring_padding():
    frames = torch.arange(6, dtype=torch.float32).view(1, 6, 1)  # values 0..5
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.float32)  # 4 real frames: 0, 1, 2, 3
    pooled = segment_pool(frames, mask, segments=2)
    assert torch.allclose(pooled, torch.tensor([[1.5, 0.5, 2.5]]))


def test_segment_pool_tells_order_apart():
    early_late = torch.tensor([[[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3])
    late_early = early_late.flip(1)
    mask = torch.ones(1, 6)
    assert torch.allclose(segment_pool(early_late, mask, 1), segment_pool(late_early, mask, 1))
    assert not torch.allclose(segment_pool(early_late, mask, 2), segment_pool(late_early, mask, 2))


def test_bag_of_words_ids_pad_and_mark_unknown_words():
    text = BagOfWordsText.from_corpus(["a red circle", "a blue star"], embed_dim=8)
    ids = text.featurize(["A RED  dragon", ""])
    assert ids.shape == (2, text.max_words)
    assert ids[0, :3].tolist() == [text.index["a"], text.index["red"], 1]
    assert ids[0, 3:].eq(0).all() and ids[1].eq(0).all()
    assert text(ids).shape == (2, 8)


def test_bag_of_words_teacher_learns_to_retrieve_far_above_chance():
    dataset, frames, mask, _ = make_problem()
    texts = [c.text for c in dataset.captions]
    teacher = ProjectionTeacher("bow", BagOfWordsText.from_corpus(texts, 32), frame_dim=16, embed_dim=32)
    video_of_caption = torch.as_tensor(dataset.caption_video_index())
    history = fit_teacher(
        teacher,
        teacher.featurize(texts),
        video_of_caption,
        frames,
        mask,
        TeacherFitConfig(epochs=80, batch_size=48, lr=5e-3),
    )
    assert history[-1] < history[0]
    scores = teacher.embed_texts(texts) @ teacher.embed_videos(frames, mask).T  # (C, V)
    recall_at_1 = (scores.argmax(dim=1) == video_of_caption).float().mean().item()
    assert recall_at_1 > 0.6  # chance: 1/48
    assert not any(p.requires_grad for p in teacher.parameters())  # frozen after training
