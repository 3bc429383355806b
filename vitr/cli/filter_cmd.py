"""`vitr filter-captions`: drop the training captions a recipe's TeachText teachers rank far from their video.

Writes the cleaned annotation file (generic JSONL: `vitr train R.yaml --dataset generic --root CLEAN.jsonl`) and
a report of every caption removed and why (its rank under the teachers, the rule), as TeachText's official
caption masks do (teachtext.md §1.6).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vitr.cli.choices import DATASETS
from vitr.cli.eval_cmd import check_paths
from vitr.cli.validate import add_device_arg, require_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("filter-captions", help="remove noisy training captions with a recipe's TeachText teachers")
    p.add_argument("config", type=Path, help="YAML recipe with a teachtext section (teachers, filter)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. teachtext.filter.max_rank=50")
    p.add_argument("--dataset", required=True, choices=[*DATASETS, "generic"])
    p.add_argument("--root", type=Path, required=True, help="annotation folder (or CSV/JSONL file for generic)")
    p.add_argument("--videos", type=Path, default=None, help="video folder (default ROOT/videos)")
    p.add_argument("--split", default="train9k", help="the training split to clean")
    p.add_argument("--out", type=Path, required=True, help="the cleaned annotation file to write (.jsonl)")
    p.add_argument("--report", type=Path, default=None, help="folder of the report (default: beside --out)")
    p.add_argument("--cache", type=Path, default=Path(".vitr-cache"), help="frame-feature cache directory")
    p.add_argument("--workers", type=int, default=2)
    add_device_arg(p, "builds the teachers", default=None)
    p.set_defaults(func=run_filter_captions)


def run_filter_captions(args: argparse.Namespace) -> int:
    require_file(args.config, "config")
    check_paths(args.root, args.videos)
    from vitr.data.readers import load_dataset
    from vitr.data.readers.generic import write_generic
    from vitr.model.factory import build_model
    from vitr.train.config import load_config
    from vitr.train.distributed import training_device
    from vitr.train.pipeline import filter_training_captions
    from vitr.train.teachtext import write_filter_report

    config = load_config(args.config, args.overrides)
    if args.device is not None:
        config.device = args.device
    dataset = load_dataset(args.dataset, args.root, args.split, args.videos, check_files=True)
    model = build_model(config.model, training_device(config.device))
    result = filter_training_captions(model, config, dataset, args.cache, workers=args.workers)
    out = write_generic(result.dataset, args.out.with_suffix(".jsonl"))
    csv_path, json_path = write_filter_report(result, args.report or out.parent, stem=f"{out.stem}.removed")
    left = len(dataset.captions) - len(result.source.captions)
    print(
        f"removed {len(result.removed)} of {len(result.source.captions)} captions ({result.config.rule} rule); "
        f"kept {len(result.dataset.captions)} in {out}; report {csv_path}, {json_path}"
        + (f"; {left} captions of videos that could not be decoded left out" if left else "")
    )
    return 0
