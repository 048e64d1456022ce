"""CPU proxy of CenterCLIP's accuracy claim: k-medoids token clustering keeps retrieval accuracy (spec §2g).

    python -m visionzoo.methods.vl.centerclip.proxy --root data/video-captions --seeds 0 1 2 --out proxy.json

Each (arm, seed) run is the ``tiny`` recipe with ``model.cluster.mode`` set to the arm; data order and
initialisation are shared through the seed. The generator writes the data when ``--root`` is missing.
"""

from __future__ import annotations

ARMS = {
    "kmedoids": ["model.cluster.mode=kmedoids"],
    "none": ["model.cluster.mode=none"],  # CLIP4Clip meanP, every token in every block
    "pooling": ["model.cluster.mode=pooling"],
    "sparse_sampling": ["model.cluster.mode=sparse_sampling"],
    "spectral": ["model.cluster.mode=spectral"],
}


def main(argv=None) -> None:
    import argparse
    import json
    from pathlib import Path

    import torch

    from visionzoo.data.synth.video_captions import write_video_captions
    from visionzoo.engine.proxy import run_arm, report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/video-captions")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=["kmedoids", "none"], choices=list(ARMS))
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.max_epochs=4")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if not Path(args.root).is_dir():
        write_video_captions(args.root)
    rows = []
    for seed in args.seeds:
        for arm in args.arms:
            rows.append(run_arm("centerclip/tiny", ARMS, arm, seed, args.root, args.overrides))
            print(json.dumps(rows[-1]), flush=True)
    report(rows, args.out)


if __name__ == "__main__":
    main()
