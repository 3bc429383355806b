"""Every command block of the README's quick start runs as written, from a folder that is not the checkout and
holds the tiny lab as `lab/`, with `vitr` reached the way the README says (`.venv/bin`, activated)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def quick_start_blocks(text: str) -> list[str]:
    """The ```bash blocks between the `## Quick start` heading and the next `## ` heading."""
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_serve(line: str, cwd: Path, env: dict[str, str]) -> None:
    """`vitr serve` runs until stopped: start it on a free port, load the page and the API, then stop it."""
    port = free_port()
    server = subprocess.Popen(["bash", "-c", f"source .venv/bin/activate && exec {line} --port {port}"],
                              cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.time() < deadline, "vitr serve did not answer in 180 s"
                time.sleep(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200 and "<html" in r.read().decode().lower()
        query = urllib.parse.urlencode({"q": "a red circle", "k": 3})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/search?{query}", timeout=60) as r:
            assert r.status == 200
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_the_readme_has_quick_start_blocks():
    blocks = quick_start_blocks(README.read_text())
    assert len(blocks) >= 3 and any("vitr search" in b for b in blocks) and any("vitr serve" in b for b in blocks)


@pytest.mark.slow
def test_every_quick_start_block_runs_from_outside_the_checkout(tiny_lab: Path):
    here = tiny_lab.parent  # holds lab/, like the checkout after command 1, but is not the checkout
    bin_dir = here / ".venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "vitr").write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m vitr \"$@\"\n")
    (bin_dir / "vitr").chmod(0o755)
    (bin_dir / "activate").write_text(f"export PATH={shlex.quote(str(bin_dir))}:\"$PATH\"\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for block in quick_start_blocks(README.read_text()):
        lines = [line for line in block.splitlines() if line.strip()]
        serve = [line.split("#")[0].strip() for line in lines if line.startswith("vitr serve")]
        script = "\n".join(line for line in lines if not line.startswith("vitr serve"))
        if script.strip():
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", "source .venv/bin/activate\n" + script],
                                  cwd=here, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{block}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        for line in serve:
            check_serve(line, here, env)
