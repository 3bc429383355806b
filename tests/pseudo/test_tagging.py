import pytest
import torch

from vitr.errors import ConfigError
from vitr.pseudo.label import PseudoLabeler
from vitr.pseudo.prompts import category_classifier
from vitr.pseudo.tagging import ConceptTagger, aggregate, frame_probabilities, transition
from vitr.pseudo.texts import write_pseudo_texts
from vitr.pseudo.vocab import vocabulary_from_dict


def test_count_aggregation_ranks_by_votes_then_probability():
    # 4 frames, 3 concepts; concept 2 is top-1 in 3 frames, concept 0 in 1 frame with a high probability
    prob = torch.tensor([[[0.9, 0.05, 0.05], [0.2, 0.1, 0.7], [0.3, 0.1, 0.6], [0.3, 0.1, 0.6]]])
    mask = torch.ones(1, 4)
    key, score = aggregate(prob, mask, frame_top_k=1)
    assert key[0].argsort(descending=True).tolist() == [2, 0, 1]
    assert torch.allclose(score[0], torch.tensor([0.25, 0.0, 0.75]))
    mean_key, _ = aggregate(prob, mask, 1, "mean")
    assert mean_key[0].argmax() == 2
    max_key, _ = aggregate(prob, mask, 1, "max")
    assert max_key[0].argmax() == 0  # the short-lived but confident concept


def test_padded_frames_do_not_vote():
    prob = torch.tensor([[[0.1, 0.9], [0.8, 0.2], [0.8, 0.2]]])
    _, score = aggregate(prob, torch.tensor([[1.0, 0.0, 0.0]]), frame_top_k=1)
    assert score[0].tolist() == [0.0, 1.0]


def test_transition_finds_a_change_and_ignores_a_constant():
    left, right = torch.tensor([0.9, 0.1]), torch.tensor([0.1, 0.9])
    moving = torch.stack([left] * 3 + [left, right] + [right] * 3)
    assert transition(moving, torch.ones(8))[:2] == (0, 1)
    assert transition(torch.stack([left] * 8), torch.ones(8)) is None


def test_tagging_on_a_tiny_random_model_is_well_formed(tiny_backbone, tiny_vocab):
    tagger = ConceptTagger(tiny_backbone, tiny_vocab)
    frames = torch.randn(3, 6, tiny_backbone.embed_dim)
    mask = torch.ones(3, 6)
    mask[2] = 0  # a video without frames gets no concepts
    found = tagger.tag(frames, mask)
    assert len(found) == 3 and found[2].concepts == {}
    for video in found[:2]:
        assert set(video.concepts) == {"objects", "columns", "backgrounds"}
        objects = video.concepts["objects"]
        assert len(objects) == 2 and len({c.concept for c in objects}) == 2
        assert all(c.concept in tiny_vocab.category("objects").concepts for c in objects)
        assert all(0.0 <= c.score <= 1.0 and 0.0 <= c.probability <= 1.0 for c in objects)
        assert objects[0].score >= objects[1].score
        texts = write_pseudo_texts(video, tiny_vocab)
        assert {"sentence", "list", "single"} <= {t.form for t in texts}


def test_a_concept_no_frame_voted_for_is_not_listed(tiny_backbone):
    raw = {"categories": {"objects": {"concepts": ["dog", "cat", "car"], "top_k": 2, "frame_top_k": 1}}}
    frames = torch.randn(1, 1, tiny_backbone.embed_dim).expand(1, 6, -1)  # every frame the same: one vote winner
    counted = ConceptTagger(tiny_backbone, vocabulary_from_dict(raw)).tag(frames, torch.ones(1, 6))[0]
    assert len(counted.concepts["objects"]) == 1 and counted.concepts["objects"][0].score == 1.0
    mean = ConceptTagger(tiny_backbone, vocabulary_from_dict(raw), aggregation="mean").tag(frames, torch.ones(1, 6))[0]
    assert len(mean.concepts["objects"]) == 2  # mean probability ranks every concept


SUBJECT_VOCAB = {
    "categories": {
        "objects": {"concepts": ["orange circle", "blue square"], "top_k": 1, "frame_top_k": 1},
        "columns": {"concepts": ["on the left", "on the right"], "templates": ["a {subject} {}"], "subject": "objects"},
    }
}


def test_a_category_about_a_subject_is_classified_with_the_videos_top_subject(tiny_backbone):
    vocab = vocabulary_from_dict(SUBJECT_VOCAB)
    about = vocab.category("columns").about("orange circle")
    assert about.templates == ("an orange circle {}",) and about.subject is None
    frames, mask = torch.randn(6, 5, tiny_backbone.embed_dim), torch.ones(6, 5)
    found = ConceptTagger(tiny_backbone, vocab).tag(frames, mask)
    objects = vocab.category("objects")
    frame_objects = frame_probabilities(frames, category_classifier(tiny_backbone, objects)).argmax(-1)  # (6, 5)
    unseen = 0
    for i, video in enumerate(found):
        subject = video.top("objects")[0]
        seen = (frame_objects[i] == objects.concepts.index(subject)).float()[None]  # frames showing the subject
        unseen += int((seen == 0).sum())
        classifier = category_classifier(tiny_backbone, vocab.category("columns").about(subject))
        key, _ = aggregate(frame_probabilities(frames[i : i + 1], classifier), seen, frame_top_k=5)
        expected = vocab.category("columns").concepts[int(key[0].argmax())]
        assert video.top("columns") == [expected]
    assert unseen > 0  # some frames led with the other object and were left out


def test_a_subject_must_be_an_earlier_category():
    categories = SUBJECT_VOCAB["categories"]
    raw = {"categories": {"columns": categories["columns"], "objects": categories["objects"]}}
    with pytest.raises(ConfigError, match="earlier category"):
        vocabulary_from_dict(raw)


def test_a_subject_must_not_itself_be_about_a_subject():
    categories = dict(SUBJECT_VOCAB["categories"])
    rows = {"concepts": ["at the top", "at the bottom"], "templates": ["{subject} {}"], "subject": "columns"}
    categories["rows"] = rows
    with pytest.raises(ConfigError, match="itself"):
        vocabulary_from_dict({"categories": categories})


def test_the_labeller_writes_no_static_sentence_for_a_video_whose_position_changes_when_told(tiny_backbone, tiny_vocab):
    columns = category_classifier(tiny_backbone, tiny_vocab.category("columns"))  # (2, D) left, right
    moving = torch.cat([columns[0].expand(4, -1), columns[1].expand(4, -1)])[None]  # left, then right
    still = columns[0].expand(1, 8, -1)
    frames, mask = torch.cat([moving, still]), torch.ones(2, 8)
    keep, drop = (
        PseudoLabeler(tiny_backbone, tiny_vocab, changed=changed).label_features(["m", "s"], frames, mask)
        for changed in ("keep", "drop")
    )
    assert set(keep[0].transitions) == {"columns"} and not keep[1].transitions
    assert "sentence" in {t["form"] for t in keep[0].texts}
    assert "sentence" not in {t["form"] for t in drop[0].texts} and "temporal" in {t["form"] for t in drop[0].texts}
    assert drop[1].texts == keep[1].texts  # a still video is written the same either way
