"""Unit tests of the three steps of the cross-lingual pipeline on hand-built inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from visionzoo.core.errors import DataError, VisionZooError
from visionzoo.data.sign import PickleKeypoints, Vocabulary, read_phoenix2014t, read_wlasl
from visionzoo.methods.sign.crosslingual.corpus import OTHER, choose_aux, relabel, write_joint_corpus
from visionzoo.methods.sign.crosslingual.dictionary import (
    SignRecord, build_records, read_records, refine_segments, segment_iou, write_wlasl_dictionary,
)
from visionzoo.methods.sign.crosslingual.mapping import (
    map_signs, mapping_quality, plot_mapping, read_mapping_csv, write_mapping_csv,
)
from visionzoo.methods.sign.crosslingual.pipeline import score_target


def planted_posterior(spans: list[tuple[int, int, int]], steps: int, vocab: int, sharp: float = 6.0) -> torch.Tensor:
    """(steps, vocab) log-probs: blank everywhere except gloss g on steps [s, e) of each (g, s, e); the last
    id is a filler gloss that is the top non-blank on blank steps (so spans do not grow unless asked)."""
    logits = torch.zeros(steps, vocab)
    logits[:, 0] = sharp
    logits[:, -1] = 1.0
    for g, s, e in spans:
        logits[s:e, g] = 2 * sharp
    return logits.log_softmax(-1)


# ------------------------------------------------------------------------------------ dictionary

def test_refine_segments_recovers_planted_spans_in_frames():
    lp = planted_posterior([(3, 2, 5), (7, 8, 12)], steps=16, vocab=10)
    segs = refine_segments(lp, [3, 7], num_frames=64, stride=4)
    # steps [2, 5) -> frames 8 .. 16 inclusive (official: left * 4, right * 4), [8, 12) -> 32 .. 44
    assert segs == [(8, 17), (32, 45)]
    planted = [(8, 20), (32, 48)]
    assert min(segment_iou(a, b) for a, b in zip(segs, planted)) > 0.7


def test_refine_segments_extends_over_blank_steps_whose_top_non_blank_is_the_gloss():
    lp = planted_posterior([(3, 4, 5)], steps=10, vocab=6)
    lp_ext = lp.clone()
    lp_ext[5:7, 3] = lp_ext[5:7, 0] - 1.0  # blank still wins, gloss 3 second
    assert refine_segments(lp, [3], 40) == [(14, 19)]  # one step: widened to 5 frames around 16
    assert refine_segments(lp_ext, [3], 40) == [(16, 25)]  # steps 4..6 -> frames 16..24


def test_refine_segments_first_step_is_frames_0_to_4_and_last_runs_to_the_end():
    lp = planted_posterior([(1, 0, 1), (2, 9, 10)], steps=10, vocab=4)
    assert refine_segments(lp, [1, 2], num_frames=41) == [(0, 5), (34, 41)]


def test_refine_segments_midpoint_mode_tiles_between_spike_centres():
    lp = planted_posterior([(1, 2, 3), (2, 6, 7), (3, 10, 11)], steps=14, vocab=5)
    segs = refine_segments(lp, [1, 2, 3], num_frames=56, mode="midpoint")
    assert segs == [(2, 18), (18, 34), (34, 50)]
    with pytest.raises(VisionZooError, match="official"):
        refine_segments(lp, [1, 2, 3], 56, mode="nearest")


def test_build_records_holds_out_clips_and_rejects_too_short_posteriors():
    vocab = Vocabulary.build([["A", "B"]])
    lp = planted_posterior([(vocab.stoi["A"], 1, 2), (vocab.stoi["B"], 4, 5)], steps=8, vocab=len(vocab) + 1)
    recs = build_records([(f"s{i}", ["A", "B"], 32, lp) for i in range(12)], vocab, language="t")
    splits = [r.split for r in recs if r.label == "A"]
    assert splits.count("val") == 2 and splits.count("test") == 1 and len(splits) == 12
    assert all(r.seq_len == r.end - r.start > 0 for r in recs)
    with pytest.raises(VisionZooError, match="CTC steps"):
        build_records([("short", ["A", "B", "A"], 8, lp[:2])], vocab)


def test_wlasl_dictionary_reads_back_with_the_data_layer(tmp_path):
    recs = [SignRecord("v1", "t000000", "RAIN", 0, 6, 6, "train"), SignRecord("v1", "t000001", "SUN", 6, 14, 8, "val"),
            SignRecord("v2", "t000002", "RAIN", 2, 9, 7, "train")]
    frames = np.zeros((8, 16, 16, 3), np.uint8)
    clips = {r.name: {"keypoints": np.ones((r.seq_len, 133, 3), np.float32), "frames": frames[: r.seq_len]}
             for r in recs}
    write_wlasl_dictionary(tmp_path, recs, clips)
    train = read_wlasl(tmp_path, "train")  # videos must exist
    assert sorted(s.name for s in train.samples) == ["t000000", "t000002"]
    assert {s.label for s in train.samples} == {0}  # RAIN is class 0 (sorted)
    assert read_wlasl(tmp_path, "val").samples[0].gloss == ["SUN"]
    kp = PickleKeypoints(tmp_path / "keypoints_hrnet_dark_coco_wholebody.pkl").load(train.samples[1])
    assert kp.shape == (7, 133, 3)
    assert read_records(tmp_path) == recs
    nslt = json.loads((tmp_path / "nslt_2.json").read_text())
    assert nslt["t000001"] == {"subset": "val", "action": [1, 1, 8]}


# ------------------------------------------------------------------------------------ mapping

def _clip_probs(rng, rows: list[tuple[str, int, int]], classes: int) -> tuple[np.ndarray, list[str]]:
    """Clips (class name, true union column, n clips): mass 0.5 on the own class, 0.3 on 'twin', rest noise."""
    probs, names = [], []
    for name, twin, n in rows:
        for _ in range(n):
            p = rng.dirichlet(np.ones(classes)) * 0.2
            p[twin] += 0.8
            probs.append(p / p.sum())
            names.append(name)
    return np.array(probs), names


def test_map_signs_maps_shared_signs_and_leaves_novel_ones_below_tau():
    rng = np.random.default_rng(0)
    union = ["RAIN", "SUN", "WIND", "ritu", "pilo"]
    # ritu's clips look like RAIN (a cross-lingual sign); pilo's clips look like pilo (a novel sign)
    probs, names = _clip_probs(rng, [("RAIN", 0, 5), ("SUN", 1, 5), ("WIND", 2, 5), ("ritu", 0, 6), ("pilo", 4, 6)], 5)
    maps, matrix = map_signs(probs, names, union, ["RAIN", "SUN", "WIND"], ["ritu", "pilo"], tau=0.6)
    assert [(m.aux_gloss, m.target_gloss) for m in maps] == [("ritu", "RAIN"), ("pilo", None)]
    assert matrix.shape == (2, 3) and np.allclose(matrix.sum(1), 1)
    assert maps[0].score > 0.6 > maps[1].score
    q = mapping_quality(maps, {"ritu": "RAIN", "pilo": "WIND"})
    assert q["precision"] == 1.0 and q["recall"] == 0.5


def test_mutual_agreement_rejects_a_mapping_the_target_side_does_not_return():
    union = ["A", "B", "x", "y"]
    # both x and y lean to A; A's own clips lean to y -> only y survives the mutual check
    probs = np.array([[0.6, 0.1, 0.1, 0.2], [0.5, 0.1, 0.1, 0.3], [0.1, 0.5, 0.3, 0.1],
                      [0.3, 0.0, 0.6, 0.1], [0.3, 0.0, 0.1, 0.6]])
    names = ["A", "A", "B", "x", "y"]
    plain, _ = map_signs(probs, names, union, ["A", "B"], ["x", "y"], tau=0.5)
    mutual, _ = map_signs(probs, names, union, ["A", "B"], ["x", "y"], tau=0.5, mutual=True)
    assert [m.target_gloss for m in plain] == ["A", "A"]
    assert [m.target_gloss for m in mutual] == [None, "A"]


def test_mapping_csv_round_trip_and_plot(tmp_path):
    rng = np.random.default_rng(1)
    probs, names = _clip_probs(rng, [("RAIN", 0, 3), ("SUN", 1, 3), ("ritu", 0, 3), ("pilo", 3, 3)], 4)
    maps, matrix = map_signs(probs, names, ["RAIN", "SUN", "ritu", "pilo"], ["RAIN", "SUN"], ["ritu", "pilo"], tau=0.9)
    write_mapping_csv(tmp_path / "mapping.csv", maps)
    assert read_mapping_csv(tmp_path / "mapping.csv") == {m.aux_gloss: m.target_gloss for m in maps if m.target_gloss}
    png = plot_mapping(tmp_path / "mapping.png", matrix, ["ritu", "pilo"], ["RAIN", "SUN"], maps, {"ritu": "RAIN"})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "bad.csv").write_text("aux,target\nx,y\n")
    with pytest.raises(DataError, match="bad.csv:1"):
        read_mapping_csv(tmp_path / "bad.csv")


# ------------------------------------------------------------------------------------ joint corpus

def test_relabel_policies():
    mapping, target = {"ritu": "RAIN"}, {"RAIN", "SUN", "pilo"}
    assert relabel(["ritu", "zomi"], mapping, target, "extra") == ["RAIN", "zomi"]
    assert relabel(["ritu", "pilo"], mapping, target, "extra") == ["RAIN", "pilo@aux"]  # name clash
    assert relabel(["ritu", "zomi"], mapping, target, "other") == ["RAIN", OTHER]
    assert relabel(["ritu", "zomi"], mapping, target, "drop") is None
    assert relabel(["ritu"], mapping, target, "drop") == ["RAIN"]


def test_choose_aux_ratio_repeats_and_all():
    assert len(choose_aux(5, 4, 0.5, 0)) == 2
    picks = choose_aux(3, 4, 2.0, 0)
    assert len(picks) == 8 and set(picks) == {0, 1, 2}
    assert choose_aux(7, 4, -1, 0) == list(range(7))


def test_score_target_ignores_auxiliary_predictions():
    refs = [["RAIN", "SUN"], ["WIND"]]
    hyps = [["RAIN", "zomi", "SUN"], ["WIND", OTHER]]
    assert score_target(refs, hyps, {"RAIN", "SUN", "WIND"}) == 0.0
    assert score_target(refs, [["RAIN"], ["WIND"]], {"RAIN", "SUN", "WIND"}) == pytest.approx(100 / 3)


def test_joint_corpus_is_a_phoenix2014t_corpus_with_relabelled_aux(tmp_path):
    from visionzoo.data.synth.synthsign import write_synthsign

    opts = dict(resolution=32, sentences=8, vocab_size=10, num_signers=2, frames_per_sign=3)
    write_synthsign(tmp_path / "t", format="phoenix2014t", language="a", **opts)
    write_synthsign(tmp_path / "b", format="csl-daily", language="b", **opts)
    from visionzoo.data.sign import read_csl_daily

    target = {s: read_phoenix2014t(tmp_path / "t", s).samples for s in ("train", "dev", "test")}
    aux = read_csl_daily(tmp_path / "b", "train").samples
    meta = json.loads((tmp_path / "b" / "synthsign_meta.json").read_text())
    mapping = {p["b"]: p["a"] for p in meta["shared_signs"]}
    summary = write_joint_corpus(tmp_path / "joint", target, aux, PickleKeypoints(tmp_path / "t" / "phoenix-2014t-keypoints.pkl"),
                                 PickleKeypoints(tmp_path / "b" / "csl-daily-keypoints.pkl"), mapping, "other",
                                 aux_ratio=-1)
    joint = read_phoenix2014t(tmp_path / "joint", "train", media="count")
    aux_rows = [s for s in joint.samples if s.name.startswith("aux_")]
    assert len(aux_rows) == len(aux) == summary.aux_sentences
    assert len(joint) - len(aux_rows) == len(target["train"])
    allowed = {g for s in target["train"] for g in s.gloss} | {OTHER}
    assert all(set(s.gloss) <= allowed for s in aux_rows)  # every aux gloss is mapped or <other>
    assert [s.name for s in read_phoenix2014t(tmp_path / "joint", "test").samples] == [s.name for s in target["test"]]
    kps = PickleKeypoints(tmp_path / "joint" / "phoenix-2014t-keypoints.pkl")
    assert kps.load(aux_rows[0]).shape[0] == aux_rows[0].num_frames


# ------------------------------------------------------------------------------------ recipes

@pytest.mark.parametrize("recipe", ["tiny", "tiny_proxy", "tiny_proxy_twostream", "paper", "paper_phoenix2014"])
def test_recipes_load_into_the_typed_config(recipe):
    from visionzoo.core.registry import load_recipe

    spec, cfg, _ = load_recipe(f"crosslingual/{recipe}")
    assert spec.name == "crosslingual" and cfg.cslr.recipe.startswith("twostream/")
    assert cfg.joint.unmapped in ("extra", "drop", "other") and 0 < cfg.mapping.tau < 1


def test_recipe_rejects_an_unknown_policy():
    from visionzoo.core.errors import ConfigError
    from visionzoo.core.registry import load_recipe

    with pytest.raises(ConfigError, match="joint.unmapped"):
        load_recipe("crosslingual/tiny", ["joint.unmapped=ignore"])


def test_oracle_mapping_relabels_with_the_planted_pairs_and_trains_no_model(tmp_path):
    from visionzoo.core.errors import ConfigError
    from visionzoo.core.registry import load_recipe
    from visionzoo.data.synth.synthsign import write_synthsign
    from visionzoo.methods.sign.crosslingual.pipeline import prepare

    opts = dict(resolution=32, sentences=8, vocab_size=10, num_signers=2, frames_per_sign=3)
    write_synthsign(tmp_path / "t", format="phoenix2014t", language="a", **opts)
    write_synthsign(tmp_path / "b", format="phoenix2014t", language="b", **opts)
    overrides = [f"data.root={tmp_path / 't'}", f"data.aux.root={tmp_path / 'b'}", "data.aux.dataset=phoenix2014t",
                 f"data.work_dir={tmp_path / 'work'}", "mapping.oracle=true", "joint.unmapped=other", "joint.aux_ratio=-1"]
    _, cfg, _ = load_recipe("crosslingual/tiny_proxy", overrides)

    class NoTraining:  # any CSLR / ISLR call would be a bug: the oracle needs neither
        def __getattr__(self, name):
            raise AssertionError(f"oracle mapping called the backend's {name}")

    prep = prepare(cfg, backend=NoTraining(), islr=NoTraining())
    meta = json.loads((tmp_path / "b" / "synthsign_meta.json").read_text())
    to_a = {p["b"]: p["a"] for p in meta["shared_signs"]}
    joint = read_phoenix2014t(prep["joint_root"], "train", media="count")
    aux_rows = sorted((s for s in joint.samples if s.name.startswith("aux_")), key=lambda s: s.name)
    train_b = read_phoenix2014t(tmp_path / "b", "train", media="count").samples
    # "other": every planted shared sign becomes its language-a gloss, every other sign <other>
    assert prep["stages"]["mapping"] == {"oracle": True, "mapped": len(to_a)} and len(aux_rows) == len(train_b)
    relabelled = sorted(" ".join(to_a.get(g, OTHER) for g in s.gloss) for s in train_b)
    assert sorted(" ".join(s.gloss) for s in aux_rows) == relabelled
    assert any(g != OTHER for s in aux_rows for g in s.gloss)
    assert not (tmp_path / "work" / "dict_target").exists()

    _, real, _ = load_recipe("crosslingual/tiny_proxy", [*overrides, f"data.aux.root={tmp_path / 'nowhere'}",
                                                         "data.aux.synthsign={}"])
    with pytest.raises(ConfigError, match="mapping.oracle"):
        prepare(real, backend=NoTraining(), islr=NoTraining())


def test_aux_loss_weight_scales_auxiliary_sentences_only(tmp_path):
    """Through TwoStream-SLR's task and loss (the stand-in's weighting is tested in its own file)."""
    from visionzoo.core.errors import ConfigError, DataError
    from visionzoo.core.registry import load_recipe
    from visionzoo.data.synth.synthsign import write_synthsign
    from visionzoo.methods.sign.crosslingual.corpus import AUX_PREFIX
    from visionzoo.methods.sign.crosslingual.task import JointCSLRTask, aux_sample_weight, build_data
    from visionzoo.methods.sign.twostream.data import collate_clips

    assert aux_sample_weight([f"{AUX_PREFIX}00001_x", "01April_2010"], 0.3).tolist() == pytest.approx([0.3, 1.0])
    opts = dict(resolution=32, sentences=8, vocab_size=10, num_signers=2, frames_per_sign=3)
    write_synthsign(tmp_path / "t", format="phoenix2014t", language="a", **opts)
    write_synthsign(tmp_path / "b", format="phoenix2014t", language="b", **opts)
    overrides = [f"data.root={tmp_path / 't'}", f"data.aux.root={tmp_path / 'b'}", "data.aux.dataset=phoenix2014t",
                 f"data.work_dir={tmp_path / 'work'}", "mapping.oracle=true", "joint.aux_ratio=-1"]

    def loss_with_aux_labels_changed(weight: float) -> tuple[float, float]:
        _, cfg, _ = load_recipe("crosslingual/tiny_proxy_twostream", [*overrides, f"joint.aux_loss_weight={weight}"])
        torch.manual_seed(0)
        task = JointCSLRTask(cfg).eval()  # eval: no dropout, so two calls differ only by their labels
        train = build_data(cfg).train_set
        names = [train[i]["name"] for i in range(len(train))]
        aux = next(i for i, n in enumerate(names) if n.startswith(AUX_PREFIX))
        target = next(i for i, n in enumerate(names) if not n.startswith(AUX_PREFIX))
        batch = collate_clips([train[aux], train[target]])
        relabelled = {**batch, "gloss_ids": batch["gloss_ids"].clone()}
        relabelled["gloss_ids"][0, : batch["gloss_lengths"][0]] = batch["gloss_ids"][1, 0]
        with torch.no_grad():
            return (float(task.training_step(batch, None).loss), float(task.training_step(relabelled, None).loss))

    unweighted, zero = loss_with_aux_labels_changed(1.0), loss_with_aux_labels_changed(0.0)
    assert unweighted[0] != pytest.approx(unweighted[1])  # the auxiliary labels count at weight 1 ...
    assert zero[0] == pytest.approx(zero[1])  # ... and give no loss at weight 0
    assert zero[0] < unweighted[0]
    with pytest.raises(ConfigError, match="aux_loss_weight"):
        JointCSLRTask(load_recipe("crosslingual/tiny_proxy_twostream", [*overrides, "joint.aux_loss_weight=-1"])[1])

    clash = tmp_path / "t" / "annotations" / "manual" / "PHOENIX-2014-T.train.corpus.csv"
    lines = clash.read_text().splitlines()
    name = lines[1].split("|")[0]  # a target sentence whose name carries the auxiliary prefix
    frames = tmp_path / "t" / "features" / "fullFrame-210x260px" / "train"
    (frames / name).rename(frames / (AUX_PREFIX + name))
    clash.write_text("\n".join([lines[0], lines[1].replace(name, AUX_PREFIX + name), *lines[2:]]) + "\n")
    _, cfg, _ = load_recipe("crosslingual/tiny_proxy_twostream", [*overrides, f"data.work_dir={tmp_path / 'work2'}"])
    with pytest.raises(DataError, match="reserves for auxiliary"):
        build_data(cfg)
