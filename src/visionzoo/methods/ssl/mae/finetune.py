"""MAE's downstream protocols on a pre-trained encoder: end-to-end fine-tuning with layer-wise lr decay
(mean patch token -> fc_norm -> head) and linear probing (frozen encoder, cls token -> affine-free
BatchNorm -> linear head), selected by ``finetune.stage`` in a recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import CheckpointError
from visionzoo.core.registry import create_model, register_model
from visionzoo.engine import StepContext, StepOutput, Task
from visionzoo.methods.ssl.mim_eval import layer_decay_param_groups
from visionzoo.nn.vit import VisionTransformer, ViTConfig, convert_mae_state_dict, load_timm_state_dict


@register_model("mae_vit_classifier")
def mae_vit_classifier(linear_probe: bool = False, **vit) -> VisionTransformer:
    """A ViT classifier (``ViTConfig`` fields); ``linear_probe`` puts MAE's BatchNorm(affine=False) before the head."""
    model = VisionTransformer(ViTConfig(**vit))
    if linear_probe:
        head = model.head
        nn.init.trunc_normal_(head.weight, std=0.01)
        model.head = nn.Sequential(nn.BatchNorm1d(head.in_features, affine=False, eps=1e-6), head)
    return model


def load_encoder_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Encoder weights in timm layout from a pretrained folder of ours (MAE, DeepMIM or any model with an
    ``encoder`` ViT) or an official MAE / DeepMIM checkpoint file (``checkpoint-*.pth``)."""
    from visionzoo.core.hub import from_pretrained

    path = Path(path)
    if path.is_dir():
        model = from_pretrained(path)
        encoder = getattr(model, "encoder", model)
        if not isinstance(encoder, VisionTransformer):
            raise CheckpointError(f"{path}: holds a {type(model).__name__} without a ViT encoder")
        return encoder.state_dict()
    if not path.is_file():
        raise CheckpointError(f"{path}: pretrained folder or checkpoint file not found")
    # official files pickle an argparse.Namespace next to the weights; allow just that class, no arbitrary code
    torch.serialization.add_safe_globals([argparse.Namespace])
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the same user error
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from None
    return convert_mae_state_dict(checkpoint, source=str(path))


class MAEClassifierTask(Task):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        m, f = cfg.model, cfg.finetune
        self.linear_probe = f.stage == "linprobe"
        num_classes = cfg.data.num_classes
        vit = dict(img_size=m.img_size, patch_size=m.patch_size, in_chans=m.in_chans, embed_dim=m.embed_dim,
                   depth=m.depth, num_heads=m.num_heads, mlp_ratio=m.mlp_ratio, norm_eps=m.norm_eps,
                   num_classes=num_classes, global_pool="token" if self.linear_probe else f.global_pool,
                   drop_path_rate=0.0 if self.linear_probe else f.drop_path)
        self.model = create_model("mae_vit_classifier", linear_probe=self.linear_probe, **vit)
        if f.init:
            sd = convert_mae_state_dict(load_encoder_state(f.init), fc_norm=self.model.config.use_fc_norm,
                                        source=f.init)
            missing, unexpected = load_timm_state_dict(self.model, sd, strict=False, source=f.init)
            if unexpected or any(not k.startswith(("head", "fc_norm")) for k in missing):
                raise CheckpointError(f"{f.init}: encoder keys do not match: missing {missing[:4]}, "
                                      f"unexpected {unexpected[:4]}")
            if not self.linear_probe:
                nn.init.trunc_normal_(self.model.head.weight, std=2e-5)  # MAE's fine-tune head init
        if self.linear_probe:
            for name, p in self.model.named_parameters():
                p.requires_grad = name.startswith("head.")
        self._correct, self._total = 0, 0

    def train(self, mode: bool = True):
        super().train(mode)
        if self.linear_probe:  # the frozen encoder stays in eval mode (drop-path off); the BN head trains
            self.model.eval()
            self.model.head.train(mode)
        return self

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        images, labels = batch
        logits = self.model(images)
        smoothing = 0.0 if self.linear_probe else self.cfg.finetune.label_smoothing
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        return StepOutput(loss, {"acc": (logits.argmax(1) == labels).float().mean().detach()})

    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        if dataloader_idx != 1:  # loader 0 is the train split (k-NN bank of the pre-training tasks)
            return
        images, labels = batch
        with torch.no_grad():
            self._correct += (self.model(images).argmax(1) == labels).sum().item()
        self._total += len(labels)

    def validation_metrics(self) -> dict[str, float]:
        if not self._total:
            return {}
        out = {"top1": 100.0 * self._correct / self._total}
        self._correct, self._total = 0, 0
        return out

    def param_groups(self, weight_decay: float, no_decay_norm_and_bias: bool = True) -> list[dict]:
        if self.linear_probe:
            return [{"params": [p for p in self.model.head.parameters() if p.requires_grad],
                     "weight_decay": weight_decay}]
        return layer_decay_param_groups(self.model, self.cfg.optim.lr, weight_decay, self.cfg.finetune.layer_decay,
                                        no_decay_norm_and_bias)

    def export_model(self) -> nn.Module:
        return self.model
