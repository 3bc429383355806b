"""Choose the lab's fine-tuning learning rates on held-out training videos, never on the test split.

The last `--holdout` labelled train videos (all their captions) become a validation split; meanP (text tower
only) and a temporal head are trained on the rest at each (head lr, text-tower lr) pair and scored there.

    python benchmarks/lab_lr_sweep.py --lab lab
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from common import write_results_section  # noqa: E402

from vitr.data.readers import load_dataset  # noqa: E402
from vitr.data.types import RetrievalDataset  # noqa: E402
from vitr.inference.evaluate import embed_dataset, evaluate_embeddings  # noqa: E402
from vitr.train.config import load_config  # noqa: E402
from vitr.train.pipeline import train, training_model  # noqa: E402


def split_holdout(dataset: RetrievalDataset, n: int) -> tuple[RetrievalDataset, RetrievalDataset]:
    held = {v.video_id for v in dataset.videos[-n:]}

    def part(keep: bool) -> RetrievalDataset:
        return RetrievalDataset(
            dataset.name,
            "holdout" if keep else "train-rest",
            [v for v in dataset.videos if (v.video_id in held) == keep],
            [c for c in dataset.captions if (c.video_id in held) == keep],
        )

    return part(False), part(True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lab", type=Path, default=REPO_ROOT / "lab")
    p.add_argument("--holdout", type=int, default=300)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--heads", nargs="+", default=["meanP", "tdb"])
    p.add_argument("--grid", nargs="+", default=["1e-4:1e-5", "1e-3:1e-4", "1e-3:3e-4"], help="head_lr:text_lr pairs")
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    cache_root = args.lab / "index" / "cache"
    full = load_dataset("msrvtt", args.lab / "annotations", "train9k", video_dir=args.lab / "videos")
    rest, holdout = split_holdout(full, args.holdout)
    lines = [
        "| head | lr (head) | lr (text tower) | held-out t2v R@1 | t2v R@5 | v2t R@1 | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for head in args.heads:
        for pair in args.grid:
            lr, text_lr = pair.split(":")
            config = load_config(
                REPO_ROOT / "configs" / "lab" / "supervised.yaml",
                [
                    f"model.backbone={args.lab / 'clip'}",
                    f"model.head={head}",
                    f"lr={lr}",
                    f"backbone_lr={text_lr}",
                    f"epochs={args.epochs}",
                    "progress=false",
                    "tensorboard=false",
                    "resume=false",
                    f"output_dir={REPO_ROOT / 'runs' / 'lab_lr_sweep' / f'{head}-{lr}-{text_lr}'}",
                ],
            )
            model = training_model(config)  # as `vitr train` builds it
            t0 = time.time()
            train(model, config, rest, cache_root)
            result = evaluate_embeddings(embed_dataset(model.eval(), holdout, cache_root, progress=False))["all"]
            lines.append(
                f"| {head} | {lr} | {text_lr} | {result.t2v['R1']:.1f} | {result.t2v['R5']:.1f} | "
                f"{result.v2t['R1']:.1f} | {time.time() - t0:.0f} |"
            )
            print(lines[-1], flush=True)
    body = "\n".join(
        [
            f"Learning rates chosen on the last {args.holdout} labelled train videos (all 5 captions each, "
            "multi-caption "
            f"protocol), trained on the other {len(rest.videos)} for {args.epochs} epochs; the test split is not used. "
            f"Produced by `python benchmarks/lab_lr_sweep.py {' '.join(sys.argv[1:] if argv is None else argv)}`.",
            "",
            *lines,
        ]
    )
    print(body)
    if not args.no_doc:
        write_results_section("## Learning rates for the lab", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
