"""Frame-feature extraction: vitr's fast path against the naive pipeline, on the same videos and weights.

naive      what the CLIP4Clip/CLIP2Video extraction scripts do: one video at a time, decode every frame to RGB,
           keep the 12 uniform frames, encode them in fp32; decoding and encoding take turns.
vitr fp32  `vitr.inference.extract.extract_features` (the `vitr extract` path, cache writes included): decoding in a
           thread ahead of the encoder, only the sampled frames converted, frames of several videos per batch.
vitr fast  the same with `vitr.inference.plan`'s CPU plan: bf16 weights, all cores for torch.

Quality: cosine between fast and fp32 frame embeddings, and a retrieval task built from the videos (query: the
mean of a video's even frames; gallery: the mean of its odd frames; 4 videos share each background) scored
with both. Writes the `extraction` section of docs/performance.md.

    python benchmarks/extraction.py                 # 32 videos of 10 s, 320x240 at 25 fps; ViT-B-32
    python benchmarks/extraction.py --videos 8 --model vitr-lab-tiny
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import (
    Stopwatch,
    current_rss_mb,
    ensure_videos,
    machine_line,
    markdown_table,
    run_isolated,
    write_doc_section,
)

NUM_FRAMES = 12
NAIVE = "naive (fp32, decode all, one video at a time)"
FAST = "vitr fast (the plan: precision, threads, batch, decode placement)"


def naive_worker(model_dir: str, paths: list[str]) -> dict[str, Any]:
    """Reference pipeline: PyAV decode of all frames, uniform 12, fp32 encode, one video after another."""
    import av

    from vitr.backbones import load_backbone
    from vitr.video.transforms import preprocess_frames

    backbone = load_backbone(model_dir)
    size, mean, std = backbone.image_size, backbone.image_mean, backbone.image_std
    with torch.inference_mode():
        backbone.encode_image(torch.zeros(NUM_FRAMES, 3, size, size))  # warm-up: oneDNN builds its kernels
    rss_loaded = current_rss_mb()
    decode, encode = Stopwatch(), Stopwatch()
    features = []
    for path in paths:
        with decode:
            with av.open(path) as container:
                frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
            keep = np.linspace(0, len(frames) - 1, NUM_FRAMES).astype(int)
            pixels = preprocess_frames(frames[keep], size, mean, std)
        with encode, torch.inference_mode():
            features.append(backbone.encode_image(pixels).float().numpy())
    return {
        "features": np.stack(features),
        "seconds": decode.seconds + encode.seconds,
        "decode_s": decode.seconds,
        "encode_s": encode.seconds,
        "rss_loaded_mb": rss_loaded,
        "threads": torch.get_num_threads(),
    }


def vitr_worker(model_dir: str, paths: list[str], precision: str, batch_videos: int | None) -> dict[str, Any]:
    """vitr's extraction into a fresh feature cache; also times decoding alone and encoding alone."""
    from vitr.data.types import VideoItem
    from vitr.inference.extract import encode_pixels, extract_features, frame_spec_for, open_cache
    from vitr.inference.plan import configure_threads, load_fast_backbone, plan_inference
    from vitr.video.loader import collate, iter_decoded

    threads = configure_threads()
    plan = plan_inference("cpu", precision)
    batch = batch_videos or plan.batch_videos
    backbone = load_fast_backbone(model_dir, plan=plan)
    spec = frame_spec_for(backbone, NUM_FRAMES)
    warm = torch.zeros(batch, NUM_FRAMES, 3, spec.size, spec.size)
    encode_pixels(backbone, warm, plan.autocast_precision)  # warm-up: oneDNN builds its kernels
    rss_loaded = current_rss_mb()
    items = [VideoItem(f"v{i}", p) for i, p in enumerate(paths)]
    with tempfile.TemporaryDirectory() as cache_dir, Stopwatch() as total:
        cache = open_cache(cache_dir, backbone, spec)
        result = extract_features(
            backbone,
            items,
            cache,
            spec,
            batch_size=batch,
            workers=plan.decode_workers,
            precision=plan.autocast_precision,
            progress=False,
        )
        features, _ = cache.stacked([result.keys[item.video_id] for item in items])  # (N, T, D)
    with Stopwatch() as decode:  # decoding alone, in one thread
        decoded = [d for d in iter_decoded([(str(i), p) for i, p in enumerate(paths)], spec, workers=0)]
    with Stopwatch() as encode:  # encoding alone, on already decoded frames
        for start in range(0, len(decoded), batch):
            pixels, _ = collate(decoded[start : start + batch])
            encode_pixels(backbone, pixels, plan.autocast_precision)
    return {
        "features": features.numpy(),
        "seconds": total.seconds,
        "decode_s": decode.seconds,
        "encode_s": encode.seconds,
        "rss_loaded_mb": rss_loaded,
        "threads": threads.intra_op,
        "precision": plan.weights_precision,
        "batch": batch,
        "decode_workers": plan.decode_workers,
    }


