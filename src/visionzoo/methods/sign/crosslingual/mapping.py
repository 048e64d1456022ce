"""Step 2 of the paper: sign-to-sign mappings between two languages from an ISLR model (spec §4b.2).

An ISLR model trained on the *union* of both dictionaries scores every auxiliary clip over all classes.
For auxiliary gloss b we keep only the target classes, renormalise per clip (the probability that the
clip is target sign a, given that it is a target sign), average over b's clips, and map b -> a* (the
argmax) when that average reaches ``tau``. With ``mutual``, the target side must agree: averaging a*'s
own clips over the auxiliary classes must give back b.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from visionzoo.core.errors import VisionZooError
from visionzoo.core.io import atomic_write


@dataclass
class SignMapping:
    aux_gloss: str
    target_gloss: str | None  # None: unmapped
    best_target: str  # the argmax even when below tau
    score: float  # averaged, renormalised probability of best_target
    clips: int
    reverse_agrees: bool | None = None  # with mutual checking: does best_target map back to aux_gloss?


def class_average(probs: np.ndarray, clip_classes: Sequence[str], rows: Sequence[str],
                  columns: Sequence[int], normalise: bool = True) -> np.ndarray:
    """(len(rows), len(columns)): per row class, the mean over its clips of ``probs[:, columns]``,
    renormalised to sum to one per clip when ``normalise``. ``probs``: (N, C) clip probabilities over the
    union classes."""
    probs = np.asarray(probs, dtype=np.float64)
    sub = probs[:, list(columns)]
    if normalise:
        sub = sub / np.clip(sub.sum(1, keepdims=True), 1e-12, None)
    clip_classes = np.asarray(clip_classes)
    out = np.zeros((len(rows), len(columns)))
    for i, c in enumerate(rows):
        mask = clip_classes == c
        if not mask.any():
            raise VisionZooError(f"mapping: gloss {c!r} has no clips in the dictionary; expected at least one")
        out[i] = sub[mask].mean(0)
    return out


def map_signs(probs: np.ndarray, clip_classes: Sequence[str], union_classes: Sequence[str],
              target_classes: Sequence[str], aux_classes: Sequence[str], tau: float = 0.5,
              mutual: bool = False, normalise: bool = True) -> tuple[list[SignMapping], np.ndarray]:
    """Map every auxiliary gloss to a target gloss or to nothing.

    ``probs`` (N, len(union_classes)) are the ISLR's softmax outputs on the dictionary clips whose union
    class names are ``clip_classes``. Returns the mappings (in ``aux_classes`` order) and the
    (len(aux_classes), len(target_classes)) averaged probabilities behind them (the mapping plot).
    ``normalise=False`` keeps the raw probability mass on each target class (a shared sign splits its mass
    between its two names, a novel sign keeps it on its own auxiliary class), so ``tau`` then bounds how
    much of an auxiliary sign the model attributes to one target sign.
    """
    if probs.ndim != 2 or probs.shape != (len(clip_classes), len(union_classes)):
        raise VisionZooError(f"mapping: probs of shape {tuple(probs.shape)}; expected ({len(clip_classes)} clips, "
                             f"{len(union_classes)} union classes)")
    col = {c: i for i, c in enumerate(union_classes)}
    missing = [c for c in [*target_classes, *aux_classes] if c not in col]
    if missing:
        raise VisionZooError(f"mapping: classes {missing[:3]} are not union classes of the ISLR model")
    forward = class_average(probs, clip_classes, aux_classes, [col[c] for c in target_classes], normalise)
    backward = (class_average(probs, clip_classes, target_classes, [col[c] for c in aux_classes], normalise)
                if mutual else None)
    out = []
    for i, b in enumerate(aux_classes):
        j = int(forward[i].argmax())
        agrees = None if backward is None else int(backward[j].argmax()) == i
        ok = forward[i, j] >= tau and (agrees is not False)
        out.append(SignMapping(b, target_classes[j] if ok else None, target_classes[j], float(forward[i, j]),
                               int(np.sum(np.asarray(clip_classes) == b)), agrees))
    return out, forward


def mapping_quality(mappings: Sequence[SignMapping], truth: dict[str, str]) -> dict[str, float]:
    """Precision and recall of the mapped pairs against ground-truth pairs ``{aux_gloss: target_gloss}``."""
    mapped = [m for m in mappings if m.target_gloss is not None]
    correct = sum(truth.get(m.aux_gloss) == m.target_gloss for m in mapped)
    return {"mapped": float(len(mapped)), "correct": float(correct),
            "precision": correct / len(mapped) if mapped else float("nan"),
            "recall": correct / len(truth) if truth else float("nan")}


def write_mapping_csv(path: str | Path, mappings: Sequence[SignMapping]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["aux_gloss", "target_gloss", "best_target", "score", "clips", "reverse_agrees"])
    for m in mappings:
        w.writerow([m.aux_gloss, m.target_gloss or "", m.best_target, f"{m.score:.4f}", m.clips,
                    "" if m.reverse_agrees is None else int(m.reverse_agrees)])
    with atomic_write(path) as tmp:
        tmp.write_text(buf.getvalue())
    return Path(path)


def read_mapping_csv(path: str | Path) -> dict[str, str]:
    """``{aux_gloss: target_gloss}`` of the mapped rows of a ``mapping.csv``."""
    from visionzoo.core.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "mapping file not found; expected mapping.csv written by the mapping step")
    out = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"aux_gloss", "target_gloss"} <= set(reader.fieldnames):
            raise DataError(path, f"header {reader.fieldnames}; expected columns aux_gloss, target_gloss", line=1)
        for line, row in enumerate(reader, start=2):
            if not row["aux_gloss"]:
                raise DataError(path, "empty aux_gloss; expected a gloss", line=line)
            if row["target_gloss"]:
                out[row["aux_gloss"]] = row["target_gloss"]
    return out


def plot_mapping(path: str | Path, matrix: np.ndarray, aux_classes: Sequence[str], target_classes: Sequence[str],
                 mappings: Sequence[SignMapping], truth: dict[str, str] | None = None, tau: float = 0.5) -> Path:
    """Heat map of the averaged probabilities (aux rows x target columns); mapped pairs are circled,
    ground-truth pairs (when known) marked with a cross."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_a, n_t = matrix.shape
    fig, ax = plt.subplots(figsize=(max(4, 0.28 * n_t + 2), max(3, 0.28 * n_a + 1.5)))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    tcol = {t: j for j, t in enumerate(target_classes)}
    for i, m in enumerate(mappings):
        if m.target_gloss is not None:
            ax.plot(tcol[m.target_gloss], i, "o", mfc="none", mec="red", ms=9, mew=1.5)
        if truth and m.aux_gloss in truth and truth[m.aux_gloss] in tcol:
            ax.plot(tcol[truth[m.aux_gloss]], i, "x", color="white", ms=6)
    fontsize = 6 if max(n_a, n_t) > 30 else 8
    ax.set_xticks(range(n_t), target_classes, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(n_a), aux_classes, fontsize=fontsize)
    ax.set_xlabel("target gloss")
    ax.set_ylabel("auxiliary gloss")
    ax.set_title(f"cross-lingual mapping (o: mapped at tau={tau:g}" + (", x: ground truth)" if truth else ")"),
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
