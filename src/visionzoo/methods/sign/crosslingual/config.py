"""The recipe of the cross-lingual CSLR pipeline (spec §4b): data, the three stages, the joint training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from visionzoo.engine.config import OptimConfig, TrainConfig


@dataclass
class CorpusConfig:
    """One continuous corpus read by ``visionzoo.data.sign`` (phoenix2014t | phoenix2014 | csl-daily)."""

    root: str = ""
    dataset: str = "phoenix2014t"
    synthsign: dict = field(default_factory=dict)  # when non-empty and root is missing: write SynthSign with these


@dataclass
class DataConfig:
    root: str = "data/phoenix2014t"  # the target corpus (what `visionzoo train` checks and the CLI reports)
    dataset: str = "phoenix2014t"
    synthsign: dict = field(default_factory=dict)
    aux: CorpusConfig = field(default_factory=lambda: CorpusConfig(root="data/csl-daily", dataset="csl-daily"))
    work_dir: str = ""  # stage outputs (models, dictionaries, mapping, joint corpus); "" = <root>-crosslingual


@dataclass
class CSLRConfig:
    """The CSLR method used for the per-language models (dictionary step) and the joint model."""

    # recipe: a registered CSLR method run by `recipe` (TwoStream-SLR); standin: the keypoint CTC model of
    # cslr_standin (local receptive field, CPU runs); the overrides below then apply to its config
    backend: Literal["recipe", "standin"] = "recipe"
    recipe: str = "twostream/tiny"
    overrides: list[str] = field(default_factory=list)  # applied to every CSLR run (per language and joint)
    language_overrides: list[str] = field(default_factory=list)  # only the per-language (dictionary) models
    temporal_stride: int = 4  # input frames per output step of the CTC head (S3D block 4)
    decode: Literal["greedy", "beam"] = "beam"
    beam_size: int = 5


@dataclass
class DictionaryConfig:
    boundaries: Literal["official", "midpoint"] = "official"  # segment refinement (dictionary.refine_segments)
    widen: int = 2  # a one-step segment becomes 2 * widen + 1 frames (official: 5)
    holdout_every: int = 10  # per gloss, clip 1 (mod 10) -> val, clip 6 -> test
    write_videos: bool = True  # mp4 clips (NLA-SLR reads them); False: keypoints only


@dataclass
class ISLRConfig:
    backend: Literal["nla-slr", "standin"] = "nla-slr"
    recipe: str = "nla-slr/tiny"
    overrides: list[str] = field(default_factory=list)
    standin_epochs: int = 30


@dataclass
class MappingConfig:
    enabled: bool = True  # False: the naive union (auxiliary glosses never mapped)
    tau: float = 0.5
    mutual: bool = False
    normalise: bool = True  # renormalise each clip's target-class probabilities before averaging
    # a diagnostic upper bound: SynthSign's planted shared signs as the mapping (no dictionaries, no ISLR)
    oracle: bool = False


@dataclass
class JointConfig:
    use_aux: bool = True  # False: the target-only baseline through the same code path
    unmapped: Literal["extra", "drop", "other"] = "extra"
    aux_ratio: float = 1.0  # auxiliary sentences per target training sentence; -1 = all once
    # the loss weight of an auxiliary sentence (every CTC / distillation term of it); a target sentence weighs 1
    aux_loss_weight: float = 1.0


@dataclass
class EvalConfig:
    cleanup: str | None = None  # metrics.wer cleanup rules: phoenix2014 | phoenix2014t | None


@dataclass
class CrossLingualConfig:
    data: DataConfig = field(default_factory=DataConfig)
    cslr: CSLRConfig = field(default_factory=CSLRConfig)
    dictionary: DictionaryConfig = field(default_factory=DictionaryConfig)
    islr: ISLRConfig = field(default_factory=ISLRConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    joint: JointConfig = field(default_factory=JointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # the joint CSLR training (the outer `visionzoo train` run); the per-language models use the CSLR recipe's own
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
