"""Retarget HumanML3D joint positions (§4.1: 22 SMPL joints, metres, Y up, facing +Z) onto the anny rig.

Swing retargeting: limbs (arms, legs, feet) turn so that each anny bone points along its joint
segment — arm raises, waves and kicks come through as they are. The torso and neck are retargeted
*relative to a reference standing pose* (frames built from hips/shoulders, the neck->head direction)
so that the two skeletons' different spine curvatures do not bend the avatar at rest. The root gets
the pelvis position (scaled by the leg-length ratio) and the facing of the hips.

Rotations are expressed in *world-aligned rest frames*: every bone's rest frame is the identity
rotation at its rest head, so a bone's local rotation `L_i` acts in character axes (x left, y up,
z forward) after its parent's rotation, and `G_i = G_parent @ L_i`.

    rig = Rig(names, parents, heads)        # from mio.render.avatar.AvatarAsset
    pose = retarget(joints, rig)            # joints (22, 3) or None for a relaxed standing pose
    skin = skinning_matrices(rig, pose)     # (B, 4, 4) for linear-blend skinning
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mio.core.errors import InputError
from mio.core.layouts import HUMANML3D_JOINT_NAMES, HUMANML3D_JOINTS

J = {name: i for i, name in enumerate(HUMANML3D_JOINT_NAMES)}

# anny bone whose rest head stands in for each HumanML3D joint (for the reference pose).
REFERENCE_BONES: dict[str, str] = {
    "pelvis": "root",
    "left_hip": "upperleg01.L",
    "right_hip": "upperleg01.R",
    "spine1": "spine03",
    "left_knee": "lowerleg01.L",
    "right_knee": "lowerleg01.R",
    "spine2": "spine02",
    "left_ankle": "foot.L",
    "right_ankle": "foot.R",
    "spine3": "spine01",
    "left_foot": "toe3-1.L",
    "right_foot": "toe3-1.R",
    "neck": "neck01",
    "left_collar": "clavicle.L",
    "right_collar": "clavicle.R",
    "head": "head",
    "left_shoulder": "upperarm01.L",
    "right_shoulder": "upperarm01.R",
    "left_elbow": "lowerarm01.L",
    "right_elbow": "lowerarm01.R",
    "left_wrist": "wrist.L",
    "right_wrist": "wrist.R",
}

# Limb bones aligned absolutely: (bone, bone whose head is its tail, joint from, joint to).
LIMBS: tuple[tuple[str, str, str, str], ...] = tuple(
    item
    for s, side in (("L", "left"), ("R", "right"))
    for item in (
        (f"upperarm01.{s}", f"lowerarm01.{s}", f"{side}_shoulder", f"{side}_elbow"),
        (f"lowerarm01.{s}", f"wrist.{s}", f"{side}_elbow", f"{side}_wrist"),
        (f"upperleg01.{s}", f"lowerleg01.{s}", f"{side}_hip", f"{side}_knee"),
        (f"lowerleg01.{s}", f"foot.{s}", f"{side}_knee", f"{side}_ankle"),
        (f"foot.{s}", f"toe3-1.{s}", f"{side}_ankle", f"{side}_foot"),
    )
)
SPINE_BONES = (
    "spine04",
    "spine03",
    "spine02",
    "spine01",
)  # share the chest's rotation relative to the pelvis
NECK_SPLIT = (("neck01", 0.5), ("head", 0.5))  # share of the neck->head swing per bone


@dataclass(frozen=True)
class Rig:
    """The skeleton the retargeter needs: names, parents (parents first) and rest heads (world)."""

    names: tuple[str, ...]
    parents: np.ndarray  # (B,) int, -1 for the root
    heads: np.ndarray  # (B, 3) rest joint positions, metres, Y up, facing +Z
    _levels: list[np.ndarray] = field(init=False, repr=False, compare=False)
    # per tree level: (bones, their parents or None at the root, rest offsets from the parent (n, 3, 1))
    _level_offsets: list[tuple] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        depth = np.zeros(len(self.names), np.int64)
        for i, p in enumerate(self.parents):
            if p >= i:
                raise ValueError("rig bones must be ordered parents first")
            depth[i] = 0 if p < 0 else depth[p] + 1
        levels = [np.flatnonzero(depth == d) for d in range(depth.max() + 1)]
        heads = np.asarray(self.heads, np.float64)
        object.__setattr__(self, "heads", heads)
        object.__setattr__(self, "_levels", levels)
        offsets = []
        for level in levels:
            par = np.asarray(self.parents)[level]
            if par[0] < 0:
                offsets.append((level, None, None))
            else:
                offsets.append((level, par, (heads[level] - heads[par])[..., None]))
        object.__setattr__(self, "_level_offsets", offsets)

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass
class RigPose:
    rotations: np.ndarray  # (B, 3, 3) local rotations in world-aligned rest frames
    translation: np.ndarray  # (3,) root displacement from its rest position


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a to direction b (Rodrigues)."""
    a, b = _normalize(a), _normalize(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -0.999999:  # opposite: turn half way round any axis orthogonal to a
        axis = _normalize(np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0]))
        return 2 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def axis_angle_to_matrix(r: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(r))
    if theta < 1e-9:
        return np.eye(3)
    k = r / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * K + (1 - np.cos(theta)) * K @ K


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    c = np.clip((np.trace(R) - 1) / 2, -1, 1)
    theta = np.arccos(c)
    if theta < 1e-9:
        return np.zeros(3)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if np.sin(theta) < 1e-6:  # ~180 degrees: axis from the symmetric part
        axis = _normalize(np.sqrt(np.maximum((np.diag(R) + 1) / 2, 0)) * np.sign(w + 1e-12))
        return axis * theta
    return w / (2 * np.sin(theta)) * theta


