"""The dataset registry, a torch Dataset over sign samples, and the padding collate.

``SignDataset`` validates what is cheap when it is built (every gloss/text token is in the vocabulary,
every sample has keypoints of the right shape) so a bad sample fails before training starts, and
decodes lazily: frames through ``visionzoo.data.video`` (only the sampled frames are decoded), keypoints
through a :class:`~visionzoo.data.sign.keypoint_files.KeypointSource`. Frames and keypoints of one
sample are sampled with the same frame indices, so they stay aligned.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Literal, Sequence

import torch
from torch.utils.data import Dataset

from visionzoo.core.errors import ConfigError, DataError, RegistryError
from visionzoo.data.sign.csl_daily import read_csl_daily
from visionzoo.data.sign.how2sign import read_how2sign
from visionzoo.data.sign.keypoint_files import KeypointSource
from visionzoo.data.sign.msasl import read_msasl
from visionzoo.data.sign.phoenix import read_phoenix2014, read_phoenix2014t
from visionzoo.data.sign.sample import (
    SignIndex, SignSample, SkipReport, check_media, log, media_skip_kind, resolve_frame_pattern,
)
from visionzoo.data.sign.vocab import PAD, SPECIALS, Vocabulary, text_tokens
from visionzoo.data.sign.wlasl import read_wlasl
from visionzoo.data.video import FrameSampling, list_frame_files, read_frame_folder, read_video, video_info

SIGN_DATASETS: dict[str, Callable[..., SignIndex]] = {
    "phoenix2014": read_phoenix2014,
    "phoenix2014t": read_phoenix2014t,
    "csl-daily": read_csl_daily,
    "wlasl": read_wlasl,
    "msasl": read_msasl,
    "how2sign": read_how2sign,
}


def read_sign_dataset(name: str, root, split: str, **kwargs) -> SignIndex:
    """``SIGN_DATASETS[name](root, split, **kwargs)`` with a readable error for an unknown name."""
    if name not in SIGN_DATASETS:
        raise RegistryError(f"unknown sign dataset {name!r}; available: {', '.join(SIGN_DATASETS)}")
    return SIGN_DATASETS[name](root, split, **kwargs)


def verify_media(samples: Sequence[SignSample], skip_bad: bool = False) -> tuple[list[SignSample], SkipReport]:
    """Count the frames of every sample (fills ``num_frames``): finds empty frame folders, zero-frame or
    undecodable video headers and missing frames before training instead of in a loader worker."""
    report, kept = SkipReport(), []
    for s in samples:
        err = check_media(s, "count")
        if err is not None:
            report.handle(media_skip_kind(err), err, skip_bad)
            continue
        kept.append(s)
    if report:
        log.warning("verify_media: %s", report.summary())
    return kept, report


@dataclass(frozen=True)
class _FixedIndices:
    """A FrameSampling stand-in that returns precomputed indices (shared by frames and keypoints)."""

    idx: torch.Tensor
    mode: str = "fixed"
    is_random: bool = False

    def indices(self, n: int, generator=None) -> torch.Tensor:
        if len(self.idx) and int(self.idx.max()) >= n:
            raise ValueError(f"frame index {int(self.idx.max())} beyond the {n} frames decoded")
        return self.idx


class SignDataset(Dataset):
    """Items are dicts: ``name``, ``index``, ``gloss`` (list), ``text``, ``label``, ``signer``, and

    - ``frames``: uint8 (T, H, W, 3) RGB when ``load_frames``;
    - ``keypoints``: float32 (T, K, 3) when ``keypoints`` is given (same T and indices as the frames);
    - ``gloss_ids`` / ``text_ids``: int64 (L,) when the vocabulary is given (text wrapped in <s> </s>);
    - ``sample``: the :class:`SignSample` itself when ``return_sample``.

    ``sampling`` picks the frames (``FrameSampling``; jitter is drawn from a generator seeded by
    (seed, epoch, index), so items are reproducible; call :meth:`set_epoch` each epoch).
    ``transform(item) -> item`` runs last. Unknown tokens and missing / misshapen keypoints raise at
    construction, or with ``skip_bad`` are counted in ``self.skipped`` and left out.
    """

    def __init__(
        self,
        samples: SignIndex | Sequence[SignSample],
        load_frames: bool = True,
        keypoints: KeypointSource | None = None,
        sampling: FrameSampling | None = None,
        gloss_vocab: Vocabulary | None = None,
        text_vocab: Vocabulary | None = None,
        text_level: Literal["word", "char"] = "word",
        transform: Callable[[dict], dict] | None = None,
        seed: int = 0,
        skip_bad: bool = False,
        return_sample: bool = False,
    ):
        self.load_frames, self.keypoints, self.sampling = load_frames, keypoints, sampling or FrameSampling()
        self.gloss_vocab, self.text_vocab, self.text_level = gloss_vocab, text_vocab, text_level
        self.transform, self.seed, self.epoch, self.return_sample = transform, seed, 0, return_sample
        if not load_frames and keypoints is None:
            raise ConfigError("SignDataset: load_frames=False needs keypoints; otherwise items carry no input")
        self.skipped = SkipReport()
        self.samples: list[SignSample] = []
        self._gloss_ids: list[list[int] | None] = []
        self._text_ids: list[list[int] | None] = []
        for s in samples:
            if load_frames and s.media is None:
                raise ConfigError(f"SignDataset: sample {s.name!r} has no media; use load_frames=False")
            try:
                gloss_ids = gloss_vocab.encode(s.gloss, where=s.where) if gloss_vocab is not None else None
                text_ids = (text_vocab.encode(text_tokens(s.text, text_level), where=s.where, add_bos_eos=True)
                            if text_vocab is not None else None)
            except DataError as e:
                self.skipped.handle("unknown-gloss", e, skip_bad)
                continue
            err = keypoints.check(s) if keypoints is not None else None
            if err is not None:
                self.skipped.handle("bad-keypoints", err, skip_bad)
                continue
            self.samples.append(s)
            self._gloss_ids.append(gloss_ids)
            self._text_ids.append(text_ids)
        if self.skipped:
            log.warning("SignDataset: %s", self.skipped.summary())

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def collate(self) -> Callable[[list[dict]], dict]:
        """:func:`collate_sign_batch` with this dataset's pad ids."""
        return partial(collate_sign_batch,
                       gloss_pad_id=self.gloss_vocab.pad_id if self.gloss_vocab else DEFAULT_GLOSS_PAD,
                       text_pad_id=self.text_vocab.pad_id if self.text_vocab else DEFAULT_TEXT_PAD)

    def _generator(self, index: int) -> torch.Generator | None:
        if not self.sampling.is_random:
            return None
        # hash() of an int tuple is not salted per process: the same item gets the same jitter everywhere
        return torch.Generator().manual_seed(hash((self.seed, self.epoch, index)) & (2**63 - 1))

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        gen = self._generator(index)
        item = {"name": s.name, "index": index, "gloss": list(s.gloss), "text": s.text, "label": s.label,
                "signer": s.signer}
        kps = self.keypoints.load(s) if self.keypoints is not None else None  # (T, K, 3)
        if self.load_frames:
            item["frames"], idx, n_full, window = self._read_frames(s, gen)
            if kps is not None:
                item["keypoints"] = _align_keypoints(s, kps, idx, n_full, window)
        elif kps is not None:
            item["keypoints"] = kps[self.sampling.indices(len(kps), gen)]
        if self._gloss_ids[index] is not None:
            item["gloss_ids"] = torch.tensor(self._gloss_ids[index], dtype=torch.long)
        if self._text_ids[index] is not None:
            item["text_ids"] = torch.tensor(self._text_ids[index], dtype=torch.long)
        if self.return_sample:
            item["sample"] = s
        return self.transform(item) if self.transform is not None else item

    def _read_frames(self, s: SignSample, gen) -> tuple[torch.Tensor, torch.Tensor, int, tuple[int, int]]:
        """(frames (T, H, W, 3), indices into the full video, its frame count, the sign's window)."""
        if s.media_kind == "frames":
            pattern = resolve_frame_pattern(s.media, s.frame_pattern)
            n_full = len(list_frame_files(s.media, pattern))
        elif self.sampling.mode == "all" and s.frame_range is None:
            frames = read_video(s.media)  # one decode pass; the count comes with the frames
            return frames, torch.arange(len(frames)), len(frames), (0, len(frames))
        else:
            n_full = video_info(s.media).num_frames
        start, end = s.frame_range or (0, None)
        end = n_full if end is None else min(end, n_full)
        if not 0 <= start < end:
            raise s.error(f"frame range [{start}, {end}) of {s.media} is empty ({n_full} frames); "
                          f"expected at least one frame in the sign's window")
        idx = self.sampling.indices(end - start, gen) + start
        try:
            if s.media_kind == "frames":
                frames = read_frame_folder(s.media, pattern, sampling=_FixedIndices(idx))
            else:
                frames = read_video(s.media, sampling=_FixedIndices(idx))
        except ValueError as e:  # the header over-counted the frames
            raise s.error(f"{s.media}: {e}; expected the container's frame count to be right") from None
        return frames, idx, n_full, (start, end)


