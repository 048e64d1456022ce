"""Predictions files of the sign methods and ``evaluate_predictions`` / ``eval-predictions``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from visionzoo.core.errors import DataError, VisionZooError
from visionzoo.metrics.predictions import (
    add_eval_predictions_args, evaluate_predictions, read_retrieval_predictions, read_text_file, read_topk_file,
    run_eval_predictions, write_retrieval_predictions, write_text_predictions, write_topk_predictions,
)
from visionzoo.metrics.retrieval import retrieval_metrics
from visionzoo.metrics.translation import translation_metrics
from visionzoo.metrics.wer import wer

pytest.importorskip("sacrebleu")

GLOSS_REFS = {"dev/a": "loc-NORD REGEN WIND", "dev/b": "__ON__ SONNE A B C", "dev/c": "MORGEN KALT"}
GLOSS_HYPS = {"dev/c": "MORGEN", "dev/a": "NORD REGEN REGEN WIND", "dev/b": "SONNE A+B+C"}


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_text_predictions_round_trip(tmp_path):
    items = {"dev/a": "REGEN WIND", "dev/b": ""}
    assert read_text_file(write_text_predictions(tmp_path / "p.tsv", items)) == items


def test_cslr_file_scores_like_wer_with_the_dataset_cleanup(tmp_path):
    preds = write_text_predictions(tmp_path / "hyp.tsv", GLOSS_HYPS)
    refs = write_text_predictions(tmp_path / "ref.tsv", GLOSS_REFS)
    out = evaluate_predictions(preds, "cslr", refs, dataset="phoenix2014")
    names = list(GLOSS_REFS)
    want = wer([GLOSS_REFS[n] for n in names], [GLOSS_HYPS[n] for n in names], cleanup="phoenix2014")
    assert out["wer"] == pytest.approx(want.wer) and out["sentences"] == 3
    # cleanup makes loc-NORD = NORD, merges REGEN REGEN, joins A B C; Phoenix-2014 keeps __ON__, which the
    # hypothesis lacks, and KALT is missing: 2 errors in 8 reference glosses
    assert out["wer"] == pytest.approx(100 * 2 / 8)


def test_cleanup_argument_overrides_the_dataset(tmp_path):
    preds = write_text_predictions(tmp_path / "hyp.tsv", GLOSS_HYPS)
    refs = write_text_predictions(tmp_path / "ref.tsv", GLOSS_REFS)
    raw = evaluate_predictions(preds, "cslr", refs)
    p14t = evaluate_predictions(preds, "cslr", refs, dataset="phoenix2014", cleanup="phoenix2014t")
    assert raw["wer"] > p14t["wer"] == pytest.approx(100 / 7)  # P14T also drops __ON__: 7 reference glosses


def test_slt_on_csl_daily_is_scored_per_character(tmp_path):
    refs = {"S1": "今天天气很好。", "S2": "我去学校"}
    hyps = {"S1": "今天 天气 好。", "S2": "我去学校"}
    preds = write_text_predictions(tmp_path / "hyp.tsv", hyps)
    out = evaluate_predictions(preds, "slt", refs, dataset="csl-daily")
    want = translation_metrics(list(refs.values()), list(hyps.values()), level="char")
    assert out == want | {"sentences": 2}
    assert evaluate_predictions(preds, "slt", refs)["bleu1"] != pytest.approx(out["bleu1"])


def test_islr_file_with_scores(tmp_path):
    preds = write_topk_predictions(tmp_path / "top.tsv", {"v1": [(3, 0.9), (1, 0.1)], "v2": [(0, 0.6), (2, 0.3)],
                                                          "v3": [(2, 0.5), (0, 0.4)]})
    refs = write(tmp_path / "labels.tsv", "v1\t3\nv2\t2\nv3\t0\n")
    out = evaluate_predictions(preds, "islr", refs, ks=(1, 2))
    assert out["per_instance_top1"] == pytest.approx(100 / 3)
    assert out["per_instance_top2"] == pytest.approx(100.0)
    assert out["clips"] == 3


def test_islr_labels_without_scores_are_read_in_order(tmp_path):
    path = write(tmp_path / "top.tsv", "# top-3 ids\nv1\t4 2 7\n")
    ranked = read_topk_file(path)["v1"]
    assert [c for c, _ in ranked] == [4, 2, 7] and all(np.isnan(s) for _, s in ranked)


def test_retrieval_files_score_like_the_matrix(tmp_path):
    rng = np.random.default_rng(0)
    text_ids, clip_ids = ["s0", "s1", "s2"], ["c0", "c1", "c2", "c3"]
    sim = rng.normal(size=(3, 4)).astype(np.float32)
    path = write_retrieval_predictions(tmp_path / "sims.npy", sim, text_ids, clip_ids)
    refs = {"c3": "s2", "c0": "s0", "c2": "s1", "c1": "s1"}  # any order; matched by id
    out = evaluate_predictions(path, "retrieval", refs)
    assert out == retrieval_metrics(sim, [0, 1, 1, 2]) | {"texts": 3, "clips": 4}


def test_retrieval_ids_must_match_the_matrix(tmp_path):
    path = write_retrieval_predictions(tmp_path / "sims.npy", np.zeros((2, 2)), ["s0", "s1"], ["c0", "c1"])
    (tmp_path / "sims.json").write_text(json.dumps({"text_ids": ["s0"], "clip_ids": ["c0", "c1"]}))
    with pytest.raises(DataError, match=r"sims\.json: key 'text_ids' has 1 ids for 2 matrix rows"):
        read_retrieval_predictions(path)


def test_retrieval_clip_of_an_unknown_sentence_is_an_error(tmp_path):
    path = write_retrieval_predictions(tmp_path / "sims.npy", np.eye(2), ["s0", "s1"], ["c0", "c1"])
    with pytest.raises(DataError, match="clips map to sentences missing"):
        evaluate_predictions(path, "retrieval", {"c0": "s0", "c1": "s9"})


def test_missing_ids_file_is_an_error(tmp_path):
    np.save(tmp_path / "sims.npy", np.eye(2))
    with pytest.raises(DataError, match=r"sims\.json: ids file not found"):
        read_retrieval_predictions(tmp_path / "sims.npy")


@pytest.mark.parametrize("content,line,problem", [
    ("a\tREGEN\nb REGEN\n", 2, "expected .name<TAB>value. \\(no tab found\\)"),
    ("a\tREGEN\n\ta\n", 2, "empty name"),
    ("a\tREGEN\n# note\na\tWIND\n", 3, "duplicate name 'a' \\(first on line 1\\)"),
])
def test_malformed_text_lines_name_file_and_line(tmp_path, content, line, problem):
    path = write(tmp_path / "p.tsv", content)
    with pytest.raises(DataError, match=rf"p\.tsv:{line}: {problem}"):
        read_text_file(path)


@pytest.mark.parametrize("payload,problem", [
    ("3:0.9 x:0.1", "expected 'label_id\\[:score\\]' items, got 'x:0.1'"),
    ("3:0.1 1:0.9", "labels must be listed best first"),
    ("3:0.9 1", "give a score for every label or for none"),
    ("3 3", "a label id is listed twice"),
    ("-1", "label ids are >= 0"),
    ("", "no ranked labels"),
])
def test_malformed_topk_lines_name_file_and_line(tmp_path, payload, problem):
    path = write(tmp_path / "top.tsv", f"v0\t1:0.5\nv1\t{payload}\n")
    with pytest.raises(DataError, match=rf"top\.tsv:2: {problem}"):
        read_topk_file(path)


def test_label_reference_must_be_an_integer(tmp_path):
    preds = write(tmp_path / "top.tsv", "v1\t1\n")
    refs = write(tmp_path / "labels.tsv", "v1\tHAUS\n")
    with pytest.raises(DataError, match=r"labels\.tsv:1: expected one integer label id, got 'HAUS'"):
        evaluate_predictions(preds, "islr", refs, ks=(1,))


def test_islr_lines_shorter_than_k_are_an_error(tmp_path):
    preds = write(tmp_path / "top.tsv", "v1\t1 2\n")
    with pytest.raises(DataError, match="top-5 accuracy needs 5 ranked labels per line"):
        evaluate_predictions(preds, "islr", {"v1": 1})


def test_a_reference_without_prediction_is_an_error(tmp_path):
    preds = write_text_predictions(tmp_path / "hyp.tsv", {"dev/a": "REGEN"})
    with pytest.raises(DataError, match=r"hyp\.tsv: no prediction for 1 of 2 references \(first: 'dev/b'"):
        evaluate_predictions(preds, "cslr", {"dev/a": "REGEN", "dev/b": "WIND"})


def test_a_prediction_without_reference_is_an_error(tmp_path):
    preds = write_text_predictions(tmp_path / "hyp.tsv", {"dev/a": "REGEN", "test/z": "WIND"})
    with pytest.raises(DataError, match="1 predictions have no reference .* \\(first: 'test/z'\\)"):
        evaluate_predictions(preds, "cslr", {"dev/a": "REGEN"})


def test_missing_predictions_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"nope\.tsv: file not found"):
        evaluate_predictions(tmp_path / "nope.tsv", "slt", {"a": "b"})


def test_unknown_kind_and_dataset_are_errors(tmp_path):
    with pytest.raises(VisionZooError, match="unknown predictions kind 'asr'"):
        evaluate_predictions(tmp_path / "p.tsv", "asr", {})
    with pytest.raises(VisionZooError, match="unknown dataset 'phoenix'"):
        evaluate_predictions(tmp_path / "p.tsv", "cslr", {}, dataset="phoenix")


def test_writers_refuse_fields_that_would_break_the_format(tmp_path):
    with pytest.raises(VisionZooError, match="holds a tab or newline"):
        write_text_predictions(tmp_path / "p.tsv", {"a": "REGEN\nWIND"})


def test_cli_prints_and_writes_the_metrics(tmp_path, capsys):
    preds = write_text_predictions(tmp_path / "hyp.tsv", GLOSS_HYPS)
    refs = write_text_predictions(tmp_path / "ref.tsv", GLOSS_REFS)
    parser = add_eval_predictions_args(argparse.ArgumentParser())
    args = parser.parse_args([str(preds), "--kind", "cslr", "--references", str(refs), "--dataset", "phoenix2014",
                              "--out", str(tmp_path / "m.json")])
    metrics = run_eval_predictions(args)
    assert json.loads((tmp_path / "m.json").read_text()) == metrics
    assert metrics == evaluate_predictions(preds, "cslr", refs, dataset="phoenix2014")
    assert "wer" in capsys.readouterr().out


def test_cli_parses_ks(tmp_path):
    args = add_eval_predictions_args(argparse.ArgumentParser()).parse_args(
        ["p.tsv", "--kind", "islr", "--references", "r.tsv", "--ks", "1,5,10"])
    assert args.ks == [1, 5, 10]
