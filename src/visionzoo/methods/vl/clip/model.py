"""CLIP contrastive training (Radford et al., ICML 2021): the recipe A-CLIP and CenterCLIP build on.

A batch of N (image, caption) pairs gives an N x N similarity matrix; the loss is cross-entropy towards
the diagonal in both directions (image -> text and text -> image), averaged (paper Fig. 3):

    logits = exp(t) * norm(I) @ norm(T).T,     L = (CE(logits, diag) + CE(logits.T, diag)) / 2

``t`` is a learnable log-temperature, initialised at log(1/0.07) and clamped to <= log(100) after
each optimiser step so the logits cannot grow without bound. Across GPUs the features of every rank
are all-gathered *with gradient* (``torch.distributed.nn.functional.all_gather``): each rank scores its
own images against every rank's captions (and vice versa), so the negatives are the global batch and
the summed gradients equal those of one big batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import create_model, register_model
from visionzoo.engine import OptimConfig, StepContext, StepOutput, Task, TrainConfig
from visionzoo.metrics.zero_shot import image_text_retrieval, zero_shot_accuracy, zero_shot_classifier
from visionzoo.nn.clip import CLIP, CLIPConfig, clip_tiny, clip_vit_b16, clip_vit_b32, load_openai_state_dict

ARCHS = {"tiny": clip_tiny, "vit_b32": clip_vit_b32, "vit_b16": clip_vit_b16}
MAX_LOGIT_SCALE = math.log(100.0)


@register_model("clip")
def clip_model(arch: str = "vit_b32", act: str = "quick_gelu") -> CLIP:
    """OpenAI-layout CLIP by architecture name (``tiny``, ``vit_b32``, ``vit_b16``)."""
    if arch not in ARCHS:
        raise ConfigError(f"model.arch: unknown CLIP architecture {arch!r}; expected one of {sorted(ARCHS)}")
    cfg: CLIPConfig = ARCHS[arch]()
    cfg.act = act
    return CLIP(cfg)


# ------------------------------------------------------------------------------------------------ loss
def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(B, E) local features -> ((world*B, E) features of every rank, this rank's index).

    Single process (or no process group): ``(x, 0)``. Under DDP the gather keeps the autograd graph, so
    gradients from other ranks' losses flow back to this rank's encoder.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(x), dim=0), torch.distributed.get_rank()
    return x, 0


def clip_contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor,
                          gather: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE. image_embeds, text_embeds: (B, E) L2-normalised; logit_scale: log-space scalar.

    Returns (loss, logits_per_image (B, world*B)); pair i of this rank sits at column rank*B + i.
    """
    B = image_embeds.shape[0]
    if gather:
        all_images, rank = gather_with_grad(image_embeds)
        all_texts, _ = gather_with_grad(text_embeds)
    else:
        all_images, all_texts, rank = image_embeds, text_embeds, 0
    scale = logit_scale.exp()
    logits_per_image = scale * image_embeds @ all_texts.t()  # (B, world*B)
    logits_per_text = scale * text_embeds @ all_images.t()  # (B, world*B)
    targets = torch.arange(B, device=image_embeds.device) + rank * B
    loss = 0.5 * (F.cross_entropy(logits_per_image, targets) + F.cross_entropy(logits_per_text, targets))
    return loss, logits_per_image


# ------------------------------------------------------------------------------------------------ config
@dataclass
class ModelConfig:
    arch: Literal["tiny", "vit_b32", "vit_b16"] = "tiny"
    act: Literal["quick_gelu", "gelu"] = "quick_gelu"
    pretrained: str = ""  # OpenAI-layout weights (.safetensors / state dict .pt) to fine-tune from
    allow_torchscript: bool = False  # OpenAI's JIT .pt archives run code when loaded: opt in explicitly


@dataclass
class ObjectiveConfig:
    gather_features: bool = True  # all-gather (with gradient) across ranks: negatives from the global batch
    max_logit_scale: float = MAX_LOGIT_SCALE  # clamp of the log-temperature after each step


@dataclass
class DataConfig:
    root: str = "data/image-captions"
    synth: str = "image-captions"  # written to root by `visionzoo data synth` when root is missing
    format: Literal["csv", "tar"] = "csv"  # root/{split}.csv, or root/shards/{split}-*.tar
    train_split: str = "train"
    val_split: str = "val"
    labels: str = "val_labels.csv"  # key,label for zero-shot, classes in classes.txt beside it; "" = none


