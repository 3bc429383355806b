"""PyAV against torchcodec on the same frames: how far apart their pixels are, and how fast each decodes.

Both decoders sample the same 12 uniform frames of each generated video (`vitr.video.sample_frames`, PyAV reads
the header for both); the script checks that they return the frames shown at the same times, then compares the
RGB frames and the model input made from them. torchcodec decodes on `--device` (NVDEC on a GPU). Writes the
`decoders` section of docs/performance.md.

    python benchmarks/decoders.py                  # 16 videos of 10 s, 320x240 at 25 fps, on the CPU
    python benchmarks/decoders.py --device cuda    # torchcodec on NVDEC
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import Stopwatch, ensure_videos, machine_line, markdown_table, write_doc_section

from vitr.video import preprocess_frames, sample_frames
from vitr.video.decode import torchcodec_decoder

NUM_FRAMES = 12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of the generated videos")
    parser.add_argument("--device", default="cpu", help="where torchcodec decodes: cpu, cuda or cuda:N")
    parser.add_argument("--video-dir", type=Path, default=Path(tempfile.gettempdir()) / "vitr-bench-videos")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/performance.md alone")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    torchcodec_decoder()  # a clear error here rather than a failure per video
    machine = machine_line()
    paths = ensure_videos(args.video_dir, args.videos, args.seconds, 25.0, width, height)
    clocks = {"pyav": Stopwatch(), "torchcodec": Stopwatch()}
    rgb_diff, input_diff, same_time = [], [], []
    for path in paths:
        clips = {}
        for decoder, clock in clocks.items():
            with clock:
                clips[decoder] = sample_frames(path, NUM_FRAMES, decoder=decoder, decode_device=args.device)
        reference, other = clips["pyav"], clips["torchcodec"]
        same_time.append(np.allclose(reference.timestamps, other.timestamps, atol=1e-6))
        rgb_diff.append(np.abs(reference.frames.astype(np.int16) - other.frames.astype(np.int16)))
        inputs = [preprocess_frames(c.frames) for c in (reference, other)]  # CLIP's 224 crop, normalised
        input_diff.append((inputs[0] - inputs[1]).abs().numpy())
    rgb = np.concatenate([d.ravel() for d in rgb_diff])
    model_input = np.concatenate([d.ravel() for d in input_diff])
    mse = float(np.mean(rgb.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    n = len(paths)
    rows = [
        ["frames at the same times", f"{sum(same_time)} of {n} videos"],
        ["RGB mean absolute difference (0-255)", float(rgb.mean())],
        ["RGB largest absolute difference", int(rgb.max())],
        ["RGB values that differ", f"{100 * float((rgb > 0).mean()):.1f} %"],
        ["RGB values off by more than 2", f"{100 * float((rgb > 2).mean()):.2f} %"],
        ["PSNR of torchcodec against PyAV (dB)", psnr],
        ["model input mean absolute difference (normalised units)", float(model_input.mean())],
        ["model input largest absolute difference", float(model_input.max())],
        ["PyAV decode ms/video (12 frames)", clocks["pyav"].seconds / n * 1000],
        [f"torchcodec decode ms/video on {torch.device(args.device)}", clocks["torchcodec"].seconds / n * 1000],
    ]
    import torchcodec

    body = "\n\n".join(
        [
            f"Measured by `python benchmarks/decoders.py --videos {args.videos} --seconds {args.seconds:g} --size "
            f"{args.size} --device {args.device}` on {machine}, load average {os.getloadavg()[0]:.1f} at the end; "
            f"torchcodec {torchcodec.__version__}, {n} generated H.264 videos, {NUM_FRAMES} uniform frames each.",
            markdown_table(["what", "value"], rows),
        ]
    )
    print(body)
    if not args.no_doc:
        write_doc_section(f"decoders-{torch.device(args.device).type}", body)


if __name__ == "__main__":
    main()
