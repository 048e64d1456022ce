"""Video IO: decode video files (PyAV) and frame folders into uint8 clips, and write synthetic videos.

Every reader returns a clip as a ``uint8`` tensor of shape ``(T, H, W, C)`` with RGB channels, the layout
decoders produce; ``video_transforms.thwc_to_tchw`` turns it into torchvision's ``(T, C, H, W)``.

Which frames to keep is decided by a :class:`FrameSampling` from the frame count *before* decoding, so
frames that are not kept are never converted to RGB (the colour conversion costs about as much as the
decoding) and decoding stops after the last kept frame. Bad input (missing or corrupt file, no frames,
unreadable image) raises :class:`visionzoo.core.errors.DataError` with a one-line message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from visionzoo.core.errors import ConfigError, DataError

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


# ----------------------------------------------------------------------------------------------
# Which frames to read


@dataclass
class FrameSampling:
    """Which frame indices of an ``n``-frame video to read.

    mode:
      - ``'all'``: every frame.
      - ``'count'``: ``num_frames`` frames evenly spaced over a window (TSN-style segment centres);
        the window is the whole video unless ``scale_range`` shrinks it. ``num_frames > n`` repeats frames.
      - ``'stride'``: every ``stride``-th frame; ``num_frames`` (optional) caps the clip length, and a clip
        that runs past the end repeats the last frame (as batch padding does in TwoStream-SLR).
    Temporal jitter (training-time augmentation; needs the ``generator`` passed to :meth:`indices`):
      - ``random_offset``: the window starts at a random position (and for ``'count'``, the sample grid
        has a random phase inside each segment) instead of being centred.
      - ``scale_range``: for ``'count'`` the window covers ``s * n`` frames, for ``'stride'`` the step is
        ``s * stride`` (playback-speed jitter), with ``s ~ U(scale_range)``.
    """

    mode: Literal["all", "count", "stride"] = "all"
    num_frames: int | None = None
    stride: int = 1
    random_offset: bool = False
    scale_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("all", "count", "stride"):
            raise ConfigError(f"FrameSampling.mode: expected 'all', 'count' or 'stride', got {self.mode!r}")
        if self.mode == "count" and (self.num_frames is None or self.num_frames < 1):
            raise ConfigError(f"FrameSampling.num_frames: mode 'count' needs an int >= 1, got {self.num_frames!r}")
        if self.mode == "stride" and self.num_frames is not None and self.num_frames < 1:
            raise ConfigError(f"FrameSampling.num_frames: expected None or an int >= 1, got {self.num_frames!r}")
        if self.stride < 1:
            raise ConfigError(f"FrameSampling.stride: expected an int >= 1, got {self.stride!r}")
        if self.mode == "all" and (self.random_offset or self.scale_range is not None):
            raise ConfigError("FrameSampling: mode 'all' takes no temporal jitter; use 'count' or 'stride'")
        if self.scale_range is not None:
            lo, hi = self.scale_range
            if not 0 < lo <= hi:
                raise ConfigError(f"FrameSampling.scale_range: expected 0 < low <= high, got {self.scale_range!r}")

    @property
    def is_random(self) -> bool:
        return self.random_offset or self.scale_range is not None

    def indices(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Frame indices (sorted, int64, possibly repeated) to take from an ``n``-frame video."""
        if n < 1:
            raise ValueError(f"FrameSampling.indices: the video has no frames (n={n})")
        if self.is_random and generator is None:
            # Determinism is the contract: a jittered sampling never silently uses the global RNG.
            raise ConfigError("FrameSampling: random_offset/scale_range need a torch.Generator")
        if self.mode == "all":
            return torch.arange(n)
        scale = _uniform(self.scale_range, generator) if self.scale_range is not None else 1.0
        if self.mode == "count":
            return self._count_indices(n, scale, generator)
        return self._stride_indices(n, scale, generator)

    def _count_indices(self, n: int, scale: float, generator: torch.Generator | None) -> torch.Tensor:
        k = self.num_frames
        span = min(float(n), scale * n)  # a scale above 1 cannot show more than the video has
        start = _uniform((0.0, n - span), generator) if self.random_offset else (n - span) / 2
        phase = _uniform((0.0, 1.0), generator) if self.random_offset else 0.5
        pos = start + (torch.arange(k, dtype=torch.float64) + phase) * (span / k)
        return pos.floor().long().clamp_(0, n - 1)

    def _stride_indices(self, n: int, scale: float, generator: torch.Generator | None) -> torch.Tensor:
        step = self.stride * scale
        if self.num_frames is None:
            start = _uniform((0.0, min(step, n) - 1e-9), generator) if self.random_offset else 0.0
            k = int((n - 1 - start) // step) + 1
        else:
            k = self.num_frames
            span = (k - 1) * step + 1
            room = max(0.0, n - span)
            start = _uniform((0.0, room), generator) if self.random_offset else room / 2
        pos = start + torch.arange(k, dtype=torch.float64) * step
        return pos.floor().long().clamp_(0, n - 1)


def _uniform(bounds: tuple[float, float], generator: torch.Generator | None) -> float:
    lo, hi = bounds
    return lo + (hi - lo) * torch.rand((), generator=generator, dtype=torch.float64).item()


# ----------------------------------------------------------------------------------------------
# Video files (PyAV)


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    height: int
    width: int
    frames_from_header: bool  # False: the container did not store a count, so the frames were counted


def _import_av():
    try:
        import av
    except ImportError as e:  # PyAV is the optional 'video' extra
        raise ImportError("video decoding needs PyAV: pip install 'visionzoo[video]'") from e
    return av


def _open_video(path: Path):
    """Open ``path`` and return (container, video stream), turning every failure into a DataError."""
    av = _import_av()
    if not path.is_file():
        raise DataError(path, "video file not found; expected an existing mp4/webm/avi file")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise DataError(path, f"cannot open as a video container ({_reason(e)}); expected an mp4/webm/avi file") from None
    if not container.streams.video:
        container.close()
        raise DataError(path, "has no video stream; expected a file with one video track")
    return container, container.streams.video[0]


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or type(e).__name__


def _fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def video_info(path: str | Path) -> VideoInfo:
    """Frame count, fps and size of a video; decodes only when the container stores no frame count (webm/mkv)."""
    path = Path(path)
    container, stream = _open_video(path)
    with container:
        ctx = stream.codec_context
        n, from_header = stream.frames, True
        if n <= 0:
            n, from_header = _count_frames(path, container, stream), False
        return VideoInfo(num_frames=n, fps=_fps(stream), height=ctx.height, width=ctx.width,
                         frames_from_header=from_header)


def _count_frames(path: Path, container, stream) -> int:
    # Decoding (without colour conversion) is the only count that is always right: packet counts
    # disagree with frame counts for some codecs (packed B-frames in avi).
    stream.thread_type = "AUTO"
    n = 0
    for _ in _decode(path, container, stream):
        n += 1
    return n


def _decode(path: Path, container, stream):
    """Decoded frames of ``stream``; a broken stream mid-file is a DataError, not an av traceback."""
    av = _import_av()
    try:
        yield from container.decode(stream)
    except av.error.FFmpegError as e:
        raise DataError(path, f"video stream is corrupt ({_reason(e)}); expected a decodable video") from None


def read_video(
    path: str | Path,
    sampling: FrameSampling | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Decode the frames of ``path`` chosen by ``sampling`` into a ``(T, H, W, 3)`` uint8 RGB tensor."""
    path = Path(path)
    sampling = sampling or FrameSampling()
    # A header's frame count can be wrong; if decoding shows that, we redraw the sampling from the
    # same generator state, so the result equals what a correct header would have given.
    state = generator.get_state() if generator is not None else None
    container, stream = _open_video(path)
    with container:
        stream.thread_type = "AUTO"  # frame + slice threads; the decode loop itself stays in C
        if sampling.mode == "all":
            return _read_all(path, container, stream)
        if stream.frames > 0:
            clip = _read_known_count(path, container, stream, sampling.indices(stream.frames, generator))
            if clip is not None:
                return clip
    if state is not None:
        generator.set_state(state)
    return _read_unknown_count(path, sampling, generator)


def _check_size(path: Path, frame, i: int, hw: tuple[int, int]) -> None:
    if (frame.height, frame.width) != hw:
        raise DataError(path, f"frame {i} is {frame.height}x{frame.width}; expected every frame {hw[0]}x{hw[1]}")


def _read_all(path: Path, container, stream) -> torch.Tensor:
    """Every frame, converted straight into one preallocated array when the header knows the count."""
    ctx = stream.codec_context
    hw = (ctx.height, ctx.width)
    out = np.empty((max(stream.frames, 0), *hw, 3), dtype=np.uint8)
    extra = []  # frames past the header's count (or all of them when it has none)
    n = 0
    for n, frame in enumerate(_decode(path, container, stream), start=1):
        _check_size(path, frame, n - 1, hw)
        if n <= len(out):
            out[n - 1] = frame.to_ndarray(format="rgb24")
        else:
            extra.append(frame.to_ndarray(format="rgb24"))
    if n == 0:
        raise DataError(path, "decoded zero video frames; expected at least one frame")
    if extra:
        out = np.concatenate([out[:n - len(extra)], np.stack(extra)])
    return torch.from_numpy(out[:n])


def _read_known_count(path: Path, container, stream, idx: torch.Tensor) -> torch.Tensor | None:
    """Stream-decode, converting only the kept frames and stopping after the last one.

    Returns None when the stream ends before the last kept frame (the header over-counted).
    """
    ctx = stream.codec_context
    hw = (ctx.height, ctx.width)
    unique, inverse = torch.unique(idx, sorted=True, return_inverse=True)
    keep = unique.tolist()
    out = np.empty((len(keep), *hw, 3), dtype=np.uint8)
    j = 0
    for i, frame in enumerate(_decode(path, container, stream)):
        if i == keep[j]:
            _check_size(path, frame, i, hw)
            out[j] = frame.to_ndarray(format="rgb24")
            j += 1
            if j == len(keep):
                break
    if j < len(keep):
        return None
    clip = torch.from_numpy(out)
    # Repeated indices (upsampling, end padding) are gathered after decoding, not converted twice.
    return clip if len(keep) == len(idx) else clip[inverse]


def _read_unknown_count(path: Path, sampling: FrameSampling, generator: torch.Generator | None) -> torch.Tensor:
    """No trustworthy frame count: keep the decoded (YUV) frames, then convert only the chosen ones."""
    container, stream = _open_video(path)
    with container:
        stream.thread_type = "AUTO"
        frames = list(_decode(path, container, stream))
    if not frames:
        raise DataError(path, "decoded zero video frames; expected at least one frame")
    idx = sampling.indices(len(frames), generator)
    unique, inverse = torch.unique(idx, sorted=True, return_inverse=True)
    hw = (frames[0].height, frames[0].width)
    arrays = []
    for i in unique.tolist():
        _check_size(path, frames[i], i, hw)
        arrays.append(frames[i].to_ndarray(format="rgb24"))
    return torch.from_numpy(np.stack(arrays))[inverse]


# ----------------------------------------------------------------------------------------------
# Frame folders (Phoenix-2014T `images%04d.png`, Phoenix-2014 `...avi_pid0_fn%06d-0.png`, CSL-Daily `%06d.jpg`)


def _natural_key(name: str) -> tuple:
    # 'images10.png' after 'images9.png': compare digit runs as numbers, the rest as text.
    return tuple(int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", name))


def _pattern_regex(pattern: str) -> re.Pattern:
    """``'images%04d.png'`` -> a regex whose group 1 is the frame number."""
    m = re.search(r"%0?(\d*)d", pattern)
    if m is None:
        raise ConfigError(f"read_frame_folder pattern {pattern!r}: expected one printf number field like %04d")
    width = m.group(1)
    number = rf"(\d{{{int(width)}}})" if width else r"(\d+)"
    return re.compile(re.escape(pattern[: m.start()]) + number + re.escape(pattern[m.end():]) + r"\Z")


def list_frame_files(directory: str | Path, pattern: str | None = None) -> list[Path]:
    """Frame images of ``directory`` in frame order (by number, not lexically).

    With a printf ``pattern`` (e.g. ``'images%04d.png'``) only matching files count and the numbers must
    be consecutive, so a missing frame is an error instead of a silent jump in time.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "frame folder not found; expected a directory of frame images")
    if pattern is None:
        files = [p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        files.sort(key=lambda p: _natural_key(p.name))
    else:
        regex = _pattern_regex(pattern)
        numbered = sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := regex.match(p.name)))
        for (a, _), (b, p) in zip(numbered, numbered[1:]):
            if b != a + 1:
                raise DataError(directory, f"frame {pattern % (a + 1)} is missing before {p.name}; "
                                           f"expected consecutive frame numbers")
        files = [p for _, p in numbered]
    if not files:
        what = f"files matching {pattern!r}" if pattern else f"images ({'/'.join(IMAGE_SUFFIXES)})"
        raise DataError(directory, f"frame folder is empty; expected {what}")
    return files


