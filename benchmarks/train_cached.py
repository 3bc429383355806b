"""Training throughput on cached frame features against re-decoding every epoch.

Both runs use vitr's Trainer with the same backbone, head, batch and `freeze="visual"` (the frozen visual tower,
text tower at backbone_lr, head at lr). `cached` reads frame embeddings extracted once into the feature cache
(`CachedPairDataset`); `re-decode` decodes each drawn video and passes its pixels through the frozen visual
tower every time (what a pipeline without a cache does each epoch). Steps are timed from one step's end to the
next, so data loading is included and checkpoint writing is not. Writes the `training` section of
docs/performance.md.

    python benchmarks/train_cached.py                       # ViT-B-32, 16 videos, batch 8
    python benchmarks/train_cached.py --model vitr-lab-tiny --steps 10
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import ensure_videos, machine_line, markdown_table, write_doc_section
from torch.utils.data import Dataset

from vitr.backbones import load_backbone
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.heads.base import create_head
from vitr.inference.extract import encode_pixels, extract_features, frame_spec_for, open_cache
from vitr.inference.plan import configure_threads
from vitr.model.factory import ModelSpec
from vitr.model.retrieval import VideoTextModel
from vitr.train.config import TrainConfig
from vitr.train.datasets import CachedPairDataset, PixelPairDataset
from vitr.train.trainer import Trainer

NUM_FRAMES = 12


class ReencodedPairDataset(Dataset):
    """A PixelPairDataset whose pixels are turned into frame features (T, D) by the frozen visual tower."""

    def __init__(self, pixels: PixelPairDataset, model: VideoTextModel) -> None:
        self.pixels = pixels
        self.model = model
        self.video_of_sample = pixels.video_of_sample

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i: int) -> tuple:
        pixels, *rest = self.pixels[i]  # (T, 3, S, S), then mask, tokens, indices as PixelPairDataset gives them
        return (encode_pixels(self.model.backbone, pixels[None])[0], *rest)


class TimedTrainer(Trainer):
    """Records when each optimiser step (its data loading included) finished."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_ends: list[float] = []

    def _log(self, *args: Any) -> None:
        self.step_ends.append(time.perf_counter())
        super()._log(*args)


def timed_run(model: VideoTextModel, data: Dataset, config: TrainConfig, steps: int) -> float:
    """Seconds per step over `steps` steps after one warm-up step."""
    trainer = TimedTrainer(model, config, data)
    trainer.fit(until_step=steps + 1)
    ends = trainer.step_ends
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture (random weights)")
    parser.add_argument("--head", default="meanP")
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--video-dir", type=Path, default=Path(tempfile.gettempdir()) / "vitr-bench-videos")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()

    threads = configure_threads()
    machine = machine_line()
    paths = ensure_videos(args.video_dir, args.videos, 4.0, 25.0, 320, 240)
    videos = [VideoItem(f"video{i}", str(p)) for i, p in enumerate(paths)]
    per_video = max(2, math.ceil((args.steps + 1) * args.batch / args.videos))  # one epoch covers every step
    captions = [
        Caption(v.video_id, f"clip {i}, caption {j}: moving shapes")
        for i, v in enumerate(videos)
        for j in range(per_video)
    ]
    dataset = RetrievalDataset("bench", "train", videos, captions)
    torch.manual_seed(0)
    backbone = load_backbone(args.model, random_init=True)  # speed only: weights do not matter
    model = VideoTextModel(backbone, create_head(args.head, backbone.embed_dim, num_frames=NUM_FRAMES))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    spec = frame_spec_for(backbone, NUM_FRAMES)
    tokenize = lambda texts: backbone.tokenize(texts, context_length=32)  # noqa: E731  (CLIP4Clip's max_words)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = open_cache(Path(tmp) / "cache", backbone, spec)
        start = time.perf_counter()
        extracted = extract_features(backbone, videos, cache, spec, batch_size=8, workers=1, progress=False)
        extract_s = time.perf_counter() - start
        data = {
            "cached features": CachedPairDataset(dataset, cache, extracted.keys, tokenize),
            "re-decode + frozen visual tower": ReencodedPairDataset(PixelPairDataset(dataset, spec, tokenize), model),
        }
        for name, train_data in data.items():
            model.load_state_dict(initial)
            config = TrainConfig(
                model=ModelSpec(backbone=args.model, head=args.head, num_frames=NUM_FRAMES),
                freeze="visual",
                batch_size=args.batch,
                epochs=1,  # its end (and checkpoint) comes after the last timed step
                output_dir=str(Path(tmp) / name.split()[0]),
                resume=False,
                device="cpu",
                progress=False,
                tensorboard=False,
            )
            results[name] = timed_run(model, train_data, config, args.steps)
            print(f"{name}: {results[name]:.3f} s/step", flush=True)

    cached = results["cached features"]
    rows = [[name, 1 / s, args.batch / s, s / cached] for name, s in results.items()]
    body = "\n\n".join(
        [
            f"Measured by `python benchmarks/train_cached.py --model {args.model} --head {args.head} --videos "
            f"{args.videos} --batch {args.batch} --steps {args.steps}` on {machine}; {threads.intra_op} torch "
            f"threads, fp32, {NUM_FRAMES} frames of 4 s 320x240 videos, freeze=visual (the text tower trains).",
            markdown_table(["data", "steps/s", "samples/s", "time per step vs cached"], rows),
            f"Filling the cache once took {extract_s:.1f} s for {args.videos} videos "
            f"({args.videos / extract_s:.2f} videos/s); it pays for itself within the first epoch.",
        ]
    )
    print(body)
    if not args.no_doc:
        write_doc_section("training", body)


if __name__ == "__main__":
    main()
