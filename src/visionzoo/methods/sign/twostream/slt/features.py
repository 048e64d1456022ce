"""Per-video features on disk: what Sign2Text trains on (no video decoding during SLT training).

Layout of a feature folder (one pair of files per split)::

    <split>.json          {"format", "version", "source", "streams": {name: dim},
                           "samples": [{"name", "gloss": [...], "text", "length"}, ...]}
    <split>.safetensors   "<stream>.<i>": float32 (length, dim) for every stream and sample i

Two extractors write it:
- :func:`extract_slr_features`: a trained TwoStream-SLR run (``TwoStreamSLR.extract_features``): the main
  heads' inputs ``rgb`` / ``keypoint`` (T/4, 832 at paper width) and ``joint`` = concat[keypoint, rgb].
  This is the paper's step 2 (the official ``extract_feature.py`` dumps the same head inputs).
- :func:`extract_raw_features`: a training-free stand-in for CPU experiments without a trained SLR model:
  ``keypoint`` = the 79 TwoStream keypoints (x, y) normalised by the frame size, ``rgb`` = the frame as a
  small grey thumbnail, ``joint`` = concat[keypoint, rgb], each mean-pooled over ``stride`` frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from visionzoo.core.errors import DataError
from visionzoo.core.io import atomic_write

FEATURE_FORMAT = "visionzoo.twostream-slt.features"
FEATURE_VERSION = 1


@dataclass
class FeatureRecord:
    name: str
    gloss: list[str]
    text: str
    streams: dict[str, torch.Tensor]  # stream -> (T, C)


def write_feature_split(out_dir: str | Path, split: str, records: Iterable[FeatureRecord], source: dict) -> Path:
    """Write one split (atomically: a crash never leaves half a feature file)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors, samples, dims = {}, [], {}
    for i, rec in enumerate(records):
        lengths = {s: int(x.shape[0]) for s, x in rec.streams.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"write_feature_split: sample {rec.name!r} has streams of different lengths {lengths}")
        for s, x in rec.streams.items():
            if dims.setdefault(s, int(x.shape[1])) != x.shape[1]:
                raise ValueError(f"write_feature_split: stream {s!r} of {rec.name!r} has dim {x.shape[1]}, "
                                 f"earlier samples {dims[s]}")
            tensors[f"{s}.{i}"] = x.detach().float().cpu().contiguous()
        samples.append({"name": rec.name, "gloss": list(rec.gloss), "text": rec.text,
                        "length": next(iter(lengths.values()))})
    with atomic_write(out / f"{split}.safetensors") as tmp:
        save_file(tensors, str(tmp))
    meta = {"format": FEATURE_FORMAT, "version": FEATURE_VERSION, "source": source, "streams": dims,
            "samples": samples}
    with atomic_write(out / f"{split}.json") as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    return out / f"{split}.json"


def feature_dims(folder: str | Path, split: str = "train") -> dict[str, int]:
    return _read_meta(Path(folder) / f"{split}.json")["streams"]


def _read_meta(path: Path) -> dict:
    if not path.is_file():
        raise DataError(path, "feature index not found; extract features first "
                              "(python -m visionzoo.methods.sign.twostream.slt.features --help)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e.msg})", line=e.lineno) from None
    if not isinstance(meta, dict) or meta.get("format") != FEATURE_FORMAT:
        raise DataError(path, f"key 'format': expected {FEATURE_FORMAT!r}; not a TwoStream-SLT feature index")
    if meta.get("version") != FEATURE_VERSION:
        raise DataError(path, f"key 'version': expected {FEATURE_VERSION}, got {meta.get('version')!r}")
    for key in ("streams", "samples"):
        if key not in meta:
            raise DataError(path, f"missing key {key!r}")
    return meta


