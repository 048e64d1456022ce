"""SynthSign: a synthetic sign-language corpus written in the real datasets' on-disk layouts.

``visionzoo data synth synthsign DIR format=phoenix2014t [key=value ...]`` (or ``write_synthsign``)
writes one corpus into ``DIR``. Signs are distinct keypoint trajectories of a whole-body skeleton,
rendered to RGB frames per signer (body size and position, skin, clothes, background, pixel noise),
so both the RGB and the keypoint streams carry the signal. How signs, sentences and translations are
made is in ``synthsign_core``; this module writes them. ``DIR`` is the dataset root a reader is given
(the folder that holds ``annotations/`` for Phoenix, ``sentence_label/`` for CSL-Daily, ...).

Layouts (spec ``sign_language.md`` §1c, §2c, §3c; ``<split>`` as the dataset names it)
------------------------------------------------------------------------------------
``phoenix2014t`` (continuous, gloss + translation; splits train/dev/test)::

    annotations/manual/PHOENIX-2014-T.<split>.corpus.csv   name|video|start|end|speaker|orth|translation
    features/fullFrame-210x260px/<split>/<name>/images0001.png   (1-based)
    phoenix-2014t-keypoints.pkl     {"<split>/<name>": {"keypoints": float32 (T, 133, 3)}}  (TwoStream)
    phoenix-2014t.<split>           gzip pickle, list of {name: "<split>/<name>", gloss, text, num_frames, signer}
    gloss2ids.pkl                   {gloss (lower case) or special: id}, "<s>" = 0 (the CTC blank)

``phoenix2014`` (continuous, gloss only)::

    annotations/manual/<split>.corpus.csv                  id|folder|signer|annotation
    features/fullFrame-210x260px/<split>/<id>/1/<prefix>.avi_pid0_fn000000-0.png   (0-based; <prefix> = id
                                    without its "_default-<n>" suffix)
    phoenix-2014-keypoints.pkl, phoenix-2014.<split> (+ folder), gloss2ids.pkl   as above

``csl-daily`` (continuous, gloss + translation scored per character)::

    sentence_label/csl2020ct_v2.pkl  {"info": [{name, length, label_gloss, label_char, label_word, signer}],
                                      "gloss_map", "char_map", "word_map": sorted lists}
    sentence_label/split_1.txt      name|split   (train/dev/test)
    sentence_frames-512x512/<name>/000000.jpg   (0-based)
    csl-daily-keypoints.pkl, csl-daily.<split>, gloss2ids.pkl ("<si>" = 0)   as above

``wlasl`` (isolated; splits train/val/test)::

    WLASL_v0.3.json                 [{gloss, instances: [{video_id, url, split, signer_id, bbox, frame_start,
                                      frame_end, fps, instance_id, source, variation_id}]}]
    nslt_<V>.json                   {video_id: {subset, action: [class_id, 1, num_frames]}}
    videos/<video_id>.mp4
    keypoints_hrnet_dark_coco_wholebody.pkl   {video_id: float32 (T, 133, 3)}  (NLA-SLR: not wrapped)

``msasl`` (isolated)::

    MSASL_{train,val,test}.json     [{url, start_time, end_time, start, end, label, text, clean_text, org_text,
                                      signer_id, box (normalised y0, x0, y1, x1), width, height, fps, file}]
    MSASL_classes.json              class names, label order
    videos/<file>.mp4, keypoints_hrnet_dark_coco_wholebody.pkl {file: (T, 133, 3)}

``how2sign`` (sentence-clip retrieval; each sentence signed by 1..``signers_per_sentence`` signers)::

    how2sign_realigned_<split>.csv  tab-separated VIDEO_ID VIDEO_NAME SENTENCE_ID SENTENCE_NAME
                                    START_REALIGNED END_REALIGNED SENTENCE  (train/val/test)
    <split>_rgb_front_clips/raw_videos/<SENTENCE_NAME>.mp4
    keypoints_hrnet_dark_coco_wholebody.pkl   {SENTENCE_NAME: (T, 133, 3)}

Every format also writes ``synthsign_meta.json``: the generator's options, the lexicon (per gloss
its concept, category and trajectory id), the visually similar pairs, the glosses of both languages
with the shared (cross-lingual) trajectories, and per sample its split, signer, glosses and the
frame boundaries [start, end) of every sign. Keypoints are COCO-WholeBody-133 (x, y, score) in pixels
of the written frames.

Knobs: ``vocab_size`` (4..58 concepts), ``sentences`` (continuous and retrieval formats; default
120, How2Sign 40), ``clips_per_sign`` (isolated formats), ``frames_per_sign`` (mean frames of one
sign), ``resolution`` (frame height in pixels; the width keeps the dataset's aspect ratio; None = the
real size: Phoenix 260x210, CSL-Daily 512x512, videos 256x256; folder names never change),
``num_signers``, ``signers_per_sentence`` (How2Sign), ``language`` ("a" or "b"), ``shared_fraction``
(share of b's concepts signed with a's trajectories), ``noise`` (pixel noise std), ``cue_split``
(probability that a sign is hidden from the RGB frames, and, separately with the same probability, from
the keypoints; a hidden sign keeps that stream's pose at rest for its frames, and never both streams,
so the two streams carry complementary cues, as in the TwoStream-SLR proxy of spec §1g; the meta file
records per sign which stream, if any, missed it), ``similar_pairs`` (default true: related concepts such
as RAIN/SHOWER are signed as near copies differing in one cue, handshape or end point; false gives every
concept its own far-apart trajectory), ``sign_order`` (whose grammar orders the signs: default the
corpus's own ``language``; "a" for a language-b corpus gives a pair that differs in signs, not in word
order, which separates the two in the cross-lingual proxy). The same options
give byte-identical output. Translations are English for both languages (CSL-Daily's ``label_char``
holds the characters of the words without spaces, as Chinese text has none).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import pickle
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from visionzoo.core.errors import ConfigError
from visionzoo.data.synth import register_synth
from visionzoo.data.synth import synthsign_core as core

FORMATS = ("phoenix2014t", "phoenix2014", "csl-daily", "wlasl", "msasl", "how2sign")
# (height, width) of the real frames / the resized clips the official code reads
NATIVE_SIZE = {"phoenix2014t": (260, 210), "phoenix2014": (260, 210), "csl-daily": (512, 512),
               "wlasl": (256, 256), "msasl": (256, 256), "how2sign": (256, 256)}
SPLITS = {"phoenix2014t": ("train", "dev", "test"), "phoenix2014": ("train", "dev", "test"),
          "csl-daily": ("train", "dev", "test"), "wlasl": ("train", "val", "test"),
          "msasl": ("train", "val", "test"), "how2sign": ("train", "val", "test")}
FPS = 25
DEFAULT_SENTENCES = {"how2sign": 40}
META_FILE = "synthsign_meta.json"
KEYPOINT_PKL_NLA = "keypoints_hrnet_dark_coco_wholebody.pkl"
# random streams of the performances: sample i of a format is seeded by (seed, stream, i)
STREAM_CONTINUOUS, STREAM_ISOLATED, STREAM_RETRIEVAL = 303, 606, 808


@dataclass
class _Setup:
    format: str
    seed: int
    language: str
    height: int
    width: int
    frames_per_sign: int
    noise: float
    cue_split: float
    lex: core.Lexicon
    signers: list[core.Signer]
    sign_order: str  # the language whose grammar orders the signs


@dataclass
class _Rendered:
    frames: np.ndarray  # (T, H, W, 3) uint8
    keypoints: np.ndarray  # (T, 133, 3) float32
    boundaries: list[tuple[int, int]]
    hidden: list[str]  # per sign: "" (seen by both streams), "rgb" or "keypoints" (missing from that stream)


@register_synth("synthsign", "synthetic sign language (keypoint trajectories + rendered frames) in the "
                             "phoenix2014t | phoenix2014 | csl-daily | wlasl | msasl | how2sign layouts")
def write_synthsign(
    out: str | Path,
    format: str = "phoenix2014t",
    seed: int = 0,
    vocab_size: int = 30,
    num_signers: int = 5,
    sentences: int | None = None,
    clips_per_sign: int = 8,
    frames_per_sign: int = 8,
    resolution: int | None = None,
    language: str = "a",
    shared_fraction: float = 0.4,
    signers_per_sentence: int = 3,
    dev_fraction: float = 0.15,
    test_fraction: float = 0.15,
    noise: float = 6.0,
    cue_split: float = 0.0,
    similar_pairs: bool = True,
    sign_order: str | None = None,
) -> dict:
    """Write a SynthSign corpus in ``format``'s layout under ``out``; returns a summary (counts, paths)."""
    if format not in FORMATS:
        raise ConfigError(f"synthsign format: expected one of {', '.join(FORMATS)}, got {format!r}")
    if language not in ("a", "b"):
        raise ConfigError(f"synthsign language: expected 'a' or 'b', got {language!r}")
    sign_order = language if sign_order is None else sign_order
    if sign_order not in ("a", "b"):
        raise ConfigError(f"synthsign sign_order: expected None, 'a' or 'b' (whose grammar orders the signs), "
                          f"got {sign_order!r}")
    if sentences is None:  # How2Sign signs each sentence several times: fewer sentences, similar size
        sentences = DEFAULT_SENTENCES.get(format, 120)
    for key, value, low in (("sentences", sentences, 3), ("clips_per_sign", clips_per_sign, 3),
                            ("frames_per_sign", frames_per_sign, 3), ("signers_per_sentence", signers_per_sentence, 1)):
        if not isinstance(value, int) or value < low:
            raise ConfigError(f"synthsign {key}: expected an int >= {low}, got {value!r}")
    if not (0 < dev_fraction < 1 and 0 < test_fraction < 1 and dev_fraction + test_fraction < 0.8):
        raise ConfigError(f"synthsign dev_fraction/test_fraction: expected fractions in (0, 1) summing to < 0.8, "
                          f"got {dev_fraction!r}, {test_fraction!r}")
    if not (isinstance(cue_split, (int, float)) and 0.0 <= cue_split <= 0.5):
        raise ConfigError(f"synthsign cue_split: expected a probability in [0, 0.5] (a sign is hidden from one "
                          f"stream with 2 * cue_split), got {cue_split!r}")
    height, width = _frame_size(format, resolution)
    setup = _Setup(format, int(seed), language, height, width, frames_per_sign, float(noise), float(cue_split),
                   core.build_lexicon(int(seed), vocab_size, shared_fraction, bool(similar_pairs)),
                   core.make_signers(int(seed), num_signers), sign_order)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if format in ("wlasl", "msasl"):
        samples = _write_isolated(out, setup, clips_per_sign)
    elif format == "how2sign":
        samples = _write_how2sign(out, setup, sentences, signers_per_sentence, dev_fraction, test_fraction)
    else:
        samples = _write_continuous(out, setup, sentences, dev_fraction, test_fraction)
    options = {"format": format, "seed": int(seed), "vocab_size": vocab_size, "num_signers": num_signers,
               "sentences": sentences, "clips_per_sign": clips_per_sign, "frames_per_sign": frames_per_sign,
               "resolution": [height, width], "language": language, "shared_fraction": shared_fraction,
               "signers_per_sentence": signers_per_sentence, "dev_fraction": dev_fraction,
               "test_fraction": test_fraction, "noise": noise, "cue_split": cue_split,
               "similar_pairs": bool(similar_pairs), "sign_order": sign_order, "fps": FPS}
    _write_json(out / META_FILE, _meta(setup, options, samples))
    counts = {s: sum(1 for v in samples.values() if v["split"] == s) for s in SPLITS[format]}
    return {"root": str(out), "format": format, "language": language, **counts,
            "glosses": len(setup.lex.concepts), "signers": num_signers, "size": [height, width]}


