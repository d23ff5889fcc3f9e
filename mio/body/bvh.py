"""BVH in and out: motion-capture files onto the 22-joint HumanML3D skeleton (§4.1), and back.

    motion = import_bvh("take.bvh")            # any BVH -> ImportedMotion: features (T, 263), joints, 20 fps
    motion.save("motion.npz")                  # what `mio body generate` writes, plus where it came from
    write_bvh("walk.bvh", features)            # features (T, 263) at 20 fps -> the 22-joint hierarchy
    joints, fps = read_bvh_joints("walk.bvh")  # (T, 22, 3) metres, Y up, at the file's own rate

Reading follows the Biovision format: a HIERARCHY of ROOT/JOINT/End Site blocks with an OFFSET and
a CHANNELS line each, then MOTION with `Frames:`, `Frame Time:` and one row of channel values per
frame. A joint's local transform is a translation, then its rotation channels composed in the
order they are listed (intrinsic: "Zrotation Xrotation Yrotation" is Rz Rx Ry on column vectors),
in degrees. Position channels *are* the joint's translation from its parent and replace its OFFSET
(how Blender and MotionBuilder read them; the root's are its world position); they may sit on any
joint. Units are found from the skeleton's size (m, cm, mm, inches or the CMU database's
1/0.45 inch) unless given, the up axis from where the head is, and the motion is resampled to 20
fps by slerp of every joint's local rotation, so bones keep their lengths.

Joint names are mapped for the common skeletons: HumanML3D/SMPL names; and the mocap family
(CMU, Mixamo `mixamorig:`, LAFAN1, MotionBuilder, Biovision's Collar/Shoulder/Elbow/Wrist, Unity,
Unreal `thigh_l`, Blender `thigh.L`, 3ds Max Biped). The spine is mapped by structure: spine3 is
where the arms branch off, spine1/spine2 the intermediate joints nearest to SMPL's proportions, or
points along the bones when the file has fewer; a missing neck, collar or toe is a point on its
bone too. Mocap Head joints sit at the skull base straight above the neck; the head becomes the
point carried by the file's head bone where SMPL's head joint is in the file's rest pose (36
degrees forward). A file whose toes point behind the hips' facing is left-handed and is mirrored.
The imported joints keep the performer's proportions; features are HumanML3D's.

Writing: HumanML3D stores joint positions; BVH wants a hierarchy with fixed offsets and per-joint
rotations. Each bone's offset has the motion's own length (its median over the clip) along the
rest pose's direction (`skeleton.REST_OFFSETS`, arms down); the pelvis' and chest's children (hips,
spine, neck, collars) keep where the performer has them in the pelvis/chest frame (their median
there). World rotations come from where the children are: the pelvis and spine3 from a full
frame (up the spine, across the hips / collars), single-child joints by the shortest arc from
where the parent carries the bone (minimal twist), leaf joints keep their parent's. For a rigid
skeleton (imported mocap, the procedural library) FK of the file then gives every joint back
(to float precision); a joint that FK would still miss by more than `POSITION_TOLERANCE_M` (bone
lengths of generated motion drift from frame to frame) also gets position channels, so FK of
every written file reproduces the joints within 0.1 mm, toes on the floor where the motion has them.

Output files: centimetres (what Blender, Maya and MotionBuilder expect from mocap BVH), Y up, the
character faces +Z; channels "Zrotation Yrotation Xrotation" in degrees (local matrix Rz Ry Rx).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mio.body.humanml3d import facing_direction, features_to_joints, joints_to_features
from mio.body.skeleton import (
    HEAD_TOP_ABOVE_HEAD_JOINT,
    PARENTS,
    REST_JOINTS,
    REST_OFFSETS,
    qbetween,
    qinv,
    qmul,
    qrot,
)
from mio.core.errors import InputError
from mio.core.layouts import BODY_FPS, HUMANML3D, HUMANML3D_JOINT_NAMES, HUMANML3D_JOINTS

CM_PER_M = 100.0
UNITS: dict[str, float] = {  # metres per file unit
    "m": 1.0,
    "cm": 0.01,
    "mm": 0.001,
    "in": 0.0254,
    "cmu": 0.0254 / 0.45,  # CMU ASF/AMC length unit (1/0.45 inch), kept by its BVH conversions
}
SIZE_RATIO_RANGE = (0.35, 2.5)  # plausible performer size / the rest skeleton's (a toddler .. a giant)
MAX_BVH_BYTES = 512 << 20  # ~30 minutes of a 100-joint skeleton at 120 fps; parsing needs ~3x this in RAM
MOTION_CHUNK_CHARS = 1 << 22  # MOTION text converted per step (4 MB)
POSITION_TOLERANCE_M = 1e-4  # the writer adds position channels where rotation-only FK misses by more
OUT_CHANNELS = ("Zrotation", "Yrotation", "Xrotation")
OUT_POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
_CHANNEL_NAMES = ("xposition", "yposition", "zposition", "xrotation", "yrotation", "zrotation")

# Proper rotations taking each possible up axis of a file to +Y (handedness is kept).
UP_AXES: dict[str, np.ndarray] = {
    "y": np.eye(3),
    "-y": np.diag([1.0, -1.0, -1.0]),
    "z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    "-z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
    "x": np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    "-x": np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
}

CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c in range(HUMANML3D_JOINTS) if PARENTS[c] == j) for j in range(HUMANML3D_JOINTS)
)


def _dfs(j: int = 0) -> tuple[int, ...]:
    return (j,) + tuple(k for c in CHILDREN[j] for k in _dfs(c))


DFS_ORDER = _dfs()  # the order joints appear in a written file (channels follow it)
# Joints with several children get a full frame: {joint: (up joints, (left, right) pairs across)},
# first choices first (see `frame_spec`): pelvis from spine1 and the hips, spine3 from the neck and the collars.
_FRAME_CHOICES = {0: ((3, 6, 9), ((1, 2), (4, 5))), 9: ((12, 15), ((13, 14), (16, 17)))}
MIN_FRAME_SPAN_M = 0.01  # points closer than this do not define a direction
J = {name: i for i, name in enumerate(HUMANML3D_JOINT_NAMES)}


class BvhError(InputError):
    """A BVH file that cannot be read or mapped; the message is one line naming what is wrong."""


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BvhJoint:
    name: str
    parent: int  # index in BvhFile.joints, -1 for a root
    offset: np.ndarray  # (3,) in file units
    channels: tuple[str, ...]  # lower case, e.g. ("zrotation", "xrotation", "yrotation")
    first_column: int  # column of channels[0] in the MOTION rows
    end_site: bool = False


@dataclass(frozen=True)
class BvhFile:
    joints: tuple[BvhJoint, ...]  # file order: parents precede children
    frame_time: float  # seconds
    motion: np.ndarray  # (T, C) channel values

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def frames(self) -> int:
        return len(self.motion)

    def children(self, j: int) -> list[int]:
        return [k for k, jt in enumerate(self.joints) if jt.parent == j]


def _floats(tokens: list[str], i: int, n: int, where: str, what: str) -> np.ndarray:
    try:
        vals = np.array([float(t) for t in tokens[i : i + n]], dtype=np.float64)
    except ValueError:
        raise BvhError(f"{where}: {what} needs {n} numbers, got {' '.join(tokens[i:i + n])!r}") from None
    if len(vals) < n or not np.all(np.isfinite(vals)):
        raise BvhError(f"{where}: {what} needs {n} finite numbers, got {' '.join(tokens[i:i + n])!r}")
    return vals


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _motion_values(text: str, start: int, columns: int, where: str) -> np.ndarray:
    """Every number after `start`, as float64, converted in chunks of whole lines."""
    chunks: list[np.ndarray] = []
    count, pos = 0, start
    while pos < len(text):
        end = text.find("\n", pos + MOTION_CHUNK_CHARS)
        end = len(text) if end < 0 else end
        words = text[pos:end].split()
        try:
            chunks.append(np.array(words, dtype=np.float64))
        except ValueError:
            bad = next(k for k, w in enumerate(words) if not _is_number(w))
            if end == len(text) and bad == len(words) - 1:
                raise BvhError(f"{where}: the MOTION data ends in the middle of a number ({words[bad]!r}; "
                               "truncated?)") from None
            raise BvhError(f"{where}: MOTION value {words[bad][:20]!r} in frame {(count + bad) // columns + 1} "
                           "is not a number") from None
        count += len(words)
        pos = end
    return np.concatenate(chunks) if chunks else np.zeros(0)


def parse_bvh(text: str, where: str = "BVH") -> BvhFile:
    """Parse BVH text; every malformed input raises a one-line `BvhError` naming `where`."""
    m = re.search(r"^\s*MOTION\b", text, flags=re.MULTILINE)
    if m is None:
        raise BvhError(f"{where}: not a BVH file (no MOTION section; truncated?)")
    tokens = text[: m.start()].split()
    if not tokens or tokens[0].upper() != "HIERARCHY":
        raise BvhError(f"{where}: not a BVH file (it must start with HIERARCHY)")
    joints: list[dict] = []
    stack: list[int] = []
    columns = 0
    i = 1
    while i < len(tokens):
        key = tokens[i].upper()
        if key in ("ROOT", "JOINT", "END"):
            if key != "ROOT" and not stack:
                raise BvhError(f"{where}: {tokens[i]} outside a ROOT block")
            if key == "END" and joints[stack[-1]]["end_site"]:
                raise BvhError(f"{where}: an End Site cannot have children")
            k = i + 1
            while k < len(tokens) and tokens[k] != "{":
                k += 1
            if k >= len(tokens):
                raise BvhError(f"{where}: {tokens[i]} {' '.join(tokens[i + 1:i + 3])} has no '{{' block")
            name = " ".join(tokens[i + 1 : k]) if key != "END" else ""
            if key != "END" and not name:
                raise BvhError(f"{where}: a {tokens[i]} without a name")
            parent = stack[-1] if stack else -1
            if key == "END":
                name = f"{joints[parent]['name']}/End Site"
            joints.append({"name": name, "parent": parent, "offset": None, "channels": (), "first": columns,
                           "end_site": key == "END"})
            stack.append(len(joints) - 1)
            i = k + 1
        elif key == "OFFSET":
            if not stack:
                raise BvhError(f"{where}: OFFSET outside a joint")
            joints[stack[-1]]["offset"] = _floats(tokens, i + 1, 3, where, f"OFFSET of {joints[stack[-1]]['name']}")
            i += 4
        elif key == "CHANNELS":
            if not stack or joints[stack[-1]]["end_site"]:
                raise BvhError(f"{where}: CHANNELS outside a joint")
            jt = joints[stack[-1]]
            try:
                n = int(tokens[i + 1])
            except (IndexError, ValueError):
                raise BvhError(f"{where}: CHANNELS of {jt['name']} needs a count") from None
            names = tuple(t.lower() for t in tokens[i + 2 : i + 2 + n])
            bad = [t for t in names if t not in _CHANNEL_NAMES]
            if len(names) != n or bad or not 0 <= n <= 6 or len(set(names)) != n:
                raise BvhError(f"{where}: CHANNELS of {jt['name']}: expected {n} distinct of X/Y/Z position/rotation, "
                               f"got {' '.join(tokens[i + 2:i + 2 + n])!r}")
            jt["channels"], jt["first"] = names, columns
            columns += n
            i += 2 + n
        elif key == "}":
            if not stack:
                raise BvhError(f"{where}: unbalanced '}}' in the HIERARCHY")
            if joints[stack[-1]]["offset"] is None:
                raise BvhError(f"{where}: {joints[stack[-1]]['name']} has no OFFSET")
            stack.pop()
            i += 1
        else:
            raise BvhError(f"{where}: unexpected {tokens[i]!r} in the HIERARCHY")
    if stack:
        raise BvhError(f"{where}: the HIERARCHY ends inside {joints[stack[-1]]['name']} (missing '}}')")
    if not joints:
        raise BvhError(f"{where}: the HIERARCHY has no joints")
    if columns == 0:
        raise BvhError(f"{where}: no joint has CHANNELS: nothing moves")

    # The MOTION block is most of a file: search and convert it in place, a few MB at a time.
    head_end = min(len(text), m.end() + 4096)
    frames_m = re.compile(r"Frames\s*:\s*(\S+)").search(text, m.end(), head_end)
    time_m = re.compile(r"Frame\s+Time\s*:\s*(\S+)").search(text, m.end(), head_end)
    if frames_m is None or time_m is None:
        raise BvhError(f"{where}: MOTION needs 'Frames:' and 'Frame Time:' lines")
    try:
        n_frames = int(frames_m.group(1))
    except ValueError:
        raise BvhError(f"{where}: 'Frames: {frames_m.group(1)[:20]}' is not a frame count") from None
    try:
        frame_time = float(time_m.group(1))
    except ValueError:
        raise BvhError(f"{where}: 'Frame Time: {time_m.group(1)[:20]}' is not a number of seconds") from None
    if n_frames < 1:
        raise BvhError(f"{where}: the file has no frames (Frames: {n_frames})")
    if not (math.isfinite(frame_time) and 1e-4 <= frame_time <= 10.0):
        raise BvhError(f"{where}: Frame Time {frame_time} s is not a frame rate (0.1-10000 fps)")
    values = _motion_values(text, time_m.end(), columns, where)
    if values.size != n_frames * columns:
        got = values.size / columns
        raise BvhError(f"{where}: declares {n_frames} frames of {columns} channels but holds {got:g} frames"
                       + (" (truncated?)" if got < n_frames else ""))
    if not np.all(np.isfinite(values)):
        raise BvhError(f"{where}: MOTION data has NaN or infinite values")
    out = tuple(BvhJoint(j["name"], j["parent"], j["offset"], j["channels"], j["first"], j["end_site"])
                for j in joints)
    return BvhFile(out, frame_time, values.reshape(n_frames, columns))


def read_bvh(path: str | Path) -> BvhFile:
    """Parse a BVH file; unreadable, oversized or malformed files raise a one-line `BvhError`."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BVH_BYTES:
            raise BvhError(f"{p}: {size / 2**20:.0f} MiB is more than the {MAX_BVH_BYTES >> 20} MiB a BVH may be")
        text = p.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BvhError(f"{p}: not a BVH file (not text)") from None
    except OSError as e:
        raise BvhError(f"cannot read {p}: {e.strerror or e}") from None
    return parse_bvh(text, str(p))


