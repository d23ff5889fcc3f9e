"""Which joints of a BVH skeleton are the 22 HumanML3D joints, and the file's units and up axis.

Joint names are mapped for the common skeletons: HumanML3D/SMPL names; and the mocap family
(CMU, Mixamo `mixamorig:`, LAFAN1, MotionBuilder, Biovision's Collar/Shoulder/Elbow/Wrist, Unity,
Unreal `thigh_l`, Blender `thigh.L`, 3ds Max Biped). The spine is mapped by structure: spine3 is
where the arms branch off, spine1/spine2 the intermediate joints nearest to SMPL's proportions, or
points along the bones when the file has fewer; a missing neck, collar or toe is a point on its
bone too. Mocap Head joints sit at the skull base straight above the neck; the head becomes the
point carried by the file's head bone where SMPL's head joint is in the file's rest pose (36
degrees forward). A file whose toes point behind the hips' facing is left-handed and is mirrored.
The imported joints keep the performer's proportions; features are HumanML3D's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from mio.body.bvh.file import SIZE_RATIO_RANGE, UNITS, BvhError, BvhFile, J, rest_pose
from mio.body.humanml3d import facing_direction
from mio.body.skeleton import (
    HEAD_TOP_ABOVE_HEAD_JOINT,
    REST_JOINTS,
)
from mio.core.layouts import HUMANML3D_JOINT_NAMES


@dataclass(frozen=True)
class JointSource:
    """Where a HumanML3D joint comes from: file joint `a`; or the point `frac` of the way from a to
    its child b (a point on the bone); or a point fixed in a's frame at `local` (file units). All
    three move rigidly with the file's skeleton."""

    a: int
    b: int = -1
    frac: float = 0.0
    local: tuple[float, float, float] | None = None

    def position(self, pos: np.ndarray, glob: np.ndarray) -> np.ndarray:
        """(T, J, 3) positions and (T, J, 3, 3) world rotations of the file's joints -> (T, 3)"""
        if self.local is not None:
            return pos[:, self.a] + glob[:, self.a] @ np.asarray(self.local)
        if self.b < 0:
            return pos[:, self.a]
        return pos[:, self.a] + self.frac * (pos[:, self.b] - pos[:, self.a])

    def describe(self, bvh: BvhFile) -> str:
        name = bvh.joints[self.a].name
        if self.local is not None:
            return f"{name}, moved to SMPL's head joint"
        return name if self.b < 0 else f"{self.frac:.2f} of {name}->{bvh.joints[self.b].name}"


@dataclass(frozen=True)
class SkeletonMap:
    convention: str  # "humanml3d/smpl" or "mocap"
    sources: tuple[JointSource, ...]  # one per HumanML3D joint, SMPL order

    def positions(self, pos: np.ndarray, glob: np.ndarray) -> np.ndarray:
        """File-joint positions (T, J, 3) and world rotations (T, J, 3, 3) -> (T, 22, 3)."""
        return np.stack([s.position(pos, glob) for s in self.sources], axis=1)

    def describe(self, bvh: BvhFile) -> tuple[str, ...]:
        return tuple(s.describe(bvh) for s in self.sources)


def _norm(name: str) -> str:
    """Compare names without namespaces (`mixamorig:`), case, or separators: 'Left_Up-Leg' -> 'leftupleg'."""
    return re.sub(r"[^a-z0-9]", "", name.rsplit(":", 1)[-1].lower())


def _sided(side: str, bases: tuple[str, ...]) -> tuple[str, ...]:
    """'left' + ('foot',) -> leftfoot, lfoot, footl, footleft (every side spelling, in that order)."""
    return tuple(a for b in bases for a in (side + b, side[0] + b, b + side[0], b + side))


def _rest_fraction(*chain: str) -> list[float]:
    """Cumulative fractions of the rest skeleton's length along a chain of HumanML3D joints."""
    lengths = [float(np.linalg.norm(REST_JOINTS[J[b]] - REST_JOINTS[J[a]])) for a, b in zip(chain[:-1], chain[1:], strict=True)]
    return list(np.cumsum(lengths)[:-1] / sum(lengths))


