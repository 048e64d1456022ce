"""SynthSign's model of a sign language: lexicon, signers, grammar, poses and rendering.

The format writers in ``synthsign.py`` only decide file names and layouts; everything that makes the
corpus *learnable* lives here:

- **Lexicon.** A concept (``RAIN``) has a gloss per language and a *trajectory*: the parameters of a
  sign (handshape at start and end, a 3-point wrist path in front of the body, hand orientation,
  an optional oscillation, one or two hands, a mouthing pattern). Base trajectories are picked by
  farthest-point sampling from many random candidates, so signs are spread out in pose space.
  Concepts in ``SIMILAR_PAIRS`` (``WARM``/``HOT``, ``FOG``/``MIST``, ...) get a *near copy* of their
  partner's trajectory (one cue changed), which is NLA-SLR's "visually similar, semantically related".
- **Two languages.** Language ``a`` glosses are the concept names; language ``b`` glosses are
  pseudo-words. A seeded subset of b's concepts (``shared_fraction``) reuse a's trajectories (the
  cross-lingual signs of Wei & Chen, ICCV'23); the rest get novel trajectories. The lexicon depends
  only on (seed, vocab_size, shared_fraction), never on the language written, so two corpora
  generated with the same seed agree on the shared signs.
- **Grammar.** Glosses follow a topic-comment order (``TIME PLACE NOUN [VERY] ADJ [NOT]``); the spoken
  translation reorders it and adds function words
  (``in the north there will not be very strong rain tomorrow .``).
- **Performance.** A sentence is performed by a signer: per-sign durations jitter around
  ``frames_per_sign``, consecutive signs are joined by interpolated transition frames and the whole
  pose track is smoothed (co-articulation), starting and ending in a rest pose.
- **Skeleton and frames.** Pose parameters -> COCO-WholeBody-133 keypoints (pixels) -> an RGB frame
  drawn with PIL primitives (body, arms, head, mouth, palms and fingers) on the signer's background
  gradient, plus pixel noise. Hands are drawn finger by finger, so handshape is visible in RGB too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from visionzoo.core.errors import ConfigError

# --- concepts, glosses and spoken words --------------------------------------------------------

# category -> [(concept, spoken phrase)]; order inside a category puts related concepts side by side
CONCEPTS: dict[str, list[tuple[str, str]]] = {
    "noun": [("RAIN", "rain"), ("SHOWER", "showers"), ("SNOW", "snow"), ("HAIL", "hail"), ("SUN", "sunshine"),
             ("WIND", "wind"), ("STORM", "storms"), ("THUNDER", "thunder"), ("FOG", "fog"), ("MIST", "mist"),
             ("FROST", "frost"), ("ICE", "ice"), ("CLOUD", "clouds"), ("TEMPERATURE", "temperatures")],
    "adj": [("WARM", "warm"), ("HOT", "hot"), ("COLD", "cold"), ("COOL", "cool"), ("STRONG", "strong"),
            ("HEAVY", "heavy"), ("WET", "wet"), ("DRY", "dry"), ("WEAK", "weak"), ("LIGHT", "light"),
            ("DENSE", "dense"), ("MILD", "mild"), ("FRESH", "fresh"), ("ICY", "icy")],
    "time": [("TODAY", "today"), ("TOMORROW", "tomorrow"), ("MORNING", "in the morning"),
             ("AFTERNOON", "in the afternoon"), ("MONDAY", "on monday"), ("TUESDAY", "on tuesday"),
             ("EVENING", "in the evening"), ("NIGHT", "at night"), ("WEEKEND", "at the weekend"),
             ("FRIDAY", "on friday"), ("SUNDAY", "on sunday"), ("LATER", "later"), ("SOON", "soon")],
    "place": [("NORTH", "in the north"), ("SOUTH", "in the south"), ("CITY", "in the city"),
              ("VILLAGE", "in the villages"), ("RIVER", "along the river"), ("LAKE", "at the lake"),
              ("MOUNTAIN", "in the mountains"), ("VALLEY", "in the valleys"), ("EAST", "in the east"),
              ("WEST", "in the west"), ("COAST", "on the coast"), ("ISLAND", "on the islands"),
              ("FOREST", "in the forest")],
    "mod": [("VERY", "very"), ("NOT", "not")],
}
CATEGORY_OF = {c: cat for cat, items in CONCEPTS.items() for c, _ in items}
SPOKEN = {c: w for items in CONCEPTS.values() for c, w in items}

# Visually similar sign pairs (the second is a near copy of the first) with related meanings.
SIMILAR_PAIRS: list[tuple[str, str]] = [
    ("RAIN", "SHOWER"), ("SNOW", "HAIL"), ("FOG", "MIST"), ("FROST", "ICE"), ("STORM", "THUNDER"),
    ("WARM", "HOT"), ("COLD", "COOL"), ("STRONG", "HEAVY"), ("WET", "DRY"),
    ("TODAY", "TOMORROW"), ("MORNING", "AFTERNOON"), ("MONDAY", "TUESDAY"),
    ("NORTH", "SOUTH"), ("CITY", "VILLAGE"), ("RIVER", "LAKE"), ("MOUNTAIN", "VALLEY"),
]
MAX_VOCAB = sum(len(v) for v in CONCEPTS.values())
MIN_VOCAB = 4


def choose_concepts(vocab_size: int) -> list[str]:
    """The first ``vocab_size`` concepts, round-robin over categories so every size has all slots.

    NOT and VERY come in once the core categories have 2 concepts each; pairs stay adjacent.
    """
    if not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise ConfigError(f"synthsign vocab_size: expected an int in [{MIN_VOCAB}, {MAX_VOCAB}], got {vocab_size!r}")
    order: list[str] = []
    cats = ["noun", "adj", "time", "place"]
    depth = 0
    while len(order) < MAX_VOCAB - 2:
        for cat in cats:
            # two at a time keeps each similar pair (adjacent in CONCEPTS) together
            order += [c for c, _ in CONCEPTS[cat][depth:depth + 2]]
        depth += 2
        if depth == 2:
            order += ["VERY", "NOT"]
    return order[:vocab_size]


_SYLLABLES = ["ka", "lo", "mi", "tu", "sa", "re", "no", "pi", "ve", "da", "ku", "fe", "zo", "ri", "ba", "ne"]


def pseudo_gloss(rng: np.random.Generator, taken: set[str]) -> str:
    """A new language-b gloss: 2-3 syllables, upper case, unique."""
    while True:
        word = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4)))).upper()
        if word not in taken and word not in CATEGORY_OF:
            taken.add(word)
            return word


# --- handshapes and sign trajectories -----------------------------------------------------------

# handshape -> (curl of thumb, index, middle, ring, pinky in [0, 1], finger spread)
HANDSHAPES: dict[str, tuple[tuple[float, ...], float]] = {
    "B": ((0.2, 0.0, 0.0, 0.0, 0.0), 0.1),
    "A": ((0.2, 1.0, 1.0, 1.0, 1.0), 0.1),
    "1": ((0.9, 0.0, 1.0, 1.0, 1.0), 0.2),
    "V": ((0.9, 0.0, 0.0, 1.0, 1.0), 0.7),
    "5": ((0.0, 0.0, 0.0, 0.0, 0.0), 0.9),
    "Y": ((0.0, 1.0, 1.0, 1.0, 0.0), 0.9),
    "C": ((0.4, 0.5, 0.5, 0.5, 0.5), 0.3),
    "I": ((0.9, 1.0, 1.0, 1.0, 0.0), 0.3),
    "W": ((0.9, 0.0, 0.0, 0.0, 1.0), 0.6),
    "L": ((0.0, 0.0, 1.0, 1.0, 1.0), 0.9),
}
HANDSHAPE_NAMES = list(HANDSHAPES)

# Rest pose of the wrists (canonical coordinates, see ``Skeleton``): hands low in front of the body.
REST_R = np.array([0.40, 0.86])
REST_L = np.array([0.60, 0.86])


@dataclass
class Trajectory:
    """Parameters of one sign. Coordinates are canonical (u right, v down, body width ~0.32)."""

    path: np.ndarray  # (3, 2) dominant (right) wrist: start, via, end
    angle: tuple[float, float]  # dominant hand direction at start / end (radians, image coordinates)
    handshape: tuple[str, str]  # dominant handshape at start / end
    osc: tuple[float, float]  # oscillation amplitude and number of cycles (0 = straight)
    two_handed: str  # "none" | "mirror" (left mirrors right) | "base" (left hand static)
    base_loc: np.ndarray  # (2,) left wrist for "base"
    base_shape: str
    mouth: tuple[float, float]  # mouthing amplitude in [0, 1] and cycles

    def to_json(self) -> dict:
        return {"path": np.round(self.path, 4).tolist(), "angle": [round(a, 4) for a in self.angle],
                "handshape": list(self.handshape), "osc": [round(o, 4) for o in self.osc],
                "two_handed": self.two_handed, "base_loc": np.round(self.base_loc, 4).tolist(),
                "base_shape": self.base_shape, "mouth": [round(m, 4) for m in self.mouth]}


def random_trajectory(rng: np.random.Generator) -> Trajectory:
    hs0 = str(rng.choice(HANDSHAPE_NAMES))
    hs1 = hs0 if rng.random() < 0.6 else str(rng.choice(HANDSHAPE_NAMES))
    path = np.stack([rng.uniform([0.22, 0.14], [0.62, 0.72]) for _ in range(3)])
    a0 = float(rng.uniform(-math.pi, 0.0))
    a1 = a0 + float(rng.uniform(-0.8, 0.8))
    osc = (float(rng.uniform(0.02, 0.05)), float(rng.integers(1, 4))) if rng.random() < 0.4 else (0.0, 0.0)
    two = str(rng.choice(["none", "none", "mirror", "base"]))
    base = rng.uniform([0.50, 0.40], [0.70, 0.72])
    mouth = (float(rng.uniform(0.2, 1.0)), float(rng.integers(1, 3))) if rng.random() < 0.5 else (0.0, 0.0)
    return Trajectory(path, (a0, a1), (hs0, hs1), osc, two, base, str(rng.choice(HANDSHAPE_NAMES)), mouth)


def similar_trajectory(base: Trajectory, rng: np.random.Generator) -> Trajectory:
    """A near copy of ``base``: the same sign with one cue changed (the handshape or the end point)."""
    t = Trajectory(base.path.copy(), base.angle, base.handshape, base.osc, base.two_handed,
                   base.base_loc.copy(), base.base_shape, base.mouth)
    if rng.random() < 0.5:  # same movement, another handshape throughout (minimal pair in handshape)
        shape = str(rng.choice([h for h in HANDSHAPE_NAMES if h not in base.handshape]))
        t.handshape = (shape, shape)
    else:  # same start and handshape, the movement ends elsewhere
        step = rng.normal(size=2)
        t.path[2] = np.clip(base.path[2] + 0.14 * step / np.linalg.norm(step), [0.2, 0.12], [0.66, 0.76])
    return t


# --- pose parameters over time -----------------------------------------------------------------
# A pose is a flat vector; interpolating and smoothing in this space keeps hands on smooth paths.
P_WR, P_WL = slice(0, 2), slice(2, 4)  # wrist (u, v) of the right (dominant) and left hand
P_ANG_R, P_ANG_L = 4, 5  # hand direction (radians)
P_CR, P_CL = slice(6, 11), slice(11, 16)  # finger curls (thumb .. pinky)
P_SPREAD_R, P_SPREAD_L, P_MOUTH = 16, 17, 18  # finger spread; mouth opening
POSE_DIM = 19


def _shape(name: str) -> tuple[np.ndarray, float]:
    curls, spread = HANDSHAPES[name]
    return np.asarray(curls), spread


def rest_pose() -> np.ndarray:
    p = np.zeros(POSE_DIM)
    p[P_WR], p[P_WL] = REST_R, REST_L
    p[P_ANG_R], p[P_ANG_L] = -0.3 * math.pi, -0.7 * math.pi
    curls, spread = _shape("B")
    p[P_CR] = p[P_CL] = curls * 0.5
    p[P_SPREAD_R] = p[P_SPREAD_L] = spread
    return p


def sign_poses(tr: Trajectory, n: int, amp: float, offset: np.ndarray) -> np.ndarray:
    """(n, POSE_DIM) pose track of one sign performed with amplitude ``amp`` at ``offset``."""
    s = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2 = tr.path
    centre = tr.path.mean(0)
    wrist = (1 - s) ** 2 * p0 + 2 * s * (1 - s) * p1 + s ** 2 * p2  # quadratic Bezier
    if tr.osc[0] > 0:
        d = p2 - p0
        normal = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-6)
        wrist = wrist + tr.osc[0] * np.sin(2 * math.pi * tr.osc[1] * s) * normal
    wrist = centre + amp * (wrist - centre) + offset
    out = np.zeros((n, POSE_DIM))
    out[:, P_WR] = wrist
    out[:, P_ANG_R] = tr.angle[0] + (tr.angle[1] - tr.angle[0]) * s[:, 0]
    (c0, sp0), (c1, sp1) = _shape(tr.handshape[0]), _shape(tr.handshape[1])
    # handshape changes in the middle third of the sign
    w = np.clip((s - 1 / 3) * 3, 0, 1)
    out[:, P_CR] = (1 - w) * c0 + w * c1
    out[:, P_SPREAD_R] = (1 - w[:, 0]) * sp0 + w[:, 0] * sp1
    if tr.two_handed == "mirror":
        out[:, P_WL] = np.stack([1.0 - wrist[:, 0], wrist[:, 1]], 1)
        out[:, P_ANG_L] = -math.pi - out[:, P_ANG_R]
        out[:, P_CL] = out[:, P_CR]
        out[:, P_SPREAD_L] = out[:, P_SPREAD_R]
    elif tr.two_handed == "base":
        out[:, P_WL] = tr.base_loc + offset
        out[:, P_ANG_L] = -0.5 * math.pi
        cb, spb = _shape(tr.base_shape)
        out[:, P_CL], out[:, P_SPREAD_L] = cb, spb
    else:
        rest = rest_pose()  # one-handed sign: the left hand stays at rest
        for k in (P_WL, P_ANG_L, P_CL, P_SPREAD_L):
            out[:, k] = rest[k]
    if tr.mouth[0] > 0:
        out[:, P_MOUTH] = tr.mouth[0] * np.abs(np.sin(math.pi * tr.mouth[1] * s[:, 0]))
    return out


def descriptor(tr: Trajectory) -> np.ndarray:
    """A fixed-length summary of a sign, used to spread base signs apart (farthest-point sampling)."""
    p = sign_poses(tr, 6, 1.0, np.zeros(2))
    return np.concatenate([2.5 * p[:, :4].ravel(), 0.3 * p[:, P_CR].ravel(), 0.2 * p[:, P_CL].ravel(),
                           0.1 * np.cos(p[:, P_ANG_R]), 0.1 * np.sin(p[:, P_ANG_R])])


def farthest_point_trajectories(rng: np.random.Generator, n: int, pool_factor: int = 24) -> list[Trajectory]:
    cands = [random_trajectory(rng) for _ in range(max(n * pool_factor, 64))]
    feats = np.stack([descriptor(t) for t in cands])
    chosen = [0]
    dist = np.linalg.norm(feats - feats[0], axis=1)
    for _ in range(n - 1):
        i = int(dist.argmax())
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(feats - feats[i], axis=1))
    return [cands[i] for i in chosen]


# --- lexicon ---------------------------------------------------------------------------------


@dataclass
class Lexicon:
    """Both languages' glosses and trajectories for one (seed, vocab_size, shared_fraction)."""

    concepts: list[str]
    trajectories: list[Trajectory]  # indexed by trajectory id
    traj_id: dict[str, dict[str, int]]  # language -> concept -> trajectory id
    gloss: dict[str, dict[str, str]]  # language -> concept -> gloss
    shared: list[str]  # concepts whose a and b signs share a trajectory
    pairs: list[tuple[str, str]]  # similar pairs inside this vocabulary

    def concept_of(self, language: str) -> dict[str, str]:
        return {g: c for c, g in self.gloss[language].items()}


