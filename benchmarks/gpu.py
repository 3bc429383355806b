"""The GPU figures in one short run: extraction, the frame encoder against the card's bf16 peak, text-query
latency through `vitr serve`, and training steps/s with autocast.

    python benchmarks/gpu.py                    # on a GPU machine: ViT-B-32 (seeded random weights), ~6 minutes
    python benchmarks/gpu.py --dry-run          # the same code on this machine's device with a tiny model, seconds
    python benchmarks/gpu.py --out DIR          # where gpu.json and gpu.md go (default benchmarks/out)

Every row runs through vitr's own code paths on the device `--device` resolves to (`auto`: the GPU when torch sees
one), with the inference plan `vitr.inference.plan.plan_inference` chooses there:

extraction   naive: one video at a time, PyAV decodes every frame, 12 uniform frames are encoded in fp32 on the
             device; vitr: `extract_features` with the plan's autocast, video batch and decode threads, decoding
             on the CPU with PyAV (the reference decoder), then again with torchcodec decoding on the device
             (NVDEC on a GPU); where torchcodec cannot load, the row says why.
encoder      images/s of the visual tower alone at the plan's precision, and the FLOP rate that implies against
             the card's dense bf16 peak (a table of known cards; unknown cards leave the share empty).
serve        p50/p99 of `GET /api/search` against a `vitr serve --device DEVICE` process on 127.0.0.1.
training     vitr's Trainer with autocast (bf16 on a GPU): on cached frame features (freeze=visual) and end to
             end on pixels (freeze=none), steps/s after a warm-up step.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import Stopwatch, ensure_videos, machine_line, markdown_table
from train_cached import timed_run

from vitr.backbones import load_backbone, save_backbone
from vitr.data.types import Caption, RetrievalDataset, VideoItem
from vitr.inference.extract import encode_pixels, extract_features, frame_spec_for, open_cache
from vitr.inference.plan import configure_threads, plan_inference
from vitr.model.factory import ModelSpec, build_model
from vitr.precision import resolve_device, resolve_precision
from vitr.train.config import TrainConfig
from vitr.train.datasets import CachedPairDataset, PixelPairDataset, caption_tokenizer

NUM_FRAMES = 12
# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, by a substring of the device name.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
                    "L40S": 362.0, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.0}
FULL = {"model": "ViT-B-32", "videos": 64, "seconds": 10.0, "width": 320, "height": 240, "encoder_batch": 256,
        "encoder_iters": 20, "queries": 200, "train_batch": 128, "pixel_batch": 32, "train_steps": 20}
DRY = {"model": "vitr-lab-tiny", "videos": 2, "seconds": 1.0, "width": 96, "height": 64, "encoder_batch": 4,
       "encoder_iters": 1, "queries": 5, "train_batch": 2, "pixel_batch": 2, "train_steps": 1}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def naive_extraction(model_dir: str, paths: list[Path], device: torch.device) -> float:
    """Videos/s of the reference pipeline: decode all frames, keep 12, encode in fp32, one video at a time."""
    import av

    from vitr.video.transforms import preprocess_frames

    backbone = load_backbone(model_dir, device=str(device))
    size, mean, std = backbone.image_size, backbone.image_mean, backbone.image_std
    with torch.inference_mode():
        backbone.encode_image(torch.zeros(NUM_FRAMES, 3, size, size, device=device))
        synchronize(device)
        with Stopwatch() as clock:
            for path in paths:
                with av.open(str(path)) as container:
                    frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
                keep = np.linspace(0, len(frames) - 1, NUM_FRAMES).astype(int)
                pixels = preprocess_frames(frames[keep], size, mean, std).to(device)
                backbone.encode_image(pixels).float().cpu()
            synchronize(device)
    return len(paths) / clock.seconds


def vitr_extraction(
    model_dir: str, paths: list[Path], device: torch.device, decoder: str = "pyav"
) -> tuple[float, dict[str, Any]]:
    """Videos/s of `extract_features` under the device's inference plan; PyAV decodes on the CPU, torchcodec on
    the device."""
    plan = plan_inference(device, "auto")
    backbone = load_backbone(model_dir, device=str(device), precision=plan.weights_precision)
    spec = frame_spec_for(backbone, NUM_FRAMES, decoder=decoder, decode_device=str(device))
    encode_pixels(backbone, torch.zeros(plan.batch_videos, NUM_FRAMES, 3, spec.size, spec.size),
                  plan.autocast_precision)  # warm-up
    items = [VideoItem(f"v{i}", str(p)) for i, p in enumerate(paths)]
    with tempfile.TemporaryDirectory() as cache_dir, Stopwatch() as clock:
        cache = open_cache(cache_dir, backbone, spec)
        result = extract_features(backbone, items, cache, spec, batch_size=plan.batch_videos,
                                  workers=plan.decode_workers, precision=plan.autocast_precision, progress=False)
        synchronize(device)
    if result.failures:
        raise RuntimeError(f"benchmark videos failed to decode: {result.failures}")
    return len(paths) / clock.seconds, {"batch_videos": plan.batch_videos, "decode_workers": plan.decode_workers,
                                        "weights": plan.weights_precision, "autocast": plan.autocast_precision}


def gpu_decoding_extraction(model_dir: str, paths: list[Path], device: torch.device) -> float | str:
    """Videos/s of vitr's extraction with torchcodec decoding on the device, or why it could not run."""
    from vitr.errors import ConfigError
    from vitr.video.decode import torchcodec_decoder

    try:
        torchcodec_decoder()
    except ConfigError as exc:
        return f"not measured: {exc}"
    return vitr_extraction(model_dir, paths, device, decoder="torchcodec")[0]


