"""BVH in and out on files written here by hand to the Biovision format, not by our exporter.

Each test skeleton is a human in one naming convention (CMU, Mixamo, Biovision's
Collar/Shoulder/Elbow/Wrist, SMPL), with its own rest pose (T-pose arms), proportions, units,
rotation order, frame rate and extra joints (fingers, End Sites, zero-length CMU hip joints).
The motion is a smooth analytic function of time; the expected joint positions come from this
file's own forward kinematics of the format (explicit rotation matrices, channels composed in the
listed order, position channels replacing the OFFSET), not from mio.body.bvh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from mio.body.bvh import BvhError, bvh_channels, import_bvh, read_bvh_joints, write_bvh, write_bvh_joints
from mio.body.humanml3d import features_to_joints
from mio.body.motionlib import make_split
from mio.body.skeleton import PARENTS
from mio.cli import main
from mio.core.layouts import HUMANML3D_JOINT_NAMES

MM = 1e-3


# ---- a BVH writer and FK written from the format description ------------------------------


@dataclass(frozen=True)
class Joint:
    name: str
    parent: str | None
    offset: tuple[float, float, float]  # metres in the Y-up, +Z-forward, left = +X body frame
    end: tuple[float, float, float] | None = None  # End Site offset, if this joint ends a chain


def _rot(axis: str, deg: np.ndarray) -> np.ndarray:
    """Right-handed rotation matrices about one axis, acting on column vectors. (T,) -> (T, 3, 3)"""
    a = np.radians(deg)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    m = {"X": [[o, z, z], [z, c, -s], [z, s, c]], "Y": [[c, z, s], [z, o, z], [-s, z, c]],
         "Z": [[c, -s, z], [s, c, z], [z, z, o]]}[axis]
    return np.moveaxis(np.array(m), (0, 1), (-2, -1))


@dataclass
class Take:
    """A skeleton, its channels and a motion; writes BVH text and computes the format's FK."""

    joints: list[Joint]
    order: str  # rotation channel order, e.g. "ZXY"
    fps: float
    seconds: float = 3.0
    scale: float = 100.0  # file units per metre
    all_positions: bool = False  # MotionBuilder style: 6 channels on every joint
    stretch: str | None = None  # a joint whose position channel stretches its bone
    up: str = "y"  # "z": the file is Z-up (x, y, z) -> (x, -z, y)
    mirror: bool = False  # a left-handed file: every x negated
    seed: int = 0

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.n = int(round(self.seconds * self.fps)) + 1
        t = np.arange(self.n) / self.fps
        self.t = t
        self.angles = {}  # joint -> {axis: degrees (T,)}
        for j in self.joints:
            big = 35.0 if any(k in j.name for k in ("Arm", "Leg", "Knee", "Elbow", "Shoulder", "Hip")) else 12.0
            self.angles[j.name] = {a: rng.uniform(-big, big) * np.sin(2 * np.pi * rng.uniform(0.2, 0.7) * t
                                                                      + rng.uniform(0, 2 * np.pi)) for a in "XYZ"}
        root = self.joints[0].name
        self.angles[root]["Y"] = 40.0 * np.sin(2 * np.pi * 0.15 * t)  # the performer turns
        self.root_pos = np.stack([0.1 * np.sin(t), 0.98 + 0.02 * np.sin(4 * t), 0.7 * t], -1)  # walks ahead

    # body frame (metres) -> file frame (units, axes, handedness)
    def _vec(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64) * self.scale
        if self.mirror:
            v = v * np.array([-1.0, 1.0, 1.0])
        if self.up == "z":
            v = np.stack([v[..., 0], -v[..., 2], v[..., 1]], -1)
        return v

    def _channel_angles(self, name: str) -> dict[str, np.ndarray]:
        """Angles in file axes, the same motion: a mirror negates turns about Y and Z; Z-up
        relabels the axes (body Y is file Z, body Z is file -Y)."""
        a = dict(self.angles[name])
        if self.mirror:
            a = {"X": a["X"], "Y": -a["Y"], "Z": -a["Z"]}
        if self.up == "z":
            a = {"X": a["X"], "Z": a["Y"], "Y": -a["Z"]}
        return a

    @property
    def file_order(self) -> str:
        """The rotation order in file axes that composes the same rotation as `order` in body axes."""
        return self.order.translate(str.maketrans("YZ", "ZY")) if self.up == "z" else self.order

    def _positions(self, j: Joint) -> np.ndarray | None:
        """Per-frame translation (T, 3) in file units for joints with position channels."""
        if j.parent is None:
            return self._vec(self.root_pos)
        if self.all_positions or j.name == self.stretch:
            k = 1.0 + (0.08 * np.sin(2 * np.pi * 0.5 * self.t) if j.name == self.stretch else np.zeros(self.n))
            return self._vec(np.asarray(j.offset)[None] * k[:, None])
        return None

    def text(self) -> str:
        kids = {j.name: [k for k in self.joints if k.parent == j.name] for j in self.joints}
        lines = ["HIERARCHY"]
        columns: list[np.ndarray] = []
        rot_names = " ".join(f"{a}rotation" for a in self.file_order)

        def emit(j: Joint, depth: int) -> None:
            pad = "\t" * depth
            o = self._vec(j.offset) if j.parent is not None else np.zeros(3)
            lines.append(f"{pad}{'ROOT' if j.parent is None else 'JOINT'} {j.name}")
            lines.append(f"{pad}{{")
            lines.append(f"{pad}\tOFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
            pos = self._positions(j)
            if pos is not None:
                lines.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {rot_names}")
                columns.extend(pos.T)
            else:
                lines.append(f"{pad}\tCHANNELS 3 {rot_names}")
            ang = self._channel_angles(j.name)
            columns.extend(ang[a] for a in self.file_order)
            for k in kids[j.name]:
                emit(k, depth + 1)
            if j.end is not None:
                e = self._vec(j.end)
                lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}",
                              f"{pad}\t}}"])
            lines.append(f"{pad}}}")

        emit(self.joints[0], 0)
        rows = np.stack(columns, axis=1)
        lines += ["MOTION", f"Frames: {self.n}", f"Frame Time: {1.0 / self.fps:.10f}"]
        lines += [" ".join(f"{v:.6f}" for v in row) for row in rows]
        return "\n".join(lines) + "\n"

    def world(self) -> dict[str, np.ndarray]:
        """Every joint's world position (T, 3) in metres of the Y-up, right-handed body frame."""
        glob, pos = {}, {}
        for j in self.joints:  # parents come first in the list
            ang = self._channel_angles(j.name)
            r = np.tile(np.eye(3), (self.n, 1, 1))
            for a in self.file_order:
                r = r @ _rot(a, ang[a])
            tr = self._positions(j)
            tr = np.broadcast_to(self._vec(j.offset), (self.n, 3)) if tr is None else tr
            if j.parent is None:
                glob[j.name], pos[j.name] = r, tr
            else:
                pos[j.name] = pos[j.parent] + np.einsum("tab,tb->ta", glob[j.parent], tr)
                glob[j.name] = glob[j.parent] @ r
        out = {}
        for name, p in pos.items():  # back to the body frame
            if self.up == "z":
                p = np.stack([p[:, 0], p[:, 2], -p[:, 1]], -1)
            if self.mirror:
                p = p * np.array([-1.0, 1.0, 1.0])
            out[name] = p / self.scale
        return out

    def write(self, path) -> str:
        path.write_text(self.text())
        return str(path)


