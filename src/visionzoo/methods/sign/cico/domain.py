"""CiCo's domain-aware sign encoder (spec §3b): window features, pseudo-labels, fine-tuning, fusion.

1. **Domain-agnostic features.** A sign classifier trained elsewhere (the BSL-1K I3D, ``nn.i3d``; or any
   module with ``extract_features`` and ``forward``) runs over sliding windows of every target video
   (16 frames, stride 1 in the paper); one feature per window goes to a per-video file (``data.py``).
2. **Pseudo-labels.** On the target *training* videos, windows whose top softmax probability exceeds 0.6
   are kept; per (class, video) the most confident window wins, windows starting within 3 frames of it
   are merged into it and the others within 24 frames are suppressed (:func:`pseudo_label_windows`).
3. **Domain-aware encoder.** A copy of the classifier is fine-tuned on those clips (SGD lr 1e-2,
   momentum 0.9, no weight decay, 15 epochs, batch 4) and extracts a second set of features.
4. **Fusion** happens when the features are read: (1 - alpha) aware + alpha agnostic (``data.fuse_features``).

    python -m visionzoo.methods.sign.cico.domain extract --help
    python -m visionzoo.methods.sign.cico.domain adapt --help
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.core.registry import register_model
from visionzoo.methods.sign.cico.data import feature_path, read_feature_file, write_feature_file


# ------------------------------------------------------------------------------------------------ encoders
class TinySignEncoder(nn.Module):
    """A three-layer 3D CNN with the InceptionI3d interface, for CPU proxies and tests.

    The full I3D costs ~0.5 GFLOP per 16x32x32 window; the proxies need thousands of windows per seed.
    ``extract_features`` (B, C, T, H, W) -> (B, feature_dim); ``forward`` -> class logits.
    """

    def __init__(self, in_chans: int = 3, width: int = 16, feature_dim: int = 64, num_classes: int = 30,
                 dropout: float = 0.2):
        super().__init__()

        def unit(i, o, k, s):
            return nn.Sequential(nn.Conv3d(i, o, k, s, padding=tuple(x // 2 for x in k), bias=False),
                                 nn.BatchNorm3d(o), nn.ReLU(inplace=True))

        self.stem = unit(in_chans, width, (3, 5, 5), (1, 2, 2))
        self.mid = unit(width, 2 * width, (3, 3, 3), (2, 2, 2))
        self.top = unit(2 * width, feature_dim, (3, 3, 3), (1, 2, 2))
        self.dropout = nn.Dropout(dropout)
        self.logits = nn.Linear(feature_dim, num_classes)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(self.mid(self.stem(x))).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.dropout(self.extract_features(x)))


@register_model("cico_tiny_sign_encoder")
def cico_tiny_sign_encoder(**kwargs) -> TinySignEncoder:
    """The proxy's stand-in for the BSL-1K I3D (same interface, ~100x cheaper)."""
    return TinySignEncoder(**kwargs)


def load_sign_encoder(path: str | Path) -> nn.Module:
    """A pretrained folder (``save_pretrained``) or an I3D checkpoint file (e.g. ``bsl5k.pth.tar``)."""
    path = Path(path)
    if path.is_dir():
        from visionzoo.core.hub import from_pretrained

        return from_pretrained(path)
    from visionzoo.nn.i3d import load_i3d

    return load_i3d(path).eval()


# ------------------------------------------------------------------------------------------------ windows
@dataclass
class WindowConfig:
    window: int = 16  # frames per window
    stride: int = 1  # frames between window starts
    resize: int = 256  # shorter side before the centre crop; 0 = keep
    crop: int = 224  # centre crop; 0 = keep
    batch_size: int = 8


def prepare_video(frames: torch.Tensor, cfg: WindowConfig) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (3, T, h, w) in [-1, 1], resized and centre-cropped as configured."""
    x = frames.permute(3, 0, 1, 2).float() / 127.5 - 1.0  # (3, T, H, W)
    if cfg.resize:
        H, W = x.shape[2:]
        s = cfg.resize / min(H, W)
        x = F.interpolate(x, size=(round(H * s), round(W * s)), mode="bilinear", align_corners=False, antialias=True)
    if cfg.crop:
        H, W = x.shape[2:]
        if min(H, W) < cfg.crop:
            raise ValueError(f"prepare_video: frames of {H}x{W} are smaller than the {cfg.crop} px crop")
        top, left = (H - cfg.crop) // 2, (W - cfg.crop) // 2
        x = x[:, :, top:top + cfg.crop, left:left + cfg.crop]
    return x


def pad_to_window(video: torch.Tensor, window: int) -> torch.Tensor:
    """Repeat the last frame of a (C, T, H, W) video shorter than one window."""
    T = video.shape[1]
    if T >= window:
        return video
    return torch.cat([video, video[:, -1:].expand(-1, window - T, -1, -1)], 1)


def windows_of(video: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """(C, T, H, W) -> (N, C, window, H, W), N = floor((T - window) / stride) + 1."""
    return pad_to_window(video, window).unfold(1, window, stride).permute(1, 0, 4, 2, 3)


@torch.no_grad()
def window_outputs(encoder: nn.Module, video: torch.Tensor, cfg: WindowConfig,
                   with_probs: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (N, D) of every window of a prepared video, and softmax probabilities (N, K) if asked."""
    encoder.eval()
    wins = windows_of(video, cfg.window, cfg.stride)
    feats, probs = [], []
    for i in range(0, len(wins), cfg.batch_size):
        chunk = wins[i:i + cfg.batch_size]
        f = encoder.extract_features(chunk)
        feats.append(f)
        if with_probs:
            probs.append(classify_features(encoder, f).softmax(-1))
    return torch.cat(feats), (torch.cat(probs) if with_probs else None)


