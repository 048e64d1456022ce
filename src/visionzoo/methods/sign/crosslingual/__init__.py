"""Improving Continuous Sign Language Recognition with Cross-Lingual Signs (Wei & Chen, ICCV 2023).

No official code exists; this is a reconstruction from the abstract and the spec (§4). `visionzoo train
crosslingual/tiny` runs the whole pipeline: per-language CSLR models -> forced-alignment sign dictionaries ->
ISLR on their union -> cross-lingual mapping -> joint CSLR training on target + relabelled auxiliary data.
"""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.sign.crosslingual.config import CrossLingualConfig
from visionzoo.methods.sign.crosslingual.islr_standin import crosslingual_keypoint_islr  # noqa: F401 (registers)
from visionzoo.methods.sign.crosslingual.task import JointCSLRTask, build_data, evaluate


def demo(args) -> None:
    """Run the tiny pipeline end to end on SynthSign and print the metrics."""
    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.trainer import fit

    root = "data/synthsign_xl_tiny" if args.data == "data/digits" else args.data  # the CLI's default is for slimclr
    spec, cfg, recipe = load_recipe("crosslingual/tiny", [f"data.root={root}/target", f"data.aux.root={root}/aux",
                                                          f"data.work_dir={root}/work"])
    result = fit(spec, cfg, args.out, recipe_name=recipe)
    for k, v in result.metrics.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


SPEC = register_method(MethodSpec(
    name="crosslingual",
    area="sign",
    paper="Improving Continuous Sign Language Recognition with Cross-Lingual Signs (ICCV 2023)",
    config_cls=CrossLingualConfig,
    build_task=JointCSLRTask,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="proxy reproduced with the stand-in CSLR (mapped auxiliary data beats target-only, 5 seeds); not with "
           "TwoStream-SLR as the CSLR at CPU scale",
    summary="sign dictionaries by CTC forced alignment, ISLR-based cross-lingual sign mapping, joint CSLR training",
    evaluate=evaluate,
    extra={"demo": demo},
))
