"""MAE: masked autoencoders are scalable vision learners (CVPR 2022), the shared masked-image-modeling base."""

from pathlib import Path

import torch

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.ssl.mae import finetune  # noqa: F401  (registers mae_vit_classifier)
from visionzoo.methods.ssl.mae.model import MAEConfig, build_task, evaluate


class AugmentCollate:
    """Collate uint8 ``(image, label)`` samples into one augmented, normalised batch (B, C, H, W) + labels."""

    def __init__(self, augment, hflip: bool = False):
        self.augment, self.hflip = augment, hflip

    def __call__(self, samples):
        images = self.augment(torch.stack([s[0] for s in samples]))
        if self.hflip:
            flip = torch.rand(images.shape[0]) < 0.5
            images[flip] = images[flip].flip(-1)
        return images, torch.as_tensor([s[1] for s in samples])


def build_image_data(data, train):
    """The ImageFolder data module of MAE-style recipes (``data``: mae.model.DataConfig or a same-shaped one)."""
    from visionzoo.data.image_datamodule import ImageFolderDataModule
    from visionzoo.data.image_transforms import BatchAugment, NormalizeCollate, eval_transform

    if data.in_memory:  # crop-zoom + small shift, no colour jitter or noise: MAE needs only crops (and flips)
        augment = BatchAugment(scale=(data.crop_min_scale, 1.0), degrees=0.0, translate=data.translate,
                               jitter_p=0.0, noise=0.0)
        return ImageFolderDataModule(data.root, train.batch_size, in_memory_size=data.image_size,
                                     train_collate=AugmentCollate(augment, data.hflip), eval_collate=NormalizeCollate(),
                                     seed=train.seed, num_workers=train.num_workers)
    from torchvision.transforms import v2

    from visionzoo.data.image_transforms import IMAGENET_MEAN, IMAGENET_STD

    ops = [v2.RandomResizedCrop(data.image_size, scale=(data.crop_min_scale, 1.0),
                                interpolation=v2.InterpolationMode.BICUBIC, antialias=True)]
    ops += [v2.RandomHorizontalFlip()] if data.hflip else []
    ops += [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return ImageFolderDataModule(data.root, train.batch_size, train_transform=v2.Compose(ops),
                                 eval_transform=eval_transform(data.image_size, int(data.image_size * 8 / 7)),
                                 seed=train.seed, num_workers=train.num_workers)


def build_data(cfg: MAEConfig):
    return build_image_data(cfg.data, cfg.train)


def demo(args) -> None:
    from visionzoo.methods.ssl.mae.demo import run_demo

    run_demo(args)


SPEC = register_method(MethodSpec(
    name="mae",
    area="ssl",
    paper="Masked Autoencoders Are Scalable Vision Learners (He et al., CVPR 2022)",
    config_cls=MAEConfig,
    build_task=build_task,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="implemented",
    summary="75% random patch masking, ViT encoder on visible patches, light decoder, normalised-pixel loss",
    evaluate=evaluate,
    extra={"demo": demo},
))
