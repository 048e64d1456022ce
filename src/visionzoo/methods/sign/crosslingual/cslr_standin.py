"""A small keypoint CTC recogniser, the stand-in for TwoStream-SLR in CPU runs of the pipeline.

Why a second CSLR: a forced-alignment dictionary is only as good as the CTC spikes sit on their signs.
TwoStream-SLR's S3D sees about 63 input frames per output step, the whole of a SynthSign sentence, so
nothing ties a spike to its sign's frames; on the CPU proxy its dictionaries reach boundary IoU 0.03-0.24
and the mapping finds no planted pair (README, *Where the chain breaks*). This model sees ``kernel``-wide
windows only: normalised keypoints (the 63 NLA-SLR points, centred on the shoulders, in shoulder widths)
-> two stride-2 temporal convolutions (output stride 4, TwoStream-SLR's) -> one more temporal convolution
-> per-step gloss logits. With ``kernel`` 3 an output step sees 15 frames, about two SynthSign signs.

It reads any continuous corpus of ``visionzoo.data.sign`` (keypoints only), trains through the engine's
``fit`` like every model, takes per-sentence loss weights (``batch["sample_weight"]``, the joint training's
``joint.aux_loss_weight``), and plugs into the pipeline as ``cslr.backend: standin``; ``cslr.overrides``
and ``cslr.language_overrides`` then apply to :class:`StandinCSLRConfig` (e.g. ``train.max_steps=1200``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from torch import nn

from visionzoo.core.registry import MethodSpec, create_model, register_model
from visionzoo.engine.config import OptimConfig, TrainConfig
from visionzoo.engine.task import StepContext, StepOutput, Task
from visionzoo.methods.sign.crosslingual.backends import SentencePosterior, TrainedCSLR
from visionzoo.methods.sign.crosslingual.islr_standin import LEFT_SHOULDER, RIGHT_SHOULDER
from visionzoo.nn.ctc import ctc_loss

STRIDE = 4  # input frames per output step (two stride-2 convolutions)


@dataclass
class StandinCSLRDataConfig:
    root: str = ""
    dataset: str = "phoenix2014t"  # any continuous corpus of visionzoo.data.sign with a keypoint pickle


@dataclass
class StandinCSLRModelConfig:
    hidden: int = 96
    kernel: int = 3  # temporal kernel of the two strided convolutions; receptive field 4 * kernel + 3 frames


@dataclass
class StandinCSLRConfig:
    data: StandinCSLRDataConfig = field(default_factory=StandinCSLRDataConfig)
    model: StandinCSLRModelConfig = field(default_factory=StandinCSLRModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_steps=1200, batch_size=16, logger="none",
                                                                  progress=False, val_every_n_epochs=1000))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(name="adamw", lr=3e-3, weight_decay=1e-2,
                                                                  schedule="cosine"))


def normalise_sequence(kps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, 133, 3) pixels, padded -> (B, T, 126): the 63 NLA-SLR points centred on the shoulders per frame,
    in the sentence's mean shoulder width over its valid frames; padded frames are zero."""
    from visionzoo.data.keypoints import NLA_SLR_63_INDICES

    valid = (torch.arange(kps.shape[1], device=kps.device)[None] < lengths[:, None]).to(kps.dtype)  # (B, T)
    xy = kps[..., :2]
    centre = 0.5 * (xy[..., LEFT_SHOULDER, :] + xy[..., RIGHT_SHOULDER, :])
    width = (xy[..., LEFT_SHOULDER, :] - xy[..., RIGHT_SHOULDER, :]).norm(dim=-1)  # (B, T)
    width = ((width * valid).sum(1) / valid.sum(1).clamp_min(1)).clamp_min(1e-3)
    out = (xy[..., NLA_SLR_63_INDICES, :] - centre[..., None, :]) / width[:, None, None, None]
    return out.flatten(2) * valid[..., None]


