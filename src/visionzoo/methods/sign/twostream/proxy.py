"""CPU proxy of TwoStream-SLR's claims on SynthSign (Phoenix-2014T layout), ``tiny_proxy`` recipe.

The data hide each sign from one of the two streams at random (SynthSign ``cue_split``), so that, as in
spec §1g, RGB and keypoints carry complementary cues. The schedule is the paper's, at toy scale:

  stage 1   an RGB and a keypoint single-stream model, CTC only, Adam 5e-3 (``--stage1-epochs``), per seed;
  stage 2   every arm starts from the stage-1 weights of its streams and trains ``train.max_epochs`` at the
            recipe's Adam 1e-3, with zero-initialised laterals.

So every arm has the same budget per stream. Arms (WER of the arm's ensemble, beam 5, dev and test):
  twostream     both streams, laterals, sign pyramid + aux heads, joint head, self-distillation (the paper)
  rgb           the RGB stream alone (its main + aux heads), continued from stage 1
  keypoint      the keypoint-heatmap stream alone, continued from stage 1
  no_laterals   two streams without lateral connections
  no_pyramid    two streams without the pyramid and auxiliary heads
  no_distill    two streams without frame-level self-distillation
Rows ``rgb_stage1`` / ``keypoint_stage1`` hold the stage-1 models' own WER.

    python -m visionzoo.methods.sign.twostream.proxy --seeds 0 1 2 --out proxy.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

RECIPE = "twostream/tiny_proxy"
DEFAULT_ROOT = "data/synthsign_p14t_proxy_1signer"
STAGE1 = {stream: [f"model.streams={stream}", "model.pyramid=false", "model.distill=false", "optim.lr=0.005"]
          for stream in ("rgb", "keypoint")}
ARMS = {
    "twostream": [],
    "rgb": ["model.streams=rgb"],
    "keypoint": ["model.streams=keypoint"],
    "no_laterals": ["model.laterals=false"],
    "no_pyramid": ["model.pyramid=false"],
    "no_distill": ["model.distill=false"],
}


def streams_of(arm: str) -> tuple[str, ...]:
    return (arm,) if arm in STAGE1 else ("rgb", "keypoint")


def main(argv=None) -> None:
    import torch

    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.proxy import arm_config, report, run_arm
    from visionzoo.engine.trainer import finished_run
    from visionzoo.methods.sign.twostream.data import ensure_dataset

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--stage1-epochs", type=int, default=120)
    p.add_argument("--work", default=None, help="where the stage-1 runs are kept; default <out>.stage1 or a temp dir")
    p.add_argument("--reuse-stage1", action="store_true",
                   help="use a finished stage-1 run found in --work when its config is the one this call would "
                        "train (e.g. to add arms to a sweep); otherwise stage 1 is retrained")
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="recipe overrides for every stage, e.g. data.sigma=2")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    # write the recipe's SynthSign corpus first (with the command line's data.synthsign.* overrides)
    _, cfg, _ = load_recipe(RECIPE, [*args.overrides, f"data.root={args.root}"])
    ensure_dataset(cfg.data)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or (f"{args.out}.stage1" if args.out else tmp))
        rows = []
        for seed in args.seeds:
            stage1 = {}
            for stream in dict.fromkeys(s for arm in args.arms for s in streams_of(arm)):
                run_dir = work / f"seed{seed}_{stream}"
                stage1_arm = {f"{stream}_stage1": [*STAGE1[stream], *args.overrides,
                                                   f"train.max_epochs={args.stage1_epochs}"]}
                metrics = finished_run(run_dir, *arm_config(RECIPE, stage1_arm, f"{stream}_stage1", seed,
                                                            args.root)) if args.reuse_stage1 else None
                if metrics is not None:
                    row = {"arm": f"{stream}_stage1", "seed": seed, "reused": str(run_dir), **metrics}
                else:
                    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run, never a resume of an older one
                    row = run_arm(RECIPE, stage1_arm, f"{stream}_stage1", seed, args.root, run_dir=str(run_dir))
                rows.append(row)
                print(json.dumps(row), flush=True)
                stage1[stream] = run_dir / "model"
            for arm in args.arms:
                init = [f"init.{s}={stage1[s]}" for s in streams_of(arm)]
                rows.append(run_arm(RECIPE, ARMS, arm, seed, args.root, [*args.overrides, *init]))
                print(json.dumps(rows[-1]), flush=True)
                if args.out:  # keep partial results of a long sweep
                    Path(args.out).write_text(json.dumps({"rows": rows}, indent=2))
        report(rows, args.out)


if __name__ == "__main__":
    main()