class FeatureSplit(Dataset):
    """One split of a feature folder, loaded into memory and validated; items are dicts with ``name``,
    ``gloss`` (list), ``text`` and ``features`` (T, C) of ``stream``."""

    def __init__(self, folder: str | Path, split: str, stream: str):
        self.folder, self.split, self.stream = Path(folder), split, stream
        index = self.folder / f"{split}.json"
        meta = _read_meta(index)
        if stream not in meta["streams"]:
            raise DataError(index, f"no stream {stream!r}; this folder has {sorted(meta['streams'])}")
        self.dim = int(meta["streams"][stream])
        weights = self.folder / f"{split}.safetensors"
        if not weights.is_file():
            raise DataError(weights, "feature tensors not found (the index exists; was extraction interrupted?)")
        try:
            tensors = load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as e:
            raise DataError(weights, f"not a readable safetensors file ({e})") from None
        self.samples, self.features = [], []
        for i, s in enumerate(meta["samples"]):
            where = f"sample {i} ({s.get('name')!r})"
            for key in ("name", "gloss", "text", "length"):
                if key not in s:
                    raise DataError(index, f"{where}: missing key {key!r}")
            x = tensors.get(f"{stream}.{i}")
            if x is None:
                raise DataError(weights, f"{where}: tensor '{stream}.{i}' is missing")
            if x.ndim != 2 or x.shape != (s["length"], self.dim):
                raise DataError(weights, f"{where}: tensor '{stream}.{i}' has shape {tuple(x.shape)}; expected "
                                         f"({s['length']}, {self.dim})")
            self.samples.append(s)
            self.features.append(x)
        self.source = meta.get("source", {})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        s = self.samples[i]
        return {"name": s["name"], "gloss": list(s["gloss"]), "text": s["text"], "features": self.features[i]}


# ------------------------------------------------------------------------------------------- extractors

@torch.no_grad()
def extract_slr_features(slr_run: str | Path, out_dir: str | Path, root: str | None = None,
                         splits: tuple[str, ...] | None = None, batch_size: int = 1) -> dict[str, int]:
    """Run a trained TwoStream-SLR (``RUN/model`` + ``RUN/config.yaml``) over every split; write features."""
    from visionzoo.core.config import from_dict, read_yaml
    from visionzoo.core.hub import from_pretrained
    from visionzoo.data.sign import PickleKeypoints, SignDataset, read_sign_dataset
    from visionzoo.data.video import FrameSampling
    from visionzoo.engine.data import make_loader
    from visionzoo.methods.sign.twostream.data import (SPLIT_NAMES, DataConfig, TwoStreamClips, collate_clips,
                                                       gloss_vocabulary, keypoint_path)

    run = Path(slr_run)
    model_dir = run / "model" if (run / "model").is_dir() else run
    data = read_yaml(run / "config.yaml").get("data", {}) if (run / "config.yaml").is_file() else {}
    if root is not None:
        data = {**data, "root": str(root), "keypoints": ""}
    cfg = from_dict(DataConfig, data, "data")
    model = from_pretrained(model_dir).eval()
    vocab = gloss_vocabulary(cfg, tuple(getattr(model.config, "glosses", ()) or ()))
    keypoints = PickleKeypoints(keypoint_path(cfg))
    source = {"extractor": "twostream-slr", "run": str(run), "root": cfg.root}
    counts = {}
    for split in splits or SPLIT_NAMES[cfg.dataset]:
        index = read_sign_dataset(cfg.dataset, cfg.root, split)
        texts = {s.name: s.text or "" for s in index}
        signs = SignDataset(index, keypoints=keypoints, gloss_vocab=vocab, sampling=FrameSampling())
        loader = make_loader(TwoStreamClips(signs, cfg, train=False), batch_size, shuffle=False,
                             collate_fn=collate_clips)
        records = []
        for batch in loader:
            out = model.extract_features(batch["rgb"], batch["heatmaps"], batch["lengths"])
            for b, name in enumerate(batch["names"]):
                n = int(out["lengths"][b])
                streams = {s: out[s][b, :n] for s in ("rgb", "keypoint", "joint") if s in out}
                records.append(FeatureRecord(name, batch["gloss"][b], texts[name], streams))
        write_feature_split(out_dir, split, records, source)
        counts[split] = len(records)
    return counts


