"""Any BVH -> `ImportedMotion` (HumanML3D features and joints at 20 fps, the performer's proportions).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mio.body.bvh.file import (
    UNITS,
    UP_AXES,
    BvhError,
    BvhFile,
    bvh_positions,
    interpolate_local,
    local_transforms,
    read_bvh,
    sample_plan,
)
from mio.body.bvh.mapping import (
    REST_SIZE,
    REST_STATURE,
    SkeletonMap,
    ancestors,
    detect_units,
    detect_up,
    map_skeleton,
    parse_units,
    skeleton_size,
    toes_point_back,
)
from mio.body.humanml3d import features_to_joints, joints_to_features
from mio.core.layouts import BODY_FPS, HUMANML3D_JOINT_NAMES


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
        return skeleton_size(self.joints) / REST_SIZE * REST_STATURE

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
        name, per = detect_units(skeleton_size(raw), where)
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
    mirrored = toes_point_back(joints)
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
                used.update(ancestors(bvh, k))
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
