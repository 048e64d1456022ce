"""The two models the pipeline borrows, behind small interfaces so the stages never depend on their insides.

- A **CSLR backend** trains a continuous recogniser on one corpus and returns, per sentence, its CTC
  log-probabilities (T', V) with the gloss vocabulary; the default runs a ``twostream/*`` recipe through
  the engine's ``fit`` (TwoStream-SLR, the paper's CSLR model) and reads ``ensemble_log_probs``.
- An **ISLR backend** trains an isolated recogniser on a WLASL-layout dictionary and returns the softmax
  of every clip over the dictionary's classes; the default runs ``nla-slr/*`` (NLA-SLR), ``standin`` a
  small keypoint MLP (``islr_standin``) for CPU runs.

``cslr.backend: standin`` uses the keypoint CTC model of ``cslr_standin`` instead of a recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from visionzoo.data.sign.vocab import Vocabulary


@dataclass
class SentencePosterior:
    name: str  # the sample name in its corpus (SignSample.name)
    glosses: list[str]
    num_frames: int  # frames of the video the posteriors were computed on
    log_probs: torch.Tensor  # (T', V)


@dataclass
class TrainedCSLR:
    """What a CSLR backend hands back: enough to compute posteriors and decode later."""

    task: Any
    datamodule: Any
    config: Any
    run_dir: Path


class CSLRBackend(Protocol):
    temporal_stride: int

    def train(self, root: str, dataset: str, run_dir: Path, seed: int, overrides: list[str] = ()) -> TrainedCSLR:
        ...

    def vocabulary(self, trained: TrainedCSLR) -> Vocabulary:
        ...

    def posteriors(self, trained: TrainedCSLR, split: str) -> list[SentencePosterior]:
        ...


class RecipeCSLRBackend:
    """A CSLR method run by recipe (e.g. ``twostream/tiny``) through ``engine.fit``.

    Works with any registered CSLR method whose datamodule exposes ``vocab`` and ``eval_loader(split)``
    and whose task exposes ``model`` returning ``ensemble_log_probs`` + per-head ``lengths`` (TwoStream-SLR).
    """

    def __init__(self, recipe: str = "twostream/tiny", overrides: list[str] = (), temporal_stride: int = 4):
        self.recipe, self.overrides, self.temporal_stride = recipe, list(overrides), temporal_stride

    def load(self, root: str, dataset: str, seed: int, overrides: list[str] = ()):
        from visionzoo.core.registry import load_recipe

        return load_recipe(self.recipe, [*self.overrides, *overrides, f"data.root={root}", f"data.dataset={dataset}",
                                         "data.synthsign={}", f"train.seed={seed}"])

    def train(self, root: str, dataset: str, run_dir: Path, seed: int, overrides: list[str] = ()) -> TrainedCSLR:
        from visionzoo.engine.trainer import fit

        spec, cfg, _ = self.load(root, dataset, seed, [*overrides, "train.progress=false", "train.logger=none",
                                                        "train.val_every_n_epochs=1000"])
        result = fit(spec, cfg, run_dir, evaluate=False)
        return TrainedCSLR(result.task, result.datamodule, cfg, Path(run_dir))

    def vocabulary(self, trained: TrainedCSLR) -> Vocabulary:
        return trained.datamodule.vocab

    @torch.no_grad()
    def posteriors(self, trained: TrainedCSLR, split: str) -> list[SentencePosterior]:
        dm, model = trained.datamodule, _model_of(trained.task)
        was_training = model.training
        model.eval()
        out = []
        for batch in _eval_batches(dm, split):
            result = model(batch["rgb"], batch["heatmaps"], batch["lengths"])
            lp = result.ensemble_log_probs  # (B, T', V)
            lengths = result.lengths  # (B,) valid steps of the main heads
            for i, name in enumerate(batch["names"]):
                out.append(SentencePosterior(name, list(batch["gloss"][i]), int(batch["lengths"][i]),
                                             lp[i, : int(lengths[i])].float().cpu()))
        model.train(was_training)
        return out


def _model_of(task):
    return getattr(task, "model", task)


def _eval_batches(dm, split: str):
    """Un-augmented batches of ``split`` (train too: the dictionary is cut from the training videos)."""
    if split == "train":
        from visionzoo.engine.data import make_loader

        from visionzoo.methods.sign.twostream.data import TwoStreamClips, collate_clips

        clips = TwoStreamClips(dm.train_set.signs, dm.cfg, train=False)
        return make_loader(clips, dm.cfg.eval_batch_size, shuffle=False, collate_fn=collate_clips)
    return dm.eval_loader(split)


def make_cslr_backend(cfg) -> CSLRBackend:
    """The backend of ``cfg.cslr`` (``backend: recipe | standin``)."""
    if cfg.cslr.backend == "standin":
        from visionzoo.methods.sign.crosslingual.cslr_standin import StandinCSLRBackend

        return StandinCSLRBackend(cfg.cslr.overrides)
    return RecipeCSLRBackend(cfg.cslr.recipe, cfg.cslr.overrides, cfg.cslr.temporal_stride)


# ----------------------------------------------------------------------------------------------- ISLR

class ISLRBackend(Protocol):
    def train(self, root: Path, run_dir: Path, seed: int) -> Any:
        ...

    def probabilities(self, trained: Any, root: Path) -> tuple[list[str], torch.Tensor]:
        """(clip names, (N, C) softmax over the dictionary's classes in WLASL_v0.3.json order)."""
        ...


class StandinISLRBackend:
    """The keypoint MLP of ``islr_standin`` (documented stand-in for NLA-SLR)."""

    def __init__(self, epochs: int = 30):
        self.epochs = epochs

    def train(self, root: Path, run_dir: Path, seed: int):
        from visionzoo.methods.sign.crosslingual.islr_standin import train_standin

        return train_standin(root, run_dir, seed=seed, max_epochs=self.epochs)

    def probabilities(self, trained, root: Path):
        from visionzoo.methods.sign.crosslingual.islr_standin import standin_probabilities

        return standin_probabilities(trained, root)


class RecipeISLRBackend:
    """NLA-SLR run by recipe (default ``nla-slr/tiny``) through ``engine.fit`` on the union dictionary;
    probabilities are its ``ensemble_last`` over ``eval.crops`` (NLA-SLR's ``predict_probabilities``),
    columns reordered from NLA-SLR's class order (sorted train glosses) to the dictionary's."""

    def __init__(self, recipe: str = "nla-slr/tiny", overrides: list[str] = ()):
        self.recipe, self.overrides = recipe, list(overrides)

    def train(self, root: Path, run_dir: Path, seed: int):
        from visionzoo.core.registry import load_recipe
        from visionzoo.engine.trainer import fit

        spec, cfg, _ = load_recipe(self.recipe, [*self.overrides, f"data.root={root}", "data.synth=''",
                                                 "data.dataset=wlasl", f"train.seed={seed}", "train.progress=false",
                                                 "train.logger=none", "train.val_every_n_epochs=1000"])
        result = fit(spec, cfg, run_dir, evaluate=False)
        return cfg, result

    @torch.no_grad()
    def probabilities(self, trained, root: Path):
        import json

        from visionzoo.methods.sign.nla_slr.task import predict_probabilities

        cfg, result = trained
        dm, net = result.datamodule, result.task.net
        classes = [e["gloss"] for e in json.loads((Path(root) / "WLASL_v0.3.json").read_text())]
        column = [dm.class_names.index(c) for c in classes]  # every class has a train clip
        names, probs = [], []
        for split in ("train", "val", "test"):
            for batch in dm.eval_loader(split):
                p = predict_probabilities(net, batch, cfg.data, cfg.eval.crops)["ensemble_last"]
                probs.append(p[:, column])
                names += list(batch["names"])
        return names, torch.cat(probs)


def make_islr_backend(cfg) -> ISLRBackend:
    if cfg.islr.backend == "standin":
        return StandinISLRBackend(cfg.islr.standin_epochs)
    return RecipeISLRBackend(cfg.islr.recipe, cfg.islr.overrides)