def build_lexicon(seed: int, vocab_size: int, shared_fraction: float, similar_pairs: bool = True) -> Lexicon:
    """``similar_pairs=False`` gives every concept its own far-apart trajectory (no minimal pairs)."""
    if not 0.0 <= shared_fraction <= 1.0:
        raise ConfigError(f"synthsign shared_fraction: expected a float in [0, 1], got {shared_fraction!r}")
    rng = np.random.default_rng([seed, 101])
    concepts = choose_concepts(vocab_size)
    pairs = [(x, y) for x, y in SIMILAR_PAIRS if x in concepts and y in concepts] if similar_pairs else []
    derived = {y for _, y in pairs}
    n_shared = int(round(shared_fraction * vocab_size))
    shared = sorted(rng.choice(concepts, size=n_shared, replace=False).tolist(), key=concepts.index)
    # base trajectories: language a's own signs plus b's novel signs, all mutually far apart
    base_a = [c for c in concepts if c not in derived]
    novel_b = [c for c in concepts if c not in shared and c not in derived]
    pool = farthest_point_trajectories(rng, len(base_a) + len(novel_b))
    perm = rng.permutation(len(pool))  # FPS order is "most distinct first": do not give those all to a
    trajectories: list[Trajectory] = [pool[i] for i in perm]
    ids = iter(range(len(trajectories)))
    traj_id: dict[str, dict[str, int]] = {"a": {}, "b": {}}
    for c in base_a:
        traj_id["a"][c] = next(ids)
    for c in novel_b:
        traj_id["b"][c] = next(ids)
    for lang in ("a", "b"):
        if lang == "b":
            for c in shared:  # cross-lingual signs: b reuses a's trajectory
                traj_id["b"][c] = traj_id["a"][c]
        for x, y in pairs:
            if lang == "b" and y in shared:
                continue
            trajectories.append(similar_trajectory(trajectories[traj_id[lang][x]], rng))
            traj_id[lang][y] = len(trajectories) - 1
    taken: set[str] = set()
    gloss = {"a": {c: c for c in concepts}, "b": {c: pseudo_gloss(rng, taken) for c in concepts}}
    return Lexicon(concepts, trajectories, traj_id, gloss, shared, pairs)


