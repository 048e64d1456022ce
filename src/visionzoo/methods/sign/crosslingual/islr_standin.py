"""A small keypoint ISLR, the stand-in for NLA-SLR in CPU runs of the mapping step.

It reads the same WLASL-layout dictionary NLA-SLR reads (``read_wlasl`` + the unwrapped keypoint pickle):
a clip's keypoints are resampled to ``frames`` steps, the 63 NLA-SLR points are centred on the shoulders
and scaled by shoulder width, and a two-layer MLP classifies the flattened trajectory. It exists so the
mapping step can be run and tested on a 2-core machine in seconds; ``islr.backend: nla-slr`` uses the real
model. Training goes through the engine's ``fit`` like every other model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from torch import nn

from visionzoo.core.registry import create_model, register_model
from visionzoo.engine.config import OptimConfig, TrainConfig
from visionzoo.engine.task import StepContext, StepOutput, Task

LEFT_SHOULDER, RIGHT_SHOULDER = 5, 6  # COCO body points


@dataclass
class StandinDataConfig:
    root: str = ""
    frames: int = 16


@dataclass
class StandinModelConfig:
    hidden: int = 256
    dropout: float = 0.2
    num_classes: int = 0  # read off the dictionary when 0


@dataclass
class StandinISLRConfig:
    data: StandinDataConfig = field(default_factory=StandinDataConfig)
    model: StandinModelConfig = field(default_factory=StandinModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_epochs=30, batch_size=32, logger="none",
                                                                  progress=False, val_every_n_epochs=1000))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adamw", lr=3e-3, weight_decay=1e-4))


def normalise_keypoints(kps: torch.Tensor) -> torch.Tensor:
    """(B, T, 133, 3) pixels -> (B, T, 63, 2) centred on the shoulders, in shoulder widths."""
    from visionzoo.data.keypoints import NLA_SLR_63_INDICES

    xy = kps[..., :2]
    centre = 0.5 * (xy[..., LEFT_SHOULDER, :] + xy[..., RIGHT_SHOULDER, :])  # (B, T, 2)
    width = (xy[..., LEFT_SHOULDER, :] - xy[..., RIGHT_SHOULDER, :]).norm(dim=-1).mean(1).clamp_min(1e-3)  # (B,)
    return (xy[..., NLA_SLR_63_INDICES, :] - centre[..., None, :]) / width[:, None, None, None]


class KeypointISLR(nn.Module):
    """Flattened normalised trajectory -> MLP -> class logits."""

    def __init__(self, num_classes: int, frames: int = 16, hidden: int = 256, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(frames * 63 * 2, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, num_classes))

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:  # (B, T, 133, 3) -> (B, C)
        return self.net(normalise_keypoints(keypoints))


@register_model("crosslingual_keypoint_islr")
def crosslingual_keypoint_islr(num_classes: int, frames: int = 16, hidden: int = 256, dropout: float = 0.2) -> KeypointISLR:
    return KeypointISLR(num_classes, frames, hidden, dropout)


class StandinISLRTask(Task):
    def __init__(self, cfg: StandinISLRConfig, num_classes: int):
        super().__init__()
        self.model = create_model("crosslingual_keypoint_islr", num_classes=num_classes, frames=cfg.data.frames,
                                  hidden=cfg.model.hidden, dropout=cfg.model.dropout)

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        logits = self.model(batch["keypoints"])
        loss = nn.functional.cross_entropy(logits, batch["labels"])
        return StepOutput(loss, {"acc": (logits.argmax(-1) == batch["labels"]).float().mean()})

    def export_model(self) -> nn.Module:
        return self.model


def dictionary_dataset(root: str | Path, split: str, frames: int):
    """A keypoint-only SignDataset over one split of a WLASL-layout dictionary (empty split -> None)."""
    from visionzoo.data.sign import PickleKeypoints, SignDataset, read_wlasl
    from visionzoo.data.video import FrameSampling

    index = read_wlasl(root, split, media="ignore")
    if not index.samples:
        return None
    kps = PickleKeypoints(Path(root) / "keypoints_hrnet_dark_coco_wholebody.pkl")
    return SignDataset(index.samples, load_frames=False, keypoints=kps,
                       sampling=FrameSampling(mode="count", num_frames=frames))


class DictionaryDataModule(L.LightningDataModule):
    def __init__(self, cfg: StandinISLRConfig):
        super().__init__()
        self.cfg = cfg
        self.train = dictionary_dataset(cfg.data.root, "train", cfg.data.frames)

    def train_dataloader(self):
        from visionzoo.engine.data import make_loader

        t = self.cfg.train
        return make_loader(self.train, t.batch_size, shuffle=True, seed=t.seed, drop_last=len(self.train) > t.batch_size,
                           collate_fn=self.train.collate)


def num_dictionary_classes(root: str | Path) -> int:
    import json

    return len(json.loads((Path(root) / "WLASL_v0.3.json").read_text()))


def train_standin(root: str | Path, run_dir: str | Path, seed: int = 0, max_epochs: int = 30) -> StandinISLRTask:
    """Train the stand-in on the ``train`` split of the dictionary at ``root``; returns the task."""
    from visionzoo.core.registry import MethodSpec
    from visionzoo.engine.trainer import fit

    cfg = StandinISLRConfig(data=StandinDataConfig(root=str(root)))
    cfg.train.seed, cfg.train.max_epochs = seed, max_epochs
    n = num_dictionary_classes(root)
    spec = MethodSpec(name="crosslingual-islr-standin", area="sign", paper="stand-in", config_cls=StandinISLRConfig,
                      build_task=lambda c: StandinISLRTask(c, n), build_data=DictionaryDataModule,
                      recipes_dir=Path(__file__).parent / "recipes")
    return fit(spec, cfg, run_dir, evaluate=False).task


@torch.no_grad()
def standin_probabilities(task: StandinISLRTask, root: str | Path, frames: int = 16) -> tuple[list[str], torch.Tensor]:
    """(clip names, (N, C) softmax) over every clip of the dictionary (all splits)."""
    names, probs = [], []
    task.eval()
    for split in ("train", "val", "test"):
        ds = dictionary_dataset(root, split, frames)
        if ds is None:
            continue
        batch = ds.collate([ds[i] for i in range(len(ds))])
        probs.append(task.model(batch["keypoints"]).softmax(-1))
        names += batch["names"]
    return names, torch.cat(probs)