# ---- three conventions of real mocap skeletons (a 1.8 m performer in a T-pose) -------------


def _arm(side: str, s: float, collar: str, upper: str, fore: str, hand: str, parent: str,
         fingers: dict[str, str] | None = None) -> list[Joint]:
    out = [Joint(collar, parent, (s * 0.035, 0.13, 0.0)), Joint(upper, collar, (s * 0.14, 0.0, -0.01)),
           Joint(fore, upper, (s * 0.29, 0.0, 0.0)), Joint(hand, fore, (s * 0.26, 0.0, 0.01),
                                                          end=None if fingers else (s * 0.08, 0.0, 0.0))]
    for name, kind in (fingers or {}).items():  # two-bone fingers ending in End Sites
        base = (s * 0.09, -0.005, 0.03) if kind == "thumb" else (s * 0.10, 0.0, -0.01)
        out += [Joint(name + "1", hand, base), Joint(name + "2", name + "1", (s * 0.04, 0.0, 0.0),
                                                     end=(s * 0.03, 0.0, 0.0))]
    return out


def _leg(s: float, hip: str, knee: str, ankle: str, toe: str | None, parent: str) -> list[Joint]:
    out = [Joint(hip, parent, (s * 0.10, -0.07, 0.0)), Joint(knee, hip, (0.0, -0.45, 0.01)),
           Joint(ankle, knee, (0.0, -0.44, -0.03), end=None if toe else (0.0, -0.06, 0.14))]
    return out + ([Joint(toe, ankle, (0.0, -0.06, 0.14), end=(0.0, 0.0, 0.05))] if toe else [])


