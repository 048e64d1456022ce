"""TwoStream-SLR: two-stream (RGB + keypoint heatmaps) continuous sign recognition (NeurIPS 2022).

The SLT (translation) part lives in the ``slt`` subpackage.
"""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.sign.twostream.model import TwoStreamSLR, TwoStreamSLRConfig, twostream_slr
from visionzoo.methods.sign.twostream.task import TwoStreamConfig, TwoStreamTask

__all__ = ["TwoStreamConfig", "TwoStreamSLR", "TwoStreamSLRConfig", "TwoStreamTask", "twostream_slr"]


def build_data(cfg: TwoStreamConfig):
    from visionzoo.data.sign.vocab import Vocabulary
    from visionzoo.methods.sign.twostream.data import TwoStreamDataModule

    vocab = Vocabulary(list(cfg.model.glosses), kind="gloss", unk="map") if cfg.model.glosses else None
    return TwoStreamDataModule(cfg.data, cfg.train.batch_size, seed=cfg.train.seed,
                               num_workers=cfg.train.num_workers, vocab=vocab)


def evaluate(task: TwoStreamTask, datamodule, cfg: TwoStreamConfig) -> dict[str, float]:
    """WER per head and for the ensemble (greedy and beam search) on each of ``decode.splits``."""
    from visionzoo.methods.sign.twostream.task import evaluate_split

    metrics = {}
    for split in cfg.decode.splits:
        for name, value in evaluate_split(task, datamodule.eval_loader(split), cfg).items():
            metrics[f"{split}_wer_{name}"] = value
    return metrics


def predict(args) -> None:
    from visionzoo.methods.sign.twostream.predict import run_predict

    run_predict(args)


def predict_args(parser) -> None:
    from visionzoo.methods.sign.twostream.predict import add_predict_args

    add_predict_args(parser)


def convert_args(parser) -> None:
    from visionzoo.methods.sign.twostream.convert import add_convert_args

    add_convert_args(parser)


def convert(args) -> None:
    from visionzoo.methods.sign.twostream.convert import run_convert

    run_convert(args)


SPEC = register_method(MethodSpec(
    name="twostream",
    area="sign",
    paper="Two-Stream Network for Sign Language Recognition and Translation (NeurIPS 2022)",
    config_cls=TwoStreamConfig,
    build_task=TwoStreamTask,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="proxy reproduced (two-stream beats both single streams, 5 seeds)",
    summary="RGB + keypoint-heatmap S3D streams with lateral connections, sign pyramid, 7 CTC heads, "
            "self-distillation",
    evaluate=evaluate,
    predict=predict,
    extra={"predict_args": predict_args, "convert_args": convert_args, "convert": convert},
))
import visionzoo.methods.sign.twostream.slt  # noqa: E402,F401  (registers the translation method, twostream-slt)