def _frame(x_hint: np.ndarray, y_hint: np.ndarray) -> np.ndarray:
    """Right-handed frame (columns x, y, z) with x along x_hint and y as close to y_hint as possible."""
    x = _normalize(x_hint)
    y = _normalize(y_hint - np.dot(y_hint, x) * x)
    return np.stack([x, y, _cross(x, y)], axis=1)


def reference_joints(rig: Rig) -> np.ndarray:
    """anny's own rest joints in HumanML3D order (its A-pose arms)."""
    return np.stack([rig.heads[rig.index(REFERENCE_BONES[n])] for n in HUMANML3D_JOINT_NAMES]).astype(
        np.float64
    )


def relaxed_joints(rig: Rig) -> np.ndarray:
    """A natural standing pose at anny's proportions: arms hanging at the sides, elbows a little bent."""
    j = reference_joints(rig)
    for side, sx in (("left", 1.0), ("right", -1.0)):
        s, e, w = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]
        upper = np.linalg.norm(j[e] - j[s])
        lower = np.linalg.norm(j[w] - j[e])
        j[e] = j[s] + upper * _normalize(np.array([0.16 * sx, -1.0, -0.04]))
        j[w] = j[e] + lower * _normalize(np.array([0.06 * sx, -1.0, 0.22]))
    for side, sx in (("left", 1.0), ("right", -1.0)):  # feet a little closer than anny's stance
        for name in ("knee", "ankle", "foot"):
            j[J[f"{side}_{name}"], 0] -= 0.02 * sx if name == "knee" else 0.035 * sx
    return j


def _check_joints(joints: np.ndarray) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (HUMANML3D_JOINTS, 3):
        raise InputError(
            f"joints must have shape ({HUMANML3D_JOINTS}, 3) (HumanML3D order), got {joints.shape}"
        )
    if not np.all(np.isfinite(joints)):
        raise InputError("joints contain NaN or inf")
    return joints


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows of v (..., 3) scaled to unit length."""
    return v / np.maximum(np.sqrt(np.einsum("...i,...i->...", v, v)), 1e-9)[..., None]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (..., 3) arrays (np.cross is ~10x slower on tiny inputs)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _skew(k: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N, 3, 3) cross-product matrices."""
    K = np.zeros((len(k), 3, 3))
    K[:, 0, 1], K[:, 0, 2] = -k[:, 2], k[:, 1]
    K[:, 1, 0], K[:, 1, 2] = k[:, 2], -k[:, 0]
    K[:, 2, 0], K[:, 2, 1] = -k[:, 1], k[:, 0]
    return K


