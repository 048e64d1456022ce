"""The CPU proxy of A-CLIP's claim (spec §1g): attentive token removal keeps the caption-relevant tokens
that random removal throws away, at the same online-encoder cost.

    python -m visionzoo.methods.vl.aclip.proxy --task one --seeds 0 1 2 --out proxy_one.json
    python -m visionzoo.methods.vl.aclip.proxy --task pair --seeds 0 1 2 --out proxy_pair.json

Data (built here, in memory): 32x32 images of 4x4 patches (an 8x8 grid) with low-amplitude noise and 6
grey distractor patches; the caption names the saturated colour of one object patch ("one", 8 classes)
or the unordered colours of two ("pair", 28 classes). Each (arm, seed) trains the ``aclip/tiny`` task
with one unaugmented online view (the EMA view is the same image), CLIP loss only (the paper's masking
ablation has no SSL terms), masking per ``--ratio`` at patch granularity:

- ``attentive``: the EMA encoder's layer/head-averaged CLS attention keeps the top patches;
- ``random``: FLIP-style random patches, same count;
- ``none``: all 64 patches.

Metrics per run: ``retention`` (% of training samples whose caption-relevant patch(es) all survived the
mask, over the second half of training), ``online_tokens`` (patches per image the online encoder saw:
the cost), ``zeroshot_top1`` on 2,000 held-out images, ``seconds``.
"""

from __future__ import annotations

import itertools
import time

import torch

PALETTE = {"red": (1.0, 0.0, 0.0), "green": (0.0, 0.9, 0.0), "blue": (0.0, 0.2, 1.0), "yellow": (1.0, 1.0, 0.0),
           "magenta": (1.0, 0.0, 1.0), "cyan": (0.0, 1.0, 1.0), "orange": (1.0, 0.5, 0.0), "purple": (0.5, 0.0, 1.0)}
ARMS = {"attentive": "attentive", "random": "random", "none": "none"}
TEMPLATE = "a photo of {}."


def class_names(objects: int) -> list[str]:
    """8 colours, or the 28 unordered pairs of colours ("red and green")."""
    colours = list(PALETTE)
    if objects == 1:
        return colours
    return [" and ".join(pair) for pair in itertools.combinations(colours, objects)]


