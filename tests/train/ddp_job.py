"""Launched by test_distributed under torchrun: one rank of the toy run; rank 0 writes losses and weights."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from safetensors.torch import save_file  # noqa: E402

from tests.train.fakes import ddp_case_config, tiny_model, toy_pairs  # noqa: E402
from vitr.train.distributed import init_distributed, shutdown_distributed  # noqa: E402
from vitr.train.trainer import Trainer  # noqa: E402


def main(out: Path) -> None:
    ctx = init_distributed("cpu")
    pairs = toy_pairs(out / f"cache_rank{ctx.rank}")
    model = tiny_model()
    trainer = Trainer(model, ddp_case_config(out / "run"), pairs, dist_ctx=ctx)
    history = trainer.fit()
    if ctx.is_main:
        (out / "history.json").write_text(json.dumps({"history": history, "world_size": ctx.world_size}))
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    shutdown_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
