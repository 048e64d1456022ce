"""``visionzoo predict twostream-slt VIDEO --slr RUN --slt RUN [RUN ...]``: glosses and translation of a video.

The video is prepared as TwoStream-SLR's test-time input (``twostream.predict.load_video_inputs``: frames,
MediaPipe keypoints -> heatmaps), the SLR model gives the glosses (ensemble of its three main heads, CTC beam
search) and the head inputs; every Sign2Text network reads the features of its own stream and the networks
translate together with the multi-source ensemble beam search.
"""

from __future__ import annotations

from pathlib import Path

import torch

from visionzoo.core.errors import VisionZooError


def add_predict_args(parser) -> None:
    parser.description = ("Translate sign videos with TwoStream-SLT: a trained TwoStream-SLR run gives glosses and "
                          "features, one or more Sign2Text runs (rgb / keypoint / joint) translate as an ensemble.")
    parser.add_argument("videos", nargs="+", help="video files (mp4, avi, ...)")
    parser.add_argument("--slr", required=True, help="TwoStream-SLR run folder (RUN/model + RUN/config.yaml)")
    parser.add_argument("--slt", nargs="+", required=True, help="Sign2Text run folders, one per stream")
    parser.add_argument("--beam-size", type=int, default=5, dest="beam_size")
    parser.add_argument("--length-penalty", type=float, default=1.0, dest="length_penalty")
    parser.add_argument("--max-length", type=int, default=100, dest="max_length")


def _slr_model_and_data(run: str):
    from visionzoo.core.config import from_dict, read_yaml
    from visionzoo.core.hub import from_pretrained
    from visionzoo.methods.sign.twostream.data import DataConfig

    root = Path(run)
    model_dir = root / "model" if (root / "model").is_dir() else root
    if not (model_dir / "config.json").is_file():
        raise VisionZooError(f"{run}: expected a TwoStream-SLR run folder with model/ or a folder holding config.json")
    data = read_yaml(root / "config.yaml").get("data", {}) if (root / "config.yaml").is_file() else {}
    return from_pretrained(model_dir).eval(), from_dict(DataConfig, data, "data")


def run_predict(args) -> None:
    from visionzoo.methods.sign.twostream.predict import load_video_inputs
    from visionzoo.methods.sign.twostream.slt.ensemble import ensemble_translate, load_s2t
    from visionzoo.methods.sign.twostream.task import decode

    slr, data_cfg = _slr_model_and_data(args.slr)
    networks = [load_s2t(r) for r in args.slt]
    glosses = list(getattr(slr.config, "glosses", ()) or ()) or [str(i) for i in range(slr.config.vocab_size)]
    for video in args.videos:
        inputs = load_video_inputs(video, data_cfg)
        with torch.no_grad():
            out = slr(inputs["rgb"], inputs["heatmaps"], inputs["lengths"])
            feats = slr.extract_features(inputs["rgb"], inputs["heatmaps"], inputs["lengths"])
        gloss = decode(out.ensemble_log_probs, out.lengths, glosses, args.beam_size, False, slr.config.blank)[0]
        for net in networks:
            if net.stream not in feats:
                raise VisionZooError(f"{args.slr}: the SLR model has no {net.stream!r} stream for a Sign2Text network")
            if feats[net.stream].shape[-1] != net.in_dim:
                raise VisionZooError(f"Sign2Text ({net.stream}) expects {net.in_dim}-d features, the SLR model gives "
                                     f"{feats[net.stream].shape[-1]}; train it on features of this SLR run")
        text = ensemble_translate(networks, [(feats[n.stream], feats["lengths"]) for n in networks],
                                  args.beam_size, args.length_penalty, args.max_length)[0]
        print(f"{video}\tglosses: {gloss}\ttranslation: {text}")
