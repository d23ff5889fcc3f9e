"""BVH files as they are: parsing the Biovision format and its local transforms.

Reading follows the Biovision format: a HIERARCHY of ROOT/JOINT/End Site blocks with an OFFSET and
a CHANNELS line each, then MOTION with `Frames:`, `Frame Time:` and one row of channel values per
frame. A joint's local transform is a translation, then its rotation channels composed in the
order they are listed (intrinsic: "Zrotation Xrotation Yrotation" is Rz Rx Ry on column vectors),
in degrees. Position channels *are* the joint's translation from its parent and replace its OFFSET
(how Blender and MotionBuilder read them; the root's are its world position); they may sit on any
joint. Units are found from the skeleton's size (m, cm, mm, inches or the CMU database's
1/0.45 inch) unless given, the up axis from where the head is, and the motion is resampled to 20
fps by slerp of every joint's local rotation, so bones keep their lengths.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mio.core.errors import InputError
from mio.core.layouts import HUMANML3D_JOINT_NAMES

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