def classify_features(encoder: nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """Class logits from pooled features, for both the I3D (1x1x1 conv head) and the tiny encoder."""
    head = encoder.logits
    if isinstance(head, nn.Linear):
        return head(feats)
    return head(feats[:, :, None, None, None]).flatten(1)  # InceptionI3d's Unit3D logits


def read_prepared(path: Path, cfg: WindowConfig) -> torch.Tensor:
    from visionzoo.data.video import read_video

    return prepare_video(read_video(path), cfg)


def extract_features_to_dir(encoder: nn.Module, samples, out_dir: str | Path, split: str, cfg: WindowConfig,
                            overwrite: bool = False, log=None) -> int:
    """Write ``out_dir/<split>/<name>.safetensors`` for every sample (a ``SignSample`` with a video ``media``).

    Existing files that read back valid are kept unless ``overwrite`` (an interrupted extraction resumes).
    Returns how many files were written.
    """
    written = 0
    dim = None
    for s in samples:
        path = feature_path(out_dir, split, s.name)
        if path.is_file() and not overwrite:
            try:
                read_feature_file(path, dim)
                continue
            except DataError:
                pass  # a half-written or stale file: extract again
        if s.media is None or not Path(s.media).is_file():
            raise s.error(f"video {s.media} not found; expected the clip to extract features from")
        feats, _ = window_outputs(encoder, read_prepared(Path(s.media), cfg), cfg)
        dim = feats.shape[1]
        write_feature_file(path, feats, {"window": str(cfg.window), "stride": str(cfg.stride)})
        written += 1
        if log:
            log(f"{path}: {tuple(feats.shape)}")
    return written


# ------------------------------------------------------------------------------------------------ pseudo-labels
@dataclass
class PseudoLabel:
    start: int  # first frame of the window
    label: int
    confidence: float


def pseudo_label_windows(probs: torch.Tensor, stride: int = 1, threshold: float = 0.6, merge: int = 3,
                         suppress: int = 24) -> list[PseudoLabel]:
    """Pseudo-labelled windows of one video from per-window probabilities (N, K).

    A window is a candidate of its top class when that probability exceeds ``threshold``. Per class,
    the most confident candidate is kept; candidates starting within ``merge`` frames of it are merged
    into it (its start becomes their confidence-weighted mean start) and the rest within ``suppress``
    frames are dropped; repeat with what is left. Sorted by start frame.
    """
    conf, label = probs.max(-1)
    out: list[PseudoLabel] = []
    for k in label[conf > threshold].unique().tolist():
        idx = ((label == k) & (conf > threshold)).nonzero().flatten()
        starts, c = (idx * stride).double(), conf[idx].double()
        alive = torch.ones(len(idx), dtype=torch.bool)
        while alive.any():
            best = int(torch.where(alive, c, -1.0).argmax())
            dist = (starts - starts[best]).abs()
            near = alive & (dist <= merge)
            start = float((starts[near] * c[near]).sum() / c[near].sum())
            out.append(PseudoLabel(int(round(start)), int(k), float(c[best])))
            alive &= dist > suppress
    return sorted(out, key=lambda p: (p.start, p.label))


# ------------------------------------------------------------------------------------------------ training
@dataclass
class ClassifierTrainConfig:
    """The I3D trainer's optimisation (spec §3b): SGD 1e-2, momentum 0.9, no decay, 15 epochs, batch 4."""

    epochs: int = 15
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 4
    milestones: tuple[int, ...] = (20, 40)  # epochs; never reached within 15 epochs, as in the official config
    gamma: float = 0.1
    jitter: int = 0  # random temporal shift (frames) of each clip's window
    seed: int = 0


@dataclass
class LabelledClip:
    video: torch.Tensor  # prepared (C, T, H, W)
    start: int  # first frame of the window (shifted by the jitter, clamped into the video)
    label: int


def train_window_classifier(encoder: nn.Module, clips: list[LabelledClip], window: int,
                            cfg: ClassifierTrainConfig) -> nn.Module:
    """Train (a copy of) ``encoder`` to classify ``window``-frame clips; returns the trained copy."""
    if not clips:
        raise ConfigError("train_window_classifier: no clips (no window passed the pseudo-label threshold?)")
    model = copy.deepcopy(encoder).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), cfg.gamma)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(clips), generator=gen).tolist()
        for i in range(0, len(order) - cfg.batch_size + 1 if len(order) >= cfg.batch_size else 1, cfg.batch_size):
            batch = [clips[j] for j in order[i:i + cfg.batch_size]]
            x = torch.stack([_cut(c, window, cfg.jitter, gen) for c in batch])
            y = torch.tensor([c.label for c in batch])
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


