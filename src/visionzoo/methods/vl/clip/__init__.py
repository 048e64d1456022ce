"""CLIP: contrastive image-text pre-training (Radford et al., ICML 2021), the base of A-CLIP and CenterCLIP."""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.vl.clip.model import CLIPTask, CLIPTrainConfig, evaluate


def build_data(cfg: CLIPTrainConfig):
    from visionzoo.data.image_text import ImageTextDataModule
    from visionzoo.methods.vl.clip.model import ARCHS

    d, t = cfg.data, cfg.train
    arch = ARCHS[cfg.model.arch]()
    return ImageTextDataModule(d.root, t.batch_size, format=d.format, image_size=arch.vision.image_size,
                               context_length=arch.text.context_length, train_split=d.train_split,
                               val_split=d.val_split, labels=d.labels, seed=t.seed, num_workers=t.num_workers,
                               eval_batch_size=cfg.eval.batch_size)


SPEC = register_method(MethodSpec(
    name="clip",
    area="vl",
    paper="Learning Transferable Visual Models From Natural Language Supervision (Radford et al., ICML 2021)",
    config_cls=CLIPTrainConfig,
    build_task=CLIPTask,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="implemented",
    summary="symmetric InfoNCE image-text training; zero-shot classification and R@K retrieval",
    evaluate=evaluate,
))
