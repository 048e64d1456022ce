"""``visionzoo demo mae``: synth digits -> MAE tiny recipe -> k-NN / probes / few-label fine-tune table and a
masked input | reconstruction | target grid (``RUN/reconstruction.png``)."""

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
    root, out = Path(args.data), Path(args.out)
    if not (root / "train").is_dir():
        console.rule("1. data: scikit-learn digits -> ImageFolder (32 px)")
        console.print(get_synth("digits")(root, size=32))
    spec, cfg, recipe = load_recipe("mae/tiny", [f"data.root={root}", f"eval.visualize={out / 'reconstruction.png'}"])
    console.rule("2. train: MAE tiny recipe (ViT 64 wide, 6 blocks, 75% of 64 patches masked)")
    result = fit(spec, cfg, out, recipe_name=recipe)
    console.rule("3. evaluate: k-NN, linear probe (final and per block), 10%-label fine-tune")
    table = Table(title="MAE on digits (one seed; see methods/ssl/mae/README.md)")
    table.add_column("metric")
    table.add_column("top-1 %", justify="right")
    for k, v in result.metrics.items():
        table.add_row(k, f"{v:.1f}")
    console.print(table)
    console.print(f"reconstructions: {out / 'reconstruction.png'}  report: {out / 'report.md'}  "
                  f"total {time.time() - t0:.0f} s")