SPINE_FRACTIONS = _rest_fraction("pelvis", "spine1", "spine2", "spine3")  # ~0.37, 0.81
_NECK_HEAD = REST_JOINTS[J["head"]] - REST_JOINTS[J["neck"]]
SMPL_HEAD_TILT_DEG = math.degrees(math.atan2(_NECK_HEAD[2], _NECK_HEAD[1]))  # ~36: forward of straight up
NECK_FRACTION = _rest_fraction("spine3", "neck", "head")[0]
COLLAR_FRACTION = _rest_fraction("spine3", "left_collar", "left_shoulder")[0]
SMPL_NAMES = ("pelvis", "l_hip", "r_hip", "spine1", "l_knee", "r_knee", "spine2", "l_ankle", "r_ankle", "spine3",
              "l_foot", "r_foot", "neck", "l_collar", "r_collar", "head", "l_shoulder", "r_shoulder", "l_elbow",
              "r_elbow", "l_wrist", "r_wrist")
# The mocap family's names per joint role, after `_norm` (side spellings are added by `_sided`).
PELVIS_NAMES = ("hips", "pelvis", "hip")
HIP_BASES = ("upleg", "upperleg", "thigh", "hip", "femur")
KNEE_BASES = ("leg", "lowerleg", "shin", "calf", "knee", "tibia")
TOE_BASES = ("toebase", "toe", "toes", "ball", "toe0")
UPPER_ARM_BASES = ("upperarm", "arm", "humerus")
COLLAR_BASES = ("collar", "clavicle")
ELBOW_BASES = ("forearm", "lowerarm", "elbow", "radius")
WRIST_BASES = ("hand", "wrist")
NECK_NAMES = ("neck", "neck1", "neck01")
HEAD_NAMES = ("head",)
_SIDE_WORDS = ("left", "right", "l", "r", "lf", "rt")


class _Names:
    """Looks up file joints by normalised name (first in file order wins; End Sites are skipped).
    A name also answers without its leading words, so rig prefixes need no table: 'Bip01 L Thigh'
    is also 'lthigh', 'Character1_Hips' also 'hips' (a name keeps at least two words)."""

    def __init__(self, bvh: BvhFile) -> None:
        self.exact: dict[str, int] = {}
        self.short: dict[str, int] = {}
        for i, jt in enumerate(bvh.joints):
            if jt.end_site:
                continue
            self.exact.setdefault(_norm(jt.name), i)
            words = [w for w in re.split(r"[^a-z0-9]+", jt.name.rsplit(":", 1)[-1].lower()) if w]
            for k in range(1, max(len(words) - 1, 2 if len(words) == 2 else 1)):  # 'Character1_Hips' -> 'hips'
                if words[k - 1] in _SIDE_WORDS:  # never drop the side: 'Left_Up_Leg' is no 'upleg'
                    break
                self.short.setdefault("".join(words[k:]), i)

    def find(self, aliases: tuple[str, ...]) -> int | None:
        for table in (self.exact, self.short):
            hit = next((table[a] for a in aliases if a in table), None)
            if hit is not None:
                return hit
        return None


def ancestors(bvh: BvhFile, j: int) -> list[int]:
    out = [j]
    while bvh.joints[out[-1]].parent >= 0:
        out.append(bvh.joints[out[-1]].parent)
    return out


def _path(bvh: BvhFile, top: int, bottom: int) -> list[int] | None:
    """Joints from `top` down to its descendant `bottom`, both included (None if not a descendant)."""
    up = ancestors(bvh, bottom)
    return list(reversed(up[: up.index(top) + 1])) if top in up else None


def _along(bvh: BvhFile, path: list[int], frac: float) -> JointSource:
    """The point `frac` of the rest length along a path of joints, as a point on one of its bones."""
    lengths = np.array([np.linalg.norm(bvh.joints[k].offset) for k in path[1:]])
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    target = frac * cum[-1]
    k = int(np.clip(np.searchsorted(cum, target, side="right") - 1, 0, len(lengths) - 1))
    s = (target - cum[k]) / lengths[k] if lengths[k] > 0 else 0.0
    return JointSource(path[k], path[k + 1], float(s))


