"""How2Sign (American Sign Language, English sentences): realigned tab-separated files + mp4 clips.

Layout (the root is the How2Sign download folder; either file placement below is found)::

    how2sign_realigned_{train,val,test}.csv          or
    sentence_level/<split>/text/en/raw_text/re_aligned/how2sign_realigned_<split>.csv
        VIDEO_ID  VIDEO_NAME  SENTENCE_ID  SENTENCE_NAME  START_REALIGNED  END_REALIGNED  SENTENCE
    clips: <SENTENCE_NAME>.mp4 in the first existing of
        sentence_level/<split>/rgb_front/raw_videos/,  <split>_rgb_front_clips/raw_videos/,  clips/<split>/

The file is tab-separated without quoting (sentences contain quote characters).
"""

from __future__ import annotations

from pathlib import Path

from visionzoo.core.errors import DataError
from visionzoo.data.sign.sample import (
    SignIndex, SignSample, SkipReport, canonical_split, finish_index, read_delimited,
)

SPLITS = ("train", "val", "test")
COLUMNS = ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED",
           "SENTENCE")
CLIP_DIRS = ("sentence_level/{split}/rgb_front/raw_videos", "{split}_rgb_front_clips/raw_videos", "clips/{split}")


def _annotation(root: Path, split: str) -> Path:
    name = f"how2sign_realigned_{split}.csv"
    for cand in (root / name, root / "sentence_level" / split / "text/en/raw_text/re_aligned" / name):
        if cand.is_file():
            return cand
    raise DataError(root / name, "annotation file not found; expected it in the root or under "
                                 f"sentence_level/{split}/text/en/raw_text/re_aligned/")


def _clip_dir(root: Path, split: str, video_dir: str | None) -> Path:
    if video_dir is not None:
        return root / video_dir.format(split=split)
    for cand in CLIP_DIRS:
        if (root / cand.format(split=split)).is_dir():
            return root / cand.format(split=split)
    return root / CLIP_DIRS[0].format(split=split)  # missing clips are then reported per sample


def read_how2sign(
    root: str | Path,
    split: str,
    skip_bad: bool = False,
    media: str = "exists",
    video_dir: str | None = None,
) -> SignIndex:
    """How2Sign ``split`` ('train', 'val'/'dev', 'test'); ``video_dir`` (may hold ``{split}``) overrides
    the clip folder search. ``media`` as in ``read_phoenix2014t``. No glosses: ``gloss`` is empty."""
    root = Path(root)
    split = canonical_split("how2sign", split, SPLITS)
    path = _annotation(root, split)
    clips = _clip_dir(root, split, video_dir)
    report, samples = SkipReport(), []
    for lineno, row in read_delimited(path, "\t", COLUMNS, report, skip_bad):
        try:
            try:
                start, end = float(row["START_REALIGNED"]), float(row["END_REALIGNED"])
            except ValueError:
                raise DataError(path, f"START_REALIGNED {row['START_REALIGNED']!r}, END_REALIGNED "
                                      f"{row['END_REALIGNED']!r}: expected numbers (seconds)", line=lineno) from None
            if not 0 <= start <= end:
                raise DataError(path, f"START_REALIGNED {start} > END_REALIGNED {end}; expected start <= end",
                                line=lineno)
            name = row["SENTENCE_NAME"].strip()
            if not name:
                raise DataError(path, "SENTENCE_NAME is empty; expected the clip's name", line=lineno)
        except DataError as e:
            report.handle("malformed", e, skip_bad)
            continue
        samples.append(SignSample(
            name=name, dataset="how2sign", split=split, gloss=[], text=row["SENTENCE"].strip(),
            media=clips / f"{name}.mp4", media_kind="video", origin=str(path), origin_line=lineno,
            meta={"video_id": row["VIDEO_ID"].strip(), "video_name": row["VIDEO_NAME"].strip(),
                  "sentence_id": row["SENTENCE_ID"].strip(), "start": start, "end": end},
        ))
    return finish_index("how2sign", split, root, samples, report, media, skip_bad)
