"""Face Animator metrics (§7.1, Table 3): LVE, MHD, FDD, PDD, JDD, F-FID, P-FID.

Vertex metrics take mesh sequences (T, V, 3) of prediction and ground truth on the same topology
(FLAME in the paper) and index sets for the lips / upper face; the dynamics metrics take motion
(displacement from the neutral template) so that the template cancels out.
"""

from __future__ import annotations

import numpy as np

from mio.bench.metrics.frechet import fid_from_features


def _pair(pred: np.ndarray, gt: np.ndarray, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if p.ndim != ndim or p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} must match, with {ndim} axes")
    return p, g


def lip_vertex_error(pred: np.ndarray, gt: np.ndarray, lip_idx: np.ndarray) -> float:
    """LVE (MeshTalk): per frame the *maximum* L2 error over lip vertices, averaged over frames."""
    p, g = _pair(pred, gt, 3)  # (T, V, 3)
    err = np.linalg.norm(p[:, lip_idx] - g[:, lip_idx], axis=-1)  # (T, V_lip)
    return float(err.max(axis=1).mean())


def mean_head_distance(pred: np.ndarray, gt: np.ndarray, head_idx: np.ndarray | None = None) -> float:
    """MHD: the L2 distance averaged over all head vertices and frames."""
    p, g = _pair(pred, gt, 3)
    if head_idx is not None:
        p, g = p[:, head_idx], g[:, head_idx]
    return float(np.linalg.norm(p - g, axis=-1).mean())


def _dynamics(motion: np.ndarray) -> np.ndarray:
    """Per element: the standard deviation over time of its L2 norm. (T, N, C) -> (N,)."""
    return np.linalg.norm(motion, axis=-1).std(axis=0)


def dynamic_deviation(pred_motion: np.ndarray, gt_motion: np.ndarray) -> float:
    """Mean over elements of |dyn(pred) - dyn(gt)| with dyn = std over time of the element's L2 norm.

    This is CodeTalker's FDD (elements = upper-face vertex displacements, (T, V, 3)); applied to
    head-pose / jaw-pose rotations ((T, 1, 3) axis-angle) it is PDD / JDD."""
    p, g = _pair(pred_motion, gt_motion, 3)
    return float(np.abs(_dynamics(p) - _dynamics(g)).mean())


def fdd(pred: np.ndarray, gt: np.ndarray, upper_idx: np.ndarray, template: np.ndarray | None = None) -> float:
    """Upper-face Dynamic Deviation (CodeTalker): on upper-face vertex motion (T, V, 3)."""
    p, g = _pair(pred, gt, 3)
    if template is not None:
        p, g = p - template, g - template
    return dynamic_deviation(p[:, upper_idx], g[:, upper_idx])


def pdd(pred_pose: np.ndarray, gt_pose: np.ndarray) -> float:
    """Pose Dynamic Deviation: head rotation (T, 3) axis-angle."""
    p, g = _pair(pred_pose, gt_pose, 2)
    return dynamic_deviation(p[:, None], g[:, None])


def jdd(pred_jaw: np.ndarray, gt_jaw: np.ndarray) -> float:
    """Jaw Dynamic Deviation: jaw rotation (T, 3) axis-angle."""
    return pdd(pred_jaw, gt_jaw)


def feature_fid(pred_params: np.ndarray, gt_params: np.ndarray) -> float:
    """F-FID / P-FID: Fréchet distance of per-frame expression (F) or pose (P) parameters (N, D)."""
    return fid_from_features(gt_params, pred_params)
