"""TwoStream-SLT translation networks, tokenizers, feature files and the multi-source ensemble beam search."""

import json

import pytest
import torch

from visionzoo.core.errors import CheckpointError, DataError
from visionzoo.methods.sign.twostream.slt.beam import Source, ensemble_beam_search, ensemble_log_probs
from visionzoo.methods.sign.twostream.slt.features import FeatureRecord, FeatureSplit, write_feature_split
from visionzoo.methods.sign.twostream.slt.model import (Gloss2Text, Sign2Text, load_mbart_g2t, prune_mbart_state,
                                                        tiny_mbart_config)
from visionzoo.methods.sign.twostream.slt.tokenizer import VocabTokenizer

GLOSSES = ["<blank>", "<pad>", "<unk>", "RAIN", "SUN", "NORTH", "TOMORROW"]
TEXTS = ["in the north there will be rain tomorrow .", "there will be sun .", "a b c d e f g h"]


def random_g2t(seed=0, init_std=1.0, eos_bias=9.0) -> Gloss2Text:
    """A random G2T whose greedy/beam outputs vary with the source and finish at different lengths."""
    torch.manual_seed(seed)
    tok = VocabTokenizer.build(TEXTS)
    cfg = tiny_mbart_config(tok.vocab_size, tok, d_model=32, layers=1, heads=2, ffn_dim=64, dropout=0.0,
                            attention_dropout=0.0)
    cfg.update(tie_word_embeddings=False, init_std=init_std)  # tied random embeddings just echo the input
    model = Gloss2Text(cfg, GLOSSES, tok.to_config()).eval()
    with torch.no_grad():
        bias = model.translator.mbart.final_logits_bias
        bias.copy_(torch.randn_like(bias))
        bias[0, tok.eos_id] = eos_bias
        bias[0, [tok.pad_id, tok.decoder_start_id]] = -9.0
    return model


def sources(seed=1, batch=6):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, len(GLOSSES), (batch, 5), generator=g)
    lengths = torch.tensor([5, 4, 3, 5, 2, 1][:batch])
    return ids, lengths


def test_single_source_beam_search_equals_transformers_generate():
    from transformers import GenerationConfig

    model = random_g2t()
    tok = model.tokenizer
    embeds, mask = model.source(*sources(batch=4))
    ours = ensemble_beam_search([Source(model.translator, embeds, mask)], start_id=tok.decoder_start_id,
                                eos_id=tok.eos_id, beam_size=5, length_penalty=1.0, max_length=12)
    mbart = model.translator.mbart
    mbart.generation_config.forced_eos_token_id = None
    gen = GenerationConfig(num_beams=5, length_penalty=1.0, max_length=12, early_stopping=True, do_sample=False,
                           decoder_start_token_id=tok.decoder_start_id, eos_token_id=tok.eos_id,
                           pad_token_id=tok.pad_id, forced_eos_token_id=None)
    theirs = mbart.generate(inputs_embeds=embeds, attention_mask=mask, generation_config=gen).tolist()
    lengths = set()
    for hf, mine in zip(theirs, ours):
        hf = hf[1:]
        hf = hf[: hf.index(tok.eos_id)] if tok.eos_id in hf else hf
        assert mine == hf
        lengths.add(len(mine))
    assert len(lengths) > 1, "test model should finish hypotheses at different lengths"


def test_ensemble_of_identical_networks_decodes_as_the_single_network():
    model = random_g2t(seed=3)
    tok = model.tokenizer
    embeds, mask = model.source(*sources(seed=4, batch=3))
    kw = dict(start_id=tok.decoder_start_id, eos_id=tok.eos_id, beam_size=5, max_length=10)
    single = ensemble_beam_search([Source(model.translator, embeds, mask)], **kw)
    triple = ensemble_beam_search([Source(model.translator, embeds, mask)] * 3, **kw)
    assert triple == single


def test_ensemble_averages_probabilities_of_the_networks():
    a, b = torch.randn(4, 9).log_softmax(-1), torch.randn(4, 9).log_softmax(-1)
    expected = ((a.exp() + b.exp()) / 2).log()
    assert torch.allclose(ensemble_log_probs([a, b]), expected, atol=1e-6)
    assert torch.equal(ensemble_log_probs([a]), a)


