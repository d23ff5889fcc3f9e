"""`mio face track VIDEO`: per-frame face tracks (arkit52) from a video with MediaPipe FaceMesh.

mediapipe==0.10.21 ships the FaceMesh landmark models (468 points + 10 iris points with
refine_landmarks) but not the face-blendshape model (the FaceLandmarker .task bundle is a
download), so blendshapes are measured geometrically from the landmarks, each against the
person's own neutral (the video's median), which makes them usable as UniLS training data:

- head rotation: rigid (Kabsch) fit of stable landmarks (eye corners, nose bridge, forehead) to
  the video's median face, as axis-angle in the Y-up, Z-forward head frame (+x nods down, +y turns
  to the person's left, +z rolls), the arkit52 convention;
- eyeBlink L/R: eyelid opening / eye width, against the open-eye level (90th percentile);
- eye gaze: iris centre within the eye corners -> eye rotations and the eyeLook* blendshapes;
- jawOpen, mouthClose, mouthSmile L/R, mouthPucker/Funnel, mouthStretch L/R: inner-lip gap,
  mouth-corner width and height, normalised by the inter-ocular distance;
- browInnerUp, browOuterUp L/R, browDown L/R: brow-to-eye distances against neutral.

The other ARKit weights stay 0. Frames without a detected face repeat the last tracked one.
The result is resampled to 25 fps and written as face.npz (`params`, `layout`, `fps`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mio.core.audiofile import warn
from mio.core.errors import BackendError, InputError
from mio.core.layouts import ARKIT52, FACE_FPS, blendshape_index

B = blendshape_index
RIGID = [33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 10, 151, 9, 8, 127, 356, 234, 454]
R_EYE = (33, 133, 159, 145)  # person's right eye: outer, inner, upper lid, lower lid (image left)
L_EYE = (263, 362, 386, 374)
R_IRIS, L_IRIS = 468, 473
LIP_UP, LIP_LOW, CORNER_R, CORNER_L = 13, 14, 61, 291
BROW_IN_R, BROW_IN_L, BROW_OUT_R, BROW_OUT_L = 105, 334, 70, 300
GAZE_GAIN = 2.0  # eyeLook* weight per radian, as mio.face.procedural
EYE_RANGE = 0.6  # rad of gaze when the iris reaches an eye corner


def landmarks_from_video(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(N, 478, 3) landmarks in a metric-like frame (x right, y up, z toward the camera; pixels),
    a (N,) detected mask, and the video's fps."""
    import av

    try:
        import mediapipe as mp
    except ImportError as e:  # pragma: no cover - a dev dependency
        raise BackendError(f"`mio face track` needs mediapipe==0.10.21: {e}") from e
    path = Path(path)
    if not path.is_file():
        raise InputError(f"video {path} does not exist")
    try:
        container = av.open(str(path))
    except Exception as e:  # noqa: BLE001 - PyAV raises many types
        raise InputError(f"cannot open video {path}: {e}") from e
    with container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream (give a video of a face)")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or FACE_FPS)
        if not 1 <= fps <= 1000:
            raise InputError(f"{path}: a frame rate of {fps:g} fps is not a video's")
        out, found = [], []
        last = np.zeros((478, 3), np.float32)
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True,
                                             min_detection_confidence=0.5) as mesh:
            try:
                for frame in container.decode(stream):
                    img = frame.to_ndarray(format="rgb24")
                    h, w = img.shape[:2]
                    res = mesh.process(img)
                    if res.multi_face_landmarks:
                        lm = res.multi_face_landmarks[0].landmark
                        last = np.array([(p.x * w, -p.y * h, -p.z * w) for p in lm], np.float32)
                        found.append(True)
                    else:
                        found.append(False)
                    out.append(last)
                    if max_frames is not None and len(out) >= max_frames:
                        break
            except av.FFmpegError as e:  # damaged or truncated: the frames before the damage are tracked
                if len(out) < 2:
                    raise InputError(f"cannot decode video {path}: {' '.join(str(e).split())}") from None
                warn(f"{path} is damaged after frame {len(out)} ({' '.join(str(e).split())}); tracked the frames "
                     "before it")
    if not any(found):
        raise InputError(f"no face was found in {path}")
    return np.stack(out), np.array(found), fps


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotation R (3, 3) minimising |R src_i - dst_i| over centred point sets (N, 3)."""
    u, _, vt = np.linalg.svd(dst.T @ src)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _ratio(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def blendshapes_from_landmarks(lms: np.ndarray, found: np.ndarray | None = None) -> np.ndarray:
    """(N, 478, 3) landmarks -> (N, 61) arkit52 (see the module docstring for what is measured)."""
    N = len(lms)
    found = np.ones(N, bool) if found is None else found
    out = ARKIT52.zeros(N)
    rigid = lms[found][:, RIGID]
    ref_c = np.median(rigid - rigid.mean(1, keepdims=True), axis=0)  # the median face, translation removed
    from scipy.spatial.transform import Rotation

    rots = np.zeros((N, 3, 3))
    for i in range(N):
        cur = lms[i, RIGID]
        rots[i] = _kabsch(ref_c, cur - cur.mean(0))  # cur ~ R @ ref
    out[:, ARKIT52.slice("head")] = Rotation.from_matrix(rots).as_rotvec()
    # measurements in the head frame, in units of the inter-ocular distance
    local = np.einsum("nij,nvj->nvi", rots.transpose(0, 2, 1), lms - lms[:, RIGID].mean(1, keepdims=True))
    iod = np.linalg.norm(local[:, 33] - local[:, 263], axis=1).mean()
    L = local / iod
    dist = lambda a, b: np.linalg.norm(L[:, a] - L[:, b], axis=1)  # noqa: E731
    neutral = lambda x: float(np.median(x[found]))  # noqa: E731
    # eyes: blinks from lid opening, gaze from the iris
    for (outer, inner, up, low), iris, side in ((R_EYE, R_IRIS, "Right"), (L_EYE, L_IRIS, "Left")):
        width = dist(outer, inner)
        opening = dist(up, low) / width
        open_level = float(np.percentile(opening[found], 90))
        out[:, B(f"eyeBlink{side}")] = 1.0 - _ratio(opening, 0.25 * open_level, 0.85 * open_level)
        centre = 0.5 * (L[:, outer] + L[:, inner])
        rel = (L[:, iris] - centre) / width[:, None]  # (N, 3)
        rel -= np.median(rel[found], axis=0)
        yaw = np.clip(rel[:, 0] * 2 * EYE_RANGE, -EYE_RANGE, EYE_RANGE)  # +x image right = the person's left
        pitch = np.clip(-rel[:, 1] * 4 * EYE_RANGE, -EYE_RANGE, EYE_RANGE)  # iris lower = looking down = +pitch
        eye = ARKIT52.slice("eye_left" if side == "Left" else "eye_right")
        out[:, eye] = np.stack([pitch, yaw, np.zeros(N)], axis=1)
        out[:, B(f"eyeLookUp{side}")] = np.clip(GAZE_GAIN * -pitch, 0, 1)
        out[:, B(f"eyeLookDown{side}")] = np.clip(GAZE_GAIN * pitch, 0, 1)
        toward_left = np.clip(GAZE_GAIN * yaw, 0, 1)
        toward_right = np.clip(GAZE_GAIN * -yaw, 0, 1)
        out[:, B(f"eyeLookOut{side}")] = toward_left if side == "Left" else toward_right
        out[:, B(f"eyeLookIn{side}")] = toward_right if side == "Left" else toward_left
    # mouth
    gap = dist(LIP_UP, LIP_LOW)
    g0 = float(np.percentile(gap[found], 5))
    out[:, B("jawOpen")] = _ratio(gap, g0 + 0.01, g0 + 0.45)
    width = dist(CORNER_R, CORNER_L)
    w0 = neutral(width)
    out[:, B("mouthStretchLeft")] = out[:, B("mouthStretchRight")] = _ratio(width / w0, 1.04, 1.25)
    pucker = _ratio(w0 / width, 1.04, 1.3)
    out[:, B("mouthPucker")] = pucker
    out[:, B("mouthFunnel")] = pucker * out[:, B("jawOpen")]
    mid_y = 0.5 * (L[:, LIP_UP, 1] + L[:, LIP_LOW, 1])
    for corner, side in ((CORNER_R, "Right"), (CORNER_L, "Left")):
        lift = L[:, corner, 1] - mid_y
        out[:, B(f"mouthSmile{side}")] = _ratio(lift - neutral(lift), 0.02, 0.12)
        out[:, B(f"mouthFrown{side}")] = _ratio(neutral(lift) - lift, 0.02, 0.1)
    # brows
    for brow_in, brow_out, eye_up, side in ((BROW_IN_R, BROW_OUT_R, 159, "Right"), (BROW_IN_L, BROW_OUT_L, 386, "Left")):
        h_in = L[:, brow_in, 1] - L[:, eye_up, 1]
        h_out = L[:, brow_out, 1] - L[:, eye_up, 1]
        out[:, B(f"browOuterUp{side}")] = _ratio(h_out - neutral(h_out), 0.02, 0.12)
        out[:, B(f"browDown{side}")] = _ratio(neutral(h_in) - h_in, 0.02, 0.1)
        out[:, B("browInnerUp")] += 0.5 * _ratio(h_in - neutral(h_in), 0.02, 0.12)
    np.clip(out[:, :52], 0, 1, out=out[:, :52])
    return out


def resample(params: np.ndarray, fps: float, target: float = FACE_FPS) -> np.ndarray:
    """Linear resampling along time. (N, D) at fps -> (M, D) at target."""
    if abs(fps - target) < 1e-6 or len(params) < 2:
        return params
    t_src = np.arange(len(params)) / fps
    t_dst = np.arange(int(np.floor(t_src[-1] * target)) + 1) / target
    return np.stack([np.interp(t_dst, t_src, params[:, d]) for d in range(params.shape[1])], axis=1).astype(np.float32)


def track_video(path: str | Path, max_frames: int | None = None) -> np.ndarray:
    """A video -> (T, 61) arkit52 at 25 fps."""
    lms, found, fps = landmarks_from_video(path, max_frames)
    return resample(blendshapes_from_landmarks(lms, found), fps)
