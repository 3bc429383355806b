"""Load test of `vitr serve`: start it on 127.0.0.1, send concurrent searches for a fixed time, report
throughput, p50/p99 latency and errors, and write the numbers into docs/deploy.md's results table.

    python benchmarks/load_test.py --index vitr-index --seconds 20 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

QUERIES = [
    "a red square",
    "someone walking a dog",
    "a car at night",
    "people dancing",
    "a bird in the sky",
    "cooking in a kitchen",
    "a goal in a football match",
    "waves on a beach",
]
DEPLOY_DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
# `vitr serve` exactly, through the subcommand's own parser
SERVE = (
    "import argparse, sys; from vitr.cli import serve_cmd; p = argparse.ArgumentParser(); "
    "serve_cmd.register(p.add_subparsers()); a = p.parse_args(); sys.exit(a.func(a))"
)
TABLE_START, TABLE_END = "<!-- load-test:start -->", "<!-- load-test:end -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-c", SERVE, "serve", "--index", str(index), "--port", str(port)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("the server did not become healthy within 120 s")


async def run_load(base: str, seconds: float, concurrency: int, k: int) -> tuple[list[float], int]:
    """Each worker sends searches back to back until the time is up; returns latencies (s) and error count."""
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        i = n
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                r = await client.get("/api/search", params={"q": QUERIES[i % len(QUERIES)], "k": k})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
            i += concurrency

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await asyncio.gather(*(worker(n, client) for n in range(concurrency)))
    return latencies, errors


def write_table(row: str) -> None:
    """Append `row` to the table between the load-test markers of docs/deploy.md."""
    text = DEPLOY_DOC.read_text()
    pattern = re.compile(re.escape(TABLE_START) + r"\n(.*?)" + re.escape(TABLE_END), re.S)
    match = pattern.search(text)
    if match is None:
        raise SystemExit(f"{DEPLOY_DOC} has no {TABLE_START} ... {TABLE_END} block")
    DEPLOY_DOC.write_text(text[: match.end(1)] + row + "\n" + text[match.end(1) :])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/deploy.md alone")
    args = p.parse_args()

    port = free_port()
    server = start_server(args.index, port)
    try:
        stats = httpx.get(f"http://127.0.0.1:{port}/api/stats").json()
        latencies, errors = asyncio.run(run_load(f"http://127.0.0.1:{port}", args.seconds, args.concurrency, args.k))
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = np.asarray(latencies) * 1000
    p50, p99 = np.percentile(ms, [50, 99]) if len(ms) else (float("nan"), float("nan"))
    throughput = len(latencies) / args.seconds
    print(
        f"{len(latencies)} ok, {errors} errors in {args.seconds:g} s: {throughput:.1f} req/s, "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    row = (
        f"| {time.strftime('%Y-%m-%d')} | {platform.processor() or platform.machine()} | "
        f"{stats['model']['backbone']} | {stats['videos']} / {stats['segments']} | {stats['store']} | "
        f"{args.concurrency} | {throughput:.1f} | {p50:.1f} | {p99:.1f} | {errors} |"
    )
    if not args.no_write:
        write_table(row)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
