"""CLIP's image preprocessing applied to a whole clip at once, and padding clips to a fixed frame count."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def preprocess_frames(
    frames: np.ndarray | torch.Tensor,
    size: int = 224,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (T, 3, size, size) float32, as CLIP's transform does per image.

    Resize the short side to `size` (bicubic with antialiasing, on uint8 so values round and clip as PIL's do),
    centre crop, scale to [0, 1], normalise. Sizes and crop offsets follow torchvision's Resize/CenterCrop.
    """
    pixels = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != torch.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {tuple(pixels.shape)} {pixels.dtype}")
    x = pixels.permute(0, 3, 1, 2)  # (T, 3, H, W), channels-last in memory, which interpolate prefers
    height, width = x.shape[-2:]
    if height <= width:
        new_height, new_width = size, int(size * width / height)
    else:
        new_height, new_width = int(size * height / width), size
    if (new_height, new_width) != (height, width) and x.shape[0] > 0:
        x = F.interpolate(x, size=(new_height, new_width), mode="bicubic", antialias=True, align_corners=False)
    top = int(round((new_height - size) / 2.0))
    left = int(round((new_width - size) / 2.0))
    x = x[..., top : top + size, left : left + size]  # (T, 3, size, size)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x.float() / 255.0 - mean_t) / std_t).contiguous()


def pad_frames(x: torch.Tensor, max_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, ...) -> ((max_frames, ...), mask (max_frames,) float), the fixed-length input temporal heads expect.

    Shorter clips get zero frames after the real ones (zeros in normalised pixel space, what the official
    CLIP4Clip/CLIP2Video loaders feed); longer clips keep `linspace(0, T - 1, max_frames)` of their frames, as
    CLIP4Clip's `slice_framepos=2` does. mask is 1 on real frames, 0 on padding.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    count = x.shape[0]
    if count >= max_frames:
        keep = torch.from_numpy(np.linspace(0, count - 1, max_frames).astype(np.int64))
        return x[keep], torch.ones(max_frames, dtype=torch.float32)
    padded = x.new_zeros((max_frames, *x.shape[1:]))
    padded[:count] = x
    mask = torch.zeros(max_frames, dtype=torch.float32)
    mask[:count] = 1.0
    return padded, mask
