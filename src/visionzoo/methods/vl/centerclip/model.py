"""CenterCLIP (Zhao et al., SIGIR 2022): CLIP4Clip meanP text-video retrieval with segment-level token clustering.

Video side (CLIP4Clip "meanP"): every one of the T frames goes through CLIP's image tower; each frame's
CLS embedding is L2-normalised, averaged over frames and normalised again. CenterCLIP changes one
thing: after block B (paper: B=6 of 12) the frame tokens of each of S consecutive segments are pooled
and clustered into K medoid tokens (plus one averaged CLS), so blocks B+1..L process S sequences of
1+K tokens per video instead of T sequences of 1+P (``clustering.segment_cluster``). The segment CLS
tokens then play the role of the frame CLS tokens. No new parameters.

Loss: CLIP's symmetric InfoNCE over the (all-gathered) batch of video-caption pairs, reused from
``methods.vl.clip`` with the shared learnable temperature.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from visionzoo.core.errors import ConfigError
from visionzoo.core.registry import create_model, register_model
from visionzoo.engine import OptimConfig, StepContext, StepOutput, Task, TrainConfig
from visionzoo.methods.vl.centerclip.clustering import CLUSTER_MODES, ClusterMode, segment_cluster
from visionzoo.methods.vl.clip.model import ARCHS, clip_contrastive_loss
from visionzoo.metrics.retrieval import retrieval_metrics
from visionzoo.nn.clip import CLIP, load_openai_state_dict

MAX_LOGIT_SCALE = math.log(100.0)


# ------------------------------------------------------------------------------------------------ config
@dataclass
class ClusterConfig:
    """Token clustering, paper notation ``B{after_block}-{segments},{k}`` (e.g. B6-4,49)."""

    mode: ClusterMode = "kmedoids"  # none | kmedoids | spectral | pooling | sparse_sampling
    after_block: int = 6  # 1-based: clustering runs on the output of this block (input of the next)
    segments: int = 4  # S consecutive frame segments per video
    k: int = 49  # medoids (kept patch tokens) per segment
    distance_p: float = 2.0  # Minkowski norm of the k-medoids distance
    max_iter: int = 100
    tol: float = 1e-6
    sigma: float = 2.0  # spectral: heat-kernel bandwidth


@dataclass
class ModelConfig:
    arch: Literal["tiny", "vit_b32", "vit_b16"] = "tiny"
    act: Literal["quick_gelu", "gelu"] = "quick_gelu"
    vision_layers: int = 0  # 0: the arch's; >0 overrides (reduced models for proxies and benchmarks)
    vision_width: int = 0  # 0: the arch's; >0 overrides, with heads = max(1, width // 64)
    pretrained: str = ""  # OpenAI-layout CLIP weights (.safetensors / state dict); "" = random init
    pretrained_prefix: str = ""  # e.g. "clip." for CLIP4Clip / CenterCLIP training checkpoints
    allow_torchscript: bool = False  # OpenAI's JIT .pt archives run code when loaded: opt in explicitly
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


@dataclass
class ObjectiveConfig:
    gather_features: bool = True  # all-gather (with gradient) across ranks: negatives from the global batch
    max_logit_scale: float = MAX_LOGIT_SCALE


@dataclass
class DataConfig:
    dataset: Literal["msrvtt", "msvd", "activitynet"] = "msrvtt"
    root: str = "data/video-captions"
    synth: str = "video-captions"  # written to root by `visionzoo train` when root is missing
    train_split: str = "train"
    val_split: str = "test"
    num_frames: int = 12  # frames sampled uniformly per video (paper: 12; ActivityNet 60)
    context_length: int = 32  # caption tokens (paper: 32; ActivityNet paragraphs 77); capped by the text tower
    train_csv: str = "MSRVTT_train.9k.csv"  # msrvtt only: 9k or 7k training split
    videos: str = "videos"  # folder of {video_id}.mp4/.avi under root
    check_videos: Literal["exists", "decode", "none"] = "exists"
    cache: bool = False  # keep decoded clips in memory (small synthetic sets)


@dataclass
class EvalConfig:
    batch_size: int = 64
    ties: Literal["pessimistic", "optimistic"] = "pessimistic"  # see metrics.retrieval


@dataclass
class CenterCLIPTrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


# ------------------------------------------------------------------------------------------------ model
class CenterCLIP(nn.Module):
    """A CLIP whose image tower encodes videos (B, T, 3, H, W) with segment-level token clustering."""

    def __init__(self, clip: CLIP, cluster: ClusterConfig):
        super().__init__()
        if cluster.mode not in CLUSTER_MODES:
            raise ConfigError(f"model.cluster.mode {cluster.mode!r}: expected one of {CLUSTER_MODES}")
        layers = clip.cfg.vision.layers
        if cluster.mode != "none" and not 1 <= cluster.after_block < layers:
            raise ConfigError(f"model.cluster.after_block={cluster.after_block}: expected 1..{layers - 1} "
                              f"(blocks must remain after clustering; the tower has {layers})")
        self.clip = clip
        self.cluster = cluster

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.clip.logit_scale

    def num_segments(self, frames: int) -> int:
        return frames if self.cluster.mode == "none" else self.cluster.segments

    def encode_segments(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, S, E) projected CLS per segment (per frame without clustering)."""
        B, T = video.shape[:2]
        c = self.cluster

        def hook(i: int, tokens: torch.Tensor) -> torch.Tensor:
            if i != c.after_block - 1:
                return tokens
            return segment_cluster(tokens, T, c.segments, c.k, c.mode, sigma=c.sigma, max_iter=c.max_iter,
                                   tol=c.tol, distance_p=c.distance_p)

        use_hook = c.mode != "none"
        out = self.clip.visual(video.flatten(0, 1), token_hook=hook if use_hook else None).embeds
        return out.reshape(B, self.num_segments(T), -1)

    def encode_video(self, video: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, E): meanP over normalised segment (frame) embeddings."""
        x = F.normalize(self.encode_segments(video), dim=-1).mean(dim=1)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """(B, L) CLIP token ids -> (B, E)."""
        return self.clip.encode_text(tokens, normalize=normalize)

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Text x video logits (B_t, B_v) = exp(logit_scale) * cosine."""
        return self.logit_scale.exp() * self.encode_text(tokens) @ self.encode_video(video).t()


