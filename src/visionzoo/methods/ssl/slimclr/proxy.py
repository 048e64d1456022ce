"""The CPU proxy of SlimCLR's claim (spec 5.2 P3): on digits, SlimCLR's slow start + distillation +
re-weighting beat naive joint training of all widths on per-width k-NN accuracy.

    python -m visionzoo.methods.ssl.slimclr.proxy --root data/digits --seeds 0 1 2 --out proxy.json

Each (arm, seed) run is the ``tiny`` recipe with ``objective.mode`` set to the arm; everything else,
including the data order and augmentation draws, is shared through the seed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from visionzoo.engine.proxy import summarize

ARMS = {
    "slimclr": ["objective.mode=slimclr"],
    "naive": ["objective.mode=naive"],
    # ablations: SlimCLR with one of its three techniques removed
    "no_slow_start": ["objective.mode=slimclr", "objective.slow_start_fraction=0.0"],
    "no_distill": ["objective.mode=slimclr", "objective.distill=false"],
    "no_reweight": ["objective.mode=slimclr", "objective.reweight=false"],
}


def run_arm(arm: str, seed: int, root: str, extra: list[str] = (), run_dir: str | None = None) -> dict:
    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.trainer import fit

    overrides = [*ARMS[arm], f"train.seed={seed}", f"data.root={root}", "train.progress=false",
                 "train.logger=none", "train.val_every_n_epochs=1000", *extra]
    spec, cfg, _ = load_recipe("slimclr/tiny", overrides)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(spec, cfg, run_dir or tmp)
    return {"arm": arm, "seed": seed, "seconds": round(time.time() - t0, 1), **result.metrics}




def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/digits")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.max_epochs=10")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if not Path(args.root).is_dir():
        from visionzoo.data.synth import get_synth

        get_synth("digits")(args.root)
    rows = []
    for seed in args.seeds:
        for arm in args.arms:
            rows.append(run_arm(arm, seed, args.root, args.overrides))
            print(json.dumps(rows[-1]), flush=True)
    summary = summarize(rows)
    for arm, metrics in summary.items():
        print(arm, {k: f"{m:.1f}±{s:.1f}" for k, (m, s) in metrics.items()})
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
