"""scripts/setup.sh installs once, and again only when pyproject.toml changes (the install is editable)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A stand-in for .venv/bin/python: records `-m pip` calls instead of installing, runs anything else for real.
FAKE_PYTHON = f"""#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$@" >> "$(dirname "$0")/pip-calls"; exit 0; fi
exec {sys.executable} "$@"
"""


def test_setup_reinstalls_only_when_pyproject_changes(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", FAKE_PYTHON), ("vitr", "#!/bin/sh\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)

    def setup() -> str:
        done = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, env=os.environ.copy(), check=True,
                              capture_output=True, text=True, timeout=60)
        return done.stdout

    def installs() -> int:
        calls = bin_dir / "pip-calls"
        return len(calls.read_text().splitlines()) if calls.exists() else 0

    setup()
    assert installs() == 1
    assert "nothing changed" in setup() and installs() == 1
    with (tmp_path / "pyproject.toml").open("a") as f:
        f.write("\n# a new pin\n")
    setup()
    assert installs() == 2 and "-e .[dev,teachers,vectordb,text]" in (bin_dir / "pip-calls").read_text()
