"""``visionzoo predict centerclip --model RUN --query "text" --videos DIR``: rank a folder's videos for a query."""

from __future__ import annotations

from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from visionzoo.core.errors import DataError
from visionzoo.core.hub import CONFIG_NAME, from_pretrained
from visionzoo.data.video import VIDEO_SUFFIXES, FrameSampling, read_video
from visionzoo.data.video_text import preprocess_clip
from visionzoo.nn.tokenizer import clip_tokenize


def _model_dir(path: str) -> Path:
    p = Path(path)
    if (p / CONFIG_NAME).is_file():
        return p
    if (p / "model" / CONFIG_NAME).is_file():
        return p / "model"
    raise DataError(p, f"no {CONFIG_NAME} here or in model/; expected a run folder or a pretrained folder")


@torch.no_grad()
def rank_videos(model, queries: list[str], videos: list[Path], frames: int = 12,
                context_length: int = 32) -> torch.Tensor:
    """(N_queries, N_videos) cosine similarities of each query to each video."""
    size = model.clip.cfg.vision.image_size
    sampling = FrameSampling("count", num_frames=frames)
    video_embeds = torch.cat([model.encode_video(preprocess_clip(read_video(v, sampling), size)[None]) for v in videos])
    tokens = clip_tokenize(queries, min(context_length, model.clip.cfg.text.context_length))
    return model.encode_text(tokens) @ video_embeds.t()


def run_predict(args) -> None:
    model = from_pretrained(_model_dir(args.model))
    folder = Path(args.videos)
    if not folder.is_dir():
        raise DataError(folder, "video folder not found")
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise DataError(folder, f"holds no video ({', '.join(VIDEO_SUFFIXES)})")
    sim = rank_videos(model, args.query, videos, args.frames, args.context_length)
    console = Console(width=160)
    for q, row in zip(args.query, sim):
        console.print(f"[bold]query:[/] {q}", soft_wrap=True)
        table = Table()
        table.add_column("rank", justify="right")
        table.add_column("video")
        table.add_column("cosine", justify="right")
        for r, i in enumerate(row.argsort(descending=True)[: args.top].tolist(), start=1):
            table.add_row(str(r), videos[i].name, f"{row[i]:.3f}")
        console.print(table)
