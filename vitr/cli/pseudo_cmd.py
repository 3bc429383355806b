"""`vitr pseudo-label`: write pseudo-texts for a folder of unlabelled videos with a frozen CLIP (PS-SCL step 1)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vitr.cli.choices import CHANGED
from vitr.cli.choices import PSEUDO_FORMS as FORMS
from vitr.cli.model_args import add_model_args, check_model_args, device_from_args
from vitr.cli.validate import require_dir
from vitr.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pseudo-label", help="tag a folder of videos with CLIP concepts and write pseudo-texts (JSONL)")
    p.add_argument("folder", type=Path, help="folder of videos (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output JSONL file, one record per video")
    p.add_argument(
        "--vocab",
        type=Path,
        default=None,
        help="vocabulary.json (or a folder holding one); default: the shipped English vocabulary",
    )
    p.add_argument(
        "--templates",
        default="ensemble",
        choices=["ensemble", "first", "bare"],
        help="prompt ensembling over all templates, the first template only, or bare concept names",
    )
    p.add_argument(
        "--aggregate",
        default="count",
        choices=["count", "mean", "max"],
        help="frame-to-video aggregation: VidIL top-k counts, mean or max frame probability",
    )
    p.add_argument("--forms", default=",".join(FORMS), help=f"pseudo-text forms, comma-separated from {FORMS}")
    p.add_argument("--no-temporal", action="store_true", help="no 'A, then B' pseudo-texts")
    p.add_argument(
        "--paraphrases",
        type=int,
        default=0,
        help="also write each text again this many times with the vocabulary's synonyms (0: its own words only)",
    )
    p.add_argument(
        "--changed",
        default="keep",
        choices=CHANGED,
        help="sentences of a video in which a temporal category changes: keep its majority value, omit that "
        "category, or drop those sentences",
    )
    p.add_argument("--tag-frames", type=int, default=8, help="uniform frames tagged per video")
    p.add_argument("--workers", type=int, default=2, help="decoding threads")
    p.add_argument("--batch-size", type=int, default=16)
    add_model_args(p)
    p.set_defaults(func=run_pseudo_label)


def parse_forms(value: str) -> tuple[str, ...]:
    """A comma-separated list of pseudo-text forms; an unknown one is refused with the list to choose from."""
    forms = tuple(f.strip() for f in value.split(",") if f.strip())
    unknown = sorted(set(forms) - set(FORMS))
    if unknown:
        raise ConfigError(f"unknown forms {unknown} in --forms; choose from {list(FORMS)}")
    return forms


def run_pseudo_label(args: argparse.Namespace) -> int:
    forms = parse_forms(args.forms)
    if args.paraphrases < 0:
        raise ConfigError(f"--paraphrases must be >= 0, got {args.paraphrases}")
    check_model_args(args)
    require_dir(args.folder, "video folder")
    if args.vocab is not None and not args.vocab.exists():
        raise ConfigError(f"--vocab {args.vocab} does not exist")
    from vitr.backbones.registry import load_backbone
    from vitr.precision import resolve_precision, run_dtypes
    from vitr.pseudo.label import PseudoLabeler, pseudo_label_folder
    from vitr.pseudo.vocab import load_vocabulary

    device = device_from_args(args)
    weights, autocast = run_dtypes(resolve_precision(args.precision, device), device)
    vocabulary = load_vocabulary(args.vocab)
    backbone = load_backbone(args.model, pretrained=args.pretrained, weights=args.weights, precision=weights,
                             random_init=args.random_init, device=device)
    labeler = PseudoLabeler(
        backbone,
        vocabulary,
        template_mode=args.templates,
        aggregation=args.aggregate,
        forms=forms,
        temporal=not args.no_temporal,
        num_frames=args.tag_frames,
        paraphrases=args.paraphrases,
        changed=args.changed,
        autocast_precision=autocast,
    )
    report = pseudo_label_folder(labeler, args.folder, args.out, batch_size=args.batch_size, workers=args.workers)
    print(f"{args.out}: pseudo-texts for {report.written} videos; {len(report.failed)} skipped")
    for path, reason in sorted(report.failed.items()):
        print(f"  skipped {path}: {reason}")
    return 0