def _frame_size(format: str, resolution: int | None) -> tuple[int, int]:
    h0, w0 = NATIVE_SIZE[format]
    if resolution is None:
        return h0, w0
    if not isinstance(resolution, int) or resolution < 32:
        raise ConfigError(f"synthsign resolution: expected None or an int >= 32 (frame height), got {resolution!r}")
    # even sizes: videos are yuv420p
    return 2 * round(resolution / 2), max(2, 2 * round(resolution * w0 / h0 / 2))


# --- one performance -----------------------------------------------------------------------------


def _render(setup: _Setup, concepts: list[str], signer_id: int, stream: int, index: int) -> _Rendered:
    """Perform and render ``concepts`` (in sign order) by one signer; seeded by (seed, stream, index)."""
    rng = np.random.default_rng([setup.seed, stream, index])
    trajs = [setup.lex.trajectories[setup.lex.traj_id[setup.language][c]] for c in concepts]
    signer = setup.signers[signer_id]
    perf = core.perform(trajs, signer, setup.frames_per_sign, rng)
    hidden = [""] * len(trajs)
    rgb_poses = kp_poses = perf.poses
    if setup.cue_split > 0:
        # its own random stream, so that cue_split=0 leaves every other draw (and the output) unchanged
        draw = np.random.default_rng([setup.seed, stream, index, 77]).random(len(trajs))
        hidden = ["rgb" if u < setup.cue_split else "keypoints" if u < 2 * setup.cue_split else "" for u in draw]
        rgb_poses, kp_poses = perf.poses.copy(), perf.poses.copy()
        for (start, end), where in zip(perf.boundaries, hidden):
            if where:
                (rgb_poses if where == "rgb" else kp_poses)[start:end] = core.rest_pose()
    pixels = core.to_pixels(core.skeleton(rgb_poses), signer, setup.height, setup.width)
    bg = core.background(signer, setup.height, setup.width)
    frames = core.render(pixels, signer, bg, rng, noise=setup.noise)
    if kp_poses is not rgb_poses:
        pixels = core.to_pixels(core.skeleton(kp_poses), signer, setup.height, setup.width)
    keypoints = core.keypoint_array(pixels, setup.height, setup.width, rng)
    return _Rendered(frames, keypoints, perf.boundaries, hidden)


