"""``visionzoo predict slimclr``: classify images by k-NN against a labelled ImageFolder, at every width."""

from __future__ import annotations

from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from visionzoo.core.errors import DataError
from visionzoo.core.hub import from_pretrained
from visionzoo.data.image_transforms import eval_transform
from visionzoo.data.imagefolder import IMAGE_EXTENSIONS, ImageFolder, load_image
from visionzoo.metrics.knn import knn_predict


def run_predict(args) -> None:
    model = from_pretrained(args.model)
    size = args.image_size
    tf = eval_transform(size)
    bank = ImageFolder(args.bank, transform=tf)
    paths: list[Path] = []
    for item in args.inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.is_file():
            paths.append(p)
        else:
            raise DataError(p, "input image or folder not found")
    images = torch.stack([tf(load_image(p)) for p in paths])
    widths = model.backbone.widths
    bank_x = torch.stack([bank[i][0] for i in range(len(bank))])
    bank_y = torch.as_tensor(bank.targets)
    table = Table(title=f"k-NN (k={args.k}) predictions against {args.bank}")
    table.add_column("image", overflow="fold")
    for w in widths:
        table.add_column(f"width {w:g}")
    preds = {}
    with torch.no_grad():
        for w in widths:
            scores = knn_predict(model.backbone(bank_x, width=w), bank_y, model.backbone(images, width=w), k=args.k,
                                 num_classes=len(bank.classes))
            preds[w] = scores.argmax(1)
    for i, p in enumerate(paths):
        table.add_row(f"{p.parent.name}/{p.name}", *[bank.classes[int(preds[w][i])] for w in widths])
    Console().print(table)