# --- grammar ---------------------------------------------------------------------------------


def sample_clause(rng: np.random.Generator, concepts: list[str]) -> dict[str, str]:
    """Slots of one clause: noun and adjective always, time / place / VERY / NOT when available."""
    by_cat: dict[str, list[str]] = {}
    for c in concepts:
        by_cat.setdefault(CATEGORY_OF[c], []).append(c)
    slots = {"noun": str(rng.choice(by_cat["noun"])), "adj": str(rng.choice(by_cat["adj"]))}
    for cat, p in (("time", 0.7), ("place", 0.7)):
        if cat in by_cat and rng.random() < p:
            slots[cat] = str(rng.choice(by_cat[cat]))
    for mod, p in (("VERY", 0.3), ("NOT", 0.2)):
        if mod in concepts and rng.random() < p:
            slots[mod] = mod
    return slots


# Sign order per language (topic-comment); the spoken translation uses one fixed English grammar.
SIGN_ORDER = {"a": ["time", "place", "noun", "VERY", "adj", "NOT"],
              "b": ["noun", "VERY", "adj", "place", "time", "NOT"]}


def clause_concepts(slots: dict[str, str], language: str) -> list[str]:
    return [slots[k] for k in SIGN_ORDER[language] if k in slots]


def clause_text(slots: dict[str, str]) -> list[str]:
    """``[place] there will [not] be [very] adj noun [time]``: place first, adjective before noun."""
    words = []
    if "place" in slots:
        words += SPOKEN[slots["place"]].split()
    words += ["there", "will"] + (["not"] if "NOT" in slots else []) + ["be"]
    words += (["very"] if "VERY" in slots else []) + [SPOKEN[slots["adj"]], SPOKEN[slots["noun"]]]
    if "time" in slots:
        words += SPOKEN[slots["time"]].split()
    return words


