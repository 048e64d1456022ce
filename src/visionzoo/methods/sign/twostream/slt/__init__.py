"""TwoStream-SLT: sign language translation on top of TwoStream-SLR (Chen et al., NeurIPS 2022).

Stages (recipes ``g2t_*`` then ``s2t_*``): Gloss2Text pretraining of mBART; feature extraction from a trained
TwoStream-SLR run (``features.py``); one Sign2Text network per head (``sign.stream=rgb|keypoint|joint``);
multi-source ensemble beam search over the three (``ensemble.py``).
"""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.sign.twostream.slt.task import SLTDataModule, SLTTask, TwoStreamSLTConfig, evaluate


def predict(args) -> None:
    from visionzoo.methods.sign.twostream.slt.predict import run_predict

    run_predict(args)


def predict_args(parser) -> None:
    from visionzoo.methods.sign.twostream.slt.predict import add_predict_args

    add_predict_args(parser)


SPEC = register_method(MethodSpec(
    name="twostream-slt",
    area="sign",
    paper="Two-Stream Network for Sign Language Recognition and Translation (Chen et al., NeurIPS 2022), SLT part",
    config_cls=TwoStreamSLTConfig,
    build_task=SLTTask,
    build_data=SLTDataModule,
    recipes_dir=Path(__file__).parent / "recipes",
    status="proxy reproduced on the mean (ensemble >= best single network, BLEU-4, 6 seeds)",
    summary="Gloss2Text-pretrained mBART + per-stream Sign2Text networks, multi-source ensemble beam search",
    evaluate=evaluate,
    predict=predict,
    extra={"predict_args": predict_args},
))
