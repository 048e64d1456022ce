"""MS-ASL (American Sign Language, isolated signs): ``MSASL_{split}.json`` + ``MSASL_classes.json``.

Layout (the root holds the JSON files)::

    MSASL_classes.json          ["hello", "nice", ...]      1,000 class names in frequency order
    MSASL_{train,val,test}.json [{"url", "start_time", "end_time", "start", "end", "label", "text",
                                  "clean_text", "org_text", "signer_id", "box", "width", "height",
                                  "fps", "file"}, ...]
    videos/<name>.mp4           clips cut at [start_time, end_time]

MS-ASL ships YouTube links, not clips, so there is no official clip layout. A clip's name is its
``file`` field (what SynthSign writes, and the key of its keypoint pickle), or
``<split>_<index in the split file, 5 digits>`` for entries without one; names must be unique within a
split. ``video_dir`` moves the clips. MSASL-N keeps the samples whose label is among the first N classes.
"""

from __future__ import annotations

from pathlib import Path

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.data.sign.sample import (
    SignIndex, SignSample, SkipReport, canonical_split, finish_index, find_root, load_json,
)

SPLITS = ("train", "val", "test")
SUBSETS = (100, 200, 500, 1000)
CLASSES = "MSASL_classes.json"


def msasl_name(split: str, index: int) -> str:
    return f"{split}_{index:05d}"


def read_msasl(
    root: str | Path,
    split: str,
    subset: int | None = None,
    skip_bad: bool = False,
    media: str = "exists",
    video_dir: str = "videos",
) -> SignIndex:
    """MS-ASL ``split`` ('train', 'val'/'dev', 'test'); ``subset`` N in 100/200/500/1000 keeps labels < N."""
    root = find_root(root, CLASSES, ("MS-ASL", "MSASL"))
    split = canonical_split("msasl", split, SPLITS)
    if subset is not None and subset not in SUBSETS:
        raise ConfigError(f"msasl subset {subset!r}: expected one of {SUBSETS} or None")
    classes_path = root / CLASSES
    classes = load_json(classes_path, "a list of class names")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise DataError(classes_path, "expected a JSON list of class-name strings")
    path = root / f"MSASL_{split}.json"
    data = load_json(path, "a list of per-clip objects")
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of per-clip objects, got {type(data).__name__}")
    report, samples, seen = SkipReport(), [], {}
    for i, entry in enumerate(data):
        name = msasl_name(split, i)
        try:
            if not isinstance(entry, dict):
                raise DataError(path, f"[{i}] ({name}): expected an object, got {type(entry).__name__}")
            if entry.get("file") not in (None, ""):
                name = str(entry["file"])
            if name in seen:
                raise DataError(path, f"[{i}] ({name}): name already used by entry [{seen[name]}]; expected "
                                      f"unique 'file' names within a split")
            seen[name] = i
            label = entry.get("label")
            if not isinstance(label, int) or not 0 <= label < len(classes):
                raise DataError(path, f"[{i}] ({name}): label {label!r}; expected an int in [0, {len(classes)})")
        except DataError as e:
            report.handle("malformed", e, skip_bad)
            continue
        if subset is not None and label >= subset:
            continue
        samples.append(SignSample(
            name=name, dataset="msasl", split=split, gloss=[classes[label]],
            text=entry.get("clean_text", entry.get("text")), label=label,
            signer=None if entry.get("signer_id") is None else str(entry["signer_id"]),
            media=root / video_dir / f"{name}.mp4", media_kind="video",
            origin=str(path), origin_line=None,
            meta={k: entry[k] for k in ("url", "start_time", "end_time", "start", "end", "box", "width",
                                        "height", "fps", "text", "org_text") if k in entry} | {"index": i},
        ))
    return finish_index("msasl", split, root, samples, report, media, skip_bad)
