"""`vitr clip`: write a moment of a video (a search hit's start and end) to a file of its own."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vitr.cli.validate import require_file
from vitr.errors import ConfigError
from vitr.moments import check_clip_request


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "clip",
        help="cut a moment out of a video into a file of its own",
        description="Writes the seconds START to END of VIDEO to OUT (.mp4, .m4v, .mov or .mkv), with the video's "
        "first audio stream unless --no-audio. By default the moment is re-encoded (H.264, and AAC for the sound, cut "
        "to the same span), exact to one frame; --copy copies the streams without re-encoding (no quality loss, much "
        "faster) but starts at the keyframe at or before START. Sound that cannot be kept (it does not decode, say) "
        "is left out with a warning; the picture is still written.",
    )
    p.add_argument("video", type=Path, help="the video file to cut")
    p.add_argument("--start", type=float, required=True, help="where the clip starts, in seconds")
    p.add_argument("--end", type=float, required=True, help="where the clip ends, in seconds (past the end: to it)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the clip file to write (replaced if present)")
    p.add_argument("--copy", action="store_true",
                   help="stream copy cut at keyframes: starts up to one keyframe interval (GOP) before START")
    p.add_argument("--no-audio", dest="audio", action="store_false", help="write the picture only, without sound")
    p.set_defaults(func=run_clip)


def run_clip(args: argparse.Namespace) -> int:
    check_clip_request(args.start, args.end, args.output)
    require_file(args.video, "video")
    folder = args.output.parent
    if args.output.is_dir():
        raise ConfigError(f"{args.output} is a folder: name the clip file to write, e.g. {args.output / 'clip.mp4'}")
    if not folder.is_dir():
        raise ConfigError(f"cannot write {args.output}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {args.output}: the folder {folder} is not writable")
    from vitr.video.clip import cut_clip

    clip = cut_clip(args.video, args.start, args.end, args.output, copy=args.copy, audio=args.audio)
    how = "copied from the keyframe at" if clip.copied else "re-encoded from"
    sound = "with sound" if clip.audio else "without sound"
    print(f"wrote {clip.path}: {clip.frames} frames, {how} {clip.start:.3f} s to {clip.end:.3f} s, {sound}")
    if clip.audio_error is not None:
        print(f"vitr clip: warning: the clip has no sound: {clip.audio_error}", file=sys.stderr)
    return 0
