"""CiCo's data: per-video feature files, sentence tokens, EDA word swaps, and the split loaders.

Feature files (written by ``domain.extract_features_to_dir``)::

    FEATURES/<split>/<sample name>.safetensors     tensor "feature": float (N_windows, D)

The official pipeline stores one pickle per video; safetensors keeps the same per-video layout without
unpickling. Every file is validated when read (present, readable, 2-d, the expected width, finite) and
fails with a one-line DataError naming it. Annotations come from the shared sign readers (How2Sign TSV,
Phoenix-2014T CSV, CSL-Daily pickle); sentences with the same text form one retrieval target, so a
sentence signed by several signers has several clips (How2Sign test: 1,969 sentences, 2,348 clips).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import Dataset

from visionzoo.core.errors import DataError
from visionzoo.data.sign.datasets import read_sign_dataset
from visionzoo.data.sign.sample import SignSample
from visionzoo.engine.data import make_loader

FEATURE_KEY = "feature"


# ------------------------------------------------------------------------------------------------ features
def feature_path(features_dir: str | Path, split: str, name: str) -> Path:
    return Path(features_dir) / split / f"{name}.safetensors"


def write_feature_file(path: str | Path, feature: torch.Tensor, metadata: dict[str, str] | None = None) -> Path:
    """Atomically write one video's (N_windows, D) features."""
    from safetensors.torch import save_file

    from visionzoo.core.io import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        save_file({FEATURE_KEY: feature.detach().float().cpu().contiguous()}, str(tmp), metadata=metadata)
    return path


def read_feature_file(path: str | Path, dim: int | None = None) -> torch.Tensor:
    """One video's features (N_windows, D), validated; DataError naming the file otherwise."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "feature file not found; expected one per video (run the feature extraction)")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise DataError(path, f"not a readable safetensors file ({str(e).splitlines()[0]})") from None
    if FEATURE_KEY not in tensors:
        raise DataError(path, f"no tensor {FEATURE_KEY!r}; found {sorted(tensors)}")
    x = tensors[FEATURE_KEY]
    if x.ndim != 2 or x.shape[0] < 1:
        raise DataError(path, f"feature has shape {tuple(x.shape)}; expected (N_windows >= 1, D)")
    if dim is not None and x.shape[1] != dim:
        raise DataError(path, f"feature width {x.shape[1]}; expected {dim} (model.feature_dim)")
    if not torch.isfinite(x).all():
        raise DataError(path, "feature holds NaN or inf values")
    return x.float()


def fuse_features(agnostic: torch.Tensor, aware: torch.Tensor | None, alpha: float, where: str = "") -> torch.Tensor:
    """(1 - alpha) aware + alpha agnostic, window by window (alpha weights the *agnostic* encoder)."""
    if aware is None:
        return agnostic
    if aware.shape != agnostic.shape:
        raise DataError(where or "features", f"domain-aware features {tuple(aware.shape)} and domain-agnostic "
                                             f"{tuple(agnostic.shape)} differ; expected the same windows")
    return (1 - alpha) * aware + alpha * agnostic


def subsample_clips(x: torch.Tensor, max_clips: int) -> torch.Tensor:
    """At most ``max_clips`` rows, picked by linspace over the windows (first and last kept)."""
    n = x.shape[0]
    if n <= max_clips:
        return x
    return x[torch.linspace(0, n - 1, max_clips).round().long()]


# ------------------------------------------------------------------------------------------------ text
def tokenize_sentences(texts: list[str], context_length: int) -> torch.Tensor:
    """CLIP ids (B, context_length): [SOT, words, EOT, 0...]; a longer sentence keeps a linspace subset
    of its word tokens (the official truncation), so SOT and EOT always stay."""
    from visionzoo.nn.tokenizer import EOT_ID, SOT_ID, clip_tokenize

    full = clip_tokenize(texts, context_length=max(77, context_length))
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, row in enumerate(full):
        body = row[1:int((row == EOT_ID).nonzero()[0, 0])]
        if len(body) > context_length - 2:
            body = body[torch.linspace(0, len(body) - 1, context_length - 2).round().long()]
        seq = torch.cat([torch.tensor([SOT_ID]), body, torch.tensor([EOT_ID])])
        out[i, :len(seq)] = seq
    return out


def random_swap(text: str, generator: torch.Generator, n_swaps: int = 1) -> str:
    """EDA's random swap (Wei & Zou 2019): exchange two random word positions ``n_swaps`` times."""
    words = text.split()
    if len(words) < 2:
        return text
    for _ in range(n_swaps):
        i, j = torch.randint(len(words), (2,), generator=generator).tolist()
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


# ------------------------------------------------------------------------------------------------ datasets
@dataclass
class RetrievalItem:
    sample: SignSample
    sentence: int  # index of its unique sentence within the split


def read_retrieval_split(dataset: str, root: str | Path, split: str) -> tuple[list[RetrievalItem], list[str]]:
    """Clips of one split with the index of their (unique) sentence, and the sentences."""
    index = read_sign_dataset(dataset, root, split, media="ignore")
    sentences: dict[str, int] = {}
    items = []
    for s in index.samples:
        if not s.text or not s.text.strip():
            raise s.error("has no sentence; retrieval needs the spoken-language text of every clip")
        items.append(RetrievalItem(s, sentences.setdefault(s.text.strip(), len(sentences))))
    if not items:
        raise DataError(Path(root), f"{dataset} split {split!r} has no samples")
    return items, list(sentences)


