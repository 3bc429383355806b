"""Launched by test_distributed under torchrun: one rank of the toy run; rank 0 writes losses and weights.

argv: output folder, method (supervised | ps_scl | teachtext).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from safetensors.torch import save_file  # noqa: E402

from tests.train.fakes import method_case, method_case_config, tiny_model  # noqa: E402
from vitr.train.distributed import init_distributed, shutdown_distributed  # noqa: E402
from vitr.train.ps_scl import ps_scl_trainer  # noqa: E402
from vitr.train.trainer import Trainer  # noqa: E402


def main(out: Path, method: str) -> None:
    ctx = init_distributed("cpu")
    data, terms = method_case(out / f"cache_rank{ctx.rank}", method)
    model = tiny_model()  # no dropout: ranks draw different masks than one process
    config = method_case_config(out / "run", method)
    if method == "ps_scl":
        trainer = ps_scl_trainer(model, data, config, dist_ctx=ctx)
    else:
        trainer = Trainer(model, config, data, dist_ctx=ctx, extra_losses=terms)
    history = trainer.fit()
    if ctx.is_main:
        kept = getattr(trainer.selection, "kept", [])
        report = {"history": history, "world_size": ctx.world_size, "kept": kept}
        (out / "history.json").write_text(json.dumps(report))
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    shutdown_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "supervised")
