"""NLA-SLR: Natural Language-Assisted Sign Language Recognition (Zuo, Wei, Mak; CVPR 2023)."""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.sign.nla_slr.task import NLASLRConfig, build_data, build_task, evaluate


def predict_args(parser) -> None:
    parser.description = ("Classify an isolated sign video: MediaPipe Holistic keypoints -> COCO-WholeBody-133 -> "
                          "the 63-point subset -> heatmaps; prints the top-5 glosses with probabilities.")
    parser.add_argument("video", help="a video file (mp4/webm/avi) or a folder of frames")
    parser.add_argument("--model", required=True, help="a run folder (RUN, uses RUN/model) or a pretrained folder")
    parser.add_argument("--crops", choices=["central", "3x_pad"], default="3x_pad",
                        help="test-time temporal crops (3x_pad: start, central and end windows averaged)")
    parser.add_argument("--ensemble", choices=["ensemble_last", "ensemble_all"], default="ensemble_last")
    parser.add_argument("--top", type=int, default=5, help="how many glosses to print")


def predict(args) -> None:
    from visionzoo.methods.sign.nla_slr.predict import run_predict

    run_predict(args)


SPEC = register_method(MethodSpec(
    name="nla-slr",
    area="sign",
    paper="Natural Language-Assisted Sign Language Recognition (Zuo, Wei, Mak; CVPR 2023)",
    config_cls=NLASLRConfig,
    build_task=build_task,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="implemented; proxy: mechanism partly reproduced, no accuracy gain",
    summary="VKNet (4 S3D streams) + language-aware label smoothing + inter-modality mixup for isolated SLR",
    evaluate=evaluate,
    predict=predict,
    extra={"predict_args": predict_args},
))
