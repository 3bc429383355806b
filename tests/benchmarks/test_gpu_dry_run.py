"""benchmarks/gpu.py is the one call a lent GPU gets: its dry run must work anywhere, so that call cannot fail on a
typo, and it must write the JSON and the Markdown table that docs/performance.md takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


@pytest.mark.slow
def test_the_gpu_benchmark_dry_run_writes_every_figure(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--device", "cpu", "--out", str(tmp_path)],
                          env=os.environ.copy(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["dry_run"] is True and report["device"] == "cpu"
    assert report["extraction"]["naive_videos_s"] > 0 and report["extraction"]["vitr_videos_s"] > 0
    gpu_decoding = report["extraction"]["vitr_torchcodec_videos_s"]  # a rate, or why torchcodec could not load
    assert gpu_decoding > 0 if isinstance(gpu_decoding, float) else gpu_decoding.startswith("not measured: ")
    assert report["encoder"]["images_s"] > 0 and report["encoder"]["gflops_per_image"] > 0
    assert 0 < report["serve"]["p50_ms"] <= report["serve"]["p99_ms"]
    assert report["training"]["cached features"] > 0 and report["training"]["end to end (pixels)"] > 0
    table = (tmp_path / "gpu.md").read_text()
    assert "text query through vitr serve, p50 ms" in table and "torchcodec decoding on cpu" in table
    assert "CPU capability" in table
