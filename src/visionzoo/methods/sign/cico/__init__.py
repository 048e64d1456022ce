"""CiCo: domain-aware sign language retrieval via cross-lingual contrastive learning (CVPR 2023)."""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.sign.cico.model import CiCoConfig, CiCoTask, evaluate


def build_data(cfg: CiCoConfig):
    from visionzoo.methods.sign.cico.data import CiCoDataModule

    return CiCoDataModule(cfg)


def predict(args) -> None:
    from visionzoo.methods.sign.cico.predict import run_predict

    run_predict(args)


def predict_args(parser) -> None:
    from visionzoo.methods.sign.cico.predict import add_predict_args

    add_predict_args(parser)


def domain_adapt_args(parser) -> None:
    from visionzoo.methods.sign.cico.domain import add_args

    add_args(parser)


def domain_adapt(args) -> None:
    from visionzoo.methods.sign.cico.domain import run

    run(args)


def demo(args) -> None:
    from visionzoo.methods.sign.cico.proxy import run_demo

    run_demo(args)


SPEC = register_method(MethodSpec(
    name="cico",
    area="sign",
    paper="CiCo: Domain-Aware Sign Language Retrieval via Cross-Lingual Contrastive Learning (CVPR 2023)",
    config_cls=CiCoConfig,
    build_task=CiCoTask,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="implemented; proxy: domain-aware features help weakly, fine-grained similarity does not",
    summary="sign-video <-> text retrieval: fine-grained clip-word contrastive learning on fused I3D features",
    evaluate=evaluate,
    predict=predict,
    # domain_adapt: `python -m visionzoo.methods.sign.cico.domain {extract,adapt} --help` (features and the
    # pseudo-label fine-tune of the domain-aware encoder); the CLI has no generic hook for it yet
    extra={"predict_args": predict_args, "demo": demo, "domain_adapt_args": domain_adapt_args,
           "domain_adapt": domain_adapt},
))
