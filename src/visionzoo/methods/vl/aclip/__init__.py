"""A-CLIP: Attentive Mask CLIP (Yang et al., ICCV 2023): CLIP on the half of each image's tokens an EMA encoder attends to."""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.vl.aclip.model import ACLIPTask, ACLIPTrainConfig, evaluate


def build_data(cfg: ACLIPTrainConfig):
    from visionzoo.data.image_text import ImageTextDataModule
    from visionzoo.methods.vl.aclip.data import ACLIPViews, eval_transform
    from visionzoo.methods.vl.aclip.model import ARCHS

    d, t = cfg.data, cfg.train
    arch = ARCHS[cfg.model.arch]()
    size = arch.vision.img_size
    return ImageTextDataModule(d.root, t.batch_size, format=d.format, image_size=size,
                               context_length=arch.text.context_length, train_split=d.train_split,
                               val_split=d.val_split, labels=d.labels, seed=t.seed, num_workers=t.num_workers,
                               eval_batch_size=cfg.eval.batch_size,
                               train_transform=ACLIPViews(size, (d.crop_min_scale, 1.0), d.color_augment),
                               eval_transform=eval_transform(size))


SPEC = register_method(MethodSpec(
    name="aclip",
    area="vl",
    paper="Attentive Mask CLIP (Yang et al., ICCV 2023)",
    config_cls=ACLIPTrainConfig,
    build_task=ACLIPTask,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="proxy partly reproduced (token selection yes, accuracy gain no)",
    summary="CLIP on the image tokens an EMA encoder's CLS attention ranks highest, plus SimCLR and BYOL terms",
    evaluate=evaluate,
))