def _align_keypoints(s: SignSample, kps: torch.Tensor, idx: torch.Tensor, n_full: int,
                     window: tuple[int, int]) -> torch.Tensor:
    """Keypoints at the frames' indices: the array covers the whole video or only the sign's window."""
    start, end = window
    if len(kps) == n_full:
        return kps[idx]
    if len(kps) == end - start:
        return kps[idx - start]
    raise s.error(f"keypoints have {len(kps)} frames but {s.media} has {n_full}; expected one keypoint "
                  f"frame per video frame")


# ----------------------------------------------------------------------------------------------
# Batching

DEFAULT_GLOSS_PAD = SPECIALS["gloss"].index(PAD)
DEFAULT_TEXT_PAD = SPECIALS["text"].index(PAD)


def pad_sequences(seqs: list[torch.Tensor], value: float = 0, mode: Literal["constant", "edge"] = "constant"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T_max, ...) padded along dim 0 of each sequence, and the lengths (B,).

    ``mode='edge'`` repeats each sequence's last element (TwoStream-SLR pads videos with the last frame).
    """
    lengths = torch.tensor([len(x) for x in seqs], dtype=torch.long)
    tail = seqs[0].shape[1:]
    for x in seqs[1:]:
        if x.shape[1:] != tail:
            raise ValueError(f"cannot batch sequences of shapes {tuple(seqs[0].shape)} and {tuple(x.shape)}; "
                             f"expected equal trailing dims")
    out = torch.full((len(seqs), int(lengths.max()), *tail), value, dtype=seqs[0].dtype)
    for i, x in enumerate(seqs):
        out[i, : len(x)] = x
        if mode == "edge" and len(x) < out.shape[1]:
            out[i, len(x):] = x[-1]
    return out, lengths


def collate_sign_batch(
    items: list[dict],
    gloss_pad_id: int = DEFAULT_GLOSS_PAD,
    text_pad_id: int = DEFAULT_TEXT_PAD,
    frame_pad: Literal["constant", "edge"] = "constant",
) -> dict:
    """Pad variable-length items into a batch.

    frames (B, T, ...) + frame_lengths (B,); keypoints (B, T, K, 3) + keypoint_lengths;
    gloss_ids (B, L) + gloss_lengths (padded with ``gloss_pad_id``); text_ids + text_lengths;
    labels (B,) when every item has one; names, gloss, text, signer, index as lists.
    """
    if not items:
        raise ValueError("collate_sign_batch: empty batch")
    batch: dict = {k: [it[k] for it in items] for k in ("name", "index", "gloss", "text", "signer") if k in items[0]}
    batch["names"] = batch.pop("name", [])
    for key, length_key, value, mode in (
        ("frames", "frame_lengths", 0, frame_pad),
        ("keypoints", "keypoint_lengths", 0.0, "constant"),
        ("gloss_ids", "gloss_lengths", gloss_pad_id, "constant"),
        ("text_ids", "text_lengths", text_pad_id, "constant"),
    ):
        if key in items[0]:
            try:
                batch[key], batch[length_key] = pad_sequences([it[key] for it in items], value, mode)
            except ValueError as e:
                raise DataError(", ".join(batch["names"]), f"{key}: {e}") from None
    labels = [it.get("label") for it in items]
    if all(lab is not None for lab in labels):
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
    if "sample" in items[0]:
        batch["samples"] = [it["sample"] for it in items]
    return batch