def sample_sentence(rng: np.random.Generator, concepts: list[str], language: str) -> tuple[list[str], list[str]]:
    """(concept sequence in sign order, spoken words): one clause, or two joined by ``and``."""
    clauses = [sample_clause(rng, concepts) for _ in range(2 if rng.random() < 0.25 else 1)]
    signs, words = [], []
    for i, slots in enumerate(clauses):
        signs += clause_concepts(slots, language)
        words += (["and"] if i else []) + clause_text(slots)
    return signs, words + ["."]


# --- signers and performances ------------------------------------------------------------------


@dataclass
class Signer:
    scale: float  # body size relative to the frame
    shift: np.ndarray  # (2,) canonical offset of the whole body
    speed: float  # multiplies sign durations
    amp: float  # signing space: multiplies movement amplitude
    skin: tuple[int, int, int]
    shirt: tuple[int, int, int]
    bg_top: tuple[int, int, int]
    bg_bottom: tuple[int, int, int]


def make_signers(seed: int, n: int) -> list[Signer]:
    if n < 1:
        raise ConfigError(f"synthsign num_signers: expected an int >= 1, got {n!r}")
    rng = np.random.default_rng([seed, 202])
    out = []
    for _ in range(n):
        skin = rng.uniform([120, 80, 60], [240, 200, 170])
        shirt = rng.uniform(0, 140, size=3)
        top = rng.uniform(120, 230, size=3)
        out.append(Signer(
            scale=float(rng.uniform(0.9, 1.08)), shift=rng.uniform([-0.05, -0.03], [0.05, 0.03]),
            speed=float(rng.uniform(0.85, 1.15)), amp=float(rng.uniform(0.85, 1.1)),
            skin=tuple(int(v) for v in skin), shirt=tuple(int(v) for v in shirt),
            bg_top=tuple(int(v) for v in top), bg_bottom=tuple(int(v) for v in top * rng.uniform(0.45, 0.8)),
        ))
    return out