# ---------------------------------------------------------------------------------------------
# Kinematics of a parsed file
# ---------------------------------------------------------------------------------------------


def local_transforms(bvh: BvhFile) -> tuple[Rotation, np.ndarray]:
    """Local rotations (a flat Rotation of T*J, frame-major) and translations (T, J, 3) in file units."""
    t, n = bvh.frames, len(bvh.joints)
    quats = np.zeros((t, n, 4))
    quats[..., 3] = 1.0  # scipy's (x, y, z, w): identity
    trans = np.tile(np.stack([jt.offset for jt in bvh.joints]), (t, 1, 1))
    for j, jt in enumerate(bvh.joints):
        rot: Rotation | None = None
        for k, ch in enumerate(jt.channels):
            col = bvh.motion[:, jt.first_column + k]
            if ch.endswith("position"):
                trans[:, j, "xyz".index(ch[0])] = col  # the channel is the translation (replaces OFFSET)
            else:
                step = Rotation.from_euler(ch[0].upper(), col[:, None], degrees=True)
                rot = step if rot is None else rot * step  # listed order, intrinsic: R1 R2 R3
        if rot is not None:
            quats[:, j] = rot.as_quat()
    return Rotation.from_quat(quats.reshape(-1, 4)), trans


def sample_plan(frames: int, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which source frames each output frame at fps_out lies between: (i0, i1, weight of i1), (T_out,)."""
    if abs(fps_in - fps_out) < 1e-6 * fps_out or frames == 1:
        i = np.arange(frames)
        return i, i, np.zeros(frames)
    n_out = int(np.floor((frames - 1) * fps_out / fps_in + 1e-6)) + 1
    at = np.arange(n_out) * (fps_in / fps_out)  # source frame of each output frame
    i0 = np.minimum(np.floor(at).astype(np.int64), frames - 1)
    i1 = np.minimum(i0 + 1, frames - 1)
    return i0, i1, at - i0


def interpolate_local(rot: Rotation, trans: np.ndarray, i0: np.ndarray, i1: np.ndarray, w: np.ndarray
                      ) -> tuple[Rotation, np.ndarray]:
    """Local transforms (T, J, ...) at fractional frames: slerp of rotations, linear translations."""
    n = trans.shape[1]
    idx = lambda i: (i[:, None] * n + np.arange(n)[None]).reshape(-1)  # noqa: E731 - frame-major flat index
    r0, r1 = rot[idx(i0)], rot[idx(i1)]
    step = (r0.inv() * r1).as_rotvec() * np.repeat(w, n)[:, None]  # the shorter arc, scaled
    return r0 * Rotation.from_rotvec(step), trans[i0] * (1.0 - w)[:, None, None] + trans[i1] * w[:, None, None]


def bvh_positions(bvh: BvhFile, rot: Rotation, trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics: world positions (T, J, 3) in file units and world rotation matrices
    (T, J, 3, 3) of every joint and End Site."""
    t, n = trans.shape[:2]
    local = rot.as_matrix().reshape(t, n, 3, 3)
    glob = np.empty_like(local)
    pos = np.empty((t, n, 3))
    for j, jt in enumerate(bvh.joints):  # parents precede children in the file
        p = jt.parent
        if p < 0:
            glob[:, j], pos[:, j] = local[:, j], trans[:, j]
        else:
            pos[:, j] = pos[:, p] + np.einsum("tab,tb->ta", glob[:, p], trans[:, j])
            glob[:, j] = glob[:, p] @ local[:, j]
    return pos, glob


def rest_pose(bvh: BvhFile) -> tuple[np.ndarray, np.ndarray]:
    """The skeleton with every rotation zero and every joint at its OFFSET: (1, J, 3), (1, J, 3, 3)."""
    n = len(bvh.joints)
    trans = np.stack([jt.offset for jt in bvh.joints])[None]
    return bvh_positions(bvh, Rotation.from_quat(np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))), trans)


