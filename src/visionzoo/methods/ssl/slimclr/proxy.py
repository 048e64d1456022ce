"""The CPU proxy of SlimCLR's claim (spec 5.2 P3): on digits, SlimCLR's slow start + distillation +
re-weighting beat naive joint training of all widths on per-width k-NN accuracy.

    python -m visionzoo.methods.ssl.slimclr.proxy --root data/digits --seeds 0 1 2 --out proxy.json

Each (arm, seed) run is the ``tiny`` recipe with ``objective.mode`` set to the arm; everything else,
including the data order and augmentation draws, is shared through the seed.
"""

from __future__ import annotations

from visionzoo.engine.proxy import proxy_main

ARMS = {
    "slimclr": ["objective.mode=slimclr"],
    "naive": ["objective.mode=naive"],
    # ablations: SlimCLR with one of its three techniques removed
    "no_slow_start": ["objective.mode=slimclr", "objective.slow_start_fraction=0.0"],
    "no_distill": ["objective.mode=slimclr", "objective.distill=false"],
    "no_reweight": ["objective.mode=slimclr", "objective.reweight=false"],
}


def main(argv=None) -> None:
    proxy_main("slimclr/tiny", ARMS, __doc__, "data/digits", synth_size=None, argv=argv)


if __name__ == "__main__":
    main()
