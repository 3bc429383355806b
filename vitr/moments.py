"""What makes a clip request valid, checked before any video library loads (the CLI answers a typo at once).

Kept outside vitr.video, whose package imports torch and PyAV; vitr.video.clip, vitr.serve and vitr.cli share it.
"""

from __future__ import annotations

import math
from pathlib import Path

from vitr.errors import ConfigError

# Output containers by suffix: a clip is written under a temporary name whose suffix says nothing.
CLIP_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def check_clip_request(start: float, end: float, out: Path) -> str:
    """Validate the times and the output name of a clip; returns the output container format."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ConfigError("--start and --end must be finite numbers of seconds")
    if start < 0:
        raise ConfigError(f"--start {start:g} is negative; times are seconds from the start of the video")
    if end <= start:
        raise ConfigError(f"--end {end:g} must be after --start {start:g}")
    container = CLIP_CONTAINERS.get(out.suffix.lower())
    if container is None:
        raise ConfigError(f"cannot tell the format of {out}: name it .mp4, .m4v, .mov or .mkv")
    return container
