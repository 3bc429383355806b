"""`vitr convert`: turn a released CLIP4Clip/CLIP2Video checkpoint into a vitr model directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitr.cli.choices import HEADS
from vitr.cli.validate import json_object, require_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert an official CLIP4Clip/CLIP2Video checkpoint (pytorch_model.bin.N) into a vitr model directory",
        description="Reads the file without running code, infers the CLIP and the head from its tensors and writes "
        "OUT/model.safetensors + OUT/config.json, usable as --checkpoint OUT by eval, index and serve.",
    )
    p.add_argument("source", type=Path, help="pytorch_model.bin.N, a .bin/.pt/.pth state dict or .safetensors")
    p.add_argument("out", type=Path, help="directory to write (created if missing)")
    p.add_argument("--head", default=None, choices=HEADS,
                   help="force a head (default: inferred from the checkpoint's modules)")
    p.add_argument(
        "--head-kwargs",
        default="{}",
        help='JSON dict overriding the inferred head options, e.g. \'{"mask_tiling": "per_sample"}\'',
    )
    p.add_argument("--frames", type=int, default=12, help="frames per video the model will be run with")
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    head_kwargs = json_object(args.head_kwargs, "--head-kwargs")
    require_file(args.source, "checkpoint")
    from vitr.model.official import load_official_checkpoint, write_model_dir

    model, report = load_official_checkpoint(args.source, args.head, head_kwargs, args.frames)
    write_model_dir(model, report, args.out, num_frames=args.frames)
    print(report.summary())
    print(f"wrote {args.out}; use it as --checkpoint {args.out}")
    return 0
