"""TDB token construction, TAB alignment and the CLIP2Video score decomposition (clip2video.md §3-§5)."""

import pytest
import torch

from tests.heads.fakes import DIM, make_frames, make_text
from vitr.errors import ConfigError
from vitr.heads import create_head
from vitr.heads.clip2video import temporal_alignment


def build(name, **kwargs):
    torch.manual_seed(0)
    return create_head(name, DIM, heads=2, **kwargs).eval()


def readable_embeddings(head):
    """P row i = 100 i and E rows 0 / 1 = 0.25 / 0.5 in every channel, so each token's tags can be read off."""
    with torch.no_grad():
        head.frame_position_embeddings.weight.copy_(100.0 * torch.arange(77.0)[:, None].expand(-1, DIM))
        head.type_position_embeddings.weight.copy_(torch.tensor([[0.25], [0.5]]).expand(-1, DIM))


def test_difference_tokens_interleave_frames_and_differences_with_the_official_tags():
    head = build("tdb", temporal_proj="none")
    readable_embeddings(head)
    frames = torch.arange(4.0)[None, :, None].expand(1, -1, DIM) ** 2  # v_i = i^2 in every channel
    tokens, token_mask = head.difference_tokens(frames, torch.ones(1, 4))
    # v0+P0+E1, (v1-v0)+P0+E0, v1+P1+E1, (v2-v1)+P1+E0, v2+P2+E1, (v3-v2)+P2+E0, v3+P3+E1
    expected = torch.tensor([0.5, 1.25, 101.5, 103.25, 204.5, 205.25, 309.5])
    torch.testing.assert_close(tokens[0, :, 0], expected)
    assert tokens.shape == (1, 7, DIM) and torch.equal(token_mask, torch.ones(1, 7))


def test_difference_enhancer_tags_each_difference_with_the_later_frame_position():
    head = build("tdb", difference_mask="official")
    readable_embeddings(head)
    seen = {}
    head.frame2t_attention.register_forward_hook(lambda module, args, out: seen.update(x=args[0], mask=args[1]))
    frames, mask = make_frames(2, 5)
    head.difference_tokens(frames, mask)
    later_positions = 100.0 * torch.arange(1.0, 5.0)[None, :, None]
    torch.testing.assert_close(seen["x"], frames[:, 1:] - frames[:, :-1] + later_positions)
    assert torch.equal(seen["mask"], mask[:, 1:])


@pytest.mark.parametrize(
    ("difference_mask", "expected"),
    [
        # frames 0-2 real: difference 2 (frame 3 - frame 2) is hidden only by the strict mask
        ("strict", [1, 1, 1, 1, 1, 0, 0, 0, 0]),
        ("official", [1, 1, 1, 1, 1, 1, 0, 0, 0]),
    ],
)
def test_difference_token_masks(difference_mask, expected):
    head = build("tdb", difference_mask=difference_mask)
    _, token_mask = head.difference_tokens(torch.randn(1, 5, DIM), torch.tensor([[1.0, 1, 1, 0, 0]]))
    assert token_mask[0].tolist() == expected


def test_global_transformer_runs_over_the_interleaved_tokens():
    head = build("tdb")
    seen = {}
    head.transformerClip.register_forward_hook(lambda module, args, out: seen.update(x=args[0], mask=args[1]))
    frames, mask = make_frames(3, 6)
    head.embed_video(frames, mask)
    tokens, token_mask = head.difference_tokens(frames, mask)
    assert seen["x"].shape == (3, 11, DIM)
    torch.testing.assert_close(seen["x"], tokens)
    assert torch.equal(seen["mask"], token_mask)


def test_official_difference_mask_lets_padding_leak_into_tdb_scores():
    frames, mask = make_frames(4, 6)
    repadded = torch.where(mask[..., None].bool(), frames, torch.randn_like(frames) * 3)
    for difference_mask, leaks in (("official", True), ("strict", False)):
        head = build("tdb", difference_mask=difference_mask)
        with torch.no_grad():
            before, after = head.embed_video(frames, mask), head.embed_video(repadded, mask)
        assert (not torch.allclose(before, after, atol=1e-5)) == leaks


def test_clip2video_repeat_tiling_makes_a_video_depend_on_its_batch_mates():
    frames, mask = make_frames(4, 6)
    head = build("clip2video", mask_tiling="clip2video_repeat")
    with torch.no_grad():
        together = head.embed_video(frames, mask)
        alone = torch.cat([head.embed_video(frames[b : b + 1], mask[b : b + 1]) for b in range(4)])
    assert not torch.allclose(together, alone, atol=1e-4)


def spec_alignment(tokens, mask, weight_center, emb_center):
    """align(X, M) exactly as written in clip2video.md §4, with the (B, N, K, D) residual tensor."""
    assign = torch.softmax(tokens @ weight_center.T, dim=-1)
    residuals = assign[..., None] * (tokens[:, :, None, :] - emb_center)
    summed = (residuals * mask[:, :, None, None]).sum(1)
    per_centre = torch.nn.functional.normalize(summed, dim=-1)
    return torch.nn.functional.normalize(per_centre.mean(1), dim=-1)


