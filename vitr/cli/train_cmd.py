"""`vitr train`: fine-tune a retrieval model on a dataset split from a YAML config plus key=value overrides."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitr.cli.choices import DATASETS
from vitr.cli.eval_cmd import check_paths
from vitr.cli.validate import add_device_arg, require_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune a model (temporal head, text tower, optionally the image tower)")
    p.add_argument("config", type=Path, help="YAML training config (see configs/)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.head=tdb epochs=3 lr=3e-4")
    p.add_argument("--dataset", required=True, choices=[*DATASETS, "generic"])
    p.add_argument("--root", type=Path, required=True, help="annotation folder (or CSV/JSONL file for generic)")
    p.add_argument("--videos", type=Path, default=None, help="video folder (default ROOT/videos)")
    p.add_argument("--split", default="train9k", help="training split, e.g. train9k (MSR-VTT), train (others)")
    p.add_argument("--val-split", default=None, help="validation split for checkpoint selection (e.g. val)")
    p.add_argument("--cache", type=Path, default=Path(".vitr-cache"), help="frame-feature cache directory")
    p.add_argument("--workers", type=int, default=2)
    add_device_arg(p, "trains (the config's `device` unless given; under torchrun auto is each rank's GPU)",
                   default=None)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    require_file(args.config, "config")
    check_paths(args.root, args.videos)
    from vitr.data.readers import load_dataset
    from vitr.model.factory import build_model
    from vitr.train.config import load_config
    from vitr.train.distributed import training_device
    from vitr.train.pipeline import train

    config = load_config(args.config, args.overrides)
    train_set = load_dataset(args.dataset, args.root, args.split, args.videos, check_files=True)
    val_set = (
        load_dataset(args.dataset, args.root, args.val_split, args.videos, check_files=True) if args.val_split else None
    )
    if args.device is not None:
        config.device = args.device
    model = build_model(config.model, training_device(config.device))  # extraction runs there too
    trainer = train(model, config, train_set, args.cache, val_set=val_set, workers=args.workers)
    print(f"trained {trainer.step} steps; final loss {trainer.history[-1]:.4f}; checkpoints in {config.output_dir}")
    if trainer.last_metrics:
        print("last validation: " + ", ".join(f"{k} {v:.1f}" for k, v in trainer.last_metrics.items()))
    return 0
