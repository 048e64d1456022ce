"""Recipes, data and training of TwoStream-SLT's two stages: Gloss2Text (``stage: g2t``) and Sign2Text
(``stage: s2t``, one run per stream). Evaluation decodes with beam search and scores BLEU-1..4 / ROUGE-L."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F

from visionzoo.core.errors import ConfigError
from visionzoo.data.sign.datasets import pad_sequences
from visionzoo.engine.config import OptimConfig, TrainConfig
from visionzoo.engine.data import make_loader
from visionzoo.engine.task import StepContext, StepOutput, Task
from visionzoo.methods.sign.twostream.slt.beam import Source, ensemble_beam_search
from visionzoo.methods.sign.twostream.slt.model import (Gloss2Text, Sign2Text, config_json_safe,
                                                        create_g2t, load_mbart_g2t, tiny_mbart_config)
from visionzoo.methods.sign.twostream.slt.tokenizer import VocabTokenizer
from visionzoo.nn.ctc import ctc_loss, greedy_decode

SPLITS = {"phoenix2014t": ("train", "dev", "test"), "csl-daily": ("train", "dev", "test")}


@dataclass
class TranslatorConfig:
    mbart_dir: str = ""  # local mbart-large-cc25 folder; "" = a random mBART of the sizes below
    prune_vocab: bool = True  # keep only the target language's tokens (official map_ids.pkl)
    tgt_lang: str = "de_DE"  # mBART language code of the spoken language (zh_CN for CSL-Daily)
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    ffn_dim: int = 128
    max_positions: int = 256
    dropout: float = 0.3
    attention_dropout: float = 0.1
    freeze_gloss_embeddings: bool = True


@dataclass
class SignConfig:
    features: str = "data/synthsign_slt_features"  # feature folder (features.py)
    extractor: str = "raw"  # how to create a missing feature folder: "raw" (stand-in) or a TwoStream-SLR run folder
    stream: Literal["rgb", "keypoint", "joint"] = "joint"
    g2t: str = ""  # Gloss2Text run folder (or its model/) the translator starts from; "" = random
    head_hidden: int = 512
    head_ff: int = 2048
    head_dropout: float = 0.1
    mapper_hidden: int = 1024
    ctc_weight: float = 1.0
    lr_mapper: float = 1e-3  # the head group uses optim.lr
    lr_translator: float = 1e-5


@dataclass
class DataConfig:
    root: str = "data/synthsign_p14t"
    synth: str = ""  # "synthsign": write a SynthSign Phoenix-2014T corpus when root is missing
    synth_options: dict = field(default_factory=dict)
    dataset: Literal["phoenix2014t", "csl-daily"] = "phoenix2014t"
    text_level: Literal["word", "char"] = "word"  # char for CSL-Daily (modelled and scored per character)
    eval_batch_size: int = 16


@dataclass
class DecodeConfig:
    beam_size: int = 5
    length_penalty: float = 1.0
    max_length: int = 100  # tokens incl. the decoder start token (CSL-Daily: 500)
    eval_split: str = "test"


@dataclass
class TwoStreamSLTConfig:
    stage: Literal["g2t", "s2t"] = "g2t"
    label_smoothing: float = 0.2
    translator: TranslatorConfig = field(default_factory=TranslatorConfig)
    sign: SignConfig = field(default_factory=SignConfig)
    data: DataConfig = field(default_factory=DataConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self):
        if self.stage not in ("g2t", "s2t"):
            raise ConfigError(f"stage: expected 'g2t' or 's2t', got {self.stage!r}")


# ------------------------------------------------------------------------------------------------ data

def ensure_corpus(cfg: DataConfig) -> None:
    root = Path(cfg.root)
    if root.exists() or not cfg.synth:
        return
    from visionzoo.data.synth import get_synth

    get_synth(cfg.synth)(root, format=cfg.dataset, **cfg.synth_options)


def read_split(cfg: DataConfig, split: str):
    from visionzoo.data.sign import read_sign_dataset

    ensure_corpus(cfg)
    return read_sign_dataset(cfg.dataset, cfg.root, split, media="ignore")


def ensure_features(cfg: TwoStreamSLTConfig) -> None:
    """Extract the feature folder when it is missing (stand-in or from a TwoStream-SLR run)."""
    folder = Path(cfg.sign.features)
    if (folder / "train.json").is_file():
        return
    from visionzoo.methods.sign.twostream.slt import features

    ensure_corpus(cfg.data)
    if cfg.sign.extractor == "raw":
        features.extract_raw_features(cfg.data.root, folder, dataset=cfg.data.dataset)
    else:
        features.extract_slr_features(cfg.sign.extractor, folder, root=cfg.data.root)


class GlossTextSet(torch.utils.data.Dataset):
    """(glosses, text) pairs of one split, from the corpus annotations (Gloss2Text)."""

    def __init__(self, samples):
        self.items = [{"name": s.name, "gloss": list(s.gloss), "text": s.text or ""} for s in samples]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def collate_raw(items: list[dict]) -> dict:
    """Keep strings as lists; the task encodes them with its own vocabularies (saved with the model)."""
    batch = {"names": [it["name"] for it in items], "gloss": [it["gloss"] for it in items],
             "text": [it["text"] for it in items]}
    if "features" in items[0]:
        batch["features"], batch["lengths"] = pad_sequences([it["features"] for it in items])
    return batch


class SLTDataModule(L.LightningDataModule):
    """Gloss2Text: gloss/text pairs from the corpus. Sign2Text: one stream of a feature folder."""

    def __init__(self, cfg: TwoStreamSLTConfig):
        super().__init__()
        self.cfg = cfg
        train, dev, test = SPLITS[cfg.data.dataset]
        if cfg.stage == "g2t":
            self.sets = {s: GlossTextSet(read_split(cfg.data, s)) for s in (train, dev, test)}
        else:
            from visionzoo.methods.sign.twostream.slt.features import FeatureSplit

            ensure_features(cfg)
            self.sets = {s: FeatureSplit(cfg.sign.features, s, cfg.sign.stream) for s in (train, dev, test)}
        self.sets["train"], self.sets["dev"], self.sets["test"] = self.sets[train], self.sets[dev], self.sets[test]

    def train_dataloader(self):
        t = self.cfg.train
        return make_loader(self.sets["train"], t.batch_size, shuffle=True, seed=t.seed, num_workers=t.num_workers,
                           collate_fn=collate_raw)

    def val_dataloader(self):
        return self.eval_loader("dev")

    def eval_loader(self, split: str):
        return make_loader(self.sets[split], self.cfg.data.eval_batch_size, shuffle=False, collate_fn=collate_raw)


# ------------------------------------------------------------------------------------------- networks

def build_g2t(cfg: TwoStreamSLTConfig) -> Gloss2Text:
    """A fresh Gloss2Text: vocabularies from the train split, mBART random (tiny) or from a local folder."""
    from visionzoo.data.sign import build_gloss_vocab

    train = read_split(cfg.data, SPLITS[cfg.data.dataset][0])
    gloss_tokens = build_gloss_vocab(train, unk="map", order="alphabetical").tokens
    texts = [s.text or "" for s in train]
    tc = cfg.translator
    if tc.mbart_dir:
        return load_mbart_g2t(tc.mbart_dir, gloss_tokens, texts, tc.tgt_lang, prune=tc.prune_vocab,
                              dropout=tc.dropout, attention_dropout=tc.attention_dropout,
                              freeze_gloss_embeddings=tc.freeze_gloss_embeddings)
    tokenizer = VocabTokenizer.build(texts, cfg.data.text_level)
    mbart = tiny_mbart_config(tokenizer.vocab_size, tokenizer, tc.d_model, tc.layers, tc.heads, tc.ffn_dim,
                              tc.dropout, tc.attention_dropout, tc.max_positions)
    return create_g2t(mbart, gloss_tokens, config_json_safe(tokenizer.to_config()), tc.freeze_gloss_embeddings)


def load_g2t(path: str | Path) -> Gloss2Text:
    from visionzoo.core.hub import from_pretrained

    path = Path(path)
    return from_pretrained(path / "model" if (path / "model").is_dir() else path)


def build_s2t(cfg: TwoStreamSLTConfig, in_dim: int) -> Sign2Text:
    """A Sign2Text network of ``cfg.sign.stream`` whose translator starts from the G2T checkpoint."""
    from visionzoo.core.registry import create_model

    g2t = load_g2t(cfg.sign.g2t) if cfg.sign.g2t else build_g2t(cfg)
    sc = cfg.sign
    model = create_model("twostream_slt_s2t", in_dim=in_dim, stream=sc.stream,
                         mbart_config=dict(g2t.visionzoo_kwargs["mbart_config"]),
                         gloss_tokens=list(g2t.gloss_vocab.tokens), tokenizer=dict(g2t.tokenizer_config),
                         head_hidden=sc.head_hidden, head_ff=sc.head_ff, head_dropout=sc.head_dropout,
                         mapper_hidden=sc.mapper_hidden,
                         freeze_gloss_embeddings=cfg.translator.freeze_gloss_embeddings)
    model.load_g2t(g2t)
    return model


# ----------------------------------------------------------------------------------------------- tasks

def translation_loss(logits: torch.Tensor, labels: torch.Tensor, pad_id: int, smoothing: float) -> torch.Tensor:
    """Label-smoothed cross-entropy summed over target tokens, divided by the batch size."""
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=pad_id,
                           label_smoothing=smoothing, reduction="sum") / labels.shape[0]


def teacher_forcing(tokenizer, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(decoder_input_ids, labels), both (B, L): labels = tokens + </s>, inputs = start + tokens."""
    labels = [torch.tensor(tokenizer.encode(t)) for t in texts]
    inputs = [torch.cat([torch.tensor([tokenizer.decoder_start_id]), lab[:-1]]) for lab in labels]
    labels, _ = pad_sequences(labels, tokenizer.pad_id)
    inputs, _ = pad_sequences(inputs, tokenizer.pad_id)
    return inputs.to(device), labels.to(device)


