"""DeepMIM: deep supervision for masked image modeling (WACV 2025), built on the MAE base."""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.ssl.deepmim.model import DeepMIMConfig, build_task, evaluate


def build_data(cfg: DeepMIMConfig):
    from visionzoo.methods.ssl.mae import build_image_data

    return build_image_data(cfg.data, cfg.train)


SPEC = register_method(MethodSpec(
    name="deepmim",
    area="ssl",
    paper="DeepMIM: Deep Supervision for Masked Image Modeling (Ren et al., WACV 2025)",
    config_cls=DeepMIMConfig,
    build_task=build_task,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="implemented; proxy effect not reproduced",
    summary="MAE with an independent decoder on intermediate blocks (6/8/10/12 of ViT-B), losses summed",
    evaluate=evaluate,
))
