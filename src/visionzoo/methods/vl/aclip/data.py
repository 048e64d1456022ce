"""A-CLIP's three views of an image (spec §1b): two online crops and one zoom-out crop for the EMA encoder.

The EMA crop covers the union box of the two online crops, enlarged at random towards the image border,
so every online patch has an EMA patch score to inherit. The crops' boxes travel with the batch; the
task maps the EMA score into each online crop with them. No flips: a flipped view would break the
box correspondence. (The official code builds the union's left edge from the second crop's *height*,
a typo; here it is the true union.)
"""

from __future__ import annotations

from typing import Callable

import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # A-CLIP normalises with ImageNet statistics, not CLIP's
IMAGENET_STD = (0.229, 0.224, 0.225)


def _randint(low: int, high: int) -> int:
    # inclusive [low, high] from torch's global RNG, which the engine seeds (and restores on resume)
    return int(torch.randint(low, high + 1, (1,)).item())


def union_zoom_out_box(boxes: list[tuple[int, int, int, int]], height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a box covering every box in ``boxes``, each edge pushed out at random
    towards the image border (uniformly between the union's edge and the border)."""
    top = min(b[0] for b in boxes)
    left = min(b[1] for b in boxes)
    bottom = max(b[0] + b[2] for b in boxes)
    right = max(b[1] + b[3] for b in boxes)
    top, left = _randint(0, top), _randint(0, left)
    bottom, right = _randint(bottom, height), _randint(right, width)
    return top, left, bottom - top, right - left


class ACLIPViews:
    """PIL image -> (view_1, view_2, ema_view (3, S, S) each, boxes (3, 4) float: top, left, h, w)."""

    def __init__(self, size: int, crop_scale: tuple[float, float] = (0.5, 1.0), color_augment: bool = True):
        from torchvision.transforms import v2

        self.size, self.crop_scale = size, tuple(crop_scale)
        self.ratio = (3 / 4, 4 / 3)
        blur_kernel = max(3, (size // 10) | 1)  # odd, ~10% of the side as in SimCLR
        online: list[Callable] = []
        if color_augment:
            online += [
                v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
                v2.RandomGrayscale(p=0.2),
                v2.RandomApply([v2.GaussianBlur(blur_kernel, sigma=(0.1, 2.0))], p=0.1),
                v2.RandomSolarize(threshold=128, p=0.2),
            ]
        finish = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        self.online = v2.Compose([*online, *finish])
        self.plain = v2.Compose(finish)

    def crop(self, img: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
        from torchvision.transforms.v2 import functional as TF

        top, left, h, w = box
        return TF.resized_crop(img, top, left, h, w, [self.size, self.size], antialias=True)

    def __call__(self, img: Image.Image):
        from torchvision.transforms import RandomResizedCrop

        width, height = img.size
        boxes = [tuple(int(v) for v in RandomResizedCrop.get_params(img, list(self.crop_scale), list(self.ratio)))
                 for _ in range(2)]
        boxes.append(union_zoom_out_box(boxes, height, width))
        view1, view2 = (self.online(self.crop(img, b)) for b in boxes[:2])
        ema_view = self.plain(self.crop(img, boxes[2]))
        return view1, view2, ema_view, torch.tensor(boxes, dtype=torch.float32)


def eval_transform(size: int) -> Callable[[Image.Image], torch.Tensor]:
    """A-CLIP's test preprocessing: resize the short side, centre crop, ImageNet normalisation."""
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), v2.Resize(size, antialias=True), v2.CenterCrop(size),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
