"""Helpers shared by the methods' CPU proxy experiments (arms x seeds -> mean and sd per metric)."""

from __future__ import annotations

import statistics

NOT_METRICS = ("arm", "seed", "seconds")


def summarize(rows: list[dict], metrics: list[str] | None = None, skip_arms: tuple[str, ...] = ()) -> dict:
    """``{arm: {metric: (mean, sd)}}`` over the seeds of each arm, arms in first-seen order.

    ``metrics`` defaults to every numeric key of the rows except the run's arm, seed and wall time.
    """
    out: dict = {}
    for arm in dict.fromkeys(r["arm"] for r in rows if r["arm"] not in skip_arms):
        arm_rows = [r for r in rows if r["arm"] == arm]
        keys = metrics or [k for k, v in arm_rows[0].items()
                           if k not in NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)]
        for key in keys:
            vals = [r[key] for r in arm_rows if key in r]
            if vals:
                out.setdefault(arm, {})[key] = (statistics.mean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
    return out


def report(rows: list[dict], out: str | None = None, extra: dict | None = None, **summarize_kwargs) -> dict:
    """Print the per-arm mean ± sd of ``rows`` and, with ``out``, write rows + summary (+ ``extra``) as JSON."""
    import json
    from pathlib import Path

    summary = summarize(rows, **summarize_kwargs)
    for arm, metrics in summary.items():
        print(arm, {k: f"{m:.3g}±{s:.2g}" for k, (m, s) in metrics.items()})
    if out:
        Path(out).write_text(json.dumps({**(extra or {}), "rows": rows, "summary": summary}, indent=2))
    return summary


def arm_config(recipe: str, arms: dict[str, list[str]], arm: str, seed: int, root: str, extra: list[str] = ()):
    """``(spec, cfg)`` of one (arm, seed) of ``recipe``, as ``run_arm`` trains it."""
    from visionzoo.core.registry import load_recipe

    overrides = [*arms[arm], f"train.seed={seed}", f"data.root={root}", "train.progress=false",
                 "train.logger=none", "train.val_every_n_epochs=1000", *extra]
    spec, cfg, _ = load_recipe(recipe, overrides)
    return spec, cfg


def run_arm(recipe: str, arms: dict[str, list[str]], arm: str, seed: int, root: str, extra: list[str] = (),
            run_dir: str | None = None) -> dict:
    """Train and evaluate one (arm, seed) of ``recipe``; returns a row with the final metrics."""
    import tempfile
    import time

    from visionzoo.engine.trainer import fit

    spec, cfg = arm_config(recipe, arms, arm, seed, root, extra)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(spec, cfg, run_dir or tmp)
    return {"arm": arm, "seed": seed, "seconds": round(time.time() - t0, 1), **result.metrics}


def proxy_main(recipe: str, arms: dict[str, list[str]], doc: str, default_root: str,
               synth_size: int | None = None, argv=None) -> None:
    """The command line of a proxy: arms x seeds of ``recipe`` on digits, rows and summary as JSON."""
    import argparse
    import json
    from pathlib import Path

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=default_root)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(arms), choices=list(arms))
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.max_epochs=10")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if not Path(args.root).is_dir():
        from visionzoo.data.synth import get_synth

        get_synth("digits")(args.root, **({"size": synth_size} if synth_size else {}))
    rows = []
    for seed in args.seeds:
        for arm in args.arms:
            rows.append(run_arm(recipe, arms, arm, seed, args.root, args.overrides))
            print(json.dumps(rows[-1]), flush=True)
    report(rows, args.out)