def _cut(clip: LabelledClip, window: int, jitter: int, gen: torch.Generator) -> torch.Tensor:
    video = pad_to_window(clip.video, window)
    shift = int(torch.randint(-jitter, jitter + 1, (1,), generator=gen)) if jitter else 0
    start = min(max(0, clip.start + shift), video.shape[1] - window)
    return video[:, start:start + window]


def pseudo_labelled_clips(encoder: nn.Module, samples, cfg: WindowConfig, threshold: float = 0.6, merge: int = 3,
                          suppress: int = 24, videos: dict | None = None) -> tuple[list[LabelledClip], int]:
    """Pseudo-label every target training video; returns the clips and how many windows were scored."""
    clips, scored = [], 0
    for s in samples:
        video = videos[s.name] if videos is not None else read_prepared(Path(s.media), cfg)
        _, probs = window_outputs(encoder, video, cfg, with_probs=True)
        scored += len(probs)
        clips += [LabelledClip(video, p.start, p.label) for p in
                  pseudo_label_windows(probs, cfg.stride, threshold, merge, suppress)]
    return clips, scored


# ------------------------------------------------------------------------------------------------ command line
def add_args(parser) -> None:
    sub = parser.add_subparsers(dest="command", required=True)
    common = []
    for name, help_ in (("extract", "sliding-window features of one split -> FEATURES/<split>/<name>.safetensors"),
                        ("adapt", "pseudo-label the train split, fine-tune a domain-aware copy of the encoder, "
                                  "save it, and extract its features for the given splits")):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--dataset", default="how2sign", choices=["how2sign", "phoenix2014t", "csl-daily"])
        p.add_argument("--root", required=True, help="dataset root (the folder the reader gets)")
        p.add_argument("--encoder", required=True, help="pretrained folder or I3D checkpoint (e.g. bsl5k.pth.tar)")
        p.add_argument("--out", required=True, help="features folder")
        p.add_argument("--splits", nargs="+", default=["train", "val", "test"])
        p.add_argument("--window", type=int, default=16)
        p.add_argument("--stride", type=int, default=1)
        p.add_argument("--resize", type=int, default=256, help="shorter side before the centre crop (0: keep)")
        p.add_argument("--crop", type=int, default=224, help="centre crop (0: keep)")
        p.add_argument("--batch-size", type=int, default=8, dest="batch_size")
        p.add_argument("--overwrite", action="store_true")
        common.append(p)
    adapt = common[1]
    adapt.add_argument("--save-encoder", required=True, dest="save_encoder", help="folder for the domain-aware encoder")
    adapt.add_argument("--threshold", type=float, default=0.6)
    adapt.add_argument("--merge", type=int, default=3)
    adapt.add_argument("--suppress", type=int, default=24)
    adapt.add_argument("--epochs", type=int, default=15)
    adapt.add_argument("--lr", type=float, default=1e-2)
    adapt.add_argument("--train-batch-size", type=int, default=4, dest="train_batch_size")
    adapt.add_argument("--seed", type=int, default=0)


def run(args) -> None:
    from visionzoo.data.sign.datasets import read_sign_dataset

    cfg = WindowConfig(args.window, args.stride, args.resize, args.crop, args.batch_size)
    encoder = load_sign_encoder(args.encoder)
    if args.command == "adapt":
        train = read_sign_dataset(args.dataset, args.root, "train").samples
        clips, scored = pseudo_labelled_clips(encoder, train, cfg, args.threshold, args.merge, args.suppress)
        print(f"pseudo-labels: {len(clips)} clips from {scored} windows of {len(train)} videos")
        encoder = train_window_classifier(encoder, clips, cfg.window, ClassifierTrainConfig(
            epochs=args.epochs, lr=args.lr, batch_size=args.train_batch_size, seed=args.seed))
        _save_encoder(encoder, args.save_encoder)
    for split in args.splits:
        index = read_sign_dataset(args.dataset, args.root, split)  # index.split: the dataset's own name (val/dev)
        n = extract_features_to_dir(encoder, index.samples, args.out, index.split, cfg, overwrite=args.overwrite)
        print(f"{index.split}: wrote {n} of {len(index)} feature files under {Path(args.out) / index.split}")


def _save_encoder(encoder: nn.Module, out: str) -> None:
    from visionzoo.core.hub import save_pretrained

    if getattr(encoder, "visionzoo_name", None) is None:  # an InceptionI3d loaded from an official file
        from safetensors.torch import save_file

        Path(out).mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(Path(out) / "i3d.safetensors"))
        print(f"wrote {out}/i3d.safetensors (load with visionzoo.nn.i3d.load_i3d)")
        return
    save_pretrained(encoder, out, extra={"method": "cico", "role": "domain-aware sign encoder"})
    print(f"wrote {out}")


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m visionzoo.methods.sign.cico.domain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_args(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