def encoder_rate(model_dir: str, device: torch.device, batch: int, iters: int) -> dict[str, Any]:
    """Images/s of the visual tower at the plan's precision, and the achieved TFLOP/s."""
    from torch.utils.flop_counter import FlopCounterMode

    plan = plan_inference(device, "auto")
    backbone = load_backbone(model_dir, device=str(device), precision=plan.weights_precision)
    size = backbone.image_size
    pixels = torch.randn(batch, 1, 3, size, size)
    with FlopCounterMode(display=False) as counter:
        encode_pixels(backbone, pixels[:1], plan.autocast_precision)
    flops_per_image = counter.get_total_flops()
    for _ in range(2):
        encode_pixels(backbone, pixels, plan.autocast_precision)
    synchronize(device)
    with Stopwatch() as clock:
        for _ in range(iters):
            encode_pixels(backbone, pixels, plan.autocast_precision)
        synchronize(device)
    images_s = batch * iters / clock.seconds
    tflops = images_s * flops_per_image / 1e12
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    return {"images_s": images_s, "gflops_per_image": flops_per_image / 1e9, "tflops": tflops,
            "peak_tflops": peak, "share_of_peak": None if peak is None else tflops / peak,
            "precision": plan.autocast_precision if device.type == "cuda" else plan.weights_precision}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_latency(model_dir: str, video_dir: Path, work: Path, device: torch.device, queries: int) -> dict[str, Any]:
    """p50/p99 ms of text searches against a `vitr serve` process on 127.0.0.1 (index built on the device)."""
    import httpx

    from vitr.index.indexer import update_index
    from vitr.index.video_index import VideoIndex

    spec = ModelSpec(backbone=model_dir, precision=resolve_precision("auto", device))
    index = VideoIndex.create(work / "index", spec, device=str(device))
    update_index(index, video_dir, progress=False)
    index.close()
    port = free_port()
    cmd = [sys.executable, "-m", "vitr", "serve", "--index", str(work / "index"), "--host", "127.0.0.1",
           "--port", str(port), "--device", str(device)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.time() + 120
            while True:
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"vitr serve did not start: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
            words = ["a red circle", "a blue square moves", "a green triangle grows", "shapes on a background"]
            client.get("/api/search", params={"q": words[0], "k": 10}).raise_for_status()  # warm-up
            times = []
            for i in range(queries):
                start = time.perf_counter()
                client.get("/api/search", params={"q": f"{words[i % len(words)]} {i}", "k": 10}).raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
    finally:
        server.kill()
        server.wait()
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "queries": queries}