# ---------------------------------------------------------------------------------------------
# Joint-name mapping onto the 22 HumanML3D joints
# ---------------------------------------------------------------------------------------------


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


def _ancestors(bvh: BvhFile, j: int) -> list[int]:
    out = [j]
    while bvh.joints[out[-1]].parent >= 0:
        out.append(bvh.joints[out[-1]].parent)
    return out


def _path(bvh: BvhFile, top: int, bottom: int) -> list[int] | None:
    """Joints from `top` down to its descendant `bottom`, both included (None if not a descendant)."""
    up = _ancestors(bvh, bottom)
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
    left_up, right_up = _ancestors(bvh, arm["left"]), _ancestors(bvh, arm["right"])  # type: ignore[arg-type]
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


def _size(joints: np.ndarray) -> float:
    """A pose-free size: summed bone lengths of a leg (mean of both) and pelvis -> head. (T,22,3) -> scalar"""
    def chain(*names: str) -> np.ndarray:
        idx = [J[n] for n in names]
        return np.sum(np.linalg.norm(np.diff(joints[:, idx], axis=1), axis=-1), axis=-1)  # (T,)

    legs = 0.5 * (chain("left_hip", "left_knee", "left_ankle") + chain("right_hip", "right_knee", "right_ankle"))
    return float(np.median(legs + chain("pelvis", "spine1", "spine2", "spine3", "neck", "head")))


