import math

import pytest
import torch

from vitr.heads import create_head
from vitr.losses import (
    infonce_with_hard_negatives,
    multi_positive_infonce,
    per_pair_infonce,
    retrieval_loss,
    symmetric_infonce,
)


def hand_symmetric(s):
    """symCE of a 2x2 matrix written out term by term."""
    (a, b), (c, d) = s
    rows = -math.log(math.exp(a) / (math.exp(a) + math.exp(b))) - math.log(math.exp(d) / (math.exp(c) + math.exp(d)))
    cols = -math.log(math.exp(a) / (math.exp(a) + math.exp(c))) - math.log(math.exp(d) / (math.exp(b) + math.exp(d)))
    return (rows / 2 + cols / 2) / 2


def test_symmetric_infonce_matches_a_hand_computation():
    s = [[2.0, 0.5], [-1.0, 1.5]]
    assert symmetric_infonce(torch.tensor(s)).item() == pytest.approx(hand_symmetric(s), rel=1e-6)


def test_per_pair_loss_averages_both_directions_and_its_mean_is_the_symmetric_loss():
    s = torch.tensor([[2.0, 0.5], [-1.0, 1.5]])
    pair0 = (
        -math.log(math.exp(2) / (math.exp(2) + math.exp(0.5))) - math.log(math.exp(2) / (math.exp(2) + math.exp(-1)))
    ) / 2
    per_pair = per_pair_infonce(s)
    assert per_pair.shape == (2,) and per_pair[0].item() == pytest.approx(pair0, rel=1e-6)
    logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(per_pair_infonce(logits).mean(), symmetric_infonce(logits))


def test_infonce_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        symmetric_infonce(torch.zeros(3, 4))


def test_multi_positive_with_one_positive_per_row_is_the_symmetric_loss():
    logits = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(multi_positive_infonce(logits, torch.eye(5)), symmetric_infonce(logits))


def test_multi_positive_matches_a_hand_computation_and_skips_rows_without_positives():
    logits = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]], requires_grad=True)  # 2 texts x 3 videos
    positives = torch.tensor([[1, 1, 0], [0, 0, 1]])
    e = [[math.exp(x) for x in row] for row in logits.tolist()]
    rows = -math.log((e[0][0] + e[0][1]) / sum(e[0])) - math.log(e[1][2] / sum(e[1]))
    cols = -math.log(e[0][0] / (e[0][0] + e[1][0])) - math.log(e[0][1] / (e[0][1] + e[1][1]))
    cols -= math.log(e[1][2] / (e[0][2] + e[1][2]))
    loss = multi_positive_infonce(logits, positives)
    assert loss.item() == pytest.approx((rows / 2 + cols / 3) / 2, rel=1e-6)
    partial = torch.tensor([[1, 0, 0], [0, 0, 0]])  # second text and two videos have no positive
    multi_positive_infonce(logits, partial).backward()
    assert torch.isfinite(logits.grad).all()


def test_multi_positive_needs_at_least_one_positive():
    with pytest.raises(ValueError, match="no positive"):
        multi_positive_infonce(torch.zeros(2, 2), torch.zeros(2, 2))


def test_retrieval_loss_of_a_single_term_head_is_scaled_symmetric_infonce():
    torch.manual_seed(0)
    head = create_head("meanP", 8)
    text_emb, video_emb = torch.randn(4, 8), torch.randn(4, 8)
    logit_scale = torch.tensor(math.log(100.0), requires_grad=True)
    loss = retrieval_loss(head, text_emb, video_emb, logit_scale)
    torch.testing.assert_close(loss, symmetric_infonce(100.0 * text_emb @ video_emb.T))
    loss.backward()
    assert logit_scale.grad is not None and logit_scale.grad != 0


def test_retrieval_loss_of_clip2video_weights_each_term_separately():
    torch.manual_seed(0)
    head = create_head("clip2video", 8, heads=2, center_weight=0.3)
    text_emb = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    video_emb = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    terms = head.score_terms(text_emb, video_emb)
    expected = 0.7 * symmetric_infonce(20.0 * terms["global"][1]) + 0.3 * symmetric_infonce(20.0 * terms["tab"][1])
    torch.testing.assert_close(retrieval_loss(head, text_emb, video_emb, torch.tensor(math.log(20.0))), expected)
    # separate terms are not the same loss as one InfoNCE over the summed score
    assert not torch.isclose(expected, symmetric_infonce(20.0 * head.similarity(text_emb, video_emb)))


def test_hard_negatives_join_only_the_image_to_text_softmax():
    s = torch.tensor([[2.0, 0.5], [-1.0, 1.5]])  # rows: images, columns: their captions
    negatives = torch.tensor([[1.0], [0.0]])  # one negative caption per image
    (a, b), (c, d) = s.tolist()
    e, f = negatives[:, 0].tolist()
    image_to_text = -math.log(math.exp(a) / (math.exp(a) + math.exp(b) + math.exp(e))) - math.log(
        math.exp(d) / (math.exp(c) + math.exp(d) + math.exp(f))
    )
    text_to_image = -math.log(math.exp(a) / (math.exp(a) + math.exp(c))) - math.log(
        math.exp(d) / (math.exp(b) + math.exp(d))
    )
    expected = (image_to_text / 2 + text_to_image / 2) / 2
    assert infonce_with_hard_negatives(s, negatives).item() == pytest.approx(expected, rel=1e-6)
    assert infonce_with_hard_negatives(s, torch.empty(2, 0)).item() == pytest.approx(hand_symmetric(s.tolist()))


def test_a_negative_that_outscores_the_true_caption_raises_the_loss():
    s = torch.eye(3) * 2
    easy, hard = torch.full((3, 3), -1.0), torch.full((3, 3), -1.0)
    hard[0, 0] = 3.0
    assert infonce_with_hard_negatives(s, hard) > infonce_with_hard_negatives(s, easy)
    with pytest.raises(ValueError, match="negative_logits"):
        infonce_with_hard_negatives(s, torch.zeros(2, 1))
