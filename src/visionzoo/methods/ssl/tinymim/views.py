"""TinyMIM's two views of one crop: the teacher sees the crop, the student the same crop with colour jitter."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from visionzoo.data.image_transforms import IMAGENET_MEAN, IMAGENET_STD, BatchAugment


class TeacherStudentCollate:
    """Collate uint8 ``(image, label)`` samples into ``((teacher_view, student_view), labels)``, batched.

    One random geometry per sample (``BatchAugment`` without its intensity changes) gives the shared crop;
    the student's copy then gets per-sample brightness / contrast jitter of strength ``jitter``.
    """

    def __init__(self, crop_scale: tuple[float, float] = (0.5, 1.0), jitter: float = 0.4,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.geometry = BatchAugment(scale=crop_scale, brightness=0.0, contrast=0.0, jitter_p=0.0, noise=0.0,
                                     mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        self.jitter = jitter
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __call__(self, samples):
        images = torch.stack([s[0] for s in samples])  # (B, C, H, W) uint8
        labels = torch.as_tensor([s[1] for s in samples])
        crop = self.geometry(images)  # (B, C, H, W) in [0, 1]
        B = crop.shape[0]
        b = 1 + self.jitter * (2 * torch.rand(B, 1, 1, 1) - 1)
        c = 1 + self.jitter * (2 * torch.rand(B, 1, 1, 1) - 1)
        mean = crop.mean(dim=(1, 2, 3), keepdim=True)
        jittered = (((crop - mean) * c + mean) * b).clamp(0, 1)
        return ((crop - self.mean) / self.std, (jittered - self.mean) / self.std), labels


class TeacherStudentViews:
    """Per-image (PIL) version for large images: RandomResizedCrop(bicubic) + flip shared, ColorJitter(0.4, 0.4,
    0.4) on the student's copy only (the official recipe)."""

    def __init__(self, size: int = 224, crop_scale: tuple[float, float] = (0.2, 1.0), jitter: float = 0.4):
        self.crop = v2.Compose([
            v2.RandomResizedCrop(size, scale=crop_scale, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
            v2.RandomHorizontalFlip(), v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
        ])
        self.jitter = v2.ColorJitter(jitter, jitter, jitter)
        self.normalize = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)

    def __call__(self, img):
        crop = self.crop(img)
        return self.normalize(crop), self.normalize(self.jitter(crop))
