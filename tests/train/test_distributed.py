"""Two gloo processes under torchrun train exactly like one process on the same global batches."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.train.fakes import ddp_case_config, method_case, method_case_config, tiny_model, toy_pairs
from vitr.train.distributed import DistContext, gather_with_grad
from vitr.train.ps_scl import ps_scl_trainer
from vitr.train.trainer import Trainer


def test_single_process_gather_is_identity():
    x = torch.randn(3, 4, requires_grad=True)
    assert gather_with_grad(x, DistContext()) is x


def run_ddp(out: Path, method: str) -> dict:
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env["OMP_NUM_THREADS"] = "1"
    job = Path(__file__).with_name("ddp_job.py")
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(job), str(out), method],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "history.json").read_text())
    assert report["world_size"] == 2
    return report


def test_two_process_ddp_matches_single_process(tmp_path):
    model = tiny_model()
    single = Trainer(model, ddp_case_config(tmp_path / "single"), toy_pairs(tmp_path / "cache")).fit()
    report = run_ddp(tmp_path / "ddp", "supervised")
    assert len(report["history"]) == len(single) == 6
    assert torch.allclose(torch.tensor(report["history"]), torch.tensor(single), atol=1e-5)
    ddp_weights = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    for name, value in model.state_dict().items():
        assert torch.allclose(ddp_weights[name], value, atol=1e-5), name
    assert not torch.equal(ddp_weights["head.proj.weight"], tiny_model().state_dict()["head.proj.weight"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ps_scl", "teachtext"])
def test_two_process_ddp_matches_single_process_for_ps_scl_and_teachtext(tmp_path, method):
    """PS-SCL: the mixture fit and SeLeCT see the gathered batch, so both ranks keep the pairs one process keeps."""
    model = tiny_model()
    data, terms = method_case(tmp_path / "cache", method)
    config = method_case_config(tmp_path / "single", method)
    if method == "ps_scl":
        trainer = ps_scl_trainer(model, data, config)
    else:
        trainer = Trainer(model, config, data, extra_losses=terms)
    single = trainer.fit()
    report = run_ddp(tmp_path / "ddp", method)
    assert len(report["history"]) == len(single) > 0
    assert torch.allclose(torch.tensor(report["history"]), torch.tensor(single), atol=1e-5)
    if method == "ps_scl":
        assert report["kept"] == pytest.approx(trainer.selection.kept, abs=1e-6)
        assert min(report["kept"]) < 1.0  # the mixture dropped some pairs: selection was exercised
    ddp_weights = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    for name, value in model.state_dict().items():
        assert torch.allclose(ddp_weights[name], value, atol=1e-5), name
