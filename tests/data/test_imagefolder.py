import pytest
import torch

from visionzoo.core.errors import DataError
from visionzoo.data.image_transforms import BatchAugment, TwoViewCollate
from visionzoo.data.imagefolder import ImageFolder, InMemoryImageFolder
from visionzoo.data.synth import get_synth, list_synth


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    summary = get_synth("digits")(root, size=16)
    return root, summary


def test_digits_writer_fills_the_imagenet_layout(digits):
    root, summary = digits
    assert summary["train"] + summary["val"] == 1797
    assert sorted(p.name for p in (root / "train").iterdir()) == [str(i) for i in range(10)]
    ds = ImageFolder(root / "val")
    assert len(ds) == summary["val"] and ds.classes == [str(i) for i in range(10)]
    img, label = ds[0]
    assert img.size == (16, 16) and label == 0


def test_digits_writer_is_deterministic(tmp_path):
    a = get_synth("digits")(tmp_path / "a", size=8, seed=3)
    b = get_synth("digits")(tmp_path / "b", size=8, seed=3)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.png"))
    assert {k: v for k, v in a.items() if k != 'root'} == {k: v for k, v in b.items() if k != 'root'}
    assert files_a == files_b
    for rel in files_a[:20]:
        assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes()


def test_photo_crops_are_labelled_by_source_photo(tmp_path):
    summary = get_synth("photo-crops")(tmp_path, size=16, per_photo=4)
    assert summary["classes"] >= 10 and "photo-crops" in list_synth()
    ds = ImageFolder(tmp_path / "train")
    assert len(ds.classes) == summary["classes"]


def test_corrupt_image_error_names_the_file(tmp_path):
    (tmp_path / "cat").mkdir(parents=True)
    bad = tmp_path / "cat" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ds = ImageFolder(tmp_path)
    with pytest.raises(DataError, match=r"broken\.png: cannot decode image"):
        ds[0]
    with pytest.raises(DataError, match=r"broken\.png"):
        ds.verify()


def test_missing_root_and_empty_class_are_errors(tmp_path):
    with pytest.raises(DataError, match="image folder not found"):
        ImageFolder(tmp_path / "nope")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError, match="empty_class: class folder holds no images"):
        ImageFolder(tmp_path)


def test_in_memory_folder_matches_decoded_images(digits):
    root, _ = digits
    ds = InMemoryImageFolder(root / "val", 16)
    ref = ImageFolder(root / "val")
    img, label = ds[5]
    assert img.dtype == torch.uint8 and img.shape == (3, 16, 16)
    assert torch.equal(img, torch.from_numpy(__import__("numpy").asarray(ref[5][0])).permute(2, 0, 1))
    assert label == ref[5][1]


def test_batch_augment_draws_different_views_per_sample_and_is_seeded():
    images = torch.randint(0, 255, (4, 3, 16, 16), dtype=torch.uint8)
    aug = BatchAugment()
    a = aug(images, torch.Generator().manual_seed(0))
    b = aug(images, torch.Generator().manual_seed(0))
    c = aug(images, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    (v1, v2), labels = TwoViewCollate(aug)([(images[i], i) for i in range(4)])
    assert v1.shape == (4, 3, 16, 16) and not torch.equal(v1, v2) and labels.tolist() == [0, 1, 2, 3]
