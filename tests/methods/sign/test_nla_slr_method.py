"""NLA-SLR end to end on SynthSign (WLASL layout): recipes, train + eval, predict on an mp4, MiniLM glosses."""

import json
import pickle

import numpy as np
import pytest
import torch

from visionzoo.core.errors import DataError
from visionzoo.core.registry import get_method, load_recipe


def test_method_is_registered_with_its_recipes():
    spec = get_method("nla-slr")
    assert {"tiny", "paper", "paper_msasl1000", "paper_nmfs_csl", "proxy_keypoint"} <= set(spec.recipes())
    _, paper, _ = load_recipe("nla-slr/paper")
    assert (paper.data.dataset, paper.data.subset, paper.objective.smoothing) == ("wlasl", 2000, "language")
    assert paper.objective.epsilon == 0.2 and paper.objective.tau == 0.5 and paper.data.video_mixup_p == 0.75
    assert paper.optim.name == "adam" and paper.optim.betas == (0.9, 0.998) and paper.eval.crops == "3x_pad"
    _, msasl, _ = load_recipe("nla-slr/paper_msasl1000")
    assert (msasl.data.dataset, msasl.data.subset) == ("msasl", 1000)
    _, nmfs, _ = load_recipe("nla-slr/paper_nmfs_csl")
    assert nmfs.objective.smoothing == "uniform" and nmfs.objective.imm is False


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Four-stream tiny recipe, one epoch on a 4-gloss SynthSign corpus with a given word-vector file."""
    from visionzoo.data.synth.synthsign import write_synthsign
    from visionzoo.engine.trainer import fit

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("synth") / "wlasl"
    write_synthsign(root, format="wlasl", vocab_size=4, clips_per_sign=4, resolution=64)
    glosses = [g["gloss"] for g in json.loads((root / "WLASL_v0.3.json").read_text())]
    vectors = root / "vectors.pkl"
    rng = np.random.default_rng(0)
    vectors.write_bytes(pickle.dumps({g: rng.normal(size=8).astype(np.float32) for g in glosses}))
    spec, cfg, _ = load_recipe("nla-slr/tiny", [f"data.root={root}", f"data.word_embeddings={vectors}",
                                                "train.max_epochs=1", "train.batch_size=4", "train.progress=false",
                                                "train.logger=none", "model.width=0.125"])
    run = tmp_path_factory.mktemp("run")
    return root, run, fit(spec, cfg, run, recipe_name="tiny")


@pytest.mark.slow
def test_training_writes_eval_json_with_per_instance_and_per_class_topk(tiny_run):
    _, run, result = tiny_run
    for name in ("config.yaml", "eval.json", "model/config.json", "model/model.safetensors", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "eval.json").read_text())
    for key in ("per_instance_top1", "per_class_top1", "per_instance_top5", "per_class_top5", "all_per_instance_top1",
                "head_joint_all_top1", "mass_similar_pair", "mass_semantic_top3"):
        assert 0.0 <= metrics[key] <= 100.0, key
    assert metrics["per_instance_top5"] == 100.0  # 4 classes: every label is in the top 5


@pytest.mark.slow
def test_predict_prints_the_top_glosses_of_an_mp4(tiny_run, tmp_path, capsys):
    from visionzoo.cli import main
    from visionzoo.data.video import read_video, write_video
    from visionzoo.methods.sign.nla_slr.predict import classify_video, load_model

    root, run, _ = tiny_run
    frames = read_video(sorted((root / "videos").glob("*.mp4"))[0])
    video = write_video(tmp_path / "sign.mp4", frames)
    ranked = classify_video(load_model(run), video, top=5)
    assert len(ranked) == 4  # only 4 classes exist
    assert abs(sum(p for _, p in ranked) - 1.0) < 1e-4
    assert main(["predict", "nla-slr", str(video), "--model", str(run), "--crops", "central"]) == 0
    out = capsys.readouterr().out
    assert ranked[0][0] in out and "probability" in out


def test_unknown_test_gloss_and_missing_word_vector_fail_loudly(tmp_path):
    from visionzoo.methods.sign.nla_slr.data import PrepareClip, load_word_embeddings

    prepare = PrepareClip({"rain": 0}, 64, True)
    item = {"name": "007", "index": 0, "gloss": ["snow"], "frames": torch.zeros(2, 64, 64, 3, dtype=torch.uint8),
            "keypoints": torch.zeros(2, 133, 3)}
    with pytest.raises(DataError, match="'snow' is not among the 1 train classes"):
        prepare(item)
    (tmp_path / "v.pkl").write_bytes(pickle.dumps({"rain": np.ones(3)}))
    with pytest.raises(DataError, match="no vector for gloss 'snow'"):
        load_word_embeddings(tmp_path / "v.pkl", ["rain", "snow"])


@pytest.mark.slow
def test_minilm_gloss_embeddings_are_cached_and_relate_similar_glosses(tmp_path):
    from visionzoo.methods.sign.nla_slr.data import load_word_embeddings, minilm_embeddings
    from visionzoo.methods.sign.nla_slr.loss import gloss_similarity

    names = ["warm", "hot", "monday", "tuesday", "village"]
    emb = minilm_embeddings(names, tmp_path / "cache.pkl")
    assert emb.shape == (5, 384)
    sim = gloss_similarity(emb)
    assert sim[0, 1] > sim[0, 3] and sim[2, 3] > sim[2, 4]
    assert torch.allclose(load_word_embeddings(tmp_path / "cache.pkl", names), emb)  # the official pickle layout


def test_mass_metrics_measure_probability_on_the_label_its_partner_and_its_semantic_neighbours(tmp_path):
    from visionzoo.methods.sign.nla_slr.task import mass_metrics, similar_pairs_of

    (tmp_path / "synthsign_meta.json").write_text(json.dumps({"similar_pairs": [["WARM", "HOT"]]}))
    partners = similar_pairs_of(tmp_path, ["cold", "hot", "warm", "wind", "rain"])
    assert partners == {2: 1, 1: 2}
    sim = torch.eye(5)
    sim[2, [1, 0, 3]] = torch.tensor([0.9, 0.5, 0.4])  # warm's 3 nearest glosses: hot, cold, wind
    probs = torch.tensor([[0.1, 0.3, 0.4, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2]])
    out = mass_metrics(probs, torch.tensor([2, 4]), sim, partners)
    assert out["mass_true"] == pytest.approx(100 * (0.4 + 0.2) / 2)
    assert out["mass_similar_pair"] == pytest.approx(30.0)  # only the "warm" clip has a partner
    assert out["pair_top1"] == 100.0
    assert out["mass_semantic_top3"] == pytest.approx(100 * (0.5 + 0.6) / 2)  # rain's neighbours: 3 of the rest
