"""Image-caption readers (CSV and webdataset-style tar shards) and the `image-captions` generator."""

import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from visionzoo.core.errors import DataError
from visionzoo.data.image_text import CsvImageText, ImageTextDataModule, TarShardImageText, read_labels
from visionzoo.nn.tokenizer import EOT_ID, SOT_ID, clip_tokenize


def _png(value: int = 100, size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from visionzoo.data.synth import get_synth

    root = tmp_path_factory.mktemp("captions")
    get_synth("image-captions")(root, n_train=24, n_val=10, shard_size=10)
    return root


def test_csv_reader_returns_image_tensor_and_token_ids(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    (tmp_path / "pairs.csv").write_text('filepath,caption\na.png,"a red seven, on the left"\n')
    ds = CsvImageText(tmp_path / "pairs.csv", image_size=16, context_length=16)
    image, tokens = ds[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert torch.equal(tokens, clip_tokenize("a red seven, on the left", 16)[0])
    assert tokens[0] == SOT_ID and EOT_ID in tokens and ds.keys == ["a"]


@pytest.mark.parametrize("body, line, problem", [
    ("a.png\n", 2, "1 fields"),
    (",a caption\n", 2, "empty 'filepath'"),
    ("a.png,\n", 2, "empty 'caption'"),
    ("a.png,ok\nmissing.png,a cat\n", 3, "missing.png not found"),
])
def test_csv_reader_names_file_and_line_of_a_bad_row(tmp_path, body, line, problem):
    (tmp_path / "a.png").write_bytes(_png())
    (tmp_path / "pairs.csv").write_text("filepath,caption\n" + body)
    with pytest.raises(DataError, match=rf"pairs.csv:{line}: .*{problem}"):
        CsvImageText(tmp_path / "pairs.csv")


def test_csv_reader_rejects_a_header_without_the_required_columns(tmp_path):
    (tmp_path / "pairs.csv").write_text("image,text\na.png,hi\n")
    with pytest.raises(DataError, match=r"pairs.csv:1: header .* lacks 'filepath'"):
        CsvImageText(tmp_path / "pairs.csv")


def test_tar_reader_pairs_members_by_key_across_shards(tmp_path):
    a = _tar(tmp_path / "s-0.tar", {"0001.png": _png(10), "0001.txt": b"a cat", "0001.json": b"{}"})
    b = _tar(tmp_path / "s-1.tar", {"0002.txt": b"a dog", "0002.jpg": _jpg()})
    ds = TarShardImageText([a, b], image_size=8, context_length=8)
    assert ds.keys == ["0001", "0002"] and ds.captions == ["a cat", "a dog"]
    image, tokens = ds[1]
    assert image.shape == (3, 8, 8) and torch.equal(tokens, clip_tokenize("a dog", 8)[0])


def _jpg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def test_tar_reader_names_shard_and_member_of_a_caption_without_image(tmp_path):
    shard = _tar(tmp_path / "s-0.tar", {"0001.png": _png(), "0001.txt": b"ok", "0002.txt": b"lonely"})
    with pytest.raises(DataError, match=r"s-0.tar: member 0002.txt: key '0002' has no image"):
        TarShardImageText([shard])


def test_tar_reader_names_shard_and_member_of_an_image_without_caption(tmp_path):
    shard = _tar(tmp_path / "s-0.tar", {"0003.png": _png()})
    with pytest.raises(DataError, match=r"s-0.tar: member 0003.png: key '0003' has no caption"):
        TarShardImageText([shard])


def test_tar_reader_names_shard_and_member_of_a_corrupt_image(tmp_path):
    shard = _tar(tmp_path / "s-0.tar", {"0001.png": _png()[:20], "0001.txt": b"broken"})
    ds = TarShardImageText([shard])
    with pytest.raises(DataError, match=r"s-0.tar: member 0001.png: not a readable image"):
        ds[0]


def test_tar_reader_rejects_a_file_that_is_not_a_tar(tmp_path):
    (tmp_path / "s-0.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(DataError, match=r"s-0.tar: not a readable"):
        TarShardImageText([tmp_path / "s-0.tar"])


def test_generator_writes_the_same_pairs_in_csv_and_tar_layouts(synth):
    csv_ds = CsvImageText(synth / "train.csv", image_size=32, context_length=16)
    tar_ds = TarShardImageText(sorted((synth / "shards").glob("train-*.tar")), image_size=32, context_length=16)
    assert len(csv_ds) == len(tar_ds) == 24 and len(list((synth / "shards").glob("train-*.tar"))) == 3
    assert csv_ds.keys == tar_ds.keys and csv_ds.captions == tar_ds.captions
    for i in (0, 23):
        assert torch.equal(csv_ds[i][0], tar_ds[i][0]) and torch.equal(csv_ds[i][1], tar_ds[i][1])


def test_generator_captions_name_colour_digit_and_position_matching_the_labels(synth):
    from visionzoo.data.synth.captions import COLOURS, DIGIT_NAMES

    classes, labels = read_labels(synth / "val_labels.csv")
    ds = CsvImageText(synth / "val.csv")
    assert classes == list(COLOURS) and len(labels) == 10
    for key, caption in zip(ds.keys, ds.captions):
        words = caption.replace(",", " ").rstrip(".").split()
        assert classes[labels[key]] in words  # the zero-shot label is the caption's colour
        assert sum(d in words for d in DIGIT_NAMES) == 1 and ("left" in words) != ("right" in words)


def test_generator_can_label_digits_for_zero_shot(tmp_path):
    from visionzoo.data.synth import get_synth

    get_synth("image-captions")(tmp_path, n_train=2, n_val=4, zero_shot="digit")
    classes, labels = read_labels(tmp_path / "val_labels.csv")
    captions = CsvImageText(tmp_path / "val.csv").captions
    assert classes[7] == "seven" and all(classes[labels[f"{i:06d}"]] in c for i, c in enumerate(captions))


def test_generator_is_deterministic(synth, tmp_path):
    from visionzoo.data.synth import get_synth

    get_synth("image-captions")(tmp_path, n_train=24, n_val=10, shard_size=10)
    assert (tmp_path / "train.csv").read_text() == (synth / "train.csv").read_text()
    assert (tmp_path / "shards" / "val-000000.tar").read_bytes() == (synth / "shards" / "val-000000.tar").read_bytes()


def test_datamodule_reads_either_layout_with_labels(synth):
    for fmt in ("csv", "tar"):
        dm = ImageTextDataModule(synth, batch_size=8, format=fmt, image_size=32, context_length=16)
        images, tokens = next(iter(dm.train_dataloader()))
        assert images.shape == (8, 3, 32, 32) and tokens.shape == (8, 16)
        assert len(dm.classes) == 6 and set(dm.val.keys) == set(dm.labels)


def test_labels_with_an_unknown_class_name_the_file_and_line(synth, tmp_path):
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "labels.csv").write_text("key,label\n0001,cat\n0002,bird\n")
    with pytest.raises(DataError, match=r"labels.csv:3: .*'bird'"):
        read_labels(tmp_path / "labels.csv")
