"""Face Animator metrics (§7.1, Table 3): LVE, MHD, FDD, PDD, JDD, F-FID, P-FID.

Vertex metrics take mesh sequences (T, V, 3) of prediction and ground truth on the same topology
(FLAME in the paper) and index sets for the lips / upper face; the dynamics metrics take motion
(displacement from the neutral template) so that the template cancels out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mio.core.layouts import ARKIT52, FLAME112, LAYOUTS, blendshape_index
from mio.metrics.frechet import fid_from_features


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


# --- Table 3 on Mio's layouts ------------------------------------------------------------------
# Speaking: LVE, MHD, FDD, PDD, JDD. Listening: FDD, PDD, JDD, F-FID, P-FID. For `arkit52` the vertex
# metrics go through a blendshape face mesh (the embedded avatar's): vertices = rest + sum_k w_k delta_k
# over the 52 ARKit blendshapes, in the head frame (head rotation is measured by PDD). Lip vertices are
# the avatar's lip material; the upper face is every blendshape-moved vertex above the middle of the
# nose. ARKit has no jaw rotation: "jaw pose" is (jawOpen, jawRight - jawLeft, jawForward) in blendshape
# units. `flame112` needs the FLAME model for vertices, which is not shipped: its vertex metrics are
# None, the parameter metrics are kept. Units: vertex metrics in mm; PDD in degrees; JDD in blendshape
# weight x 100 (arkit52) or degrees (flame112).

MIN_FRAMES = 10  # a segment shorter than this is not measured
DEG = 180.0 / np.pi


@dataclass(frozen=True)
class FaceMesh:
    """A blendshape face: rest (V, 3) + deltas (52, V, 3), in metres, with its lip and upper-face
    vertices (the bench builds it from the avatar: mio.bench.face.avatar_face_mesh)."""

    rest: np.ndarray
    deltas: np.ndarray
    lips: np.ndarray  # vertex indices
    upper: np.ndarray

    def vertices(self, params: np.ndarray) -> np.ndarray:
        """(T, 61) arkit52 -> (T, V, 3) in mm."""
        w = np.clip(params[:, ARKIT52.slice("blendshapes")], 0.0, 1.0)
        return 1e3 * (self.rest[None] + np.einsum("tk,kvc->tvc", w, self.deltas))


def head_pose(params: np.ndarray, layout: str) -> np.ndarray:
    """(T, D) -> (T, 3) head rotation in degrees."""
    return DEG * params[:, LAYOUTS[layout].slice("head")]


def jaw_pose(params: np.ndarray, layout: str) -> np.ndarray:
    """(T, D) -> (T, 3): FLAME jaw rotation in degrees, or the ARKit jaw blendshapes x 100."""
    if layout == FLAME112.name:
        return DEG * params[:, FLAME112.slice("jaw")]
    b = lambda n: params[:, blendshape_index(n)]  # noqa: E731
    return 100.0 * np.stack([b("jawOpen"), b("jawRight") - b("jawLeft"), b("jawForward")], axis=1)


def expression(params: np.ndarray, layout: str) -> np.ndarray:
    part = "blendshapes" if layout == ARKIT52.name else "expression"
    return params[:, LAYOUTS[layout].slice(part)]


def evaluate(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], layout: str = "arkit52",
             mesh: FaceMesh | None = None) -> dict[str, dict[str, float | None]]:
    """Table 3 over tracks: each pair is (prediction (T, D), ground truth (T, D), speaking mask (T,) bool).
    Vertex metrics (LVE, MHD, FDD) need `mesh` (arkit52 only); without it they are None.

    Sequence metrics (FDD/PDD/JDD) are computed per track on its speaking (listening) frames and
    averaged over tracks weighted by frames; FIDs pool all listening frames."""
    if layout != ARKIT52.name:
        mesh = None  # the FLAME mesh is not shipped
    acc: dict[str, dict[str, list[tuple[float, int]]]] = {"speak": {}, "listen": {}}
    pooled: dict[str, list[np.ndarray]] = {"pe": [], "ge": [], "pp": [], "gp": []}
    var: dict[str, list[tuple[float, int]]] = {}

    def add(seg: str, key: str, value: float, n: int) -> None:
        acc[seg].setdefault(key, []).append((value, n))

    for pred, gt, speaking in pairs:
        T = min(len(pred), len(gt), len(speaking))
        pred, gt, speaking = pred[:T], gt[:T], np.asarray(speaking[:T], bool)
        for seg, m in (("speak", speaking), ("listen", ~speaking)):
            n = int(m.sum())
            if n < MIN_FRAMES:
                continue
            p, g = pred[m], gt[m]
            add(seg, "PDD", pdd(head_pose(p, layout), head_pose(g, layout)), n)
            add(seg, "JDD", jdd(jaw_pose(p, layout), jaw_pose(g, layout)), n)
            if mesh is not None:
                pv, gv = mesh.vertices(p), mesh.vertices(g)
                rest = 1e3 * mesh.rest[None]
                add(seg, "FDD", dynamic_deviation((pv - rest)[:, mesh.upper], (gv - rest)[:, mesh.upper]), n)
                if seg == "speak":
                    add(seg, "LVE", lip_vertex_error(pv, gv, mesh.lips), n)
                    add(seg, "MHD", mean_head_distance(pv, gv), n)
            if seg == "listen":
                pooled["pe"].append(expression(p, layout))
                pooled["ge"].append(expression(g, layout))
                pooled["pp"].append(np.concatenate([head_pose(p, layout), jaw_pose(p, layout)], 1))
                pooled["gp"].append(np.concatenate([head_pose(g, layout), jaw_pose(g, layout)], 1))
                # motion variance while listening: temporal std, mean over expression dims / head axes
                var.setdefault("expr_std_pred", []).append((float(expression(p, layout).std(0).mean()), n))
                var.setdefault("expr_std_gt", []).append((float(expression(g, layout).std(0).mean()), n))
                var.setdefault("head_std_deg_pred", []).append((float(head_pose(p, layout).std(0).mean()), n))
                var.setdefault("head_std_deg_gt", []).append((float(head_pose(g, layout).std(0).mean()), n))

    def mean(vals: list[tuple[float, int]]) -> float:
        w = np.array([n for _, n in vals], float)
        return float(np.dot([v for v, _ in vals], w) / w.sum())

    out: dict[str, dict[str, float | None]] = {}
    for seg, keys in (("speak", ("LVE", "MHD", "FDD", "PDD", "JDD")), ("listen", ("FDD", "PDD", "JDD"))):
        out[seg] = {k: (mean(acc[seg][k]) if acc[seg].get(k) else None) for k in keys}
    if pooled["pe"]:
        out["listen"]["F-FID"] = feature_fid(np.concatenate(pooled["pe"]), np.concatenate(pooled["ge"]))
        out["listen"]["P-FID"] = feature_fid(np.concatenate(pooled["pp"]), np.concatenate(pooled["gp"]))
    out["listen_variance"] = {k: mean(v) for k, v in var.items()}
    return out
