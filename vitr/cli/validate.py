"""Checks of command-line values that run before any heavy import, so a typo is answered in a fraction of a
second. Each failure is a `ConfigError`, which `vitr.cli.main` prints as `vitr COMMAND: error: ...`."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vitr.cli.choices import PRECISIONS
from vitr.errors import ConfigError


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type` accepting integers in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def require_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    if not path.is_dir():
        raise ConfigError(f"{what} {path} is not a folder")
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a file")
    return path


def require_index(path: Path) -> Path:
    """An index directory made by `vitr index` (it holds index.json)."""
    if not path.exists():
        raise ConfigError(f"no index at {path}: pass --index DIR, the folder `vitr index FOLDER --index DIR` made")
    if not (path / "index.json").is_file():
        raise ConfigError(f"{path} is not a vitr index (it has no index.json)")
    return path


def json_object(text: str, option: str) -> dict[str, Any]:
    """A JSON object given on the command line, e.g. `--head-kwargs '{"mask_tiling": "per_sample"}'`."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{option} is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option} must be a JSON object like '{{\"key\": 1}}', got {text!r}")
    return value


DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def device_name(text: str) -> str:
    """An argparse `type` for `--device`: auto, cpu, cuda or cuda:N (whether that GPU exists is checked once
    torch is loaded, by `vitr.inference.plan.resolve_device`)."""
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def add_device_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "runs the model",
                   default: str | None = "auto") -> None:
    """`--device`, the same on every command that embeds or trains."""
    parser.add_argument("--device", type=device_name, default=default,
                        help=f"where it {what}: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda or "
                             f"cuda:N (default {default or 'the config file'})")


def add_training_precision_arg(parser: argparse.ArgumentParser, default: str | None = "fp32") -> None:
    """`--precision` of every command that trains: the autocast dtype (`vitr.precision.resolve_autocast`)."""
    parser.add_argument("--precision", default=default, choices=PRECISIONS,
                        help="autocast dtype; auto: AMP in bf16 (fp16 on older GPUs) on a GPU, none on a CPU, where "
                             "fp32 is the faster: bf16 backward passes are slower there "
                             f"(default {default or 'the config file'})")
