"""Visual features v_t of the user's reaction (§6.2.1, Eq. 19): smile, gaze, head motion.

When a camera frame is given, mediapipe 0.10.21 FaceMesh (its .tflite models ship in the wheel)
finds 478 face landmarks (468 + 10 iris points with `refine_landmarks`). The cues are geometric and
scale-free (every distance is divided by the distance between the outer eye corners):

- smile: mouth width and how far the mouth corners rise above the lip centre, squashed to 0..1;
- gaze-on: where each iris sits between its eye corners and lids (0.5, 0.5 is straight ahead) and
  how far the nose is turned from the eyes' midpoint (head yaw), as a 0..1 "looking at the camera";
- motion: mean landmark displacement from the previous frame (head movement, nodding).

These are heuristics on landmarks, not a trained expression classifier; their constants were set on
neutral vs. smiling geometry and should be read as coarse probabilities.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np

from mio.core.errors import BackendError, InputError

# FaceMesh landmark indices (canonical face mesh topology).
MOUTH_LEFT, MOUTH_RIGHT, LIP_UPPER, LIP_LOWER = 61, 291, 13, 14
EYE_R_OUTER, EYE_R_INNER, EYE_R_TOP, EYE_R_BOTTOM = 33, 133, 159, 145
EYE_L_OUTER, EYE_L_INNER, EYE_L_TOP, EYE_L_BOTTOM = 263, 362, 386, 374
IRIS_R, IRIS_L = 468, 473  # iris centres (refine_landmarks=True)
NOSE_TIP = 1
N_LANDMARKS = 478

SMILE_WIDTH_NEUTRAL = 0.78  # mouth width / eye-corner distance of a neutral mouth
SMILE_GAIN_WIDTH, SMILE_GAIN_LIFT = 12.0, 40.0
GAZE_SIGMA = 0.18  # tolerance of the iris offset (fraction of the eye) still counted as "looking at you"
YAW_SIGMA = 0.12  # tolerance of the nose offset (fraction of the eye distance)


@dataclass(frozen=True)
class Visual:
    """v_t: one frame's (or a turn's mean) visual cues, each 0..1."""

    smile: float
    gaze_on: float
    motion: float
    face: bool = True  # False when no face was found (the other fields are then 0)

    def vector(self) -> np.ndarray:
        return np.array([self.smile, self.gaze_on, self.motion, float(self.face)], np.float32)

    def to_dict(self) -> dict[str, float | bool]:
        return {k: (round(float(v), 4) if not isinstance(v, bool) else v) for k, v in asdict(self).items()}


NO_FACE = Visual(0.0, 0.0, 0.0, face=False)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def cues(landmarks: np.ndarray, previous: np.ndarray | None = None) -> Visual:
    """Smile / gaze / motion from (478, 3) normalised FaceMesh landmarks (x right, y down)."""
    p = np.asarray(landmarks, np.float64)
    if p.shape[0] < N_LANDMARKS or p.ndim != 2:
        raise InputError(f"expected ({N_LANDMARKS}, 2|3) face landmarks, got {p.shape}")
    xy = p[:, :2]
    eye_dist = float(np.linalg.norm(xy[EYE_R_OUTER] - xy[EYE_L_OUTER])) + 1e-9
    width = float(np.linalg.norm(xy[MOUTH_LEFT] - xy[MOUTH_RIGHT])) / eye_dist
    centre_y = 0.5 * (xy[LIP_UPPER, 1] + xy[LIP_LOWER, 1])
    lift = float(centre_y - 0.5 * (xy[MOUTH_LEFT, 1] + xy[MOUTH_RIGHT, 1])) / eye_dist  # > 0: corners up
    smile = _sigmoid(SMILE_GAIN_WIDTH * (width - SMILE_WIDTH_NEUTRAL) + SMILE_GAIN_LIFT * lift - 1.0)

    def iris_offset(c1: int, c2: int, top: int, bottom: int, iris: int) -> np.ndarray:
        # Both eyes in the image's left-to-right frame, so that a glance to one side moves both alike.
        a, b = (xy[c1], xy[c2]) if xy[c1, 0] <= xy[c2, 0] else (xy[c2], xy[c1])
        axis = b - a
        h = float(np.dot(xy[iris] - a, axis) / (np.dot(axis, axis) + 1e-12))  # 0 left corner .. 1 right corner
        span = xy[bottom, 1] - xy[top, 1]
        v = float((xy[iris, 1] - xy[top, 1]) / span) if abs(span) > 1e-9 else 0.5
        return np.array([h - 0.5, v - 0.5])

    off = 0.5 * (iris_offset(EYE_R_OUTER, EYE_R_INNER, EYE_R_TOP, EYE_R_BOTTOM, IRIS_R)
                 + iris_offset(EYE_L_OUTER, EYE_L_INNER, EYE_L_TOP, EYE_L_BOTTOM, IRIS_L))
    yaw = float(xy[NOSE_TIP, 0] - 0.5 * (xy[EYE_R_OUTER, 0] + xy[EYE_L_OUTER, 0])) / eye_dist
    gaze_on = float(np.exp(-0.5 * (off @ off) / GAZE_SIGMA**2 - 0.5 * (yaw / YAW_SIGMA) ** 2))
    motion = 0.0
    if previous is not None:
        q = np.asarray(previous, np.float64)[:, :2]
        motion = float(min(1.0, 10.0 * np.linalg.norm(xy - q, axis=1).mean() / eye_dist))
    return Visual(smile=smile, gaze_on=gaze_on, motion=motion)


def mean(frames: list[Visual]) -> Visual:
    """A turn's visual cues: the mean over the frames that had a face."""
    seen = [f for f in frames if f.face]
    if not seen:
        return NO_FACE
    return Visual(float(np.mean([f.smile for f in seen])), float(np.mean([f.gaze_on for f in seen])),
                  float(np.mean([f.motion for f in seen])))


class FaceCues:
    """mediapipe FaceMesh over camera frames (RGB uint8 H x W x 3) -> `Visual`. Not thread-safe per
    instance beyond its lock; keep one per session (it tracks the previous frame for motion)."""

    def __init__(self) -> None:
        try:
            import mediapipe as mp
        except ImportError as e:
            raise BackendError("visual cues need mediapipe==0.10.21 (pip install mediapipe==0.10.21)") from e
        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                                     refine_landmarks=True, min_detection_confidence=0.5)
        self._previous: np.ndarray | None = None
        self._lock = threading.Lock()

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputError(f"camera frame must be RGB uint8 (H, W, 3), got {img.dtype} {img.shape}")
        with self._lock:
            res = self._mesh.process(np.ascontiguousarray(img))
        if not res.multi_face_landmarks:
            return None
        return np.array([(lm.x, lm.y, lm.z) for lm in res.multi_face_landmarks[0].landmark], np.float32)

    def __call__(self, image: np.ndarray) -> Visual:
        pts = self.landmarks(image)
        if pts is None or len(pts) < N_LANDMARKS:
            self._previous = None
            return NO_FACE
        out = cues(pts, self._previous)
        self._previous = pts
        return out

    def close(self) -> None:
        self._mesh.close()
