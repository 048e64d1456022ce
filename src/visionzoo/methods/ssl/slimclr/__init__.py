"""SlimCLR: slimmable networks for contrastive self-supervised learning (IJCV 2024)."""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.ssl.slimclr.model import SlimCLR, SlimCLRConfig, evaluate


def build_data(cfg: SlimCLRConfig):
    from visionzoo.data.image_datamodule import ImageFolderDataModule
    from visionzoo.data.image_transforms import (BatchAugment, NormalizeCollate, TwoViewCollate, TwoViews,
                                                 eval_transform, mocov2_augment)

    d, t = cfg.data, cfg.train
    if d.augment == "batched":  # small images: decode once, augment whole batches
        augment = TwoViewCollate(BatchAugment(scale=(d.crop_min_scale, 1.0)))
        return ImageFolderDataModule(d.root, t.batch_size, in_memory_size=d.image_size, train_collate=augment,
                                     eval_collate=NormalizeCollate(), seed=t.seed, num_workers=t.num_workers)
    augment = TwoViews(mocov2_augment(d.image_size, crop_scale=(d.crop_min_scale, 1.0)))
    return ImageFolderDataModule(d.root, t.batch_size, train_transform=augment,
                                 eval_transform=eval_transform(d.image_size, int(d.image_size * 8 / 7)),
                                 seed=t.seed, num_workers=t.num_workers)


def predict(args) -> None:
    from visionzoo.methods.ssl.slimclr.predict import run_predict

    run_predict(args)


def predict_args(parser) -> None:
    parser.description = "Classify images by k-NN against a labelled ImageFolder, at every width of the model."
    parser.add_argument("inputs", nargs="+", help="images or folders of images")
    parser.add_argument("--model", required=True, help="a pretrained folder (RUN/model)")
    parser.add_argument("--bank", required=True, help="labelled ImageFolder to vote with (e.g. data/digits/train)")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=16, dest="image_size")


def demo(args) -> None:
    from visionzoo.methods.ssl.slimclr.demo import run_demo

    run_demo(args)


def convert_args(parser) -> None:
    parser.description = ("Convert an official SlimCLR checkpoint (*.pth.tar, MoCo v2 layout) into a pretrained "
                          "folder (config.json + model.safetensors) loadable with visionzoo.from_pretrained.")
    parser.add_argument("src", help="official checkpoint, e.g. slimclr_mocov2_ep200.pth.tar")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--encoder", choices=["query", "key"], default="query")
    parser.add_argument("--head-dim", type=int, default=128, dest="head_dim")


def convert(args) -> None:
    from visionzoo.core.hub import load_state_dict_strict, save_pretrained
    from visionzoo.core.registry import create_model
    from visionzoo.engine.checkpoint_io import load_training_checkpoint
    from visionzoo.nn.slimmable import convert_official_slimclr_state_dict

    checkpoint = load_training_checkpoint(args.src)
    state = convert_official_slimclr_state_dict(checkpoint, encoder=args.encoder)
    encoder = {k: v for k, v in state.items() if k.startswith(("backbone.", "head."))}
    n_widths = len({k.split(".")[3] for k in encoder if k.startswith("backbone.bn1.bn.")})
    widths = (1.0, 0.75, 0.5, 0.25)[:n_widths]  # the official width list, widest first
    model = create_model("slimclr_resnet50", widths=widths, head_dim=args.head_dim)
    load_state_dict_strict(model, encoder, args.src)
    save_pretrained(model, args.out, extra={"method": "slimclr", "converted_from": str(args.src)})
    print(f"wrote {args.out} (widths {list(widths)})")


SPEC = register_method(MethodSpec(
    name="slimclr",
    area="ssl",
    paper="SlimCLR: Slimmable Networks for Contrastive Self-supervised Learning (IJCV 2024)",
    config_cls=SlimCLRConfig,
    build_task=SlimCLR,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="proxy reproduced",
    summary="one MoCo v2 run trains a weight-sharing slimmable ResNet usable at every width",
    evaluate=evaluate,
    predict=predict,
    extra={"predict_args": predict_args, "demo": demo, "convert_args": convert_args, "convert": convert},
))
