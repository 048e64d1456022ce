"""Official TwoStream-SLR checkpoint (``best.ckpt``, ``{'model_state': ...}``) -> our pretrained folder.

Key map (official prefix ``recognition_network.`` dropped; spec §1e):

=====================================================================  ==========================================
official                                                               ours
=====================================================================  ==========================================
visual_backbone_twostream.rgb_stream.backbone.base.<i>.*               backbone.rgb_stream.blocks.<b>.<layer>.*
visual_backbone_twostream.pose_stream.backbone.base.<i>.*              backbone.keypoint_stream.blocks.<b>.<layer>.*
visual_backbone_twostream.rgb_stream_lateral.<j>.conv.weight           backbone.laterals.<j+1>.keypoint_to_rgb.weight
visual_backbone_twostream.pose_stream_lateral.<j>.conv.weight          backbone.laterals.<j+1>.rgb_to_keypoint.weight
visual_backbone_twostream.{rgb,pose}_stream.pyramid.upsample_layers.*  pyramids.{rgb,keypoint}.upsample_layers.*
visual_head / visual_head_keypoint / visual_head_fuse .*               heads.rgb / heads.keypoint / heads.joint .*
visual_head_remain.<i> / visual_head_keypoint_remain.<i> .*            heads.rgb_aux<i+1> / heads.keypoint_aux<i+1> .*
=====================================================================  ==========================================

``base.<i>`` is the flat S3D layer index (``visionzoo.nn.s3d.LAYER_NAMES``); the heads' submodule names are
ours already. The heads' sinusoidal table (``pe.pe``) is a constant we recompute, so it is dropped.
Single-stream checkpoints (``visual_backbone.backbone.base.*`` + ``visual_head.*``) convert too, with
``--stream``. Any other key is an error naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from visionzoo.core.errors import CheckpointError
from visionzoo.nn.s3d import LAYER_NAMES

_BACKBONE = re.compile(r"^visual_backbone_twostream\.(rgb|pose)_stream\.backbone\.base\.(\d+)\.(.+)$")
_SINGLE = re.compile(r"^visual_backbone(?:_keypoint)?\.backbone\.base\.(\d+)\.(.+)$")
_LATERAL = re.compile(r"^visual_backbone_twostream\.(rgb|pose)_stream_lateral\.(\d+)\.conv\.weight$")
_PYRAMID = re.compile(r"^visual_backbone_twostream\.(rgb|pose)_stream\.pyramid\.(upsample_layers\.\d+\..+)$")
_HEAD = re.compile(r"^(visual_head(?:_keypoint|_fuse)?)(_remain\.(\d+))?\.(.+)$")
_HEADS = {"visual_head": "rgb", "visual_head_keypoint": "keypoint", "visual_head_fuse": "joint"}
_STREAM = {"rgb": "rgb", "pose": "keypoint"}


def _layer_key(stream: str, index: int, rest: str, key: str) -> str:
    if index >= len(LAYER_NAMES):
        raise CheckpointError(f"official TwoStream checkpoint: unexpected S3D layer index in key {key!r}")
    block, name = LAYER_NAMES[index]
    return f"backbone.{stream}_stream.blocks.{block}.{name}.{rest}"


def _head_key(key: str) -> str | None:
    m = _HEAD.match(key)
    if m is None:
        return None
    base, remain, rest = m.group(1), m.group(3), m.group(4)
    name = _HEADS[base]
    if remain is not None:
        if name == "joint":
            return None
        name = f"{name}_aux{int(remain) + 1}"
    return f"heads.{name}.{rest}"


def convert_official_state_dict(sd: dict, stream: str | None = None) -> dict[str, torch.Tensor]:
    """The official ``model_state`` (or the whole checkpoint) -> our TwoStreamSLR state dict.

    ``stream`` ('rgb' | 'keypoint') is needed only for single-stream checkpoints, whose backbone key does not
    say which stream it is.
    """
    if "model_state" in sd and isinstance(sd["model_state"], dict):
        sd = sd["model_state"]
    out = {}
    for key, value in sd.items():
        k = key[len("module."):] if key.startswith("module.") else key
        k = k[len("recognition_network."):] if k.startswith("recognition_network.") else k
        if k.endswith(".pe.pe") or k == "pe.pe":
            continue  # the positional table: a constant we recompute
        if m := _BACKBONE.match(k):
            out[_layer_key(_STREAM[m.group(1)], int(m.group(2)), m.group(3), key)] = value
        elif m := _SINGLE.match(k):
            if stream not in ("rgb", "keypoint"):
                raise CheckpointError(f"official TwoStream checkpoint: single-stream key {key!r}; pass "
                                      f"--stream rgb|keypoint to say which stream it is")
            out[_layer_key(stream, int(m.group(1)), m.group(2), key)] = value
        elif m := _LATERAL.match(k):
            direction = "keypoint_to_rgb" if m.group(1) == "rgb" else "rgb_to_keypoint"  # into the named stream
            out[f"backbone.laterals.{int(m.group(2)) + 1}.{direction}.weight"] = value
        elif m := _PYRAMID.match(k):
            out[f"pyramids.{_STREAM[m.group(1)]}.{m.group(2)}"] = value
        elif (ours := _head_key(k)) is not None:
            if stream == "keypoint" and ours.startswith("heads.rgb"):
                ours = ours.replace("heads.rgb", "heads.keypoint", 1)  # single-stream keypoint: its head is visual_head
            out[ours] = value
        else:
            raise CheckpointError(f"official TwoStream checkpoint: unexpected key {key!r}; expected the "
                                  f"recognition_network layout of TwoStream-SLR (see convert.py)")
    if not out:
        raise CheckpointError("official TwoStream checkpoint: no recognition_network weights found")
    return out


def infer_model_kwargs(state: dict[str, torch.Tensor]) -> dict:
    """TwoStreamSLRConfig fields read off a converted state dict (streams, switches, sizes, width)."""
    has = lambda prefix: any(k.startswith(prefix) for k in state)  # noqa: E731
    streams = [s for s in ("rgb", "keypoint") if has(f"backbone.{s}_stream.")]
    if not streams:
        raise CheckpointError("official TwoStream checkpoint: no S3D backbone weights found")
    main = f"heads.{streams[0]}."
    cls = state.get(main + "gloss_output_layer.weight")
    if cls is None:
        raise CheckpointError(f"official TwoStream checkpoint: no main head ({main}gloss_output_layer.weight)")
    first = state[f"backbone.{streams[0]}_stream.blocks.0.SepConv3d_1a_7x7.conv_s.weight"]
    kwargs = {
        "vocab_size": int(cls.shape[0]),
        "streams": "both" if len(streams) == 2 else streams[0],
        "laterals": has("backbone.laterals."),
        "pyramid": has("pyramids."),
        "joint_head": has("heads.joint."),
        "width": round(first.shape[0] / 64, 6),
        "head_hidden": int(state[main + "fc1.weight"].shape[0]),
        "head_ff": int(state[main + "feedforward.pwff_layer.0.weight"].shape[0]),
    }
    if "keypoint" in streams:
        first_kp = state["backbone.keypoint_stream.blocks.0.SepConv3d_1a_7x7.conv_s.weight"]
        kwargs["keypoint_channels"] = int(first_kp.shape[1])
    return kwargs


def glosses_from_gloss2ids(path: str | Path, vocab_size: int) -> list[str]:
    """An official ``gloss2ids.pkl`` -> the gloss of every id (the first name wins where two share an id)."""
    from visionzoo.data.sign.safe_pickle import load_pickle

    table = load_pickle(path)
    if not isinstance(table, dict) or not all(isinstance(v, int) for v in table.values()):
        raise CheckpointError(f"{path}: expected a dict gloss -> int id (gloss2ids.pkl)")
    names: dict[int, str] = {}
    for gloss, i in table.items():
        names.setdefault(i, str(gloss))
    if sorted(names) != list(range(vocab_size)):
        raise CheckpointError(f"{path}: ids cover {len(names)} values, the checkpoint's classifier has {vocab_size}")
    return [names[i] for i in range(vocab_size)]


def add_convert_args(parser) -> None:
    parser.description = ("Convert an official TwoStream-SLR checkpoint (best.ckpt, {'model_state': ...}) into a "
                          "pretrained folder (config.json + model.safetensors) loadable with from_pretrained.")
    parser.add_argument("src", help="official checkpoint, e.g. best.ckpt")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--gloss2ids", default=None, help="the official gloss2ids.pkl, to name the classes")
    parser.add_argument("--stream", choices=["rgb", "keypoint"], default=None,
                        help="which stream a single-stream checkpoint holds")


def run_convert(args) -> None:
    from visionzoo.core.hub import load_state_dict_strict, save_pretrained
    from visionzoo.engine.checkpoint_io import load_training_checkpoint
    from visionzoo.methods.sign.twostream.model import TwoStreamSLRConfig
    from visionzoo.methods.sign.twostream.task import build_model

    state = convert_official_state_dict(load_training_checkpoint(args.src), stream=args.stream)
    kwargs = infer_model_kwargs(state)
    if args.gloss2ids:
        kwargs["glosses"] = glosses_from_gloss2ids(args.gloss2ids, kwargs["vocab_size"])
    model = build_model(TwoStreamSLRConfig(**kwargs))
    load_state_dict_strict(model, state, str(args.src))
    save_pretrained(model, args.out, extra={"method": "twostream", "converted_from": str(args.src)})
    print(f"wrote {args.out} ({kwargs['streams']} streams, vocabulary {kwargs['vocab_size']})")
