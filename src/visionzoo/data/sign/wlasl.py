"""WLASL (American Sign Language, isolated signs): ``WLASL_v0.3.json`` + ``nslt_N.json`` subsets + mp4.

Layout (the root holds the JSON files; ``videos/`` is where the official start kit downloads to)::

    WLASL_v0.3.json   [{"gloss": "book", "instances": [{"video_id": "69241", "split": "train",
                        "signer_id": 118, "bbox": [x1, y1, x2, y2], "frame_start": 1, "frame_end": -1,
                        "fps": 25, "instance_id": 0, "source": ..., "url": ..., "variation_id": 0}, ...]}]
    nslt_{100,300,1000,2000}.json   {"<video_id>": {"subset": "train", "action": [class_id, start, end]}}
    videos/<video_id>.mp4

``frame_start`` is 1-based and ``frame_end`` inclusive, ``-1`` meaning "to the end"; the sample keeps
them as a 0-based, end-exclusive ``frame_range``. The label is the official class id: the position of
the gloss in ``WLASL_v0.3.json`` (which is also nslt's ``action[0]``). NLA-SLR instead numbers classes
alphabetically: build a ``Vocabulary`` with ``order='alphabetical'`` for that.
"""

from __future__ import annotations

from pathlib import Path

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.data.sign.sample import (
    SignIndex, SignSample, SkipReport, canonical_split, finish_index, find_root, load_json,
)

SPLITS = ("train", "val", "test")
SUBSETS = (100, 300, 1000, 2000)
ANNOTATION = "WLASL_v0.3.json"


def _instance(path: Path, gi: int, gloss: str, ii: int, inst) -> tuple[str, str, tuple[int, int | None], dict]:
    where = f"[{gi}] ({gloss}).instances[{ii}]"
    if not isinstance(inst, dict):
        raise DataError(path, f"{where}: expected an object, got {type(inst).__name__}")
    missing = [k for k in ("video_id", "split", "frame_start", "frame_end") if k not in inst]
    if missing:
        raise DataError(path, f"{where}: missing keys {missing}")
    start, end = inst["frame_start"], inst["frame_end"]
    if not isinstance(start, int) or start < 1 or not isinstance(end, int) or not (end == -1 or end >= start):
        raise DataError(path, f"{where} (video {inst['video_id']}): frame_start {start!r}, frame_end {end!r}; "
                              f"expected 1-based frame_start <= frame_end, or frame_end = -1")
    return str(inst["video_id"]), str(inst["split"]), (start - 1, None if end == -1 else end), inst


def read_wlasl(
    root: str | Path,
    split: str,
    subset: int | None = None,
    skip_bad: bool = False,
    media: str = "exists",
    video_dir: str = "videos",
) -> SignIndex:
    """WLASL ``split`` ('train', 'val'/'dev', 'test'); ``subset`` N in 100/300/1000/2000 keeps the
    videos of ``nslt_N.json`` (whose own split assignment wins). ``media`` as in ``read_phoenix2014t``;
    a video missing from ``video_dir`` (WLASL's URLs rot) is a 'missing-media' skip under ``skip_bad``.
    """
    root = find_root(root, ANNOTATION, ("WLASL", "start_kit"))
    split = canonical_split("wlasl", split, SPLITS)
    if subset is not None and subset not in SUBSETS:
        raise ConfigError(f"wlasl subset {subset!r}: expected one of {SUBSETS} or None")
    path = root / ANNOTATION
    data = load_json(path, "a list of {gloss, instances}")
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of {{gloss, instances}}, got {type(data).__name__}")
    nslt, nslt_path = None, None
    if subset is not None:
        nslt_path = root / f"nslt_{subset}.json"
        nslt = load_json(nslt_path, "an object video_id -> {subset, action}")
        if not isinstance(nslt, dict):
            raise DataError(nslt_path, "expected a JSON object video_id -> {subset, action}")
    report, samples = SkipReport(), []
    for gi, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("gloss"), str) \
                or not isinstance(entry.get("instances"), list):
            report.handle("malformed", DataError(path, f"[{gi}]: expected an object with 'gloss' (string) and "
                                                       f"'instances' (list)"), skip_bad)
            continue
        gloss = entry["gloss"]
        for ii, inst in enumerate(entry["instances"]):
            try:
                video_id, inst_split, frame_range, inst = _instance(path, gi, gloss, ii, inst)
                label = gi
                if nslt is not None:
                    if video_id not in nslt:
                        continue
                    item = nslt[video_id]
                    action = item.get("action") if isinstance(item, dict) else None
                    if not (isinstance(action, list) and action and isinstance(action[0], int)) \
                            or not isinstance(item.get("subset"), str):
                        raise DataError(nslt_path, f"video {video_id}: expected {{subset, action: [class_id, "
                                                   f"start, end]}}, got {item!r}")
                    inst_split, label = item["subset"], action[0]
            except DataError as e:
                report.handle("malformed", e, skip_bad)
                continue
            if inst_split != split:
                continue
            samples.append(SignSample(
                name=video_id, dataset="wlasl", split=split, gloss=[gloss], text=gloss, label=label,
                signer=None if inst.get("signer_id") is None else str(inst["signer_id"]),
                media=root / video_dir / f"{video_id}.mp4", media_kind="video", frame_range=frame_range,
                origin=str(path), origin_line=None,
                meta={k: inst[k] for k in ("bbox", "fps", "instance_id", "source", "url", "variation_id")
                      if k in inst} | {"video_id": video_id},
            ))
    return finish_index("wlasl", split, root, samples, report, media, skip_bad)
