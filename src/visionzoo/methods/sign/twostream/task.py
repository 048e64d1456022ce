"""Training and evaluation of TwoStream-SLR on the shared engine: recipe config, Task, decoding, WER."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from visionzoo.core.errors import CheckpointError, ConfigError
from visionzoo.core.registry import create_model
from visionzoo.engine.config import OptimConfig, TrainConfig
from visionzoo.engine.task import StepContext, StepOutput, Task
from visionzoo.methods.sign.twostream.data import DataConfig
from visionzoo.methods.sign.twostream.loss import twostream_loss
from visionzoo.methods.sign.twostream.model import TwoStreamOutput, TwoStreamSLR, TwoStreamSLRConfig
from visionzoo.metrics.wer import wer
from visionzoo.nn.ctc import greedy_decode, prefix_beam_search

ENSEMBLE = "ensemble"


@dataclass
class InitConfig:
    """Where stage 2 starts from (local files only). Folders are pretrained folders (RUN/model) of
    the single-stream stages; their backbone and main head are copied by parameter name."""

    rgb: str = ""  # pretrained folder of an rgb_pretrain run
    keypoint: str = ""  # pretrained folder of a keypoint_pretrain run
    s3d_rgb: str = ""  # Kinetics-400 S3D checkpoint (kylemin/S3D layout, *.pt) for the RGB backbone


@dataclass
class DecodeConfig:
    beam_size: int = 5  # test-time prefix beam search on the ensemble (validation is greedy)
    collapse_twice: bool = False  # reproduce the official decoder's extra repeat merge (§1b quirk)
    cleanup: str = ""  # WER cleanup rules: "phoenix2014t", "phoenix2014", "" = upper-case only
    splits: list[str] = field(default_factory=lambda: ["dev", "test"])  # what `eval` scores


@dataclass
class TwoStreamConfig:
    """A TwoStream-SLR recipe."""

    model: TwoStreamSLRConfig = field(default_factory=TwoStreamSLRConfig)
    data: DataConfig = field(default_factory=DataConfig)
    init: InitConfig = field(default_factory=InitConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


def build_model(cfg: TwoStreamSLRConfig) -> TwoStreamSLR:
    kwargs = dataclasses.asdict(cfg)
    kwargs["glosses"], kwargs["lateral_kernel"] = list(cfg.glosses), list(cfg.lateral_kernel)  # JSON-friendly
    return create_model("twostream_slr", **kwargs)


def load_stage(model: TwoStreamSLR, folder: str, stream: str) -> int:
    """Copy ``backbone.<stream>_stream.*`` and ``heads.<stream>.*`` from a single-stream pretrained folder."""
    from visionzoo.core.hub import WEIGHTS_NAME, load_safetensors

    path = Path(folder)
    path = path / WEIGHTS_NAME if path.is_dir() else path
    state = load_safetensors(path)
    prefixes = (f"backbone.{stream}_stream.", f"heads.{stream}.")
    picked = {k: v for k, v in state.items() if k.startswith(prefixes)}
    if not picked:
        raise CheckpointError(f"{path}: holds no {stream} stream weights (keys starting with {prefixes[0]!r}); "
                              f"expected a {stream}_pretrain run's model folder")
    own = model.state_dict()
    for k, v in picked.items():
        if k not in own or own[k].shape != v.shape:
            got = tuple(v.shape)
            want = tuple(own[k].shape) if k in own else "no such key"
            raise CheckpointError(f"{path}: {k} {got} does not fit the model ({want}); same width and vocabulary?")
    model.load_state_dict(picked, strict=False)
    return len(picked)


def load_kinetics_s3d(model: TwoStreamSLR, path: str) -> None:
    """Initialise the RGB backbone from a kylemin/S3D Kinetics-400 checkpoint (blocks 1-4, no classifier)."""
    from visionzoo.engine.checkpoint_io import load_training_checkpoint
    from visionzoo.nn.s3d import check_state_dict, convert_kylemin_s3d

    state = convert_kylemin_s3d(load_training_checkpoint(path))
    net = model.backbone.rgb_stream
    state = {k: v for k, v in state.items() if k in net.state_dict()}
    check_state_dict(state, net, path)
    net.load_state_dict(state, strict=False)


def decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocab_tokens: list[str], beam_size: int = 1,
           collapse_twice: bool = False, blank: int = 0) -> list[str]:
    """(B, T, V) log-probs -> gloss sentences; greedy when beam_size == 1, else prefix beam search."""
    if beam_size <= 1:
        ids = greedy_decode(log_probs, lengths, blank=blank)
    else:
        ids = [hyps[0].tokens for hyps in prefix_beam_search(log_probs, lengths, beam_size=beam_size, blank=blank,
                                                             collapse_twice=collapse_twice)]
    return [" ".join(vocab_tokens[i] for i in seq) for seq in ids]


def resolve_model_config(cfg: TwoStreamConfig) -> TwoStreamSLRConfig:
    """The model config with its vocabulary filled in from the data when the recipe leaves it open."""
    from visionzoo.methods.sign.twostream.data import gloss_vocabulary

    if cfg.model.glosses:
        return cfg.model
    vocab = gloss_vocabulary(cfg.data)
    if cfg.model.vocab_size not in (0, len(vocab)):
        raise ConfigError(f"model.vocab_size={cfg.model.vocab_size} but the train split has {len(vocab)} glosses "
                          f"(with specials); set model.vocab_size=0 to take it from the data")
    return dataclasses.replace(cfg.model, vocab_size=len(vocab), glosses=tuple(vocab.tokens))


class TwoStreamTask(Task):
    def __init__(self, cfg: TwoStreamConfig):
        super().__init__()
        self.cfg = cfg
        model_cfg = resolve_model_config(cfg)
        self.model = build_model(model_cfg)
        self.vocab_tokens = list(model_cfg.glosses)
        if cfg.init.s3d_rgb:
            load_kinetics_s3d(self.model, cfg.init.s3d_rgb)
        for stream in ("rgb", "keypoint"):
            folder = getattr(cfg.init, stream)
            if folder:
                if stream not in cfg.model.stream_names():
                    raise ConfigError(f"init.{stream}: the model has no {stream} stream (model.streams="
                                      f"{cfg.model.streams!r})")
                load_stage(self.model, folder, stream)
        self._val: dict[str, list[str]] = {}
        self._refs: list[str] = []

    def forward(self, batch) -> TwoStreamOutput:
        return self.model(batch["rgb"], batch["heatmaps"], batch["lengths"])

    def training_step(self, batch, ctx: StepContext) -> StepOutput:
        out = self(batch)
        loss, logs = twostream_loss(out, batch["gloss_ids"], batch["gloss_lengths"], self.cfg.model,
                                    batch.get("sample_weight"))
        return StepOutput(loss=loss, logs=logs)

    @torch.no_grad()
    def predict_sentences(self, batch, beam_size: int = 1) -> dict[str, list[str]]:
        """Gloss sentences of every head and of the ensemble (greedy), plus ``ensemble_beam<k>`` when
        ``beam_size`` > 1 (prefix beam search on the ensemble, the test-time decoder)."""
        out = self(batch)
        blank, tokens = self.cfg.model.blank, self.vocab_tokens
        result = {name: decode(head["logits"].float().log_softmax(-1), head["lengths"], tokens, blank=blank)
                  for name, head in out.heads.items()}
        result[ENSEMBLE] = decode(out.ensemble_log_probs, out.lengths, tokens, blank=blank)
        if beam_size > 1:
            result[f"{ENSEMBLE}_beam{beam_size}"] = decode(out.ensemble_log_probs, out.lengths, tokens, beam_size,
                                                           self.cfg.decode.collapse_twice, blank)
        return result

    def validation_step(self, batch, dataloader_idx: int = 0) -> None:
        for name, sents in self.predict_sentences(batch).items():
            self._val.setdefault(name, []).extend(sents)
        self._refs.extend(" ".join(g) for g in batch["gloss"])

    def validation_metrics(self) -> dict[str, float]:
        if not self._refs:
            return {}
        cleanup = self.cfg.decode.cleanup or None
        metrics = {f"wer_{name}": wer(self._refs, hyps, cleanup=cleanup).wer for name, hyps in self._val.items()}
        metrics["wer"] = metrics[f"wer_{ENSEMBLE}"]
        self._val, self._refs = {}, []
        return metrics

    def export_model(self) -> TwoStreamSLR:
        return self.model


def evaluate_split(task: TwoStreamTask, loader, cfg: TwoStreamConfig) -> dict[str, float]:
    """WER of every head (greedy) and of the ensemble (greedy, and beam search when beam_size > 1)."""
    task.eval()
    hyps: dict[str, list[str]] = {}
    refs: list[str] = []
    for batch in loader:
        for name, sents in task.predict_sentences(batch, cfg.decode.beam_size).items():
            hyps.setdefault(name, []).extend(sents)
        refs.extend(" ".join(g) for g in batch["gloss"])
    cleanup = cfg.decode.cleanup or None
    return {name: wer(refs, h, cleanup=cleanup).wer for name, h in hyps.items()}
