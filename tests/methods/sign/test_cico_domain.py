"""CiCo's sign features: per-video files validated on read, fusion, pseudo-labelling rules, I3D extraction,
fine-tuning on pseudo-labelled clips, and an end-to-end train -> eval -> predict on feature files."""

import json

import pytest
import torch

from visionzoo.core.errors import DataError
from visionzoo.methods.sign.cico.data import (
    feature_path, fuse_features, read_feature_file, read_retrieval_split, write_feature_file,
)
from visionzoo.methods.sign.cico.domain import (
    ClassifierTrainConfig, LabelledClip, TinySignEncoder, WindowConfig, pseudo_label_windows,
    train_window_classifier, window_outputs,
)


def test_feature_files_round_trip_and_bad_files_fail_with_the_file_named(tmp_path):
    x = torch.randn(7, 5)
    path = write_feature_file(feature_path(tmp_path, "train", "clip1"), x)
    torch.testing.assert_close(read_feature_file(path, 5), x)
    with pytest.raises(DataError, match="clip1.safetensors.*expected 4"):
        read_feature_file(path, 4)
    with pytest.raises(DataError, match="not found"):
        read_feature_file(tmp_path / "train" / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match="bad.safetensors.*not a readable"):
        read_feature_file(tmp_path / "bad.safetensors")
    nan = write_feature_file(tmp_path / "nan.safetensors", torch.full((2, 5), float("nan")))
    with pytest.raises(DataError, match="NaN"):
        read_feature_file(nan)


def test_fusion_weights_the_agnostic_features_by_alpha():
    agnostic, aware = torch.ones(3, 2), torch.zeros(3, 2)
    torch.testing.assert_close(fuse_features(agnostic, aware, 0.8), torch.full((3, 2), 0.8))
    assert fuse_features(agnostic, None, 0.8) is agnostic
    with pytest.raises(DataError, match="differ"):
        fuse_features(agnostic, torch.zeros(4, 2), 0.8)


def _probs(n, k, hits):
    """(n, k) probabilities: uniform, except windows in ``hits`` {window: (class, confidence)}."""
    p = torch.full((n, k), 1.0 / k)
    for w, (c, conf) in hits.items():
        p[w] = (1 - conf) / (k - 1)
        p[w, c] = conf
    return p


def test_pseudo_labels_need_confidence_above_threshold():
    probs = _probs(50, 4, {5: (1, 0.6), 30: (2, 0.61)})
    labels = pseudo_label_windows(probs, stride=1)
    assert [(p.start, p.label) for p in labels] == [(30, 2)]


def test_pseudo_labels_merge_within_3_frames_and_suppress_within_24_per_class():
    # class 1 at windows 10 (best), 12 (merged), 20 (suppressed), 40 (kept: 30 frames away)
    probs = _probs(60, 4, {10: (1, 0.9), 12: (1, 0.9), 20: (1, 0.7), 40: (1, 0.8), 21: (3, 0.95)})
    labels = pseudo_label_windows(probs, stride=1)
    assert [(p.start, p.label) for p in labels] == [(11, 1), (21, 3), (40, 1)]  # other classes are not suppressed
    # with stride 2 the same windows start at twice the frame: 20 and 24 merge? no: 4 frames apart > 3
    labels2 = pseudo_label_windows(_probs(30, 4, {10: (1, 0.9), 12: (1, 0.8)}), stride=2)
    assert [(p.start, p.label) for p in labels2] == [(20, 1)]  # 24 is suppressed (within 24), not merged


def test_inception_i3d_extracts_one_1024_d_feature_per_window():
    from visionzoo.nn.i3d import InceptionI3d

    torch.manual_seed(0)
    i3d = InceptionI3d(num_classes=5).eval()
    video = torch.rand(3, 9, 32, 32) * 2 - 1
    feats, probs = window_outputs(i3d, video, WindowConfig(window=8, stride=1, batch_size=2), with_probs=True)
    assert feats.shape == (2, 1024) and probs.shape == (2, 5)
    torch.testing.assert_close(probs.sum(1), torch.ones(2))
    with torch.no_grad():  # the window's probabilities are the I3D's own prediction for that window
        torch.testing.assert_close(i3d(video[None, :, 1:9]).softmax(-1), probs[1:2], atol=1e-5, rtol=1e-4)


def test_fine_tuning_on_pseudo_labelled_clips_fits_them():
    torch.manual_seed(0)
    # two "signs": bright blob left vs right, 6-frame clips
    def clip(side):
        v = torch.full((3, 8, 16, 16), -1.0)
        v[:, :, 4:12, (0 if side == 0 else 8):(8 if side == 0 else 16)] = 1.0
        return v + 0.1 * torch.randn_like(v)

    clips = [LabelledClip(clip(i % 2), 0, i % 2) for i in range(8)]
    encoder = TinySignEncoder(width=4, feature_dim=8, num_classes=2, dropout=0.0)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    tuned = train_window_classifier(encoder, clips, 6, ClassifierTrainConfig(epochs=15, batch_size=4))
    with torch.no_grad():
        pred = tuned(torch.stack([c.video[:, :6] for c in clips])).argmax(1)
    assert pred.tolist() == [c.label for c in clips]
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in before.items())  # a copy was trained


