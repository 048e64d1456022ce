"""The CPU proxy of TinyMIM's claim (spec 5.2 P2): for a tiny ViT student, distilling the token relations of
an MAE-pretrained teacher beats feature distillation, which beats running MAE on the student itself.

    python -m visionzoo.methods.ssl.tinymim.proxy --root data/digits --seeds 0 1 2 3 4 --out proxy.json
    python -m visionzoo.methods.ssl.tinymim.proxy --teacher-only --teacher-dir data/tinymim_teacher

1. The teacher (once, seed 0): our MAE recipe (``mae/tiny``) on a 128-wide, 8-block, 8-head ViT, saved as a
   pretrained folder; later runs reuse it.
2. Arms, each per seed, all judged by the same evaluation (``mim_eval``: k-NN, linear probe, fine-tune with
   10% of the labels) on the same student architecture (32 wide, 4 blocks, 4 heads):
   ``relation`` (TinyMIM), ``feature`` and ``cls`` (its ablations), ``relation_mid`` (teacher block 6 of 8),
   ``mae`` (the student pre-trained by our MAE recipe, no teacher) and ``scratch`` (no pre-training).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from visionzoo.engine.proxy import report

DISTILL_ARMS = {
    "relation": ["objective.target=relation"],
    "relation_mid": ["objective.target=relation", "teacher.block=6"],
    "feature": ["objective.target=feature"],
    "cls": ["objective.target=cls"],
}
ARMS = [*DISTILL_ARMS, "mae", "scratch"]

# the teacher: spec 5.2 P2's MAE-pretrained tiny ViT (width 128, depth 8, 8 heads, 100 epochs on digits)
TEACHER_MAE = ["model.img_size=16", "model.patch_size=4", "data.image_size=16", "model.embed_dim=128",
               "model.depth=8", "model.num_heads=8", "model.decoder_embed_dim=64", "model.decoder_depth=1",
               "model.decoder_num_heads=4", "train.max_epochs=100", "eval.few_label_fraction=0.0"]
# the student-MAE arm: the distilled students' architecture, MAE-pretrained without a teacher
STUDENT_MAE = ["model.img_size=16", "model.patch_size=4", "data.image_size=16", "model.embed_dim=32",
               "model.depth=4", "model.num_heads=4", "model.decoder_embed_dim=64", "model.decoder_depth=1",
               "model.decoder_num_heads=4", "train.max_epochs=100", "eval.few_label_fraction=0.0"]
QUIET = ["train.progress=false", "train.logger=none", "train.val_every_n_epochs=1000"]


def train_teacher(root: str, teacher_dir: str, extra: list[str] = ()) -> dict:
    """MAE-pretrain the teacher with our MAE recipe and save it as a pretrained folder at ``teacher_dir``."""
    import shutil

    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.trainer import fit

    spec, cfg, _ = load_recipe("mae/tiny", [*TEACHER_MAE, f"data.root={root}", "train.seed=0", *QUIET, *extra])
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(spec, cfg, tmp, evaluate=True)
        Path(teacher_dir).parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(Path(tmp) / "model", teacher_dir, dirs_exist_ok=True)
    return {"arm": "teacher", "seconds": round(time.time() - t0, 1), **result.metrics}


def run_arm(arm: str, seed: int, root: str, teacher_dir: str, extra: list[str] = ()) -> dict:
    from visionzoo.core.registry import create_model, load_recipe
    from visionzoo.engine.trainer import fit
    from visionzoo.methods.ssl import mim_eval
    from visionzoo.methods.ssl.tinymim.model import student_vit_config

    base = [f"train.seed={seed}", f"data.root={root}", f"teacher.pretrained={teacher_dir}", *QUIET, *extra]
    spec, cfg, _ = load_recipe("tinymim/tiny", [*DISTILL_ARMS.get(arm, []), *base])
    t0 = time.time()
    if arm in DISTILL_ARMS:
        with tempfile.TemporaryDirectory() as tmp:
            metrics = fit(spec, cfg, tmp).metrics
    else:
        import lightning as L

        if arm == "mae":
            mae_spec, mae_cfg, _ = load_recipe("mae/tiny", [*STUDENT_MAE, f"data.root={root}", f"train.seed={seed}",
                                                           *QUIET])
            with tempfile.TemporaryDirectory() as tmp:
                encoder = fit(mae_spec, mae_cfg, tmp, evaluate=False).task.encoder
        else:  # scratch: the student as initialised, never pre-trained
            L.seed_everything(seed, verbose=False)
            encoder = create_model("tinymim_vit", **dataclasses.asdict(student_vit_config(cfg.model)[0]))
        # the same evaluation data and settings as the distillation arms
        metrics = mim_eval.evaluate_encoder(encoder, spec.build_data(cfg), cfg.eval, seed=seed)
    return {"arm": arm, "seed": seed, "seconds": round(time.time() - t0, 1), **metrics}


METRICS = ("knn", "linear", "fewlabel_ft")




def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/digits")
    p.add_argument("--teacher-dir", default="data/tinymim_teacher", dest="teacher_dir")
    p.add_argument("--teacher-only", action="store_true", dest="teacher_only")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--arms", nargs="+", default=["relation", "feature", "mae"], choices=ARMS)
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="tinymim recipe overrides, e.g. train.max_epochs=10")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if not Path(args.root).is_dir():
        from visionzoo.data.synth import get_synth

        get_synth("digits")(args.root, size=16)
    rows = []
    needs_teacher = args.teacher_only or any(arm in DISTILL_ARMS for arm in args.arms)
    if needs_teacher and not Path(args.teacher_dir).is_dir():
        rows.append(train_teacher(args.root, args.teacher_dir))
        print(json.dumps(rows[-1]), flush=True)
    if args.teacher_only:
        return
    for seed in args.seeds:
        for arm in args.arms:
            rows.append(run_arm(arm, seed, args.root, args.teacher_dir, args.overrides))
            print(json.dumps(rows[-1]), flush=True)
    report(rows, args.out, metrics=METRICS, skip_arms=("teacher",))


if __name__ == "__main__":
    main()