class KeypointCTC(nn.Module):
    """Keypoint sequence -> per-step gloss log-probabilities at stride 4."""

    def __init__(self, vocab_size: int, hidden: int = 96, kernel: int = 3):
        super().__init__()
        pad = kernel // 2
        self.net = nn.Sequential(nn.Conv1d(126, hidden, kernel, stride=2, padding=pad), nn.GELU(),
                                 nn.Conv1d(hidden, hidden, kernel, stride=2, padding=pad), nn.GELU(),
                                 nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv1d(hidden, vocab_size, 1))

    def forward(self, keypoints: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 133, 3), (B,) -> log-probs (B, T', V), valid steps (B,)."""
        x = normalise_sequence(keypoints, lengths).transpose(1, 2)
        log_probs = self.net(x).transpose(1, 2).log_softmax(-1)
        steps = torch.div(lengths + STRIDE - 1, STRIDE, rounding_mode="floor").clamp(1, log_probs.shape[1])
        return log_probs, steps


@register_model("crosslingual_keypoint_cslr")
def crosslingual_keypoint_cslr(vocab_size: int, hidden: int = 96, kernel: int = 3) -> KeypointCTC:
    return KeypointCTC(vocab_size, hidden, kernel)


class CorpusKeypointsDataModule(L.LightningDataModule):
    """Keypoint-only train / dev / test sets of one continuous corpus; the gloss vocabulary comes from train."""

    def __init__(self, cfg: StandinCSLRConfig):
        super().__init__()
        from visionzoo.data.sign import PickleKeypoints, SignDataset, build_gloss_vocab, read_sign_dataset
        from visionzoo.methods.sign.crosslingual.pipeline import KEYPOINT_PICKLES

        self.cfg = cfg
        root, dataset = cfg.data.root, cfg.data.dataset
        index = {s: read_sign_dataset(dataset, root, s, media="ignore") for s in ("train", "dev", "test")}
        self.vocab = build_gloss_vocab(index["train"].samples)
        keypoints = PickleKeypoints(Path(root) / KEYPOINT_PICKLES[dataset])
        self.sets = {s: SignDataset(ix.samples, load_frames=False, keypoints=keypoints, gloss_vocab=self.vocab)
                     for s, ix in index.items()}
        self.train_set = self.sets["train"]

    def train_dataloader(self):
        from visionzoo.engine.data import make_loader

        t = self.cfg.train
        return make_loader(self.train_set, t.batch_size, shuffle=True, seed=t.seed, collate_fn=self.train_set.collate)

    def eval_loader(self, split: str):
        from visionzoo.engine.data import make_loader

        ds = self.sets[split]
        return make_loader(ds, 64, shuffle=False, collate_fn=ds.collate)


class StandinCSLRTask(Task):
    def __init__(self, cfg: StandinCSLRConfig, vocab_size: int):
        super().__init__()
        self.model = create_model("crosslingual_keypoint_cslr", vocab_size=vocab_size, hidden=cfg.model.hidden,
                                  kernel=cfg.model.kernel)

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        log_probs, steps = self.model(batch["keypoints"], batch["keypoint_lengths"])
        loss = ctc_loss(log_probs, batch["gloss_ids"], steps, batch["gloss_lengths"], reduction="batchmean",
                        sample_weight=batch.get("sample_weight"))
        return StepOutput(loss, {})

    def export_model(self) -> nn.Module:
        return self.model


def standin_spec(vocab_size: int) -> MethodSpec:
    """An unregistered method spec, so the engine's ``fit`` (and the joint task) can run the stand-in."""
    return MethodSpec(name="crosslingual-cslr-standin", area="sign", paper="stand-in", config_cls=StandinCSLRConfig,
                      build_task=lambda c: StandinCSLRTask(c, vocab_size), build_data=CorpusKeypointsDataModule,
                      recipes_dir=Path(__file__).parent / "recipes")


class StandinCSLRBackend:
    """The CSLR-backend interface over :class:`KeypointCTC` (``cslr.backend: standin``)."""

    temporal_stride = STRIDE

    def __init__(self, overrides: list[str] = ()):
        self.overrides = list(overrides)

    def load(self, root: str, dataset: str, seed: int, overrides: list[str] = ()):
        """(spec, config) of a run on the corpus at ``root``, like ``RecipeCSLRBackend.load``."""
        from visionzoo.core.config import load_config, to_dict
        from visionzoo.data.sign import build_gloss_vocab, read_sign_dataset

        cfg = load_config(StandinCSLRConfig, None, [*self.overrides, *overrides, f"data.root={root}",
                                                    f"data.dataset={dataset}", f"train.seed={seed}"],
                          data=to_dict(StandinCSLRConfig()))
        vocab = build_gloss_vocab(read_sign_dataset(dataset, root, "train", media="ignore").samples)
        return standin_spec(len(vocab)), cfg, None

    def train(self, root: str, dataset: str, run_dir: Path, seed: int, overrides: list[str] = ()) -> TrainedCSLR:
        from visionzoo.engine.trainer import fit

        spec, cfg, _ = self.load(root, dataset, seed, overrides)
        result = fit(spec, cfg, run_dir, evaluate=False)
        return TrainedCSLR(result.task, result.datamodule, cfg, Path(run_dir))

    def vocabulary(self, trained: TrainedCSLR):
        return trained.datamodule.vocab

    @torch.no_grad()
    def posteriors(self, trained: TrainedCSLR, split: str) -> list[SentencePosterior]:
        model = trained.task.model
        was_training = model.training
        model.eval()
        out = []
        for batch in trained.datamodule.eval_loader(split):
            log_probs, steps = model(batch["keypoints"], batch["keypoint_lengths"])
            for i, name in enumerate(batch["names"]):
                out.append(SentencePosterior(name, list(batch["gloss"][i]), int(batch["keypoint_lengths"][i]),
                                             log_probs[i, : int(steps[i])].cpu()))
        model.train(was_training)
        return out