@pytest.fixture(scope="module")
def feature_corpus(tmp_path_factory):
    """A How2Sign-layout annotation set (no videos needed) with random per-video features that carry the
    sentence: clip features = the sentence's code + noise, so retrieval is learnable."""
    root = tmp_path_factory.mktemp("h2s")
    g = torch.Generator().manual_seed(0)
    words = ["rain", "snow", "sun", "wind", "fog", "hail", "north", "south", "today", "tomorrow"]
    codes = {w: torch.randn(8, generator=g) for w in words}
    header = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE\n"
    for split, n in (("train", 24), ("val", 6), ("test", 6)):
        rows = []
        for i in range(n):
            sent = [words[(i * 3 + k * (7 if split == 'train' else 5)) % 10] for k in range(3)]
            for signer in range(2 if i % 2 else 1):
                name = f"{split}{i}-{signer}"
                rows.append(f"V{i}\tV{i}-x\tS{i}\t{name}\t0.0\t1.0\t{' '.join(sent)}\n")
                feats = torch.stack([codes[w] + 0.3 * torch.randn(8, generator=g) for w in sent for _ in range(3)])
                write_feature_file(feature_path(root / "agnostic", split, name), feats)
                write_feature_file(feature_path(root / "aware", split, name), feats + 0.1 * torch.randn(feats.shape, generator=g))
        (root / f"how2sign_realigned_{split}.csv").write_text(header + "".join(rows))
    return root


def test_several_clips_of_one_sentence_share_its_text_row(feature_corpus):
    items, sentences = read_retrieval_split("how2sign", feature_corpus, "test")
    assert len(items) == 9 and len(sentences) == 6
    assert [it.sentence for it in items[:3]] == [0, 1, 1]


@pytest.mark.slow
def test_train_eval_predict_end_to_end_on_feature_files(feature_corpus, tmp_path):
    from visionzoo.cli import main as cli
    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.trainer import fit

    overrides = [f"data.root={feature_corpus}", f"data.features={feature_corpus / 'agnostic'}",
                 f"data.aware_features={feature_corpus / 'aware'}", "model.feature_dim=8", "model.video_width=32",
                 "model.video_layers=1", "model.text_width=32", "model.text_layers=1", "model.embed_dim=16",
                 "train.max_epochs=16", "train.batch_size=8", "train.val_every_n_epochs=4", "train.progress=false",
                 "train.logger=none", "optim.lr=0.003"]
    spec, cfg, _ = load_recipe("cico/tiny", overrides)
    result = fit(spec, cfg, tmp_path / "run")
    m = result.metrics
    assert {"dev_t2v_r1", "dev_v2t_r1", "t2v_r1", "v2t_r1", "t2v_medr", "v2t_medr"} <= set(m)
    assert m["dev_t2v_r1"] + m["dev_v2t_r1"] >= 2 * 100 / 6  # above chance on the split that selected it
    eval_json = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert eval_json["t2v_r1"] == m["t2v_r1"]
    # predict: rank the test clips for one sentence, and sentences for one clip
    import io
    from contextlib import redirect_stdout

    _, sentences = read_retrieval_split("how2sign", feature_corpus, "test")
    buf = io.StringIO()
    with redirect_stdout(buf):
        cli(["predict", "cico", "--model", str(tmp_path / "run"), "--query", sentences[1],
             "--videos", str(feature_corpus / "agnostic" / "test"), "--top", "3"])
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()[:1].isdigit()]
    assert len(lines) == 3 and all(".safetensors" in ln for ln in lines)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(sentences) + "\n")
    buf = io.StringIO()
    with redirect_stdout(buf):
        cli(["predict", "cico", "--model", str(tmp_path / "run"), "--video",
             str(feature_path(feature_corpus / "agnostic", "test", "test1-0")), "--texts", str(texts)])
    ranked = [ln for ln in buf.getvalue().splitlines() if ln.strip()[:1].isdigit()]
    assert len(ranked) == 6 and {ln.split(None, 2)[2] for ln in ranked} == set(sentences)


def test_extraction_writes_one_validated_file_per_video_and_resumes(tmp_path):
    from visionzoo.data.sign.sample import SignSample
    from visionzoo.data.video import write_video
    from visionzoo.methods.sign.cico.domain import extract_features_to_dir

    frames = (torch.rand(12, 16, 16, 3) * 255).to(torch.uint8).numpy()
    write_video(tmp_path / "clip.mp4", frames, fps=25)
    sample = SignSample(name="clip", dataset="how2sign", split="test", media=tmp_path / "clip.mp4", media_kind="video")
    encoder = TinySignEncoder(width=4, feature_dim=8, num_classes=3).eval()
    cfg = WindowConfig(window=8, stride=2, resize=0, crop=0)
    assert extract_features_to_dir(encoder, [sample], tmp_path / "feats", "test", cfg) == 1
    feats = read_feature_file(feature_path(tmp_path / "feats", "test", "clip"), 8)
    assert feats.shape == (3, 8)  # windows start at frames 0, 2, 4
    assert extract_features_to_dir(encoder, [sample], tmp_path / "feats", "test", cfg) == 0  # valid file kept
    missing = SignSample(name="gone", dataset="how2sign", split="test", media=tmp_path / "gone.mp4", media_kind="video")
    with pytest.raises(DataError, match="gone"):
        extract_features_to_dir(encoder, [missing], tmp_path / "feats", "test", cfg)
