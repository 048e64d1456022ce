"""Step 3 of the paper: a joint CSLR corpus of target sentences + relabelled auxiliary sentences (§4b.3).

The corpus is written in Phoenix-2014T's layout, so the CSLR method (TwoStream-SLR) trains on it with its
ordinary reader; frames are symlinked, never copied (PNG sources) or re-encoded once (other sources).
Dev and test hold the target's sentences only. Auxiliary glosses with a mapping become their target
gloss; the others follow ``unmapped``:

- ``extra``: keep them as extra output classes (renamed ``<gloss>@aux`` if the name is a target gloss);
- ``drop``: leave out every auxiliary sentence holding an unmapped gloss;
- ``other``: replace each by one shared ``<other>`` class.

``aux_ratio`` sets how many auxiliary sentences join per target training sentence (sampled without
replacement while possible, then repeated under new names); ``-1`` takes every auxiliary sentence once.
Auxiliary sentences are named ``aux_<k>_<name>`` (``is_aux_name``), which the joint training's loss
weighting (``joint.aux_loss_weight``) reads.
"""

from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.core.io import atomic_write
from visionzoo.data.sign.sample import SignSample, resolve_frame_pattern
from visionzoo.data.video import list_frame_files

OTHER = "<other>"
AUX_SUFFIX = "@aux"
AUX_PREFIX = "aux_"
Unmapped = Literal["extra", "drop", "other"]


@dataclass
class JointCorpusSummary:
    root: Path
    target_train: int
    aux_sentences: int
    aux_dropped: int
    vocabulary: list[str]
    target_vocabulary: list[str]


def is_aux_name(name: str) -> bool:
    """Whether a joint-corpus sentence came from the auxiliary corpus (target names never carry the prefix)."""
    return name.startswith(AUX_PREFIX)


def relabel(glosses: Sequence[str], mapping: dict[str, str], target_vocab: set[str],
            unmapped: Unmapped) -> list[str] | None:
    """An auxiliary gloss sequence in target terms; ``None`` when ``unmapped='drop'`` rejects it."""
    if unmapped not in ("extra", "drop", "other"):
        raise ConfigError(f"joint.unmapped: expected 'extra', 'drop' or 'other', got {unmapped!r}")
    out = []
    for g in glosses:
        if g in mapping:
            out.append(mapping[g])
        elif unmapped == "drop":
            return None
        elif unmapped == "other":
            out.append(OTHER)
        else:
            out.append(g + AUX_SUFFIX if g in target_vocab else g)
    return out


def choose_aux(n_aux: int, n_target: int, ratio: float, seed: int) -> list[int]:
    """Indices into the auxiliary sentences (repeats allowed) for ``ratio`` per target sentence."""
    if ratio < 0:
        return list(range(n_aux))
    want = int(round(ratio * n_target))
    rng = np.random.default_rng([seed, 911])
    out: list[int] = []
    while len(out) < want and n_aux:
        out += rng.permutation(n_aux)[: want - len(out)].tolist()
    return out


def _link_frames(sample: SignSample, dst: Path) -> int:
    """``dst/images0001.png ...`` from the sample's frames (symlinks to PNGs, re-encoded otherwise)."""
    from PIL import Image

    dst.mkdir(parents=True, exist_ok=True)
    if sample.media_kind == "frames":
        files = list_frame_files(sample.media, resolve_frame_pattern(sample.media, sample.frame_pattern))
    else:
        files = []
    if not files and sample.media_kind == "frames":
        raise DataError(sample.media, f"no frames for {sample.name!r}; expected the corpus's frame images")
    if files and all(f.suffix.lower() == ".png" for f in files):
        for i, f in enumerate(files):
            link = dst / f"images{i + 1:04d}.png"
            if not link.exists():
                os.symlink(os.path.abspath(f), link)
        return len(files)
    if files:
        for i, f in enumerate(files):
            Image.open(f).convert("RGB").save(dst / f"images{i + 1:04d}.png", compress_level=1)
        return len(files)
    from visionzoo.data.video import read_video

    frames = read_video(sample.media).numpy()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(dst / f"images{i + 1:04d}.png", compress_level=1)
    return len(frames)