@register_model("centerclip")
def centerclip_model(arch: str = "vit_b32", act: str = "quick_gelu", cluster: dict | None = None,
                     vision_layers: int = 0, vision_width: int = 0) -> CenterCLIP:
    """CenterCLIP on an OpenAI-layout CLIP (``tiny``, ``vit_b32``, ``vit_b16``); ``cluster``: ClusterConfig fields."""
    if arch not in ARCHS:
        raise ConfigError(f"model.arch: unknown CLIP architecture {arch!r}; expected one of {sorted(ARCHS)}")
    cfg = ARCHS[arch]()
    cfg.act = act
    if vision_layers > 0:
        cfg.vision.layers = vision_layers
    if vision_width > 0:
        cfg.vision.width = vision_width
        cfg.vision.heads = max(1, vision_width // 64)
    try:
        cluster_cfg = ClusterConfig(**(cluster or {}))
    except TypeError as e:
        raise ConfigError(f"model.cluster: {e}") from None
    return CenterCLIP(CLIP(cfg), cluster_cfg)


# ------------------------------------------------------------------------------------------------ task
class CenterCLIPTask(Task):
    def __init__(self, cfg: CenterCLIPTrainConfig):
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        self.model: CenterCLIP = create_model("centerclip", arch=m.arch, act=m.act, cluster=asdict(m.cluster),
                                              vision_layers=m.vision_layers, vision_width=m.vision_width)
        if m.pretrained:
            load_openai_state_dict(m.pretrained, model=self.model.clip, prefix=m.pretrained_prefix,
                                   allow_torchscript=m.allow_torchscript)

    @property
    def image_size(self) -> int:
        return self.model.clip.cfg.vision.image_size

    @property
    def context_length(self) -> int:
        return min(self.cfg.data.context_length, self.model.clip.cfg.text.context_length)

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        video, tokens = batch  # (B, T, 3, H, W), (B, L)
        v = self.model.encode_video(video)
        t = self.model.encode_text(tokens)
        loss, logits = clip_contrastive_loss(v, t, self.model.logit_scale, self.cfg.objective.gather_features)
        with torch.no_grad():
            B = v.shape[0]
            gathered = logits.shape[1] > B
            rank = torch.distributed.get_rank() if gathered else 0
            acc = (logits.argmax(1) == torch.arange(B, device=v.device) + rank * B).float().mean()
        return StepOutput(loss, {"logit_scale": self.model.logit_scale.detach().exp(), "v2t_batch_acc": acc})

    @torch.no_grad()
    def on_after_optimizer_step(self, ctx: StepContext) -> None:
        self.model.logit_scale.clamp_(0, self.cfg.objective.max_logit_scale)

    def export_model(self) -> nn.Module:
        return self.model


# ------------------------------------------------------------------------------------------------ evaluation
def multi_caption_retrieval(text_embeds: torch.Tensor, video_embeds: torch.Tensor, caption_video,
                            ties: str = "pessimistic") -> dict[str, float]:
    """T2V and V2T R@1/5/10, MdR, MnR with several captions per video (CLIP4Clip's protocol).

    T2V: every caption is a query ranking all videos. V2T: every video is a query ranking all videos'
    caption sets, a set scored by its best caption (the max over a video's captions).
    ``metrics.retrieval`` computes exactly this with videos in the role of its "sentences".
    """
    sim = text_embeds.double() @ video_embeds.double().t()  # (N_captions, N_videos)
    m = retrieval_metrics(sim.t(), torch.as_tensor(caption_video), ties=ties)
    # there, "t2v" queries are its sentences (our videos) and "v2t" its clips (our captions)
    t2v = {"t2v_" + k[4:]: v for k, v in m.items() if k.startswith("v2t_")}
    v2t = {"v2t_" + k[4:]: v for k, v in m.items() if k.startswith("t2v_")}
    return t2v | v2t


@torch.no_grad()
def encode_retrieval_set(model: CenterCLIP, datamodule) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit embeddings of every val video (N_v, E) and every val caption (N_c, E)."""
    device = model.logit_scale.device
    videos = torch.cat([model.encode_video(x.to(device)).cpu() for x in datamodule.eval_video_loader()])
    texts = torch.cat([model.encode_text(t.to(device)).cpu() for t in datamodule.eval_caption_loader()])
    return videos, texts


def evaluate(task: CenterCLIPTask, datamodule, cfg: CenterCLIPTrainConfig) -> dict[str, float]:
    """T2V / V2T R@1/5/10, MdR, MnR on the val split (every caption of every val video)."""
    model = task.model
    was_training = model.training
    model.eval()
    videos, texts = encode_retrieval_set(model, datamodule)
    model.train(was_training)
    return multi_caption_retrieval(texts, videos, datamodule.val_index.caption_video, cfg.eval.ties)
