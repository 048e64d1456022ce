"""Whole-body 2D keypoints: our schema, MediaPipe Holistic extraction, COCO-WholeBody mapping, files.

The sign-language papers (TwoStream-SLR, NLA-SLR) feed an S3D with Gaussian heatmaps of
COCO-WholeBody-133 keypoints that the authors computed with HRNet-w48 (mmpose). HRNet needs a person
detector, mmcv and downloaded weights; MediaPipe Holistic ships its models inside the
``mediapipe==0.10.14`` wheel, so it is our offline extractor. It has a different layout, hence the
mapping table below.

Holistic layout (543 points, ``HOLISTIC_PARTS``)
------------------------------------------------
======  ==========  ===================================================================
idx     part        meaning
======  ==========  ===================================================================
0-32    pose        BlazePose 33 (nose, eyes, ears, mouth, shoulders ... heels, toes)
33-53   left_hand   the signer's left hand, 21 points (wrist, thumb 1-4, index 1-4, ...)
54-74   right_hand  the signer's right hand, 21 points
75-542  face        face mesh, 468 points (no iris refinement)
======  ==========  ===================================================================

Every point is ``(x, y, score)`` with x, y in pixels of the raw frame (MediaPipe's normalised
coordinates times width / height). Score: pose points carry MediaPipe's ``visibility``; hand and
face landmarks have no per-point confidence in MediaPipe, so they get 1 when the part was found.
A part that was not found is all zeros (x = y = score = 0), as SLRT zero-fills missed frames.

COCO-WholeBody-133 layout (``COCO_WHOLEBODY_PARTS``) and the mapping (``to_coco_wholebody``)
---------------------------------------------------------------------------------------------
========  ===================  =========================================================
COCO idx  part                 from Holistic
========  ===================  =========================================================
0-16      body 17              pose 0, 2, 5, 7, 8, 11-16, 23-28 (nose, l/r eye, l/r ear,
                               shoulders, elbows, wrists, hips, knees, ankles; the eyes
                               are BlazePose's eye centres 2 / 5)
17, 18    left big/small toe   none: 0 with score 0 (BlazePose's "foot index" is neither)
19        left heel            pose 29
20, 21    right big/small toe  none: 0 with score 0
22        right heel           pose 30
23-90     face 68 (iBUG 300-W) face mesh, see ``FACE68_FROM_MESH``
91-111    left hand            left_hand 0-20 (the same 21-point order)
112-132   right hand           right_hand 0-20
========  ===================  =========================================================

The 68-point face has no official MediaPipe correspondence. ``FACE68_FROM_MESH`` picks, per iBUG
point, the face-mesh vertex of the same anatomical landmark, using MediaPipe's own contour sets
(``FACEMESH_*`` in ``mediapipe.python.solutions.face_mesh_connections``): brows = the upper brow
contour, eyes = corners and the 1/3, 2/3 lid points, mouth = corners, cupid's bow and lip centres,
nose = the bridge line and the alar base. The 17 jaw points are contour points in both models, so
they are spaced along MediaPipe's face oval from ear level to the chin and are the least exact.
Every pair mirrored in the 68-point layout maps to a mirrored mesh pair, which a test checks on a
real face. All 68 points get a value; none are zeroed.

Keypoint file format (``extract_to_file`` / ``load_keypoint_file``), schema version 1
-----------------------------------------------------------------------------------
One ``.npz`` (numpy, compressed, no pickles) per video, holding:

======================  =================  ===================================================
key                     dtype, shape       meaning
======================  =================  ===================================================
``keypoints_coco133``   float32 (T,133,3)  COCO-WholeBody x, y (raw-frame pixels), score
``keypoints_holistic``  float32 (T,543,3)  Holistic layout above, same units
``fps``                 float64 ()         frames per second of the source; NaN if unknown
``size``                int64 (2,)         (H, W) of the raw frames
``schema_version``      int64 ()           1
``metadata``            str ()             JSON: source, extractor, mediapipe version,
                                           options, part slices of both layouts
======================  =================  ===================================================

A source is a video file, a single image (T = 1) or a directory of frame images (sorted by name).
``extract_to_file`` given a directory holding videos or frame directories writes one file per
video, mirroring their relative paths under the output directory (e.g. Phoenix
``<split>/<name>/images0001.png`` -> ``OUT/<split>/<name>.npz``, matching SLRT's video names).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from visionzoo.core.errors import DataError, VisionZooError

SCHEMA_VERSION = 1

# --- layouts -------------------------------------------------------------------------------------

HOLISTIC_PARTS: dict[str, slice] = {
    "pose": slice(0, 33),
    "left_hand": slice(33, 54),
    "right_hand": slice(54, 75),
    "face": slice(75, 543),
}
NUM_HOLISTIC = 543

COCO_WHOLEBODY_PARTS: dict[str, slice] = {
    "body": slice(0, 17),
    "feet": slice(17, 23),
    "face": slice(23, 91),
    "left_hand": slice(91, 112),
    "right_hand": slice(112, 133),
}
NUM_COCO_WHOLEBODY = 133

LAYOUTS: dict[str, dict[str, slice]] = {"holistic": HOLISTIC_PARTS, "coco_wholebody": COCO_WHOLEBODY_PARTS}

# COCO body 17 <- BlazePose 33
BODY17_FROM_POSE = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
# COCO feet 6 (l big toe, l small toe, l heel, r big toe, r small toe, r heel) <- BlazePose; -1 = none
FEET6_FROM_POSE = [-1, -1, 29, -1, -1, 30]

# iBUG 68 <- face mesh 468. "right" is the subject's right (image left for a frontal face).
FACE68_FROM_MESH = [
    # 0-16 jaw, from the right ear down to the chin (8) and up to the left ear
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # 17-21 right brow, outer -> inner; 22-26 left brow, inner -> outer
    70, 63, 105, 66, 107,
    336, 296, 334, 293, 300,
    # 27-30 nose bridge, top -> tip; 31-35 nostril base, right -> left
    168, 197, 5, 4,
    75, 97, 2, 326, 305,
    # 36-41 right eye: outer corner, upper lid 1/3, 2/3, inner corner, lower lid 2/3, 1/3
    33, 160, 158, 133, 153, 144,
    # 42-47 left eye: inner corner, upper lid, outer corner, lower lid
    362, 385, 387, 263, 373, 380,
    # 48-59 outer lip: right corner, upper lip to the left corner, lower lip back
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # 60-67 inner lip: right corner, upper, left corner, lower
    78, 81, 13, 311, 308, 402, 14, 178,
]
# iBUG 68 pairs that mirror each other across the face's midline (used to check the table).
FACE68_MIRROR_PAIRS = (
    [(i, 16 - i) for i in range(8)]
    + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56)]
    + [(60, 64), (61, 63), (67, 65)]
)


def _coco_from_holistic_table() -> np.ndarray:
    """(133,) index into the holistic layout for every COCO-WholeBody point; -1 = no equivalent."""
    pose0, lh0, rh0, face0 = (HOLISTIC_PARTS[p].start for p in ("pose", "left_hand", "right_hand", "face"))
    table = (
        [pose0 + i for i in BODY17_FROM_POSE]
        + [pose0 + i if i >= 0 else -1 for i in FEET6_FROM_POSE]
        + [face0 + i for i in FACE68_FROM_MESH]
        + [lh0 + i for i in range(21)]
        + [rh0 + i for i in range(21)]
    )
    return np.asarray(table, dtype=np.int64)


COCO133_FROM_HOLISTIC = _coco_from_holistic_table()

# TwoStream-SLR's 79-point subset of COCO-WholeBody (spec 1b), concatenated in sorted part-name
# order exactly as the official code does: the heatmap channel order of its checkpoints.
_FACE_OTHERS_1_3 = list(range(23, 71, 3))  # face contour/brows/nose/eyes, every 3rd: 16
_HAND = list(range(91, 133))  # both hands: 42
_MOUTH_HALF = list(range(71, 91, 2))  # mouth, every 2nd: 10
_POSE = list(range(0, 11))  # nose, eyes, ears, shoulders, elbows, wrists: 11
TWOSTREAM_79_INDICES = _FACE_OTHERS_1_3 + _HAND + _MOUTH_HALF + _POSE
# NLA-SLR's 63-point subset (spec 2b): no face contour.
NLA_SLR_63_INDICES = _HAND + _MOUTH_HALF + _POSE


# --- the container -------------------------------------------------------------------------------


@dataclass
class Keypoints:
    """Per-frame keypoints of one video in one layout.

    ``points`` is (T, K, 3) float32: x, y in raw-frame pixels and a score in [0, 1]; score 0 means
    "not detected" (then x = y = 0).
    """

    points: np.ndarray  # (T, K, 3) float32
    layout: str = "holistic"  # a key of LAYOUTS
    size: tuple[int, int] | None = None  # (H, W) of the raw frames
    fps: float | None = None

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise VisionZooError(f"Keypoints.layout: expected one of {sorted(LAYOUTS)}, got {self.layout!r}")
        self.points = np.asarray(self.points, dtype=np.float32)
        k = _layout_size(self.layout)
        if self.points.ndim != 3 or self.points.shape[1:] != (k, 3):
            raise VisionZooError(
                f"Keypoints.points: expected shape (T, {k}, 3) for layout {self.layout!r}, got {self.points.shape}"
            )

    @property
    def parts(self) -> dict[str, slice]:
        return LAYOUTS[self.layout]

    def part(self, name: str) -> np.ndarray:
        """(T, k, 3) points of one part, e.g. ``kps.part("face")``."""
        if name not in self.parts:
            raise VisionZooError(f"Keypoints.part: layout {self.layout!r} has parts {list(self.parts)}, not {name!r}")
        return self.points[:, self.parts[name]]

    @property
    def num_frames(self) -> int:
        return self.points.shape[0]

    def __len__(self) -> int:
        return self.num_frames


def _layout_size(layout: str) -> int:
    return max(s.stop for s in LAYOUTS[layout].values())


def to_coco_wholebody(kps: Keypoints | np.ndarray) -> np.ndarray:
    """Holistic (T, 543, 3) -> COCO-WholeBody (T, 133, 3); points without an equivalent are 0, score 0."""
    points = kps.points if isinstance(kps, Keypoints) else np.asarray(kps, dtype=np.float32)
    if isinstance(kps, Keypoints) and kps.layout != "holistic":
        raise VisionZooError(f"to_coco_wholebody: expected holistic keypoints, got layout {kps.layout!r}")
    if points.ndim != 3 or points.shape[1:] != (NUM_HOLISTIC, 3):
        raise VisionZooError(f"to_coco_wholebody: expected shape (T, {NUM_HOLISTIC}, 3), got {points.shape}")
    have = COCO133_FROM_HOLISTIC >= 0
    out = np.zeros((points.shape[0], NUM_COCO_WHOLEBODY, 3), dtype=np.float32)
    out[:, have] = points[:, COCO133_FROM_HOLISTIC[have]]
    return out


# --- MediaPipe Holistic extraction -----------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def _import_holistic():
    try:
        from mediapipe.python.solutions import holistic
    except ImportError as e:  # the optional extra is missing
        raise VisionZooError(
            f"keypoint extraction needs mediapipe==0.10.14 (pip install 'visionzoo[keypoints]'): {e}"
        ) from None
    return holistic


def _landmarks_to_array(landmarks, count: int, width: int, height: int, with_visibility: bool) -> np.ndarray:
    """A MediaPipe landmark list (or None) -> (count, 3) x, y in pixels and a score."""
    out = np.zeros((count, 3), dtype=np.float32)
    if landmarks is None:
        return out
    lms = landmarks.landmark
    if len(lms) != count:
        raise VisionZooError(f"mediapipe returned {len(lms)} landmarks where {count} were expected")
    out[:, 0] = [lm.x * width for lm in lms]
    out[:, 1] = [lm.y * height for lm in lms]
    out[:, 2] = [lm.visibility for lm in lms] if with_visibility else 1.0
    return out


@dataclass
class HolisticExtractor:
    """MediaPipe Holistic on RGB frames -> ``Keypoints`` in the holistic layout.

    ``static_image_mode=False`` tracks across the frames of one video (faster, temporally smoother);
    each ``extract_frames`` call starts a fresh tracker, so videos never leak into each other.
    ``min_confidence`` is MediaPipe's detection and tracking confidence.
    """

    static_image_mode: bool = False
    min_confidence: float = 0.5

    def _make(self):
        holistic = _import_holistic()
        return holistic.Holistic(
            static_image_mode=self.static_image_mode,
            # The wheel ships only the "full" pose model (complexity 1); 0 and 2 would be downloaded.
            model_complexity=1,
            refine_face_landmarks=False,  # 468 points: the layout above
            min_detection_confidence=self.min_confidence,
            min_tracking_confidence=self.min_confidence,
        )

    def extract_frames(self, frames: np.ndarray, fps: float | None = None) -> Keypoints:
        """frames: uint8 (T, H, W, 3) RGB (or (H, W, 3) for one image) -> Keypoints (T, 543, 3)."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise VisionZooError(
                f"extract_frames: expected uint8 RGB frames (T, H, W, 3), got {frames.dtype} {frames.shape}"
            )
        t, h, w, _ = frames.shape
        points = np.zeros((t, NUM_HOLISTIC, 3), dtype=np.float32)
        with self._make() as model, warnings.catch_warnings():
            # mediapipe 0.10.14 calls a protobuf API that newer protobuf deprecates, once per call
            warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)
            for i in range(t):  # MediaPipe takes one image per call
                res = model.process(np.ascontiguousarray(frames[i]))
                for name, lms, vis in (
                    ("pose", res.pose_landmarks, True),
                    ("left_hand", res.left_hand_landmarks, False),
                    ("right_hand", res.right_hand_landmarks, False),
                    ("face", res.face_landmarks, False),
                ):
                    sl = HOLISTIC_PARTS[name]
                    points[i, sl] = _landmarks_to_array(lms, sl.stop - sl.start, w, h, vis)
        return Keypoints(points, layout="holistic", size=(h, w), fps=fps)

    def extract_path(self, src: str | Path, fps: float | None = None) -> Keypoints:
        """A video file, an image, or a directory of frame images -> Keypoints."""
        frames, src_fps = read_frames(src)
        return self.extract_frames(frames, fps=fps if fps is not None else src_fps)