def cmu_skeleton() -> list[Joint]:
    """CMU (cgspeed conversions): zero-length LHipJoint/LowerBack joints, Neck1, fingers and thumb."""
    j = [Joint("Hips", None, (0.0, 0.0, 0.0))]
    for side, s in (("Left", 1.0), ("Right", -1.0)):
        j.append(Joint(f"{side[0]}HipJoint", "Hips", (0.0, 0.0, 0.0)))
        j += _leg(s, f"{side}UpLeg", f"{side}Leg", f"{side}Foot", f"{side}ToeBase", f"{side[0]}HipJoint")
    j += [Joint("LowerBack", "Hips", (0.0, 0.0, 0.0)), Joint("Spine", "LowerBack", (0.0, 0.12, -0.01)),
          Joint("Spine1", "Spine", (0.0, 0.13, 0.0)), Joint("Neck", "Spine1", (0.0, 0.15, 0.0)),
          Joint("Neck1", "Neck", (0.0, 0.05, 0.01)), Joint("Head", "Neck1", (0.0, 0.06, 0.01), end=(0, 0.16, 0))]
    for side, s in (("Left", 1.0), ("Right", -1.0)):
        j += _arm(side, s, f"{side}Shoulder", f"{side}Arm", f"{side}ForeArm", f"{side}Hand", "Spine1",
                  {f"{side}HandIndex": "finger", f"{side[0]}Thumb": "thumb"})
    return j


def mixamo_skeleton() -> list[Joint]:
    """Mixamo: `mixamorig:` names, three spine joints, HeadTop_End and toe end joints, fingers."""
    p = "mixamorig:"
    j = [Joint(p + "Hips", None, (0.0, 0.0, 0.0)), Joint(p + "Spine", p + "Hips", (0.0, 0.10, -0.01)),
         Joint(p + "Spine1", p + "Spine", (0.0, 0.11, 0.0)), Joint(p + "Spine2", p + "Spine1", (0.0, 0.12, 0.01)),
         Joint(p + "Neck", p + "Spine2", (0.0, 0.15, 0.0)), Joint(p + "Head", p + "Neck", (0.0, 0.10, 0.02)),
         Joint(p + "HeadTop_End", p + "Head", (0.0, 0.18, 0.03), end=(0.0, 0.0, 0.0))]
    for side, s in (("Left", 1.0), ("Right", -1.0)):
        j += _arm(side, s, p + f"{side}Shoulder", p + f"{side}Arm", p + f"{side}ForeArm", p + f"{side}Hand",
                  p + "Spine2", {p + f"{side}HandThumb": "thumb", p + f"{side}HandMiddle": "finger"})
    for side, s in (("Left", 1.0), ("Right", -1.0)):
        j += _leg(s, p + f"{side}UpLeg", p + f"{side}Leg", p + f"{side}Foot", p + f"{side}ToeBase", p + "Hips")
        j.append(Joint(p + f"{side}Toe_End", p + f"{side}ToeBase", (0.0, 0.0, 0.05), end=(0.0, 0.0, 0.0)))
    return j


