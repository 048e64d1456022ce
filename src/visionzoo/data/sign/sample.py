"""The common sample type of every sign-language reader, the annotation index, and skip-bad bookkeeping.

A reader turns one split of a dataset's real on-disk layout into a :class:`SignIndex`: a list of
:class:`SignSample` (annotations + where the frames live, nothing decoded) and a :class:`SkipReport`
of the entries it refused. Bad input raises a one-line :class:`DataError` naming the file and line (or the
sample) unless the caller passed ``skip_bad=True``; then the entry is logged, counted and left out,
never dropped silently.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.data.video import list_frame_files

log = logging.getLogger("visionzoo.data.sign")

MediaKind = Literal["frames", "video"]

# Why an entry was refused; the keys of SkipReport.counts.
SKIP_KINDS = ("malformed", "missing-media", "empty-media", "bad-keypoints", "unknown-gloss")


@dataclass
class SignSample:
    """One annotated sign video (a sentence for CSLR/SLT/retrieval, a single sign for ISLR).

    ``media`` is a frame folder (``media_kind='frames'``, files matching ``frame_pattern``) or a video
    file; ``frame_range`` is ``(start, end)`` 0-based, end exclusive (``None`` = to the last frame), for
    datasets whose sign is a window of a longer video (WLASL). ``origin`` / ``origin_line`` name the
    annotation entry, so a later error (unknown gloss, bad keypoints) can point the user back to it.
    """

    name: str  # unique within (dataset, split); also the key of per-video keypoint files
    dataset: str
    split: str
    gloss: list[str] = field(default_factory=list)  # CSLR: the gloss sequence; ISLR: [the sign's gloss]
    text: str | None = None  # spoken-language sentence (P14T German, CSL-Daily Chinese, How2Sign English)
    label: int | None = None  # ISLR class id in the dataset's own numbering
    signer: str | None = None
    media: Path | None = None
    media_kind: MediaKind | None = None
    frame_pattern: str | None = None  # printf pattern of frame files, '*' = a per-video prefix
    frame_range: tuple[int, int | None] | None = None
    num_frames: int | None = None  # known from the annotation or counted by verify_media
    origin: str = ""  # annotation file
    origin_line: int | None = None  # its line (text formats) or None (JSON / pickle)
    meta: dict = field(default_factory=dict)  # dataset-specific ids and fields (video_id, bbox, fps, ...)

    @property
    def where(self) -> str:
        """``file:line (sample name)`` for messages."""
        loc = f"{self.origin}:{self.origin_line}" if self.origin_line is not None else self.origin
        return f"{loc} ({self.name})" if loc else self.name

    def error(self, problem: str) -> DataError:
        """A DataError at this sample's annotation entry."""
        return DataError(self.origin or self.name, f"sample {self.name!r}: {problem}", line=self.origin_line)


@dataclass
class SkipEntry:
    kind: str
    message: str


