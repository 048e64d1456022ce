"""Image augmentation pipelines (torchvision.transforms.v2) used by the self-supervised methods."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_tensor() -> list:
    return [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]


def mocov2_augment(size: int, crop_scale: tuple[float, float] = (0.2, 1.0), blur: bool = True) -> v2.Compose:
    """MoCo v2: resized crop, colour jitter 0.4/0.4/0.4/0.1 (p .8), grayscale .2, blur .5, flip."""
    ops = [
        v2.RandomResizedCrop(size, scale=crop_scale, antialias=True),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
    ]
    if blur:
        k = max(3, (size // 10) | 1)
        ops.append(v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1, 2.0))], p=0.5))
    ops += [v2.RandomHorizontalFlip(), *_to_tensor(), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(ops)


def small_image_augment(size: int, crop_scale: tuple[float, float] = (0.5, 1.0)) -> v2.Compose:
    """For tiny glyph-like images (digits): no flips (a flipped 2 is not a 2), mild geometry, intensity, noise."""
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=crop_scale, ratio=(0.8, 1.25), antialias=True),
        v2.RandomAffine(degrees=12, translate=(0.08, 0.08)),
        v2.RandomApply([v2.ColorJitter(0.5, 0.5)], p=0.8),
        *_to_tensor(),
        v2.GaussianNoise(sigma=0.05, clip=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def eval_transform(size: int, resize: int | None = None) -> v2.Compose:
    """Resize (to ``resize``, default ``size * 8 / 7``, the 256/224 ratio) then centre crop ``size``."""
    resize = resize or size
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(size), *_to_tensor(),
                       v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


AUGMENTATIONS = {"mocov2": mocov2_augment, "small": small_image_augment}


class TwoViews:
    """Apply one random augmentation twice: the two views of contrastive learning."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, img):
        return self.transform(img), self.transform(img)


class BatchAugment:
    """Random resized crop + rotation + translation + intensity jitter + noise for a whole batch at once.

    For small images per-image PIL pipelines cost more than the network; here every sample draws its
    own parameters but all are applied with one ``affine_grid``/``grid_sample`` call. No flips (meant for
    glyph-like data such as digits, where a mirrored 2 is not a 2).
    """

    def __init__(self, scale: tuple[float, float] = (0.5, 1.0), degrees: float = 12.0, translate: float = 0.08,
                 brightness: float = 0.4, contrast: float = 0.4, jitter_p: float = 0.8, noise: float = 0.05,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.scale, self.degrees, self.translate = scale, degrees, translate
        self.brightness, self.contrast, self.jitter_p, self.noise = brightness, contrast, jitter_p, noise
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        # images: uint8 (B, C, H, W) -> normalised float (B, C, H, W)
        import math

        import torch.nn.functional as F

        x = images.float() / 255.0
        B = x.shape[0]

        def uniform(lo, hi):
            return lo + (hi - lo) * torch.rand(B, generator=generator)

        area = uniform(*self.scale)  # crop area fraction -> zoom factor sqrt(area)
        zoom = area.sqrt()
        angle = uniform(-self.degrees, self.degrees) * math.pi / 180
        tx, ty = uniform(-self.translate, self.translate) * 2, uniform(-self.translate, self.translate) * 2
        cos, sin = angle.cos() * zoom, angle.sin() * zoom
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        apply = (torch.rand(B, generator=generator) < self.jitter_p).float().view(B, 1, 1, 1)
        b = 1 + apply * uniform(-self.brightness, self.brightness).view(B, 1, 1, 1)
        c = 1 + apply * uniform(-self.contrast, self.contrast).view(B, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * c + mean) * b
        if self.noise > 0:
            x = x + self.noise * torch.randn(x.shape, generator=generator)
        x = x.clamp(0, 1)
        return (x - self.mean) / self.std


class TwoViewCollate:
    """Collate ``(uint8 image, label)`` samples into ``((view1, view2), labels)`` with a batched augment."""

    def __init__(self, augment: BatchAugment):
        self.augment = augment

    def __call__(self, samples):
        images = torch.stack([s[0] for s in samples])
        labels = torch.as_tensor([s[1] for s in samples])
        return (self.augment(images), self.augment(images)), labels


class NormalizeCollate:
    """Collate uint8 samples into a normalised float batch (evaluation, no augmentation)."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __call__(self, samples):
        images = torch.stack([s[0] for s in samples]).float() / 255.0
        return (images - self.mean) / self.std, torch.as_tensor([s[1] for s in samples])