@dataclass
class Performance:
    poses: np.ndarray  # (T, POSE_DIM)
    boundaries: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of each sign


def perform(trajs: list[Trajectory], signer: Signer, frames_per_sign: int, rng: np.random.Generator,
            rest_frames: int = 3) -> Performance:
    """Rest -> sign -> transition -> sign ... -> rest, smoothed so neighbouring signs co-articulate."""
    rest = rest_pose()
    chunks = [np.repeat(rest[None], rest_frames, 0)]
    bounds = []
    t = rest_frames
    prev = rest
    for i, tr in enumerate(trajs):
        n = max(3, int(round(frames_per_sign * signer.speed * rng.uniform(0.8, 1.2))))
        poses = sign_poses(tr, n, signer.amp * rng.uniform(0.9, 1.1), rng.normal(0, 0.012, size=2))
        k = int(rng.integers(1, 4)) if i else 2  # transition (movement epenthesis) frames
        w = (0.5 - 0.5 * np.cos(np.linspace(0, math.pi, k + 2)[1:-1]))[:, None]
        chunks.append((1 - w) * prev + w * poses[0])
        t += k
        chunks.append(poses)
        bounds.append((t, t + n))
        t += n
        prev = poses[-1]
    w = (0.5 - 0.5 * np.cos(np.linspace(0, math.pi, 4)[1:-1]))[:, None]
    chunks += [(1 - w) * prev + w * rest, np.repeat(rest[None], rest_frames, 0)]
    track = np.concatenate(chunks)
    # co-articulation: a small temporal blur lets each sign's edges lean towards its neighbours
    padded = np.concatenate([track[:1], track, track[-1:]])
    track = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    return Performance(track, bounds)


