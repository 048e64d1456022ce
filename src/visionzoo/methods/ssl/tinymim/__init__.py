"""TinyMIM: distilling a MIM-pretrained ViT teacher into a smaller ViT through token relations (CVPR 2023)."""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.ssl.tinymim.model import TinyMIM, TinyMIMConfig, evaluate


def build_data(cfg: TinyMIMConfig):
    from visionzoo.data.image_datamodule import ImageFolderDataModule
    from visionzoo.data.image_transforms import NormalizeCollate, eval_transform
    from visionzoo.methods.ssl.tinymim.views import TeacherStudentCollate, TeacherStudentViews

    d, t = cfg.data, cfg.train
    if d.augment == "batched":  # small images: decode once, augment whole batches
        return ImageFolderDataModule(d.root, t.batch_size, in_memory_size=d.image_size,
                                     train_collate=TeacherStudentCollate((d.crop_min_scale, 1.0), d.jitter),
                                     eval_collate=NormalizeCollate(), seed=t.seed, num_workers=t.num_workers)
    return ImageFolderDataModule(d.root, t.batch_size,
                                 train_transform=TeacherStudentViews(d.image_size, (d.crop_min_scale, 1.0), d.jitter),
                                 eval_transform=eval_transform(d.image_size, int(d.image_size * 8 / 7)),
                                 seed=t.seed, num_workers=t.num_workers)


SPEC = register_method(MethodSpec(
    name="tinymim",
    area="ssl",
    paper="TinyMIM: An Empirical Study of Distilling MIM Pre-trained Models (CVPR 2023)",
    config_cls=TinyMIMConfig,
    build_task=TinyMIM,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="proxy partly reproduced",
    summary="a small ViT pre-trained by matching a frozen MAE teacher's Q-K and V-V token relations",
    evaluate=evaluate,
))
