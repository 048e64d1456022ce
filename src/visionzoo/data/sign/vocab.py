"""Gloss and text vocabularies with special tokens, saved and loaded as JSON.

Two kinds, because the two decoders need different specials:

=========  ================================  ==========================================================
kind       specials (ids 0, 1, ...)          why
=========  ================================  ==========================================================
``gloss``  ``<blank> <pad> <unk>``           CTC recognition: blank = 0 is the CTC blank (torch's
                                             ``ctc_loss(blank=0)`` default); no sentence markers
``text``   ``<pad> <unk> <s> </s>``          autoregressive translation: begin / end of sentence
=========  ================================  ==========================================================

An unknown token is an error naming the sample (``unk='error'``, the default) or maps to ``<unk>``
(``unk='map'``); the policy is stored in the JSON so a trained model keeps the behaviour it was
trained with.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

from visionzoo.core.errors import ConfigError, DataError

BLANK, PAD, UNK, BOS, EOS = "<blank>", "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = {"gloss": (BLANK, PAD, UNK), "text": (PAD, UNK, BOS, EOS)}
VOCAB_FORMAT = "visionzoo.sign.vocabulary"
VOCAB_VERSION = 1

UnkPolicy = Literal["error", "map"]


@dataclass
class Vocabulary:
    """token <-> id; ``tokens[:len(specials)]`` are the specials of ``kind``."""

    tokens: list[str]
    kind: Literal["gloss", "text"] = "gloss"
    unk: UnkPolicy = "error"
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in SPECIALS:
            raise ConfigError(f"Vocabulary.kind: expected 'gloss' or 'text', got {self.kind!r}")
        if self.unk not in ("error", "map"):
            raise ConfigError(f"Vocabulary.unk: expected 'error' or 'map', got {self.unk!r}")
        specials = SPECIALS[self.kind]
        if tuple(self.tokens[: len(specials)]) != specials:
            raise ConfigError(f"Vocabulary.tokens: a {self.kind} vocabulary starts with {list(specials)}, "
                              f"got {self.tokens[: len(specials)]}")
        self.stoi = {}
        for i, tok in enumerate(self.tokens):
            if tok in self.stoi:
                raise ConfigError(f"Vocabulary.tokens: {tok!r} appears twice (ids {self.stoi[tok]} and {i})")
            self.stoi[tok] = i

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        sequences: Iterable[Sequence[str]],
        kind: Literal["gloss", "text"] = "gloss",
        min_freq: int = 1,
        max_size: int | None = None,
        order: Literal["frequency", "alphabetical"] = "frequency",
        unk: UnkPolicy = "error",
    ) -> Vocabulary:
        """Specials, then every token seen ``>= min_freq`` times.

        ``order='frequency'``: most frequent first, ties alphabetical (deterministic across runs);
        ``'alphabetical'``: NLA-SLR's class order (position in the sorted set of train glosses).
        ``max_size`` caps the non-special tokens.
        """
        if order not in ("frequency", "alphabetical"):
            raise ConfigError(f"Vocabulary.build order: expected 'frequency' or 'alphabetical', got {order!r}")
        if kind not in SPECIALS:
            raise ConfigError(f"Vocabulary.kind: expected 'gloss' or 'text', got {kind!r}")
        if isinstance(sequences, (str, bytes)):
            raise ConfigError("Vocabulary.build: expected an iterable of token sequences, got one string")
        counts = Counter()
        for seq in sequences:
            if isinstance(seq, str):
                raise ConfigError(f"Vocabulary.build: expected token lists, got the string {seq[:30]!r}; split it first")
            counts.update(seq)
        specials = SPECIALS[kind]
        kept = [t for t, c in counts.items() if c >= min_freq and t not in specials]
        if order == "frequency":
            kept.sort(key=lambda t: (-counts[t], t))
        else:
            kept.sort()
        if max_size is not None:
            kept = kept[:max_size]
        return cls([*specials, *kept], kind=kind, unk=unk)

    # --- ids of the specials ---------------------------------------------------------------------

    def _special(self, tok: str) -> int | None:
        return self.stoi.get(tok) if tok in SPECIALS[self.kind] else None

    @property
    def blank_id(self) -> int | None:
        return self._special(BLANK)

    @property
    def pad_id(self) -> int:
        return self.stoi[PAD]

    @property
    def unk_id(self) -> int:
        return self.stoi[UNK]

    @property
    def bos_id(self) -> int | None:
        return self._special(BOS)

    @property
    def eos_id(self) -> int | None:
        return self._special(EOS)

    @property
    def num_specials(self) -> int:
        return len(SPECIALS[self.kind])

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    # --- encode / decode -------------------------------------------------------------------------

    def encode(
        self,
        tokens: Sequence[str],
        where: str | None = None,
        unk: UnkPolicy | None = None,
        add_bos_eos: bool = False,
    ) -> list[int]:
        """Token ids of ``tokens``. ``where`` names the sample in the error for an unknown token.

        ``add_bos_eos`` wraps the ids in ``<s> ... </s>`` (text vocabularies only).
        """
        policy = unk or self.unk
        ids = []
        for tok in tokens:
            i = self.stoi.get(tok)
            if i is None:
                if policy != "map":
                    raise DataError(where or "<input>",
                                    f"{self.kind} {tok!r} is not in the {self.kind} vocabulary ({len(self)} "
                                    f"tokens); expected a known {self.kind} or unk='map'")
                i = self.unk_id
            ids.append(i)
        if add_bos_eos:
            if self.kind != "text":
                raise ConfigError("Vocabulary.encode add_bos_eos: only text vocabularies have <s> and </s>")
            ids = [self.bos_id, *ids, self.eos_id]
        return ids

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> list[str]:
        """Tokens of ``ids``; ``strip_special`` drops blank/pad/<s> and stops at ``</s>`` (keeps <unk>)."""
        out = []
        drop = {self.blank_id, self.pad_id, self.bos_id} - {None}
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tokens):
                raise ConfigError(f"Vocabulary.decode: id {i} out of range [0, {len(self.tokens)})")
            if strip_special:
                if i == self.eos_id:
                    break
                if i in drop:
                    continue
            out.append(self.tokens[i])
        return out

    # --- files -----------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"format": VOCAB_FORMAT, "version": VOCAB_VERSION, "kind": self.kind, "unk": self.unk,
                "tokens": list(self.tokens)}

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (a crash leaves the old file, never half a vocabulary)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_dict(), f, ensure_ascii=False, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "vocabulary file not found")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(path, f"not valid JSON ({e.msg}); expected a vocabulary written by Vocabulary.save",
                            line=e.lineno) from None
        if not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT:
            raise DataError(path, f"key 'format': expected {VOCAB_FORMAT!r}; not a visionzoo vocabulary")
        if data.get("version") != VOCAB_VERSION:
            raise DataError(path, f"key 'version': expected {VOCAB_VERSION}, got {data.get('version')!r}")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError(path, "key 'tokens': expected a list of strings")
        try:
            return cls(tokens, kind=data.get("kind"), unk=data.get("unk", "error"))
        except ConfigError as e:
            raise DataError(path, str(e)) from None


def text_tokens(text: str | None, level: Literal["word", "char"] = "word") -> list[str]:
    """Tokens of a spoken-language sentence: whitespace words (P14T, How2Sign are pre-tokenised) or
    characters without spaces (CSL-Daily is scored and modelled per character)."""
    if text is None:
        return []
    if level == "word":
        return text.split()
    if level == "char":
        return [c for c in text if not c.isspace()]
    raise ConfigError(f"text_tokens level: expected 'word' or 'char', got {level!r}")


def build_gloss_vocab(samples: Iterable, **kw) -> Vocabulary:
    """A CTC gloss vocabulary from ``SignSample.gloss`` of ``samples`` (use the train split)."""
    return Vocabulary.build((s.gloss for s in samples), kind="gloss", **kw)


def build_text_vocab(samples: Iterable, level: Literal["word", "char"] = "word", **kw) -> Vocabulary:
    """A text vocabulary from ``SignSample.text`` of ``samples`` (use the train split)."""
    return Vocabulary.build((text_tokens(s.text, level) for s in samples), kind="text", **kw)
