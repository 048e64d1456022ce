"""Evaluation of masked-image-modeling encoders, shared by MAE, DeepMIM and TinyMIM.

- ``knn``: weighted k-NN on frozen pooled features (train split = memory bank);
- ``linear``: a linear classifier on frozen, standardised features;
- ``linear_block{b}`` / ``knn_block{b}``: the same on the hidden states after block ``b`` (DeepMIM's claim is
  about shallow layers, so the per-layer probe is its sensitive metric);
- ``fewlabel_ft``: end-to-end fine-tuning on a stratified fraction of the train labels with layer-wise lr
  decay (the recipe MAE-style papers fine-tune with), then top-1 on val.

Also ``layer_decay_param_groups`` (BEiT / MAE layer-wise lr decay for a ViT) and
``save_reconstruction_grid`` (masked input | reconstruction | target PNG).
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.data.image_transforms import IMAGENET_MEAN, IMAGENET_STD
from visionzoo.metrics.knn import knn_accuracy
from visionzoo.nn.vit import VisionTransformer, convert_mae_state_dict, load_timm_state_dict

__all__ = [
    "pooled_features", "extract_features", "linear_probe", "per_layer_linear_probe", "layer_decay_param_groups",
    "classifier_from_encoder", "few_label_finetune", "stratified_subset", "classifier_accuracy",
    "evaluate_encoder", "save_reconstruction_grid",
]


# ------------------------------------------------------------------------------------------------ features
def _pool(tokens: torch.Tensor, num_prefix: int, pool: str) -> torch.Tensor:
    # (B, P + N, C) -> (B, C)
    return tokens[:, 0] if pool == "cls" else tokens[:, num_prefix:].mean(dim=1)


@torch.no_grad()
def pooled_features(encoder: VisionTransformer, images: torch.Tensor, pool: str = "avg") -> torch.Tensor:
    """(B, C_in, H, W) -> (B, C): mean patch token (``avg``) or cls token after the final norm, unmasked input."""
    if pool not in ("avg", "cls"):
        raise ConfigError(f"eval.pool={pool!r}; expected 'avg' or 'cls'")
    return _pool(encoder.forward_features(images).tokens, encoder.num_prefix_tokens, pool)


@torch.no_grad()
def extract_features(encoder: VisionTransformer, loader, blocks=(), pool: str = "avg"
                     ) -> tuple[dict[str | int, torch.Tensor], torch.Tensor]:
    """Features of a whole loader: ``{"final": (N, C), b: (N, C) for b in blocks}`` and labels (N,).

    Block features are the raw hidden states after block ``b`` (1-based, before any norm), pooled the same way.
    """
    was_training = encoder.training
    encoder.eval()
    feats: dict[str | int, list] = {"final": [], **{b: [] for b in blocks}}
    labels = []
    for images, y in loader:
        out = encoder.forward_features(images, return_taps=blocks)
        feats["final"].append(_pool(out.tokens, encoder.num_prefix_tokens, pool))
        for b in blocks:
            feats[b].append(_pool(out.taps[b], encoder.num_prefix_tokens, pool))
        labels.append(torch.as_tensor(y))
    encoder.train(was_training)
    return {k: torch.cat(v) for k, v in feats.items()}, torch.cat(labels)


# ------------------------------------------------------------------------------------------------ probes
def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, *,
                 epochs: int = 100, lr: float = 0.01, weight_decay: float = 1e-4, batch_size: int = 256,
                 seed: int = 0) -> float:
    """Top-1 (%) of a linear classifier trained with Adam on frozen features standardised with train statistics
    (the role of MAE's affine-free BatchNorm before its linear head)."""
    g = torch.Generator().manual_seed(seed)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    xtr, xte = (train_x - mean) / std, (test_x - mean) / std
    head = nn.Linear(train_x.shape[1], num_classes)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(epochs):
            for idx in torch.randperm(len(train_y), generator=g).split(batch_size):
                loss = F.cross_entropy(head(xtr[idx]), train_y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    with torch.no_grad():
        return 100.0 * (head(xte).argmax(1) == test_y).float().mean().item()


def per_layer_linear_probe(encoder: VisionTransformer, train_loader, test_loader, blocks, *, pool: str = "avg",
                           epochs: int = 100, lr: float = 0.01, seed: int = 0) -> dict[int, float]:
    """Linear-probe top-1 (%) on the hidden states after each of ``blocks`` (1-based)."""
    train, ytr = extract_features(encoder, train_loader, blocks, pool)
    test, yte = extract_features(encoder, test_loader, blocks, pool)
    return {b: linear_probe(train[b], ytr, test[b], yte, epochs=epochs, lr=lr, seed=seed) for b in blocks}


# ------------------------------------------------------------------------------------------------ fine-tuning
def layer_decay_param_groups(vit: VisionTransformer, lr: float, weight_decay: float, layer_decay: float,
                             no_decay_1d: bool = True) -> list[dict]:
    """BEiT/MAE layer-wise lr decay: the embeddings are layer 0, block i is layer i + 1, the norms and head are
    layer depth + 1, and layer l trains at ``lr * layer_decay ** (depth + 1 - l)``.

    Each group carries its own ``lr`` (the engine's LambdaLR scales every group's initial lr, so the decay
    survives warm-up and cosine) and ``lr_scale``; 1-d tensors (biases, norms, cls/pos tokens) get no weight decay.
    """
    depth = len(vit.blocks)
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in vit.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith(("cls_token", "pos_embed", "patch_embed")):
            layer = 0
        elif name.startswith("blocks."):
            layer = int(name.split(".")[1]) + 1
        else:
            layer = depth + 1
        decay = not (no_decay_1d and (p.ndim <= 1 or name in ("cls_token", "pos_embed")))
        scale = layer_decay ** (depth + 1 - layer)
        group = groups.setdefault((layer, decay), {"params": [], "weight_decay": weight_decay if decay else 0.0,
                                                   "lr": lr * scale, "lr_scale": scale, "layer_id": layer})
        group["params"].append(p)
    return [groups[k] for k in sorted(groups)]


def classifier_from_encoder(encoder: VisionTransformer, num_classes: int, global_pool: str = "avg",
                            drop_path: float = 0.0) -> VisionTransformer:
    """A classifier ViT with ``encoder``'s weights: MAE's fine-tune model (mean patch token -> fc_norm -> head,
    head initialised with std 2e-5) for ``avg``, or cls token -> norm -> head for ``token``."""
    cfg = replace(encoder.config, global_pool=global_pool, fc_norm=None, num_classes=num_classes,
                  drop_path_rate=drop_path)
    model = VisionTransformer(cfg)
    sd = convert_mae_state_dict(encoder.state_dict(), fc_norm=cfg.use_fc_norm, source="encoder")
    load_timm_state_dict(model, sd, strict=False)
    nn.init.trunc_normal_(model.head.weight, std=2e-5)
    nn.init.zeros_(model.head.bias)
    return model


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """Indices of ``round(fraction * n_c)`` (at least 1) random samples of every class c."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"eval.few_label_fraction={fraction}; expected 0 < fraction <= 1")
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        n = max(1, round(fraction * len(idx)))
        picked.append(idx[torch.randperm(len(idx), generator=g)[:n]])
    return torch.cat(picked).sort().values


def _jitter(images: torch.Tensor, g: torch.Generator, zoom: float = 0.15, shift: float = 0.1) -> torch.Tensor:
    # mild random zoom + shift of a normalised batch (B, C, H, W): the fine-tune augmentation for tiny images
    B = images.shape[0]
    s = 1 - zoom * torch.rand(B, generator=g)
    t = (torch.rand(B, 2, generator=g) * 2 - 1) * shift
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = s, s, t
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


@torch.no_grad()
def classifier_accuracy(model: nn.Module, loader) -> float:
    was_training = model.training
    model.eval()
    correct = total = 0
    for images, y in loader:
        y = torch.as_tensor(y)
        correct += (model(images).argmax(1) == y).sum().item()
        total += len(y)
    model.train(was_training)
    return 100.0 * correct / max(1, total)


def few_label_finetune(encoder: VisionTransformer, train_x: torch.Tensor, train_y: torch.Tensor,
                       test_x: torch.Tensor, test_y: torch.Tensor, *, fraction: float = 0.1, epochs: int = 50,
                       lr: float = 1e-3, layer_decay: float = 0.75, weight_decay: float = 0.05,
                       batch_size: int = 32, drop_path: float = 0.1, seed: int = 0) -> float:
    """Fine-tune a copy of ``encoder`` end to end on a stratified ``fraction`` of (train_x, train_y) with AdamW,
    layer-wise lr decay, warm-up + cosine and label smoothing 0.1; returns val top-1 (%). The encoder is untouched."""
    g = torch.Generator().manual_seed(seed)
    idx = stratified_subset(train_y, fraction, seed)
    x, y = train_x[idx], train_y[idx]
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    with torch.random.fork_rng():  # the head init and drop-path must not shift the caller's RNG stream
        torch.manual_seed(seed)
        model = classifier_from_encoder(copy.deepcopy(encoder), num_classes, "avg", drop_path)
        opt = torch.optim.AdamW(layer_decay_param_groups(model, lr, weight_decay, layer_decay), betas=(0.9, 0.999))
        base = [grp["lr"] for grp in opt.param_groups]
        steps_per_epoch = math.ceil(len(y) / batch_size)
        total, warmup = epochs * steps_per_epoch, max(1, epochs * steps_per_epoch // 10)
        step = 0
        model.train()
        with torch.enable_grad():
            for _ in range(epochs):
                for b in torch.randperm(len(y), generator=g).split(batch_size):
                    f = (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
                    for grp, lr0 in zip(opt.param_groups, base):
                        grp["lr"] = lr0 * f
                    loss = F.cross_entropy(model(_jitter(x[b], g)), y[b], label_smoothing=0.1)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    step += 1
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(t).argmax(1) for t in test_x.split(256)])
    return 100.0 * (pred == test_y).float().mean().item()


# ------------------------------------------------------------------------------------------------ all together
def _stack(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[(x, torch.as_tensor(y)) for x, y in loader])
    return torch.cat(xs), torch.cat(ys)


def evaluate_encoder(encoder: VisionTransformer, datamodule, eval_cfg, *, seed: int = 0, reconstructor=None,
                     mask_ratio: float = 0.75) -> dict[str, float]:
    """Every metric ``eval_cfg`` asks for (fields of ``mae.model.EvalConfig``), on ``datamodule``'s val loaders
    (train split as bank / probe training set, val split as test set)."""
    e = eval_cfg
    bank_loader, val_loader = datamodule.val_dataloader()
    blocks = list(e.probe_blocks)
    train, ytr = extract_features(encoder, bank_loader, blocks, e.pool)
    test, yte = extract_features(encoder, val_loader, blocks, e.pool)
    out = {"knn": knn_accuracy(train["final"], ytr, test["final"], yte, k=e.knn_k, temperature=e.knn_temperature),
           "linear": linear_probe(train["final"], ytr, test["final"], yte, epochs=e.linear_probe_epochs,
                                  lr=e.linear_probe_lr, seed=seed)}
    for b in blocks:
        out[f"linear_block{b}"] = linear_probe(train[b], ytr, test[b], yte, epochs=e.linear_probe_epochs,
                                               lr=e.linear_probe_lr, seed=seed)
        out[f"knn_block{b}"] = knn_accuracy(train[b], ytr, test[b], yte, k=e.knn_k, temperature=e.knn_temperature)
    if e.few_label_fraction > 0:
        xtr, ytr_img = _stack(bank_loader)
        xte, yte_img = _stack(val_loader)
        out["fewlabel_ft"] = few_label_finetune(encoder, xtr, ytr_img, xte, yte_img, fraction=e.few_label_fraction,
                                                epochs=e.few_label_epochs, lr=e.few_label_lr,
                                                layer_decay=e.few_label_layer_decay,
                                                batch_size=e.few_label_batch_size, seed=seed)
    if e.visualize and reconstructor is not None:
        images, _ = next(iter(val_loader))
        save_reconstruction_grid(reconstructor, images[:8], e.visualize, mask_ratio=mask_ratio, seed=seed)
    return out


# ------------------------------------------------------------------------------------------------ visualisation
@torch.no_grad()
def save_reconstruction_grid(model, images: torch.Tensor, path: str | Path, *, mask_ratio: float = 0.75,
                             noise: torch.Tensor | None = None, seed: int = 0, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                             upscale: int = 4) -> Path:
    """Write a PNG with one row per image: masked input | reconstruction | target (original).

    ``model.reconstruct(images, mask_ratio, noise)`` must return those three (B, C, H, W) tensors in the input
    normalisation (``MaskedAutoencoderViT`` and ``DeepMIM`` do). Small images are enlarged by ``upscale``.
    """
    from PIL import Image

    was_training = model.training
    model.eval()
    if noise is None:
        g = torch.Generator().manual_seed(seed)
        noise = torch.rand(images.shape[0], model.num_patches, generator=g).to(images.device)
    panels = model.reconstruct(images, mask_ratio, noise)
    model.train(was_training)
    m = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    cols = [((p * s + m).clamp(0, 1) * 255).round().byte().cpu() for p in panels]  # 3 x (B, C, H, W)
    B, C, H, W = cols[0].shape
    pad = 2
    grid = torch.full((C, B * (H + pad) + pad, 3 * (W + pad) + pad), 255, dtype=torch.uint8)
    for r in range(B):
        for c, panel in enumerate(cols):
            y0, x0 = pad + r * (H + pad), pad + c * (W + pad)
            grid[:, y0:y0 + H, x0:x0 + W] = panel[r]
    img = Image.fromarray(grid.permute(1, 2, 0).squeeze(-1).numpy())
    if upscale > 1:
        img = img.resize((img.width * upscale, img.height * upscale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
