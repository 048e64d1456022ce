"""Step 1 of the paper: cut continuous training videos into an isolated-sign dictionary (spec §4b.1).

A trained CSLR model gives per-step CTC posteriors (T', V) of a sentence; the Viterbi forced alignment of
its gloss sequence (``nn.ctc.forced_align``) assigns each gloss a span of steps, which we refine the way
the official segmenter of the same group does (``Online/CSLR/gen_segment.py``, behaviour restated):

- a span grows left/right over neighbouring steps whose top *non-blank* prediction is that gloss, as long
  as the step is a blank of the path (never into the neighbouring gloss's own steps);
- steps become frames by the model's temporal stride (4 for S3D block 4): ``[left * s, right * s]``
  inclusive;
- a one-step span is widened to ``2 * widen + 1`` frames around its centre frame; at the first step it
  becomes frames 0-4, at the last it runs to the end of the video.

The dictionary is written in WLASL's layout (``WLASL_v0.3.json``, ``nslt_<V>.json``, ``videos/<id>.mp4``,
NLA-SLR's unwrapped keypoint pickle) so any ISLR reading WLASL (NLA-SLR) trains on it unchanged, plus the
official segmenter's records ``{video, name, label, start, end, seq_len}`` (``dictionary.json``).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from visionzoo.core.errors import VisionZooError
from visionzoo.core.io import atomic_write
from visionzoo.nn.ctc import forced_align

FPS = 25
WLASL_KEYPOINTS = "keypoints_hrnet_dark_coco_wholebody.pkl"
RECORDS = "dictionary.json"


@dataclass
class SignRecord:
    """One dictionary clip: frames ``[start, end)`` of continuous video ``video`` showing gloss ``label``."""

    video: str  # the sentence's name in its corpus
    name: str  # unique clip name, also the WLASL video_id
    label: str  # the gloss
    start: int
    end: int  # exclusive
    seq_len: int  # end - start
    split: str = "train"  # the ISLR split this clip is written to
    language: str = ""


def refine_segments(log_probs, target: Sequence[int], num_frames: int, stride: int = 4, widen: int = 2,
                    blank: int = 0, mode: str = "official") -> list[tuple[int, int]]:
    """Frame segments ``[start, end)`` of each gloss of ``target`` in a ``num_frames`` video.

    ``log_probs``: (T', V) CTC log-probabilities at ``stride`` frames per step. ``mode='official'``: the
    refinements of the module docstring; ``'midpoint'``: the aligned spans' centres are kept and each
    segment reaches halfway to its neighbours' centres (CTC spikes are short, signs are not).
    """
    lp = log_probs.detach().cpu().double() if isinstance(log_probs, torch.Tensor) else torch.as_tensor(
        np.asarray(log_probs, dtype=np.float64))
    steps = lp.shape[0]
    ids = list(target)
    alignment = forced_align(lp, ids, blank=blank)
    owner = np.zeros(steps, dtype=np.int64)  # 0 = blank step of the path, i + 1 = gloss i
    for i, (s, e) in enumerate(alignment.spans):
        owner[s:e] = i + 1
    masked = lp.clone()
    masked[:, blank] = float("-inf")
    top_non_blank = masked.argmax(-1).numpy()
    if mode == "midpoint":
        return _midpoint_segments(alignment.spans, num_frames, stride)
    if mode != "official":
        raise VisionZooError(f"dictionary.boundaries: expected 'official' or 'midpoint', got {mode!r}")
    segments = []
    for i, (s, e) in enumerate(alignment.spans):
        left, right = s, e - 1  # inclusive steps
        while left - 1 >= 0 and owner[left - 1] == 0 and top_non_blank[left - 1] == ids[i]:
            left -= 1
        while right + 1 < steps and owner[right + 1] == 0 and top_non_blank[right + 1] == ids[i]:
            right += 1
        if right > left:
            start, last = left * stride, right * stride
        elif left == 0:
            start, last = 0, 2 * widen  # the official "first 5 frames"
        elif left == steps - 1:
            start, last = left * stride - widen, num_frames - 1
        else:
            start, last = left * stride - widen, left * stride + widen
        start, last = max(0, start), min(last, num_frames - 1)
        segments.append((start, max(start, last) + 1))
    return segments


def _midpoint_segments(spans, num_frames: int, stride: int) -> list[tuple[int, int]]:
    centres = [stride * (s + e) / 2 for s, e in spans]  # in frames
    if len(centres) == 1:
        return [(0, num_frames)]
    gaps = np.diff(centres)
    out = []
    for i, c in enumerate(centres):
        before = gaps[i - 1] if i > 0 else gaps[0]
        after = gaps[i] if i < len(gaps) else gaps[-1]
        start = int(max(0, round(c - before / 2)))
        end = int(min(num_frames, round(c + after / 2)))
        out.append((start, max(end, start + 1)))
    return out


def segment_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Temporal IoU of two ``[start, end)`` frame intervals."""
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def build_records(sentences: Iterable[tuple[str, list[str], int, object]], vocab, stride: int = 4,
                  widen: int = 2, language: str = "", holdout_every: int = 10,
                  mode: str = "official") -> list[SignRecord]:
    """Records of every gloss instance in ``sentences`` = (name, glosses, num_frames, log_probs (T', V)).

    ``vocab`` maps glosses to the model's ids (a :class:`~visionzoo.data.sign.Vocabulary`). Every
    ``holdout_every``-th clip of a gloss (2nd, 12th, ...) goes to ``val`` and the 6th, 16th, ... to
    ``test``, so an ISLR trained on the dictionary has held-out clips to select and report on.
    """
    records, seen = [], {}
    for name, glosses, num_frames, log_probs in sentences:
        ids = vocab.encode(glosses, where=name)
        if log_probs.shape[0] < len(ids) + sum(a == b for a, b in zip(ids, ids[1:])):
            raise VisionZooError(f"sentence {name!r}: {log_probs.shape[0]} CTC steps cannot hold its "
                                 f"{len(ids)} glosses; expected a longer video or a smaller temporal stride")
        for gloss, (start, end) in zip(glosses, refine_segments(log_probs, ids, num_frames, stride, widen,
                                                                 vocab.blank_id or 0, mode)):
            k = seen.get(gloss, 0)
            seen[gloss] = k + 1
            split = "train"
            if holdout_every and k % holdout_every == 1:
                split = "val"
            elif holdout_every and k % holdout_every == holdout_every // 2 + 1:
                split = "test"
            clip = f"{language}{len(records):06d}"
            records.append(SignRecord(video=name, name=clip, label=gloss, start=start, end=end,
                                      seq_len=end - start, split=split, language=language))
    return records


def write_wlasl_dictionary(out: str | Path, records: Sequence[SignRecord], clips: dict[str, dict],
                           class_order: Sequence[str] | None = None) -> Path:
    """Write ``records`` in WLASL's layout under ``out``.

    ``clips`` maps a record's clip name to ``{"keypoints": (T, 133, 3) array, "frames": (T, H, W, 3) uint8
    or None, "video": an existing mp4 or None}``; ``videos/<name>.mp4`` is written from the frames (H, W
    even) or linked from the existing mp4; with neither, only keypoints are written.
    ``class_order`` fixes the class ids (the position in ``WLASL_v0.3.json``); default: sorted glosses.
    """
    from visionzoo.data.video import write_video

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(class_order) if class_order is not None else sorted({r.label for r in records})
    index = {g: i for i, g in enumerate(classes)}
    instances: dict[str, list] = {g: [] for g in classes}
    nslt, keypoints = {}, {}
    for r in records:
        if r.label not in index:
            raise VisionZooError(f"dictionary clip {r.name}: gloss {r.label!r} is not in the class order")
        clip = clips[r.name]
        frames, video = clip.get("frames"), out / "videos" / f"{r.name}.mp4"
        if clip.get("video") is not None:  # a clip already written for another dictionary
            link_or_copy(Path(clip["video"]), video)
        elif frames is not None and not video.exists():
            write_video(video, frames, fps=FPS)
        keypoints[r.name] = np.asarray(clip["keypoints"], dtype=np.float32)
        instances[r.label].append({
            "bbox": [0, 0, 0, 0], "fps": FPS, "frame_start": 1, "frame_end": -1,
            "instance_id": len(instances[r.label]), "signer_id": 0, "source": f"cut:{r.video}[{r.start}:{r.end}]",
            "split": r.split, "url": "", "variation_id": 0, "video_id": r.name,
        })
        nslt[r.name] = {"subset": r.split, "action": [index[r.label], 1, r.seq_len]}
    _write_json(out / "WLASL_v0.3.json", [{"gloss": g, "instances": instances[g]} for g in classes])
    _write_json(out / f"nslt_{len(classes)}.json", nslt)
    _write_json(out / RECORDS, [asdict(r) for r in records])
    with atomic_write(out / WLASL_KEYPOINTS) as tmp:
        tmp.write_bytes(pickle.dumps(keypoints, protocol=4))
    return out


def read_records(root: str | Path) -> list[SignRecord]:
    """The records of a dictionary written by :func:`write_wlasl_dictionary`."""
    from visionzoo.core.errors import DataError

    path = Path(root) / RECORDS
    if not path.is_file():
        raise DataError(path, "dictionary records not found; expected a folder written by the dictionary step")
    try:
        return [SignRecord(**r) for r in json.loads(path.read_text())]
    except (json.JSONDecodeError, TypeError) as e:
        raise DataError(path, f"malformed dictionary records ({e}); expected a list of "
                              f"{{video, name, label, start, end, seq_len, split, language}}") from None


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (copy across file systems); used to share clips between dictionaries."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_json(path: Path, obj) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1))
