"""CiCo CLCL: fine-grained similarity, masks, losses, the paper model's size, dev-split model selection."""

import math

import pytest
import torch
import torch.nn.functional as F

from visionzoo.core.registry import load_recipe
from visionzoo.engine.task import StepContext
from visionzoo.methods.sign.cico.data import random_swap, subsample_clips, tokenize_sentences
from visionzoo.methods.sign.cico.model import (
    CiCo, CiCoConfig, CiCoTask, balanced_infonce, fine_grained_similarity, global_similarity,
)
from visionzoo.nn.tokenizer import EOT_ID, SOT_ID

TINY = dict(feature_dim=12, video_width=16, video_layers=1, video_heads=2, max_clips=8, embed_dim=8,
            context_length=12, text_width=16, text_heads=2, text_layers=1)


def _unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_fine_grained_similarity_matches_an_explicit_loop_with_masks():
    clips, words = _unit(3, 5, 4, seed=1), _unit(2, 6, 4, seed=2)
    clip_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    word_mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    i2t, t2i = fine_grained_similarity(clips, clip_mask, words, word_mask, temperature=0.07)
    for v in range(3):
        for t in range(2):
            c = clips[v][clip_mask[v]] @ words[t][word_mask[t]].t()  # (A', S')
            s2w = ((c / 0.07).softmax(1) * c).sum(1).mean()
            w2s = ((c / 0.07).softmax(0) * c).sum(0).mean()
            torch.testing.assert_close(i2t[v, t], s2w)
            torch.testing.assert_close(t2i[v, t], w2s)


def test_small_temperature_turns_the_soft_maximum_into_the_maximum():
    clips, words = _unit(1, 4, 8, seed=3), _unit(1, 5, 8, seed=4)
    ones_c, ones_w = torch.ones(1, 4, dtype=torch.bool), torch.ones(1, 5, dtype=torch.bool)
    i2t, t2i = fine_grained_similarity(clips, ones_c, words, ones_w, temperature=1e-4)
    c = clips[0] @ words[0].t()
    torch.testing.assert_close(i2t[0, 0], c.max(1).values.mean())
    torch.testing.assert_close(t2i[0, 0], c.max(0).values.mean())


def test_global_similarity_is_the_cosine_of_mean_pooled_sequences():
    clips, words = _unit(2, 3, 4, seed=5), _unit(2, 4, 4, seed=6)
    cm, wm = torch.tensor([[1, 1, 0], [1, 1, 1]]).bool(), torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]]).bool()
    sim = global_similarity(clips, cm, words, wm)
    v = F.normalize(clips[0, :2].mean(0), dim=0)
    t = F.normalize(words[0, :1].mean(0), dim=0)
    torch.testing.assert_close(sim[0, 0], v @ t)


def test_balanced_infonce_averages_row_and_column_cross_entropy():
    logits = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    target = torch.arange(4)
    expected = 0.5 * F.cross_entropy(logits, target) + 0.5 * F.cross_entropy(logits.t(), target)
    torch.testing.assert_close(balanced_infonce(logits), expected)
    assert balanced_infonce(torch.eye(4) * 50) < 1e-6


def test_padding_clips_do_not_change_the_real_clip_embeddings():
    model = CiCo(**TINY).eval()
    feats = torch.randn(1, 3, 12)
    short = model.encode_video(feats, torch.ones(1, 3, dtype=torch.bool))
    padded = torch.cat([feats, 100 * torch.randn(1, 2, 12)], 1)
    mask = torch.tensor([[1, 1, 1, 0, 0]]).bool()
    torch.testing.assert_close(model.encode_video(padded, mask)[:, :3], short, atol=1e-5, rtol=1e-5)


def test_word_mask_covers_tokens_up_to_and_including_eot():
    model = CiCo(**TINY)
    tokens = tokenize_sentences(["rain in the north", "snow"], 12)
    _, mask = model.encode_text(tokens)
    eot = (tokens == EOT_ID).nonzero()[:, 1]
    assert mask.sum(1).tolist() == (eot + 1).tolist()


def test_long_sentences_keep_sot_and_eot_and_a_linspace_subset_of_words():
    text = " ".join(f"w{i}" for i in range(40))
    tokens = tokenize_sentences([text], 12)[0]
    assert tokens[0] == SOT_ID and tokens[-1] == EOT_ID and (tokens > 0).all()
    short = tokenize_sentences(["hello there"], 12)[0]
    assert short[0] == SOT_ID and (short == EOT_ID).sum() == 1 and short[-1] == 0


