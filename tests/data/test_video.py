"""Video IO: reading video files and frame folders, frame sampling, writing, and errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("av")
import av  # noqa: E402
from torchvision.io import encode_png, write_png  # noqa: E402

from visionzoo.core.errors import ConfigError, DataError  # noqa: E402
from visionzoo.data import video as video_mod  # noqa: E402
from visionzoo.data.video import (  # noqa: E402
    FrameSampling,
    read_frame_folder,
    read_video,
    video_info,
    write_video,
)

T, H, W = 12, 48, 64


def synthetic_frames(t: int = T, h: int = H, w: int = W) -> torch.Tensor:
    """(t, h, w, 3) uint8: a smooth background plus a bright square whose position encodes the frame."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    frames = torch.empty(t, h, w, 3, dtype=torch.uint8)
    for i in range(t):
        frames[i, ..., 0] = (xx * 3 + i * 5) % 200
        frames[i, ..., 1] = (yy * 4) % 200
        frames[i, ..., 2] = 60
        frames[i, 8:20, 4 + 4 * i: 16 + 4 * i] = 250
    return frames


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    return synthetic_frames()


@pytest.fixture(scope="module", params=[".mp4", ".webm", ".avi"])
def video_path(request, tmp_path_factory, frames):
    path = tmp_path_factory.mktemp("vid") / f"clip{request.param}"
    return write_video(path, frames, fps=25)


# ---------------------------------------------------------------------------------------------- round trip


def test_write_then_read_returns_every_frame_in_order(video_path, frames):
    clip = read_video(video_path)
    assert clip.shape == frames.shape and clip.dtype == torch.uint8
    # each decoded frame is closest to the original frame with the same index
    dist = (clip.float().flatten(1)[:, None] - frames.float().flatten(1)[None]).abs().mean(-1)
    assert torch.equal(dist.argmin(1), torch.arange(T))


def test_write_then_read_pixel_error_is_small(video_path, frames):
    # x264 / vp9 at crf 18 leave a few grey levels of error (measured 2.3-2.4 mean abs on this clip)
    err = (read_video(video_path).float() - frames.float()).abs().mean()
    assert err < 4.0


def test_video_info_reports_frames_fps_and_size(video_path):
    info = video_info(video_path)
    assert (info.num_frames, info.fps, info.height, info.width) == (T, 25.0, H, W)


def test_video_info_reads_count_from_header_when_container_stores_it(video_path):
    # mp4 and avi store a frame count; webm does not, so its frames are counted by decoding
    assert video_info(video_path).frames_from_header == (video_path.suffix != ".webm")


def test_write_video_falls_back_to_mpeg4_when_codec_missing(tmp_path, frames):
    path = write_video(tmp_path / "x.mp4", frames, codec="no-such-codec")
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "mpeg4"
    assert read_video(path).shape == frames.shape


def test_write_video_rejects_non_uint8_frames(tmp_path, frames):
    with pytest.raises(DataError, match="expected uint8"):
        write_video(tmp_path / "x.mp4", frames.float())


# ---------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(
    "sampling",
    [
        FrameSampling("count", num_frames=5),
        FrameSampling("count", num_frames=20),  # more than the video has: repeats frames
        FrameSampling("stride", stride=3),
        FrameSampling("stride", stride=2, num_frames=10),  # runs past the end: repeats the last frame
    ],
    ids=["count", "count-upsample", "stride", "stride-padded"],
)
def test_sampled_read_equals_full_read_indexed(video_path, sampling):
    full = read_video(video_path)
    assert torch.equal(read_video(video_path, sampling), full[sampling.indices(T)])


def test_jittered_sampling_is_deterministic_given_generator(video_path):
    sampling = FrameSampling("count", num_frames=4, random_offset=True, scale_range=(0.5, 1.0))
    a = read_video(video_path, sampling, torch.Generator().manual_seed(3))
    b = read_video(video_path, sampling, torch.Generator().manual_seed(3))
    full = read_video(video_path)
    assert torch.equal(a, b)
    assert torch.equal(a, full[sampling.indices(T, torch.Generator().manual_seed(3))])


def test_only_sampled_frames_are_converted_to_rgb(video_path, monkeypatch):
    converted = []

    class CountingFrame:
        def __init__(self, frame):
            self.frame = frame

        def __getattr__(self, name):
            return getattr(self.frame, name)

        def to_ndarray(self, **kw):
            converted.append(1)
            return self.frame.to_ndarray(**kw)

    real_decode = video_mod._decode
    monkeypatch.setattr(video_mod, "_decode", lambda *a: (CountingFrame(f) for f in real_decode(*a)))
    clip = read_video(video_path, FrameSampling("count", num_frames=3))
    assert clip.shape[0] == 3 and len(converted) == 3


class MiscountingStream:
    """The real stream, except that its header frame count is off by ``delta`` (0 stays 0: no count)."""

    def __init__(self, stream, delta: int):
        object.__setattr__(self, "stream", stream)
        object.__setattr__(self, "frames", stream.frames + delta if stream.frames else 0)

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def __setattr__(self, name, value):
        setattr(self.stream, name, value)


@pytest.fixture
def miscounting_header(monkeypatch):
    def install(delta: int) -> None:
        real_open, real_decode = video_mod._open_video, video_mod._decode
        monkeypatch.setattr(video_mod, "_open_video", lambda p: (lambda c, s: (c, MiscountingStream(s, delta)))(*real_open(p)))
        monkeypatch.setattr(video_mod, "_decode", lambda p, c, s: real_decode(p, c, s.stream))

    return install


