"""Shared pieces of the benchmarks: generated test videos, isolated measurement runs, tables, the docs page.

Every configuration runs in a fresh spawned process, so its peak memory (ru_maxrss) and thread settings are
its own and one run's warm caches never flatter the next.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import re
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vitr.lab.world import Scene, SceneMix, sample_scene, write_scenes

REPO_ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE_DOC = REPO_ROOT / "docs" / "performance.md"
RESULTS_DOC = REPO_ROOT / "docs" / "results.md"


def bench_scene(index: int) -> Scene:
    """Video `index` of the benchmark set: a lab scene (vitr.lab.world) in which something always happens, often to
    one of two objects; light pixel noise keeps the encoder and decoder honest (no flat frames)."""
    return sample_scene(np.random.default_rng(index), SceneMix(temporal_share=1.0, two_object_share=0.5))


def ensure_videos(directory: Path, count: int, seconds: float, fps: float, width: int, height: int) -> list[Path]:
    """Write the benchmark videos once (the lab's generator, vitr's mp4 writer: H.264, crf 18); existing files are
    reused."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = directory / f"scene_{width}x{height}_{seconds:g}s_{fps:g}fps_{i:03d}.mp4"
        if not path.exists():
            write_scenes(path, bench_scene(i), round(seconds * fps), fps, (height, width))
        paths.append(path)
    return paths


def run_isolated(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """fn(*args) in a fresh spawned process; returns its result with `peak_rss_mb` of that process added."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_measured, (fn, *args))


def _measured(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    result = fn(*args)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Stopwatch:
    """Accumulates wall time over `with` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._start


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    """What the numbers were measured on, including how busy the machine was."""
    import torch

    load = os.getloadavg()[0]
    return (
        f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, torch {torch.__version__}, load average {load:.1f} at the start"
    )


def write_doc_section(name: str, body: str, path: Path = PERFORMANCE_DOC) -> None:
    """Replace the text between `<!-- BEGIN name -->` and `<!-- END name -->` in docs/performance.md."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    text = path.read_text() if path.exists() else "# Performance\n"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + f"\n\n{block}\n"
    path.write_text(text)


def write_results_section(heading: str, body: str, path: Path = RESULTS_DOC) -> None:
    """Replace only the section `heading` ("## Name", up to the next "## " heading) of docs/results.md."""
    text = path.read_text() if path.exists() else "# Results\n"
    block = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: block + "\n", text) if pattern.search(text) else text.rstrip() + f"\n\n{block}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