def biovision_skeleton() -> list[Joint]:
    """Biovision's own names: Chest/Chest2, Collar -> Shoulder (the upper arm) -> Elbow -> Wrist,
    Hip -> Knee -> Ankle ending in an End Site (no toe joint), no spine joint between chest and neck."""
    j = [Joint("Hips", None, (0.0, 0.0, 0.0)), Joint("Chest", "Hips", (0.0, 0.14, -0.01)),
         Joint("Chest2", "Chest", (0.0, 0.21, 0.0)), Joint("Neck", "Chest2", (0.0, 0.15, 0.0)),
         Joint("Head", "Neck", (0.0, 0.11, 0.02), end=(0.0, 0.16, 0.0))]
    for side, s in (("Left", 1.0), ("Right", -1.0)):
        j += _arm(side, s, f"{side}Collar", f"{side}Shoulder", f"{side}Elbow", f"{side}Wrist", "Chest2")
    for side, s in (("Left", 1.0), ("Right", -1.0)):
        j += _leg(s, f"{side}Hip", f"{side}Knee", f"{side}Ankle", None, "Hips")
    return j


def smpl_skeleton() -> list[Joint]:
    """SMPL's joint names (as SMPL/AMASS -> BVH exports write them)."""
    j = [Joint("Pelvis", None, (0.0, 0.0, 0.0))]
    for side, s in (("L", 1.0), ("R", -1.0)):
        j += _leg(s, f"{side}_Hip", f"{side}_Knee", f"{side}_Ankle", f"{side}_Foot", "Pelvis")
    j += [Joint("Spine1", "Pelvis", (0.0, 0.11, -0.01)), Joint("Spine2", "Spine1", (0.0, 0.13, 0.0)),
          Joint("Spine3", "Spine2", (0.0, 0.06, 0.01)), Joint("Neck", "Spine3", (0.0, 0.21, -0.01)),
          Joint("Head", "Neck", (0.0, 0.07, 0.05), end=(0.0, 0.15, 0.0))]
    for side, s in (("L", 1.0), ("R", -1.0)):
        j += _arm(side, s, f"{side}_Collar", f"{side}_Shoulder", f"{side}_Elbow", f"{side}_Wrist", "Spine3")
    return j


# HumanML3D joints that are file joints in each convention (the others are points on bones).
NAMED = {
    "cmu": {"pelvis": "Hips", "left_hip": "LeftUpLeg", "right_knee": "RightLeg", "left_ankle": "LeftFoot",
            "right_foot": "RightToeBase", "spine3": "Spine1", "neck": "Neck", "left_collar": "LeftShoulder",
            "right_shoulder": "RightArm", "left_elbow": "LeftForeArm", "right_wrist": "RightHand"},
    "mixamo": {"pelvis": "mixamorig:Hips", "right_hip": "mixamorig:RightUpLeg", "left_knee": "mixamorig:LeftLeg",
               "left_foot": "mixamorig:LeftToeBase", "spine1": "mixamorig:Spine", "spine2": "mixamorig:Spine1",
               "spine3": "mixamorig:Spine2", "neck": "mixamorig:Neck", "right_collar": "mixamorig:RightShoulder",
               "left_shoulder": "mixamorig:LeftArm", "left_wrist": "mixamorig:LeftHand"},
    "biovision": {"pelvis": "Hips", "left_hip": "LeftHip", "left_knee": "LeftKnee", "right_ankle": "RightAnkle",
                  "spine1": "Chest", "spine3": "Chest2", "neck": "Neck", "left_collar": "LeftCollar",
                  "left_shoulder": "LeftShoulder", "right_elbow": "RightElbow", "left_wrist": "LeftWrist"},
    "smpl": dict(zip(HUMANML3D_JOINT_NAMES, ("Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2",
                 "L_Ankle", "R_Ankle", "Spine3", "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head",
                 "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist"), strict=True)),
}
TAKES = {  # convention: (skeleton, rotation order, fps, file units per metre, 6 channels everywhere)
    "cmu": (cmu_skeleton, "ZXY", 120.0, 100.0, False),  # centimetres
    "mixamo": (mixamo_skeleton, "XYZ", 60.0, 1.0, True),  # metres, MotionBuilder-style 6-channel joints
    "biovision": (biovision_skeleton, "ZYX", 30.0, 1 / 0.0254, False),  # inches
    "smpl": (smpl_skeleton, "YXZ", 30.0, 1.0, False),
}