def _sample_meta(setup: _Setup, split: str, concepts: list[str], signer_id: int, r: _Rendered, **extra) -> dict:
    lang = setup.language
    return {"split": split, "signer": signer_id, "glosses": [setup.lex.gloss[lang][c] for c in concepts],
            "concepts": concepts, "trajectory_ids": [setup.lex.traj_id[lang][c] for c in concepts],
            "boundaries": [list(b) for b in r.boundaries], "hidden_from": r.hidden, "num_frames": len(r.frames),
            **extra}


# --- sentences and splits --------------------------------------------------------------------------


def _sentences(setup: _Setup, n: int, dev_fraction: float,
               test_fraction: float) -> list[tuple[str, list[str], list[str]]]:
    """``n`` distinct sentences as (split, concepts in sign order, spoken words).

    No gloss sequence occurs twice, so dev/test sentences are unseen combinations; every dev/test
    gloss also occurs in train (a sentence that would bring a new gloss is moved to train).
    """
    rng = np.random.default_rng([setup.seed, 404, 0 if setup.language == "a" else 1])
    seen, items = set(), []
    for _ in range(50 * n):
        concepts, words = core.sample_sentence(rng, setup.lex.concepts, setup.sign_order)
        if tuple(concepts) not in seen:
            seen.add(tuple(concepts))
            items.append((concepts, words))
        if len(items) == n:
            break
    if len(items) < n:
        raise ConfigError(f"synthsign sentences: only {len(items)} distinct sentences exist for vocab_size="
                          f"{len(setup.lex.concepts)}; expected sentences <= {len(items)} or a larger vocab_size")
    n_dev, n_test = max(1, round(dev_fraction * n)), max(1, round(test_fraction * n))
    splits = ["dev"] * n_dev + ["test"] * n_test + ["train"] * (n - n_dev - n_test)
    # the train part comes last in the draw order: sentences are already random, so this is a random split
    splits = splits[::-1]
    train_glosses = {c for (cs, _), s in zip(items, splits) if s == "train" for c in cs}
    for i, ((cs, _), s) in enumerate(zip(items, splits)):
        if s != "train" and not set(cs) <= train_glosses:
            splits[i] = "train"
            train_glosses |= set(cs)
    return [(s, cs, ws) for s, (cs, ws) in zip(splits, items)]