def test_ensemble_of_different_networks_differs_from_each_alone():
    m1, m2 = random_g2t(seed=5), random_g2t(seed=6)
    tok = m1.tokenizer
    ids, lengths = sources(seed=7, batch=3)
    s1, s2 = Source(m1.translator, *m1.source(ids, lengths)), Source(m2.translator, *m2.source(ids, lengths))
    kw = dict(start_id=tok.decoder_start_id, eos_id=tok.eos_id, beam_size=3, max_length=10)
    both = ensemble_beam_search([s1, s2], **kw)
    assert both != ensemble_beam_search([s1], **kw) or both != ensemble_beam_search([s2], **kw)


def test_source_suffix_follows_each_sequence_and_is_scaled():
    model = random_g2t()
    tr = model.translator
    ids = torch.tensor([[3, 4, 5], [6, 1, 1]])
    embeds, mask = model.source(ids, torch.tensor([3, 1]))
    assert embeds.shape == (2, 5, 32) and mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    table = tr.gloss_embedding.weight * tr.embed_scale
    assert torch.allclose(embeds[0, 3], table[tr.src_eos_id]) and torch.allclose(embeds[0, 4], table[tr.src_lang_id])
    assert torch.allclose(embeds[1, 1], table[tr.src_eos_id]) and torch.allclose(embeds[1, 2], table[tr.src_lang_id])
    assert torch.allclose(embeds[1, 0], table[6])


def test_word_and_char_tokenizers_round_trip_and_map_unknown_words():
    word = VocabTokenizer.build(TEXTS, "word")
    ids = word.encode("there will be rain .")
    assert ids[-1] == word.eos_id and word.decode(ids) == "there will be rain ."
    assert word.encode("snow")[0] == word.vocab.unk_id
    char = VocabTokenizer.build(["明天北方下雨", "晴天"], "char")
    assert char.decode(char.encode("明天 下雨")) == "明天下雨"


def test_sign2text_step_trains_head_mapper_translator_but_not_gloss_embeddings():
    from visionzoo.methods.sign.twostream.slt.task import teacher_forcing, translation_loss
    from visionzoo.nn.ctc import ctc_loss

    tok = VocabTokenizer.build(TEXTS)
    cfg = tiny_mbart_config(tok.vocab_size, tok, d_model=32, layers=1, heads=2, ffn_dim=64)
    model = Sign2Text(12, "joint", cfg, GLOSSES, tok.to_config(), head_hidden=16, head_ff=32, mapper_hidden=24)
    feats, lengths = torch.randn(2, 9, 12), torch.tensor([9, 6])
    rec = model.recognise(feats, lengths)
    embeds, mask = model.source(feats, lengths, rec["gloss_feature"])
    assert embeds.shape == (2, 11, 32) and mask.sum(1).tolist() == [11, 8]
    dec_in, labels = teacher_forcing(tok, TEXTS[:2], "cpu")
    loss = translation_loss(model.translator(embeds, mask, dec_in), labels, tok.pad_id, 0.2)
    loss = loss + ctc_loss(rec["logits"].log_softmax(-1), [[3, 5], [4]], lengths, reduction="batchmean")
    loss.backward()
    assert torch.isfinite(loss)
    for module in (model.visual_head, model.vl_mapper, model.translator.mbart):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert model.translator.gloss_embedding.weight.grad is None


def test_sign2text_saves_and_loads_with_its_tokenizer(tmp_path):
    from visionzoo.core.hub import from_pretrained, save_pretrained
    from visionzoo.core.registry import create_model

    tok = VocabTokenizer.build(TEXTS)
    cfg = tiny_mbart_config(tok.vocab_size, tok, d_model=32, layers=1, heads=2, ffn_dim=64)
    model = create_model("twostream_slt_s2t", in_dim=12, stream="rgb", mbart_config=cfg, gloss_tokens=GLOSSES,
                         tokenizer=tok.to_config(), head_hidden=16, head_ff=32, mapper_hidden=24).eval()
    save_pretrained(model, tmp_path)
    loaded = from_pretrained(tmp_path)
    feats, lengths = torch.randn(1, 7, 12), torch.tensor([7])
    with torch.no_grad():
        a, b = model.source(feats, lengths)[0], loaded.source(feats, lengths)[0]
    assert torch.allclose(a, b)
    assert loaded.tokenizer.decode(tok.encode(TEXTS[0])) == TEXTS[0] and loaded.stream == "rgb"