def plan_line(run: dict[str, Any]) -> str:
    """The fast run's plan in words: what `plan_inference("cpu", "auto")` chose on this machine."""
    decode = "in the encoder's thread" if run["decode_workers"] == 0 else f"{run['decode_workers']} thread(s) ahead"
    return (
        f"{run['precision']} weights, {run['threads']} torch thread(s), {run['batch']} video(s) a batch, "
        f"decoding {decode}"
    )


def median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median wall time among one configuration's rounds (its stage timings come with it)."""
    return sorted(results, key=lambda r: r["seconds"])[(len(results) - 1) // 2]


def video_vectors(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, D) frame features -> queries (mean of even frames), gallery (mean of odd frames), L2-normalised."""

    def unit(x: np.ndarray) -> np.ndarray:
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
        mean = x.mean(axis=1)
        return mean / np.linalg.norm(mean, axis=-1, keepdims=True)

    return unit(features[:, 0::2]), unit(features[:, 1::2])


def retrieval_quality(reference: np.ndarray, candidate: np.ndarray, k: int = 5) -> dict[str, float]:
    """R@1 of both feature sets on the even/odd retrieval task, and how much their top-k lists agree."""
    k = min(k, len(reference))
    rankings = []
    recalls = []
    for features in (reference, candidate):
        queries, gallery = video_vectors(features)
        scores = queries @ gallery.T  # (N, N)
        order = np.argsort(-scores, axis=1)
        rankings.append(order[:, :k])
        recalls.append(float((order[:, 0] == np.arange(len(order))).mean() * 100))
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(*rankings, strict=True)])
    ref = reference.reshape(-1, reference.shape[-1])
    cand = candidate.reshape(-1, candidate.shape[-1])
    cosine = (ref * cand).sum(-1) / (np.linalg.norm(ref, axis=-1) * np.linalg.norm(cand, axis=-1))
    return {
        "r1_ref": recalls[0],
        "r1": recalls[1],
        "topk_overlap": float(overlap) * 100,
        "cos_mean": float(cosine.mean()),
        "cos_min": float(cosine.min()),
    }


def lab_retrieval_quality(lab: Path, precision: str, k: int = 10) -> list[list[Any]]:
    """Text-to-video and video-to-text R@k of the trained lab CLIP (meanP) on the lab's 1,000 test videos, fp32
    against the fast path's weights: a real retrieval task, where a precision loss would move R@1."""
    from vitr.inference.evaluate import embed_dataset, evaluate_embeddings
    from vitr.lab.experiment import load_lab_test
    from vitr.model.factory import ModelSpec, build_model

    test = load_lab_test(lab)
    results, rankings = {}, {}
    with tempfile.TemporaryDirectory() as cache_dir:
        for name in ("fp32", precision):
            model = build_model(ModelSpec(backbone=str(lab / "clip"), head="meanP", precision=name))
            emb = embed_dataset(model, test, cache_dir, progress=False)
            results[name] = evaluate_embeddings(emb)["all"]
            scores = emb.text.astype(np.float32) @ emb.video.astype(np.float32).T  # (captions, videos)
            rankings[name] = np.argsort(-scores, axis=1)[:, :k]
    rows = []
    for name, r in results.items():
        overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(rankings["fp32"], rankings[name], strict=True)])
        rows.append(
            [
                f"lab CLIP, {name} weights",
                r.t2v["R1"],
                r.t2v["R5"],
                r.v2t["R1"],
                r.v2t["R5"],
                r.t2v["R1"] - results["fp32"].t2v["R1"],
                r.v2t["R1"] - results["fp32"].v2t["R1"],
                100 * overlap,
            ]
        )
    return rows


def shown_path(path: Path) -> str:
    """`path` relative to the repository when it lies inside it (docs never show this machine's layout)."""
    root = Path(__file__).resolve().parent.parent
    return str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)