def take(kind: str, **kw) -> Take:
    skeleton, order, fps, scale, six = TAKES[kind]
    return Take(skeleton(), order, fps, scale=scale, all_positions=six, **kw)


def _idx(name: str) -> int:
    return HUMANML3D_JOINT_NAMES.index(name)


# ---- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TAKES))
def test_joints_follow_the_format_in_every_convention(kind, tmp_path) -> None:
    """Channel orders, position channels, units, End Sites, extra joints: the mapped joints are
    where the format's FK puts the file's joints."""
    tk = take(kind, stretch="LeftForeArm" if kind == "cmu" else None)
    joints, fps = read_bvh_joints(tk.write(tmp_path / f"{kind}.bvh"))
    world = tk.world()
    assert fps == pytest.approx(tk.fps) and joints.shape == (tk.n, 22, 3)
    for ours, theirs in NAMED[kind].items():
        if ours == "head":  # moved to SMPL's head joint for mocap skeletons; exact for SMPL names
            continue
        np.testing.assert_allclose(joints[:, _idx(ours)], world[theirs], atol=1e-5, err_msg=f"{kind} {ours}")


def test_up_axis_units_and_handedness_are_found(tmp_path) -> None:
    base = read_bvh_joints(take("cmu").write(tmp_path / "y.bvh"))[0]
    z_up = read_bvh_joints(take("cmu", up="z").write(tmp_path / "z.bvh"))[0]
    metres = read_bvh_joints(Take(cmu_skeleton(), "ZXY", 120.0, scale=1.0).write(tmp_path / "m.bvh"))[0]
    np.testing.assert_allclose(z_up, base, atol=1e-5)
    np.testing.assert_allclose(metres, base, atol=1e-5)
    mirrored = import_bvh(take("cmu", mirror=True).write(tmp_path / "mirror.bvh"))
    plain = import_bvh(tmp_path / "y.bvh")
    assert mirrored.mirrored and not plain.mirrored
    np.testing.assert_allclose(mirrored.joints, plain.joints, atol=1e-4)
    assert "cm (detected)" == plain.units and "y (detected)" == plain.up
    assert import_bvh(tmp_path / "z.bvh").up == "z (detected)"
    assert 1.6 < plain.stature_m < 2.0
    # --units overrides detection: the same file read as metres is a 100x giant, refused as not human
    assert import_bvh(tmp_path / "m.bvh", units="m").units == "m"
    with pytest.raises(BvhError, match="cannot tell the units"):
        import_bvh(Take(cmu_skeleton(), "ZXY", 30.0, scale=1e4).write(tmp_path / "huge.bvh"))


def test_frame_rates_resample_to_20_fps(tmp_path) -> None:
    """30/60/120 fps takes of one motion give the 20 fps motion: slerp between the file's frames."""
    ref = import_bvh(Take(cmu_skeleton(), "ZXY", 20.0).write(tmp_path / "20.bvh"))
    assert ref.fps == 20.0 and len(ref.features) == 61 and ref.features.shape[1] == 263
    for fps, tol in ((120.0, 1e-5), (60.0, 1e-5), (30.0, 3 * MM)):  # 120/60: exact frames; 30: in between
        m = import_bvh(Take(cmu_skeleton(), "ZXY", fps).write(tmp_path / f"{fps:g}.bvh"))
        assert m.source_fps == pytest.approx(fps) and len(m.joints) == len(ref.joints)
        assert np.abs(m.joints - ref.joints).max() < tol, fps