def rotations_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched `rotation_between`: (N, 3), (N, 3) -> (N, 3, 3)."""
    a, b = _unit(a), _unit(b)
    c = np.einsum("ni,ni->n", a, b)
    K = _skew(_cross(a, b))
    opposite = c < -0.999999
    R = np.eye(3) + K + K @ K / np.where(opposite, 1.0, 1.0 + c)[:, None, None]
    for n in np.flatnonzero(opposite):  # rare: turn half way round any axis orthogonal to a
        R[n] = rotation_between(a[n], b[n])
    return R


def axis_angles_to_matrices(r: np.ndarray) -> np.ndarray:
    """Batched `axis_angle_to_matrix`: (N, 3) -> (N, 3, 3)."""
    theta = np.sqrt(np.einsum("ni,ni->n", r, r))
    K = _skew(r / np.maximum(theta, 1e-12)[:, None])
    s, c = np.sin(theta)[:, None, None], (1 - np.cos(theta))[:, None, None]
    R = np.eye(3) + s * K + c * (K @ K)
    R[theta < 1e-9] = np.eye(3)
    return R


class Retargeter:
    """Holds the reference-pose quantities of one rig so each frame only does the per-frame work.

    Only ~20 bones are driven (root, spine, collars, neck, limbs); every other bone keeps the
    identity local rotation, so its global rotation is that of its nearest driven ancestor. The
    limbs are aligned in three batched stages (upper arm/leg, forearm/shin, foot)."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        ref = reference_joints(rig)
        self.ref = ref
        self._pelvis_ref = self._pelvis_frame(ref)
        chest_ref = self._chest_frame(ref)
        self._chest_ref_rel = self._pelvis_ref.T @ chest_ref
        self._neck_ref_dir = chest_ref.T @ (ref[J["head"]] - ref[J["neck"]])
        self._collar_ref = np.stack(
            [
                chest_ref.T @ (ref[J[f"{side}_shoulder"]] - ref[J[f"{side}_collar"]])
                for side in ("left", "right")
            ]
        )  # (2, 3) in the chest frame
        self._collar_joints = np.array(
            [[J[f"{side}_collar"], J[f"{side}_shoulder"]] for side in ("left", "right")]
        )  # (2, 2): from, to
        self._leg_len = self._leg_length(ref)
        self._spine = np.array([rig.index(b) for b in SPINE_BONES])
        self._neck = np.array([rig.index(b) for b, _ in NECK_SPLIT])
        self._neck_f = np.array([f for _, f in NECK_SPLIT])
        self._clav = np.array([rig.index(f"clavicle.{s}") for s in "LR"])
        self._root = rig.index("root")
        limb_bones = [rig.index(b) for b, _, _, _ in LIMBS]
        driven = sorted({self._root, *self._spine, *self._clav, *self._neck, *limb_bones})
        # nearest driven ancestor of each driven bone (-1: none): its global rotation is the parent's
        self._driven = np.array(driven)
        self._driven_parent = np.array([self._driven_ancestor(i, set(driven)) for i in driven])
        # Limbs in stages: a limb's driven ancestors must be final before it is aligned.
        limb_set, stages = set(limb_bones), {}
        for (_, t, a, z), i in zip(LIMBS, limb_bones, strict=True):
            depth, k = 0, rig.parents[i]
            while k >= 0:
                depth += k in limb_set
                k = rig.parents[k]
            stages.setdefault(depth, []).append(
                (i, self._driven_ancestor(i, set(driven)), rig.heads[rig.index(t)] - rig.heads[i], J[a], J[z])
            )
        self._stages = [
            tuple(np.array(col) for col in zip(*stages[d], strict=True)) for d in sorted(stages)
        ]  # each: (bones, driven parents, rest directions (n, 3), joints from, joints to)
        self._relaxed: RigPose | None = None

    def _driven_ancestor(self, i: int, driven: set[int]) -> int:
        k = int(self.rig.parents[i])
        while k >= 0 and k not in driven:
            k = int(self.rig.parents[k])
        return k

    @staticmethod
    def _pelvis_frame(j: np.ndarray) -> np.ndarray:
        return _frame(j[J["left_hip"]] - j[J["right_hip"]], j[J["spine3"]] - j[J["pelvis"]])

    @staticmethod
    def _chest_frame(j: np.ndarray) -> np.ndarray:
        return _frame(j[J["left_shoulder"]] - j[J["right_shoulder"]], j[J["neck"]] - j[J["spine1"]])

    @staticmethod
    def _leg_length(j: np.ndarray) -> float:
        return 0.5 * sum(
            np.linalg.norm(j[J[f"{s}_hip"]] - j[J[f"{s}_knee"]])
            + np.linalg.norm(j[J[f"{s}_knee"]] - j[J[f"{s}_ankle"]])
            for s in ("left", "right")
        )

    def __call__(self, joints: np.ndarray | None) -> RigPose:
        if joints is None:
            if self._relaxed is None:
                self._relaxed = self._retarget(relaxed_joints(self.rig), scale_root=False)
            return RigPose(self._relaxed.rotations.copy(), self._relaxed.translation.copy())
        return self._retarget(_check_joints(joints), scale_root=True)

    def _retarget(self, j: np.ndarray, scale_root: bool) -> RigPose:
        rig = self.rig
        n = len(rig.names)
        L = np.tile(np.eye(3), (n, 1, 1))  # local rotations
        G = np.tile(np.eye(3), (n, 1, 1))  # global rotations (valid for driven bones only)

        # Root: facing and tilt of the hips, relative to the reference (rest -> identity).
        pelvis = self._pelvis_frame(j)
        L[self._root] = pelvis @ self._pelvis_ref.T
        # Chest relative to the pelvis, spread evenly over the spine bones.
        chest = self._chest_frame(j)
        rel = pelvis.T @ chest @ self._chest_ref_rel.T
        # Collar bones swing relative to the chest (shrugs); neck and head share the swing of
        # neck->head relative to the chest (nods, tilts).
        seg = j[self._collar_joints[:, 1]] - j[self._collar_joints[:, 0]]
        swings = rotations_between(
            np.concatenate([self._collar_ref, self._neck_ref_dir[None]]),
            np.concatenate([seg, (j[J["head"]] - j[J["neck"]])[None]]) @ chest,  # chest.T @ v, row-wise
        )  # (3, 3, 3): clavicle L, clavicle R, neck
        L[self._clav] = swings[:2]
        rots = np.concatenate(
            [
                matrix_to_axis_angle(rel)[None] / len(self._spine),
                matrix_to_axis_angle(swings[2])[None] * self._neck_f[:, None],
            ]
        )
        parts = axis_angles_to_matrices(rots)
        L[self._spine] = parts[0]
        L[self._neck] = parts[1:]

        # Global rotations of the driven torso bones (parents first), then the limbs aligned
        # absolutely, stage by stage.
        for i, p in zip(self._driven, self._driven_parent, strict=True):
            G[i] = L[i] if p < 0 else G[p] @ L[i]
        for bones, parents, rest_dir, a, z in self._stages:
            Gp = G[parents]
            Gi = rotations_between(np.einsum("nij,nj->ni", Gp, rest_dir), j[z] - j[a]) @ Gp
            G[bones] = Gi
            L[bones] = np.transpose(Gp, (0, 2, 1)) @ Gi

        if scale_root:
            scale = self._leg_len / max(self._leg_length(j), 1e-6)
            translation = scale * j[J["pelvis"]] - rig.heads[self._root]  # feet stay on the floor
        else:
            translation = j[J["pelvis"]] - rig.heads[self._root]
        return RigPose(L, translation)


def retarget(joints: np.ndarray | None, rig: Rig) -> RigPose:
    """One-shot form of `Retargeter(rig)(joints)`; keep a Retargeter for per-frame use."""
    return Retargeter(rig)(joints)


def skinning_matrices(rig: Rig, pose: RigPose) -> np.ndarray:
    """(B, 4, 4) matrices taking rest positions to posed positions (linear-blend skinning)."""
    n = len(rig.names)
    G = np.empty((n, 3, 3))
    P = np.empty((n, 3))
    L = pose.rotations
    for level, par, offset in rig._level_offsets:  # forward kinematics, one tree level at a time
        if par is None:
            G[level] = L[level]
            P[level] = rig.heads[level] + pose.translation
            continue
        Gp = G[par]
        G[level] = Gp @ L[level]
        P[level] = P[par] + (Gp @ offset)[..., 0]
    M = np.zeros((n, 4, 4))
    M[:, :3, :3] = G
    M[:, :3, 3] = P - (G @ rig.heads[..., None])[..., 0]
    M[:, 3, 3] = 1
    return M
