"""CPU proxy of TwoStream-SLT's translation claim: the multi-source ensemble of the rgb, keypoint and joint
Sign2Text networks vs each network alone, on SynthSign (Phoenix-2014T layout; German-like reordered text).

    python -m visionzoo.methods.sign.twostream.slt.proxy --root data/synthsign_p14t \
        --features data/synthsign_slt_features --seeds 0 1 2 --out proxy.json

Per seed: Gloss2Text (``g2t_tiny``), then the three Sign2Text networks (``s2t_tiny``, ``sign.stream`` = each
stream) from that G2T run, then beam-search evaluation of every network and of the ensemble on the test
split. Features are extracted once (``--slr RUN`` for a TwoStream-SLR run, else the stand-in of features.py).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

STREAM_ORDER = ("rgb", "keypoint", "joint")


def run_seed(seed: int, root: str, features: str, work: Path, extra: list[str] = ()) -> list[dict]:
    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.trainer import fit
    from visionzoo.methods.sign.twostream.slt.ensemble import evaluate_ensemble

    common = [f"train.seed={seed}", f"data.root={root}", "train.progress=false", "train.logger=none",
              "train.val_every_n_epochs=1000"]
    t0 = time.time()
    spec, cfg, _ = load_recipe("twostream-slt/g2t_tiny", [*common, *extra])
    g2t_dir = work / f"g2t_s{seed}"
    g2t = fit(spec, cfg, g2t_dir, recipe_name="g2t_tiny")
    rows = [{"arm": "g2t", "seed": seed, "seconds": round(time.time() - t0, 1), **g2t.metrics}]
    runs = []
    for stream in STREAM_ORDER:
        t0 = time.time()
        spec, cfg, _ = load_recipe("twostream-slt/s2t_tiny", [*common, f"sign.features={features}",
                                                               f"sign.g2t={g2t_dir}", f"sign.stream={stream}", *extra])
        run = work / f"s2t_{stream}_s{seed}"
        fit(spec, cfg, run, evaluate=False, recipe_name="s2t_tiny")
        runs.append(run)
    d = cfg.decode
    metrics = evaluate_ensemble(runs, features, d.eval_split, d.beam_size, d.length_penalty, d.max_length,
                                cfg.data.text_level)
    rows += [{"arm": arm, "seed": seed, **m} for arm, m in metrics.items()]
    return rows


def main(argv=None) -> None:
    import torch

    from visionzoo.engine.proxy import report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/synthsign_p14t")
    p.add_argument("--features", default="data/synthsign_slt_features")
    p.add_argument("--slr", default=None, help="TwoStream-SLR run to extract features with (default: stand-in)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=None)
    p.add_argument("--work", default=None, help="keep the runs here (default: a temporary folder)")
    p.add_argument("overrides", nargs="*", help="overrides of both recipes, e.g. train.max_epochs=10")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from visionzoo.methods.sign.twostream.slt import features as feats
    from visionzoo.methods.sign.twostream.slt.task import DataConfig, ensure_corpus

    ensure_corpus(DataConfig(root=args.root, synth="synthsign", synth_options={"resolution": 64, "sentences": 200}))
    if not (Path(args.features) / "train.json").is_file():
        if args.slr:
            feats.extract_slr_features(args.slr, args.features, root=args.root)
        else:
            feats.extract_raw_features(args.root, args.features)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for row in run_seed(seed, args.root, args.features, Path(args.work or tmp), args.overrides):
                rows.append(row)
                print(json.dumps(row), flush=True)
    report(rows, args.out)


if __name__ == "__main__":
    main()
