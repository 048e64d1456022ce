"""Keypoint schema, COCO-WholeBody mapping, MediaPipe Holistic extraction on a real photo, and files."""

import json

import numpy as np
import pytest

from visionzoo.core.errors import DataError, VisionZooError
from visionzoo.data.keypoints import (
    COCO_WHOLEBODY_PARTS,
    FACE68_FROM_MESH,
    FACE68_MIRROR_PAIRS,
    HOLISTIC_PARTS,
    NLA_SLR_63_INDICES,
    SCHEMA_VERSION,
    TWOSTREAM_79_INDICES,
    HolisticExtractor,
    Keypoints,
    extract_to_file,
    find_sources,
    load_keypoint_file,
    save_keypoint_file,
    to_coco_wholebody,
)

try:
    import mediapipe  # noqa: F401

    HAVE_MEDIAPIPE = True
except ImportError:
    HAVE_MEDIAPIPE = False
needs_mediapipe = pytest.mark.skipif(not HAVE_MEDIAPIPE, reason="mediapipe (visionzoo[keypoints]) not installed")

# skimage's astronaut (512 x 512): by inspection the face spans about x 178-275, y 66-178 (face mesh
# extent); this box is that with a generous margin, so only a badly wrong detection leaves it.
ASTRONAUT_FACE_BOX = (140, 30, 310, 215)  # x0, y0, x1, y1


def tagged_holistic(t=2):
    """Holistic points whose x encodes their own index, so a mapping can be read back."""
    pts = np.zeros((t, 543, 3), dtype=np.float32)
    pts[..., 0] = np.arange(543)
    pts[..., 1] = np.arange(t)[:, None]
    pts[..., 2] = 1.0
    return Keypoints(pts, layout="holistic", size=(260, 210), fps=25.0)


# --- schema ---------------------------------------------------------------------------------------


def test_holistic_parts_tile_543_points():
    sizes = {name: s.stop - s.start for name, s in HOLISTIC_PARTS.items()}
    assert sizes == {"pose": 33, "left_hand": 21, "right_hand": 21, "face": 468}
    assert sorted(i for s in HOLISTIC_PARTS.values() for i in range(s.start, s.stop)) == list(range(543))


def test_coco_wholebody_parts_tile_133_points():
    sizes = {name: s.stop - s.start for name, s in COCO_WHOLEBODY_PARTS.items()}
    assert sizes == {"body": 17, "feet": 6, "face": 68, "left_hand": 21, "right_hand": 21}
    assert sorted(i for s in COCO_WHOLEBODY_PARTS.values() for i in range(s.start, s.stop)) == list(range(133))


def test_keypoints_part_returns_the_slice():
    kps = tagged_holistic()
    np.testing.assert_array_equal(kps.part("left_hand")[0, :, 0], np.arange(33, 54))
    assert kps.part("face").shape == (2, 468, 3)


def test_keypoints_rejects_a_wrong_shape():
    with pytest.raises(VisionZooError, match=r"\(T, 543, 3\)"):
        Keypoints(np.zeros((4, 133, 3)), layout="holistic")


# --- mapping to COCO-WholeBody --------------------------------------------------------------------


def test_coco_body_takes_the_blazepose_points_of_the_same_name():
    coco = to_coco_wholebody(tagged_holistic())
    # nose, l eye, r eye, l ear, r ear, l/r shoulder, l/r elbow, l/r wrist, l/r hip, l/r knee, l/r ankle
    expect = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    np.testing.assert_array_equal(coco[0, :17, 0], expect)


def test_coco_hands_keep_the_21_point_order_and_side():
    coco = to_coco_wholebody(tagged_holistic())
    np.testing.assert_array_equal(coco[0, 91:112, 0], np.arange(33, 54))  # left hand
    np.testing.assert_array_equal(coco[0, 112:133, 0], np.arange(54, 75))  # right hand


def test_coco_face_comes_from_the_face_mesh():
    coco = to_coco_wholebody(tagged_holistic())
    np.testing.assert_array_equal(coco[0, 23:91, 0], 75 + np.asarray(FACE68_FROM_MESH))
    assert len(set(FACE68_FROM_MESH)) == 68 and max(FACE68_FROM_MESH) < 468


