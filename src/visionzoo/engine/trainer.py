"""``fit``: build a method's task and data from a recipe, train it with Lightning, write the run folder.

Run folder layout (``runs/<method>-<recipe>-<time>`` by default)::

    config.yaml          the resolved recipe (after overrides)
    checkpoints/         Lightning checkpoints (last.ckpt) for --resume, written atomically
    model/               config.json + model.safetensors (save_pretrained of the trained network)
    metrics.csv/.json    every logged metric; curves.png the training curves
    logs/                CSV / TensorBoard logger output
    report.md            what ran, final metrics, where things are
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import yaml

from visionzoo.core.config import to_dict
from visionzoo.core.hub import save_pretrained
from visionzoo.core.io import atomic_write
from visionzoo.core.registry import MethodSpec
from visionzoo.engine.callbacks import MetricHistory, RNGStateCallback
from visionzoo.engine.checkpoint_io import AtomicCheckpointIO
from visionzoo.engine.config import TrainConfig
from visionzoo.engine.module import LitTask


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict = field(default_factory=dict)
    task: object = None
    datamodule: object = None


def _devices(value: str):
    value = str(value).strip()
    if value.isdigit():
        return int(value)
    if value == "auto" or value == "-1":
        return value
    return [int(v) for v in value.split(",") if v.strip()]


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed", "lightning.pytorch.trainer.connectors.signal_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*You defined a `validation_step` but have no `val_dataloader`.*")
    warnings.filterwarnings("ignore", ".*is a `StatefulDataLoader`.*")
    warnings.filterwarnings("ignore", ".*The number of training batches.*")
    warnings.filterwarnings("ignore", ".*`isinstance.treespec, LeafSpec.` is deprecated.*")


def build_trainer(train: TrainConfig, run_dir: Path, callbacks=(), enable_checkpointing: bool = True) -> L.Trainer:
    _quiet_lightning()
    loggers = []
    if train.logger in ("csv", "both"):
        loggers.append(L.pytorch.loggers.CSVLogger(run_dir, name="logs", version=""))
    if train.logger in ("tensorboard", "both"):
        loggers.append(L.pytorch.loggers.TensorBoardLogger(run_dir, name="logs", version="tb"))
    cbs = [RNGStateCallback(), MetricHistory(run_dir), *callbacks]
    if enable_checkpointing:
        cbs.append(L.pytorch.callbacks.ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="step{step}", save_last=True, save_top_k=0,
            every_n_train_steps=train.checkpoint_every_n_steps or None, auto_insert_metric_name=False,
        ))
    if train.progress:
        try:
            cbs.append(L.pytorch.callbacks.RichProgressBar(leave=True))
        except (ModuleNotFoundError, ImportError):  # rich is a dependency; keep the tqdm bar if it is absent
            pass
    return L.Trainer(
        accelerator=train.accelerator,
        devices=_devices(train.devices),
        num_nodes=train.num_nodes,
        strategy=train.strategy,
        precision=train.precision,
        max_epochs=train.max_epochs if train.max_steps <= 0 else -1,
        max_steps=train.max_steps,
        accumulate_grad_batches=train.accumulate_grad_batches,
        gradient_clip_val=train.gradient_clip_val or None,
        log_every_n_steps=train.log_every_n_steps,
        check_val_every_n_epoch=train.val_every_n_epochs,
        deterministic=train.deterministic,
        enable_progress_bar=train.progress,
        enable_checkpointing=enable_checkpointing,
        enable_model_summary=False,
        logger=loggers or False,
        callbacks=cbs,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
        num_sanity_val_steps=0,
    )


def default_run_dir(spec: MethodSpec, recipe: str) -> Path:
    return Path("runs") / f"{spec.name}-{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_config(spec: MethodSpec, cfg) -> dict:
    """What a run folder's ``config.yaml`` holds for ``cfg``."""
    return {"method": spec.name, **to_dict(cfg)}


def finished_run(run_dir: str | Path, spec: MethodSpec, cfg) -> dict | None:
    """The final metrics (``eval.json``) of a finished run in ``run_dir`` trained with exactly ``cfg``, else None."""
    run_dir = Path(run_dir)
    config, metrics = run_dir / "config.yaml", run_dir / "eval.json"
    if not (config.is_file() and metrics.is_file() and (run_dir / "model").is_dir()):
        return None
    if yaml.safe_load(config.read_text()) != run_config(spec, cfg):
        return None
    return json.loads(metrics.read_text())


def fit(spec: MethodSpec, cfg, run_dir: str | Path, *, resume: str | Path | None = None, callbacks=(),
        evaluate: bool = True, recipe_name: str = "custom") -> RunResult:
    """Train ``spec`` with config ``cfg``; returns the run folder and final metrics."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    train: TrainConfig = cfg.train
    L.seed_everything(train.seed, workers=True, verbose=False)
    with atomic_write(run_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(run_config(spec, cfg), sort_keys=False))
    datamodule = spec.build_data(cfg)
    task = spec.build_task(cfg)
    lit = LitTask(task, cfg.optim)
    trainer = build_trainer(train, run_dir, callbacks=callbacks)
    t0 = time.time()
    trainer.fit(lit, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
    elapsed = time.time() - t0
    result = RunResult(run_dir=run_dir, task=task, datamodule=datamodule)
    if not trainer.is_global_zero:
        return result
    save_pretrained(task.export_model(), run_dir / "model", extra={"method": spec.name})
    if evaluate and spec.evaluate is not None:
        result.metrics = spec.evaluate(task, datamodule, cfg)
        with atomic_write(run_dir / "eval.json") as tmp:
            tmp.write_text(json.dumps(result.metrics, indent=2))
    write_report(spec, cfg, run_dir, result.metrics, elapsed, recipe_name, trainer.global_step)
    return result


def write_report(spec: MethodSpec, cfg, run_dir: Path, metrics: dict, seconds: float, recipe: str, steps: int) -> None:
    lines = [
        f"# {spec.name} / {recipe}",
        "",
        f"- paper: {spec.paper}",
        f"- optimiser steps: {steps}, wall time: {seconds:.1f} s, seed: {cfg.train.seed}, pid {os.getpid()}",
        f"- trained network: `model/` (load with `visionzoo.from_pretrained('{run_dir / 'model'}')`)",
        "- resume: `checkpoints/last.ckpt`; config: `config.yaml`; metrics: `metrics.csv`, `curves.png`",
        "",
    ]
    if metrics:
        lines += ["## Final evaluation", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, (int, float)) else f"| {k} | {v} |" for k, v in metrics.items()]
        lines.append("")
    lines += ["![training curves](curves.png)", ""]
    with atomic_write(run_dir / "report.md") as tmp:
        tmp.write_text("\n".join(lines))