def write_joint_corpus(out: str | Path, target: dict[str, Sequence[SignSample]], aux_train: Sequence[SignSample],
                       target_keypoints, aux_keypoints, mapping: dict[str, str], unmapped: Unmapped = "extra",
                       aux_ratio: float = 1.0, seed: int = 0, use_aux: bool = True) -> JointCorpusSummary:
    """Write the joint corpus under ``out`` (Phoenix-2014T layout).

    ``target``: split -> samples (train/dev/test); ``*_keypoints``: keypoint sources (``load(sample)``).
    ``use_aux=False`` writes the target alone (the target-only baseline through the same code path).
    """
    out = Path(out)
    target_vocab = {g for s in target["train"] for g in s.gloss}
    rows: dict[str, list] = {"train": [], "dev": [], "test": []}
    keypoints, slrt = {}, {"train": [], "dev": [], "test": []}

    def add(split: str, name: str, sample: SignSample, glosses: list[str], kps) -> None:
        n = _link_frames(sample, out / "features" / "fullFrame-210x260px" / split / name)
        arr = kps.load(sample).numpy()
        if len(arr) != n:
            raise DataError(sample.where, f"{len(arr)} keypoint frames for {n} video frames; expected equal")
        keypoints[f"{split}/{name}"] = {"keypoints": arr}
        speaker = sample.signer or "Signer01"
        rows[split].append([name, f"{name}/1/*.png", "-1", "-1", speaker, " ".join(glosses),
                            (sample.text or "").replace("|", " ")])
        slrt[split].append({"name": f"{split}/{name}", "gloss": " ".join(glosses), "text": sample.text or "",
                            "num_frames": n, "signer": speaker})

    for split in ("train", "dev", "test"):
        for s in target[split]:
            if is_aux_name(s.name):  # the joint training tells auxiliary sentences by this prefix
                raise DataError(s.where, f"target sentence name {s.name!r} starts with {AUX_PREFIX!r}, which the "
                                         "joint corpus reserves for auxiliary sentences; rename it")
            add(split, s.name, s, list(s.gloss), target_keypoints)
    n_aux = dropped = 0
    if use_aux:
        relabelled = [relabel(s.gloss, mapping, target_vocab, unmapped) for s in aux_train]
        usable = [(s, g) for s, g in zip(aux_train, relabelled) if g is not None]
        dropped = len(aux_train) - len(usable)
        for k, i in enumerate(choose_aux(len(usable), len(target["train"]), aux_ratio, seed)):
            s, glosses = usable[i]
            add("train", f"{AUX_PREFIX}{k:05d}_{s.name.replace('/', '_')}", s, glosses, aux_keypoints)
            n_aux += 1
    _write_csvs(out, rows)
    with atomic_write(out / "phoenix-2014t-keypoints.pkl") as tmp:
        tmp.write_bytes(pickle.dumps(keypoints, protocol=4))
    for split, items in slrt.items():
        with atomic_write(out / f"phoenix-2014t.{split}") as tmp:
            with gzip.open(tmp, "wb") as f:
                pickle.dump(items, f, protocol=4)
    vocab = sorted({g for r in rows["train"] for g in r[5].split()})
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    with atomic_write(out / "gloss2ids.pkl") as tmp:
        tmp.write_bytes(pickle.dumps({t: i for i, t in enumerate(specials + list(dict.fromkeys(g.lower() for g in vocab)))}))
    return JointCorpusSummary(out, len(target["train"]), n_aux, dropped, vocab, sorted(target_vocab))


def _write_csvs(out: Path, rows: dict[str, list]) -> None:
    header = "name|video|start|end|speaker|orth|translation"
    for split, split_rows in rows.items():
        with atomic_write(out / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv") as tmp:
            tmp.write_text("\n".join([header, *("|".join(r) for r in split_rows)]) + "\n")
