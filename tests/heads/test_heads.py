"""Properties every head promises: shapes, dot-product scores, padding invariance, batch independence, gradients."""

import pytest
import torch

from tests.heads.fakes import DIM, make_frames, make_text
from vitr.errors import CheckpointError, ConfigError
from vitr.heads import available_heads, create_head
from vitr.losses import retrieval_loss

ALL_HEADS = ["meanP", "seqTransf", "tdb", "tab", "clip2video"]
TWO_TERM_HEADS = {"tab", "clip2video"}


def build(name, **kwargs):
    torch.manual_seed(0)
    kwargs = {} if name == "meanP" else {"heads": 2, **kwargs}
    return create_head(name, DIM, **kwargs).eval()


def test_every_head_is_registered():
    assert set(ALL_HEADS) <= set(available_heads())


@pytest.mark.parametrize("name", ALL_HEADS)
@pytest.mark.parametrize("num_frames", [2, 3, 6, 7])
def test_shapes_for_odd_and_even_frame_counts(name, num_frames):
    head = build(name)
    frames, mask = make_frames(5, num_frames)
    video, text = head.embed_video(frames, mask), head.embed_text(make_text(3))
    width = 2 * DIM if name in TWO_TERM_HEADS else DIM
    assert video.shape == (5, width) and text.shape == (3, width)
    assert head.similarity(text, video).shape == (3, 5)
    assert torch.isfinite(video).all() and torch.isfinite(text).all()


@pytest.mark.parametrize("name", ALL_HEADS)
@pytest.mark.parametrize("num_frames", [6, 7])
def test_padded_frames_never_change_a_score(name, num_frames):
    head = build(name)
    frames, mask = make_frames(6, num_frames)
    noise = torch.randn(frames.shape, generator=torch.Generator().manual_seed(5)) * 3
    repadded = torch.where(mask[..., None].bool(), frames, noise)
    text = head.embed_text(make_text(4))
    with torch.no_grad():
        before = head.similarity(text, head.embed_video(frames, mask))
        after = head.similarity(text, head.embed_video(repadded, mask))
    torch.testing.assert_close(before, after, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ALL_HEADS)
def test_a_video_vector_does_not_depend_on_its_batch_mates(name):
    head = build(name)
    frames, mask = make_frames(5, 6)
    with torch.no_grad():
        together = head.embed_video(frames, mask)
        alone = torch.cat([head.embed_video(frames[b : b + 1], mask[b : b + 1]) for b in range(5)])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ALL_HEADS)
def test_gradients_reach_every_parameter(name):
    head = build(name).train()
    frames, mask = make_frames(4, 5)
    frames.requires_grad_(True)
    text = make_text(4)
    text.tokens.requires_grad_(True)
    logit_scale = torch.tensor(2.0, requires_grad=True)
    retrieval_loss(head, head.embed_text(text), head.embed_video(frames, mask), logit_scale).backward()
    assert frames.grad.abs().sum() > 0 and logit_scale.grad is not None
    for param_name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name


def test_mean_pool_matches_a_hand_computation_with_a_partial_mask():
    head = build("meanP")
    frames = torch.tensor([[[3.0, 4.0], [0.0, 2.0], [9.0, 9.0]], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    # video 0: mean of (0.6, 0.8) and (0, 1) = (0.3, 0.9), normalised; video 1: mean of (1,0), (0,1), (r, r)
    r = 2**-0.5
    expected = torch.tensor([[0.3, 0.9], [(1 + r) / 3, (1 + r) / 3]])
    expected = expected / expected.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(head.embed_video(frames, mask), expected)


def test_mean_pool_of_a_video_without_real_frames_is_zero_not_nan():
    head = build("meanP")
    assert torch.equal(head.embed_video(torch.randn(1, 3, DIM), torch.zeros(1, 3)), torch.zeros(1, DIM))


def test_text_vector_is_the_normalised_end_of_text_feature_for_single_term_heads():
    text = make_text(3)
    for name in ("meanP", "seqTransf", "tdb"):
        torch.testing.assert_close(build(name).embed_text(text), text.pooled / text.pooled.norm(dim=-1, keepdim=True))


def test_seq_transf_sees_frame_order_while_mean_pool_does_not():
    frames, mask = make_frames(2, 6)
    reordered = frames.flip(1)
    full = torch.ones_like(mask)
    mean, seq = build("meanP"), build("seqTransf")
    torch.testing.assert_close(mean.embed_video(frames, full), mean.embed_video(reordered, full))
    with torch.no_grad():
        assert not torch.allclose(seq.embed_video(frames, full), seq.embed_video(reordered, full), atol=1e-4)


@pytest.mark.parametrize("name", ["seqTransf", "tdb", "clip2video"])
def test_more_frames_than_positions_is_a_config_error_unless_the_head_is_built_for_them(name):
    frames, mask = torch.randn(1, 80, DIM), torch.ones(1, 80)
    with pytest.raises(ConfigError, match="num_frames"):
        build(name).embed_video(frames, mask)
    assert build(name, num_frames=80).embed_video(frames, mask).shape[0] == 1


def clip_text_state(width=DIM, layers=5, context=77):
    torch.manual_seed(3)
    state = {"positional_embedding": torch.randn(context, width)}
    donor = create_head("seqTransf", width, layers=layers, heads=2)
    for key, value in donor.transformerClip.state_dict().items():
        state[f"transformer.{key}"] = torch.randn_like(value)
    return state


@pytest.mark.parametrize("name", ALL_HEADS)
def test_init_from_clip_copies_positions_and_text_blocks(name):
    head, state = build(name), clip_text_state()
    copied = head.init_from_clip(state)
    params = dict(head.named_parameters())
    if name == "meanP":
        assert copied == []
        return
    torch.testing.assert_close(params["frame_position_embeddings.weight"], state["positional_embedding"])
    for i in range(4):
        torch.testing.assert_close(
            params[f"transformerClip.resblocks.{i}.mlp.c_fc.weight"],
            state[f"transformer.resblocks.{i}.mlp.c_fc.weight"],
        )
    if name != "seqTransf":
        torch.testing.assert_close(params["type_position_embeddings.weight"], state["positional_embedding"][:2])
        block0 = state["transformer.resblocks.0.attn.in_proj_weight"]
        torch.testing.assert_close(params["frame2t_attention.resblocks.0.attn.in_proj_weight"], block0)
    if name in TWO_TERM_HEADS:
        torch.testing.assert_close(params["actionClip.resblocks.0.attn.in_proj_weight"], block0)
    assert "transformer.resblocks.4.ln_1.weight" not in copied


def test_init_from_clip_with_a_shorter_text_context_keeps_the_remaining_positions():
    head = build("seqTransf")
    before = head.frame_position_embeddings.weight[32:].clone()
    head.init_from_clip(clip_text_state(context=32))
    torch.testing.assert_close(head.frame_position_embeddings.weight[32:], before)


@pytest.mark.parametrize("name", ["seqTransf", "tdb", "clip2video"])
def test_init_from_clip_of_another_width_is_a_checkpoint_error(name):
    with pytest.raises(CheckpointError, match="embed_dim"):
        build(name).init_from_clip(clip_text_state(width=2 * DIM))