def _spine(bvh: BvhFile, path: list[int], where: str) -> tuple[JointSource, JointSource]:
    """spine1, spine2 on the pelvis -> spine3 path: real joints nearest SMPL's fractions, else bone points."""
    lengths = [float(np.linalg.norm(bvh.joints[k].offset)) for k in path[1:]]
    total = sum(lengths)
    if total <= 0:
        raise BvhError(f"{where}: the chest (where the arms branch off) sits on the pelvis")
    cum = np.cumsum(lengths) / total
    inner = [(path[i + 1], float(cum[i])) for i in range(len(path) - 2) if 1e-3 < cum[i] < 1 - 1e-3]
    f1, f2 = SPINE_FRACTIONS
    if len(inner) >= 2:
        pairs = [(a, b) for ia, a in enumerate(inner) for b in inner[ia + 1:]]
        a, b = min(pairs, key=lambda ab: abs(ab[0][1] - f1) + abs(ab[1][1] - f2))
        return JointSource(a[0]), JointSource(b[0])
    if len(inner) == 1:
        (j, f), = inner
        if abs(f - f1) <= abs(f - f2):
            return JointSource(j), _along(bvh, path, f2)
        return _along(bvh, path, f1), JointSource(j)
    return _along(bvh, path, f1), _along(bvh, path, f2)


def _single_child(bvh: BvhFile, j: int) -> int | None:
    kids = bvh.children(j)
    return kids[0] if len(kids) == 1 else None


