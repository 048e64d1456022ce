"""Run by test_ddp.py: a 2-process CPU DDP fit of the toy method; each rank saves its final weights."""

import dataclasses
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from toy import TOY, ToyConfig  # noqa: E402

from visionzoo.engine.trainer import fit  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1])
    cfg = ToyConfig()
    cfg.train = dataclasses.replace(cfg.train, devices="2", strategy="ddp", accelerator="cpu", max_epochs=2)
    result = fit(TOY, cfg, out, evaluate=False)
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.save({k: v.clone() for k, v in result.task.state_dict().items()}, out / f"rank{rank}.pt")
