"""Gloss and text vocabularies: specials, order, encode/decode, unknown tokens, JSON round trip."""

from __future__ import annotations

import json

import pytest

from visionzoo.core.errors import ConfigError, DataError
from visionzoo.data.sign import SignSample, Vocabulary, build_gloss_vocab, build_text_vocab, text_tokens

GLOSSES = [["REGEN", "MORGEN"], ["SONNE", "REGEN"], ["WIND", "REGEN", "SONNE"]]


def test_gloss_vocab_puts_ctc_specials_first_then_tokens_by_frequency():
    v = Vocabulary.build(GLOSSES, kind="gloss")
    assert v.tokens == ["<blank>", "<pad>", "<unk>", "REGEN", "SONNE", "MORGEN", "WIND"]
    assert (v.blank_id, v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2, None, None)


def test_text_vocab_has_sentence_markers_and_no_blank():
    v = Vocabulary.build([["es", "regnet"]], kind="text")
    assert v.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert (v.blank_id, v.pad_id, v.unk_id, v.bos_id, v.eos_id) == (None, 0, 1, 2, 3)


def test_alphabetical_order_min_freq_and_max_size():
    assert Vocabulary.build(GLOSSES, order="alphabetical").tokens[3:] == ["MORGEN", "REGEN", "SONNE", "WIND"]
    assert Vocabulary.build(GLOSSES, min_freq=2).tokens[3:] == ["REGEN", "SONNE"]
    assert Vocabulary.build(GLOSSES, max_size=1).tokens[3:] == ["REGEN"]


def test_build_refuses_a_plain_string_sequence():
    with pytest.raises(ConfigError, match="split it first"):
        Vocabulary.build(["REGEN MORGEN"])


def test_encode_decode_round_trip():
    v = Vocabulary.build(GLOSSES)
    ids = v.encode(["WIND", "REGEN", "SONNE"])
    assert ids == [6, 3, 4]
    assert v.decode(ids) == ["WIND", "REGEN", "SONNE"]


def test_decode_drops_blank_and_pad_and_stops_at_end_of_sentence():
    g = Vocabulary.build(GLOSSES)
    assert g.decode([0, 3, 1, 0, 4]) == ["REGEN", "SONNE"]
    assert g.decode([0, 3], strip_special=False) == ["<blank>", "REGEN"]
    t = Vocabulary.build([["es", "regnet"]], kind="text")
    assert t.decode(t.encode(["es", "regnet"], add_bos_eos=True) + [t.stoi["es"]]) == ["es", "regnet"]


def test_unknown_gloss_names_the_sample_by_default():
    v = Vocabulary.build(GLOSSES)
    s = SignSample(name="vid-7", dataset="phoenix2014t", split="dev", gloss=["HAGEL"], origin="dev.csv", origin_line=4)
    with pytest.raises(DataError) as err:
        v.encode(s.gloss, where=s.where)
    msg = str(err.value)
    assert msg.startswith("dev.csv:4 (vid-7): gloss 'HAGEL' is not in the gloss vocabulary") and "\n" not in msg


def test_unknown_gloss_maps_to_unk_when_that_policy_is_chosen():
    assert Vocabulary.build(GLOSSES, unk="map").encode(["HAGEL", "REGEN"]) == [2, 3]
    assert Vocabulary.build(GLOSSES).encode(["HAGEL"], unk="map") == [2]


def test_save_load_round_trip_keeps_tokens_kind_and_unk_policy(tmp_path):
    v = Vocabulary.build([["我", "想"], ["你好"]], kind="text", unk="map")
    path = v.save(tmp_path / "sub" / "text_vocab.json")
    loaded = Vocabulary.load(path)
    assert (loaded.tokens, loaded.kind, loaded.unk) == (v.tokens, "text", "map")
    assert "我" in path.read_text(encoding="utf-8")  # readable JSON, not \u escapes
    assert not list(path.parent.glob(".*.tmp"))


def test_load_rejects_a_file_that_is_not_a_vocabulary(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"format": "visionzoo.sign.vocabulary", "version": 1, "kind": "gloss",
                                "tokens": ["<pad>", "<blank>", "<unk>", "A"]}))
    with pytest.raises(DataError, match=r"v\.json: Vocabulary\.tokens: a gloss vocabulary starts with"):
        Vocabulary.load(path)
    path.write_text('{"format": "visionzoo.sign.vocabulary",\n "tokens": [1, }')
    with pytest.raises(DataError, match=r"v\.json:2: not valid JSON"):
        Vocabulary.load(path)


def test_duplicate_tokens_are_refused():
    with pytest.raises(ConfigError, match="'A' appears twice"):
        Vocabulary(["<blank>", "<pad>", "<unk>", "A", "A"])


def test_text_tokens_split_words_or_characters():
    assert text_tokens("es regnet .") == ["es", "regnet", "."]
    assert text_tokens("我想 喝水。", level="char") == ["我", "想", "喝", "水", "。"]


def test_vocab_builders_read_sample_glosses_and_text():
    samples = [SignSample("a", "csl-daily", "train", gloss=["我", "想"], text="我想"),
               SignSample("b", "csl-daily", "train", gloss=["想"], text="想")]
    assert build_gloss_vocab(samples).tokens[3:] == ["想", "我"]
    assert build_text_vocab(samples, level="char").tokens[4:] == ["想", "我"]
