"""TwoStream-SLT's translation networks (spec sign_language.md §1b, "SLT extension").

The idea in one screen:
- **Gloss2Text** (G2T, pretraining the language model): glosses -> frozen gloss embeddings (+ ``</s>`` and
  a sign-language tag such as ``de_DGS``) x sqrt(d_model) -> mBART encoder-decoder -> spoken text.
- **Sign2Text** (S2T, one network per recognition head ``rgb`` / ``keypoint`` / ``joint``): frozen TwoStream-SLR
  features -> a re-trained recognition head (``VisualHead``, CTC) -> its 512-d ``gloss_feature`` -> VL-mapper
  MLP (512 -> 1024 -> 1024, ReLU) -> the same suffix and scale -> mBART initialised from the G2T checkpoint.
  Loss = CTC + label-smoothed cross-entropy.
- **Multi-source ensemble** (``beam.py``): the three S2T networks decode together, averaging their token
  probabilities at every beam step.

The mBART is transformers' ``MBartForConditionalGeneration``: a tiny random config for CPU recipes, or a
local mbart-large-cc25 folder (``load_mbart_g2t``; never downloaded), optionally pruned to the tokens of
the target language (the official ``map_ids.pkl``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.core.registry import register_model
from visionzoo.data.sign.vocab import Vocabulary
from visionzoo.methods.sign.twostream.slt.tokenizer import MBartTextTokenizer, tokenizer_from_config

STREAMS = ("rgb", "keypoint", "joint")
# keys of MBartConfig we keep in config.json (the rest are transformers' defaults)
_MBART_KEYS = ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
               "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "dropout", "attention_dropout",
               "activation_dropout", "activation_function", "max_position_embeddings", "scale_embedding",
               "pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "init_std",
               "encoder_layerdrop", "decoder_layerdrop", "tie_word_embeddings")


def mbart_config_dict(config) -> dict:
    """The architecture-defining fields of an ``MBartConfig`` (what ``Translator`` is rebuilt from)."""
    return {k: getattr(config, k) for k in _MBART_KEYS if hasattr(config, k)}


def tiny_mbart_config(vocab_size: int, tokenizer, d_model: int = 64, layers: int = 2, heads: int = 4,
                      ffn_dim: int = 128, dropout: float = 0.3, attention_dropout: float = 0.1,
                      max_positions: int = 256) -> dict:
    """A small random mBART for CPU recipes, with the special ids of ``tokenizer``."""
    return {"vocab_size": vocab_size, "d_model": d_model, "encoder_layers": layers, "decoder_layers": layers,
            "encoder_attention_heads": heads, "decoder_attention_heads": heads, "encoder_ffn_dim": ffn_dim,
            "decoder_ffn_dim": ffn_dim, "dropout": dropout, "attention_dropout": attention_dropout,
            "activation_dropout": 0.0, "activation_function": "gelu", "max_position_embeddings": max_positions,
            "scale_embedding": True, "pad_token_id": tokenizer.pad_id, "bos_token_id": tokenizer.decoder_start_id,
            "eos_token_id": tokenizer.eos_id, "decoder_start_token_id": tokenizer.decoder_start_id,
            "init_std": 0.02, "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0}


def _build_mbart(config: dict):
    from transformers import MBartConfig, MBartForConditionalGeneration

    return MBartForConditionalGeneration(MBartConfig(**config))


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) -> (B, max_len) bool, True on valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class Translator(nn.Module):
    """Source embeddings (glosses or mapped visual features) -> mBART encoder-decoder -> target logits.

    ``gloss_embedding`` has one row per gloss-vocabulary entry plus two: the source ``</s>`` and the sign
    language tag, appended after every source sequence (official: ``</s> de_DGS``).
    """

    def __init__(self, mbart_config: dict, num_glosses: int, freeze_gloss_embeddings: bool = True):
        super().__init__()
        self.mbart = _build_mbart(mbart_config)
        d_model = self.mbart.config.d_model
        self.gloss_embedding = nn.Embedding(num_glosses + 2, d_model)
        nn.init.normal_(self.gloss_embedding.weight, std=self.mbart.config.init_std)
        self.gloss_embedding.weight.requires_grad_(not freeze_gloss_embeddings)
        self.src_eos_id, self.src_lang_id = num_glosses, num_glosses + 1
        self.embed_scale = math.sqrt(d_model)

    @property
    def d_model(self) -> int:
        return self.mbart.config.d_model

    def with_suffix(self, embeds: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, d) unscaled source embeddings -> (B, T+2, d) with ``</s>`` + tag after each sequence, times
        sqrt(d_model), and the (B, T+2) attention mask."""
        B, T, _ = embeds.shape
        lengths = lengths.to(embeds.device)
        valid = length_mask(lengths, T)
        out = torch.cat([embeds * valid[..., None], embeds.new_zeros(B, 2, embeds.shape[-1])], dim=1)
        suffix = self.gloss_embedding.weight[[self.src_eos_id, self.src_lang_id]].to(embeds.dtype)  # (2, d)
        rows = torch.arange(B, device=embeds.device)
        out = out.index_put((rows, lengths), suffix[0].expand(B, -1))
        out = out.index_put((rows, lengths + 1), suffix[1].expand(B, -1))
        return out * self.embed_scale, length_mask(lengths + 2, T + 2).long()

    def gloss_source(self, gloss_ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gloss2Text source: (B, L) gloss ids -> (inputs_embeds, attention_mask)."""
        return self.with_suffix(self.gloss_embedding(gloss_ids), lengths)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced target logits (B, L, V)."""
        return self.mbart(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                          decoder_input_ids=decoder_input_ids, use_cache=False).logits

    def encode(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.mbart.model.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state

    def next_token_log_probs(self, prefix: torch.Tensor, encoder_states: torch.Tensor,
                             encoder_mask: torch.Tensor) -> torch.Tensor:
        """log p(next token | prefix, source) for (N, t) prefixes -> (N, V)."""
        hidden = self.mbart.model.decoder(input_ids=prefix, encoder_hidden_states=encoder_states,
                                          encoder_attention_mask=encoder_mask, use_cache=False).last_hidden_state
        logits = self.mbart.lm_head(hidden[:, -1]) + self.mbart.final_logits_bias
        return F.log_softmax(logits.float(), dim=-1)


class _WithTokenizers(nn.Module):
    """Holds the gloss vocabulary and the text tokenizer that were saved with the model (config.json)."""

    def _init_vocabs(self, gloss_tokens: Sequence[str], tokenizer: dict) -> None:
        self.gloss_vocab = Vocabulary(list(gloss_tokens), kind="gloss", unk="map")
        self.tokenizer_config = dict(tokenizer)
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:  # an mBART tokenizer is read from disk only when text is needed
            self._tokenizer = tokenizer_from_config(self.tokenizer_config)
        return self._tokenizer


class Gloss2Text(_WithTokenizers):
    """G2T: the language model that every Sign2Text network starts from."""

    def __init__(self, mbart_config: dict, gloss_tokens: Sequence[str], tokenizer: dict,
                 freeze_gloss_embeddings: bool = True):
        super().__init__()
        self._init_vocabs(gloss_tokens, tokenizer)
        self.translator = Translator(mbart_config, len(gloss_tokens), freeze_gloss_embeddings)

    def source(self, gloss_ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.translator.gloss_source(gloss_ids, lengths)


class Sign2Text(_WithTokenizers):
    """S2T on one stream's frozen features: VisualHead (CTC) -> gloss_feature -> VL-mapper -> mBART."""

    def __init__(self, in_dim: int, stream: str, mbart_config: dict, gloss_tokens: Sequence[str], tokenizer: dict,
                 head_hidden: int = 512, head_ff: int = 2048, head_dropout: float = 0.1, mapper_hidden: int = 1024,
                 freeze_gloss_embeddings: bool = True):
        super().__init__()
        from visionzoo.methods.sign.twostream.heads import VisualHead

        if stream not in STREAMS:
            raise ConfigError(f"Sign2Text stream: expected one of {STREAMS}, got {stream!r}")
        self.stream, self.in_dim = stream, in_dim
        self._init_vocabs(gloss_tokens, tokenizer)
        self.visual_head = VisualHead(in_dim, len(gloss_tokens), hidden=head_hidden, ff=head_ff, dropout=head_dropout)
        self.translator = Translator(mbart_config, len(gloss_tokens), freeze_gloss_embeddings)
        self.vl_mapper = nn.Sequential(nn.Linear(head_hidden, mapper_hidden), nn.ReLU(),
                                       nn.Linear(mapper_hidden, self.translator.d_model))

    def recognise(self, features: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """features (B, T, in_dim) -> dict(logits (B, T, V_gloss), gloss_feature (B, T, hidden))."""
        return self.visual_head(features, lengths)

    def source(self, features: torch.Tensor, lengths: torch.Tensor,
               gloss_feature: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if gloss_feature is None:
            gloss_feature = self.recognise(features, lengths)["gloss_feature"]
        return self.translator.with_suffix(self.vl_mapper(gloss_feature), lengths)

    def load_g2t(self, g2t: Gloss2Text) -> None:
        """Start the translator from a trained Gloss2Text (same gloss vocabulary and tokenizer required)."""
        if list(g2t.gloss_vocab.tokens) != list(self.gloss_vocab.tokens):
            raise CheckpointError("Sign2Text.load_g2t: the G2T checkpoint has a different gloss vocabulary")
        self.translator.load_state_dict(g2t.translator.state_dict())


@register_model("twostream_slt_g2t")
def twostream_slt_g2t(**kwargs) -> Gloss2Text:
    """TwoStream-SLT Gloss2Text network (kwargs: mbart_config, gloss_tokens, tokenizer, ...)."""
    return Gloss2Text(**kwargs)


@register_model("twostream_slt_s2t")
def twostream_slt_s2t(**kwargs) -> Sign2Text:
    """TwoStream-SLT Sign2Text network of one stream (kwargs: in_dim, stream, mbart_config, gloss_tokens, ...)."""
    return Sign2Text(**kwargs)


# ------------------------------------------------------------------------------------ mBART-cc25 on disk

def load_mbart_g2t(directory: str | Path, gloss_tokens: Sequence[str], train_texts: Sequence[str], tgt_lang: str,
                   prune: bool = True, dropout: float = 0.3, attention_dropout: float = 0.1,
                   freeze_gloss_embeddings: bool = True) -> Gloss2Text:
    """A Gloss2Text network initialised from a local mbart-large-cc25 folder (``local_files_only``).

    Gloss embeddings start as the mean of mBART's sub-token embeddings of each (lower-cased) gloss, the
    source ``</s>`` as mBART's ``</s>`` and the sign-language tag as the target language code (mBART has no
    sign-language codes). ``prune`` keeps only the tokens of ``train_texts`` + specials (official map_ids).
    """
    from transformers import MBartForConditionalGeneration

    path = Path(directory)
    hf_tok = MBartTextTokenizer.load_hf(path)
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: no config.json; expected a local mbart-large-cc25 folder")
    try:
        mbart = MBartForConditionalGeneration.from_pretrained(str(path), local_files_only=True, dropout=dropout,
                                                              attention_dropout=attention_dropout)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot load mBART weights from disk ({str(e).splitlines()[0]})") from None
    shared = mbart.model.shared.weight.detach()
    gloss_rows = []
    for tok in gloss_tokens:
        ids = hf_tok(tok.lower(), add_special_tokens=False)["input_ids"] or [hf_tok.unk_token_id]
        gloss_rows.append(shared[ids].mean(0))
    lang_id = hf_tok.convert_tokens_to_ids(tgt_lang)
    gloss_rows += [shared[hf_tok.eos_token_id], shared[lang_id]]
    kept = MBartTextTokenizer.ids_to_keep(hf_tok, train_texts, tgt_lang) if prune else None
    tokenizer = MBartTextTokenizer(hf_tok, tgt_lang, kept, directory=str(path))
    config = mbart_config_dict(mbart.config)
    config.update(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_id, eos_token_id=tokenizer.eos_id,
                  bos_token_id=tokenizer.old_to_new.get(hf_tok.bos_token_id, tokenizer.decoder_start_id),
                  decoder_start_token_id=tokenizer.decoder_start_id)
    g2t = create_g2t(config, gloss_tokens, tokenizer.to_config(), freeze_gloss_embeddings)
    state = prune_mbart_state(mbart.state_dict(), kept) if kept is not None else mbart.state_dict()
    missing, unexpected = g2t.translator.mbart.load_state_dict(state, strict=False)
    missing = [k for k in missing if not _is_tied(k)]
    if missing or unexpected:
        raise CheckpointError(f"{path}: mBART weights do not match its config (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    with torch.no_grad():
        g2t.translator.gloss_embedding.weight.copy_(torch.stack(gloss_rows))
    return g2t


def _is_tied(key: str) -> bool:
    return key in ("lm_head.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight")


def prune_mbart_state(state: dict, kept_ids: Sequence[int]) -> dict:
    """mBART state dict with only the rows of ``kept_ids`` in the (tied) token embeddings and logits bias."""
    idx = torch.as_tensor(list(kept_ids), dtype=torch.long)
    vocab = state["model.shared.weight"].shape[0]
    out = {}
    for k, v in state.items():
        if k == "final_logits_bias":
            out[k] = v[:, idx].clone()
        elif v.ndim == 2 and v.shape[0] == vocab and (k.endswith("shared.weight") or _is_tied(k)):
            out[k] = v[idx].clone()
        else:
            out[k] = v
    return out


def create_g2t(mbart_config: dict, gloss_tokens: Sequence[str], tokenizer: dict,
               freeze_gloss_embeddings: bool = True) -> Gloss2Text:
    from visionzoo.core.registry import create_model

    return create_model("twostream_slt_g2t", mbart_config=dict(mbart_config), gloss_tokens=list(gloss_tokens),
                        tokenizer=dict(tokenizer), freeze_gloss_embeddings=freeze_gloss_embeddings)


def config_json_safe(obj) -> dict:
    """Round-trip through JSON so what ``save_pretrained`` writes equals what the model was built with."""
    return json.loads(json.dumps(obj))
