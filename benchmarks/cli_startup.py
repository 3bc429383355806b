"""How fast `vitr` answers before any work: `vitr --help`, `vitr search --help` and an argument error.

Each is a fresh `python -m vitr` process timed by wall clock, median of --runs. Parsing imports no torch
(tests/cli/test_fast_cli.py checks that); the CPU line comes from torch in a separate process, so it is not counted.

    python benchmarks/cli_startup.py [--runs 7] [--doc]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {
    "vitr --help": ["--help"],
    "vitr search --help": ["search", "--help"],
    "vitr search -k 0 (argument error)": ["search", "a dog", "-k", "0"],
    "vitr search (no index: path error)": ["search", "a dog", "--index", "no-such-index"],
}


def wall_seconds(argv: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vitr", *argv], cwd=cwd, env=os.environ.copy(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def cpu_line() -> str:
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability(), torch.__version__)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    capability = done.stdout.strip() or "unknown"
    return (f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
            f"CPU capability / torch: {capability}, load average {os.getloadavg()[0]:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--doc", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as cwd:
        wall_seconds(["--help"], cwd)  # warm the file cache once
        for name, argv in CASES.items():
            times = [wall_seconds(argv, cwd) for _ in range(args.runs)]
            rows.append((name, statistics.median(times), min(times)))
    machine = cpu_line()
    lines = [f"`vitr` start-up, wall seconds (median and best of {args.runs} fresh processes); {machine}", "",
             "| command | median s | best s |", "|---|---|---|"]
    lines += [f"| `{name}` | {median:.2f} | {best:.2f} |" for name, median, best in rows]
    text = "\n".join(lines)
    print(text)
    if args.doc:
        from benchmarks.common import write_doc_section

        write_doc_section("cli-startup", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
