"""Predictions files of the sign-language methods and their evaluation (``visionzoo eval-predictions``).

Every sign method writes its test-set outputs in one of these formats; ``evaluate_predictions`` scores
such a file against references with the papers' metrics, so numbers from our models, from the official
code or from anyone else's are computed the same way.

Formats (UTF-8; ``name`` is the dataset's sample id, e.g. ``dev/11August_2010_Wednesday_tagesschau-2``,
and holds no tab; blank lines and lines starting with ``#`` are ignored):

======================  ==========================================  ==================================
kind                    predictions file                            references file
======================  ==========================================  ==================================
``cslr`` (WER)          ``name<TAB>HYP GLOSSES``                    ``name<TAB>REF GLOSSES``
``slt`` (BLEU, ROUGE)   ``name<TAB>hypothesis text``                ``name<TAB>reference text``
``islr`` (top-k)        ``name<TAB>id:score id:score ...``          ``name<TAB>label id``
                        (label ids best first; ``:score`` optional,
                        scores must not increase along the line)
``retrieval`` (R@K)     ``X.npy``: float (N_text, N_clips) sims     ``clip_id<TAB>text_id``
                        ``X.json``: ``{"text_ids": [...],            (the sentence of every clip)
                        "clip_ids": [...]}`` naming rows / columns
======================  ==========================================  ==================================

A hypothesis may be empty (``name<TAB>``). Each reference needs exactly one prediction and every
prediction a reference; anything else is an error naming the file and line, never a silent skip.
``dataset`` picks the paper's scoring conventions (``DATASETS``): the Phoenix WER cleanups, and
character-level BLEU / ROUGE for CSL-Daily.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from visionzoo.core.errors import DataError, VisionZooError
from visionzoo.core.io import atomic_write

KINDS = ("cslr", "slt", "islr", "retrieval")

# dataset -> scoring conventions of the papers (spec §1c, §2c, §3c)
DATASETS: dict[str, dict[str, str | None]] = {
    "phoenix2014": {"cleanup": "phoenix2014", "level": "word"},
    "phoenix2014t": {"cleanup": "phoenix2014t", "level": "word"},
    "csl-daily": {"cleanup": None, "level": "char"},
    "how2sign": {"cleanup": None, "level": "word"},
    "wlasl": {"cleanup": None, "level": "word"},
    "msasl": {"cleanup": None, "level": "word"},
    "nmfs-csl": {"cleanup": None, "level": "char"},
}


# ------------------------------------------------------------------------------------------------ reading
def _rows(path: Path):
    """Yield (line number, name, payload) of a ``name<TAB>payload`` file."""
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    for no, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, tab, payload = line.partition("\t")
        if not tab:
            raise DataError(path, "expected 'name<TAB>value' (no tab found)", no)
        if not name.strip():
            raise DataError(path, "empty name before the tab", no)
        yield no, name, payload


def _unique(path: Path, items):
    out: dict[str, object] = {}
    first_line: dict[str, int] = {}
    for no, name, value in items:
        if name in out:
            raise DataError(path, f"duplicate name {name!r} (first on line {first_line[name]})", no)
        out[name], first_line[name] = value, no
    return out


def read_text_file(path: str | Path) -> dict[str, str]:
    """``name<TAB>text`` lines (CSLR glosses, SLT text, retrieval clip -> sentence) -> {name: text}."""
    path = Path(path)
    return _unique(path, ((no, name, payload.strip()) for no, name, payload in _rows(path)))


def _parse_topk(path: Path, no: int, payload: str) -> list[tuple[int, float]]:
    out = []
    for item in payload.split():
        label, colon, score = item.partition(":")
        try:
            pair = (int(label), float(score) if colon else math.nan)
        except ValueError:
            raise DataError(path, f"expected 'label_id[:score]' items, got {item!r}", no) from None
        if pair[0] < 0:
            raise DataError(path, f"label ids are >= 0, got {pair[0]}", no)
        out.append(pair)
    if not out:
        raise DataError(path, "no ranked labels after the tab", no)
    scores = [s for _, s in out]
    given = [not math.isnan(s) for s in scores]
    if any(given) and not all(given):
        raise DataError(path, "give a score for every label or for none", no)
    if all(given) and any(b > a for a, b in zip(scores, scores[1:])):
        raise DataError(path, "labels must be listed best first (scores must not increase)", no)
    if len({label for label, _ in out}) != len(out):
        raise DataError(path, "a label id is listed twice", no)
    return out


def read_topk_file(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """ISLR predictions ``name<TAB>id:score ...`` -> {name: [(label id, score or nan), ...] best first}."""
    path = Path(path)
    return _unique(path, ((no, name, _parse_topk(path, no, payload)) for no, name, payload in _rows(path)))


def read_label_file(path: str | Path) -> dict[str, int]:
    """ISLR references ``name<TAB>label id`` -> {name: label id}."""
    path = Path(path)

    def parse(no, payload):
        try:
            label = int(payload.strip())
        except ValueError:
            raise DataError(path, f"expected one integer label id, got {payload.strip()!r}", no) from None
        if label < 0:
            raise DataError(path, f"label ids are >= 0, got {label}", no)
        return label

    return _unique(path, ((no, name, parse(no, payload)) for no, name, payload in _rows(path)))


def read_retrieval_predictions(path: str | Path) -> tuple[np.ndarray, list[str], list[str]]:
    """``X.npy`` + ``X.json`` -> (sim (N_text, N_clips), text ids, clip ids)."""
    path = Path(path)
    ids_path = path.with_suffix(".json")
    if not path.is_file():
        raise DataError(path, "similarity matrix (.npy) not found")
    try:
        sim = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(path, f"not a readable .npy array ({e})") from None
    if sim.ndim != 2 or not np.issubdtype(sim.dtype, np.floating):
        raise DataError(path, f"expected a float (N_text, N_clips) matrix, got {sim.dtype} {sim.shape}")
    if not np.isfinite(sim).all():
        raise DataError(path, "similarity matrix holds NaN or inf values")
    if not ids_path.is_file():
        raise DataError(ids_path, "ids file not found (expected next to the .npy, same stem)")
    try:
        ids = json.loads(ids_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(ids_path, f"not valid JSON ({e})") from None
    if not isinstance(ids, dict):
        raise DataError(ids_path, 'expected {"text_ids": [...], "clip_ids": [...]}')
    out = []
    for key, size in (("text_ids", sim.shape[0]), ("clip_ids", sim.shape[1])):
        values = ids.get(key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise DataError(ids_path, f"key {key!r} must be a list of strings")
        if len(values) != size:
            raise DataError(ids_path, f"key {key!r} has {len(values)} ids for {size} matrix "
                            f"{'rows' if key == 'text_ids' else 'columns'} of {path.name}")
        if len(set(values)) != len(values):
            raise DataError(ids_path, f"key {key!r} holds duplicate ids")
        out.append(values)
    return sim, out[0], out[1]


# ------------------------------------------------------------------------------------------------ writing
def _check_field(value: str, what: str) -> str:
    if "\t" in value or "\n" in value or "\r" in value:
        raise VisionZooError(f"{what} {value!r} holds a tab or newline, which the predictions format cannot carry")
    return value


def write_text_predictions(path: str | Path, items: Mapping[str, str]) -> Path:
    """Write ``name<TAB>text`` lines (CSLR / SLT predictions or references) atomically."""
    lines = [f"{_check_field(n, 'name')}\t{_check_field(t, 'text')}" for n, t in items.items()]
    with atomic_write(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Path(path)


def write_topk_predictions(path: str | Path, items: Mapping[str, Sequence[tuple[int, float]]]) -> Path:
    """Write ISLR ``name<TAB>id:score ...`` lines, labels best first."""
    lines = [f"{_check_field(n, 'name')}\t" + " ".join(f"{int(c)}:{float(s):.6g}" for c, s in ranked)
             for n, ranked in items.items()]
    with atomic_write(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Path(path)


def write_retrieval_predictions(path: str | Path, sim, text_ids: Sequence[str], clip_ids: Sequence[str]) -> Path:
    """Write ``X.npy`` (sim, (N_text, N_clips)) and ``X.json`` (row and column ids)."""
    path = Path(path).with_suffix(".npy")
    sim = np.asarray(sim, dtype=np.float32)
    if sim.shape != (len(text_ids), len(clip_ids)):
        raise VisionZooError(f"sim has shape {sim.shape}, expected ({len(text_ids)}, {len(clip_ids)}) from the ids")
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, sim)
    with atomic_write(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"text_ids": list(text_ids), "clip_ids": list(clip_ids)}), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ evaluation
def _paired(pred_path, predictions: Mapping, ref_path, references: Mapping) -> list[str]:
    """Reference names in order, after checking both sides name the same samples."""
    missing = [n for n in references if n not in predictions]
    if missing:
        raise DataError(pred_path, f"no prediction for {len(missing)} of {len(references)} references "
                        f"(first: {missing[0]!r} from {ref_path})")
    extra = [n for n in predictions if n not in references]
    if extra:
        raise DataError(pred_path, f"{len(extra)} predictions have no reference in {ref_path} (first: {extra[0]!r})")
    if not references:
        raise DataError(ref_path, "no references")
    return list(references)


def _load_refs(references, reader):
    if isinstance(references, Mapping):
        return "<references>", dict(references)
    return str(references), reader(references)


def evaluate_predictions(path: str | Path, kind: str, references: str | Path | Mapping, *,
                         dataset: str | None = None, cleanup: str | None = None, level: str | None = None,
                         ks: Sequence[int] | None = None, ties: str = "pessimistic") -> dict[str, float]:
    """Score a predictions file (module docstring) against references: a file of the matching format or a
    {name: reference} mapping. ``dataset`` (``DATASETS``) sets the WER cleanup and the BLEU / ROUGE level;
    ``cleanup`` and ``level`` override it. ``ks``: top-k (ISLR, default 1, 5) or R@K (default 1, 5, 10)."""
    from visionzoo.metrics.classification import topk_accuracy
    from visionzoo.metrics.retrieval import retrieval_metrics
    from visionzoo.metrics.translation import translation_metrics
    from visionzoo.metrics.wer import wer

    if kind not in KINDS:
        raise VisionZooError(f"unknown predictions kind {kind!r}: expected one of {', '.join(KINDS)}")
    if dataset is not None and dataset not in DATASETS:
        raise VisionZooError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    preset = DATASETS.get(dataset or "", {})
    cleanup = cleanup if cleanup is not None else preset.get("cleanup")
    level = level or preset.get("level") or "word"
    path = Path(path)

    if kind in ("cslr", "slt"):
        preds = read_text_file(path)
        ref_name, refs = _load_refs(references, read_text_file)
        names = _paired(path, preds, ref_name, refs)
        r, h = [refs[n] for n in names], [preds[n] for n in names]
        if kind == "cslr":
            return wer(r, h, cleanup=cleanup).as_dict() | {"sentences": len(names)}
        return translation_metrics(r, h, level=level) | {"sentences": len(names)}

    if kind == "islr":
        preds = read_topk_file(path)
        ref_name, refs = _load_refs(references, read_label_file)
        names = _paired(path, preds, ref_name, refs)
        ks = tuple(ks or (1, 5))
        width = max(ks)
        short = [n for n in names if len(preds[n]) < width]
        if short:  # a top-5 line cannot tell a top-10 hit from a miss
            raise DataError(path, f"top-{width} accuracy needs {width} ranked labels per line, {len(short)} lines "
                            f"hold fewer (first: {short[0]!r}); write more labels or pass smaller ks")
        ranked = torch.tensor([[c for c, _ in preds[n][:width]] for n in names])  # (N, max k)
        return topk_accuracy(ranked, torch.tensor([refs[n] for n in names]), ks) | {"clips": len(names)}

    sim, text_ids, clip_ids = read_retrieval_predictions(path)
    ref_name, refs = _load_refs(references, read_text_file)
    _paired(path, dict.fromkeys(clip_ids), ref_name, refs)
    row = {t: i for i, t in enumerate(text_ids)}
    unknown = [c for c in clip_ids if refs[c] not in row]
    if unknown:
        raise DataError(ref_name, f"{len(unknown)} clips map to sentences missing from the predictions' text_ids "
                        f"(first: clip {unknown[0]!r} -> {refs[unknown[0]]!r})")
    clip_to_text = np.array([row[refs[c]] for c in clip_ids])
    return retrieval_metrics(sim, clip_to_text, ks=tuple(ks or (1, 5, 10)), ties=ties) | {
        "texts": len(text_ids), "clips": len(clip_ids)}


# ------------------------------------------------------------------------------------------------ CLI
def add_eval_predictions_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``visionzoo eval-predictions``."""
    parser.add_argument("predictions", help="predictions file (.tsv; .npy + .json for retrieval)")
    parser.add_argument("--kind", required=True, choices=KINDS, help="cslr: WER; slt: BLEU/ROUGE-L; "
                        "islr: top-k; retrieval: R@K, MedR")
    parser.add_argument("--references", required=True, help="references file (name<TAB>reference)")
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="scoring conventions (WER cleanup, char BLEU)")
    parser.add_argument("--cleanup", choices=["phoenix2014", "phoenix2014t", "csl-daily"],
                        help="WER cleanup rules (default: the dataset's)")
    parser.add_argument("--level", choices=["word", "char"], help="BLEU / ROUGE tokens (default: the dataset's)")
    parser.add_argument("--ks", type=lambda s: [int(k) for k in s.split(",")],
                        help="comma-separated k values (default 1,5 for islr; 1,5,10 for retrieval)")
    parser.add_argument("--ties", choices=["pessimistic", "optimistic"], default="pessimistic",
                        help="retrieval tie rule (optimistic = official CiCo code)")
    parser.add_argument("--out", help="also write the metrics to this JSON file")
    return parser


def run_eval_predictions(args: argparse.Namespace) -> dict[str, float]:
    """Score ``args.predictions``, print a table, optionally write JSON; returns the metrics."""
    metrics = evaluate_predictions(args.predictions, args.kind, args.references, dataset=args.dataset,
                                   cleanup=args.cleanup, level=args.level, ks=args.ks, ties=args.ties)
    if args.out:
        with atomic_write(args.out) as tmp:
            tmp.write_text(json.dumps(metrics, indent=2))
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.kind} metrics of {args.predictions}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.2f}" if isinstance(v, float) else str(v))
    Console(width=160).print(table)
    return metrics
