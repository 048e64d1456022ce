"""The CPU proxy of DeepMIM's claim (spec 5.2 P1 redesigned): deep supervision vs plain MAE, judged on the
per-layer linear probe of shallow blocks and on fine-tuning with 10% of the labels.

    python -m visionzoo.methods.ssl.deepmim.proxy --root data/digits32 --seeds 0 1 2 --out proxy.json

Both arms are the ``deepmim/tiny`` recipe; the MAE arm supervises only the last block (one decoder on the
final, normed output, i.e. MAE). Everything else, including data order and masks, follows the seed.
"""

from __future__ import annotations

from visionzoo.engine.proxy import proxy_main

ARMS = {
    "mae": ["model.supervised_blocks=[6]", "model.loss_weights=[1.0]", "model.level_targets=[pixel]"],
    "deepmim": ["model.supervised_blocks=[3,4,5,6]", "model.loss_weights=[1.0,1.0,1.0,1.0]",
                "model.level_targets=[pixel,pixel,pixel,pixel]"],
}


def main(argv=None) -> None:
    proxy_main("deepmim/tiny", ARMS, __doc__, "data/digits32", synth_size=32, argv=argv)


if __name__ == "__main__":
    main()