def prepare_model(model: str, directory: Path) -> str:
    """A directory `load_backbone` reads: `model` itself if it is one, else the architecture with seeded random
    weights (the same compute as the pretrained model), saved once so every run encodes with the same weights."""
    if Path(model).is_dir():
        return model
    from vitr.backbones import load_backbone, save_backbone

    torch.manual_seed(0)
    save_backbone(load_backbone(model, random_init=True), directory)
    return str(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", default="ViT-B-32", help="open_clip architecture (random weights) or a saved backbone directory"
    )
    parser.add_argument("--videos", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the generated videos")
    parser.add_argument("--batch-videos", type=int, default=None, help="videos per encoder batch (default: plan)")
    parser.add_argument("--video-dir", type=Path, default=Path(tempfile.gettempdir()) / "vitr-bench-videos")
    parser.add_argument(
        "--lab",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "lab",
        help="a lab made by `vitr quickstart` (its trained CLIP scores the fast path on real retrieval); skipped "
        "when absent",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate the configurations this many times; report medians"
    )
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/performance.md alone")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    machine = machine_line()
    paths = [str(p) for p in ensure_videos(args.video_dir, args.videos, args.seconds, args.fps, width, height)]
    configs = {
        NAIVE: (naive_worker,),
        "vitr fp32 (prefetch, sampled frames, batched)": (vitr_worker, "fp32", args.batch_videos),
        FAST: (vitr_worker, "auto", args.batch_videos),
    }
    from vitr.inference.plan import plan_inference

    if plan_inference("cpu", "auto").weights_precision == "fp32":  # the fast path is the fp32 row: run it once
        del configs["vitr fp32 (prefetch, sampled frames, batched)"]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = prepare_model(args.model, Path(tmp) / "backbone")
        for r in range(args.rounds):  # configurations alternate, so a change in the machine's load hits them all
            for name, (worker, *extra) in configs.items():
                rounds[name].append(run_isolated(worker, model_dir, paths, *extra))
                print(f"round {r + 1}/{args.rounds} {name}: {rounds[name][-1]['seconds']:.1f} s, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    runs = {name: median_run(results) for name, results in rounds.items()}
    speedups = {
        name: float(np.median([n["seconds"] / r["seconds"] for n, r in zip(rounds[NAIVE], results, strict=True)]))
        for name, results in rounds.items()
    }
    naive, fast = runs[NAIVE], runs[FAST]
    n, frames = len(paths), len(paths) * NUM_FRAMES
    rows = []
    for name, r in runs.items():
        rows.append(
            [
                name,
                n / r["seconds"],
                frames / r["seconds"],
                speedups[name],
                r["decode_s"] / n * 1000,
                r["encode_s"] / n * 1000,
                r["rss_loaded_mb"],
                r["peak_rss_mb"],
                r["threads"],
            ]
        )
    header = [
        "pipeline",
        "videos/s",
        "frames/s",
        "speed-up",
        "decode ms/video",
        "encode ms/video",
        "RSS after load MB",
        "peak RSS MB",
        "torch threads",
    ]
    quality = {name: retrieval_quality(naive["features"], r["features"]) for name, r in runs.items()}
    quality_rows = [
        [
            name,
            f"{q['cos_mean']:.6f}",
            f"{q['cos_min']:.6f}",
            q["r1_ref"],
            q["r1"],
            q["r1"] - q["r1_ref"],
            q["topk_overlap"],
        ]
        for name, q in quality.items()
    ]
    quality_header = [
        "pipeline",
        "cosine mean",
        "cosine min",
        "R@1 fp32 naive",
        "R@1",
        "ΔR@1 (points)",
        "top-5 overlap %",
    ]
    bottleneck = "decoding" if fast["decode_s"] > fast["encode_s"] else "encoding"
    if (args.lab / "clip").is_dir():
        lab_header = ["model", "t2v R@1", "t2v R@5", "v2t R@1", "v2t R@5", "Δ t2v R@1", "Δ v2t R@1", "top-10 overlap %"]
        lab_part = [
            f"Retrieval with trained weights: the lab CLIP (`{shown_path(args.lab / 'clip')}`, meanP) on the lab's "
            "1,000 test videos and their captions, every video and caption embedded in fp32 and with the fast "
            f"path's weights ({fast['precision']}); Δ in R@1 points, overlap of each caption's top-10 videos "
            "with fp32's:",
            markdown_table(lab_header, lab_retrieval_quality(args.lab, fast["precision"])),
        ]
    else:
        lab_part = [f"(No lab at `{shown_path(args.lab)}`: the retrieval check with trained weights was skipped.)"]
    body = "\n\n".join(
        [
            f"Measured by `python benchmarks/extraction.py --videos {args.videos} --seconds {args.seconds:g} "
            f"--fps {args.fps:g} --size {args.size} --model {args.model} --rounds {args.rounds}` on {machine}, "
            f"load average {os.getloadavg()[0]:.1f} at the end. {n} videos, {NUM_FRAMES} uniform frames each; "
            f"the configurations ran in turn {args.rounds} time(s), each row is its median run and the speed-up "
            "the median of the per-round ratios. Decode and encode columns time each stage alone (decode in one "
            f"thread); the pipeline overlaps them. The plan here: {plan_line(fast)}.",
            markdown_table(header, rows),
            f"Fast path vs naive: **{speedups[FAST]:.2f}x** videos/s (per round: "
            + ", ".join(f"{n['seconds'] / r['seconds']:.2f}x" for n, r in zip(rounds[NAIVE], rounds[FAST], strict=True))
            + f"). In the fast path "
            f"{bottleneck} is the slower stage ({fast['decode_s'] / n * 1000:.0f} ms decode vs "
            f"{fast['encode_s'] / n * 1000:.0f} ms encode per video).",
            "Quality against the naive fp32 features (frame-embedding cosine; even-frames-to-odd-frames video "
            f"retrieval over the {n} videos):",
            markdown_table(quality_header, quality_rows),
            *lab_part,
        ]
    )
    print(body)
    if not args.no_doc:
        write_doc_section(f"extraction-{torch.backends.cpu.get_cpu_capability().lower()}", body)


if __name__ == "__main__":
    main()