class SignFeatureDataset(Dataset):
    """Items of one split: fused clip features (A, D) of a video and its tokenised sentence.

    ``per_sentence=True`` (training) has one item per unique sentence, the clip drawn from that
    sentence's clips by (seed, epoch, index) so no batch holds the same sentence twice; ``swap_probability``
    adds ``tokens_swapped``, the EDA-swapped sentence of the T2V branch. Evaluation items are clips.
    """

    def __init__(self, items: list[RetrievalItem], sentences: list[str], features: str, aware_features: str,
                 alpha: float, split: str, feature_dim: int, max_clips: int, context_length: int,
                 per_sentence: bool = False, swap_probability: float = 0.0, seed: int = 0, preload: bool = True):
        self.items, self.sentences = items, sentences
        self.features, self.aware_features, self.alpha, self.split = features, aware_features, alpha, split
        self.feature_dim, self.max_clips, self.context_length = feature_dim, max_clips, context_length
        self.per_sentence, self.swap_probability, self.seed, self.epoch = per_sentence, swap_probability, seed, 0
        self.tokens = tokenize_sentences(sentences, context_length)
        self.clips_of: list[list[int]] = [[] for _ in sentences]
        for i, it in enumerate(items):
            self.clips_of[it.sentence].append(i)
        # validate every file up front (and keep the small fused tensors) so a bad file fails before training
        self._cache = [self._load(i) for i in range(len(items))] if preload else None
        self.epoch_source = None  # the train loader's ResumableSampler: its epoch seeds the per-item draws

    def _load(self, i: int) -> torch.Tensor:
        name = self.items[i].sample.name
        agnostic = read_feature_file(feature_path(self.features, self.split, name), self.feature_dim)
        aware = None
        if self.aware_features:
            aware = read_feature_file(feature_path(self.aware_features, self.split, name), self.feature_dim)
        fused = fuse_features(agnostic, aware, self.alpha, str(feature_path(self.aware_features, self.split, name)))
        return subsample_clips(fused, self.max_clips)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sentences) if self.per_sentence else len(self.items)

    def _generator(self, index: int) -> torch.Generator:
        epoch = self.epoch_source.epoch if self.epoch_source is not None else self.epoch
        return torch.Generator().manual_seed(hash((self.seed, epoch, index)) & (2**63 - 1))

    def __getitem__(self, index: int) -> dict:
        gen = self._generator(index)
        if self.per_sentence:
            clips = self.clips_of[index]
            clip = clips[int(torch.randint(len(clips), (1,), generator=gen))]
        else:
            clip = index
        sentence = self.items[clip].sentence
        item = {"features": self._cache[clip] if self._cache is not None else self._load(clip),
                "tokens": self.tokens[sentence], "sentence": sentence, "clip": clip}
        if self.swap_probability > 0:
            text = self.sentences[sentence]
            if float(torch.rand((), generator=gen)) < self.swap_probability:
                text = random_swap(text, gen)
            item["tokens_swapped"] = tokenize_sentences([text], self.context_length)[0]
        return item


def collate_features(items: list[dict]) -> dict:
    """Pad clip sequences to the batch's longest: ``features`` (B, A, D) and ``clip_mask`` (B, A)."""
    longest = max(it["features"].shape[0] for it in items)
    dim = items[0]["features"].shape[1]
    features = torch.zeros(len(items), longest, dim)
    mask = torch.zeros(len(items), longest, dtype=torch.bool)
    for i, it in enumerate(items):
        n = it["features"].shape[0]
        features[i, :n], mask[i, :n] = it["features"], True
    out = {"features": features, "clip_mask": mask, "tokens": torch.stack([it["tokens"] for it in items]),
           "sentence": torch.tensor([it["sentence"] for it in items]), "clip": torch.tensor([it["clip"] for it in items])}
    if "tokens_swapped" in items[0]:
        out["tokens_swapped"] = torch.stack([it["tokens_swapped"] for it in items])
    return out


class CiCoDataModule(L.LightningDataModule):
    """Train (one item per sentence), dev (model selection) and test loaders over feature files."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, m = cfg.data, cfg.model
        self._splits = {"train": d.train_split, "dev": d.dev_split, "test": d.test_split}
        self._datasets: dict[str, SignFeatureDataset] = {}
        self._common = dict(features=d.features, aware_features=d.aware_features, alpha=d.alpha,
                            feature_dim=m.feature_dim, max_clips=min(d.max_clips, m.max_clips),
                            context_length=m.context_length)

    def has_split(self, role: str) -> bool:
        return bool(self._splits[role])

    def dataset(self, role: str) -> SignFeatureDataset:
        if role not in self._datasets:
            d, split = self.cfg.data, self._splits[role]
            items, sentences = read_retrieval_split(d.dataset, d.root, split)
            train = role == "train"
            self._datasets[role] = SignFeatureDataset(
                # split: the reader's own name of it (How2Sign 'val', Phoenix 'dev'), as the feature folders use
                items, sentences, split=items[0].sample.split, per_sentence=train, seed=self.cfg.train.seed,
                swap_probability=self.cfg.objective.swap_probability if train else 0.0, **self._common)
        return self._datasets[role]

    def train_dataloader(self):
        t = self.cfg.train
        ds = self.dataset("train")
        loader = make_loader(ds, min(t.batch_size, len(ds)), shuffle=True, seed=t.seed, drop_last=True,
                             num_workers=t.num_workers, collate_fn=collate_features)
        ds.epoch_source = loader.sampler  # exact with num_workers=0 (workers hold a copy of the dataset)
        return loader

    def eval_loader(self, role: str):
        t = self.cfg.train
        return make_loader(self.dataset(role), t.batch_size, shuffle=False, seed=t.seed,
                           num_workers=t.num_workers, collate_fn=collate_features)

    def val_dataloader(self):
        return self.eval_loader("dev") if self.has_split("dev") else []
