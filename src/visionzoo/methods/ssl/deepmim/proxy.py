"""The CPU proxy of DeepMIM's claim (spec 5.2 P1 redesigned): deep supervision vs plain MAE, judged on the
per-layer linear probe of shallow blocks and on fine-tuning with 10% of the labels.

    python -m visionzoo.methods.ssl.deepmim.proxy --root data/digits32 --seeds 0 1 2 --out proxy.json

Both arms are the ``deepmim/tiny`` recipe; the MAE arm supervises only the last block (one decoder on the
final, normed output, i.e. MAE). Everything else, including data order and masks, follows the seed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from visionzoo.engine.proxy import summarize

ARMS = {
    "mae": ["model.supervised_blocks=[6]", "model.loss_weights=[1.0]", "model.level_targets=[pixel]"],
    "deepmim": ["model.supervised_blocks=[3,4,5,6]", "model.loss_weights=[1.0,1.0,1.0,1.0]",
                "model.level_targets=[pixel,pixel,pixel,pixel]"],
}


def run_arm(arm: str, seed: int, root: str, extra: list[str] = ()) -> dict:
    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.trainer import fit

    overrides = [*ARMS[arm], f"train.seed={seed}", f"data.root={root}", "train.progress=false",
                 "train.logger=none", "train.val_every_n_epochs=1000", *extra]
    spec, cfg, _ = load_recipe("deepmim/tiny", overrides)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(spec, cfg, tmp)
    return {"arm": arm, "seed": seed, "seconds": round(time.time() - t0, 1), **result.metrics}




def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/digits32")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.max_epochs=10")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if not Path(args.root).is_dir():
        from visionzoo.data.synth import get_synth

        get_synth("digits")(args.root, size=32)
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
