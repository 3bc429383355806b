"""PS-SCL and TeachText in the one trainer: what tests/train shows for supervised runs holds for them too.

Exact resume after a kill (weights, losses and SeLeCT's kept shares equal to the uninterrupted run: the epoch's
mixture fit and the RNG streams are in the checkpoint), and bf16 autocast. Two-process DDP is in
test_distributed.
"""

import pytest
import torch

from tests.train.fakes import method_case, method_case_config, tiny_model
from vitr.errors import ConfigError
from vitr.train.ps_scl import ps_scl_trainer
from vitr.train.trainer import Trainer


def _trainer(root, method, model, **overrides):
    data, terms = method_case(root / "cache", method)
    config = method_case_config(root / "run", method, **overrides)
    if method == "ps_scl":
        return ps_scl_trainer(model, data, config)
    return Trainer(model, config, data, extra_losses=terms)


@pytest.mark.parametrize(("method", "kill_after"), [("ps_scl", 3), ("ps_scl", 4), ("teachtext", 3)])
def test_resume_after_a_kill_replays_the_uninterrupted_run(tmp_path, method, kill_after):
    """Killed mid-epoch (3: inside epoch 1, whose mixture was fitted at its start) or at an epoch's end (4)."""
    whole_model = tiny_model(dropout=0.3)  # dropout: the RNG streams must resume too
    whole = _trainer(tmp_path / "a", method, whole_model)
    history = whole.fit()
    assert len(history) == whole.total_steps > kill_after

    first = _trainer(tmp_path / "b", method, tiny_model(dropout=0.3))
    assert first.fit(until_step=kill_after) == history[:kill_after]
    resumed_model = tiny_model(seed=123, dropout=0.3)  # a different init: the checkpoint must overwrite it
    resumed = _trainer(tmp_path / "b", method, resumed_model)
    assert resumed.step == kill_after
    assert resumed.fit() == history
    if method == "ps_scl":
        assert resumed.selection.kept == whole.selection.kept
        assert min(whole.selection.kept) < 1.0  # the mixture dropped pairs: the resumed run dropped the same
    for (name, a), (_, b) in zip(whole_model.state_dict().items(), resumed_model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("method", ["ps_scl", "teachtext"])
def test_bf16_autocast_trains(tmp_path, method):
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = _trainer(tmp_path, method, model, precision="bf16")
    history = trainer.fit()
    assert history and all(torch.isfinite(torch.tensor(history)))
    assert not torch.equal(model.state_dict()["head.proj.weight"], before["head.proj.weight"])


def test_teachtext_term_changes_the_update(tmp_path):
    plain, distilled = tiny_model(), tiny_model()
    _trainer(tmp_path / "a", "supervised", plain).fit()
    _trainer(tmp_path / "b", "teachtext", distilled).fit()
    assert not torch.equal(plain.state_dict()["head.proj.weight"], distilled.state_dict()["head.proj.weight"])


def test_a_ps_scl_section_is_never_ignored(tmp_path):
    data, _ = method_case(tmp_path / "cache", "supervised")
    with pytest.raises(ConfigError, match="ps_scl section"):
        Trainer(tiny_model(), method_case_config(tmp_path / "run", "ps_scl"), data)
