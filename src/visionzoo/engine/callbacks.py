"""Callbacks: RNG state in checkpoints (exact resume), metric history, curves and the run report."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import lightning as L

from visionzoo.core.io import atomic_write
from visionzoo.core.seed import get_rng_state, set_rng_state


class RNGStateCallback(L.Callback):
    """Stores global RNG states in the checkpoint and restores them on resume.

    Without it a resumed run draws different dropout masks and augmentations than the original.
    """

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["visionzoo_rng"] = get_rng_state()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        if "visionzoo_rng" in checkpoint:
            self._pending = checkpoint["visionzoo_rng"]

    def on_train_start(self, trainer, pl_module):
        # Restore as late as possible: Lightning seeds and builds loaders between load and train start.
        state = getattr(self, "_pending", None)
        if state is not None:
            set_rng_state(state)
            self._pending = None


class MetricHistory(L.Callback):
    """Collects logged metrics into ``metrics.csv``/``metrics.json`` and draws ``curves.png``."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.rows: list[dict] = []

    def _record(self, trainer, kind: str):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        row = {"kind": kind, "step": trainer.global_step, "epoch": trainer.current_epoch}
        for k, v in trainer.callback_metrics.items():
            if kind == "train" and not k.startswith("train/"):
                continue
            if kind == "val" and not k.startswith("val/"):
                continue
            try:
                row[k] = float(v)
            except (TypeError, ValueError):
                continue
        if len(row) > 3:
            self.rows.append(row)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (trainer.global_step % max(1, trainer.log_every_n_steps)) == 0:
            self._record(trainer, "train")

    def on_validation_end(self, trainer, pl_module):
        # not on_validation_epoch_end: callbacks run before the module's hook that logs the metrics,
        # so there we would record the previous validation's values
        self._record(trainer, "val")

    def on_fit_end(self, trainer, pl_module):
        if not any(r["kind"] == "train" and r["step"] == trainer.global_step for r in self.rows):
            self._record(trainer, "train")  # the final step, even when it is off the logging interval
        if trainer.is_global_zero:
            write_metrics(self.rows, self.run_dir)

    def state_dict(self):
        return {"rows": json.dumps(self.rows)}

    def load_state_dict(self, state_dict):
        self.rows = json.loads(state_dict["rows"])


def write_metrics(rows: list[dict], run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows for k in r} - {"kind", "step", "epoch"})
    with atomic_write(run_dir / "metrics.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["kind", "step", "epoch", *keys])
            w.writeheader()
            w.writerows(rows)
    with atomic_write(run_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(rows, indent=1))
    plot_curves(rows, run_dir / "curves.png")


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for r in rows for k in r} - {"kind", "step", "epoch"})
    keys = [k for k in keys if not k.endswith("lr")] + [k for k in keys if k.endswith("lr")]
    if not keys:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no metrics were logged", ha="center", va="center")
        ax.axis("off")
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
        return
    cols = min(3, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) < 30 else None, ms=3)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