def _read_image(path: Path) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)  # (3, H, W) uint8
    except (RuntimeError, ValueError) as e:
        raise DataError(path, f"cannot decode image ({str(e).splitlines()[0][:80]}); expected a PNG/JPEG frame") from None


def read_frame_folder(
    directory: str | Path,
    pattern: str | None = None,
    sampling: FrameSampling | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Read a folder of frame images as a ``(T, H, W, 3)`` uint8 RGB clip; only sampled frames are decoded."""
    files = list_frame_files(directory, pattern)
    sampling = sampling or FrameSampling()
    idx = sampling.indices(len(files), generator)
    unique, inverse = torch.unique(idx, sorted=True, return_inverse=True)
    images = [_read_image(files[i]) for i in unique.tolist()]
    size = images[0].shape[1:]
    for i, img in zip(unique.tolist(), images):
        if img.shape[1:] != size:
            raise DataError(files[i], f"frame is {tuple(img.shape[1:])} (H, W); expected {tuple(size)} like "
                                      f"{files[unique[0]].name}")
    clip = torch.stack(images).permute(0, 2, 3, 1).contiguous()  # (T, H, W, 3)
    return clip if len(unique) == len(idx) else clip[inverse]


# ----------------------------------------------------------------------------------------------
# Writing (synthetic data)


def _default_codec(path: Path) -> str:
    return "libvpx-vp9" if path.suffix.lower() == ".webm" else "libx264"


def write_video(
    path: str | Path,
    frames: torch.Tensor | np.ndarray,
    fps: float = 25,
    codec: str | None = None,
    crf: int = 18,
) -> Path:
    """Encode ``frames`` (T, H, W, 3) uint8 RGB to ``path``; H and W must be even (yuv420p).

    ``codec`` defaults to libx264 (libvpx-vp9 for .webm); when the requested codec is not in this
    FFmpeg build we fall back to mpeg4, which every build has. ``crf`` is the quality (lower = better).
    """
    av = _import_av()
    path = Path(path)
    array = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] == 0:
        raise DataError(path, f"cannot write frames of dtype {array.dtype} and shape {tuple(array.shape)}; "
                              f"expected uint8 (T>0, H, W, 3) RGB")
    t, h, w, _ = array.shape
    if h % 2 or w % 2:
        raise DataError(path, f"cannot write {h}x{w} frames; expected even height and width (yuv420p)")
    codec = codec or _default_codec(path)
    if codec not in av.codecs_available:
        codec = "mpeg4"
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = _fps_fraction(fps)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "mpeg4":
            # mpeg4 has no crf: fixed quantiser 2 (near-lossless), i.e. ffmpeg's `-q:v 2`.
            stream.codec_context.flags |= av.codec.context.Flags.qscale
            stream.codec_context.global_quality = 2 * 118  # FF_QP2LAMBDA = 118
        elif codec in ("libx264", "libx265"):
            stream.options = {"crf": str(crf)}
        elif codec.startswith("libvpx"):
            stream.options = {"crf": str(crf), "b": "0"}
        for frame in np.ascontiguousarray(array):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())  # flush delayed frames
    return path


def _fps_fraction(fps: float) -> Fraction:
    """fps as a Fraction (29.97 -> 2997/100), which container time bases need."""
    if not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"write_video fps: expected a positive number, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)
