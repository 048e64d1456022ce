"""SynthSign writes the real sign-language layouts, deterministically, with learnable structure."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionzoo.core.errors import ConfigError
from visionzoo.data.synth import get_synth, list_synth
from visionzoo.data.synth import synthsign_core as core
from visionzoo.data.synth.synthsign import META_FILE, write_synthsign

TINY = dict(seed=0, vocab_size=8, num_signers=3, sentences=12, clips_per_sign=4, frames_per_sign=4, resolution=64)


@pytest.fixture(scope="module")
def make(tmp_path_factory):
    """make(format, **overrides) -> root of a tiny corpus, generated once per module and options."""
    cache: dict = {}

    def _make(format: str, **overrides) -> Path:
        key = (format, tuple(sorted(overrides.items())))
        if key not in cache:
            root = tmp_path_factory.mktemp(format.replace("-", "_"))
            write_synthsign(root, format=format, **{**TINY, **overrides})
            cache[key] = root
        return cache[key]

    return _make


def meta(root: Path) -> dict:
    return json.loads((root / META_FILE).read_text())


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_rows(path: Path, delimiter: str) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE))


# --- registration and options -----------------------------------------------------------------------


def test_generator_is_registered_for_the_cli():
    assert "synthsign" in list_synth()
    assert get_synth("synthsign") is write_synthsign


def test_unknown_format_is_a_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"synthsign format: expected one of .*phoenix2014t.*got 'phoenix'") as e:
        write_synthsign(tmp_path, format="phoenix")
    assert "\n" not in str(e.value)


def test_cli_writes_a_corpus(tmp_path):
    from visionzoo.cli import main

    main(["data", "synth", "synthsign", str(tmp_path), "format=wlasl", "vocab_size=4", "clips_per_sign=3",
          "resolution=32", "frames_per_sign=3", "--seed", "3"])
    assert meta(tmp_path)["options"]["seed"] == 3
    assert len(json.loads((tmp_path / "nslt_4.json").read_text())) == 12


# --- determinism ------------------------------------------------------------------------------------


def test_same_seed_writes_identical_bytes(make, tmp_path):
    write_synthsign(tmp_path, format="phoenix2014t", **TINY)
    assert digests(tmp_path) == digests(make("phoenix2014t"))


def test_same_seed_writes_identical_videos(make, tmp_path):
    write_synthsign(tmp_path, format="wlasl", **TINY)
    assert digests(tmp_path) == digests(make("wlasl"))


def test_another_seed_writes_another_corpus(make):
    a, b = meta(make("phoenix2014t")), meta(make("phoenix2014t", seed=1))
    assert [s["glosses"] for s in a["samples"].values()] != [s["glosses"] for s in b["samples"].values()]


# --- layouts ----------------------------------------------------------------------------------------


def test_phoenix2014t_layout(make):
    root = make("phoenix2014t")
    info = meta(root)["samples"]
    names = set()
    for split in ("train", "dev", "test"):
        rows = read_rows(root / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv", "|")
        assert rows[0] == ["name", "video", "start", "end", "speaker", "orth", "translation"]
        for name, video, start, end, speaker, orth, translation in rows[1:]:
            names.add(name)
            assert (video, start, end) == (f"{name}/1/*.png", "-1", "-1")
            assert speaker.startswith("Signer") and orth == " ".join(info[name]["glosses"])
            assert translation == translation.lower() and translation.endswith(" .")
            folder = root / "features" / "fullFrame-210x260px" / split / name
            files = sorted(p.name for p in folder.iterdir())
            n = info[name]["num_frames"]
            assert files == [f"images{i:04d}.png" for i in range(1, n + 1)]
    assert names == set(info)
    with Image.open(folder / "images0001.png") as im:
        assert im.size == (52, 64) and im.mode == "RGB"  # (W, H): Phoenix's 210x260 aspect at height 64


def test_phoenix2014t_keypoints_and_slrt_files(make):
    root = make("phoenix2014t")
    info = meta(root)["samples"]
    with open(root / "phoenix-2014t-keypoints.pkl", "rb") as f:
        kps = pickle.load(f)
    entries = []
    for split in ("train", "dev", "test"):
        with gzip.open(root / f"phoenix-2014t.{split}", "rb") as f:
            entries += pickle.load(f)
    assert {e["name"] for e in entries} == set(kps)
    for e in entries:
        split, name = e["name"].split("/")
        arr = kps[e["name"]]["keypoints"]
        assert arr.dtype == np.float32 and arr.shape == (info[name]["num_frames"], 133, 3)
        assert e["num_frames"] == arr.shape[0] and info[name]["split"] == split
    with open(root / "gloss2ids.pkl", "rb") as f:
        gloss2ids = pickle.load(f)
    assert gloss2ids["<s>"] == 0 and "rain" in gloss2ids and len(set(gloss2ids.values())) == len(gloss2ids)


def test_phoenix2014_layout(make):
    root = make("phoenix2014")
    info = meta(root)["samples"]
    rows = read_rows(root / "annotations" / "manual" / "dev.corpus.csv", "|")
    assert rows[0] == ["id", "folder", "signer", "annotation"]
    id_, folder, signer, annotation = rows[1]
    assert id_.endswith(tuple(f"_default-{k}" for k in range(1, 5))) and folder == f"{id_}/1/*.png"
    assert annotation == " ".join(info[id_]["glosses"])
    prefix = id_.rsplit("_default-", 1)[0]
    files = sorted(p.name for p in (root / "features" / "fullFrame-210x260px" / "dev" / id_ / "1").iterdir())
    assert files == [f"{prefix}.avi_pid0_fn{i:06d}-0.png" for i in range(info[id_]["num_frames"])]


def test_csl_daily_layout(make):
    root = make("csl-daily")
    info = meta(root)["samples"]
    with open(root / "sentence_label" / "csl2020ct_v2.pkl", "rb") as f:
        label = pickle.load(f)
    assert set(label) == {"info", "gloss_map", "char_map", "word_map"}
    first = label["info"][0]
    assert set(first) == {"name", "length", "label_gloss", "label_char", "label_word", "signer"}
    assert first["label_gloss"] == info[first["name"]]["glosses"]
    assert "".join(first["label_char"]) == "".join(first["label_word"])
    split_rows = read_rows(root / "sentence_label" / "split_1.txt", "|")
    assert split_rows[0] == ["name", "split"] and {r[1] for r in split_rows[1:]} == {"train", "dev", "test"}
    files = sorted(p.name for p in (root / "sentence_frames-512x512" / first["name"]).iterdir())
    assert files == [f"{i:06d}.jpg" for i in range(first["length"])]


def test_wlasl_layout(make):
    root = make("wlasl")
    from visionzoo.data.video import video_info

    wlasl = json.loads((root / "WLASL_v0.3.json").read_text())
    nslt = json.loads((root / "nslt_8.json").read_text())
    assert len(wlasl) == 8 and all(len(e["instances"]) == 4 for e in wlasl)
    inst = wlasl[0]["instances"][0]
    assert set(inst) == {"bbox", "fps", "frame_end", "frame_start", "instance_id", "signer_id", "source", "split",
                         "url", "variation_id", "video_id"}
    for class_id, entry in enumerate(wlasl):
        for inst in entry["instances"]:
            assert nslt[inst["video_id"]]["subset"] == inst["split"] in ("train", "val", "test")
            assert nslt[inst["video_id"]]["action"][0] == class_id
    vid = wlasl[0]["instances"][0]["video_id"]
    v = video_info(root / "videos" / f"{vid}.mp4")
    assert (v.num_frames, v.height, v.width) == (nslt[vid]["action"][2], 64, 64)
    with open(root / "keypoints_hrnet_dark_coco_wholebody.pkl", "rb") as f:
        kps = pickle.load(f)
    assert isinstance(kps[vid], np.ndarray) and kps[vid].shape == (v.num_frames, 133, 3)  # NLA-SLR: not wrapped


def test_msasl_layout(make):
    root = make("msasl")
    classes = json.loads((root / "MSASL_classes.json").read_text())
    train = json.loads((root / "MSASL_train.json").read_text())
    assert len(classes) == 8
    e = train[0]
    for key in ("url", "start_time", "end_time", "start", "end", "label", "text", "clean_text", "org_text",
                "signer_id", "box", "width", "height", "fps", "file"):
        assert key in e
    assert classes[e["label"]] == e["clean_text"] and (root / "videos" / f"{e['file']}.mp4").is_file()


def test_how2sign_layout_has_several_signers_per_sentence(make):
    root = make("how2sign")
    header = ["VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED",
              "SENTENCE"]
    clips_per_sentence: dict[str, set] = {}
    for split in ("train", "val", "test"):
        rows = read_rows(root / f"how2sign_realigned_{split}.csv", "\t")
        assert rows[0] == header
        for video_id, video_name, sentence_id, sentence_name, start, end, sentence in rows[1:]:
            assert sentence_name.startswith(sentence_id) and video_name.startswith(video_id)
            assert float(end) > float(start) and sentence[0].isupper() and sentence.endswith(".")
            assert (root / f"{split}_rgb_front_clips" / "raw_videos" / f"{sentence_name}.mp4").is_file()
            clips_per_sentence.setdefault(sentence, set()).add(video_name.split("-")[-2])
    assert max(len(s) for s in clips_per_sentence.values()) >= 2


# --- what the corpus means ------------------------------------------------------------------------------


def test_translation_is_more_than_gloss_copying(make):
    samples = meta(make("phoenix2014t", sentences=30))["samples"].values()
    for s in samples:
        words = s["text"].split()
        assert [g.lower() for g in s["glosses"]] != words
        assert {"there", "will", "be"} <= set(words)  # function words the glosses never have
    # reordering: glosses put the time before the place, the translation puts the place first
    lexicon = {x["gloss"]: x for x in meta(make("phoenix2014t", sentences=30))["lexicon"]}
    checked = 0
    for s in samples:
        cats = {lexicon[g]["category"]: lexicon[g] for g in s["glosses"]}
        if "and" in s["text"].split() or not {"time", "place"} <= set(cats):
            continue
        time_, place = cats["time"], cats["place"]
        assert s["glosses"].index(time_["gloss"]) < s["glosses"].index(place["gloss"])
        assert s["text"].index(place["spoken"]) < s["text"].index(time_["spoken"])
        checked += 1
    assert checked >= 3


def test_dev_and_test_sentences_are_unseen_in_train(make):
    samples = meta(make("phoenix2014t", sentences=30))["samples"].values()
    train = {tuple(s["glosses"]) for s in samples if s["split"] == "train"}
    train_glosses = {g for seq in train for g in seq}
    held_out = [s for s in samples if s["split"] != "train"]
    assert held_out and all(tuple(s["glosses"]) not in train for s in held_out)
    assert all(set(s["glosses"]) <= train_glosses for s in held_out)


def test_sign_boundaries_lie_inside_the_video_in_order(make):
    for s in meta(make("phoenix2014t"))["samples"].values():
        ends = [0] + [x for b in s["boundaries"] for x in b] + [s["num_frames"]]
        assert ends == sorted(ends) and len(s["boundaries"]) == len(s["glosses"])


def test_language_b_shares_the_declared_trajectories(make):
    a, b = make("wlasl"), make("wlasl", language="b")
    ma, mb = meta(a), meta(b)
    shared = {x["a"]: x["b"] for x in ma["shared_signs"]}
    assert shared == {x["a"]: x["b"] for x in mb["shared_signs"]} and 0 < len(shared) < 8
    with open(a / "keypoints_hrnet_dark_coco_wholebody.pkl", "rb") as f:
        kps_a = pickle.load(f)
    with open(b / "keypoints_hrnet_dark_coco_wholebody.pkl", "rb") as f:
        kps_b = pickle.load(f)
    for name, sa in ma["samples"].items():  # clip names and signers coincide: class by class, same order
        sb = mb["samples"][name]
        same_sign = sa["glosses"][0] in shared
        assert (sa["glosses"] != sb["glosses"]) and (sa["trajectory_ids"] == sb["trajectory_ids"]) == same_sign
        assert np.array_equal(kps_a[name], kps_b[name]) == same_sign


def test_sign_order_a_gives_language_b_the_target_grammar(make):
    own, reordered = meta(make("phoenix2014t", language="b")), meta(make("phoenix2014t", language="b", sign_order="a"))
    assert own["options"]["sign_order"] == "b" and reordered["options"]["sign_order"] == "a"
    category = {c: core.CATEGORY_OF[c] for c in core.choose_concepts(TINY["vocab_size"])}

    def slot_ranks(concepts, lang):  # the grammatical slot of each sign in lang's order
        order = core.SIGN_ORDER[lang]
        return [order.index(c if c in ("VERY", "NOT") else category[c]) for c in concepts]

    def in_order(meta_, lang):  # one-clause sentences (two clauses restart the order after "and")
        clauses = [s["concepts"] for s in meta_["samples"].values() if " and " not in s["text"]]
        assert clauses
        return all(slot_ranks(c, lang) == sorted(slot_ranks(c, lang)) for c in clauses)

    assert in_order(own, "b") and not in_order(own, "a")
    assert in_order(reordered, "a") and not in_order(reordered, "b")
    b_glosses = set(reordered["languages"]["b"]["glosses"])
    assert all(set(s["glosses"]) <= b_glosses for s in reordered["samples"].values())  # still language b's signs
    with pytest.raises(ConfigError, match="sign_order"):
        write_synthsign(Path("/nonexistent"), sign_order="c")


def test_similar_pairs_are_closer_than_other_signs():
    lex = core.build_lexicon(0, 30, 0.4)
    feats = {c: core.descriptor(lex.trajectories[lex.traj_id["a"][c]]) for c in lex.concepts}
    pair_d = [np.linalg.norm(feats[x] - feats[y]) for x, y in lex.pairs]
    paired = {c for p in lex.pairs for c in p}
    other_d = [np.linalg.norm(feats[x] - feats[y]) for i, x in enumerate(lex.concepts)
               for y in lex.concepts[i + 1:] if (x, y) not in lex.pairs and (y, x) not in lex.pairs]
    assert len(pair_d) >= 8 and paired
    assert max(pair_d) < np.percentile(other_d, 10)


def test_without_similar_pairs_every_sign_is_far_from_the_others():
    paired = core.build_lexicon(0, 30, 0.4)
    lex = core.build_lexicon(0, 30, 0.4, similar_pairs=False)
    assert lex.pairs == [] and lex.concepts == paired.concepts

    def descriptor(lexicon, c):
        return core.descriptor(lexicon.trajectories[lexicon.traj_id["a"][c]])

    closest = min(np.linalg.norm(descriptor(lex, x) - descriptor(lex, y))
                  for i, x in enumerate(lex.concepts) for y in lex.concepts[i + 1:])
    assert closest > max(np.linalg.norm(descriptor(paired, x) - descriptor(paired, y)) for x, y in paired.pairs)


def test_cue_split_hides_each_sign_from_one_stream_only(make):
    """A hidden sign changes only its own frames of one stream: the rest equals the plain corpus."""
    plain, split = make("phoenix2014t"), make("phoenix2014t", cue_split=0.4)
    with open(plain / "phoenix-2014t-keypoints.pkl", "rb") as f:
        kp_plain = pickle.load(f)
    with open(split / "phoenix-2014t-keypoints.pkl", "rb") as f:
        kp_split = pickle.load(f)
    seen = {"": 0, "rgb": 0, "keypoints": 0}
    for name, sample in meta(split)["samples"].items():
        key = f"{sample['split']}/{name}"
        folder = Path("features/fullFrame-210x260px") / sample["split"] / name

        def frames(root):
            return np.stack([np.asarray(Image.open(p)) for p in sorted((root / folder).glob("*.png"))])

        rgb_a, rgb_b = frames(plain), frames(split)
        kps_a, kps_b = kp_plain[key]["keypoints"], kp_split[key]["keypoints"]
        changed_rgb, changed_kps = np.zeros(len(rgb_a), bool), np.zeros(len(rgb_a), bool)
        for (start, end), hidden in zip(sample["boundaries"], sample["hidden_from"]):
            seen[hidden] += 1  # a value other than the three is a KeyError
            changed_rgb[start:end] = hidden == "rgb"
            changed_kps[start:end] = hidden == "keypoints"
            if hidden == "rgb":
                assert not np.array_equal(rgb_a[start:end], rgb_b[start:end]), (name, start)
            if hidden == "keypoints":
                assert not np.array_equal(kps_a[start:end], kps_b[start:end]), (name, start)
        assert np.array_equal(rgb_a[~changed_rgb], rgb_b[~changed_rgb]), name
        # x, y only: the low scores of off-frame points are drawn for however many points are off-frame
        assert np.array_equal(kps_a[~changed_kps, :, :2], kps_b[~changed_kps, :, :2]), name
    assert min(seen.values()) >= 3, seen  # 0.4 / 0.4 / 0.2 of about 50 signs
    assert all(h == "" for s in meta(plain)["samples"].values() for h in s["hidden_from"])


def test_cue_split_above_one_half_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cue_split"):
        write_synthsign(tmp_path, format="phoenix2014t", cue_split=0.6)


def _nearest_centroid_accuracy(features: dict, labels: dict, train: set) -> float:
    classes = sorted(set(labels.values()))
    centroids = np.stack([np.mean([features[n] for n in train if labels[n] == c], 0) for c in classes])
    test = [n for n in features if n not in train]
    pred = [classes[int(np.linalg.norm(centroids - features[n], axis=1).argmin())] for n in test]
    return float(np.mean([p == labels[n] for p, n in zip(pred, test)]))


def _sign_keypoint_feature(kps: np.ndarray) -> np.ndarray:
    """Wrists relative to the shoulders and fingers relative to their wrist, at 10 time steps."""
    xy = kps[:, :, :2]
    centre = (xy[:, 5] + xy[:, 6]) / 2
    width = np.linalg.norm(xy[:, 5] - xy[:, 6], axis=1)[:, None, None]
    wrists = (xy[:, [9, 10]] - centre[:, None]) / width
    fingers = np.concatenate([xy[:, 92:112] - xy[:, 91:92], xy[:, 113:133] - xy[:, 112:113]], 1) / width
    idx = np.linspace(0, len(xy) - 1, 10).round().astype(int)
    return np.concatenate([wrists[idx].ravel(), 2 * fingers[idx].ravel()])


def test_signs_are_separable_from_keypoint_trajectories(make):
    # 8 classes = 4 visually similar pairs. Measured 1.00 for seeds 0, 1, 2 (chance 0.125).
    root = make("wlasl", clips_per_sign=6, frames_per_sign=6)
    samples = meta(root)["samples"]
    with open(root / "keypoints_hrnet_dark_coco_wholebody.pkl", "rb") as f:
        kps = pickle.load(f)
    feats = {n: _sign_keypoint_feature(kps[n][slice(*s["boundaries"][0])]) for n, s in samples.items()}
    labels = {n: s["glosses"][0] for n, s in samples.items()}
    train = {n for n, s in samples.items() if s["split"] == "train"}
    assert _nearest_centroid_accuracy(feats, labels, train) >= 0.9


def test_signs_are_visible_in_the_rgb_frames(make):
    # One signer, so appearance does not dominate pixel distances. Measured 0.75 / 0.62 / 0.88 (seeds 0-2).
    from visionzoo.data.video import read_video

    root = make("wlasl", clips_per_sign=6, frames_per_sign=6, num_signers=1)
    samples = meta(root)["samples"]
    feats = {}
    for n, s in samples.items():
        video = read_video(root / "videos" / f"{n}.mp4").numpy().astype(np.float32).mean(-1)  # (T, 64, 64)
        a, b = s["boundaries"][0]
        moving = video[np.linspace(a, b - 1, 6).round().astype(int)] - video[0]  # frame 0 = rest pose
        feats[n] = np.abs(moving).reshape(6, 16, 4, 16, 4).mean((2, 4)).ravel()
    labels = {n: s["glosses"][0] for n, s in samples.items()}
    train = {n for n, s in samples.items() if s["split"] == "train"}
    assert _nearest_centroid_accuracy(feats, labels, train) >= 0.5


def test_default_corpus_is_generated_in_under_a_minute(tmp_path):
    """CPU time of a 6-sentence corpus at full Phoenix size, scaled to the default corpus' frame count."""
    from visionzoo.data.synth import synthsign as ss

    start = time.process_time()
    summary = write_synthsign(tmp_path, sentences=6)
    cpu = time.process_time() - start
    frames = sum(s["num_frames"] for s in meta(tmp_path)["samples"].values())
    assert summary["size"] == [260, 210]
    # frame count of the default corpus, from the same sentence and timing model without rendering
    setup = ss._Setup("phoenix2014t", 0, "a", 260, 210, 8, 6.0, 0.0, core.build_lexicon(0, 30, 0.4),
                      core.make_signers(0, 5), "a")
    sentences = ss._sentences(setup, 120, 0.15, 0.15)
    signer_of = ss._signer_assignment(setup, len(sentences))
    default_frames = 0
    for i, (_, concepts, _) in enumerate(sentences):
        rng = np.random.default_rng([0, ss.STREAM_CONTINUOUS, i])
        trajs = [setup.lex.trajectories[setup.lex.traj_id["a"][c]] for c in concepts]
        default_frames += len(core.perform(trajs, setup.signers[signer_of[i]], 8, rng).poses)
    assert default_frames > 3000  # the projection is about a realistic corpus
    assert cpu / frames * default_frames < 60.0


