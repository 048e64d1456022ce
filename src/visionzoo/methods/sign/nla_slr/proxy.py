"""The CPU proxy of NLA-SLR's language components (spec sign_language.md §2g) on SynthSign isolated signs.

    python -m visionzoo.methods.sign.nla_slr.proxy --root data/synthsign_wlasl_proxy --seeds 0 1 2 --out proxy.json

Arms (all with video mixup, the ``proxy_keypoint`` recipe otherwise unchanged, same data order per seed):

- ``nla_slr``: language-aware label smoothing + inter-modality mixup (+ EMA coupling): the paper's method;
- ``la_ls``: language-aware label smoothing only (inter-modality mixup off);
- ``uniform_ls``: plain label smoothing 0.2, no mixup over glosses;
- ``no_ls``: one-hot cross-entropy, no mixup over glosses.

Metrics per run (``evaluate``): per-instance / per-class top-1 and top-5, and where the probability mass
goes: on the label's visually similar, semantically related SynthSign partner (``mass_similar_pair``), on its
3 nearest glosses by embedding (``mass_semantic_top3``) and on the label itself (``mass_true``).
The vocabulary comes from SynthSign itself (its ``SIMILAR_PAIRS``): no proxy-specific data.
"""

from __future__ import annotations

import sys

from visionzoo.engine.proxy import proxy_main

RECIPE = "nla-slr/proxy_keypoint"
ARMS = {
    "nla_slr": ["objective.smoothing=language", "objective.imm=true"],
    "la_ls": ["objective.smoothing=language", "objective.imm=false"],
    "uniform_ls": ["objective.smoothing=uniform", "objective.imm=false"],
    "no_ls": ["objective.smoothing=none", "objective.imm=false"],
}


def main(argv=None) -> None:
    import argparse

    from visionzoo.core.registry import load_recipe
    from visionzoo.methods.sign.nla_slr.data import ensure_data

    # proxy_main writes digits into a missing root; write the recipe's SynthSign corpus there first
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--root", default=None)
    known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    _, cfg, _ = load_recipe(RECIPE, [f"data.root={known.root}"] if known.root else [])
    ensure_data(cfg.data)
    proxy_main(RECIPE, ARMS, __doc__, cfg.data.root, argv=argv)


if __name__ == "__main__":
    main()
