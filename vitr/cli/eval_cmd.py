"""`vitr eval`: R@1/5/10, MdR, MnR in both directions on a standard dataset or a CSV/JSONL of your own."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vitr.cli.choices import DATASETS, PROTOCOLS, SAMPLERS
from vitr.cli.model_args import add_model_args, check_model_args, device_from_args, model_spec_from_args
from vitr.cli.validate import require_dir
from vitr.errors import ConfigError

MAX_WORDS = 32  # CLIP4Clip / CLIP2Video `--max_words` for MSR-VTT, MSVD, VATEX
PARAGRAPH_MAX_WORDS = 64  # their setting for paragraph-to-video retrieval (DiDeMo, ActivityNet)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate retrieval on a dataset split")
    p.add_argument("--dataset", required=True, choices=[*DATASETS, "generic"])
    p.add_argument("--root", type=Path, required=True, help="annotation folder (or CSV/JSONL file for generic)")
    p.add_argument("--videos", type=Path, default=None, help="video folder (default ROOT/videos)")
    p.add_argument("--split", default="test")
    p.add_argument("--protocol", default="clip4clip", choices=PROTOCOLS)
    p.add_argument("--tags", default="", help="comma-separated caption tags to report separately")
    p.add_argument("--cache", type=Path, default=Path(".vitr-cache"), help="frame-feature cache directory")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--max-words",
        type=int,
        default=None,
        help="caption length in tokens, start and end included (default: the official protocol's, "
        f"{MAX_WORDS} or {PARAGRAPH_MAX_WORDS} for paragraph datasets; 0: the model's full context)",
    )
    p.add_argument(
        "--sampler",
        default="uniform",
        choices=SAMPLERS,
        help="frames per video: uniform (default), CLIP4Clip's 1 fps, or CLIP2Video's 5 fps JPEGs decimated",
    )
    p.add_argument(
        "--feature-framerate",
        type=int,
        default=None,
        help="c2v_jpeg5fps decimation (CLIP2Video --feature_framerate; default 2 for MSR-VTT, else 1)",
    )
    p.add_argument("--json-out", type=Path, default=None, help="write the results as JSON here")
    add_model_args(p)
    p.set_defaults(func=run_eval)


def caption_length(requested: int | None, paragraph: bool) -> int | None:
    """Tokens per caption: CLIP4Clip/CLIP2Video evaluate with max_words 32, and 64 for paragraph datasets
    (DiDeMo, ActivityNet); 0 means the model's own context (77 for OpenAI CLIP)."""
    if requested is None:
        return PARAGRAPH_MAX_WORDS if paragraph else MAX_WORDS
    if requested < 0 or requested == 1:
        raise ConfigError(f"--max-words must be 0 (the model's context) or at least 2, got {requested}")
    return requested or None


def check_paths(root: Path, videos: Path | None) -> None:
    """The annotation folder (or file) and the video folder a dataset command reads must exist."""
    if not root.exists():
        raise ConfigError(f"--root {root} does not exist")
    if videos is not None:
        require_dir(videos, "--videos")


def run_eval(args: argparse.Namespace) -> int:
    check_model_args(args)
    caption_length(args.max_words, False)  # a bad --max-words is refused before anything loads
    check_paths(args.root, args.videos)
    from vitr.data.readers import load_dataset
    from vitr.files import atomic_write
    from vitr.inference.evaluate import embed_dataset, evaluate_embeddings
    from vitr.model.factory import build_model
    from vitr.precision import run_dtypes

    device = device_from_args(args)
    spec = model_spec_from_args(args, device)
    dataset = load_dataset(args.dataset, args.root, args.split, args.videos, check_files=True)
    model = build_model(spec, device)
    max_words = caption_length(args.max_words, dataset.paragraph)
    emb = embed_dataset(model, dataset, args.cache, num_frames=spec.num_frames, workers=args.workers,
                        precision=run_dtypes(spec.precision, device)[1], max_words=max_words, sampler=args.sampler,
                        feature_framerate=args.feature_framerate or (2 if args.dataset == "msrvtt" else 1))
    tags = tuple(t for t in args.tags.split(",") if t)
    results = evaluate_embeddings(emb, tags=tags, protocol=args.protocol)
    for name, result in results.items():
        words = f"captions cut at {max_words} tokens" if max_words else "captions at the model's full context"
        print(result.to_markdown(f"{args.dataset}/{args.split} [{name}], head {spec.head}, {words}"))
        print()
    if emb.failures:
        print(f"{len(emb.failures)} videos could not be decoded and were left out")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"model": spec.to_dict(), "dataset": args.dataset, "split": args.split, "max_words": max_words,
                   "sampler": args.sampler,
                   "failures": emb.failures, "results": {k: r.to_dict() for k, r in results.items()}}
        atomic_write(args.json_out, json.dumps(payload, indent=2))
    return 0
