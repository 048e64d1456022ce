"""CiCo's cross-lingual contrastive learning (CLCL): sign-clip features <-> spoken-language words.

A sign video is a sequence of pre-extracted clip features (one per sliding I3D window, see ``domain.py``);
a sentence is a sequence of CLIP text tokens. Both become sequences of unit vectors in one space and are
compared *fine-grained* (spec §3b, the official ``Filip`` / ``softmax_max`` head). With c(a, s) the cosine
of clip a and word s:

    V2T  s2w(a) = sum_s softmax_s(c(a, s) / 0.07) c(a, s)      I2T = scale * mean_a s2w(a)
    T2V  w2s(s) = sum_a softmax_a(c(a, s) / 0.07) c(a, s)      T2I = scale * mean_s w2s(s)

Training uses the balanced symmetric InfoNCE on both matrices, the T2I one computed with a randomly
word-swapped (EDA) copy of each sentence; inference scores with 0.5 I2T + 0.5 T2I. ``similarity="global"``
is the ablation: mean-pooled clips vs mean-pooled words, one cosine.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import create_model, register_model
from visionzoo.engine import OptimConfig, StepContext, StepOutput, Task, TrainConfig
from visionzoo.metrics.retrieval import retrieval_metrics
from visionzoo.nn.clip import CLIPTextConfig, CLIPTextTower
from visionzoo.nn.transformer import Block

MAX_LOGIT_SCALE = math.log(100.0)


# ------------------------------------------------------------------------------------------------ encoders
class SignFeatureTransformer(nn.Module):
    """The video tower ("FeatureTransformer"): clip features (B, A, D) -> clip embeddings (B, A, E).

    1x1 conv D -> W, a CLS token, learned positions, pre-norm transformer blocks, LayerNorm, projection
    W -> E. Attention keys are the real clips only (padding and, as in the official code, the CLS slot
    are masked out); the CLS output is not used downstream.
    """

    def __init__(self, feature_dim: int, width: int, layers: int, heads: int, embed_dim: int, max_clips: int):
        super().__init__()
        self.max_clips = max_clips
        scale = width**-0.5
        self.input_conv = nn.Conv1d(feature_dim, width, kernel_size=1)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(max_clips + 1, width))
        self.blocks = nn.ModuleList(Block(width, heads, act="quick_gelu", norm_eps=1e-5) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed_dim))

    def forward(self, features: torch.Tensor, clip_mask: torch.Tensor) -> torch.Tensor:
        # features (B, A, D), clip_mask (B, A) bool -> (B, A, E)
        B, A, _ = features.shape
        if A > self.max_clips:
            raise ValueError(f"SignFeatureTransformer: {A} clips exceed max_clips {self.max_clips}; "
                             "subsample with data.max_clips")
        x = self.input_conv(features.transpose(1, 2)).transpose(1, 2)  # (B, A, W)
        cls = self.class_embedding.to(x.dtype).expand(B, 1, -1)
        x = torch.cat([cls, x], 1) + self.positional_embedding[: A + 1].to(x.dtype)
        keys = torch.cat([clip_mask.new_zeros(B, 1), clip_mask], 1)  # CLS never attended to
        attn_mask = keys[:, None, None, :]  # (B, 1, 1, A + 1): True = may attend
        for block in self.blocks:
            x, _ = block(x, attn_mask=attn_mask)
        return self.ln_post(x[:, 1:]) @ self.proj


@dataclass
class CiCoOutput:
    clips: torch.Tensor  # (B_v, A, E) unit clip embeddings
    clip_mask: torch.Tensor  # (B_v, A) bool
    words: torch.Tensor  # (B_t, S, E) unit word embeddings
    word_mask: torch.Tensor  # (B_t, S) bool, tokens up to and including EOT


class CiCo(nn.Module):
    """Sign-video tower + CLIP text tower + learnable logit scale (spec §3b CLCL)."""

    def __init__(self, feature_dim: int = 1024, video_width: int = 768, video_layers: int = 12, video_heads: int = 12,
                 max_clips: int = 64, embed_dim: int = 512, context_length: int = 32, vocab_size: int = 49408,
                 text_width: int = 512, text_heads: int = 8, text_layers: int = 12,
                 similarity: str = "fine_grained", inner_temperature: float = 0.07):
        super().__init__()
        if similarity not in ("fine_grained", "global"):
            raise ConfigError(f"model.similarity: expected 'fine_grained' or 'global', got {similarity!r}")
        self.similarity, self.inner_temperature = similarity, inner_temperature
        self.video = SignFeatureTransformer(feature_dim, video_width, video_layers, video_heads, embed_dim, max_clips)
        self.text = CLIPTextTower(CLIPTextConfig(context_length=context_length, vocab_size=vocab_size,
                                                 width=text_width, heads=text_heads, layers=text_layers), embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def context_length(self) -> int:
        return self.text.cfg.context_length

    def encode_video(self, features: torch.Tensor, clip_mask: torch.Tensor) -> torch.Tensor:
        # (B, A, D), (B, A) -> (B, A, E) unit vectors
        return F.normalize(self.video(features, clip_mask), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (B, S) CLIP ids -> (B, S, E) unit word vectors, (B, S) mask of tokens up to and including EOT
        out = self.text(tokens, return_tokens=True)
        words = F.normalize(out.tokens @ self.text.text_projection, dim=-1)
        eot = tokens.argmax(-1)
        mask = torch.arange(tokens.shape[1], device=tokens.device)[None] <= eot[:, None]
        return words, mask

    def forward(self, features, clip_mask, tokens) -> CiCoOutput:
        words, word_mask = self.encode_text(tokens)
        return CiCoOutput(self.encode_video(features, clip_mask), clip_mask, words, word_mask)

    def scores(self, clips, clip_mask, words, word_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """(I2T, T2I), each (B_v, B_t) logits (already times the logit scale)."""
        scale = self.logit_scale.exp()
        if self.similarity == "global":
            sim = global_similarity(clips, clip_mask, words, word_mask)
            return scale * sim, scale * sim
        i2t, t2i = fine_grained_similarity(clips, clip_mask, words, word_mask, self.inner_temperature)
        return scale * i2t, scale * t2i


@register_model("cico")
def cico_model(**kwargs) -> CiCo:
    """CiCo's CLCL retrieval model; defaults are the paper's sizes (I3D 1024-d clips, CLIP ViT-B/32 text)."""
    return CiCo(**kwargs)


# ------------------------------------------------------------------------------------------------ similarity
def _masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    mask = mask.to(x.dtype)
    return (x * mask).sum(dim) / mask.sum(dim).clamp_min(1.0)


def fine_grained_similarity(clips, clip_mask, words, word_mask, temperature: float = 0.07):
    """CiCo's softmax-weighted clip<->word similarity in both directions (spec §3b).

    clips (B_v, A, E), words (B_t, S, E) unit vectors; masks bool. Returns (I2T, T2I), each (B_v, B_t),
    before the logit scale. Computed in fp32 whatever the input dtype, as the official code does.
    """
    clips, words = clips.float(), words.float()
    c = torch.einsum("vae,tse->vtas", clips, words)  # (B_v, B_t, A, S)
    neg = torch.finfo(c.dtype).min
    word_ok = word_mask[None, :, None, :]  # (1, B_t, 1, S)
    clip_ok = clip_mask[:, None, :, None]  # (B_v, 1, A, 1)
    # V2T: each clip softly picks its best word; averaged over the real clips
    s2w = (torch.softmax((c / temperature).masked_fill(~word_ok, neg), dim=3) * c).sum(3)  # (B_v, B_t, A)
    i2t = _masked_mean(s2w, clip_mask[:, None, :], dim=2)
    # T2V: each word softly picks its best clip; averaged over the real words
    w2s = (torch.softmax((c / temperature).masked_fill(~clip_ok, neg), dim=2) * c).sum(2)  # (B_v, B_t, S)
    t2i = _masked_mean(w2s, word_mask[None], dim=2)
    return i2t, t2i


def global_similarity(clips, clip_mask, words, word_mask) -> torch.Tensor:
    """The ablation: cosine of the mean-pooled clips and the mean-pooled words, (B_v, B_t)."""
    v = F.normalize(_masked_mean(clips.float(), clip_mask[..., None], 1), dim=-1)
    t = F.normalize(_masked_mean(words.float(), word_mask[..., None], 1), dim=-1)
    return v @ t.t()


def balanced_infonce(logits: torch.Tensor) -> torch.Tensor:
    """0.5 CE over rows + 0.5 CE over columns, towards the diagonal (the official ``balance`` mix)."""
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * F.cross_entropy(logits, target) + 0.5 * F.cross_entropy(logits.t(), target)


# ------------------------------------------------------------------------------------------------ config
@dataclass
class ModelConfig:
    feature_dim: int = 1024
    video_width: int = 768
    video_layers: int = 12
    video_heads: int = 12
    max_clips: int = 64
    embed_dim: int = 512
    context_length: int = 32
    vocab_size: int = 49408
    text_width: int = 512
    text_heads: int = 8
    text_layers: int = 12
    similarity: Literal["fine_grained", "global"] = "fine_grained"
    inner_temperature: float = 0.07
    clip_checkpoint: str = ""  # local OpenAI CLIP weights (.safetensors / state dict) for the paper setting
    allow_torchscript: bool = False  # OpenAI's JIT .pt archives run code when loaded: opt in explicitly

    def model_kwargs(self) -> dict:
        skip = {"clip_checkpoint", "allow_torchscript"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


@dataclass
class ObjectiveConfig:
    swap_probability: float = 0.5  # EDA random swap on the T2V branch's text, per sentence
    max_logit_scale: float = MAX_LOGIT_SCALE


@dataclass
class DataConfig:
    dataset: Literal["how2sign", "phoenix2014t", "csl-daily"] = "how2sign"
    root: str = "data/synthsign-how2sign"  # the dataset root the reader gets
    synth: str = ""  # written by the proxy / demo, not by `train` (features must be extracted first)
    features: str = "features/agnostic"  # per-video domain-agnostic features: FEATURES/<split>/<name>.safetensors
    aware_features: str = ""  # domain-aware features in the same layout; "" = agnostic only
    alpha: float = 0.8  # fused = (1 - alpha) aware + alpha agnostic (0.8 How2Sign / CSL-Daily, 0.9 Phoenix-2014T)
    max_clips: int = 64  # more windows are subsampled by linspace
    train_split: str = "train"
    dev_split: str = "val"  # model selection
    test_split: str = "test"  # reported once, by the selected model


@dataclass
class CiCoConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


# ------------------------------------------------------------------------------------------------ task
@dataclass
class Gallery:
    """Embeddings of one evaluation split: every clip, and every unique sentence."""

    clips: torch.Tensor  # (N_clips, A, E)
    clip_mask: torch.Tensor  # (N_clips, A)
    words: torch.Tensor  # (N_text, S, E)
    word_mask: torch.Tensor  # (N_text, S)
    clip_to_text: torch.Tensor  # (N_clips,)


@torch.no_grad()
def similarity_matrix(model: CiCo, g: Gallery, block: int = 64) -> torch.Tensor:
    """Inference score 0.5 I2T + 0.5 T2I as (N_text, N_clips) (the layout ``retrieval_metrics`` takes)."""
    rows = []
    for i in range(0, len(g.clips), block):
        i2t, t2i = model.scores(g.clips[i:i + block], g.clip_mask[i:i + block], g.words, g.word_mask)
        rows.append(0.5 * i2t + 0.5 * t2i)
    return torch.cat(rows).t()


class CiCoTask(Task):
    """CLCL training; dev-split retrieval selects the weights that ``export_model`` returns."""

    def __init__(self, cfg: CiCoConfig):
        super().__init__()
        self.cfg = cfg
        self.model: CiCo = create_model("cico", **cfg.model.model_kwargs())
        if cfg.model.clip_checkpoint:
            load_clip_text_tower(self.model, cfg.model.clip_checkpoint, cfg.model.allow_torchscript)
        self._val: list[dict] = []
        self.best_score = -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        clips = self.model.encode_video(batch["features"], batch["clip_mask"])
        words, word_mask = self.model.encode_text(batch["tokens"])
        i2t, _ = self.model.scores(clips, batch["clip_mask"], words, word_mask)
        if "tokens_swapped" in batch:  # the T2V branch sees the EDA-swapped sentence
            words, word_mask = self.model.encode_text(batch["tokens_swapped"])
        _, t2i = self.model.scores(clips, batch["clip_mask"], words, word_mask)
        loss_i2t, loss_t2i = balanced_infonce(i2t), balanced_infonce(t2i)
        with torch.no_grad():
            acc = (i2t.argmax(1) == torch.arange(len(i2t), device=i2t.device)).float().mean()
        return StepOutput(0.5 * (loss_i2t + loss_t2i), {"loss_i2t": loss_i2t.detach(), "loss_t2i": loss_t2i.detach(),
                                                        "logit_scale": self.model.logit_scale.detach().exp(),
                                                        "v2t_batch_acc": acc})

    @torch.no_grad()
    def on_after_optimizer_step(self, ctx: StepContext) -> None:
        self.model.logit_scale.clamp_(max=self.cfg.objective.max_logit_scale)

    # -- dev-split model selection -----------------------------------------------------------------
    @torch.no_grad()
    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        was = self.model.training
        self.model.eval()
        clips = self.model.encode_video(batch["features"], batch["clip_mask"])
        words, word_mask = self.model.encode_text(batch["tokens"])
        self.model.train(was)
        self._val.append({"clips": clips.cpu(), "clip_mask": batch["clip_mask"].cpu(), "words": words.cpu(),
                          "word_mask": word_mask.cpu(), "sentence": batch["sentence"].cpu()})

    def validation_metrics(self) -> dict[str, float]:
        if not self._val:
            return {}
        gallery = gallery_from_batches(self._val)
        self._val = []
        m = retrieval_metrics(similarity_matrix(self.model, gallery), gallery.clip_to_text)
        score = m["t2v_r1"] + m["v2t_r1"]
        if score > self.best_score:  # strictly better: the earliest of equal checkpoints is kept
            self.best_score = score
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        return {"t2v_r1": m["t2v_r1"], "v2t_r1": m["v2t_r1"], "best_r1_sum": self.best_score}

    def get_extra_state(self):
        # the selected weights travel in the training checkpoint, so a resumed run selects the same model
        return {"best_score": torch.tensor(self.best_score), "best_state": self.best_state or {}}

    def set_extra_state(self, state) -> None:
        self.best_score = float(state["best_score"])
        self.best_state = dict(state["best_state"]) or None

    def export_model(self) -> nn.Module:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.model


def gallery_from_batches(batches: list[dict]) -> Gallery:
    """Concatenate per-clip batches; unique sentences (by the batch's ``sentence`` index) become text rows."""
    width = max(b["clips"].shape[1] for b in batches)

    def pad(t, value):
        return F.pad(t, (0, 0, 0, width - t.shape[1]) if t.ndim == 3 else (0, width - t.shape[1]), value=value)

    clips = torch.cat([pad(b["clips"], 0.0) for b in batches])
    clip_mask = torch.cat([pad(b["clip_mask"], False) for b in batches])
    sentence = torch.cat([b["sentence"] for b in batches])
    words = torch.cat([b["words"] for b in batches])
    word_mask = torch.cat([b["word_mask"] for b in batches])
    unique, clip_to_text = torch.unique(sentence, return_inverse=True)
    first = torch.stack([(sentence == u).nonzero()[0, 0] for u in unique])
    return Gallery(clips, clip_mask, words[first], word_mask[first], clip_to_text)


@torch.no_grad()
def encode_split(model: CiCo, loader) -> Gallery:
    """Embeddings of an evaluation loader (items: one clip with its sentence index)."""
    model.eval()
    device = model.logit_scale.device
    batches = []
    for b in loader:
        clips = model.encode_video(b["features"].to(device), b["clip_mask"].to(device))
        words, word_mask = model.encode_text(b["tokens"].to(device))
        batches.append({"clips": clips.cpu(), "clip_mask": b["clip_mask"], "words": words.cpu(),
                        "word_mask": word_mask.cpu(), "sentence": b["sentence"]})
    return gallery_from_batches(batches)


def evaluate_split(model: CiCo, loader) -> dict[str, float]:
    """R@1/5/10, MedR, MnR in both directions on one split (several clips per sentence allowed)."""
    g = encode_split(model, loader)
    model_cpu = model  # scores are computed where the embeddings are (CPU)
    device = model.logit_scale.device
    if device.type != "cpu":
        model_cpu = copy.deepcopy(model).cpu()
    return retrieval_metrics(similarity_matrix(model_cpu, g), g.clip_to_text)


def evaluate(task: CiCoTask, datamodule, cfg: CiCoConfig) -> dict[str, float]:
    """The selected model (best dev R@1 sum) on dev, then once on test."""
    model = task.export_model()
    was = model.training
    out = {}
    if datamodule.has_split("dev"):
        out |= {f"dev_{k}": v for k, v in evaluate_split(model, datamodule.eval_loader("dev")).items()}
    out |= evaluate_split(model, datamodule.eval_loader("test"))
    model.train(was)
    return out


def load_clip_text_tower(model: CiCo, path: str, allow_torchscript: bool = False) -> None:
    """Initialise the text tower (and logit scale) from a local OpenAI-layout CLIP checkpoint.

    The visual transformer's blocks are not loaded into the sign tower: our clip blocks and theirs share
    names and shapes only at the paper's 768 width, and the official code's partial load (blocks yes,
    patch conv / positions no) is reproduced here for exactly that case.
    """
    from visionzoo.nn.clip import load_openai_state_dict, read_state_dict

    sd = read_state_dict(path, allow_torchscript)
    clip = load_openai_state_dict(sd)
    text = clip.text.state_dict()
    n = model.context_length
    if text["positional_embedding"].shape[0] < n:
        raise ConfigError(f"{path}: CLIP context {text['positional_embedding'].shape[0]} < model.context_length {n}")
    text["positional_embedding"] = text["positional_embedding"][:n]  # CiCo reads at most 32 of CLIP's 77
    model.text.load_state_dict(text)
    with torch.no_grad():
        model.logit_scale.copy_(clip.logit_scale)
    video_blocks = clip.visual.blocks
    if len(video_blocks) == len(model.video.blocks) and clip.cfg.vision.width == model.video.ln_post.normalized_shape[0]:
        for ours, theirs in zip(model.video.blocks, video_blocks):
            ours.load_state_dict(theirs.state_dict())