# --- the readers of visionzoo.data.sign read what we write ---------------------------------------------

SPLITS = {"phoenix2014t": ("train", "dev", "test"), "phoenix2014": ("train", "dev", "test"),
          "csl-daily": ("train", "dev", "test"), "wlasl": ("train", "val", "test"),
          "msasl": ("train", "val", "test"), "how2sign": ("train", "val", "test")}
KEYPOINT_FILE = {"phoenix2014t": "phoenix-2014t-keypoints.pkl", "phoenix2014": "phoenix-2014-keypoints.pkl",
                 "csl-daily": "csl-daily-keypoints.pkl", "wlasl": "keypoints_hrnet_dark_coco_wholebody.pkl",
                 "msasl": "keypoints_hrnet_dark_coco_wholebody.pkl",
                 "how2sign": "keypoints_hrnet_dark_coco_wholebody.pkl"}


@pytest.mark.parametrize("format", list(SPLITS))
def test_sign_readers_read_every_sample_with_its_glosses(make, format):
    sign = pytest.importorskip("visionzoo.data.sign")
    root = make(format)
    samples = meta(root)["samples"]
    read = {}
    for split in SPLITS[format]:
        index = sign.read_sign_dataset(format, root, split)
        assert not index.skipped
        read.update({s.name: (split, s) for s in index})
    assert set(read) == set(samples)
    for name, (split, s) in read.items():
        truth = samples[name]
        assert split == truth["split"]
        if format != "how2sign":  # How2Sign has no glosses
            assert [g.upper() for g in s.gloss] == [g.upper() for g in truth["glosses"]]
        if format in ("phoenix2014t", "how2sign"):
            assert s.text == truth["text"]