@torch.no_grad()
def extract_raw_features(root: str | Path, out_dir: str | Path, dataset: str = "phoenix2014t",
                         splits: tuple[str, ...] = ("train", "dev", "test"), stride: int = 2,
                         thumbnail: tuple[int, int] = (16, 13), keypoints: str | Path | None = None) -> dict[str, int]:
    """The training-free stand-in features (module docstring) of a continuous sign dataset."""
    import torch.nn.functional as F

    from visionzoo.data.keypoints import TWOSTREAM_79_INDICES
    from visionzoo.data.sign import PickleKeypoints, SignDataset, read_sign_dataset
    from visionzoo.methods.sign.twostream.data import KEYPOINT_PICKLES

    kp_path = Path(keypoints) if keypoints else Path(root) / KEYPOINT_PICKLES[dataset]
    kps = PickleKeypoints(kp_path)
    source = {"extractor": "raw", "root": str(root), "stride": stride, "thumbnail": list(thumbnail)}
    counts = {}
    for split in splits:
        index = read_sign_dataset(dataset, root, split)
        records = []
        for item in SignDataset(index, keypoints=kps):
            frames = item["frames"].float()  # (T, H, W, 3)
            h, w = frames.shape[1:3]
            points = item["keypoints"][:, TWOSTREAM_79_INDICES, :2]  # (T, 79, 2) pixels
            kp = (points / torch.tensor([w, h]) - 0.5).flatten(1)  # (T, 158)
            grey = frames.mean(-1, keepdim=True).permute(0, 3, 1, 2) / 255.0 - 0.5  # (T, 1, H, W)
            rgb = F.adaptive_avg_pool2d(grey, thumbnail).flatten(1)  # (T, th*tw)
            streams = {"rgb": rgb, "keypoint": kp}
            streams = {s: _pool_time(x, stride) for s, x in streams.items()}
            streams["joint"] = torch.cat([streams["keypoint"], streams["rgb"]], dim=-1)
            records.append(FeatureRecord(item["name"], item["gloss"], item["text"] or "", streams))
        write_feature_split(out_dir, split, records, source)
        counts[split] = len(records)
    return counts


def _pool_time(x: torch.Tensor, stride: int) -> torch.Tensor:
    """(T, C) -> (ceil(T / stride), C) by averaging windows of ``stride`` frames."""
    if stride <= 1:
        return x
    return torch.nn.functional.avg_pool1d(x.t()[None], stride, stride, ceil_mode=True)[0].t().contiguous()


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="Extract TwoStream-SLT features to disk: from a trained "
                                            "TwoStream-SLR run (--slr RUN) or the training-free stand-in (--raw).")
    p.add_argument("out", help="output feature folder")
    p.add_argument("--slr", default=None, help="TwoStream-SLR run folder (RUN/model + RUN/config.yaml)")
    p.add_argument("--raw", action="store_true", help="stand-in features from keypoints + thumbnails")
    p.add_argument("--root", default=None, help="dataset root (default: the SLR run's data.root)")
    p.add_argument("--dataset", default="phoenix2014t")
    p.add_argument("--stride", type=int, default=2, help="--raw: frames averaged per feature step")
    args = p.parse_args(argv)
    if bool(args.slr) == bool(args.raw):
        p.error("give exactly one of --slr RUN or --raw")
    if args.slr:
        counts = extract_slr_features(args.slr, args.out, root=args.root)
    else:
        if not args.root:
            p.error("--raw needs --root")
        counts = extract_raw_features(args.root, args.out, dataset=args.dataset, stride=args.stride)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