def test_header_overcount_gives_same_sampled_frames_as_correct_count(video_path, miscounting_header):
    # a container claiming more frames than it holds must not change which frames a seed picks
    sampling = FrameSampling("count", num_frames=3, random_offset=True, scale_range=(0.3, 0.6))
    expected = [read_video(video_path, sampling, torch.Generator().manual_seed(s)) for s in range(4)]
    miscounting_header(+30)
    for seed in range(4):
        assert torch.equal(read_video(video_path, sampling, torch.Generator().manual_seed(seed)), expected[seed])


@pytest.mark.parametrize("delta", [+30, -5])
def test_reading_all_frames_ignores_a_wrong_header_count(video_path, frames, miscounting_header, delta):
    expected = read_video(video_path)
    miscounting_header(delta)
    assert torch.equal(read_video(video_path), expected)


def test_count_sampling_is_evenly_spaced_segment_centres():
    assert FrameSampling("count", num_frames=4).indices(100).tolist() == [12, 37, 62, 87]


def test_stride_sampling_takes_every_kth_frame():
    assert FrameSampling("stride", stride=3).indices(10).tolist() == [0, 3, 6, 9]


def test_scale_range_keeps_window_inside_video_and_shorter():
    s = FrameSampling("count", num_frames=8, random_offset=True, scale_range=(0.25, 0.25))
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        idx = s.indices(100, g)
        assert idx.min() >= 0 and idx.max() <= 99
        assert idx.max() - idx.min() < 25  # the window covers 0.25 * 100 frames


def test_jittered_sampling_without_generator_is_a_config_error():
    with pytest.raises(ConfigError, match="Generator"):
        FrameSampling("count", num_frames=4, random_offset=True).indices(10)


def test_count_mode_without_num_frames_is_a_config_error():
    with pytest.raises(ConfigError, match="num_frames"):
        FrameSampling("count")


# ---------------------------------------------------------------------------------------------- frame folders


def write_numbered_folder(directory, names, h=H, w=W):
    """One PNG per name whose pixel value is the frame's position in ``names`` (times 10)."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        write_png(torch.full((3, h, w), 10 * i, dtype=torch.uint8), str(directory / name))
    return directory


def test_frame_folder_is_sorted_by_number_not_lexically(tmp_path):
    names = [f"images{i}.png" for i in range(1, 13)]  # images10 sorts before images2 lexically
    folder = write_numbered_folder(tmp_path / "f", names)
    clip = read_frame_folder(folder)
    assert clip.shape == (12, H, W, 3)
    assert clip[:, 0, 0, 0].tolist() == [10 * i for i in range(12)]


def test_phoenix_2014t_pattern_reads_only_matching_frames(tmp_path):
    folder = write_numbered_folder(tmp_path / "p", [f"images{i:04d}.png" for i in range(1, 6)])
    write_png(torch.zeros(3, H, W, dtype=torch.uint8), str(folder / "thumbnail.png"))
    clip = read_frame_folder(folder, pattern="images%04d.png")
    assert clip[:, 0, 0, 0].tolist() == [0, 10, 20, 30, 40]


def test_phoenix_2014_frame_names_sort_by_frame_number(tmp_path):
    names = [f"01April_2010_Thursday_heute_default-0.avi_pid0_fn{i:06d}-0.png" for i in (0, 1, 2, 10, 11)]
    folder = write_numbered_folder(tmp_path / "p14", names)
    assert read_frame_folder(folder)[:, 0, 0, 0].tolist() == [0, 10, 20, 30, 40]


def test_frame_folder_decodes_only_sampled_frames(tmp_path):
    folder = write_numbered_folder(tmp_path / "s", [f"{i:06d}.jpg" for i in range(10)])
    (folder / "000007.jpg").write_bytes(b"not an image")  # never read when not sampled
    clip = read_frame_folder(folder, sampling=FrameSampling("stride", stride=3, num_frames=2))
    assert clip.shape[0] == 2


def test_missing_frame_in_numbered_sequence_is_an_error(tmp_path):
    folder = write_numbered_folder(tmp_path / "gap", [f"images{i:04d}.png" for i in (1, 2, 4)])
    with pytest.raises(DataError, match="images0003.png is missing"):
        read_frame_folder(folder, pattern="images%04d.png")


# ---------------------------------------------------------------------------------------------- errors


def assert_one_line_naming(err: pytest.ExceptionInfo, path) -> None:
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg


def test_missing_video_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        read_video(tmp_path / "nope.mp4")
    assert_one_line_naming(err, tmp_path / "nope.mp4")


def test_random_bytes_named_mp4_is_a_data_error(tmp_path):
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match="cannot open as a video") as err:
        read_video(path)
    assert_one_line_naming(err, path)
    with pytest.raises(DataError):
        video_info(path)


def test_video_with_zero_frames_is_a_data_error(tmp_path):
    path = tmp_path / "empty.avi"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        c.start_encoding()
    with pytest.raises(DataError, match="zero video frames") as err:
        read_video(path)
    assert_one_line_naming(err, path)


def test_empty_frame_folder_is_a_data_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="frame folder is empty") as err:
        read_frame_folder(tmp_path / "empty")
    assert_one_line_naming(err, tmp_path / "empty")


def test_unreadable_image_is_a_data_error_naming_the_image(tmp_path):
    folder = write_numbered_folder(tmp_path / "bad", ["images0001.png", "images0002.png"])
    (folder / "images0002.png").write_bytes(encode_png(torch.zeros(3, 4, 4, dtype=torch.uint8)).numpy()[:20].tobytes())
    with pytest.raises(DataError, match="cannot decode image") as err:
        read_frame_folder(folder)
    assert_one_line_naming(err, folder / "images0002.png")
