"""CiCo's CPU proxy (spec §3g, on rendered SynthSign video): fine-grained vs global similarity, and
domain-aware (fused) vs domain-agnostic features, on test R@1 in both directions.

    python -m visionzoo.methods.sign.cico.proxy --root data/cico-proxy --seeds 0 1 2 --out proxy.json

Per seed, once:
1. **Source domain**: SynthSign isolated signs (WLASL layout) of language ``a`` by signers {0, 1}. A tiny
   3D CNN (the stand-in for the BSL-1K I3D) learns to classify them: the domain-agnostic encoder.
2. **Target domain**: SynthSign sentence clips (How2Sign layout) of language ``b`` by 5 signers, 2-3 signers
   per sentence. Half of b's signs reuse a's trajectories (shared signs), half are new; signers 2-4 were
   never seen. The agnostic encoder extracts sliding-window features of every target clip.
3. **Domain-aware encoder**: target *train* windows are pseudo-labelled (confidence > 0.6, merge 3, suppress
   24 frames), a copy of the encoder is fine-tuned on them (SGD 1e-2, 15 epochs, batch 4), and extracts a
   second feature set; CLCL reads (1 - 0.8) aware + 0.8 agnostic.
Then each arm trains CLCL (the ``tiny`` recipe) on the same features; dev R@1 selects the checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

ARMS = {
    "cico": [],  # fine-grained similarity, fused features (alpha 0.8)
    "global": ["model.similarity=global"],
    "agnostic": ["data.alpha=1.0"],  # fused with weight 0 on the aware features = agnostic only
}
SOURCE = dict(format="wlasl", language="a", num_signers=2, clips_per_sign=8, vocab_size=30, shared_fraction=0.5,
              resolution=32)
TARGET = dict(format="how2sign", language="b", num_signers=5, sentences=200, vocab_size=30, shared_fraction=0.5,
              resolution=32, signers_per_sentence=3)
WINDOW = dict(window=8, stride=2, resize=0, crop=0, batch_size=64)
# the I3D trainer's SGD (lr 1e-2, momentum 0.9, no decay) with batches of 16 instead of 4 and fewer epochs:
# the proxy has ~1.5k pseudo-labelled clips, and 15 epochs of batch 4 would cost 6k steps per seed
SOURCE_TRAIN = dict(epochs=40, batch_size=16, jitter=3)
# The tiny encoder, trained on 240 clips, is far less confident than the BSL-1K I3D: on target windows its
# top probability never reached the paper's 0.6 (99th percentile 0.38, seed 0), so the proxy lowers it.
PSEUDO_THRESHOLD = 0.3
FINETUNE = dict(epochs=5, batch_size=16)


def prepare_seed(root: Path, seed: int, log=print) -> dict:
    """Synthesise both domains, train the agnostic encoder, pseudo-label, fine-tune, extract features."""
    import torch

    from visionzoo.core.registry import create_model
    from visionzoo.data.sign.datasets import read_sign_dataset
    from visionzoo.data.synth.synthsign import write_synthsign
    from visionzoo.methods.sign.cico.domain import (
        ClassifierTrainConfig, LabelledClip, WindowConfig, extract_features_to_dir, pseudo_labelled_clips,
        read_prepared, train_window_classifier,
    )

    done = root / "prepared.json"
    if done.is_file():
        return json.loads(done.read_text())
    t0 = time.time()
    torch.manual_seed(seed)
    for name, options in (("source", SOURCE), ("target", TARGET)):
        if not (root / name / "synthsign_meta.json").is_file():  # written last: a complete corpus
            write_synthsign(root / name, seed=seed, **options)
    log(f"seed {seed}: data written ({time.time() - t0:.0f} s)")
    wcfg = WindowConfig(**WINDOW)
    source = [s for split in ("train", "val") for s in read_sign_dataset("wlasl", root / "source", split).samples]
    videos = {s.name: read_prepared(s.media, wcfg) for s in source}
    # isolated clips start and end in the rest pose: centre the window on the sign (plus jitter)
    clips = [LabelledClip(v, max(0, (v.shape[1] - wcfg.window) // 2), s.label) for s in source
             for v in [videos[s.name]]]
    encoder = create_model("cico_tiny_sign_encoder", num_classes=SOURCE["vocab_size"])
    agnostic = train_window_classifier(encoder, clips, wcfg.window, ClassifierTrainConfig(**SOURCE_TRAIN, seed=seed))
    log(f"seed {seed}: agnostic encoder trained ({time.time() - t0:.0f} s)")
    source_test = read_sign_dataset("wlasl", root / "source", "test").samples
    src_acc = _accuracy(agnostic, source_test, wcfg)
    target = {split: read_sign_dataset("how2sign", root / "target", split).samples for split in ("train", "val", "test")}
    target_videos = {s.name: read_prepared(s.media, wcfg) for s in target["train"]}
    pseudo, scored = pseudo_labelled_clips(agnostic, target["train"], wcfg, threshold=PSEUDO_THRESHOLD,
                                           videos=target_videos)
    log(f"seed {seed}: {len(pseudo)} pseudo-labelled clips from {scored} windows ({time.time() - t0:.0f} s)")
    aware = train_window_classifier(agnostic, pseudo, wcfg.window, ClassifierTrainConfig(**FINETUNE, seed=seed))
    for name, enc in (("agnostic", agnostic), ("aware", aware)):
        for split, samples in target.items():
            extract_features_to_dir(enc, samples, root / "features" / name, split, wcfg)
    info = {"seed": seed, "source_test_top1": src_acc, "pseudo_clips": len(pseudo), "windows_scored": scored,
            "pseudo_label_accuracy": _pseudo_accuracy(root / "target", pseudo, target["train"], target_videos, wcfg),
            "target_clips": {k: len(v) for k, v in target.items()}, "seconds": round(time.time() - t0, 1)}
    done.write_text(json.dumps(info, indent=1))
    log(json.dumps(info))
    return info


def _accuracy(encoder, samples, wcfg) -> float:
    """Top-1 of the centre window of each isolated source clip (a sanity check of the agnostic encoder)."""
    import torch

    from visionzoo.methods.sign.cico.domain import classify_features, pad_to_window, read_prepared

    hits = 0
    with torch.no_grad():
        for s in samples:
            v = pad_to_window(read_prepared(s.media, wcfg), wcfg.window)
            start = (v.shape[1] - wcfg.window) // 2
            logits = classify_features(encoder.eval(), encoder.extract_features(v[None, :, start:start + wcfg.window]))
            hits += int(logits.argmax()) == s.label
    return 100.0 * hits / max(1, len(samples))


def _pseudo_accuracy(target_root: Path, pseudo, samples, videos, wcfg) -> float:
    """Percent of pseudo-labels whose window centre lies in a sign of that class (SynthSign's metadata);
    b's own signs have no source class, so only the shared signs can be right."""
    meta = json.loads((target_root / "synthsign_meta.json").read_text())
    lex = {e["gloss"]: e for e in meta["lexicon"]}
    source_class = {e["concept"]: i for i, e in enumerate(meta["lexicon"])}  # same concept order as language a
    by_video = {id(videos[s.name]): meta["samples"][s.name] for s in samples}
    right = 0
    for p in pseudo:
        m = by_video[id(p.video)]
        centre = p.start + wcfg.window / 2
        for gloss, (a, b) in zip(m["glosses"], m["boundaries"]):
            e = lex[gloss]
            if a <= centre < b and e["shared"] and source_class[e["concept"]] == p.label:
                right += 1
                break
    return 100.0 * right / max(1, len(pseudo))


def run_arms(root: Path, seed: int, arms: list[str], overrides: list[str] = ()) -> list[dict]:
    from visionzoo.engine.proxy import run_arm

    extra = [f"data.features={root / 'features' / 'agnostic'}", f"data.aware_features={root / 'features' / 'aware'}",
             "train.val_every_n_epochs=5", *overrides]
    rows = []
    for arm in arms:
        row = run_arm("cico/tiny", ARMS, arm, seed, str(root / "target"), extra)
        rows.append({k: v for k, v in row.items() if k in ("arm", "seed", "seconds") or k.endswith(("_r1", "_r5", "_medr"))})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> None:
    import argparse

    import torch

    from visionzoo.engine.proxy import report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="data/cico-proxy", help="per-seed data and features go to ROOT/seed<k>")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.max_epochs=30")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows, prepared = [], []
    for seed in args.seeds:
        root = Path(args.root) / f"seed{seed}"
        prepared.append(prepare_seed(root, seed))
        rows += run_arms(root, seed, args.arms, args.overrides)
    report(rows, args.out, extra={"prepared": prepared})


def run_demo(args) -> None:
    """``visionzoo demo cico``: one seed of the proxy pipeline end to end (synth -> encoders -> CLCL -> eval)."""
    root = Path(args.data if args.data != "data/digits" else "data/cico-demo")
    prepare_seed(root, 0)
    run_arms(root, 0, ["cico"], ["train.max_epochs=30"])


if __name__ == "__main__":
    main()