def test_coco_toes_have_no_equivalent_and_are_zero_with_score_zero():
    coco = to_coco_wholebody(tagged_holistic())
    toes = coco[:, [17, 18, 20, 21]]
    assert np.all(toes == 0)
    np.testing.assert_array_equal(coco[0, [19, 22], 0], [29, 30])  # heels map to BlazePose heels


def test_coco_mapping_keeps_per_frame_values():
    coco = to_coco_wholebody(tagged_holistic(t=3))
    np.testing.assert_array_equal(coco[:, 0, 1], [0, 1, 2])


def test_twostream_79_subset_in_official_part_order():
    idx = TWOSTREAM_79_INDICES
    assert len(idx) == 79 and len(set(idx)) == 79
    # face_others_1_3 (16), hand (42), mouth_half (10), pose (11): sorted part names
    assert idx[:16] == list(range(23, 71, 3))
    assert idx[16:58] == list(range(91, 133))
    assert idx[58:68] == list(range(71, 91, 2))
    assert idx[68:] == list(range(11))


def test_nla_slr_63_subset_drops_the_face_contour():
    assert NLA_SLR_63_INDICES == TWOSTREAM_79_INDICES[16:]
    assert len(NLA_SLR_63_INDICES) == 63


# --- extraction on a real photo -------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut_keypoints():
    if not HAVE_MEDIAPIPE:
        pytest.skip("mediapipe (visionzoo[keypoints]) not installed")
    from skimage.data import astronaut

    return HolisticExtractor(static_image_mode=True).extract_frames(astronaut())


@needs_mediapipe
def test_holistic_finds_body_and_face_on_the_astronaut(astronaut_keypoints):
    kps = astronaut_keypoints
    assert kps.points.shape == (1, 543, 3) and kps.size == (512, 512)
    assert (kps.part("face")[..., 2] == 1).all()  # face found
    assert (kps.part("pose")[0, :13, 2] > 0.9).all()  # head, shoulders, elbows clearly visible


@needs_mediapipe
def test_astronaut_face_points_fall_inside_the_face_box(astronaut_keypoints):
    x0, y0, x1, y1 = ASTRONAUT_FACE_BOX
    face = to_coco_wholebody(astronaut_keypoints)[0, 23:91]
    assert ((face[:, 0] > x0) & (face[:, 0] < x1) & (face[:, 1] > y0) & (face[:, 1] < y1)).all()
    assert np.ptp(face[:, 0]) > 0.3 * (x1 - x0)  # a face, not a collapsed blob


@needs_mediapipe
def test_astronaut_nose_between_eyes_and_shoulders_below_face(astronaut_keypoints):
    body = to_coco_wholebody(astronaut_keypoints)[0, :17]
    nose, l_eye, r_eye, l_sh, r_sh = body[0], body[1], body[2], body[5], body[6]
    assert r_eye[0] < nose[0] < l_eye[0]  # subject's right eye is on the image's left
    assert nose[1] > max(l_eye[1], r_eye[1])  # image y grows downwards
    face_bottom = to_coco_wholebody(astronaut_keypoints)[0, 23:91, 1].max()
    assert min(l_sh[1], r_sh[1]) > face_bottom
    assert r_sh[0] < l_sh[0]


@needs_mediapipe
def test_astronaut_hands_absent_give_score_zero(astronaut_keypoints):
    coco = to_coco_wholebody(astronaut_keypoints)[0]
    assert np.all(coco[91:133] == 0)


@needs_mediapipe
def test_face68_mirror_pairs_are_mirrored_on_a_real_face(astronaut_keypoints):
    # The midline runs through the nasion (mesh 168) and the chin (mesh 152). Mirrored iBUG pairs must
    # lie on opposite sides of it, with their midpoint near it (within 5% of the face width).
    mesh = astronaut_keypoints.part("face")[0, :, :2]
    face68 = mesh[FACE68_FROM_MESH]
    top, chin = mesh[168], mesh[152]
    axis = (chin - top) / np.linalg.norm(chin - top)
    normal = np.array([-axis[1], axis[0]])
    width = np.ptp(mesh[:, 0])
    for a, b in FACE68_MIRROR_PAIRS:
        side_a, side_b = (face68[a] - top) @ normal, (face68[b] - top) @ normal
        assert side_a * side_b < 0, (a, b)
        assert abs(side_a + side_b) / 2 < 0.05 * width, (a, b)


