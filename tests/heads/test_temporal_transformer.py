import math

import pytest
import torch
from open_clip.model import QuickGELU as OpenClipQuickGELU
from open_clip.transformer import TextTransformer

from vitr.errors import CheckpointError, ConfigError
from vitr.heads.temporal_transformer import TemporalTransformer

WIDTH, HEADS = 16, 4


def tf_layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return weight * (x - mean) / torch.sqrt(var + eps) + bias


def reference_block(block, x, key_mask, heads):
    """One pre-LN block written out from the spec: explicit per-head attention with a -1e6 key bias."""
    batch, length, width = x.shape
    dh = width // heads
    h = tf_layer_norm(x, block.ln_1.weight, block.ln_1.bias)
    q, k, v = (h @ block.attn.in_proj_weight.T + block.attn.in_proj_bias).chunk(3, dim=-1)
    split = lambda t: t.view(batch, length, heads, dh).transpose(1, 2)  # noqa: E731  (B, H, L, dh)
    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh) + (1 - key_mask)[:, None, None, :] * -1e6
    attended = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(batch, length, width)
    x = x + attended @ block.attn.out_proj.weight.T + block.attn.out_proj.bias
    hidden = tf_layer_norm(x, block.ln_2.weight, block.ln_2.bias) @ block.mlp.c_fc.weight.T + block.mlp.c_fc.bias
    hidden = hidden * torch.sigmoid(1.702 * hidden)
    return x + hidden @ block.mlp.c_proj.weight.T + block.mlp.c_proj.bias


def mixed_masks(batch, length):
    mask = torch.ones(batch, length)
    for b in range(batch):
        mask[b, length - b :] = 0 if b else 1
    return mask


def test_forward_matches_the_spelled_out_pre_ln_quickgelu_block():
    torch.manual_seed(0)
    model = TemporalTransformer(WIDTH, layers=2, heads=HEADS)
    x, mask = torch.randn(3, 6, WIDTH), mixed_masks(3, 6)
    expected = x
    for block in model.resblocks:
        expected = reference_block(block, expected, mask, HEADS)
    torch.testing.assert_close(model(x, mask), expected, atol=1e-5, rtol=1e-5)


def test_module_names_match_the_official_block_layout():
    names = set(TemporalTransformer(WIDTH, layers=1, heads=HEADS).state_dict())
    block = "resblocks.0."
    suffixes = ["attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias"]
    suffixes += [f"{m}.{p}" for m in ("ln_1", "ln_2", "mlp.c_fc", "mlp.c_proj") for p in ("weight", "bias")]
    assert names == {block + s for s in suffixes}


def test_masked_keys_do_not_reach_real_positions():
    torch.manual_seed(0)
    model = TemporalTransformer(WIDTH, layers=2, heads=HEADS)
    x, mask = torch.randn(2, 5, WIDTH), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]]).float()
    changed = torch.where(mask[..., None].bool(), x, torch.randn_like(x) * 10)
    real = mask.bool()
    torch.testing.assert_close(model(x, mask)[real], model(changed, mask)[real])


def test_tilings_agree_when_every_mask_in_the_batch_is_the_same():
    torch.manual_seed(0)
    correct = TemporalTransformer(WIDTH, layers=2, heads=HEADS)
    official = TemporalTransformer(WIDTH, layers=2, heads=HEADS, mask_tiling="clip2video_repeat")
    official.load_state_dict(correct.state_dict())
    x = torch.randn(3, 5, WIDTH)
    for mask in (torch.ones(3, 5), torch.tensor([[1, 1, 1, 0, 0]] * 3).float()):
        torch.testing.assert_close(correct(x, mask), official(x, mask))


def test_tilings_differ_when_masks_differ_within_a_batch():
    torch.manual_seed(0)
    correct = TemporalTransformer(WIDTH, layers=2, heads=HEADS)
    official = TemporalTransformer(WIDTH, layers=2, heads=HEADS, mask_tiling="clip2video_repeat")
    official.load_state_dict(correct.state_dict())
    x, mask = torch.randn(3, 5, WIDTH), mixed_masks(3, 5)
    assert not torch.allclose(correct(x, mask), official(x, mask), atol=1e-3)


def test_clip2video_repeat_gives_head_h_of_sample_b_the_mask_of_sample_bh_plus_h_mod_b():
    model = TemporalTransformer(WIDTH, layers=1, heads=HEADS, mask_tiling="clip2video_repeat")
    mask = mixed_masks(3, 5)
    tiled = model.attention_mask(mask, torch.float32)  # (B*H, L, L)
    for b in range(3):
        for h in range(HEADS):
            source = (b * HEADS + h) % 3
            assert torch.equal(tiled[b * HEADS + h, 0], (1 - mask[source]) * -1e6)


def test_per_sample_output_does_not_depend_on_batch_mates():
    torch.manual_seed(0)
    model = TemporalTransformer(WIDTH, layers=2, heads=HEADS)
    x, mask = torch.randn(3, 5, WIDTH), mixed_masks(3, 5)
    together = model(x, mask)
    for b in range(3):
        torch.testing.assert_close(together[b : b + 1], model(x[b : b + 1], mask[b : b + 1]), atol=1e-6, rtol=1e-5)
    swapped = model(x.flip(0), mask.flip(0)).flip(0)
    torch.testing.assert_close(together, swapped, atol=1e-6, rtol=1e-5)


def open_clip_text_tower(layers=3):
    torch.manual_seed(1)
    return TextTransformer(
        context_length=16, vocab_size=50, width=WIDTH, heads=HEADS, layers=layers, output_dim=WIDTH,
        act_layer=OpenClipQuickGELU,
    )  # fmt: skip


def test_init_from_clip_text_reproduces_an_open_clip_text_block_stack():
    tower = open_clip_text_tower()
    model = TemporalTransformer(WIDTH, layers=3, heads=HEADS)
    copied = model.init_from_clip_text(tower.state_dict())
    assert len(copied) == 3 * 12
    x = torch.randn(2, 7, WIDTH)
    with torch.no_grad():
        # CLIP's LayerNorm eps is 1e-5 against 1e-12 here: the outputs agree to that precision
        torch.testing.assert_close(model(x, torch.ones(2, 7)), tower.transformer(x), atol=1e-4, rtol=1e-4)


def test_init_from_clip_text_skips_blocks_the_clip_tower_does_not_have():
    tower = open_clip_text_tower(layers=2)
    model = TemporalTransformer(WIDTH, layers=4, heads=HEADS)
    untouched = {k: v.clone() for k, v in model.resblocks[3].state_dict().items()}
    copied = model.init_from_clip_text(tower.state_dict())
    assert {key.split(".")[2] for key in copied} == {"0", "1"}
    assert all(torch.equal(v, model.resblocks[3].state_dict()[k]) for k, v in untouched.items())
    torch.testing.assert_close(model.resblocks[1].mlp.c_fc.weight, tower.transformer.resblocks[1].mlp.c_fc.weight)


def test_init_from_clip_text_rejects_a_text_tower_of_another_width():
    model = TemporalTransformer(2 * WIDTH, layers=1, heads=HEADS)
    with pytest.raises(CheckpointError, match="embed_dim"):
        model.init_from_clip_text(open_clip_text_tower().state_dict())


def test_invalid_configuration_is_reported():
    with pytest.raises(ConfigError, match="mask_tiling"):
        TemporalTransformer(WIDTH, 1, HEADS, mask_tiling="repeat")
    with pytest.raises(ConfigError, match="divide"):
        TemporalTransformer(WIDTH, 1, heads=3)
