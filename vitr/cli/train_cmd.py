"""`vitr train`: fine-tune a retrieval model from a YAML recipe plus key=value overrides.

The recipe decides the method: supervised on `--dataset`, PS-SCL with a `ps_scl:` section (beside `--dataset`'s
labelled pairs when given), TeachText with a `teachtext:` section, or both sections together.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vitr.cli.choices import DATASETS
from vitr.cli.eval_cmd import check_paths
from vitr.cli.validate import add_device_arg, add_training_precision_arg, require_file
from vitr.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune a model from a recipe: supervised, PS-SCL, TeachText or combined")
    p.add_argument("config", type=Path, help="YAML training recipe (see configs/)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.head=tdb epochs=3 lr=3e-4")
    p.add_argument("--dataset", default=None, choices=[*DATASETS, "generic"],
                   help="labelled training data (needed unless the recipe has a ps_scl section)")
    p.add_argument("--root", type=Path, default=None, help="annotation folder (or CSV/JSONL file for generic)")
    p.add_argument("--videos", type=Path, default=None, help="video folder (default ROOT/videos)")
    p.add_argument("--split", default="train9k", help="training split, e.g. train9k (MSR-VTT), train (others)")
    p.add_argument("--val-split", default=None, help="validation split for checkpoint selection (e.g. val)")
    p.add_argument("--cache", type=Path, default=Path(".vitr-cache"), help="frame-feature cache directory")
    p.add_argument("--workers", type=int, default=2)
    add_device_arg(p, "trains (the config's `device` unless given; under torchrun auto is each rank's GPU)",
                   default=None)
    add_training_precision_arg(p, default=None)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    require_file(args.config, "config")
    if (args.dataset is None) != (args.root is None):
        raise ConfigError("--dataset and --root go together")
    if args.root is not None:
        check_paths(args.root, args.videos)
    from vitr.train.config import load_config

    config = load_config(args.config, recipe_overrides(args))
    if args.device is not None:
        config.device = args.device
    return run_recipe(config, args)


def recipe_overrides(args: argparse.Namespace) -> list[str]:
    """The command's `key=value` overrides, then the ones its flags stand for (`--precision P` is `precision=P`),
    so a flag takes the override's one path into the recipe and wins over the same key given as an override."""
    return [*args.overrides, *([f"precision={args.precision}"] if args.precision is not None else [])]


def run_recipe(config: Any, args: argparse.Namespace) -> int:
    """Train `config` (a TrainConfig) on the data `args` names; shared by `vitr train` and `vitr train-pseudo`."""
    from vitr.data.readers import load_dataset
    from vitr.train.checkpoint import LATEST, resolve_checkpoint
    from vitr.train.pipeline import train, training_model

    if config.ps_scl is None and args.dataset is None:
        raise ConfigError("give --dataset and --root, or a recipe with a ps_scl section (training on pseudo pairs)")
    train_set = (
        load_dataset(args.dataset, args.root, args.split, args.videos, check_files=True) if args.dataset else None
    )
    val_set = None
    if args.val_split:
        if args.dataset is None:
            raise ConfigError("--val-split needs --dataset and --root")
        val_set = load_dataset(args.dataset, args.root, args.val_split, args.videos, check_files=True)
    model = training_model(config)  # extraction runs there too
    trainer = train(model, config, train_set, args.cache, val_set=val_set, workers=args.workers)
    latest = resolve_checkpoint(Path(config.output_dir) / "checkpoints", LATEST)
    print(f"trained {trainer.step} steps; final loss {trainer.history[-1]:.4f}; model in {latest}")
    kept = getattr(trainer.selection, "kept", None)
    if kept:
        print(f"pseudo pairs kept in the last step: {kept[-1]:.2f}")
    if trainer.last_metrics:
        print("last validation: " + ", ".join(f"{k} {v:.1f}" for k, v in trainer.last_metrics.items()))
    return 0
