"""Text tokenizers of the translation network: the target side of Gloss2Text and Sign2Text.

Two kinds behind one small interface (``encode`` / ``decode`` / ``pad_id`` / ``eos_id`` /
``decoder_start_id`` / ``vocab_size``):

- :class:`VocabTokenizer`: a word-level (Phoenix-2014T German, pre-tokenised) or character-level
  (CSL-Daily Chinese) vocabulary built from the training text with ``visionzoo.data.sign.build_text_vocab``.
  Used with a randomly initialised mBART (CPU recipes). Unknown target words of dev/test map to ``<unk>``
  (they only affect the dev loss; BLEU is computed against the raw reference strings).
- :class:`MBartTextTokenizer`: the mBART-cc25 sentencepiece tokenizer loaded from a local folder, with the
  spec's vocabulary pruning: only the token ids that occur in the training text (plus the specials and the
  target language code) are kept, and ids are remapped old -> new (the official ``map_ids.pkl``).

Targets are ``tokens + </s>``; the decoder starts from ``<s>`` (vocabulary) or the target language code
(mBART's convention, e.g. ``de_DE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal, Sequence

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.data.sign.vocab import Vocabulary, text_tokens


class VocabTokenizer:
    """Word- or character-level tokenizer over a ``text`` :class:`Vocabulary`."""

    kind = "vocab"

    def __init__(self, vocab: Vocabulary, level: Literal["word", "char"] = "word"):
        if vocab.kind != "text":
            raise ConfigError(f"VocabTokenizer: expected a text vocabulary, got kind {vocab.kind!r}")
        if level not in ("word", "char"):
            raise ConfigError(f"VocabTokenizer level: expected 'word' or 'char', got {level!r}")
        self.vocab, self.level = vocab, level

    @classmethod
    def build(cls, texts: Iterable[str], level: Literal["word", "char"] = "word") -> VocabTokenizer:
        """A tokenizer whose vocabulary holds every token of ``texts`` (the training split)."""
        vocab = Vocabulary.build((text_tokens(t, level) for t in texts), kind="text", unk="map")
        return cls(vocab, level)

    @property
    def pad_id(self) -> int:
        return self.vocab.pad_id

    @property
    def eos_id(self) -> int:
        return self.vocab.eos_id

    @property
    def decoder_start_id(self) -> int:
        return self.vocab.bos_id

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, where: str | None = None) -> list[int]:
        """Target ids of ``text``: its tokens then ``</s>``."""
        return self.vocab.encode(text_tokens(text, self.level), where=where, unk="map") + [self.eos_id]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids (stops at ``</s>``, drops ``<s>``/``<pad>``)."""
        return ("" if self.level == "char" else " ").join(self.vocab.decode(ids))

    def to_config(self) -> dict:
        return {"kind": self.kind, "level": self.level, "tokens": list(self.vocab.tokens)}


class MBartTextTokenizer:
    """mBART's tokenizer (local folder) with ids remapped to a pruned vocabulary ``kept_ids`` (old ids)."""

    kind = "mbart"

    def __init__(self, hf_tokenizer, tgt_lang: str, kept_ids: Sequence[int] | None = None, directory: str = ""):
        self.hf, self.tgt_lang, self.directory = hf_tokenizer, tgt_lang, directory
        lang_id = hf_tokenizer.convert_tokens_to_ids(tgt_lang)
        if lang_id is None or lang_id == hf_tokenizer.unk_token_id:
            raise ConfigError(f"{directory or 'mBART tokenizer'}: target language code {tgt_lang!r} is not a "
                              f"token of this tokenizer; expected an mBART language code such as de_DE or zh_CN")
        full = len(hf_tokenizer)
        self.kept_ids = list(range(full)) if kept_ids is None else [int(i) for i in kept_ids]
        self.old_to_new = {old: new for new, old in enumerate(self.kept_ids)}
        self._old_lang, self._old_eos, self._old_pad = lang_id, hf_tokenizer.eos_token_id, hf_tokenizer.pad_token_id
        self._old_unk = hf_tokenizer.unk_token_id
        for name, old in (("eos", self._old_eos), ("pad", self._old_pad), ("unk", self._old_unk), (tgt_lang, lang_id)):
            if old not in self.old_to_new:
                raise ConfigError(f"MBartTextTokenizer: the kept ids lack the {name} token (id {old})")

    @staticmethod
    def load_hf(directory: str | Path):
        """The tokenizer saved in ``directory``, read from disk only (no download is ever attempted)."""
        from transformers import AutoTokenizer

        path = Path(directory)
        if not path.is_dir():
            raise CheckpointError(f"{path}: mBART folder not found; expected a local copy of mbart-large-cc25 "
                                  f"(config.json, model weights and the tokenizer files)")
        try:
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path}: cannot load the mBART tokenizer from disk ({str(e).splitlines()[0]})") from None

    def raw_ids(self, text: str) -> list[int]:
        """mBART ids (unpruned) of ``text`` without specials."""
        return list(self.hf(text, add_special_tokens=False)["input_ids"])

    @staticmethod
    def ids_to_keep(hf_tokenizer, texts: Iterable[str], tgt_lang: str) -> list[int]:
        """Pruned vocabulary: every id used by ``texts``, the specials and the target language code, sorted."""
        keep = {hf_tokenizer.bos_token_id, hf_tokenizer.pad_token_id, hf_tokenizer.eos_token_id,
                hf_tokenizer.unk_token_id, hf_tokenizer.convert_tokens_to_ids(tgt_lang)}
        for t in texts:
            keep.update(hf_tokenizer(t, add_special_tokens=False)["input_ids"])
        return sorted(i for i in keep if i is not None)

    @property
    def pad_id(self) -> int:
        return self.old_to_new[self._old_pad]

    @property
    def eos_id(self) -> int:
        return self.old_to_new[self._old_eos]

    @property
    def decoder_start_id(self) -> int:
        return self.old_to_new[self._old_lang]

    @property
    def vocab_size(self) -> int:
        return len(self.kept_ids)

    def encode(self, text: str, where: str | None = None) -> list[int]:
        unk = self.old_to_new[self._old_unk]
        return [self.old_to_new.get(i, unk) for i in self.raw_ids(text)] + [self.eos_id]

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            out.append(self.kept_ids[i])
        return self.hf.decode(out, skip_special_tokens=True).strip()

    def to_config(self) -> dict:
        return {"kind": self.kind, "directory": self.directory, "tgt_lang": self.tgt_lang, "kept_ids": self.kept_ids}


def tokenizer_from_config(cfg: dict):
    """Rebuild a tokenizer from its ``to_config()`` (stored in the model's config.json)."""
    if cfg.get("kind") == "vocab":
        return VocabTokenizer(Vocabulary(list(cfg["tokens"]), kind="text", unk="map"), cfg.get("level", "word"))
    if cfg.get("kind") == "mbart":
        hf = MBartTextTokenizer.load_hf(cfg["directory"])
        return MBartTextTokenizer(hf, cfg["tgt_lang"], cfg.get("kept_ids"), directory=cfg["directory"])
    raise ConfigError(f"text tokenizer config: expected kind 'vocab' or 'mbart', got {cfg.get('kind')!r}")