def test_random_swap_permutes_words_reproducibly():
    text = "in the north there will be rain"
    a = random_swap(text, torch.Generator().manual_seed(3))
    assert sorted(a.split()) == sorted(text.split())
    assert a == random_swap(text, torch.Generator().manual_seed(3))
    assert random_swap("one", torch.Generator()) == "one"


def test_linspace_subsampling_keeps_first_and_last_windows():
    x = torch.arange(100.0)[:, None]
    y = subsample_clips(x, 64)
    assert y.shape == (64, 1) and y[0, 0] == 0 and y[-1, 0] == 99
    assert subsample_clips(x[:10], 64).shape == (10, 1)


def _task(**model):
    cfg = CiCoConfig()
    for k, v in {**TINY, **model}.items():
        setattr(cfg.model, k, v)
    return CiCoTask(cfg)


def _batch(n=4, clips=5):
    g = torch.Generator().manual_seed(0)
    texts = ["rain in the north", "sun in the south", "snow tomorrow", "wind at night"][:n]
    return {"features": torch.randn(n, clips, 12, generator=g), "clip_mask": torch.ones(n, clips, dtype=torch.bool),
            "tokens": tokenize_sentences(texts, 12), "tokens_swapped": tokenize_sentences(texts[::-1], 12),
            "sentence": torch.arange(n)}


@pytest.mark.parametrize("similarity", ["fine_grained", "global"])
def test_training_step_gives_gradients_to_both_towers_and_the_logit_scale(similarity):
    task = _task(similarity=similarity)
    out = task.training_step(_batch(), StepContext(0, 10, 0))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert task.model.video.input_conv.weight.grad is not None
    assert task.model.text.token_embedding.weight.grad is not None
    assert task.model.logit_scale.grad is not None
    assert {"loss_i2t", "loss_t2i", "logit_scale"} <= set(out.logs)


def test_logit_scale_is_clamped_at_100_after_each_step():
    task = _task()
    with torch.no_grad():
        task.model.logit_scale.fill_(10.0)
    task.on_after_optimizer_step(StepContext(1, 10, 0))
    assert math.isclose(task.model.logit_scale.exp().item(), 100.0, rel_tol=1e-5)


def test_dev_selection_keeps_the_best_weights_and_they_survive_a_checkpoint():
    task = _task()
    batch = _batch()
    task.validation_step(batch)
    first = task.validation_metrics()
    best = {k: v.clone() for k, v in task.model.state_dict().items()}
    with torch.no_grad():  # a worse model: every clip maps to the same embedding
        task.model.video.proj.zero_()
    task.validation_step(batch)
    second = task.validation_metrics()
    assert second["t2v_r1"] + second["v2t_r1"] <= first["t2v_r1"] + first["v2t_r1"]
    restored = _task()
    restored.load_state_dict(task.state_dict())  # the selected weights travel as the task's extra state
    exported = restored.export_model()
    for k, v in best.items():
        torch.testing.assert_close(exported.state_dict()[k], v)


def test_paper_model_has_clip_b32_text_and_12x768_sign_transformer_sizes():
    _, cfg, _ = load_recipe("cico/paper")
    with torch.device("meta"):
        model = CiCo(**cfg.model.model_kwargs())

    def block(w):  # qkv, out proj, 4x MLP, two LayerNorms
        return 12 * w * w + 13 * w

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # CLIP ViT-B/32 text tower: 37,828,608 in blocks + 25,296,896 token embedding + 32 positions + LN + projection
    assert count(model.text.blocks) == 12 * block(512) == 37_828_608
    assert count(model.text) == 37_828_608 + 49408 * 512 + 32 * 512 + 2 * 512 + 512 * 512
    # sign tower: 1x1 conv 1024->768, CLS, 65 positions, 12 ViT-B blocks, LN, projection 768->512
    assert count(model.video.blocks) == 12 * 7_087_872
    assert count(model.video) == (1024 * 768 + 768) + 768 + 65 * 768 + 12 * 7_087_872 + 2 * 768 + 768 * 512
    assert count(model) == count(model.text) + count(model.video) + 1