@pytest.mark.parametrize("format", ["phoenix2014t", "csl-daily", "wlasl", "how2sign"])
def test_sign_dataset_loads_frames_and_matching_keypoints(make, format):
    sign = pytest.importorskip("visionzoo.data.sign")
    root = make(format)
    index = sign.read_sign_dataset(format, root, "test")
    keypoints = sign.PickleKeypoints(root / KEYPOINT_FILE[format])
    item = sign.SignDataset(index, keypoints=keypoints)[0]
    n = meta(root)["samples"][item["name"]]["num_frames"]
    assert tuple(item["frames"].shape[:2]) == (n, 64) and tuple(item["keypoints"].shape) == (n, 133, 3)


def test_keypoints_are_pixels_of_the_written_frames(make):
    root = make("phoenix2014t")
    with open(root / "phoenix-2014t-keypoints.pkl", "rb") as f:
        kps = pickle.load(f)
    arr = np.concatenate([v["keypoints"] for v in kps.values()])  # (sum T, 133, 3)
    inside = (arr[..., 0] >= 0) & (arr[..., 0] < 52) & (arr[..., 1] >= 0) & (arr[..., 1] < 64)
    assert (arr[..., 2][inside] > 0.5).all() and (arr[..., 2][~inside] < 0.5).all()  # detector-like scores
    upper = list(range(0, 11)) + list(range(23, 133))  # head, arms, face, hands
    assert inside[:, upper].mean() > 0.95 and not inside[:, 13:23].any()  # legs and feet: below the frame
    assert arr[:, 10, :2].std(0).min() > 2.0  # the dominant wrist moves (pixels)
