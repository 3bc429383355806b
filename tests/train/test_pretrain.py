import numpy as np
import torch

from vitr.backbones import load_backbone
from vitr.train.pretrain import PretrainConfig, crop_tokens, pretrain_clip
from vitr.video.transforms import preprocess_frames


def test_cropping_tokens_to_the_longest_caption_keeps_the_pooled_feature():
    backbone = load_backbone("vitr-lab-tiny", random_init=True)
    tokens = backbone.tokenize(["a red circle", "a large blue square on the left against a white background"])
    cropped = crop_tokens(tokens)
    assert cropped.shape[1] < tokens.shape[1]
    with torch.inference_mode():
        assert torch.allclose(backbone.encode_text(tokens).pooled, backbone.encode_text(cropped).pooled, atol=1e-5)


def test_pretraining_learns_to_match_images_and_captions():
    """Two visually distinct classes with their captions: the loss falls towards its floor (ln of the number of
    same-caption pairs in a batch, about ln 8 here) and each image then prefers its own caption."""
    rng = np.random.default_rng(0)
    images = np.zeros((64, 64, 64, 3), np.uint8)
    images[:32, :, :, 0] = 255  # red images
    images[32:, :, :, 2] = 255  # blue images
    images = np.clip(images + rng.integers(0, 20, images.shape), 0, 255).astype(np.uint8)
    captions = ["a red picture"] * 32 + ["a blue picture"] * 32
    backbone = load_backbone("vitr-lab-tiny", random_init=True)
    losses = pretrain_clip(
        backbone,
        images,
        captions,
        PretrainConfig(steps=25, batch_size=16, lr=1e-3, warmup=0.1, precision="fp32"),
        progress=False,
    )
    assert np.mean(losses[-5:]) < np.mean(losses[:3]) - 0.5
    with torch.inference_mode():
        img = torch.nn.functional.normalize(
            backbone.encode_image(preprocess_frames(images[[0, -1]], size=64)),
            dim=-1,
        )
        txt = torch.nn.functional.normalize(
            backbone.encode_text(backbone.tokenize(["a red picture", "a blue picture"])).pooled, dim=-1
        )
    assert (img @ txt.T).argmax(1).tolist() == [0, 1]


def test_hard_negative_captions_are_drawn_afresh_for_every_caption_of_every_batch():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    captions = [f"a {'red' if i % 2 else 'blue'} picture" for i in range(32)]
    asked = []

    def negative(caption, generator):
        asked.append(caption)
        return caption.replace("red", "green") if "red" in caption else None  # blue captions have none

    losses = pretrain_clip(
        load_backbone("vitr-lab-tiny", random_init=True),
        images,
        captions,
        PretrainConfig(steps=3, batch_size=16, precision="fp32"),
        progress=False,
        negative_caption=negative,
    )
    assert len(asked) == 3 * 16 and all(np.isfinite(losses))