@needs_mediapipe
def test_face68_right_side_points_are_on_the_subjects_right(astronaut_keypoints):
    # iBUG's "right" points (jaw 0-7, right brow, right nostril, right eye, right half of the lips) lie on
    # the same side of the midline as BlazePose's right eye.
    right = [*range(8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67]
    mesh = astronaut_keypoints.part("face")[0, :, :2]
    top, chin = mesh[168], mesh[152]
    normal = np.array([-(chin - top)[1], (chin - top)[0]])
    right_eye_side = np.sign((astronaut_keypoints.part("pose")[0, 5, :2] - top) @ normal)
    sides = np.sign((mesh[np.asarray(FACE68_FROM_MESH)[right]] - top) @ normal)
    assert (sides == right_eye_side).all()


@needs_mediapipe
def test_face68_vertical_order_on_a_real_face(astronaut_keypoints):
    f = to_coco_wholebody(astronaut_keypoints)[0, 23:91, 1]  # y of the 68 face points
    brows, eyes, nose_tip, upper_lip, lower_lip, chin = f[17:27].mean(), f[36:48].mean(), f[30], f[51], f[57], f[8]
    assert brows < eyes < nose_tip < upper_lip < lower_lip < chin


# --- files ----------------------------------------------------------------------------------------


def test_keypoint_file_roundtrip(tmp_path):
    kps = tagged_holistic(t=3)
    path = save_keypoint_file(tmp_path / "clip.npz", kps, source="clip.mp4")
    loaded = load_keypoint_file(path)
    np.testing.assert_array_equal(loaded.holistic.points, kps.points)
    np.testing.assert_array_equal(loaded.coco133.points, to_coco_wholebody(kps))
    assert loaded.fps == 25.0 and loaded.size == (260, 210) and loaded.schema_version == SCHEMA_VERSION
    assert loaded.metadata["source"] == "clip.mp4"
    assert loaded.metadata["parts"]["coco_wholebody"]["face"] == [23, 91]


def test_keypoint_file_holds_the_documented_arrays(tmp_path):
    path = save_keypoint_file(tmp_path / "clip.npz", Keypoints(np.zeros((2, 543, 3)), size=(10, 20)))
    with np.load(path, allow_pickle=False) as data:  # readable without visionzoo and without pickle
        assert set(data.files) == {"keypoints_coco133", "keypoints_holistic", "fps", "size", "schema_version", "metadata"}
        assert data["keypoints_coco133"].shape == (2, 133, 3) and data["keypoints_coco133"].dtype == np.float32
        assert np.isnan(data["fps"]) and data["size"].tolist() == [10, 20]
        json.loads(str(data["metadata"]))


def _write_npz(path, **overrides):
    arrays = {
        "keypoints_coco133": np.zeros((2, 133, 3), np.float32),
        "keypoints_holistic": np.zeros((2, 543, 3), np.float32),
        "fps": np.float64(25),
        "size": np.array([260, 210]),
        "schema_version": np.int64(SCHEMA_VERSION),
        "metadata": np.str_("{}"),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"keypoints_coco133": np.zeros((2, 79, 3), np.float32)}, r"keypoints_coco133: expected float \(T, 133, 3\)"),
        ({"keypoints_holistic": np.zeros((3, 543, 3), np.float32)}, "frames"),
        ({"size": None}, r"missing arrays \['size'\]"),
        ({"schema_version": np.int64(99)}, "schema_version"),
        ({"metadata": np.str_("{not json")}, "metadata"),
        ({"keypoints_holistic": np.full((2, 543, 3), np.nan, np.float32)}, "NaN"),
    ],
)
def test_load_rejects_malformed_files_naming_the_file(tmp_path, overrides, match):
    path = _write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(DataError, match=match) as err:
        load_keypoint_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_load_rejects_a_file_that_is_not_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz: not a readable keypoint .npz"):
        load_keypoint_file(path)