# --- skeleton: pose parameters -> COCO-WholeBody-133 ---------------------------------------------

# canonical coordinates: u in [0, 1] across a square of side min(H, W) centred in the frame
HEAD = np.array([0.5, 0.2])
SHOULDER_R, SHOULDER_L = np.array([0.34, 0.42]), np.array([0.66, 0.42])
HIP_R, HIP_L = np.array([0.39, 0.98]), np.array([0.61, 0.98])
UPPER_ARM, FOREARM = 0.27, 0.25
# finger base direction offsets (radians) from the hand direction and segment lengths
FINGER_BASE = np.array([-0.9, -0.3, 0.0, 0.25, 0.5])
FINGER_SEG = 1.3 * np.array([[0.025, 0.022, 0.018, 0.016], [0.045, 0.025, 0.018, 0.015], [0.045, 0.028, 0.02, 0.016],
                             [0.043, 0.025, 0.018, 0.015], [0.04, 0.02, 0.015, 0.013]])


def _face68(mouth: np.ndarray) -> np.ndarray:
    """(T, 68, 2) iBUG-68 face points around HEAD; the lips open with ``mouth`` (T,)."""
    t = len(mouth)
    jaw_a = np.linspace(math.pi - 0.1, 0.1, 17)  # jaw: right ear -> chin -> left ear
    jaw = HEAD + np.stack([0.075 * np.cos(jaw_a), 0.085 * np.sin(np.linspace(0.1, math.pi - 0.1, 17)) - 0.02], 1)
    brow_r = HEAD + np.stack([np.linspace(-0.055, -0.015, 5), np.full(5, -0.045)], 1)
    brow_l = HEAD + np.stack([np.linspace(0.015, 0.055, 5), np.full(5, -0.045)], 1)
    bridge = HEAD + np.stack([np.zeros(4), np.linspace(-0.03, 0.005, 4)], 1)
    nostril = HEAD + np.stack([np.linspace(-0.015, 0.015, 5), np.full(5, 0.012)], 1)
    eye_x = np.array([-0.015, -0.01, 0.01, 0.015, 0.01, -0.01])
    eye_y = np.array([0.0, -0.005, -0.005, 0.0, 0.005, 0.005])
    eye_r = HEAD + np.stack([-0.033 + eye_x, -0.03 + eye_y], 1)
    eye_l = HEAD + np.stack([0.033 + eye_x, -0.03 + eye_y], 1)
    static = np.concatenate([jaw, brow_r, brow_l, bridge, nostril, eye_r, eye_l])  # (48, 2)
    lip_a = np.linspace(math.pi, -math.pi, 13)[:12]  # outer lip: 12 points around an ellipse
    inner_a = np.linspace(math.pi, -math.pi, 9)[:8]
    open_ = (0.004 + 0.018 * mouth)[:, None]  # (T, 1) half-height of the mouth
    outer = np.stack([np.broadcast_to(HEAD[0] + 0.028 * np.cos(lip_a), (t, 12)),
                      HEAD[1] + 0.045 - open_ * np.sin(lip_a)], -1)
    inner = np.stack([np.broadcast_to(HEAD[0] + 0.018 * np.cos(inner_a), (t, 8)),
                      HEAD[1] + 0.045 - 0.7 * open_ * np.sin(inner_a)], -1)
    return np.concatenate([np.broadcast_to(static, (t, 48, 2)), outer, inner], 1)