def make_patch_captions(n: int, objects: int, seed: int, size: int = 32, patch: int = 4,
                        distractors: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> images (n, 3, size, size) normalised, labels (n,) class ids, object patch ids (n, objects)."""
    g = torch.Generator().manual_seed(seed)
    grid = size // patch
    combos = list(itertools.combinations(range(len(PALETTE)), objects))
    labels = torch.randint(len(combos), (n,), generator=g)
    colours = torch.tensor(list(PALETTE.values()))[torch.tensor(combos)[labels]]  # (n, objects, 3)
    cells = torch.rand(n, grid * grid, generator=g).argsort(dim=1)[:, : objects + distractors]  # distinct cells
    grey = 0.25 + 0.5 * torch.rand(n, distractors, 1, generator=g)
    fills = torch.cat([colours, grey.expand(-1, -1, 3)], dim=1)  # (n, objects + distractors, 3)
    patches = torch.full((n, grid * grid, 3), 0.5) + 0.05 * torch.randn(n, grid * grid, 3, generator=g)
    patches.scatter_(1, cells[:, :, None].expand(-1, -1, 3), fills)
    # (n, g*g, 3) cell colours -> (n, 3, size, size), each cell a flat patch plus pixel noise
    img = patches.reshape(n, grid, grid, 3).permute(0, 3, 1, 2)
    img = img.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)
    img = img + 0.03 * torch.randn(img.shape, generator=g)
    return (img - 0.5) / 0.25, labels, cells[:, :objects]


def run_one(arm: str, seed: int, objects: int = 1, ratio: float = 0.5, steps: int = 300, arch: str = "tiny",
            batch_size: int = 64, lr: float = 1e-3, n_train: int = 8192, n_test: int = 2000,
            ema_momentum: float = 0.99, ema_schedule: str = "cosine") -> dict:
    """Train one (arm, seed) and return its metrics row."""
    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.task import StepContext
    from visionzoo.metrics.zero_shot import zero_shot_accuracy, zero_shot_classifier
    from visionzoo.nn.tokenizer import clip_tokenize

    overrides = [f"model.arch={arch}", f"mask.mode={ARMS[arm]}", f"mask.ratio={ratio}", "mask.cell=1",
                 "objective.views=1", "objective.simclr_weight=0", "objective.byol_weight=0",
                 f"ema.momentum={ema_momentum}", f"ema.schedule={ema_schedule}"]
    _, cfg, _ = load_recipe("aclip/tiny", overrides)
    from visionzoo.methods.vl.aclip.model import ACLIPTask

    torch.manual_seed(seed)
    task = ACLIPTask(cfg)
    names = class_names(objects)
    train_x, train_y, train_obj = make_patch_captions(n_train, objects, seed=1000 + seed)
    test_x, test_y, _ = make_patch_captions(n_test, objects, seed=99_000 + seed)
    caption_tokens = clip_tokenize([TEMPLATE.format(c) for c in names], task.context_length)  # (classes, L)
    opt = torch.optim.AdamW(task.param_groups(0.1), lr=lr, betas=(0.9, 0.98))
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0]] * 3).expand(batch_size, 3, 4)  # one full-image view
    order = torch.Generator().manual_seed(seed)
    kept_relevant, seen, tokens = 0, 0, []
    task.train()
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(n_train, (batch_size,), generator=order)
        x = train_x[idx]
        out = task.training_step(((x, x, x, boxes), caption_tokens[train_y[idx]]), StepContext(step, steps, 0))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        task.on_after_optimizer_step(StepContext(step + 1, steps, 0))
        tokens.append(out.logs["online_tokens"])
        if step >= steps // 2:  # retention once the EMA encoder has had time to learn where to look
            keep = task.last_keep_indices[0]
            obj = train_obj[idx]
            if keep is None:
                kept_relevant += batch_size
            else:
                kept_relevant += int((obj[:, :, None] == keep[:, None, :]).any(-1).all(-1).sum())
            seen += batch_size
    seconds = time.time() - t0
    task.eval()
    with torch.no_grad():
        classifier = zero_shot_classifier(
            lambda prompts: task.model.encode_text(clip_tokenize(prompts, task.context_length), normalize=True),
            names, [TEMPLATE])
        image_embeds = torch.cat([task.model.encode_image(chunk, normalize=True) for chunk in test_x.split(500)])
    top1 = zero_shot_accuracy(image_embeds, classifier, test_y)["top1"]
    return {"arm": arm, "seed": seed, "zeroshot_top1": round(top1, 2), "retention": round(100 * kept_relevant / seen, 2),
            "online_tokens": sum(tokens) / len(tokens), "seconds": round(seconds, 1)}


TASKS = {  # spec §1g: the pilot task, and the hardened one (two objects, 75% removal, smaller encoder)
    "one": dict(objects=1, ratio=0.5, steps=300, arch="tiny"),
    "pair": dict(objects=2, ratio=0.75, steps=150, arch="micro"),
}


def main(argv=None) -> None:
    import argparse
    import json

    from visionzoo.engine.proxy import report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=list(TASKS), default="one")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--steps", type=int, default=None, help="override the task's step budget")
    p.add_argument("--lr", type=float, default=None, help="override the learning rate (default 1e-3)")
    p.add_argument("--ema-schedule", choices=["cosine", "constant"], default="cosine", dest="ema_schedule",
                   help="EMA momentum: cosine 0.99 -> 1 (A-CLIP), or constant 0.99 (the spec's pilot)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    setting = dict(TASKS[args.task])
    if args.steps:
        setting["steps"] = args.steps
    if args.lr:
        setting["lr"] = args.lr
    setting["ema_schedule"] = args.ema_schedule
    rows = []
    for seed in args.seeds:
        for arm in args.arms:
            rows.append(run_one(arm, seed, **setting))
            print(json.dumps(rows[-1]), flush=True)
    report(rows, args.out, extra={"task": args.task, "setting": setting})


if __name__ == "__main__":
    main()