def training_rates(model_dir: str, paths: list[Path], work: Path, device: torch.device,
                   scale: dict[str, Any]) -> dict[str, float]:
    """Steps/s of vitr's Trainer with autocast, on cached features and end to end on pixels."""
    precision = "bf16" if device.type == "cuda" else "fp32"
    videos = [VideoItem(f"video{i}", str(p)) for i, p in enumerate(paths)]
    per_video = max(2, -(-(scale["train_steps"] + 1) * scale["train_batch"] // len(videos)))
    captions = [Caption(v.video_id, f"clip {i}, caption {j}") for i, v in enumerate(videos) for j in range(per_video)]
    dataset = RetrievalDataset("bench", "train", videos, captions)
    spec = ModelSpec(backbone=model_dir, head="meanP", num_frames=NUM_FRAMES)
    model = build_model(spec, device)
    frames = frame_spec_for(model.backbone, NUM_FRAMES)
    tokenize = caption_tokenizer(model.backbone, 32)
    cache = open_cache(work / "train-cache", model.backbone, frames)
    keys = extract_features(model.backbone, videos, cache, frames, progress=False).keys
    rates = {}
    runs = {"cached features": (CachedPairDataset(dataset, cache, keys, tokenize), "visual", scale["train_batch"]),
            "end to end (pixels)": (PixelPairDataset(dataset, frames, tokenize), "none", scale["pixel_batch"])}
    for name, (data, freeze, batch) in runs.items():
        model = build_model(spec, device)
        config = TrainConfig(model=spec, freeze=freeze, batch_size=batch, epochs=1, precision=precision,
                             output_dir=str(work / name.split()[0]), resume=False, device=str(device),
                             progress=False, tensorboard=False)
        rates[name] = 1 / timed_run(model, data, config, scale["train_steps"])
    return {"precision": precision, **rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="a tiny model and a few short videos, in seconds")
    parser.add_argument("--device", default="auto", help="auto (the GPU when there is one), cpu, cuda or cuda:N")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()

    scale = DRY if args.dry_run else FULL
    device = resolve_device(args.device)
    configure_threads()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine_line(), "device": str(device), "dry_run": args.dry_run,
                              "model": scale["model"],
                              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video_dir = work / "videos"
        paths = ensure_videos(video_dir, scale["videos"], scale["seconds"], 25.0, scale["width"], scale["height"])
        torch.manual_seed(0)
        model_dir = str(save_backbone(load_backbone(scale["model"], random_init=True), work / "model"))
        steps = [
            ("extraction", lambda: {"naive_videos_s": naive_extraction(model_dir, paths, device),
                                    **dict(zip(("vitr_videos_s", "plan"),
                                               vitr_extraction(model_dir, paths, device), strict=True)),
                                    "vitr_torchcodec_videos_s": gpu_decoding_extraction(model_dir, paths, device)}),
            ("encoder", lambda: encoder_rate(model_dir, device, scale["encoder_batch"], scale["encoder_iters"])),
            ("serve", lambda: serve_latency(model_dir, video_dir, work, device, scale["queries"])),
            ("training", lambda: training_rates(model_dir, paths, work, device, scale)),
        ]
        for name, step in steps:
            start = time.perf_counter()
            report[name] = step()
            report[name]["seconds"] = round(time.perf_counter() - start, 1)
            print(f"{name}: {json.dumps(report[name])}", flush=True)
    (args.out / "gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "gpu.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict[str, Any]) -> str:
    ext, enc, srv, trn = (report[k] for k in ("extraction", "encoder", "serve", "training"))
    share = "" if enc["share_of_peak"] is None else f"{100 * enc['share_of_peak']:.1f} % of {enc['peak_tflops']:.0f}"
    rows = [
        ["extraction, naive fp32 (videos/s)", ext["naive_videos_s"]],
        [f"extraction, vitr, PyAV decoding (videos/s; {ext['plan']['autocast']} autocast, "
         f"{ext['plan']['batch_videos']} videos a batch, {ext['plan']['decode_workers']} decode threads)",
         ext["vitr_videos_s"]],
        [f"extraction, vitr, torchcodec decoding on {report['device']} (videos/s; NVDEC on a GPU)",
         ext["vitr_torchcodec_videos_s"]],
        [f"encoder images/s ({enc['precision']})", enc["images_s"]],
        [f"encoder TFLOP/s ({enc['gflops_per_image']:.2f} GFLOP an image; share of dense bf16 peak)",
         f"{enc['tflops']:.1f} {share}".strip()],
        ["text query through vitr serve, p50 ms", srv["p50_ms"]],
        ["text query through vitr serve, p99 ms", srv["p99_ms"]],
        [f"training steps/s, cached features ({trn['precision']} autocast)", trn["cached features"]],
        [f"training steps/s, end to end on pixels ({trn['precision']} autocast)", trn["end to end (pixels)"]],
    ]
    head = (f"`python benchmarks/gpu.py{' --dry-run' if report['dry_run'] else ''}` on {report['device_name']} "
            f"({report['device']}), {report['model']} with seeded random weights; {report['machine']}.")
    return head + "\n\n" + markdown_table(["what", "value"], rows) + "\n"


if __name__ == "__main__":
    main()