@dataclass
class SkipReport:
    """What a ``skip_bad`` run left out: counts per kind and every one-line reason, in order."""

    entries: list[SkipEntry] = field(default_factory=list)

    def add(self, kind: str, error: DataError | str) -> None:
        if kind not in SKIP_KINDS:
            raise ValueError(f"SkipReport.add: unknown kind {kind!r}; expected one of {SKIP_KINDS}")
        message = str(error)
        self.entries.append(SkipEntry(kind, message))
        log.warning("skipped (%s): %s", kind, message)

    def handle(self, kind: str, error: DataError, skip_bad: bool) -> None:
        """Raise ``error`` unless skipping was asked for; then log and count it."""
        if not skip_bad:
            raise error
        self.add(kind, error)

    def extend(self, other: SkipReport) -> None:
        self.entries += other.entries

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(e.kind for e in self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:  # a report exists even when empty; truthiness = "something was skipped"
        return bool(self.entries)

    def summary(self) -> str:
        if not self.entries:
            return "skipped 0 entries"
        parts = ", ".join(f"{k} {n}" for k, n in sorted(self.counts.items()))
        return f"skipped {len(self.entries)} entries ({parts})"


@dataclass
class SignIndex:
    """One split of one dataset: the samples that were read and the report of those skipped."""

    dataset: str
    split: str
    root: Path
    samples: list[SignSample]
    skipped: SkipReport = field(default_factory=SkipReport)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[SignSample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> SignSample:
        return self.samples[i]


# ----------------------------------------------------------------------------------------------
# Helpers shared by the readers


def canonical_split(dataset: str, split: str, splits: tuple[str, ...]) -> str:
    """The dataset's own name of ``split``; 'dev' and 'val' are accepted for each other."""
    alias = {"dev": "val", "val": "dev"}.get(split)
    if split in splits:
        return split
    if alias in splits:
        return alias
    raise ConfigError(f"{dataset} split {split!r}: expected one of {', '.join(splits)}")


def find_root(root: str | Path, marker: str, nested: tuple[str, ...] = ()) -> Path:
    """``root`` itself or the first of its ``nested`` sub-folders that holds ``marker``.

    Users point at the folder they downloaded (e.g. ``PHOENIX-2014-T-release-v3``) as often as at the
    one that holds the annotations; both work.
    """
    root = Path(root)
    for cand in (root, *(root / n for n in nested)):
        if (cand / marker).exists():
            return cand
    raise DataError(root, f"dataset root not found: expected {marker} here"
                          + (f" or under {', '.join(nested)}" if nested else ""))


def check_media(sample: SignSample, mode: str) -> DataError | None:
    """The first problem of ``sample``'s media under ``mode`` ('exists', 'count', 'ignore'), or None.

    'exists' costs one stat per sample; 'count' lists frame folders / reads video headers and fills
    ``num_frames`` (so a zero-frame video is found before training, not in a worker mid-epoch).
    """
    if mode == "ignore" or sample.media is None:
        return None
    if mode not in ("exists", "count"):
        raise ConfigError(f"check_media: expected 'exists', 'count' or 'ignore', got {mode!r}")
    if sample.media_kind == "frames":
        if not sample.media.is_dir():
            return sample.error(f"frame folder {sample.media} not found; expected a folder of frame images")
        if mode == "count":
            try:
                sample.num_frames = len(list_sample_frames(sample))
            except DataError as e:
                return sample.error(f"{e}")
    else:
        if not sample.media.is_file():
            return sample.error(f"video file {sample.media} not found; expected an existing video file")
        if mode == "count":
            from visionzoo.data.video import video_info

            try:
                n = video_info(sample.media).num_frames
            except DataError as e:
                return sample.error(f"{e}")
            if n < 1:
                return sample.error(f"video {sample.media} has zero frames; expected at least one frame")
            sample.num_frames = n
    return None


def media_skip_kind(error: DataError) -> str:
    return "missing-media" if "not found" in str(error) else "empty-media"


def list_sample_frames(sample: SignSample) -> list[Path]:
    """The frame files of a frame-folder sample in frame order (consecutive numbers checked)."""
    return list_frames(sample.media, sample.frame_pattern)


def list_frames(directory: Path, pattern: str | None) -> list[Path]:
    """``list_frame_files`` that also takes a ``*`` in ``pattern`` (see :func:`resolve_frame_pattern`)."""
    return list_frame_files(directory, resolve_frame_pattern(directory, pattern))


def resolve_frame_pattern(directory: Path, pattern: str | None) -> str | None:
    """``pattern`` with a ``*`` replaced by the per-video file-name prefix found in ``directory``.

    Phoenix-2014 names frames ``<id-prefix>.avi_pid0_fn%06d-0.png``, where the prefix is not derivable
    from the annotation; it is read off the first matching file.
    """
    if pattern is None or "*" not in pattern:
        return pattern
    head, tail = pattern.split("*", 1)
    number = re.sub(r"%0?\d*d", r"\\d+", re.escape(tail))  # the frame-number field of the tail
    regex = re.compile(re.escape(head) + r"(.*?)" + number + r"\Z")
    if not directory.is_dir():
        raise DataError(directory, "frame folder not found; expected a directory of frame images")
    for p in sorted(directory.iterdir()):
        m = regex.match(p.name)
        if m:
            return head + m.group(1) + tail
    raise DataError(directory, f"frame folder is empty; expected files matching {pattern!r}")


def read_delimited(
    path: Path, sep: str, columns: tuple[str, ...], report: SkipReport, skip_bad: bool
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a header + one-record-per-line file split on ``sep`` (no quoting).

    The official corpora are not CSV-quoted: a German translation or an English How2Sign sentence may
    contain a ``"`` that a csv reader would take as a quote. A wrong header is always an error (a wrong
    file, not a bad line); a line with the wrong number of fields is skippable.
    """
    if not path.is_file():
        raise DataError(path, f"annotation file not found; expected a {sep!r}-separated file with header "
                              f"{sep.join(columns)}")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not lines:
        raise DataError(path, f"empty file; expected a header {sep.join(columns)}", line=1)
    header = [h.strip() for h in lines[0].split(sep)]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(path, f"header lacks {missing}; expected {sep!r}-separated columns {sep.join(columns)}",
                        line=1)
    shown = "'\\t'" if sep == "\t" else repr(sep)
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(sep)
        if len(fields) != len(header):
            report.handle("malformed", DataError(
                path, f"{len(fields)} {shown}-separated fields; expected {len(header)} ({sep.join(header)})",
                line=lineno), skip_bad)
            continue
        yield lineno, dict(zip(header, fields))


def finish_index(dataset: str, split: str, root: Path, samples: list[SignSample], report: SkipReport,
                 media: str, skip_bad: bool) -> SignIndex:
    """Check the media of every sample (see :func:`check_media`), then log the skip summary."""
    kept = []
    for s in samples:
        err = check_media(s, media)
        if err is not None:
            report.handle(media_skip_kind(err), err, skip_bad)
            continue
        kept.append(s)
    if report:
        log.warning("%s %s: %s", dataset, split, report.summary())
    return SignIndex(dataset, split, root, kept, report)


def load_json(path: Path, what: str):
    """A JSON file, with a missing file or a syntax error as a DataError naming file and line."""
    import json

    if not path.is_file():
        raise DataError(path, f"annotation file not found; expected {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e.msg}); expected {what}", line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise DataError(path, f"not UTF-8 text ({e.reason} at byte {e.start}); expected {what}") from None