def test_imported_motion_keeps_the_performers_proportions(tmp_path) -> None:
    tk = take("mixamo")
    m = import_bvh(tk.write(tmp_path / "a.bvh"))
    lengths = np.linalg.norm(m.joints[:, 1:] - m.joints[:, PARENTS[1:]], axis=-1)
    thigh = np.hypot(0.45, 0.01)  # the file's hip -> knee bone (the rest skeleton's is 0.38 m)
    assert lengths[:, _idx("left_knee") - 1] == pytest.approx(np.full(len(m.joints), thigh), abs=1e-5)
    assert m.joints[..., 1].min() == pytest.approx(0.0, abs=1e-6)  # the lowest joint is on the floor
    np.testing.assert_allclose(features_to_joints(m.features), m.joints, atol=1e-5)


# ---- round trip through the CLI -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TAKES))
def test_import_export_import_round_trip_within_1mm(kind, tmp_path, capsys) -> None:
    src = take(kind, stretch="LeftForeArm" if kind == "cmu" else None).write(tmp_path / f"{kind}.bvh")
    assert main(["body", "import", src, "-o", str(tmp_path / "a.npz")]) == 0
    assert main(["export", "motion", str(tmp_path / "a.npz"), "-o", str(tmp_path / "engine")]) == 0
    assert main(["body", "import", str(tmp_path / "engine" / "motion.bvh"), "-o", str(tmp_path / "b.npz")]) == 0
    out = capsys.readouterr().out
    assert "a.npz: " in out and "units" in out
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert a["joints"].shape == b["joints"].shape and float(a["fps"]) == 20.0
        err = np.linalg.norm(a["joints"] - b["joints"], axis=-1)
        assert err.max() < 1 * MM, f"{kind}: {err.max() * 1000:.3f} mm"
        assert str(a["source"]).endswith(f"{kind}.bvh") and list(a["joint_names"]) == list(HUMANML3D_JOINT_NAMES)


def test_render_takes_the_imported_motion(tmp_path) -> None:
    from mio.cli.render import load_inputs

    m = import_bvh(take("biovision").write(tmp_path / "b.bvh"))
    face, motion = load_inputs([str(m.save(tmp_path / "m.npz"))])
    assert face is None and motion[1] == 20.0
    np.testing.assert_allclose(motion[0], m.joints, atol=1e-6)


# ---- writing --------------------------------------------------------------------------------


def _fk_of_written_file(path) -> np.ndarray:
    """FK of a 22-joint file we wrote, by this test's own reading of the format."""
    tokens = path.read_text().split("MOTION")[0].split()
    names, parents, offsets, channels, stack = [], [], [], [], []
    i = 0
    while i < len(tokens):
        if tokens[i] in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
            parents.append(stack[-1] if stack else -1)
            stack.append(len(names) - 1)
            i += 3
        elif tokens[i] == "End":
            stack.append(None)
            i += 3
        elif tokens[i] == "OFFSET":
            if stack[-1] is not None:
                offsets.append([float(v) for v in tokens[i + 1:i + 4]])
            i += 4
        elif tokens[i] == "CHANNELS":
            n = int(tokens[i + 1])
            channels.append(tokens[i + 2:i + 2 + n])
            i += 2 + n
        elif tokens[i] == "}":
            stack.pop()
            i += 1
        else:
            i += 1
    rows = np.array([line.split() for line in path.read_text().split("Frame Time:")[1].splitlines()[1:] if line],
                    dtype=np.float64)
    pos, glob, col = {}, {}, 0
    for j, name in enumerate(names):
        tr = np.tile(np.array(offsets[j]) / 100.0, (len(rows), 1))
        r = np.tile(np.eye(3), (len(rows), 1, 1))
        for ch in channels[j]:
            if ch.endswith("position"):
                tr[:, "XYZ".index(ch[0])] = rows[:, col] / 100.0
            else:
                r = r @ _rot(ch[0], rows[:, col])
            col += 1
        p = parents[j]
        pos[name] = tr if p < 0 else pos[names[p]] + np.einsum("tab,tb->ta", glob[names[p]], tr)
        glob[name] = r if p < 0 else glob[names[p]] @ r
    return np.stack([pos[n] for n in HUMANML3D_JOINT_NAMES], axis=1)


