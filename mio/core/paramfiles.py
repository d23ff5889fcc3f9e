"""The files of the parameter streams: face.npz (`mio face animate|track`) and motion.npz (`mio body
generate|import`), read with one-line errors for what is not such a file.

    face.npz     params (T, D) float32, layout ("arkit52" | "flame112"), fps (25), extra arrays
    motion.npz   features (T, 263) HumanML3D, fps (20), optional joints (T, 22, 3), prompts, times
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mio.core.errors import InputError
from mio.core.layouts import BODY_FPS, FACE_FPS, HUMANML3D, LAYOUTS

_UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile)  # np.load of a damaged / empty / non-zip file
MIN_FPS, MAX_FPS = 1.0, 1000.0  # frame rates a parameter file may declare (mocap runs up to ~480 Hz)


def check_fps(fps: float, where: str) -> float:
    """A parameter file's frame rate, or a one-line InputError (NaN, zero, negative or absurd)."""
    if not (np.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise InputError(f"{where}: fps must be a number from {MIN_FPS:g} to {MAX_FPS:g}, got {fps}")
    return float(fps)


def _arrays(path: str | Path, what: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except _UNREADABLE as e:
        raise InputError(f"cannot read {what} from {path}: {e or type(e).__name__}") from None


def read_face_npz(path: str | Path) -> tuple[np.ndarray, float, str, dict[str, np.ndarray]]:
    """face.npz -> (params (T, D) float32, fps, layout name, every array of the file)."""
    d = _arrays(path, "face parameters")
    if "params" not in d:
        raise InputError(f"{path} has no `params` array (expected the face.npz format)")
    params = np.asarray(d["params"], np.float32)
    if params.ndim != 2 or len(params) == 0:
        raise InputError(f"{path}: params must be (T, D) with at least one frame, got {params.shape}")
    if not np.all(np.isfinite(params)):
        raise InputError(f"{path}: the face parameters contain NaN or inf")
    layout = str(d.get("layout", "arkit52"))
    if layout not in LAYOUTS:
        raise InputError(f"{path}: unknown layout {layout!r}")
    return params, check_fps(float(d.get("fps", FACE_FPS)), str(path)), layout, d


def read_motion_npz(path: str | Path) -> tuple[np.ndarray, float, np.ndarray | None]:
    """motion.npz (features (T, 263), fps, optional joints (T, 22, 3)) -> (features, fps, joints)."""
    d = _arrays(path, "motion")
    if "features" not in d:
        raise InputError(f"{path} has no `features` array (expected the motion.npz format)")
    feats = np.asarray(d["features"], np.float32)
    if feats.ndim != 2 or feats.shape[1] != HUMANML3D.dim or len(feats) == 0:
        raise InputError(f"{path}: features must be (T, {HUMANML3D.dim}) HumanML3D with at least one frame, "
                         f"got {feats.shape}")
    if not np.all(np.isfinite(feats)):
        raise InputError(f"{path}: the motion features contain NaN or inf")
    joints = np.asarray(d["joints"], np.float32) if "joints" in d else None
    if joints is not None and (joints.shape != (len(feats), 22, 3) or not np.all(np.isfinite(joints))):
        raise InputError(f"{path}: joints must be finite ({len(feats)}, 22, 3) beside the features, got {joints.shape}")
    return feats, check_fps(float(d.get("fps", BODY_FPS)), str(path)), joints
