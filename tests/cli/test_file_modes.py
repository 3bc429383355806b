"""Files vitr writes follow the user's umask: a model on a shared machine is readable by others under umask 022."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

WRITE_MODEL = """
import sys, torch
from vitr.backbones.weights import write_vitr_dir
write_vitr_dir(sys.argv[1], {"arch": "test"}, {"w": torch.zeros(2)})
"""


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_a_written_model_has_the_mode_the_umask_gives(tmp_path: Path, umask: int, mode: int) -> None:
    out = tmp_path / "model"
    subprocess.run([sys.executable, "-c", WRITE_MODEL, str(out)], env=os.environ.copy(), check=True, timeout=120,
                   preexec_fn=lambda: os.umask(umask))
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes == {"model.safetensors": mode, "config.json": mode}
