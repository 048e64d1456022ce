"""``make demo`` / ``visionzoo demo slimclr``: synth digits -> train the tiny recipe -> per-width table."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def run_demo(args) -> None:
    from visionzoo.core.registry import load_recipe
    from visionzoo.data.synth import get_synth
    from visionzoo.engine.trainer import fit

    console = Console()
    t0 = time.time()
    root = Path(args.data)
    spec, cfg, recipe = load_recipe("slimclr/tiny", [f"data.root={root}"])
    if not (root / "train").is_dir():
        console.rule("1. data: scikit-learn digits -> ImageFolder")
        console.print(get_synth("digits")(root, size=cfg.data.image_size))
    console.rule("2. train: SlimCLR tiny recipe (slimmable ResNet, widths 1.0 / 0.5 / 0.25)")
    result = fit(spec, cfg, Path(args.out), recipe_name=recipe)
    console.rule("3. evaluate: k-NN and switchable linear probe per width (val split)")
    table = Table(title="SlimCLR on digits (one seed; see methods/ssl/slimclr/README.md for 3-seed numbers)")
    table.add_column("width")
    table.add_column("k-NN top-1 %", justify="right")
    table.add_column("linear top-1 %", justify="right")
    for w in result.task.widths:
        table.add_row(f"{w:g}", f"{result.metrics[f'knn_w{w:g}']:.1f}", f"{result.metrics[f'linear_w{w:g}']:.1f}")
    console.print(table)
    console.print(f"report: {result.run_dir / 'report.md'}  curves: {result.run_dir / 'curves.png'}  "
                  f"total {time.time() - t0:.0f} s")
