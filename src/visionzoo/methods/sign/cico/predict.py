"""``visionzoo predict cico``: rank sign clips for a sentence, or sentences for a sign clip.

    visionzoo predict cico --model RUN --query "rain in the north tomorrow" --videos DIR [--top 10]
    visionzoo predict cico --model RUN --video CLIP --texts sentences.txt

A clip is a feature file (``*.safetensors`` from the feature extraction) or a video (``*.mp4``, then
``--encoder`` extracts its window features, and ``--aware-encoder`` with ``--alpha`` fuses them as in training).
"""

from __future__ import annotations

from pathlib import Path

import torch

from visionzoo.core.errors import ConfigError, DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")


def add_predict_args(parser) -> None:
    parser.description = "Rank sign clips for a sentence (--query + --videos) or sentences for a clip (--video + --texts)."
    parser.add_argument("--model", required=True, help="a run folder (RUN, holding model/) or a pretrained folder")
    parser.add_argument("--query", help="a spoken-language sentence")
    parser.add_argument("--videos", help="folder of clips: *.safetensors feature files or videos (with --encoder)")
    parser.add_argument("--video", help="one clip: a .safetensors feature file or a video (with --encoder)")
    parser.add_argument("--texts", help="text file, one candidate sentence per line")
    parser.add_argument("--encoder", help="sign encoder for videos: pretrained folder or I3D checkpoint")
    parser.add_argument("--aware-encoder", dest="aware_encoder", help="domain-aware encoder to fuse with --encoder")
    parser.add_argument("--alpha", type=float, default=0.8, help="fused = (1-alpha) aware + alpha agnostic")
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--top", type=int, default=10)


def load_cico(path: str | Path):
    from visionzoo.core.hub import from_pretrained

    path = Path(path)
    folder = path / "model" if (path / "model" / "config.json").is_file() else path
    return from_pretrained(folder)


class ClipFeatures:
    """Reads a clip's (N, D) features from a feature file, or extracts (and fuses) them from a video."""

    def __init__(self, args, dim: int):
        self.args, self.dim = args, dim
        self.encoder = self.aware = None

    def __call__(self, path: Path) -> torch.Tensor:
        from visionzoo.methods.sign.cico.data import fuse_features, read_feature_file

        if path.suffix == ".safetensors":
            return read_feature_file(path, self.dim)
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(path, f"expected a .safetensors feature file or a video ({', '.join(VIDEO_SUFFIXES)})")
        from visionzoo.methods.sign.cico.domain import WindowConfig, load_sign_encoder, read_prepared, window_outputs

        a = self.args
        if not a.encoder:
            raise ConfigError(f"{path} is a video: pass --encoder (the sign encoder the model was trained on)")
        if self.encoder is None:
            self.encoder = load_sign_encoder(a.encoder)
            self.aware = load_sign_encoder(a.aware_encoder) if a.aware_encoder else None
        cfg = WindowConfig(a.window, a.stride, a.resize, a.crop)
        video = read_prepared(path, cfg)
        agnostic, _ = window_outputs(self.encoder, video, cfg)
        aware = window_outputs(self.aware, video, cfg)[0] if self.aware is not None else None
        return fuse_features(agnostic, aware, a.alpha, str(path))


@torch.no_grad()
def _scores(model, clip_feats: list[torch.Tensor], texts: list[str]) -> torch.Tensor:
    """(N_clips, N_texts) inference similarity 0.5 I2T + 0.5 T2I."""
    from visionzoo.methods.sign.cico.data import collate_features, subsample_clips, tokenize_sentences

    batch = collate_features([{"features": subsample_clips(f, model.video.max_clips), "tokens": torch.zeros(1),
                               "sentence": 0, "clip": i} for i, f in enumerate(clip_feats)])
    clips = model.encode_video(batch["features"], batch["clip_mask"])
    words, mask = model.encode_text(tokenize_sentences(texts, model.context_length))
    i2t, t2i = model.scores(clips, batch["clip_mask"], words, mask)
    return 0.5 * i2t + 0.5 * t2i


def run_predict(args) -> None:
    model = load_cico(args.model)
    read = ClipFeatures(args, model.video.input_conv.in_channels)
    if args.query and args.videos:
        folder = Path(args.videos)
        paths = sorted(p for p in folder.rglob("*") if p.suffix == ".safetensors" or p.suffix.lower() in VIDEO_SUFFIXES)
        if not paths:
            raise DataError(folder, "holds no .safetensors feature files or videos")
        scores = _scores(model, [read(p) for p in paths], [args.query])[:, 0]
        order = scores.argsort(descending=True)[: args.top]
        print(f"clips ranked for: {args.query!r}")
        for rank, i in enumerate(order.tolist(), 1):
            print(f"{rank:3d}  {scores[i]:8.3f}  {paths[i]}")
    elif args.video and args.texts:
        lines = Path(args.texts).read_text(encoding="utf-8").splitlines()
        texts = [t.strip() for t in lines if t.strip()]
        if not texts:
            raise DataError(args.texts, "no sentences; expected one sentence per line")
        scores = _scores(model, [read(Path(args.video))], texts)[0]
        order = scores.argsort(descending=True)[: args.top]
        print(f"sentences ranked for: {args.video}")
        for rank, i in enumerate(order.tolist(), 1):
            print(f"{rank:3d}  {scores[i]:8.3f}  {texts[i]}")
    else:
        raise ConfigError("predict cico: pass --query with --videos, or --video with --texts")
