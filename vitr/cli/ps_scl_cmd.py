"""`vitr train-pseudo`: PS-SCL on a folder of unlabelled videos from the file `vitr pseudo-label` wrote (step 2).

A shortcut: the flags fill the recipe's `ps_scl:` section and `vitr train` runs it, so
`vitr train-pseudo R.yaml --pseudo P --videos V` is `vitr train R.yaml ps_scl.pseudo_labels=P ps_scl.videos=V`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vitr.cli.choices import ANCHORS, DATASETS, SELECTION_RULES, SELECTION_SCORES
from vitr.cli.choices import PSEUDO_FORMS as FORMS
from vitr.cli.eval_cmd import check_paths
from vitr.cli.pseudo_cmd import parse_forms
from vitr.cli.train_cmd import recipe_overrides, run_recipe
from vitr.cli.validate import add_device_arg, add_training_precision_arg, require_dir, require_file
from vitr.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-pseudo", help="train on unlabelled videos with their pseudo-texts and SeLeCT (PS-SCL), and labels if any"
    )
    p.add_argument("config", type=Path, help="YAML training config (see configs/): head, lrs, epochs, output_dir")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. model.head=tdb epochs=5 backbone_lr=1e-5")
    p.add_argument("--pseudo", type=Path, required=True, help="the JSONL file `vitr pseudo-label` wrote")
    p.add_argument("--videos", type=Path, required=True, help="the folder that was pseudo-labelled")
    p.add_argument("--forms", default="", help=f"pseudo-text forms to train on, comma-separated from {FORMS} (all)")
    p.add_argument("--rule", default="topk", choices=SELECTION_RULES, help="SeLeCT rule; none: no selection")
    p.add_argument("--score", default="loss", choices=SELECTION_SCORES, help="what ranks pairs for the topk rule")
    p.add_argument("--tau", type=float, default=0.3, help="final forget rate of the topk rule")
    p.add_argument("--t-k", type=float, default=2.0,
                   help="epochs over which the forget rate ramps up (2: the lab recipe, configs/lab/ps_scl.yaml)")
    p.add_argument("--stratify", action="store_true", help="the topk rule keeps its share within each pseudo-text form")
    p.add_argument(
        "--anchor",
        type=float,
        default=0.0,
        help="zero-shot anchor weight (0: off; 3 with --anchor-kind still did best in the lab)",
    )
    p.add_argument("--anchor-kind", default="feature", choices=ANCHORS)
    p.add_argument("--wise-alpha", type=float, default=None, help="WiSE-FT: average with the start weights")
    p.add_argument("--text-sampling", default="uniform", choices=["uniform", "teacher"])
    g = p.add_argument_group("labelled data to train on beside the pseudo pairs (optional)")
    g.add_argument("--labelled-dataset", default=None, choices=[*DATASETS, "generic"])
    g.add_argument("--labelled-root", type=Path, default=None, help="annotation folder (or CSV/JSONL for generic)")
    g.add_argument("--labelled-videos", type=Path, default=None, help="video folder (default ROOT/videos)")
    g.add_argument("--labelled-split", default="train9k")
    p.add_argument("--cache", type=Path, default=Path(".vitr-cache"), help="frame-feature cache directory")
    p.add_argument("--workers", type=int, default=2)
    add_device_arg(p, "trains (the config's `device` unless given; under torchrun auto is each rank's GPU)",
                   default=None)
    add_training_precision_arg(p, default=None)
    p.set_defaults(func=run_train_pseudo)


def run_train_pseudo(args: argparse.Namespace) -> int:
    forms = parse_forms(args.forms)
    if (args.labelled_dataset is None) != (args.labelled_root is None):
        raise ConfigError("--labelled-dataset and --labelled-root go together")
    require_file(args.config, "config")
    require_file(args.pseudo, "--pseudo")
    require_dir(args.videos, "--videos")
    if args.labelled_root is not None:
        check_paths(args.labelled_root, args.labelled_videos)
    from vitr.losses.selection import SelectionConfig
    from vitr.train.config import PsSclConfig, load_config

    config = load_config(args.config, recipe_overrides(args))
    config.ps_scl = PsSclConfig(
        pseudo_labels=str(args.pseudo),
        videos=str(args.videos),
        forms=list(forms),
        selection=SelectionConfig(rule=args.rule, score=args.score, tau=args.tau, t_k=args.t_k, stratify=args.stratify),
        text_sampling=args.text_sampling,
        anchor_weight=args.anchor,
        anchor=args.anchor_kind,
    )
    if args.wise_alpha is not None:
        config.wise_alpha = args.wise_alpha
    config.__post_init__()  # the combined config's own checks (PS-SCL needs cached features, alpha range)
    if args.device is not None:
        config.device = args.device
    data = argparse.Namespace(
        dataset=args.labelled_dataset,
        root=args.labelled_root,
        videos=args.labelled_videos,
        split=args.labelled_split,
        val_split=None,
        cache=args.cache,
        workers=args.workers,
    )
    return run_recipe(config, data)
