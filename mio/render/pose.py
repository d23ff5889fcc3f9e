"""Posing the avatar on the CPU, without GL: what a frame's face and body parameters do to one look.

    poser = Poser(asset)
    weights, skin = poser.pose(face, joints)     # face (61,) arkit52, joints (22, 3) or None
    pos, nrm = poser.blend_face(weights)         # the face vertices and normals, flattened

The non-zero ARKit weights blend the face vertices (only the prefix of the vertex buffer that
blendshapes move); the body joints are retargeted onto the rig (mio.render.retarget); the face's
head rotation is split over the neck and head bones and its eye rotations (plus the eyeLook*
weights' gaze, as ARKit means them) turn the eyes; forward kinematics gives one skinning matrix per
bone. The rasteriser uploads these; anything else (an exporter, a test) can pose without a context.
"""

from __future__ import annotations

import numpy as np

from mio.core.errors import InputError
from mio.core.layouts import ARKIT52, blendshape_index
from mio.render.asset import AvatarAsset
from mio.render.retarget import Retargeter, Rig, axis_angles_to_matrices, skinning_matrices

HEAD_SPLIT = (("neck02", 0.4), ("head", 0.6))  # share of the face's head rotation per bone
EYE_LOOK_RANGE = (0.45, 0.35)  # radians of gaze per unit eyeLook weight: (horizontal, vertical)
EYE_LOOKS = np.array([blendshape_index(k) for k in (
    "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeLookDownLeft",
    "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight", "eyeLookDownRight",
)])  # fmt: skip
HEAD_SHARE = np.array([f for _, f in HEAD_SPLIT])


def check_face(face: np.ndarray) -> np.ndarray:
    """One arkit52 frame (61,) as float64, or a one-line InputError."""
    face = np.asarray(face)
    if face.shape != (ARKIT52.dim,):
        raise InputError(
            f"face must be one arkit52 frame of shape ({ARKIT52.dim},) (52 blendshapes + head 3 + eyes 2x3), got {face.shape}"
        )
    if not np.all(np.isfinite(face)):
        raise InputError("face parameters contain NaN or inf")
    return face.astype(np.float64)


class Poser:
    """One look's rig, retargeting and blendshape deltas."""

    def __init__(self, asset: AvatarAsset) -> None:
        a = self.asset = asset
        self.rig = Rig(a.bone_names, a.bone_parents, a.bone_heads.astype(np.float64))
        self.retarget = Retargeter(self.rig)
        # bones the face turns: the head split over neck02/head, then the two eyes
        self.turned = np.array(
            [self.rig.index(b) for b, _ in HEAD_SPLIT] + [self.rig.index("eye.L"), self.rig.index("eye.R")]
        )
        nf = a.n_face_vertices
        self.rest_face = a.vertices[:nf].ravel().copy()
        self.rest_face_n = a.normals[:nf].ravel().copy()
        self.deltas = np.ascontiguousarray(a.blendshape_deltas.reshape(52, nf * 3))
        self.ndeltas = np.ascontiguousarray(a.normal_deltas.reshape(52, nf * 3))

    def blend_face(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(52,) blendshape weights -> the face prefix's vertices and normals, (n_face_vertices * 3,) each."""
        nz = np.flatnonzero(weights)
        w = weights[nz].astype(np.float32)
        # einsum, not `@`: a (k,) @ (k, nf*3) product goes to a multi-threaded OpenBLAS gemv whose
        # worker threads then spin in sched_yield, taking the CPU llvmpipe needs (a third of it on 2 cores)
        pos = self.rest_face + np.einsum("k,kn->n", w, self.deltas[nz])  # (nf*3,)
        nrm = self.rest_face_n + np.einsum("k,kn->n", w, self.ndeltas[nz])
        return pos, nrm

    def pose(self, face: np.ndarray, joints: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(the 52 blendshape weights in [0, 1], the (B, 4, 4) skinning matrices) of one frame."""
        face = check_face(face)
        weights = np.clip(face[ARKIT52.slice("blendshapes")], 0.0, 1.0)
        rig_pose = self.retarget(joints)
        L = rig_pose.rotations
        g = weights[EYE_LOOKS]  # (8,) eyeLook In/Out/Up/Down, left then right
        # ARKit semantics: eyeLook* weights also turn the eyeball (+y turns towards the
        # character's left, +x pitches down), on top of the explicit gaze rotation.
        yaw = np.array([g[1] - g[0], g[4] - g[5]]) * EYE_LOOK_RANGE[0]
        pitch = np.array([g[3] - g[2], g[7] - g[6]]) * EYE_LOOK_RANGE[1]
        gaze = np.stack([pitch, yaw, np.zeros(2)], axis=1)  # (2, 3)
        rots = np.concatenate(
            [
                face[ARKIT52.slice("head")][None] * HEAD_SHARE[:, None],  # head split over bones
                np.stack([face[ARKIT52.slice("eye_left")], face[ARKIT52.slice("eye_right")]]) + gaze,
            ]
        )
        L[self.turned] = L[self.turned] @ axis_angles_to_matrices(rots)
        return weights, skinning_matrices(self.rig, rig_pose)