def map_skeleton(bvh: BvhFile, where: str = "BVH") -> SkeletonMap:
    """Which file joint (or point on a bone) each of the 22 HumanML3D joints is; a one-line
    `BvhError` lists the joints it could not find."""
    names = _Names(bvh)
    # 1. HumanML3D's or SMPL's own names (our files, SMPL/AMASS exports)
    own = [names.find((_norm(h), s)) for h, s in zip(HUMANML3D_JOINT_NAMES, SMPL_NAMES, strict=True)]
    if all(i is not None for i in own):
        return SkeletonMap("humanml3d/smpl", tuple(JointSource(i) for i in own))  # type: ignore[arg-type]
    # 2. the mocap family
    found: dict[str, int | JointSource | None] = {}
    pelvis = names.find(PELVIS_NAMES)
    found["pelvis"] = pelvis if pelvis is not None else 0  # else the (first) root
    for side in ("left", "right"):
        found[f"{side}_hip"] = names.find(_sided(side, HIP_BASES))
        found[f"{side}_knee"] = names.find(_sided(side, KNEE_BASES))
        ankle, foot = names.find(_sided(side, ("ankle",))), names.find(_sided(side, ("foot",)))
        if ankle is None:  # CMU, Mixamo: the Foot joint is the ankle
            ankle, foot = foot, None
        found[f"{side}_ankle"] = ankle
        toe = names.find(_sided(side, TOE_BASES))
        if toe is None:  # Biovision: Ankle -> Foot; or an ankle ending in its toes' End Site
            toe = foot if foot is not None else _single_child(bvh, ankle) if ankle is not None else None
        found[f"{side}_foot"] = toe
        upper = names.find(_sided(side, UPPER_ARM_BASES))
        collar = names.find(_sided(side, COLLAR_BASES))
        shoulder = names.find(_sided(side, ("shoulder",)))
        if upper is None:  # Biovision: Collar -> Shoulder -> Elbow -> Wrist
            upper = shoulder
        elif collar is None:  # CMU, Mixamo: Shoulder (the clavicle) -> Arm -> ForeArm -> Hand
            collar = shoulder
        found[f"{side}_shoulder"], found[f"{side}_collar"] = upper, collar
        found[f"{side}_elbow"] = names.find(_sided(side, ELBOW_BASES))
        found[f"{side}_wrist"] = names.find(_sided(side, WRIST_BASES))
    found["head"] = names.find(HEAD_NAMES)
    found["neck"] = names.find(NECK_NAMES)
    hints = {"left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot", "left_foot": "LeftToeBase",
             "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand", "head": "Head"}
    required = [k for k in found if k not in ("neck", "left_collar", "right_collar")]
    missing = [k for k in required if found[k] is None]
    if missing:
        def hint(k: str) -> str:
            h = hints.get(k.replace("right", "left"))
            return f"{k} ({h.replace('Left', 'Right') if k.startswith('right') else h})" if h else k

        listed = ", ".join(jt.name for jt in bvh.joints if not jt.end_site)
        listed = listed if len(listed) < 300 else listed[:300] + " ..."
        raise BvhError(f"{where}: cannot map the skeleton onto HumanML3D's 22 joints: no joint for "
                       f"{', '.join(hint(k) for k in missing)} [file joints: {listed}]")
    # 3. the spine by structure: spine3 is where the arms branch off
    arm = {s: found[f"{s}_collar"] if found[f"{s}_collar"] is not None else found[f"{s}_shoulder"]
           for s in ("left", "right")}
    left_up, right_up = ancestors(bvh, arm["left"]), ancestors(bvh, arm["right"])  # type: ignore[arg-type]
    chest = next((a for a in left_up[1:] if a in right_up[1:]), None)
    spine_path = _path(bvh, found["pelvis"], chest) if chest is not None else None  # type: ignore[arg-type]
    if chest is None or spine_path is None or len(spine_path) < 2:
        raise BvhError(f"{where}: cannot find the chest: the arms do not branch off a joint above the pelvis")
    found["spine3"] = chest
    found["spine1"], found["spine2"] = _spine(bvh, spine_path, where)
    head_path = _path(bvh, chest, found["head"])  # type: ignore[arg-type]
    if head_path is None:
        raise BvhError(f"{where}: the head is not above the chest ({bvh.joints[chest].name})")
    if found["neck"] is None or found["neck"] not in head_path:
        found["neck"] = _along(bvh, head_path, NECK_FRACTION)
    for side in ("left", "right"):
        arm_path = _path(bvh, chest, found[f"{side}_shoulder"])  # type: ignore[arg-type]
        if found[f"{side}_collar"] is None:
            if arm_path is None:
                raise BvhError(f"{where}: the {side} arm does not hang off the chest ({bvh.joints[chest].name})")
            found[f"{side}_collar"] = _along(bvh, arm_path, COLLAR_FRACTION)
    sources = [v if isinstance(v, JointSource) else JointSource(int(v))  # type: ignore[arg-type]
               for v in (found[n] for n in HUMANML3D_JOINT_NAMES)]
    sources[J["head"]] = _smpl_head(bvh, sources)
    return SkeletonMap("mocap", tuple(sources))


def _smpl_head(bvh: BvhFile, sources: list[JointSource]) -> JointSource:
    """Mocap Head joints sit at the skull base, straight above the neck; SMPL's head joint (which
    HumanML3D motion and our renderer expect) is `SMPL_HEAD_TILT_DEG` forward of that in the rest
    pose. Returns the point fixed in the file's head that is there in the file's rest pose (same
    neck->head length), so nods and turns carry it as they carry the skull."""
    pos, glob = rest_pose(bvh)
    rest = np.stack([s.position(pos, glob)[0] for s in sources])  # (22, 3) file rest pose
    up = _unit_or_none(rest[J["head"]] - 0.5 * (rest[J["left_ankle"]] + rest[J["right_ankle"]]))
    left = (rest[J["left_hip"]] - rest[J["right_hip"]]) + (rest[J["left_shoulder"]] - rest[J["right_shoulder"]])
    head, neck = sources[J["head"]], rest[J["neck"]]
    if up is None:
        return head
    forward = _unit_or_none(np.cross(left - np.dot(left, up) * up, up))  # right-handed: x left, y up, z forward
    toes = 0.5 * (rest[J["left_foot"]] + rest[J["right_foot"]] - rest[J["left_ankle"]] - rest[J["right_ankle"]])
    if forward is None:
        return head
    if np.dot(toes, forward) < -0.5 * np.linalg.norm(toes):  # a left-handed file: the toes know where forward is
        forward = -forward
    length = float(np.linalg.norm(rest[J["head"]] - neck))
    tilt = math.radians(SMPL_HEAD_TILT_DEG)
    target = neck + length * (math.cos(tilt) * up + math.sin(tilt) * forward)
    # In the rest pose every rotation is zero, so a world offset there is the local offset.
    local = glob[0, head.a].T @ (target - head.position(pos, glob)[0])
    return JointSource(head.a, local=tuple(float(v) for v in local))