def test_load_names_a_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.npz: no such keypoint file"):
        load_keypoint_file(tmp_path / "nope.npz")


def test_find_sources_finds_frame_dirs_and_videos(tmp_path):
    from PIL import Image

    for name in ("dev/a", "dev/b", "train/c"):
        (tmp_path / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / name / "images0001.png")
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "x.mp4").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    rel = [p.relative_to(tmp_path).as_posix() for p in find_sources(tmp_path)]
    assert rel == ["clips/x.mp4", "dev/a", "dev/b", "train/c"]
    assert find_sources(tmp_path / "dev" / "a") == [tmp_path / "dev" / "a"]


@needs_mediapipe
def test_extract_to_file_on_a_frame_directory(tmp_path):
    from PIL import Image
    from skimage.data import astronaut

    frames = tmp_path / "videos" / "dev" / "astro"
    frames.mkdir(parents=True)
    img = Image.fromarray(astronaut()).resize((256, 256))
    for i in range(2):
        img.save(frames / f"images{i + 1:04d}.png")
    calls = []
    written = extract_to_file(
        tmp_path / "videos", tmp_path / "out", fps=25.0, progress=lambda done, total, src: calls.append((done, total))
    )
    assert written == [tmp_path / "out" / "dev" / "astro.npz"]  # mirrors the relative video name
    assert calls == [(1, 1)]
    record = load_keypoint_file(written[0])
    assert record.coco133.points.shape == (2, 133, 3) and record.size == (256, 256) and record.fps == 25.0
    assert (record.coco133.points[:, 23:91, 2] == 1).all()  # the face is found in both frames
    assert record.metadata["options"] == {"static_image_mode": False, "min_confidence": 0.5}


@needs_mediapipe
def test_extract_to_file_on_a_video_keeps_frames_and_fps(tmp_path):
    pytest.importorskip("av")
    video = pytest.importorskip("visionzoo.data.video")
    from PIL import Image
    from skimage.data import astronaut

    frame = np.asarray(Image.fromarray(astronaut()).resize((256, 256)))
    src = video.write_video(tmp_path / "astro.mp4", np.stack([frame] * 3), fps=12.5)
    (written,) = extract_to_file(src, tmp_path / "kp.npz")
    record = load_keypoint_file(written)
    assert written == tmp_path / "kp.npz"
    assert record.coco133.points.shape == (3, 133, 3) and record.fps == pytest.approx(12.5)
    assert (record.coco133.points[:, 23:91, 2] == 1).all()


def test_frame_directories_are_read_in_numeric_order(tmp_path):
    from PIL import Image

    from visionzoo.data.keypoints import read_frames

    for number, value in ((10, 200), (9, 100), (1, 0)):  # lexical order would put 10 before 9
        Image.new("RGB", (4, 4), (value, value, value)).save(tmp_path / f"images{number}.png")
    frames, fps = read_frames(tmp_path)
    assert frames[:, 0, 0, 0].tolist() == [0, 100, 200] and fps is None


def test_extract_to_file_skip_existing_keeps_valid_outputs(tmp_path):
    from PIL import Image

    (tmp_path / "clip").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "clip" / "0001.png")
    done = save_keypoint_file(tmp_path / "out" / "clip.npz", tagged_holistic(), source="earlier run")
    written = extract_to_file(tmp_path / "clip", tmp_path / "out", skip_existing=True)
    assert written == [done]
    assert load_keypoint_file(done).metadata["source"] == "earlier run"  # not re-extracted


def test_extract_path_names_a_missing_source(tmp_path):
    with pytest.raises(DataError, match="nothing_here"):
        HolisticExtractor().extract_path(tmp_path / "nothing_here")


def test_extract_path_rejects_frames_of_different_sizes(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "0001.png")
    Image.new("RGB", (8, 9)).save(tmp_path / "0002.png")
    with pytest.raises(DataError, match="differ in size"):
        HolisticExtractor().extract_path(tmp_path)


def test_extract_frames_rejects_non_uint8_frames():
    with pytest.raises(VisionZooError, match="uint8 RGB"):
        HolisticExtractor().extract_frames(np.zeros((2, 8, 8, 3), np.float32))
