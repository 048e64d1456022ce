"""The CPU proxy of the paper's claim (spec §4g): with scarce target data, adding auxiliary sentences whose
glosses are mapped through cross-lingual signs lowers target WER; a naive union without mapping does not.

    python -m visionzoo.methods.sign.crosslingual.proxy --seeds 0 1 2 --out proxy.json
    python -m visionzoo.methods.sign.crosslingual.proxy --recipe crosslingual/tiny_proxy_twostream   # TwoStream-SLR

Each (arm, seed) is the ``crosslingual/tiny_proxy`` recipe with the arm's overrides. The per-language models,
dictionaries and mapping of a seed are computed once (cached in ``data.work_dir``) and shared by its arms;
only the joint corpus and the joint CSLR run differ. The SynthSign pair is the recipe's (fixed); the seed
changes every training run and the auxiliary sampling. Rows also carry the mapping precision / recall
against SynthSign's planted shared signs and the dictionaries' boundary IoU. ``oracle_mapping`` uses the
planted pairs as the mapping (no dictionaries, no ISLR): the best the joint training could do with them.
"""

from __future__ import annotations

ARMS = {
    "target_only": ["joint.use_aux=false"],
    "mapped": [],
    "naive_union": ["mapping.enabled=false"],
    "oracle_mapping": ["mapping.oracle=true"],  # the planted pairs: what a perfect mapping would give
    "mapped_aux_weight_0.3": ["joint.aux_loss_weight=0.3"],
    # the mixing ablation: one auxiliary sentence per target training sentence (tiny_proxy takes all of them)
    "mapped_ratio_1": ["joint.aux_ratio=1"],
    "naive_union_ratio_1": ["mapping.enabled=false", "joint.aux_ratio=1"],
    "oracle_mapping_ratio_1": ["mapping.oracle=true", "joint.aux_ratio=1"],
    "mapped_aux_weight_0.3_ratio_1": ["joint.aux_loss_weight=0.3", "joint.aux_ratio=1"],
    "mapped_drop_unmapped_ratio_1": ["joint.unmapped=drop", "joint.aux_ratio=1"],
}


def main(argv=None) -> None:
    import argparse
    import json
    from pathlib import Path

    import torch

    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.proxy import run_arm, report
    from visionzoo.methods.sign.crosslingual.pipeline import corpora, ensure_corpus

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="crosslingual/tiny_proxy")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.max_epochs=4")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    _, cfg, _ = load_recipe(args.recipe, args.overrides)
    for corpus in corpora(cfg).values():
        ensure_corpus(corpus)
    rows = []
    for seed in args.seeds:
        for arm in args.arms:
            rows.append(run_arm(args.recipe, ARMS, arm, seed, cfg.data.root, args.overrides))
            print(json.dumps(rows[-1]), flush=True)
            if args.out:  # keep partial results of a long sweep
                Path(args.out).write_text(json.dumps({"rows": rows}, indent=2))
    report(rows, args.out)


if __name__ == "__main__":
    main()