def _hand21(wrist: np.ndarray, angle: np.ndarray, curls: np.ndarray, spread: np.ndarray, side: float) -> np.ndarray:
    """(T, 21, 2) hand points: wrist, then thumb/index/middle/ring/pinky 4 joints each.

    A curled finger bends towards the palm at every joint, so its tip ends near the knuckles.
    ``side`` = +1 for the right hand, -1 for the left (the thumb is on opposite sides).
    """
    t = len(wrist)
    base = angle[:, None] + side * FINGER_BASE[None] * (0.6 + 0.6 * spread[:, None])  # (T, 5)
    pos = np.repeat(wrist[:, None], 5, 1)  # (T, 5, 2)
    direction = base
    fingers = []
    for j in range(4):
        bend = (curls * (1.35 if j else 0.4)) * side  # knuckle bends less than the finger joints
        direction = direction + bend
        seg = FINGER_SEG[None, :, j] * (1 - 0.25 * curls)
        pos = pos + seg[..., None] * np.stack([np.cos(direction), np.sin(direction)], -1)
        fingers.append(pos)
    pts = np.stack(fingers, 2).reshape(t, 20, 2)  # (T, finger, joint) -> finger-major order
    return np.concatenate([wrist[:, None], pts], 1)


def _elbow(shoulder: np.ndarray, wrist: np.ndarray, side: float) -> np.ndarray:
    """Two-link inverse kinematics; the elbow bends outwards and down."""
    d = wrist - shoulder
    dist = np.clip(np.linalg.norm(d, axis=1, keepdims=True), 1e-4, UPPER_ARM + FOREARM - 1e-4)
    a = (UPPER_ARM ** 2 - FOREARM ** 2 + dist ** 2) / (2 * dist)
    h = np.sqrt(np.clip(UPPER_ARM ** 2 - a ** 2, 0, None))
    unit = d / dist
    normal = np.stack([unit[:, 1], -unit[:, 0]], 1) * side
    return shoulder + a * unit - h * normal


def skeleton(poses: np.ndarray) -> np.ndarray:
    """(T, POSE_DIM) pose parameters -> (T, 133, 2) canonical COCO-WholeBody points."""
    t = len(poses)
    out = np.zeros((t, 133, 2))
    wr, wl = poses[:, P_WR], poses[:, P_WL]
    er, el = _elbow(SHOULDER_R, wr, -1.0), _elbow(SHOULDER_L, wl, 1.0)
    body = [HEAD + [0, 0.01], HEAD + [0.033, -0.03], HEAD + [-0.033, -0.03], HEAD + [0.075, -0.01],
            HEAD + [-0.075, -0.01], SHOULDER_L, SHOULDER_R, None, None, None, None, HIP_L, HIP_R,
            HIP_L + [0, 0.4], HIP_R + [0, 0.4], HIP_L + [0, 0.8], HIP_R + [0, 0.8]]
    for i, p in enumerate(body):
        if p is not None:
            out[:, i] = p
    out[:, 7], out[:, 8], out[:, 9], out[:, 10] = el, er, wl, wr
    for i, p in zip(range(17, 23), [HIP_L + [0.03, 0.85], HIP_L + [0.05, 0.85], HIP_L + [0, 0.82],
                                     HIP_R + [-0.03, 0.85], HIP_R + [-0.05, 0.85], HIP_R + [0, 0.82]]):
        out[:, i] = p
    out[:, 23:91] = _face68(poses[:, P_MOUTH])
    out[:, 91:112] = _hand21(wl, poses[:, P_ANG_L], poses[:, P_CL], poses[:, P_SPREAD_L], -1.0)
    out[:, 112:133] = _hand21(wr, poses[:, P_ANG_R], poses[:, P_CR], poses[:, P_SPREAD_R], 1.0)
    return out


def to_pixels(canon: np.ndarray, signer: Signer, height: int, width: int) -> np.ndarray:
    """Canonical points -> raw-frame pixels for this signer (body scale and position)."""
    side = min(height, width) * signer.scale
    xy = (canon - 0.5 + signer.shift) * side
    return xy + np.array([width / 2, height / 2 + 0.08 * height])


# --- rendering -----------------------------------------------------------------------------------

_BONES_ARM = [(6, 8), (5, 7)]  # upper arms (shirt)
_BONES_FOREARM = [(8, 10), (7, 9)]


