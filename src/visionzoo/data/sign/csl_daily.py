"""CSL-Daily: Chinese sentence-level sign videos as JPEG frame folders + a pickled label file.

Layout (the root is the downloaded ``CSL-Daily`` folder)::

    sentence_label/csl2020ct_v2.pkl   {'info': [{'name', 'label_gloss': [..], 'label_char': [..],
                                                 'label_word': [..], 'signer', 'length', ...}], ...}
    sentence_label/split_1.txt        name|split           (split in train / dev / test)
    sentence_frames-512x512/<name>/000000.jpg ...

The label pickle is read with the restricted unpickler (it holds only lists, dicts and strings).
The text is the sentence as characters joined without spaces (words and characters give the same string).
"""

from __future__ import annotations

from pathlib import Path

from visionzoo.core.errors import DataError
from visionzoo.data.sign.safe_pickle import load_pickle
from visionzoo.data.sign.sample import (
    SignIndex, SignSample, SkipReport, canonical_split, finish_index, find_root, read_delimited,
)

SPLITS = ("train", "dev", "test")
LABEL_FILE = Path("sentence_label") / "csl2020ct_v2.pkl"
SPLIT_FILE = Path("sentence_label") / "split_1.txt"
FRAMES = "sentence_frames-512x512"
FRAME_PATTERN = "%06d.jpg"
REQUIRED_KEYS = ("name", "label_gloss", "label_char")


def _read_info(path: Path, report: SkipReport, skip_bad: bool) -> dict[str, tuple[int, dict]]:
    data = load_pickle(path)
    if not isinstance(data, dict) or not isinstance(data.get("info"), list):
        raise DataError(path, "expected a dict with key 'info' holding a list of per-video dicts")
    info = {}
    for i, entry in enumerate(data["info"]):
        try:
            if not isinstance(entry, dict):
                raise DataError(path, f"info[{i}]: expected a dict, got {type(entry).__name__}")
            missing = [k for k in REQUIRED_KEYS if k not in entry]
            if missing:
                raise DataError(path, f"info[{i}] ({entry.get('name', '?')}): missing keys {missing}; "
                                      f"expected {list(REQUIRED_KEYS)}")
            for key in ("label_gloss", "label_char"):
                if not isinstance(entry[key], (list, tuple)) or not all(isinstance(t, str) for t in entry[key]):
                    raise DataError(path, f"info[{i}] ({entry['name']}): {key} expected a list of strings")
            if not entry["label_gloss"]:
                raise DataError(path, f"info[{i}] ({entry['name']}): label_gloss is empty; expected glosses")
        except DataError as e:
            report.handle("malformed", e, skip_bad)
            continue
        info[str(entry["name"])] = (i, entry)
    return info


def read_csl_daily(root: str | Path, split: str, skip_bad: bool = False, media: str = "exists") -> SignIndex:
    """CSL-Daily ``split`` ('train', 'dev'/'val', 'test') as a :class:`SignIndex`.

    ``media`` as in :func:`visionzoo.data.sign.phoenix.read_phoenix2014t`.
    """
    root = find_root(root, "sentence_label", ("CSL-Daily", "csl-daily"))
    split = canonical_split("csl-daily", split, SPLITS)
    report = SkipReport()
    label_path, split_path = root / LABEL_FILE, root / SPLIT_FILE
    info = _read_info(label_path, report, skip_bad)
    samples = []
    for lineno, row in read_delimited(split_path, "|", ("name", "split"), report, skip_bad):
        row_split = row["split"].strip()
        if row_split not in SPLITS:
            report.handle("malformed", DataError(split_path, f"split {row_split!r}: expected one of "
                                                             f"{', '.join(SPLITS)}", line=lineno), skip_bad)
            continue
        if row_split != split:
            continue
        name = row["name"].strip()
        if name not in info:
            report.handle("malformed", DataError(split_path, f"sample {name!r} has no entry in {label_path.name}; "
                                                             f"expected every listed name to be annotated",
                                                 line=lineno), skip_bad)
            continue
        i, entry = info[name]
        samples.append(SignSample(
            name=name, dataset="csl-daily", split=split, gloss=list(entry["label_gloss"]),
            text="".join(entry["label_char"]),
            signer=None if entry.get("signer") is None else str(entry["signer"]),
            media=root / FRAMES / name, media_kind="frames", frame_pattern=FRAME_PATTERN,
            num_frames=int(entry["length"]) if isinstance(entry.get("length"), int) else None,
            origin=str(split_path), origin_line=lineno,
            meta={"info_index": i, "words": list(entry.get("label_word", []))},
        ))
    return finish_index("csl-daily", split, root, samples, report, media, skip_bad)
