"""CenterCLIP: token clustering for efficient text-video retrieval (Zhao et al., SIGIR 2022)."""

from pathlib import Path

from visionzoo.core.registry import MethodSpec, register_method
from visionzoo.methods.vl.centerclip.model import CenterCLIPTask, CenterCLIPTrainConfig, evaluate


def build_data(cfg: CenterCLIPTrainConfig):
    from visionzoo.data.video_text import VideoTextDataModule
    from visionzoo.methods.vl.clip.model import ARCHS

    d, t = cfg.data, cfg.train
    arch = ARCHS[cfg.model.arch]()
    options = {"videos": d.videos}
    if d.dataset == "msrvtt":
        options["train_csv"] = d.train_csv
    return VideoTextDataModule(d.dataset, d.root, t.batch_size, num_frames=d.num_frames,
                               image_size=arch.vision.image_size,
                               context_length=min(d.context_length, arch.text.context_length),
                               train_split=d.train_split, val_split=d.val_split, seed=t.seed,
                               num_workers=t.num_workers, eval_batch_size=cfg.eval.batch_size, cache=d.cache,
                               check_videos=d.check_videos, reader_options=options)


def predict_args(parser) -> None:
    parser.description = "Rank the videos of a folder by similarity to a text query with a trained CenterCLIP."
    parser.add_argument("--model", required=True, help="a run folder (RUN or RUN/model) or a pretrained folder")
    parser.add_argument("--query", required=True, action="append", help="text query (repeat for several)")
    parser.add_argument("--videos", required=True, help="folder of videos (.mp4/.avi/.webm/...)")
    parser.add_argument("--frames", type=int, default=12, help="frames sampled per video")
    parser.add_argument("--top", type=int, default=5, help="how many videos to list per query")
    parser.add_argument("--context-length", type=int, default=32, dest="context_length")


def predict(args) -> None:
    from visionzoo.methods.vl.centerclip.predict import run_predict

    run_predict(args)


def convert_args(parser) -> None:
    parser.description = ("Convert an official CenterCLIP / CLIP4Clip checkpoint (ckpt.best.pth.tar; OpenAI CLIP keys "
                          "under 'clip.') or an OpenAI CLIP state dict into a pretrained folder.")
    parser.add_argument("src", help="checkpoint file (.pth.tar / .pt / .safetensors)")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--prefix", default="clip.", help="key prefix of the CLIP weights ('' for plain CLIP)")
    parser.add_argument("--mode", default="kmedoids", help="clustering mode to store with the model")
    parser.add_argument("--after-block", type=int, default=6, dest="after_block")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--k", type=int, default=49)


def convert(args) -> None:
    from visionzoo.core.hub import save_pretrained
    from visionzoo.core.registry import create_model
    from visionzoo.nn.clip import config_from_openai_state_dict, load_openai_state_dict, read_state_dict

    sd = read_state_dict(args.src)
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    if args.prefix:
        sd = {k[len(args.prefix):]: v for k, v in sd.items() if k.startswith(args.prefix)}
    cfg = config_from_openai_state_dict(sd, str(args.src))
    arch = {(32, 224): "vit_b32", (16, 224): "vit_b16"}.get((cfg.vision.patch_size, cfg.vision.image_size))
    if arch is None:
        from visionzoo.core.errors import CheckpointError

        raise CheckpointError(f"{args.src}: patch {cfg.vision.patch_size} at {cfg.vision.image_size} px is neither "
                              "ViT-B/32 nor ViT-B/16")
    cluster = {"mode": args.mode, "after_block": args.after_block, "segments": args.segments, "k": args.k}
    model = create_model("centerclip", arch=arch, cluster=cluster)
    load_openai_state_dict(sd, model=model.clip)
    save_pretrained(model, args.out, extra={"method": "centerclip", "converted_from": str(args.src)})
    print(f"wrote {args.out} ({arch}, cluster {cluster})")


SPEC = register_method(MethodSpec(
    name="centerclip",
    area="vl",
    paper="CenterCLIP: Token Clustering for Efficient Text-Video Retrieval (Zhao et al., SIGIR 2022)",
    config_cls=CenterCLIPTrainConfig,
    build_task=CenterCLIPTask,
    build_data=build_data,
    recipes_dir=Path(__file__).parent / "recipes",
    status="proxy reproduced (speed-up, memory, accuracy parity)",
    summary="CLIP4Clip meanP text-video retrieval; k-medoids token clustering per frame segment after block B",
    evaluate=evaluate,
    predict=predict,
    extra={"predict_args": predict_args, "convert_args": convert_args, "convert": convert},
))