def test_written_file_reproduces_rigid_motion_with_rotations_only(tmp_path) -> None:
    features = make_split("test", 1, seed=3, seconds=(2.0, 3.0))[0].features
    path = write_bvh(tmp_path / "lib.bvh", features)
    text = path.read_text()
    assert text.count("CHANNELS 6") == 1  # the root only: the library skeleton is rigid
    fk = _fk_of_written_file(path)
    joints = features_to_joints(features)
    assert np.abs(fk - joints).max() < 0.1 * MM
    toes = [_idx("left_foot"), _idx("right_foot")]
    assert fk[:, toes, 1].min() == pytest.approx(joints[:, toes, 1].min(), abs=1e-6)  # feet stay on the floor


def test_written_file_reproduces_any_proportions_and_drifting_bones(tmp_path) -> None:
    """Another performer's proportions, then bones that change length every frame (as generated
    motion's do): FK of the file still gives every joint within 0.1 mm."""
    m = import_bvh(take("biovision").write(tmp_path / "b.bvh"))
    rng = np.random.default_rng(0)
    for name, joints in (("rigid", m.joints), ("drift", m.joints + rng.normal(0, 0.01, m.joints.shape))):
        path = write_bvh_joints(tmp_path / f"{name}.bvh", joints)
        assert np.abs(_fk_of_written_file(path) - joints).max() < 0.1 * MM, name
        positioned = bvh_channels(joints)[3]
        # Rigid: only the head, which imports as SMPL's head point carried by the file's head bone,
        # so its distance from the neck changes as the head nods. Drifting: every bone.
        assert positioned <= {_idx("head")} if name == "rigid" else len(positioned) == 21, (name, positioned)
    rotations_only = write_bvh_joints(tmp_path / "rot.bvh", joints, exact=False)
    assert rotations_only.read_text().count("CHANNELS 6") == 1


# ---- bad files ------------------------------------------------------------------------------