class SLTTask(Task):
    """Trains one network: Gloss2Text (``stage g2t``) or one stream's Sign2Text (``stage s2t``)."""

    def __init__(self, cfg: TwoStreamSLTConfig, model: Gloss2Text | Sign2Text | None = None):
        super().__init__()
        self.cfg = cfg
        if model is None:
            if cfg.stage == "g2t":
                model = build_g2t(cfg)
            else:
                from visionzoo.methods.sign.twostream.slt.features import feature_dims

                ensure_features(cfg)
                model = build_s2t(cfg, feature_dims(cfg.sign.features)[cfg.sign.stream])
        self.model = model
        self._hyps: list[str] = []
        self._refs: list[str] = []

    def source(self, batch) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(inputs_embeds, attention_mask, recognition outputs or {})."""
        device = next(self.model.parameters()).device
        if self.cfg.stage == "g2t":
            ids = [torch.tensor(self.model.gloss_vocab.encode(g)) for g in batch["gloss"]]
            ids, lengths = pad_sequences(ids, self.model.gloss_vocab.pad_id)
            embeds, mask = self.model.source(ids.to(device), lengths.to(device))
            return embeds, mask, {}
        feats, lengths = batch["features"].to(device), batch["lengths"].to(device)
        rec = self.model.recognise(feats, lengths)
        embeds, mask = self.model.source(feats, lengths, rec["gloss_feature"])
        return embeds, mask, {**rec, "lengths": lengths}

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        embeds, mask, rec = self.source(batch)
        dec_in, labels = teacher_forcing(self.model.tokenizer, batch["text"], embeds.device)
        logits = self.model.translator(embeds, mask, dec_in)
        loss = translation_loss(logits, labels, self.model.tokenizer.pad_id, self.cfg.label_smoothing)
        logs = {"translation": loss.detach()}
        if rec:
            targets = [self.model.gloss_vocab.encode(g) for g in batch["gloss"]]
            ctc = ctc_loss(rec["logits"].log_softmax(-1), targets, rec["lengths"], reduction="batchmean")
            logs["ctc"] = ctc.detach()
            loss = loss + self.cfg.sign.ctc_weight * ctc
        return StepOutput(loss=loss, logs=logs)

    def param_groups(self, weight_decay: float, no_decay_norm_and_bias: bool = True) -> list[dict]:
        """Sign2Text's per-group learning rates (heads: optim.lr, VL-mapper, mBART); one group for G2T."""
        if self.cfg.stage == "g2t":
            return super().param_groups(weight_decay, no_decay_norm_and_bias)
        sc, groups = self.cfg.sign, []
        for module, lr in ((self.model.visual_head, self.cfg.optim.lr), (self.model.vl_mapper, sc.lr_mapper),
                           (self.model.translator, sc.lr_translator)):
            params = [p for p in module.parameters() if p.requires_grad]
            if params:
                groups.append({"params": params, "lr": lr, "weight_decay": weight_decay})
        return groups

    @torch.no_grad()
    def translate(self, batch, beam_size: int | None = None) -> list[str]:
        d = self.cfg.decode
        embeds, mask, _ = self.source(batch)
        tok = self.model.tokenizer
        ids = ensemble_beam_search([Source(self.model.translator, embeds, mask)], start_id=tok.decoder_start_id,
                                   eos_id=tok.eos_id, beam_size=beam_size or d.beam_size,
                                   length_penalty=d.length_penalty, max_length=d.max_length)
        return [tok.decode(i) for i in ids]

    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        self._hyps += self.translate(batch, beam_size=1)  # greedy during training, as the official validation
        self._refs += list(batch["text"])

    def validation_metrics(self) -> dict[str, float]:
        from visionzoo.metrics.translation import bleu

        if not self._refs:
            return {}
        out = {"bleu4": bleu(self._refs, self._hyps, level=self.cfg.data.text_level)["bleu4"]}
        self._hyps, self._refs = [], []
        return out

    def export_model(self):
        return self.model


def evaluate(task: SLTTask, datamodule: SLTDataModule, cfg: TwoStreamSLTConfig) -> dict[str, float]:
    """BLEU-1..4 and ROUGE-L (beam search) on ``decode.eval_split``; Sign2Text also reports gloss WER."""
    from visionzoo.metrics.translation import translation_metrics
    from visionzoo.metrics.wer import wer

    task.eval()
    refs, hyps, gloss_refs, gloss_hyps = [], [], [], []
    for batch in datamodule.eval_loader(cfg.decode.eval_split):
        hyps += task.translate(batch)
        refs += batch["text"]
        if cfg.stage == "s2t":
            with torch.no_grad():
                _, _, rec = task.source(batch)
            vocab = task.model.gloss_vocab
            gloss_hyps += [" ".join(vocab.decode(s)) for s in greedy_decode(rec["logits"], rec["lengths"])]
            gloss_refs += [" ".join(g) for g in batch["gloss"]]
    out = translation_metrics(refs, hyps, level=cfg.data.text_level)
    if gloss_refs:
        out["gloss_wer"] = wer(gloss_refs, gloss_hyps).wer
    return {k: round(float(v), 4) for k, v in out.items()}
