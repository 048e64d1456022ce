"""The three steps of Wei & Chen (ICCV 2023) as stages writing to a work folder (spec §4b).

``prepare(cfg)`` runs, each stage skipped when its folder already holds a result of the same settings:

1. ``cslr_target/``, ``cslr_aux/``: one CSLR model per language (the CSLR recipe, e.g. TwoStream-SLR);
2. ``dict_target/``, ``dict_aux/``, ``dict_union/``: CTC forced-alignment sign dictionaries (WLASL layout)
   and their boundary IoU against SynthSign's planted sign timings when the corpus has them;
3. ``islr/`` + ``mapping/``: an ISLR model on the union dictionary, ``mapping.csv``, ``mapping.png`` and
   precision / recall against SynthSign's planted shared signs;
4. ``joint_<fingerprint>/``: the target corpus plus the relabelled auxiliary sentences (Phoenix-2014T layout),
   on which the joint CSLR model is then trained (the outer ``visionzoo train`` run).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from visionzoo.core.config import to_dict
from visionzoo.core.errors import ConfigError
from visionzoo.core.io import atomic_write
from visionzoo.methods.sign.crosslingual.backends import (
    CSLRBackend, ISLRBackend, SentencePosterior, make_cslr_backend, make_islr_backend,
)
from visionzoo.methods.sign.crosslingual.config import CorpusConfig, CrossLingualConfig

log = logging.getLogger("visionzoo.crosslingual")
KEYPOINT_PICKLES = {"phoenix2014t": "phoenix-2014t-keypoints.pkl", "phoenix2014": "phoenix-2014-keypoints.pkl",
                    "csl-daily": "csl-daily-keypoints.pkl"}
DONE = "stage.json"


def fingerprint(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _done(folder: Path, key: str) -> dict | None:
    marker = folder / DONE
    if marker.is_file():
        data = json.loads(marker.read_text())
        if data.get("key") == key:
            return data
    return None


def _finish(folder: Path, key: str, summary: dict) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / DONE) as tmp:
        tmp.write_text(json.dumps({"key": key, **summary}, indent=2))
    return summary


def work_dir(cfg: CrossLingualConfig) -> Path:
    return Path(cfg.data.work_dir or f"{cfg.data.root.rstrip('/')}-crosslingual")


def corpora(cfg: CrossLingualConfig) -> dict[str, CorpusConfig]:
    return {"target": CorpusConfig(cfg.data.root, cfg.data.dataset, cfg.data.synthsign), "aux": cfg.data.aux}


def ensure_corpus(corpus: CorpusConfig) -> None:
    """Write SynthSign at ``root`` when it is missing and the recipe gives generator options."""
    if Path(corpus.root).exists() or not corpus.synthsign:
        return
    from visionzoo.data.synth.synthsign import write_synthsign

    write_synthsign(corpus.root, format=corpus.dataset, **corpus.synthsign)


def read_split(corpus: CorpusConfig, split: str):
    from visionzoo.data.sign import read_sign_dataset

    return read_sign_dataset(corpus.dataset, corpus.root, split).samples


def keypoint_source(corpus: CorpusConfig):
    from visionzoo.data.sign import PickleKeypoints

    return PickleKeypoints(Path(corpus.root) / KEYPOINT_PICKLES[corpus.dataset])


def synth_meta(corpus: CorpusConfig) -> dict | None:
    path = Path(corpus.root) / "synthsign_meta.json"
    return json.loads(path.read_text()) if path.is_file() else None


# ------------------------------------------------------------------------------------------ stage 1 + 2

def build_dictionary(cfg: CrossLingualConfig, corpus: CorpusConfig, language: str, backend: CSLRBackend,
                     out: Path, seed: int) -> dict:
    """Train the language's CSLR model, align its training sentences, write its WLASL dictionary."""
    from visionzoo.data.sign import SignDataset
    from visionzoo.methods.sign.crosslingual.dictionary import build_records, write_wlasl_dictionary

    model = cfg.cslr.recipe if cfg.cslr.backend == "recipe" else cfg.cslr.backend
    key = fingerprint([to_dict(corpus), model, cfg.cslr.overrides, cfg.cslr.language_overrides,
                       backend.temporal_stride, to_dict(cfg.dictionary), seed])
    done = _done(out, key)
    if done:
        return done
    trained = backend.train(corpus.root, corpus.dataset, out / "cslr", seed, list(cfg.cslr.language_overrides))
    vocab = backend.vocabulary(trained)
    posts = backend.posteriors(trained, "train")
    records = build_records(((p.name, p.glosses, p.num_frames, p.log_probs) for p in posts), vocab,
                            stride=backend.temporal_stride, widen=cfg.dictionary.widen, language=language,
                            holdout_every=cfg.dictionary.holdout_every, mode=cfg.dictionary.boundaries)
    samples = {s.name: s for s in read_split(corpus, "train")}
    kps = keypoint_source(corpus)
    # the CSLR may have seen a centred window of a long video (TwoStream: 400 frames, a multiple of 4):
    # segments are in that window's frames, the clips are cut from the full video
    offset = {p.name: max(0, (len(kps.load(samples[p.name])) - p.num_frames) // 2) for p in posts}
    by_video: dict[str, list] = {}
    for r in records:
        r.start, r.end = r.start + offset[r.video], r.end + offset[r.video]
        by_video.setdefault(r.video, []).append(r)
    clips = {}
    for video, recs in by_video.items():
        ds = SignDataset([samples[video]], load_frames=cfg.dictionary.write_videos, keypoints=kps)
        item = ds[0]
        frames = item.get("frames")
        if frames is not None and (frames.shape[1] % 2 or frames.shape[2] % 2):  # mp4 needs even sizes
            frames = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]
        for r in recs:
            clips[r.name] = {"keypoints": item["keypoints"][r.start:r.end].numpy(),
                             "frames": None if frames is None else frames[r.start:r.end].numpy()}
    write_wlasl_dictionary(out, records, clips)
    summary = {"language": language, "clips": len(records), "glosses": len({r.label for r in records}),
               "mean_frames": float(np.mean([r.seq_len for r in records])) if records else 0.0}
    iou = planted_iou(corpus, records)
    if iou is not None:
        summary["boundary_iou"] = iou
    return _finish(out, key, summary)


def planted_iou(corpus: CorpusConfig, records) -> float | None:
    """Mean IoU of the dictionary segments against SynthSign's planted sign boundaries (None otherwise)."""
    from visionzoo.methods.sign.crosslingual.dictionary import segment_iou

    meta = synth_meta(corpus)
    if not meta:
        return None
    ious, position = [], {}
    for r in records:  # records of one video come in gloss order
        k = position.get(r.video, 0)
        position[r.video] = k + 1
        sample = meta["samples"].get(r.video.split("/")[-1])
        if sample is None or k >= len(sample["boundaries"]):
            continue
        ious.append(segment_iou((r.start, r.end), tuple(sample["boundaries"][k])))
    return float(np.mean(ious)) if ious else None


def build_union_dictionary(target_dir: Path, aux_dir: Path, out: Path) -> dict:
    """Both dictionaries as one WLASL dataset: target classes first, then auxiliary ones (renamed
    ``<gloss>@aux`` on a name clash); clips are hard-linked, not copied."""
    import pickle

    from visionzoo.methods.sign.crosslingual.corpus import AUX_SUFFIX
    from visionzoo.methods.sign.crosslingual.dictionary import (
        WLASL_KEYPOINTS, read_records, write_wlasl_dictionary,
    )

    key = fingerprint([json.loads((target_dir / DONE).read_text())["key"], json.loads((aux_dir / DONE).read_text())["key"]])
    done = _done(out, key)
    if done:
        return done
    target, aux = read_records(target_dir), read_records(aux_dir)
    target_classes = sorted({r.label for r in target})
    rename = {g: (g + AUX_SUFFIX if g in set(target_classes) else g) for g in {r.label for r in aux}}
    aux_classes = sorted(rename.values())
    records, clips = [], {}
    for folder, recs, relabel in ((target_dir, target, {}), (aux_dir, aux, rename)):
        kps = pickle.loads((folder / WLASL_KEYPOINTS).read_bytes())
        for r in recs:
            video = folder / "videos" / f"{r.name}.mp4"
            records.append(type(r)(**{**asdict(r), "label": relabel.get(r.label, r.label)}))
            clips[r.name] = {"keypoints": kps[r.name], "video": video if video.exists() else None}
    write_wlasl_dictionary(out, records, clips, class_order=target_classes + aux_classes)
    return _finish(out, key, {"target_classes": target_classes, "aux_classes": aux_classes,
                              "aux_names": {v: k for k, v in rename.items()}, "clips": len(records)})


# ------------------------------------------------------------------------------------------ stage 3

def map_languages(cfg: CrossLingualConfig, union_dir: Path, islr: ISLRBackend, out: Path, seed: int) -> dict:
    """Train the ISLR on the union dictionary, map auxiliary glosses to target glosses, write csv + png."""
    from visionzoo.methods.sign.crosslingual.dictionary import read_records
    from visionzoo.methods.sign.crosslingual.mapping import (
        map_signs, mapping_quality, plot_mapping, write_mapping_csv,
    )

    union = json.loads((union_dir / DONE).read_text())
    key = fingerprint([union["key"], to_dict(cfg.islr), to_dict(cfg.mapping), seed])
    done = _done(out, key)
    if done:
        return done
    trained = islr.train(union_dir, out / "islr", seed)
    names, probs = islr.probabilities(trained, union_dir)
    label_of = {r.name: r.label for r in read_records(union_dir)}
    classes = union["target_classes"] + union["aux_classes"]
    mappings, matrix = map_signs(probs.numpy(), [label_of[n] for n in names], classes, union["target_classes"],
                                 union["aux_classes"], tau=cfg.mapping.tau, mutual=cfg.mapping.mutual,
                                 normalise=cfg.mapping.normalise)
    np.savez_compressed(out / "clip_probs.npz", probs=probs.numpy(), names=np.array(names), classes=np.array(classes))
    original = union["aux_names"]  # union class name -> the auxiliary corpus's own gloss
    for m in mappings:
        m.aux_gloss = original[m.aux_gloss]
    truth = planted_pairs(cfg)
    write_mapping_csv(out / "mapping.csv", mappings)
    plot_mapping(out / "mapping.png", matrix, [m.aux_gloss for m in mappings], union["target_classes"], mappings,
                 truth, cfg.mapping.tau)
    summary = {"mapped": sum(m.target_gloss is not None for m in mappings), "aux_glosses": len(mappings)}
    if truth is not None:
        summary.update({f"mapping_{k}": v for k, v in mapping_quality(mappings, truth).items()})
    return _finish(out, key, summary)


def planted_pairs(cfg: CrossLingualConfig) -> dict[str, str] | None:
    """SynthSign's ground-truth cross-lingual signs ``{aux gloss: target gloss}`` (None for real data)."""
    meta_t, meta_a = synth_meta(corpora(cfg)["target"]), synth_meta(cfg.data.aux)
    if not meta_t or not meta_a:
        return None
    lt, la = meta_t["options"]["language"], meta_a["options"]["language"]
    if lt == la:
        return None
    return {pair[la]: pair[lt] for pair in meta_a["shared_signs"]}


# ------------------------------------------------------------------------------------------ stage 4

def corpus_settings(cfg: CrossLingualConfig) -> dict:
    """The joint settings that shape the corpus; the loss weight acts in training, so arms that differ only
    by it share one corpus."""
    settings = to_dict(cfg.joint)
    settings.pop("aux_loss_weight")
    return settings


def joint_corpus(cfg: CrossLingualConfig, mapping: dict[str, str], out: Path) -> dict:
    from visionzoo.methods.sign.crosslingual.corpus import write_joint_corpus

    c = corpora(cfg)
    key = fingerprint([to_dict(c["target"]), to_dict(c["aux"]), corpus_settings(cfg), sorted(mapping.items()),
                       cfg.train.seed])
    done = _done(out, key)
    if done:
        return done
    target = {s: read_split(c["target"], s) for s in ("train", "dev", "test")}
    aux = read_split(c["aux"], "train") if cfg.joint.use_aux else []
    summary = write_joint_corpus(out, target, aux, keypoint_source(c["target"]),
                                 keypoint_source(c["aux"]) if cfg.joint.use_aux else None, mapping,
                                 unmapped=cfg.joint.unmapped, aux_ratio=cfg.joint.aux_ratio, seed=cfg.train.seed,
                                 use_aux=cfg.joint.use_aux)
    return _finish(out, key, {"target_train": summary.target_train, "aux_sentences": summary.aux_sentences,
                              "aux_dropped": summary.aux_dropped, "vocabulary": summary.vocabulary,
                              "target_vocabulary": summary.target_vocabulary})


def prepare(cfg: CrossLingualConfig, backend: CSLRBackend | None = None, islr: ISLRBackend | None = None) -> dict:
    """Run stages 1-4 (cached) and return ``{"joint_root", "stages": {...}}``."""
    backend = backend or make_cslr_backend(cfg)
    work = work_dir(cfg)
    c = corpora(cfg)
    for corpus in c.values():
        ensure_corpus(corpus)
    seed = cfg.train.seed
    stages: dict = {}
    mapping: dict[str, str] = {}
    maps_aux = cfg.joint.use_aux and cfg.mapping.enabled
    if maps_aux and cfg.mapping.oracle:
        truth = planted_pairs(cfg)
        if truth is None:
            raise ConfigError("mapping.oracle: needs a SynthSign pair of two languages (synthsign_meta.json in "
                              f"{c['target'].root} and {c['aux'].root}); real corpora have no planted mapping")
        mapping = truth
        stages["mapping"] = {"oracle": True, "mapped": len(truth)}
    elif maps_aux:
        from visionzoo.methods.sign.crosslingual.mapping import read_mapping_csv

        stages["dict_target"] = build_dictionary(cfg, c["target"], "t", backend, work / "dict_target", seed)
        stages["dict_aux"] = build_dictionary(cfg, c["aux"], "a", backend, work / "dict_aux", seed)
        stages["dict_union"] = build_union_dictionary(work / "dict_target", work / "dict_aux", work / "dict_union")
        stages["mapping"] = map_languages(cfg, work / "dict_union", islr or make_islr_backend(cfg),
                                          work / "mapping", seed)
        mapping = read_mapping_csv(work / "mapping" / "mapping.csv")
    tag = fingerprint([corpus_settings(cfg), cfg.mapping.enabled, sorted(mapping.items())])
    joint_root = work / f"joint_{tag}"
    stages["joint"] = joint_corpus(cfg, mapping, joint_root)
    with atomic_write(work / "pipeline.json") as tmp:
        tmp.write_text(json.dumps({"joint_root": str(joint_root), "stages": stages}, indent=2, default=str))
    return {"joint_root": str(joint_root), "stages": stages}


def target_only_hypotheses(hyps: list[list[str]], target_vocab: set[str]) -> list[list[str]]:
    """Drop predicted glosses outside the target vocabulary (auxiliary classes, ``<other>``) before scoring."""
    return [[g for g in h if g in target_vocab] for h in hyps]


def score_target(refs: list[list[str]], hyps: list[list[str]], target_vocab: set[str], cleanup=None) -> float:
    from visionzoo.metrics.wer import wer

    hyps = target_only_hypotheses(hyps, target_vocab)
    return wer([" ".join(r) for r in refs], [" ".join(h) for h in hyps], cleanup=cleanup).wer


def decode_posteriors(posts: list[SentencePosterior], vocab, method: str = "beam", beam_size: int = 5) -> list[list[str]]:
    from visionzoo.nn.ctc import greedy_decode, prefix_beam_search

    out = []
    for p in posts:
        lp = p.log_probs[None]
        ids = greedy_decode(lp)[0] if method == "greedy" else prefix_beam_search(lp, beam_size=beam_size)[0][0].tokens
        out.append(vocab.decode(ids))
    return out
