import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from vitr.video import CLIP_MEAN, CLIP_STD, pad_frames, preprocess_frames


def test_output_shape_and_dtype():
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    out = preprocess_frames(frames, size=32)
    assert out.shape == (3, 3, 32, 32)
    assert out.dtype == torch.float32


def test_constant_image_normalises_to_clip_statistics():
    colour = np.array([200, 100, 30], dtype=np.uint8)
    frames = np.broadcast_to(colour, (2, 30, 50, 3)).copy()
    out = preprocess_frames(frames, size=24)
    expected = (torch.tensor(colour / 255.0) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(out, expected.float().view(1, 3, 1, 1).expand(2, 3, 24, 24), atol=1e-5, rtol=0)


@pytest.mark.parametrize("landscape", [True, False])
def test_centre_crop_keeps_the_middle_of_a_non_square_image(landscape):
    """Thirds coloured red | green | blue along the long side: only green survives the square centre crop."""
    frame = np.zeros((60, 180, 3), dtype=np.uint8)
    frame[:, :60, 0] = frame[:, 60:120, 1] = frame[:, 120:, 2] = 255
    if not landscape:
        frame = frame.transpose(1, 0, 2).copy()
    out = preprocess_frames(frame[None], size=30, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))[0]  # (3, 30, 30)
    inner = out[:, 2:-2, 2:-2]  # the crop's borders touch the bicubic blend between thirds
    torch.testing.assert_close(inner[1], torch.ones_like(inner[1]), atol=0.02, rtol=0)
    assert inner[0].abs().max() < 0.02 and inner[2].abs().max() < 0.02


def test_matches_clip_pil_transform_within_one_grey_level():
    frames = np.random.default_rng(1).integers(0, 256, (2, 90, 150, 3), dtype=np.uint8)
    frames[..., 0] = np.linspace(0, 255, 150, dtype=np.uint8)  # smooth content too, not only noise
    clip_transform = transforms.Compose(
        [
            transforms.Resize(64, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(64),
            transforms.ToTensor(),
            transforms.Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )
    expected = torch.stack([clip_transform(Image.fromarray(frame)) for frame in frames])
    one_level = 1 / 255 / min(CLIP_STD)
    torch.testing.assert_close(preprocess_frames(frames, size=64), expected, atol=one_level * 1.01, rtol=0)


def test_rejects_frames_that_are_not_uint8_rgb():
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames(np.zeros((2, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames(np.zeros((8, 8, 3), dtype=np.uint8))


def test_pad_short_clip_with_zeros_and_mask():
    x = torch.arange(1, 4, dtype=torch.float32).view(3, 1, 1).expand(3, 2, 2)
    padded, mask = pad_frames(x, 5)
    assert padded.shape == (5, 2, 2)
    torch.testing.assert_close(padded[:3], x)
    assert torch.all(padded[3:] == 0)
    torch.testing.assert_close(mask, torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0]))


def test_pad_long_clip_keeps_uniformly_spaced_frames():
    x = torch.arange(20, dtype=torch.float32)
    kept, mask = pad_frames(x, 6)
    torch.testing.assert_close(kept, torch.from_numpy(np.linspace(0, 19, 6).astype(int)).float())
    torch.testing.assert_close(mask, torch.ones(6))