def _unit_or_none(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else None


# ---------------------------------------------------------------------------------------------
# Units, up axis, handedness
# ---------------------------------------------------------------------------------------------


def skeleton_size(joints: np.ndarray) -> float:
    """A pose-free size: summed bone lengths of a leg (mean of both) and pelvis -> head. (T,22,3) -> scalar"""
    def chain(*names: str) -> np.ndarray:
        idx = [J[n] for n in names]
        return np.sum(np.linalg.norm(np.diff(joints[:, idx], axis=1), axis=-1), axis=-1)  # (T,)

    legs = 0.5 * (chain("left_hip", "left_knee", "left_ankle") + chain("right_hip", "right_knee", "right_ankle"))
    return float(np.median(legs + chain("pelvis", "spine1", "spine2", "spine3", "neck", "head")))


REST_SIZE = skeleton_size(REST_JOINTS[None])  # metres
REST_STATURE = float(REST_JOINTS[J["head"], 1] + HEAD_TOP_ABOVE_HEAD_JOINT)  # toes on y = 0


def parse_units(units: str | float | None) -> float | None:
    """'cm' / 'in' / '0.01' / 0.01 -> metres per file unit; None or 'auto' -> None (detect)."""
    if units is None or (isinstance(units, str) and units.strip().lower() in ("", "auto")):
        return None
    if isinstance(units, str) and units.strip().lower() in UNITS:
        return UNITS[units.strip().lower()]
    try:
        value = float(units)
    except ValueError:
        raise BvhError(f"--units must be one of {', '.join(UNITS)}, auto, or metres per file unit; got {units!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise BvhError(f"--units must be a positive number of metres per file unit, got {units!r}")
    return value


def detect_units(size_file_units: float, where: str = "BVH") -> tuple[str, float]:
    """The unit in which the skeleton is closest to a human's size -> (name, metres per unit)."""
    if not size_file_units > 0:
        raise BvhError(f"{where}: the skeleton has no size (all joints in one place)")
    name, per = min(UNITS.items(), key=lambda kv: abs(math.log(size_file_units * kv[1] / REST_SIZE)))
    ratio = size_file_units * per / REST_SIZE
    if not SIZE_RATIO_RANGE[0] <= ratio <= SIZE_RATIO_RANGE[1]:
        raise BvhError(f"{where}: cannot tell the units: the skeleton is {size_file_units * REST_STATURE / REST_SIZE:.4g} "
                       f"file units tall, not a human in {', '.join(UNITS)}; pass --units")
    return name, per


def detect_up(joints: np.ndarray) -> str:
    """The file axis the head is above the ankles along, most of the time: 'y', '-z', ... (T,22,3)"""
    v = np.median(joints[:, J["head"]] - 0.5 * (joints[:, J["left_ankle"]] + joints[:, J["right_ankle"]]), axis=0)
    k = int(np.argmax(np.abs(v)))
    return ("-" if v[k] < 0 else "") + "xyz"[k]


def toes_point_back(joints: np.ndarray) -> bool:
    """True when the toes point behind where the hips and shoulders face: a mirrored (left-handed) file."""
    forward = facing_direction(joints, dataset_quirk=False)  # (T, 3)
    toes = 0.5 * (joints[:, J["left_foot"]] - joints[:, J["left_ankle"]]
                  + joints[:, J["right_foot"]] - joints[:, J["right_ankle"]])
    toes[:, 1] = 0.0
    cos = np.sum(toes * forward, axis=-1) / np.maximum(np.linalg.norm(toes, axis=-1), 1e-9)
    return bool(np.median(cos) < -0.5)


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------