def _signer_assignment(setup: _Setup, n: int) -> np.ndarray:
    """(n,) signer id of each continuous sentence."""
    return np.random.default_rng([setup.seed, 505]).integers(0, len(setup.signers), size=n)


def _phoenix_names(n: int, stem: str) -> list[str]:
    """Broadcast-style names like ``11August_2010_Wednesday_tagesschau-2`` (unique, date-ordered)."""
    day0 = date(2009, 7, 1)
    names = []
    for i in range(n):
        d = day0 + timedelta(days=i // 4)
        names.append(f"{d.day:02d}{d.strftime('%B_%Y_%A')}_{stem}-{i % 4 + 1}")
    return names


def _write_continuous(out: Path, setup: _Setup, n: int, dev_fraction: float, test_fraction: float) -> dict:
    fmt, lang = setup.format, setup.language
    sents = _sentences(setup, n, dev_fraction, test_fraction)
    signer_of = _signer_assignment(setup, len(sents))
    stem = "heute_default" if fmt == "phoenix2014" else "tagesschau"
    names = _phoenix_names(len(sents), stem) if fmt != "csl-daily" else [
        f"S{i:06d}_P{int(signer_of[i]):04d}_T00" for i in range(len(sents))]
    ds = {"phoenix2014t": "phoenix-2014t", "phoenix2014": "phoenix-2014", "csl-daily": "csl-daily"}[fmt]
    rows: dict[str, list] = {s: [] for s in SPLITS[fmt]}
    slrt: dict[str, list] = {s: [] for s in SPLITS[fmt]}
    keypoints, samples, csl_info = {}, {}, []
    for i, ((split, concepts, words), name) in enumerate(zip(sents, names)):
        sid = int(signer_of[i])
        r = _render(setup, concepts, sid, STREAM_CONTINUOUS, i)
        glosses = [setup.lex.gloss[lang][c] for c in concepts]
        text = " ".join(words)
        speaker = f"Signer{sid + 1:02d}"
        if fmt == "phoenix2014t":
            folder = out / "features" / "fullFrame-210x260px" / split / name
            _write_frames(folder, r.frames, "images{:04d}.png", start=1)
            rows[split].append([name, f"{name}/1/*.png", "-1", "-1", speaker, " ".join(glosses), text])
            key = f"{split}/{name}"
        elif fmt == "phoenix2014":
            prefix = name.rsplit("_default-", 1)[0]
            folder = out / "features" / "fullFrame-210x260px" / split / name / "1"
            _write_frames(folder, r.frames, prefix + ".avi_pid0_fn{:06d}-0.png", start=0)
            rows[split].append([name, f"{name}/1/*.png", speaker, " ".join(glosses)])
            key = f"{split}/{name}"
        else:
            _write_frames(out / "sentence_frames-512x512" / name, r.frames, "{:06d}.jpg", start=0)
            csl_info.append({"name": name, "length": len(r.frames), "label_gloss": glosses,
                             "label_char": list("".join(words)), "label_word": words, "signer": sid})
            rows[split].append([name, split])
            key = name
        keypoints[key] = {"keypoints": r.keypoints}
        entry = {"name": key, "gloss": " ".join(glosses), "num_frames": len(r.frames), "signer": speaker}
        if fmt == "phoenix2014":
            entry["folder"] = f"{split}/{name}/1"
        else:
            entry["text"] = text if fmt == "phoenix2014t" else "".join(words)
        slrt[split].append(entry)
        samples[name] = _sample_meta(setup, split, concepts, sid, r, text=text)

    if fmt == "phoenix2014t":
        for split in SPLITS[fmt]:
            _write_csv(out / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv",
                       ["name", "video", "start", "end", "speaker", "orth", "translation"], rows[split], "|")
    elif fmt == "phoenix2014":
        for split in SPLITS[fmt]:
            _write_csv(out / "annotations" / "manual" / f"{split}.corpus.csv",
                       ["id", "folder", "signer", "annotation"], rows[split], "|")
    else:
        label = {"info": csl_info,
                 "gloss_map": sorted({g for x in csl_info for g in x["label_gloss"]}),
                 "char_map": sorted({ch for x in csl_info for ch in x["label_char"]}),
                 "word_map": sorted({w for x in csl_info for w in x["label_word"]})}
        _write_pickle(out / "sentence_label" / "csl2020ct_v2.pkl", label)
        _write_csv(out / "sentence_label" / "split_1.txt", ["name", "split"],
                   [r for s in SPLITS[fmt] for r in rows[s]], "|")
    _write_pickle(out / f"{ds}-keypoints.pkl", keypoints)
    for split in SPLITS[fmt]:
        _write_pickle(out / f"{ds}.{split}", slrt[split], compress=True)
    blank = "<si>" if fmt == "csl-daily" else "<s>"
    specials = [blank, "<pad>", "</s>", "<unk>", "<mask>"]
    vocab = sorted({setup.lex.gloss[lang][c].lower() for c in setup.lex.concepts})
    _write_pickle(out / "gloss2ids.pkl", {tok: i for i, tok in enumerate(specials + vocab)})
    return samples


# --- isolated signs (WLASL, MSASL) ------------------------------------------------------------------


def _write_isolated(out: Path, setup: _Setup, clips_per_sign: int) -> dict:
    lex, lang, fmt = setup.lex, setup.language, setup.format
    n_val = max(1, round(0.2 * clips_per_sign))
    n_test = max(1, round(0.2 * clips_per_sign))
    keypoints, samples = {}, {}
    wlasl, nslt = [], {}
    msasl: dict[str, list] = {s: [] for s in SPLITS[fmt]}
    vid = 0
    for label, concept in enumerate(lex.concepts):
        gloss = lex.gloss[lang][concept].lower()
        instances = []
        for k in range(clips_per_sign):
            split = "test" if k < n_test else "val" if k < n_test + n_val else "train"
            sid = (label + k) % len(setup.signers)  # every class is signed by several signers
            r = _render(setup, [concept], sid, STREAM_ISOLATED, vid)
            name = f"{vid:05d}"
            t = len(r.frames)
            x0, y0 = r.keypoints[:, :, 0].min(), r.keypoints[:, :, 1].min()
            bbox = [int(max(0, x0)), int(max(0, y0)), setup.width, setup.height]
            _write_video(out / "videos" / f"{name}.mp4", r.frames)
            keypoints[name] = r.keypoints
            if fmt == "wlasl":
                instances.append({"bbox": bbox, "fps": FPS, "frame_end": -1, "frame_start": 1, "instance_id": k,
                                  "signer_id": sid, "source": "synthsign", "split": split, "url": "",
                                  "variation_id": 0, "video_id": name})
                nslt[name] = {"subset": split, "action": [label, 1, t]}
            else:
                box = [round(bbox[1] / setup.height, 4), round(bbox[0] / setup.width, 4), 1.0, 1.0]
                msasl[split].append({"url": f"videos/{name}.mp4", "start_time": 0.0, "end_time": round(t / FPS, 3),
                                     "start": 0, "end": t, "label": label, "text": gloss, "clean_text": gloss,
                                     "org_text": gloss.upper(), "signer_id": sid, "signer": sid, "box": box,
                                     "width": float(setup.width), "height": float(setup.height),
                                     "fps": float(FPS), "review": 1, "file": name})
            samples[name] = _sample_meta(setup, split, [concept], sid, r)
            vid += 1
        wlasl.append({"gloss": gloss, "instances": instances})
    if fmt == "wlasl":
        _write_json(out / "WLASL_v0.3.json", wlasl)
        _write_json(out / f"nslt_{len(lex.concepts)}.json", nslt)
    else:
        for split, items in msasl.items():
            _write_json(out / f"MSASL_{split}.json", items)
        _write_json(out / "MSASL_classes.json", [lex.gloss[lang][c].lower() for c in lex.concepts])
    _write_pickle(out / KEYPOINT_PKL_NLA, keypoints)
    return samples


# --- sentence-clip retrieval (How2Sign) ------------------------------------------------------------


def _write_how2sign(out: Path, setup: _Setup, n: int, signers_per_sentence: int, dev_fraction: float,
                    test_fraction: float) -> dict:
    sents = _sentences(setup, n, dev_fraction, test_fraction)
    rename = {"dev": "val"}
    rng = np.random.default_rng([setup.seed, 707])
    rows: dict[str, list] = {s: [] for s in SPLITS["how2sign"]}
    keypoints, samples = {}, {}
    clip = 0
    for i, (split, concepts, words) in enumerate(sents):
        split = rename.get(split, split)
        k = int(rng.integers(1, min(signers_per_sentence, len(setup.signers)) + 1))
        signer_ids = rng.choice(len(setup.signers), size=k, replace=False)
        # sentences are cut from longer "source videos" of one signer, 4 sentences each
        for sid in sorted(int(s) for s in signer_ids):
            r = _render(setup, concepts, sid, STREAM_RETRIEVAL, clip)
            video_id = f"SYN{i // 4:05d}S{sid:02d}"
            video_name = f"{video_id}-{sid + 1}-rgb_front"
            sentence_id = f"{video_id}_{i % 4}"
            sentence_name = f"{sentence_id}-{sid + 1}-rgb_front"
            start = (i % 4) * 10.0
            end = start + len(r.frames) / FPS
            text = _sentence_case(words)
            _write_video(out / f"{split}_rgb_front_clips" / "raw_videos" / f"{sentence_name}.mp4", r.frames)
            rows[split].append([video_id, video_name, sentence_id, sentence_name, f"{start:.2f}", f"{end:.2f}", text])
            keypoints[sentence_name] = r.keypoints
            samples[sentence_name] = _sample_meta(setup, split, concepts, sid, r, text=text, sentence=i)
            clip += 1
    header = ["VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED",
              "SENTENCE"]
    for split, split_rows in rows.items():
        _write_csv(out / f"how2sign_realigned_{split}.csv", header, split_rows, "\t")
    _write_pickle(out / KEYPOINT_PKL_NLA, keypoints)
    return samples


def _sentence_case(words: list[str]) -> str:
    """How2Sign sentences are natural English: capitalised, final period attached."""
    text = " ".join(words[:-1]) + words[-1]
    return text[:1].upper() + text[1:]


# --- metadata ---------------------------------------------------------------------------------------


def _meta(setup: _Setup, options: dict, samples: dict) -> dict:
    lex, lang = setup.lex, setup.language
    other = "b" if lang == "a" else "a"
    return {
        "generator": "visionzoo.data.synth.synthsign",
        "options": options,
        "lexicon": [{"gloss": lex.gloss[lang][c], "concept": c, "category": core.CATEGORY_OF[c],
                     "spoken": core.SPOKEN[c], "trajectory_id": lex.traj_id[lang][c],
                     "other_language_gloss": lex.gloss[other][c], "shared": c in lex.shared}
                    for c in lex.concepts],
        "similar_pairs": [[lex.gloss[lang][x], lex.gloss[lang][y]] for x, y in lex.pairs],
        "languages": {
            lg: {"glosses": {lex.gloss[lg][c]: {"concept": c, "trajectory_id": lex.traj_id[lg][c]}
                             for c in lex.concepts}} for lg in ("a", "b")},
        "shared_signs": [{"a": lex.gloss["a"][c], "b": lex.gloss["b"][c], "trajectory_id": lex.traj_id["a"][c]}
                         for c in lex.shared],
        "trajectories": [t.to_json() for t in lex.trajectories],
        "signers": [{"id": i, "scale": round(s.scale, 4), "speed": round(s.speed, 4), "skin": list(s.skin),
                     "shirt": list(s.shirt)} for i, s in enumerate(setup.signers)],
        "keypoint_layout": "coco_wholebody_133 (x, y in frame pixels, score)",
        "samples": samples,
    }


# --- atomic, deterministic file writers ---------------------------------------------------------------


def _atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, obj) -> None:
    _atomic_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode() + b"\n")


def _write_pickle(path: Path, obj, compress: bool = False) -> None:
    data = pickle.dumps(obj, protocol=4)
    if compress:
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:  # mtime=0: same bytes every run
            gz.write(data)
        data = buf.getvalue()
    _atomic_bytes(path, data)


def _write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
    writer.writerow(header)
    writer.writerows(rows)
    _atomic_bytes(path, buf.getvalue().encode())


def _write_frames(folder: Path, frames: np.ndarray, pattern: str, start: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        img = Image.fromarray(frame)
        path = folder / pattern.format(i + start)
        if path.suffix == ".png":
            img.save(path, compress_level=1)  # fast; PNG is lossless at every level
        else:
            img.save(path, quality=90)


def _write_video(path: Path, frames: np.ndarray) -> None:
    from visionzoo.data.video import write_video

    write_video(path, frames, fps=FPS)