def background(signer: Signer, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 vertical gradient plus a soft diagonal band, per signer."""
    v = np.linspace(0, 1, height)[:, None, None]
    u = np.linspace(0, 1, width)[None, :, None]
    top, bottom = np.asarray(signer.bg_top, float), np.asarray(signer.bg_bottom, float)
    img = (1 - v) * top + v * bottom + 12 * np.sin(6 * (u + v))
    return np.clip(img, 0, 255).astype(np.uint8)


def render(points: np.ndarray, signer: Signer, bg: np.ndarray, rng: np.random.Generator,
           noise: float = 6.0) -> np.ndarray:
    """(T, 133, 2) pixel keypoints -> (T, H, W, 3) uint8 frames (PIL primitives + pixel noise)."""
    t = len(points)
    h, w = bg.shape[:2]
    s = min(h, w) * signer.scale
    lw = {f: max(1, int(round(f * s))) for f in (0.006, 0.008, 0.014, 0.035, 0.055, 0.06, 0.07)}  # widths (px)
    skin, shirt = signer.skin, signer.shirt
    dark = tuple(int(c * 0.7) for c in skin)
    base = Image.fromarray(bg)
    frames = np.empty((t, h, w, 3), dtype=np.uint8)
    hb, wb = (h + 1) // 2, (w + 1) // 2
    for i in range(t):
        p = [tuple(q) for q in points[i].tolist()]  # Python floats: PIL takes them without conversions
        img = base.copy()
        d = ImageDraw.Draw(img)
        d.polygon([p[6], p[5], p[11], p[12]], fill=shirt)  # torso
        (nx, ny), (hx, hy) = p[0], p[0]
        d.line([((p[5][0] + p[6][0]) / 2, (p[5][1] + p[6][1]) / 2), (nx, ny + 0.06 * s)], fill=skin, width=lw[0.06])
        rx, ry, hy = 0.08 * s, 0.1 * s, hy - 0.01 * s
        d.ellipse([hx - rx, hy - ry, hx + rx, hy + ry], fill=skin)  # head
        e, e2 = lw[0.008], lw[0.006]
        for k in (23 + 37, 23 + 44):  # eyes (iBUG upper lids of each eye)
            d.ellipse([p[k][0] - e, p[k][1] - e2, p[k][0] + e, p[k][1] + e], fill=(30, 30, 30))
        d.polygon(p[23 + 48:23 + 60], fill=(120, 30, 40))  # mouth (outer lip contour)
        j = lw[0.035]
        for a, b in _BONES_ARM:
            d.line([p[a], p[b]], fill=shirt, width=lw[0.07])
            d.ellipse([p[b][0] - j, p[b][1] - j, p[b][0] + j, p[b][1] + j], fill=shirt)  # elbow
        for a, b in _BONES_FOREARM:
            d.line([p[a], p[b]], fill=shirt, width=lw[0.055])
        for h0 in (91, 112):  # hands: palm polygon over the knuckles, then each finger as a polyline
            d.polygon([p[h0]] + [p[h0 + 1 + 4 * f] for f in range(1, 5)], fill=skin, outline=dark)
            d.line([p[h0]] + p[h0 + 1:h0 + 5], fill=dark, width=lw[0.014])  # thumb from the wrist
            for f in range(1, 5):
                d.line(p[h0 + 1 + 4 * f:h0 + 5 + 4 * f], fill=dark, width=lw[0.014])
        if noise > 0:
            # luminance noise on 2x2 blocks: as visible as per-pixel noise to a network, but a quarter
            # of the entropy, so PNG/JPEG files stay small and fast to encode. Added frame by frame:
            # clip-sized int16 temporaries cost more in page faults than the arithmetic itself.
            block = rng.standard_normal((hb, wb, 1), dtype=np.float32) * noise
            jitter = np.rint(block).astype(np.int16).repeat(2, 0).repeat(2, 1)[:h, :w]
            frames[i] = np.clip(np.asarray(img, dtype=np.int16) + jitter, 0, 255)
        else:
            frames[i] = np.asarray(img)
    return frames


def keypoint_array(points: np.ndarray, height: int, width: int, rng: np.random.Generator,
                   jitter_px: float = 0.6) -> np.ndarray:
    """(T, 133, 2) pixels -> (T, 133, 3) float32 (x, y, score) as a whole-body detector would give.

    Points get detector-like jitter; points outside the frame (legs, feet) get low scores.
    """
    t = len(points)
    xy = points + rng.normal(0, jitter_px * min(height, width) / 256, size=points.shape)
    score = rng.uniform(0.75, 0.99, size=(t, 133))
    outside = (xy[..., 0] < 0) | (xy[..., 0] >= width) | (xy[..., 1] < 0) | (xy[..., 1] >= height)
    score[outside] = rng.uniform(0.02, 0.2, size=int(outside.sum()))
    return np.concatenate([xy, score[..., None]], -1).astype(np.float32)