GOOD = take("cmu", seconds=0.5).text()
BAD_FILES = {
    "truncated": GOOD[: len(GOOD) * 2 // 3],
    "cut_in_hierarchy": GOOD[:400],
    "garbage": "\x00\x01binary\xff" * 40,
    "empty": "",
    "letters_in_motion": GOOD[: GOOD.rindex("\n", 0, -1)] + "\n1.0 abc" + GOOD[GOOD.rindex("\n", 0, -1) + 4:],
    "bad_offset": GOOD.replace("OFFSET 0.000000 0.000000 0.000000", "OFFSET 0.0 zero 0.0", 1),
    "bad_frame_count": GOOD.replace("Frames: ", "Frames: many", 1),
    "bad_channel": GOOD.replace("Zrotation", "Wrotation", 1),
    "no_frames": GOOD.split("MOTION")[0] + "MOTION\nFrames: 0\nFrame Time: 0.0083333\n",
    "nan": GOOD.rsplit("\n", 2)[0] + "\n" + " ".join(["nan"] * len(GOOD.rsplit("\n", 2)[1].split())) + "\n",
    "no_legs": "HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 6 Xposition Yposition Zposition Zrotation "
               "Xrotation Yrotation\n JOINT Spine\n {\n  OFFSET 0 10 0\n  CHANNELS 3 Zrotation Xrotation Yrotation\n"
               "  End Site\n  {\n   OFFSET 0 10 0\n  }\n }\n}\nMOTION\nFrames: 1\nFrame Time: 0.033333\n"
               "0 90 0 0 0 0 0 0 0\n",
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_are_one_line_errors(name, tmp_path, capsys) -> None:
    path = tmp_path / f"{name}.bvh"
    path.write_bytes(BAD_FILES[name].encode("latin-1"))
    assert main(["body", "import", str(path), "-o", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mio: error: ") and "\n" not in err and "Traceback" not in err, err
    assert not (tmp_path / "m.npz").exists()


def test_unmapped_joints_are_listed(tmp_path) -> None:
    with pytest.raises(BvhError) as e:
        import_bvh(tmp_path.joinpath("x.bvh").write_text(BAD_FILES["no_legs"]) and tmp_path / "x.bvh")
    msg = str(e.value)
    assert "left_knee (LeftLeg)" in msg and "right_hip (RightUpLeg)" in msg and "Spine" in msg


def test_bad_options_are_one_line_errors(tmp_path, capsys) -> None:
    src = take("smpl", seconds=0.5).write(tmp_path / "s.bvh")
    assert main(["body", "import", src, "--units", "furlong"]) == 2
    assert main(["body", "import", src, "-o", str(tmp_path / "m.mp4")]) == 2
    assert main(["body", "import", str(tmp_path / "missing.bvh")]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 3 and all(e.startswith("mio: error: ") for e in errs)


RENAMES = {  # Mixamo's joint -> other rigs' names (left side; right by symmetry)
    "unreal": {"Hips": "pelvis", "Spine": "spine_01", "Spine1": "spine_02", "Spine2": "spine_03", "Neck": "neck_01",
               "Head": "head", "LeftShoulder": "clavicle_l", "LeftArm": "upperarm_l", "LeftForeArm": "lowerarm_l",
               "LeftHand": "hand_l", "LeftUpLeg": "thigh_l", "LeftLeg": "calf_l", "LeftFoot": "foot_l",
               "LeftToeBase": "ball_l"},
    "biped": {"Hips": "Bip01 Pelvis", "Spine": "Bip01 Spine", "Spine1": "Bip01 Spine1", "Spine2": "Bip01 Spine2",
              "Neck": "Bip01 Neck", "Head": "Bip01 Head", "LeftShoulder": "Bip01 L Clavicle",
              "LeftArm": "Bip01 L UpperArm", "LeftForeArm": "Bip01 L Forearm", "LeftHand": "Bip01 L Hand",
              "LeftUpLeg": "Bip01 L Thigh", "LeftLeg": "Bip01 L Calf", "LeftFoot": "Bip01 L Foot",
              "LeftToeBase": "Bip01 L Toe0"},
    "unity": {"Spine1": "Chest", "Spine2": "UpperChest", "LeftArm": "LeftUpperArm", "LeftForeArm": "LeftLowerArm",
              "LeftUpLeg": "LeftUpperLeg", "LeftLeg": "LeftLowerLeg", "LeftToeBase": "LeftToes"},
    "blender": {"Hips": "hips", "LeftShoulder": "shoulder.L", "LeftArm": "upper_arm.L", "LeftForeArm": "forearm.L",
                "LeftHand": "hand.L", "LeftUpLeg": "thigh.L", "LeftLeg": "shin.L", "LeftFoot": "foot.L",
                "LeftToeBase": "toe.L"},
}


@pytest.mark.parametrize("rig", list(RENAMES))
def test_other_rigs_names_map(rig, tmp_path) -> None:
    def rename(name: str | None) -> str | None:
        if name is None:
            return None
        base = name.removeprefix("mixamorig:")
        table = RENAMES[rig]
        left = base.replace("Right", "Left")
        if left in table:
            new = table[left]
            if base != left:  # the right side: mirror the spelling
                new = new.replace("_l", "_r").replace(" L ", " R ").replace(".L", ".R").replace("Left", "Right")
            return new
        return base

    joints = [Joint(rename(j.name), rename(j.parent), j.offset, j.end) for j in mixamo_skeleton()]
    ref = Take(mixamo_skeleton(), "ZXY", 30.0, scale=100.0)
    tk = Take(joints, "ZXY", 30.0, scale=100.0)
    tk.angles = {rename(k): v for k, v in ref.angles.items()}  # the same motion under the other names
    got = import_bvh(tk.write(tmp_path / f"{rig}.bvh"))
    want = import_bvh(ref.write(tmp_path / "mixamo.bvh"))
    assert got.mapping[_idx("left_knee")] == rename("mixamorig:LeftLeg")
    assert got.mapping[_idx("right_collar")] == rename("mixamorig:RightShoulder")
    np.testing.assert_allclose(got.joints, want.joints, atol=1e-6)
