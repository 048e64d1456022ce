"""Static catalogue of the twenty research methods visionzoo implements.

This module is a fixed, import-cheap list: one :class:`CatalogEntry` per paper, giving its
registry name, area, short title, venue, arXiv id, task, one headline number and its folder
under ``methods/``. It says nothing about whether a method is built yet. Methods that are
implemented also register themselves in the method registry (``visionzoo.core.registry``),
and the registry gives their live status; ``visionzoo list`` and the README join the two.
``paper_numbers`` quotes only what the project specs (``shared/specs``) or the paper
abstracts confirm. Numbers the specs mark as recalled and unchecked are labelled
"unverified". Where neither source gives a number, the entry says "qualitative only".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AREAS", "CATALOG", "CatalogEntry", "get_entry"]

#: Areas in display order; they match the folder names under ``methods/``.
AREAS: tuple[str, ...] = ("sign", "vl", "ssl", "video", "pose", "detection", "generation")


@dataclass(frozen=True)
class CatalogEntry:
    """One paper: what it is, where it lives and its headline result."""

    name: str  # registry name
    area: str  # sign | vl | ssl | video | pose | detection | generation
    title: str  # short paper title
    venue: str  # e.g. "CVPR 2023"
    arxiv: str  # arXiv id, or "" if none is known
    task: str  # a few words
    paper_numbers: str  # one short headline result, as verified in the spec/abstract
    folder: str  # "methods/<area>/<paper_folder>"


CATALOG: tuple[CatalogEntry, ...] = (
    # ------------------------------------------------------------------ sign language
    CatalogEntry(
        name="twostream",
        area="sign",
        title="TwoStream-SLR/SLT: two-stream network for sign language recognition and translation",
        venue="NeurIPS 2022",
        arxiv="2211.01367",
        task="continuous sign recognition + translation",
        paper_numbers="Phoenix-2014T test WER 19.3 (SLR), BLEU-4 28.95 (SLT)",
        folder="methods/sign/twostream",
    ),
    CatalogEntry(
        name="nla-slr",
        area="sign",
        title="NLA-SLR: natural language-assisted sign language recognition",
        venue="CVPR 2023",
        arxiv="2303.12080",
        task="isolated sign recognition",
        paper_numbers="WLASL-2000 per-instance top-1 61.26; MSASL-1000 73.80 (README checkpoints)",
        folder="methods/sign/nla_slr",
    ),
    CatalogEntry(
        name="cico",
        area="sign",
        title="CiCo: domain-aware sign language retrieval via cross-lingual contrastive learning",
        venue="CVPR 2023",
        arxiv="2303.12793",
        task="sign video <-> text retrieval",
        paper_numbers="How2Sign R@1 T2V 56.6 / V2T 51.6; Phoenix-2014T 69.5 / 70.2",
        folder="methods/sign/cico",
    ),
    CatalogEntry(
        name="crosslingual",
        area="sign",
        title="Improving continuous sign language recognition with cross-lingual signs",
        venue="ICCV 2023",
        arxiv="2308.10809",
        task="continuous sign recognition with cross-lingual auxiliary data",
        paper_numbers="qualitative only (abstract: SOTA on Phoenix-2014/2014T; WERs not read)",
        folder="methods/sign/crosslingual",
    ),
    # ---------------------------------------------------------------- vision-language
    CatalogEntry(
        name="aclip",
        area="vl",
        title="A-CLIP: attentive mask CLIP",
        venue="ICCV 2023",
        arxiv="2212.08653",
        task="CLIP pre-training with attentive token removal",
        paper_numbers="YFCC-15M ViT-B/16: ImageNet-1k zero-shot 43.9; Flickr30K I2T/T2I 62.7/42.1",
        folder="methods/vl/aclip",
    ),
    CatalogEntry(
        name="centerclip",
        area="vl",
        title="CenterCLIP: token clustering for efficient text-video retrieval",
        venue="SIGIR 2022",
        arxiv="2205.00823",
        task="text-video retrieval",
        paper_numbers="MSR-VTT 1k-A T2V R@1 48.4 (B/16); ActivityNet training memory -35%",
        folder="methods/vl/centerclip",
    ),
    CatalogEntry(
        name="loupe",
        area="vl",
        title="LOUPE: fine-grained semantically aligned vision-language pre-training",
        venue="NeurIPS 2022",
        arxiv="2208.02515",
        task="vision-language pre-training (region-phrase alignment)",
        paper_numbers="qualitative only (abstract: SOTA zero-shot image-text retrieval)",
        folder="methods/vl/loupe",
    ),
    CatalogEntry(
        name="san",
        area="vl",
        title="SAN: side adapter network for open-vocabulary semantic segmentation",
        venue="CVPR 2023",
        arxiv="2302.12242",
        task="open-vocabulary semantic segmentation",
        paper_numbers="ADE-150 mIoU 27.56 (ViT-B/16), 31.93 (ViT-L/14), released eval logs",
        folder="methods/vl/san",
    ),
    # ------------------------------------------------------- self-supervised learning
    CatalogEntry(
        name="deepmim",
        area="ssl",
        title="DeepMIM: deep supervision for masked image modeling",
        venue="WACV 2025",
        arxiv="2303.08817",
        task="masked image modeling pre-training",
        paper_numbers="ImageNet-1K ViT-B fine-tune top-1 84.2 (MAE target), 85.6 (CLIP target)",
        folder="methods/ssl/deepmim",
    ),
    CatalogEntry(
        name="tinymim",
        area="ssl",
        title="TinyMIM: distilling MIM pre-trained models into small ViTs",
        venue="CVPR 2023",
        arxiv="2301.01296",
        task="distilling MIM models into small ViTs",
        paper_numbers="ImageNet-1K top-1 ViT-T 75.8 / S 83.0 / B 85.0; ADE20K 52.2 mIoU (ViT-B)",
        folder="methods/ssl/tinymim",
    ),
    CatalogEntry(
        name="slimclr",
        area="ssl",
        title="SlimCLR: slimmable networks for contrastive self-supervised learning",
        venue="IJCV 2024",
        arxiv="2209.15525",
        task="contrastive SSL of slimmable (multi-width) networks",
        paper_numbers="qualitative only (result tables not read)",
        folder="methods/ssl/slimclr",
    ),
    # -------------------------------------------------------------------------- video
    CatalogEntry(
        name="twoshot-vos",
        area="video",
        title="Two-shot video object segmentation",
        venue="CVPR 2023",
        arxiv="2303.12078",
        task="semi-supervised VOS from two labelled frames per video",
        paper_numbers="DAVIS-2017 val J&F 85.1; YouTube-VOS 2019 val 82.7 (2-shot STCN)",
        folder="methods/video/twoshot_vos",
    ),
    CatalogEntry(
        name="utt",
        area="video",
        title="UTT: unified transformer tracker for single and multiple object tracking",
        venue="CVPR 2022",
        arxiv="2203.15175",
        task="single + multiple object tracking",
        paper_numbers="MOT16 test MOTA 74.22, IDF1 63.36 (UTT-FairMOT)",
        folder="methods/video/utt",
    ),
    CatalogEntry(
        name="tel",
        area="video",
        title="Temporal emotion localization in videos",
        venue="ACM MM 2022",
        arxiv="2208.01954",
        task="weakly supervised temporal emotion localization",
        paper_numbers="qualitative only",
        folder="methods/video/tel",
    ),
    CatalogEntry(
        name="visa",
        area="video",
        title="VISA: compositional temporal grounding with structured variational cross-graph",
        venue="CVPR 2022",
        arxiv="2203.13049",
        task="compositional temporal grounding",
        paper_numbers="unverified (spec's Charades-CG / ActivityNet-CG numbers are recalled)",
        folder="methods/video/visa",
    ),
    CatalogEntry(
        name="ahgn",
        area="video",
        title="AHGN: adaptive hierarchical graph reasoning for video-and-language inference",
        venue="ICCV 2021",
        arxiv="2107.12270",
        task="video-and-language inference (VIOLIN)",
        paper_numbers="qualitative only (abstract: beats VIOLIN baseline by a large margin)",
        folder="methods/video/ahgn",
    ),
    # --------------------------------------------------------------------------- pose
    CatalogEntry(
        name="afe-cnn",
        area="pose",
        title="AFE-CNN: 3D skeleton action recognition with action feature enhancement",
        venue="Neurocomputing 2022",
        arxiv="2208.03444",
        task="skeleton-based action recognition",
        paper_numbers="qualitative only (NTU-60/120, UTKinect tables not read)",
        folder="methods/pose/afe_cnn",
    ),
    CatalogEntry(
        name="posegu",
        area="pose",
        title="PoseGU: 3D human pose estimation with a novel human pose generator",
        venue="arXiv 2022",
        arxiv="2207.03618",
        task="2D-to-3D pose lifting from a small seed set",
        paper_numbers="MPI-INF-3DHP PCK 86.3, AUC 55.1, MPJPE 79.1 (Papers-with-Code)",
        folder="methods/pose/posegu",
    ),
    # ---------------------------------------------------------------------- detection
    CatalogEntry(
        name="vdd",
        area="detection",
        title="VDD: vector-decomposed disentanglement for domain-invariant object detection",
        venue="ICCV 2021",
        arxiv="2108.06685",
        task="domain-adaptive object detection",
        paper_numbers="unverified: Cityscapes->Foggy mAP 37.9 vs 34.3 (SW host, 3rd-party summary)",
        folder="methods/detection/vdd",
    ),
    # --------------------------------------------------------------------- generation
    CatalogEntry(
        name="anifacegan",
        area="generation",
        title="AniFaceGAN: animatable 3D-aware face image generation",
        venue="NeurIPS 2022",
        arxiv="2210.06465",
        task="animatable 3D-aware face generation",
        paper_numbers="qualitative only",
        folder="methods/generation/anifacegan",
    ),
)

_BY_NAME: dict[str, CatalogEntry] = {entry.name: entry for entry in CATALOG}


def get_entry(name: str) -> CatalogEntry | None:
    """Return the catalogue entry registered as ``name``, or ``None`` if there is none."""
    return _BY_NAME.get(name)