def test_temporal_alignment_matches_the_spec_formula():
    gen = torch.Generator().manual_seed(0)
    tokens, weight_center, emb_center = (torch.randn(s, generator=gen) for s in [(3, 9, DIM), (5, DIM), (5, DIM)])
    mask = (torch.rand(3, 9, generator=gen) > 0.4).float()
    torch.testing.assert_close(
        temporal_alignment(tokens, mask, weight_center, emb_center),
        spec_alignment(tokens, mask, weight_center, emb_center),
    )


def test_tab_video_tokens_are_the_raw_frames_plus_the_enhanced_stride_two_frames():
    head = build("clip2video")
    frames, mask = make_frames(3, 7)
    with torch.no_grad():
        strided, strided_mask = frames[:, 0::2], mask[:, 0::2]
        motion = head.difference_enhanced_frames(strided, strided_mask, head.actionClip)
        expected = spec_alignment(
            torch.cat([frames, motion], 1), torch.cat([mask, strided_mask], 1), head.weight_center, head.emb_center
        )
        torch.testing.assert_close(head.aligned_video(frames, mask), expected)


def test_tab_text_uses_words_and_end_of_text_but_not_start_of_text():
    head = build("clip2video")
    text = make_text(3)
    base = head.aligned_text(text)
    changed_start = text.tokens.clone()
    changed_start[:, 0] += 5
    same = type(text)(text.pooled, changed_start, text.mask)
    torch.testing.assert_close(head.aligned_text(same), base)
    expected = spec_alignment(text.tokens, text.mask * (torch.arange(8) > 0), head.weight_center, head.emb_center)
    torch.testing.assert_close(base, expected)


@pytest.mark.parametrize("center_weight", [0.5, 0.3])
def test_clip2video_dot_product_is_the_weighted_sum_of_its_terms(center_weight):
    head = build("clip2video", center_weight=center_weight)
    frames, mask = make_frames(5, 6)
    text = make_text(4)
    with torch.no_grad():
        text_emb, video_emb = head.embed_text(text), head.embed_video(frames, mask)
        terms = head.score_terms(text_emb, video_emb)
        assert set(terms) == {"global", "tab"}
        assert terms["global"][0] == pytest.approx(1 - center_weight)
        assert terms["tab"][0] == pytest.approx(center_weight)
        weighted = sum(weight * cosines for weight, cosines in terms.values())
        torch.testing.assert_close(head.similarity(text_emb, video_emb), weighted)
        global_cos = torch.nn.functional.normalize(text.pooled, dim=-1) @ head.global_video(frames, mask).T
        tab_cos = head.aligned_text(text) @ head.aligned_video(frames, mask).T
        torch.testing.assert_close(terms["global"][1], global_cos)
        torch.testing.assert_close(terms["tab"][1], tab_cos)


def test_clip2video_global_term_is_the_tdb_head():
    head, tdb = build("clip2video"), build("tdb")
    tdb.load_state_dict({k: v for k, v in head.state_dict().items() if k in tdb.state_dict()})
    frames, mask = make_frames(3, 6)
    with torch.no_grad():
        torch.testing.assert_close(head.global_video(frames, mask), tdb.embed_video(frames, mask))


def test_tab_head_with_a_mean_pool_global_branch():
    head = build("tab", global_branch="meanP")
    assert not any(name.startswith("transformerClip") for name, _ in head.named_parameters())
    frames, mask = make_frames(3, 6)
    with torch.no_grad():
        meanp = create_head("meanP", DIM).embed_video(frames, mask)
        torch.testing.assert_close(head.embed_video(frames, mask)[:, :DIM], 0.5**0.5 * meanp)


def test_official_state_dict_names():
    names = {key.split(".")[0] for key in build("clip2video").state_dict()}
    assert names == {
        "frame_position_embeddings", "type_position_embeddings", "frame2t_attention", "trans_layernorm",
        "transformerClip", "actionClip", "weight_center", "emb_center",
    }  # fmt: skip
    assert build("clip2video").weight_center.shape == (5, DIM)
    assert "frame2t_projection" in build("tdb", temporal_proj="sigmoid_mlp").state_dict()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"center_weight": 1.0}, "center_weight"),
        ({"center_k": 0}, "center_k"),
        ({"difference_mask": "loose"}, "difference_mask"),
        ({"temporal_proj": "mlp"}, "temporal_proj"),
        ({"mask_tiling": "repeat"}, "mask_tiling"),
    ],
)
def test_invalid_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build("clip2video", **kwargs)


@pytest.mark.parametrize("temporal_proj", ["sigmoid_mlp", "none"])
def test_other_difference_projections_train_every_parameter(temporal_proj):
    head = build("clip2video", temporal_proj=temporal_proj).train()
    frames, mask = make_frames(3, 5)
    (head.embed_text(make_text(3)) @ head.embed_video(frames, mask).T).diagonal().sum().backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_tab_head_global_term_is_the_seq_transf_head():
    head, seq = build("tab"), build("seqTransf")
    seq.load_state_dict({k: v for k, v in head.state_dict().items() if k in seq.state_dict()})
    frames, mask = make_frames(3, 6)
    with torch.no_grad():
        torch.testing.assert_close(head.global_video(frames, mask), seq.embed_video(frames, mask))