@dataclass
class EvalConfig:
    templates: list[str] = field(default_factory=lambda: ["a photo of a {}."])
    batch_size: int = 256


@dataclass
class CLIPTrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


# ------------------------------------------------------------------------------------------------ task
class CLIPTask(Task):
    def __init__(self, cfg: CLIPTrainConfig):
        super().__init__()
        self.cfg = cfg
        self.model: CLIP = create_model("clip", arch=cfg.model.arch, act=cfg.model.act)
        if cfg.model.pretrained:
            load_openai_state_dict(cfg.model.pretrained, model=self.model, allow_torchscript=cfg.model.allow_torchscript)
        self._val: dict[str, list[torch.Tensor]] = {"image": [], "text": []}

    @property
    def context_length(self) -> int:
        return self.model.cfg.text.context_length

    @property
    def image_size(self) -> int:
        return self.model.cfg.vision.image_size

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        images, tokens = batch  # (B, 3, H, W), (B, L)
        img = self.model.encode_image(images, normalize=True)
        txt = self.model.encode_text(tokens, normalize=True)
        loss, logits = clip_contrastive_loss(img, txt, self.model.logit_scale, self.cfg.objective.gather_features)
        with torch.no_grad():  # in-batch image->text top-1, a cheap training signal
            B = img.shape[0]
            targets = torch.arange(B, device=img.device) + (_rank() * B if logits.shape[1] > B else 0)
            acc = (logits.argmax(1) == targets).float().mean()
        return StepOutput(loss, {"logit_scale": self.model.logit_scale.detach().exp(), "i2t_batch_acc": acc})

    @torch.no_grad()
    def on_after_optimizer_step(self, ctx: StepContext) -> None:
        self.model.logit_scale.clamp_(0, self.cfg.objective.max_logit_scale)

    # -- evaluation --------------------------------------------------------------------------------
    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        images, tokens = batch
        with torch.no_grad():
            self._val["image"].append(self.model.encode_image(images, normalize=True).cpu())
            self._val["text"].append(self.model.encode_text(tokens, normalize=True).cpu())

    def validation_metrics(self) -> dict[str, float]:
        if not self._val["image"]:
            return {}
        m = image_text_retrieval(torch.cat(self._val["image"]), torch.cat(self._val["text"]))
        self._val = {"image": [], "text": []}
        return {k: v for k, v in m.items() if k in ("i2t_r1", "t2i_r1")}

    def export_model(self) -> nn.Module:
        return self.model


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


# ------------------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def encode_pairs(model: CLIP, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit image and caption embeddings (N, E) of a paired, unshuffled loader."""
    model.eval()
    device = model.logit_scale.device
    images, texts = [], []
    for x, tokens in loader:
        images.append(model.encode_image(x.to(device), normalize=True).cpu())
        texts.append(model.encode_text(tokens.to(device), normalize=True).cpu())
    return torch.cat(images), torch.cat(texts)


def evaluate(task: CLIPTask, datamodule, cfg: CLIPTrainConfig) -> dict[str, float]:
    """Image<->text retrieval R@1/5/10 on the val pairs; zero-shot top-1 over the labelled classes."""
    from visionzoo.nn.tokenizer import clip_tokenize

    model = task.model
    device = model.logit_scale.device
    was_training = model.training
    image_embeds, text_embeds = encode_pairs(model, datamodule.eval_loader())
    out = {k: v for k, v in image_text_retrieval(image_embeds, text_embeds).items() if "_r" in k}
    if datamodule.classes:
        keys = datamodule.val.keys
        missing = [k for k in keys if k not in datamodule.labels]
        if missing:
            from visionzoo.core.errors import DataError

            raise DataError(datamodule.labels_path, f"no label for {len(missing)} val key(s), e.g. {missing[0]!r}")
        labels = torch.tensor([datamodule.labels[k] for k in keys])
        classifier = zero_shot_classifier(
            lambda prompts: model.encode_text(clip_tokenize(prompts, task.context_length).to(device), normalize=True).cpu(),
            datamodule.classes, cfg.eval.templates)
        out["zeroshot_top1"] = zero_shot_accuracy(image_embeds, classifier, labels)["top1"]
        out["zeroshot_chance"] = 100.0 / len(datamodule.classes)
    model.train(was_training)
    return out
