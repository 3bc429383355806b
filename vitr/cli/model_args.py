"""Shared command-line options that describe a model, so every command names models the same way."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from vitr.cli.choices import HEADS, PRECISIONS
from vitr.cli.validate import add_device_arg, json_object, require_dir
from vitr.errors import ConfigError

if TYPE_CHECKING:
    from vitr.model.factory import ModelSpec


def add_model_args(parser: argparse.ArgumentParser, default_precision: str = "fp32") -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model", default="ViT-B-32",
                   help="backbone: an open_clip name (ViT-B-32), hf-hub:ORG/NAME, local-dir:PATH or a directory")
    g.add_argument("--pretrained", default=None, help="open_clip pretrained tag, e.g. openai (needs the network "
                   "once; offline, pass --weights)")
    g.add_argument("--weights", default=None, help="local backbone weights: a .safetensors/.bin/.pt file or a dir")
    g.add_argument("--head", default="meanP", choices=HEADS, help="temporal head (default meanP)")
    g.add_argument("--head-kwargs", default="{}", help="JSON dict of head options")
    g.add_argument("--checkpoint", default=None, help="trained vitr model weights (backbone + head)")
    g.add_argument("--random-init", action="store_true",
                   help="use seeded random weights for an architecture given no weights (smoke tests only: "
                        "results are noise); without it a model with no weights is refused")
    g.add_argument("--frames", type=int, default=12, help="frames sampled per video (uniform)")
    g.add_argument("--precision", default=default_precision, choices=PRECISIONS,
                   help=f"inference precision; auto: bf16 where the hardware runs it fast ({default_precision})")
    add_device_arg(g)


def check_model_args(args: argparse.Namespace) -> None:
    """The model options' errors a user can make, caught before torch is imported."""
    json_object(args.head_kwargs, "--head-kwargs")
    if args.random_init and (args.pretrained or args.weights or args.checkpoint):
        raise ConfigError("--random-init contradicts --pretrained/--weights/--checkpoint; give one or the other")
    if args.frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {args.frames}")
    for option, value in (("--weights", args.weights), ("--checkpoint", args.checkpoint)):
        if value is not None and not Path(value).exists():
            raise ConfigError(f"{option} {value} does not exist")
    model = args.model.removeprefix("local-dir:")
    if model != args.model or ("/" in model and not model.startswith("hf-hub:")):  # a folder, not a name
        require_dir(Path(model), "--model folder")


def device_from_args(args: argparse.Namespace) -> str:
    """The device `--device` names, resolved ("auto" becomes cuda:0 or cpu); a missing GPU is a ConfigError."""
    from vitr.precision import resolve_device

    return str(resolve_device(args.device))


def model_spec_from_args(args: argparse.Namespace, device: str | None = None) -> ModelSpec:
    """The model the options describe; "auto" precision is resolved for `device` (default: `--device`'s)."""
    from vitr.model.factory import ModelSpec
    from vitr.precision import resolve_precision

    device = device or device_from_args(args)
    return ModelSpec(backbone=args.model, pretrained=args.pretrained, weights=args.weights, head=args.head,
                     head_kwargs=json_object(args.head_kwargs, "--head-kwargs"), checkpoint=args.checkpoint,
                     num_frames=args.frames, precision=resolve_precision(args.precision, device),
                     random_init=args.random_init)