def read_frames(src: str | Path) -> tuple[np.ndarray, float | None]:
    """uint8 RGB frames (T, H, W, 3) and fps (None if unknown) of a video, an image or a frame dir."""
    src = Path(src)
    if not src.exists():
        raise DataError(src, "no such file or directory (expected a video, an image or a frame directory)")
    if src.is_dir():
        files = sorted((p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not files:
            raise DataError(src, f"no frame images ({', '.join(IMAGE_SUFFIXES)}) in this directory")
        frames = [_read_image(p) for p in files]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise DataError(src, f"frame images differ in size: {sorted(shapes)}; expected one size per video")
        return np.stack(frames), None
    if src.suffix.lower() in IMAGE_SUFFIXES:
        return _read_image(src)[None], None
    return _read_video(src)


def _natural_key(path: Path) -> tuple:
    # frame9.png before frame10.png: digit runs compare as numbers
    return tuple((0, int(tok), "") if tok.isdigit() else (1, 0, tok) for tok in re.split(r"(\d+)", path.name))


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(path, f"cannot read image: {e}") from None


def _read_video(path: Path) -> tuple[np.ndarray, float | None]:
    # Imported lazily: video io needs the optional PyAV extra and lives in its own module.
    try:
        from visionzoo.data.video import read_video, video_info
    except ImportError as e:
        raise DataError(path, f"reading videos needs visionzoo.data.video with PyAV ({e}); "
                              "expected a video, an image or a frame directory") from None
    frames = read_video(path)  # (T, H, W, 3) uint8 RGB tensor
    fps = video_info(path).fps
    return np.ascontiguousarray(np.asarray(frames)), (float(fps) if fps and fps > 0 else None)


# --- files ---------------------------------------------------------------------------------------


@dataclass
class KeypointFile:
    """The content of one keypoint ``.npz`` (see the module docstring)."""

    holistic: Keypoints  # (T, 543, 3)
    coco133: Keypoints  # (T, 133, 3)
    fps: float | None
    size: tuple[int, int]  # (H, W)
    schema_version: int
    metadata: dict


def find_sources(src: str | Path) -> list[Path]:
    """The videos under ``src``: itself if it is a video, an image or a frame directory; otherwise every
    video file and every directory of frame images below it (sorted)."""
    src = Path(src)
    if not src.exists():
        raise DataError(src, "no such file or directory (expected a video, an image or a frame directory)")
    if src.is_file() or _is_frame_dir(src):
        return [src]
    found = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        root = Path(root)
        if root != src and _is_frame_dir(root):
            found.append(root)
            dirs.clear()  # a frame directory is one video
            continue
        found += [root / f for f in sorted(files) if Path(f).suffix.lower() in VIDEO_SUFFIXES]
    if not found:
        raise DataError(src, "no videos or frame directories found below this directory")
    return sorted(found)


def _is_frame_dir(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())


def extract_to_file(
    src: str | Path,
    out: str | Path,
    *,
    static_image_mode: bool = False,
    min_confidence: float = 0.5,
    fps: float | None = None,
    skip_existing: bool = False,
    progress: Callable[[int, int, Path], None] | None = None,
) -> list[Path]:
    """Extract keypoints of every video under ``src`` into ``.npz`` files; returns the written paths.

    ``out`` is a file path ending in ``.npz`` (only when ``src`` is a single video) or a directory.
    ``fps`` overrides the frame rate (frame directories and images carry none).
    ``skip_existing`` keeps output files that already load cleanly (to resume an interrupted run).
    ``progress(done, total, source)`` is called after each video, e.g. to advance a progress bar.
    """
    sources = find_sources(src)
    src, out = Path(src), Path(out)
    single = len(sources) == 1 and sources[0] == src
    if out.suffix == ".npz" and not single:
        raise DataError(out, f"{src} holds {len(sources)} videos; give an output directory, not a .npz file")
    extractor = HolisticExtractor(static_image_mode=static_image_mode, min_confidence=min_confidence)
    written = []
    for i, source in enumerate(sources):
        if out.suffix == ".npz":
            target = out
        elif single:
            target = out / f"{_stem(source)}.npz"
        else:
            target = out / source.relative_to(src).parent / f"{_stem(source)}.npz"
        if not (skip_existing and _loads(target)):
            kps = extractor.extract_path(source, fps=fps)
            save_keypoint_file(
                target, kps, source=str(source),
                options={"static_image_mode": static_image_mode, "min_confidence": min_confidence},
            )
        written.append(target)
        if progress is not None:
            progress(i + 1, len(sources), source)
    return written


def _loads(path: Path) -> bool:
    try:
        load_keypoint_file(path)
    except DataError:
        return False
    return True


def _stem(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def save_keypoint_file(path: str | Path, kps: Keypoints, source: str = "", options: dict | None = None) -> Path:
    """Write holistic ``kps`` (and its COCO-WholeBody mapping) to ``path`` atomically."""
    if kps.layout != "holistic" or kps.size is None:
        raise VisionZooError("save_keypoint_file: expected holistic keypoints with a frame size")
    path = Path(path)
    metadata = {
        "source": source,
        "extractor": "mediapipe-holistic",
        "mediapipe_version": _mediapipe_version(),
        "options": options or {},
        "num_frames": kps.num_frames,
        "coordinates": "x, y in raw-frame pixels; score in [0, 1], 0 = not detected",
        "parts": {
            layout: {name: [s.start, s.stop] for name, s in parts.items()} for layout, parts in LAYOUTS.items()
        },
    }
    arrays = {
        "keypoints_coco133": to_coco_wholebody(kps),
        "keypoints_holistic": kps.points,
        "fps": np.float64(kps.fps if kps.fps is not None else math.nan),
        "size": np.asarray(kps.size, dtype=np.int64),
        "schema_version": np.int64(SCHEMA_VERSION),
        "metadata": np.str_(json.dumps(metadata)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: a crash mid-write leaves the old file (or none), never a truncated one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _mediapipe_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("mediapipe")
    except Exception:  # not installed: files written from given keypoints
        return None


_REQUIRED_KEYS = ("keypoints_coco133", "keypoints_holistic", "fps", "size", "schema_version", "metadata")


def load_keypoint_file(path: str | Path) -> KeypointFile:
    """Read and validate a keypoint ``.npz``; every problem raises a DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such keypoint file")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _REQUIRED_KEYS if k not in data.files]
            if missing:
                raise DataError(path, f"missing arrays {missing}; expected {list(_REQUIRED_KEYS)}")
            arrays = {k: data[k] for k in _REQUIRED_KEYS}
    except DataError:
        raise
    except Exception as e:  # not a zip, truncated, pickled objects, ...
        raise DataError(path, f"not a readable keypoint .npz ({type(e).__name__}: {e})") from None

    version = arrays["schema_version"]
    if version.shape != () or int(version) != SCHEMA_VERSION:
        raise DataError(path, f"schema_version {version.tolist()}: expected {SCHEMA_VERSION}")
    coco, hol = arrays["keypoints_coco133"], arrays["keypoints_holistic"]
    for key, arr, k in (("keypoints_coco133", coco, NUM_COCO_WHOLEBODY), ("keypoints_holistic", hol, NUM_HOLISTIC)):
        if arr.ndim != 3 or arr.shape[1:] != (k, 3) or not np.issubdtype(arr.dtype, np.floating):
            raise DataError(path, f"{key}: expected float (T, {k}, 3), got {arr.dtype} {arr.shape}")
        if not np.isfinite(arr).all():
            raise DataError(path, f"{key}: contains NaN or inf")
    if coco.shape[0] != hol.shape[0]:
        raise DataError(path, f"keypoints_coco133 has {coco.shape[0]} frames, keypoints_holistic {hol.shape[0]}")
    size = arrays["size"]
    if size.shape != (2,) or not np.issubdtype(size.dtype, np.integer) or (size <= 0).any():
        raise DataError(path, f"size: expected 2 positive integers (H, W), got {size.tolist()}")
    fps_arr = arrays["fps"]
    if fps_arr.shape != ():
        raise DataError(path, f"fps: expected a scalar, got shape {fps_arr.shape}")
    try:
        metadata = json.loads(str(arrays["metadata"]))
    except json.JSONDecodeError as e:
        raise DataError(path, f"metadata: not valid JSON ({e})") from None
    if not isinstance(metadata, dict):
        raise DataError(path, "metadata: expected a JSON object")

    fps = float(fps_arr)
    fps = None if math.isnan(fps) else fps
    hw = (int(size[0]), int(size[1]))
    return KeypointFile(
        holistic=Keypoints(hol, layout="holistic", size=hw, fps=fps),
        coco133=Keypoints(coco, layout="coco_wholebody", size=hw, fps=fps),
        fps=fps,
        size=hw,
        schema_version=int(version),
        metadata=metadata,
    )
