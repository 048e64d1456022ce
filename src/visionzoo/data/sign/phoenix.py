"""RWTH-PHOENIX-Weather 2014 (multisigner) and 2014T: pipe-separated corpus files + PNG frame folders.

Phoenix-2014T (``PHOENIX-2014-T-release-v3/PHOENIX-2014-T`` is the root)::

    annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv
        name|video|start|end|speaker|orth|translation      (orth: upper-case DGS glosses,
                                                             translation: tokenised German)
    features/fullFrame-210x260px/<split>/<name>/images0001.png ...   (1-based)

Phoenix-2014 (``phoenix2014-release/phoenix-2014-multisigner`` is the root)::

    annotations/manual/{train,dev,test}.corpus.csv
        id|folder|signer|annotation                        (folder: ``<id>/1/*.png``)
    features/fullFrame-210x260px/<split>/<id>/1/<id-prefix>.avi_pid0_fn000000-0.png ... (0-based)

Phoenix-2014 has glosses only (no translation).
"""

from __future__ import annotations

from pathlib import Path

from visionzoo.core.errors import DataError
from visionzoo.data.sign.sample import (
    SignIndex, SignSample, SkipReport, canonical_split, finish_index, find_root, read_delimited,
)

SPLITS = ("train", "dev", "test")
FRAMES = Path("features") / "fullFrame-210x260px"

P14T_COLUMNS = ("name", "video", "start", "end", "speaker", "orth", "translation")
P14T_FRAME_PATTERN = "images%04d.png"
P14T_NESTED = ("PHOENIX-2014-T", "PHOENIX-2014-T-release-v3/PHOENIX-2014-T")

P14_COLUMNS = ("id", "folder", "signer", "annotation")
P14_FRAME_PATTERN = "*.avi_pid0_fn%06d-0.png"  # '*': the video's file prefix, read off the folder
P14_NESTED = ("phoenix-2014-multisigner", "phoenix2014-release/phoenix-2014-multisigner")


def _glosses(value: str, column: str, path: Path, lineno: int) -> list[str]:
    gloss = value.split()
    if not gloss:
        raise DataError(path, f"column {column!r} is empty; expected space-separated glosses", line=lineno)
    return gloss


def read_phoenix2014t(root: str | Path, split: str, skip_bad: bool = False, media: str = "exists") -> SignIndex:
    """Phoenix-2014T ``split`` ('train', 'dev'/'val', 'test') as a :class:`SignIndex`.

    ``media``: 'exists' checks each frame folder exists, 'count' also counts its frames (finds empty
    folders), 'ignore' skips the check (keypoint-only use without the frames downloaded).
    """
    root = find_root(root, "annotations", P14T_NESTED)
    split = canonical_split("phoenix2014t", split, SPLITS)
    path = root / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv"
    report, samples = SkipReport(), []
    for lineno, row in read_delimited(path, "|", P14T_COLUMNS, report, skip_bad):
        try:
            gloss = _glosses(row["orth"], "orth", path, lineno)
        except DataError as e:
            report.handle("malformed", e, skip_bad)
            continue
        name = row["name"].strip()
        samples.append(SignSample(
            name=name, dataset="phoenix2014t", split=split, gloss=gloss,
            text=row["translation"].strip(), signer=row["speaker"].strip() or None,
            media=root / FRAMES / split / name, media_kind="frames", frame_pattern=P14T_FRAME_PATTERN,
            origin=str(path), origin_line=lineno,
            meta={"video": row["video"].strip(), "start": row["start"].strip(), "end": row["end"].strip()},
        ))
    return finish_index("phoenix2014t", split, root, samples, report, media, skip_bad)


def read_phoenix2014(root: str | Path, split: str, skip_bad: bool = False, media: str = "exists") -> SignIndex:
    """Phoenix-2014 multisigner ``split`` as a :class:`SignIndex` (``media`` as in :func:`read_phoenix2014t`).

    All rows are kept, as TwoStream does (VAC-style loaders drop train row 2390).
    """
    root = find_root(root, "annotations", P14_NESTED)
    split = canonical_split("phoenix2014", split, SPLITS)
    path = root / "annotations" / "manual" / f"{split}.corpus.csv"
    report, samples = SkipReport(), []
    for lineno, row in read_delimited(path, "|", P14_COLUMNS, report, skip_bad):
        try:
            gloss = _glosses(row["annotation"], "annotation", path, lineno)
            # 'folder' is '<id>/1/*.png': the frames' directory relative to the split's frame root
            folder = row["folder"].strip()
            if not folder.endswith("*.png") or folder.startswith("/") or ".." in Path(folder).parts:
                raise DataError(path, f"folder {folder!r}: expected a relative '<id>/1/*.png'", line=lineno)
        except DataError as e:
            report.handle("malformed", e, skip_bad)
            continue
        name = row["id"].strip()
        samples.append(SignSample(
            name=name, dataset="phoenix2014", split=split, gloss=gloss, text=None,
            signer=row["signer"].strip() or None,
            media=root / FRAMES / split / Path(folder).parent, media_kind="frames",
            frame_pattern=P14_FRAME_PATTERN, origin=str(path), origin_line=lineno, meta={"folder": folder},
        ))
    return finish_index("phoenix2014", split, root, samples, report, media, skip_bad)
