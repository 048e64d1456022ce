"""CPU proxy of TwoStream-SLR's claims on SynthSign (Phoenix-2014T layout), ``tiny_proxy`` recipe.

Arms (all trained from scratch with the same budget; WER of the three-head ensemble on dev and test):
  twostream     both streams, laterals, sign pyramid + aux heads, joint head, self-distillation (the paper)
  rgb           the RGB stream alone (its main + aux heads)
  keypoint      the keypoint-heatmap stream alone
  no_laterals   two streams without lateral connections
  no_pyramid    two streams without the pyramid and auxiliary heads
  no_distill    two streams without frame-level self-distillation

    python -m visionzoo.methods.sign.twostream.proxy --seeds 0 1 2 --out proxy.json
"""

from __future__ import annotations

import argparse
import sys

from visionzoo.engine.proxy import proxy_main

RECIPE = "twostream/tiny_proxy"
DEFAULT_ROOT = "data/synthsign_p14t_proxy"
ARMS = {
    "twostream": [],
    "rgb": ["model.streams=rgb"],
    "keypoint": ["model.streams=keypoint"],
    "no_laterals": ["model.laterals=false"],
    "no_pyramid": ["model.pyramid=false"],
    "no_distill": ["model.distill=false"],
}


def main(argv=None) -> None:
    from visionzoo.core.registry import load_recipe
    from visionzoo.methods.sign.twostream.data import ensure_dataset

    argv = list(sys.argv[1:] if argv is None else argv)
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--root", default=DEFAULT_ROOT)
    root = peek.parse_known_args(argv)[0].root
    # write the recipe's SynthSign corpus first: proxy_main would otherwise fill a missing root with digits
    _, cfg, _ = load_recipe(RECIPE, [f"data.root={root}"])
    ensure_dataset(cfg.data)
    proxy_main(RECIPE, ARMS, __doc__, DEFAULT_ROOT, argv=argv)


if __name__ == "__main__":
    main()