def _fake_mbart_dir(path):
    """A tiny mBART + a word-level fast tokenizer with mBART's specials and language code, saved to disk."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import MBartConfig, MBartForConditionalGeneration, PreTrainedTokenizerFast

    words = ["<s>", "<pad>", "</s>", "<unk>", "rain", "sun", "there", "will", "be", ".", "in", "the", "north",
             "tomorrow", "snow", "wind", "de_DE", "zh_CN"]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                     unk_token="<unk>", additional_special_tokens=["de_DE", "zh_CN"])
    hf_tok.save_pretrained(path)
    torch.manual_seed(0)
    mbart = MBartForConditionalGeneration(MBartConfig(vocab_size=len(words), d_model=16, encoder_layers=1,
                                                      decoder_layers=1, encoder_attention_heads=2,
                                                      decoder_attention_heads=2, encoder_ffn_dim=32,
                                                      decoder_ffn_dim=32, max_position_embeddings=64))
    with torch.no_grad():
        mbart.final_logits_bias.normal_()
    mbart.save_pretrained(path)
    return mbart, hf_tok


def test_missing_mbart_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="mBART folder not found"):
        load_mbart_g2t(tmp_path / "mbart-large-cc25", GLOSSES, TEXTS, "de_DE")


def test_local_mbart_is_pruned_to_the_target_language_tokens(tmp_path):
    mbart, hf_tok = _fake_mbart_dir(tmp_path)
    mbart.eval()
    glosses = ["<blank>", "<pad>", "<unk>", "RAIN", "NORTH"]
    g2t = load_mbart_g2t(tmp_path, glosses, ["there will be rain .", "in the north"], "de_DE", dropout=0.0,
                         attention_dropout=0.0).eval()
    tok = g2t.tokenizer
    kept = tok.kept_ids
    assert hf_tok.convert_tokens_to_ids("snow") not in kept and hf_tok.convert_tokens_to_ids("de_DE") in kept
    assert g2t.translator.mbart.config.vocab_size == len(kept)
    shared = mbart.model.shared.weight
    assert torch.allclose(g2t.translator.gloss_embedding.weight[3], shared[hf_tok.convert_tokens_to_ids("rain")])
    # the pruned network's logits are the full network's logits at the kept ids
    embeds, mask = torch.randn(1, 4, 16), torch.ones(1, 4, dtype=torch.long)
    dec = torch.tensor([[tok.decoder_start_id, tok.encode("there")[0]]])
    with torch.no_grad():
        pruned = g2t.translator(embeds, mask, dec)
        full = mbart(inputs_embeds=embeds, attention_mask=mask,
                     decoder_input_ids=torch.tensor([[kept[i] for i in dec[0].tolist()]])).logits
    assert torch.allclose(pruned, full[..., kept], atol=1e-5)
    assert tok.decode(tok.encode("there will be rain .")) == "there will be rain ."


def test_prune_keeps_selected_rows_only():
    state = {"model.shared.weight": torch.arange(12.0).view(6, 2), "final_logits_bias": torch.arange(6.0)[None],
             "model.encoder.layer.weight": torch.ones(6, 2) * 7}
    out = prune_mbart_state(state, [0, 2, 5])
    assert out["model.shared.weight"].tolist() == [[0, 1], [4, 5], [10, 11]]
    assert out["final_logits_bias"].tolist() == [[0, 2, 5]]
    assert out["model.encoder.layer.weight"].shape == (6, 2)


def test_feature_folder_round_trip_and_shape_errors(tmp_path):
    recs = [FeatureRecord(f"v{i}", ["RAIN"], "there will be rain .",
                          {"rgb": torch.randn(n, 4), "keypoint": torch.randn(n, 3),
                           "joint": torch.randn(n, 7)}) for i, n in enumerate((5, 3))]
    write_feature_split(tmp_path, "train", recs, {"extractor": "test"})
    ds = FeatureSplit(tmp_path, "train", "joint")
    assert len(ds) == 2 and ds.dim == 7 and torch.equal(ds[1]["features"], recs[1].streams["joint"])
    meta = json.loads((tmp_path / "train.json").read_text())
    meta["samples"][1]["length"] = 4
    (tmp_path / "train.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"train.safetensors: sample 1 .*has shape \(3, 7\); expected \(4, 7\)"):
        FeatureSplit(tmp_path, "train", "joint")
    with pytest.raises(DataError, match="no stream 'face'"):
        FeatureSplit(tmp_path, "train", "face")