REST_SIZE = _size(REST_JOINTS[None])  # metres
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


def _toes_point_back(joints: np.ndarray) -> bool:
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


@dataclass(frozen=True)
class ImportedMotion:
    """A BVH take on the HumanML3D skeleton, the performer's proportions kept."""

    features: np.ndarray  # (T, 263) float32 HumanML3D features at `fps`
    joints: np.ndarray  # (T, 22, 3) float32 metres: features_to_joints(features) (floor y = 0, faces +Z at t=0)
    fps: float
    source: str
    source_fps: float
    source_frames: int
    units: str  # e.g. "cm (detected)"
    metres_per_unit: float
    up: str  # the file's up axis, e.g. "y (detected)"
    mirrored: bool
    convention: str
    mapping: tuple[str, ...] = field(default_factory=tuple)  # per HumanML3D joint: its file joint

    @property
    def stature_m(self) -> float:
        """Toes-to-crown height of the performer, from their bone lengths."""
        return _size(self.joints) / REST_SIZE * REST_STATURE

    def save(self, path: str | Path) -> Path:
        """motion.npz as `mio body generate` writes it (features, fps, joints), plus provenance.
        Written to a temporary name and renamed, so a crash never leaves a partial file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, features=self.features, fps=np.float32(self.fps), joints=self.joints,
                         source=np.array(self.source), source_fps=np.float32(self.source_fps),
                         units=np.array(self.units), up=np.array(self.up), mirrored=np.array(self.mirrored),
                         convention=np.array(self.convention),
                         mapping=np.array(self.mapping), joint_names=np.array(HUMANML3D_JOINT_NAMES))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def summary(self) -> str:
        virtual = [HUMANML3D_JOINT_NAMES[k] for k, m in enumerate(self.mapping) if " of " in m]
        return (f"{len(self.features)} frames ({len(self.features) / self.fps:.2f} s at {self.fps:g} fps; "
                f"{self.source_frames} at {self.source_fps:.4g} fps in the file), {self.convention} skeleton "
                f"{self.stature_m:.2f} m tall, units {self.units}, up {self.up}"
                + (", mirrored (left-handed file)" if self.mirrored else "")
                + (f"; on bones: {', '.join(virtual)}" if virtual else ""))


@dataclass(frozen=True)
class _Loaded:
    bvh: BvhFile  # as read (all joints and frames)
    convention: str
    mapping: tuple[str, ...]
    joints: np.ndarray  # (T, 22, 3) metres, Y up, right-handed, at `fps`
    fps: float
    units: str
    per_unit: float
    up: str
    mirrored: bool


def _load(path: str | Path, units: str | float | None, up: str | None, fps: float | None) -> _Loaded:
    where = str(path)
    source = read_bvh(path)
    skeleton = map_skeleton(source, where)
    mapping = skeleton.describe(source)
    out_fps = source.fps if fps is None else float(fps)
    # Only the source frames the output lies between, and only the joints the 22 hang from
    # (fingers, props and faces are read but not moved): long takes stay small in memory.
    i0, i1, w = sample_plan(source.frames, source.fps, out_fps)
    frames = np.unique(np.concatenate([i0, i1]))
    bvh, skeleton = _prune(source, skeleton, frames)
    rot, trans = interpolate_local(*local_transforms(bvh), np.searchsorted(frames, i0), np.searchsorted(frames, i1), w)
    raw = skeleton.positions(*bvh_positions(bvh, rot, trans))  # (T, 22, 3) file units and axes
    per = parse_units(units)
    if per is None:
        name, per = detect_units(_size(raw), where)
        unit_label = f"{name} (detected)"
    else:
        unit_label = next((f"{k}" for k, v in UNITS.items() if v == per), f"{per:g} m")
    axis = (up or "auto").strip().lower()
    if axis == "auto":
        axis_label = f"{detect_up(raw)} (detected)"
        axis = axis_label.split()[0]
    elif axis in UP_AXES:
        axis_label = axis
    else:
        raise BvhError(f"--up must be auto or one of {', '.join(UP_AXES)}, got {up!r}")
    joints = np.einsum("ab,tjb->tja", UP_AXES[axis], raw * per)
    mirrored = _toes_point_back(joints)
    if mirrored:
        joints[..., 0] *= -1.0
    if not np.all(np.isfinite(joints)):
        raise BvhError(f"{where}: the motion's joint positions are not finite")
    return _Loaded(source, skeleton.convention, mapping, joints, out_fps, unit_label, per, axis_label, mirrored)


def _prune(bvh: BvhFile, skeleton: SkeletonMap, frames: np.ndarray) -> tuple[BvhFile, SkeletonMap]:
    """The file cut to the given frames and to the joints the skeleton map uses (and their parents)."""
    used: set[int] = set()
    for src in skeleton.sources:
        for k in (src.a, src.b):
            if k >= 0:
                used.update(_ancestors(bvh, k))
    keep = sorted(used)  # file order: parents stay before children
    new = {old: i for i, old in enumerate(keep)}
    joints = tuple(replace(bvh.joints[k], parent=new.get(bvh.joints[k].parent, -1)) for k in keep)
    sources = tuple(replace(src, a=new[src.a], b=new[src.b] if src.b >= 0 else -1) for src in skeleton.sources)
    return BvhFile(joints, bvh.frame_time, bvh.motion[frames]), SkeletonMap(skeleton.convention, sources)


def import_bvh(path: str | Path, *, units: str | float | None = None, up: str | None = None,
               fps: float = BODY_FPS) -> ImportedMotion:
    """Any motion-capture BVH -> HumanML3D motion at `fps` (20, HumanML3D's) with the performer's
    proportions. units: None/'auto' (from the skeleton's size), a name in `UNITS` or metres per
    unit; up: None/'auto' or one of `UP_AXES`. Bad files raise a one-line `BvhError`."""
    loaded = _load(path, units, up, fps)
    joints = loaded.joints
    # Velocities look one frame ahead: repeat the last frame so every frame of the take gets a feature.
    features = joints_to_features(np.concatenate([joints, joints[-1:]]))
    return ImportedMotion(
        features=features,
        joints=features_to_joints(features).astype(np.float32),
        fps=float(fps),
        source=str(path),
        source_fps=loaded.bvh.fps,
        source_frames=loaded.bvh.frames,
        units=loaded.units,
        metres_per_unit=loaded.per_unit,
        up=loaded.up,
        mirrored=loaded.mirrored,
        convention=loaded.convention,
        mapping=loaded.mapping,
    )


def read_bvh_joints(path: str | Path, *, units: str | float | None = None, up: str | None = None
                    ) -> tuple[np.ndarray, float]:
    """The 22 HumanML3D joints (T, 22, 3) in metres, Y up, at the file's own frame rate, and that
    rate: no resampling, no re-centring. Reads any BVH `import_bvh` reads (units as there)."""
    loaded = _load(path, units, up, None)
    return loaded.joints, loaded.fps


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def _frame(up: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Orthonormal frame (..., 3, 3), columns (x across, y up, z = x cross y ... forward)."""
    y = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    x = across - np.sum(across * y, axis=-1, keepdims=True) * y
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def frame_spec(joints: np.ndarray) -> dict[int, tuple[int, tuple[int, int]]]:
    """For the pelvis and spine3 (several children): the joint up the spine and the (left, right)
    pair across that build their frame: the first choice whose points stand apart in the clip
    (the hips, else the knees; the collars, else the shoulders, for rigs whose collars start at
    one point). (T, 22, 3) -> {joint: (up, (left, right))}"""
    def apart(a: int, b: int) -> bool:
        return float(np.median(np.linalg.norm(joints[:, a] - joints[:, b], axis=-1))) > MIN_FRAME_SPAN_M

    spec = {}
    for j, (ups, pairs) in _FRAME_CHOICES.items():
        up = next((u for u in ups if apart(u, j)), ups[0])
        spec[j] = (up, next((lr for lr in pairs if apart(*lr)), pairs[0]))
    return spec


def _joint_frame(points: np.ndarray, j: int, spec: dict[int, tuple[int, tuple[int, int]]]) -> np.ndarray:
    """The pelvis' or spine3's frame (..., 22, 3) -> (..., 3, 3)."""
    up, (left, right) = spec[j]
    return _frame(points[..., up, :] - points[..., j, :], points[..., left, :] - points[..., right, :])


_REST_SPEC = {j: (ups[0], pairs[0]) for j, (ups, pairs) in _FRAME_CHOICES.items()}
_REST_FRAMES = {j: _joint_frame(REST_JOINTS, j, _REST_SPEC) for j in _FRAME_CHOICES}  # (3, 3) each


def skeleton_offsets(joints: np.ndarray) -> np.ndarray:
    """Bone offsets (22, 3) in metres for a BVH of `joints` (T, 22, 3): each bone's median length
    along the rest direction; the pelvis' and spine3's children where the performer has them in
    that joint's frame (their median there), put in the rest pose's frame. Row 0 is zero."""
    lengths = np.median(np.linalg.norm(joints[:, 1:] - joints[:, PARENTS[1:]], axis=-1), axis=0)  # (21,)
    directions = REST_OFFSETS[1:] / np.linalg.norm(REST_OFFSETS[1:], axis=-1, keepdims=True)
    offsets = np.concatenate([np.zeros((1, 3)), directions * lengths[:, None]])
    spec = frame_spec(joints)
    for j in _FRAME_CHOICES:
        frame = _joint_frame(joints, j, spec)  # (T, 3, 3)
        for c in CHILDREN[j]:
            in_frame = np.einsum("tba,tb->ta", frame, joints[:, c] - joints[:, j])  # frame^T (x_c - x_j)
            offsets[c] = _REST_FRAMES[j] @ np.median(in_frame, axis=0)
    return offsets


def joints_to_local_rotations(joints: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Local rotations (T, 22, 4) (w, x, y, z) of the skeleton with `skeleton_offsets(joints)`
    (pass them as `offsets` if already computed) that point its bones along `joints` (T, 22, 3).
    Row 0 is the pelvis' world rotation; identity everywhere is the rest pose (arms down)."""
    offsets = skeleton_offsets(joints) if offsets is None else offsets
    spec = frame_spec(joints)
    t = len(joints)
    glob = np.zeros((t, HUMANML3D_JOINTS, 4))
    for j in range(HUMANML3D_JOINTS):  # parents precede children
        p = PARENTS[j]
        parent = glob[:, p] if p >= 0 else np.tile([1.0, 0.0, 0.0, 0.0], (t, 1))
        if j in _FRAME_CHOICES:  # the rest frame onto this frame: its children's offsets land where they are
            m = _joint_frame(joints, j, spec) @ _REST_FRAMES[j].T  # (T, 3, 3)
            glob[:, j] = np.roll(Rotation.from_matrix(m).as_quat(), 1, axis=-1)  # scipy xyzw -> wxyz
        elif len(CHILDREN[j]) == 1:
            c = CHILDREN[j][0]
            carried = qrot(parent, np.broadcast_to(offsets[c], (t, 3)))  # the bone as the parent holds it
            glob[:, j] = qmul(qbetween(carried, joints[:, c] - joints[:, j]), parent)
        else:  # leaf: follows its parent
            glob[:, j] = parent
    local = glob.copy()
    local[:, 1:] = qmul(qinv(glob[:, PARENTS[1:]]), glob[:, 1:])
    return local


def _hierarchy(offsets: np.ndarray, root_offset: np.ndarray, positioned: set[int], scale: float) -> list[str]:
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        o = (root_offset if j == 0 else offsets[j]) * scale
        lines.append(f"{pad}{'ROOT' if j == 0 else 'JOINT'} {HUMANML3D_JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        channels = (OUT_POSITION_CHANNELS if j == 0 or j in positioned else ()) + OUT_CHANNELS
        lines.append(f"{pad}  CHANNELS {len(channels)} {' '.join(channels)}")
        for c in CHILDREN[j]:
            emit(c, depth + 1)
        if not CHILDREN[j]:  # End Site: a short stub along the bone into this leaf
            tip = offsets[j] / max(float(np.linalg.norm(offsets[j])), 1e-9) * 0.05 * scale
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {tip[0]:.6f} {tip[1]:.6f} {tip[2]:.6f}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    emit(0, 0)
    return lines


ANGLE_DECIMALS = 5  # degrees; 1e-5 deg turns a 1 m lever by 0.2 micrometres
POSITION_DECIMALS = 5  # file units (cm): 0.1 micrometre


def _euler_rows(local: np.ndarray) -> np.ndarray:
    """Local quaternions (T, 22, 4) wxyz -> ZYX Euler degrees (T, 22, 3), continuous in time, rounded."""
    rot = Rotation.from_quat(np.roll(local.reshape(-1, 4), -1, axis=-1))
    with warnings.catch_warnings():  # gimbal lock: scipy picks one of the equal decompositions
        warnings.simplefilter("ignore", UserWarning)
        angles = rot.as_euler("ZYX", degrees=True).reshape(local.shape[:-1] + (3,))
    angles = np.degrees(np.unwrap(np.radians(angles), axis=0))  # no 359 -> -359 jumps between frames
    return np.round(angles, ANGLE_DECIMALS)


def bvh_channels(joints: np.ndarray, *, exact: bool = True, scale: float = CM_PER_M
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, set[int], float]:
    """What a BVH of `joints` (T, 22, 3) metres holds: offsets (22, 3) m, Euler angles (T, 22, 3),
    translations (T, 22, 3) m (used by the root and the `positioned` joints), and the largest
    distance between FK of the file and `joints` (m)."""
    offsets = skeleton_offsets(joints)
    local = joints_to_local_rotations(joints, offsets)
    angles = _euler_rows(local)
    mats = Rotation.from_euler("ZYX", angles.reshape(-1, 3), degrees=True).as_matrix().reshape(angles.shape + (3,))
    t = len(joints)
    trans = np.broadcast_to(offsets, (t, HUMANML3D_JOINTS, 3)).copy()
    trans[:, 0] = np.round(joints[:, 0] * scale, POSITION_DECIMALS) / scale
    glob = np.empty((t, HUMANML3D_JOINTS, 3, 3))
    pos = np.empty((t, HUMANML3D_JOINTS, 3))
    glob[:, 0], pos[:, 0] = mats[:, 0], trans[:, 0]
    positioned: set[int] = set()
    for j in range(1, HUMANML3D_JOINTS):  # FK of what the file will say, parents first
        p = PARENTS[j]
        fk = pos[:, p] + np.einsum("tab,b->ta", glob[:, p], offsets[j])
        if exact and np.max(np.linalg.norm(fk - joints[:, j], axis=-1)) > POSITION_TOLERANCE_M:
            positioned.add(j)  # this joint's own translation per frame, in its parent's frame
            local_t = np.einsum("tba,tb->ta", glob[:, p], joints[:, j] - pos[:, p])
            trans[:, j] = np.round(local_t * scale, POSITION_DECIMALS) / scale
            fk = pos[:, p] + np.einsum("tab,tb->ta", glob[:, p], trans[:, j])
        pos[:, j] = fk
        glob[:, j] = glob[:, p] @ mats[:, j]
    error = float(np.max(np.linalg.norm(pos - joints, axis=-1)))
    return offsets, angles, trans, positioned, error


def write_bvh_joints(path: str | Path, joints: np.ndarray, fps: float = BODY_FPS, *, scale: float = CM_PER_M,
                     exact: bool = True) -> Path:
    """Write joint positions (T, 22, 3) in metres as a BVH of the 22-joint skeleton; returns the path.

    exact=True adds position channels to the joints that rotations alone would miss by more than
    `POSITION_TOLERANCE_M`; exact=False writes rotations only (bone lengths fixed at their medians)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (HUMANML3D_JOINTS, 3) or len(joints) == 0:
        raise ValueError(f"expected joints of shape (T>0, {HUMANML3D_JOINTS}, 3), got {joints.shape}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("joint positions contain NaN or inf")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    offsets, angles, trans, positioned, _ = bvh_channels(joints, exact=exact, scale=scale)
    # The rest pose (all rotations zero) stands on the floor: the root's OFFSET lifts it there.
    rest = np.zeros((HUMANML3D_JOINTS, 3))
    for j in range(1, HUMANML3D_JOINTS):
        rest[j] = rest[PARENTS[j]] + offsets[j]
    root_offset = np.array([0.0, -rest[:, 1].min(), 0.0])
    t = len(joints)
    blocks = []
    for j in DFS_ORDER:
        if j == 0 or j in positioned:
            blocks.append(trans[:, j] * scale)
        blocks.append(angles[:, j])
    rows = np.concatenate(blocks, axis=1)
    lines = _hierarchy(offsets, root_offset, positioned, scale)
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bvh(path: str | Path, features: np.ndarray, fps: float = BODY_FPS, *, scale: float = CM_PER_M,
              exact: bool = True) -> Path:
    """Write HumanML3D features (T, 263) as a BVH of the 22-joint skeleton; returns the path."""
    features = HUMANML3D.check(np.asarray(features, dtype=np.float32))
    if not np.all(np.isfinite(features)):
        raise ValueError("features contain NaN or inf")
    return write_bvh_joints(path, features_to_joints(features), fps, scale=scale, exact=exact)


__all__ = [
    "BvhError",
    "BvhFile",
    "ImportedMotion",
    "SkeletonMap",
    "UNITS",
    "UP_AXES",
    "bvh_channels",
    "import_bvh",
    "joints_to_local_rotations",
    "map_skeleton",
    "parse_bvh",
    "read_bvh",
    "read_bvh_joints",
    "skeleton_offsets",
    "write_bvh",
    "write_bvh_joints",
]
