"""Body parts of the render mesh and conservative per-frame frustum culling.

llvmpipe shades every vertex of a draw call on one CPU thread before clipping, so the triangles a
camera cannot see still cost time (the "portrait" framing shows less than half of the avatar).
The triangles are grouped into body parts (head, chest, arms, hands, legs, feet), each a
contiguous range of the index buffer, and each frame only the ranges of parts that may be in the
view frustum are drawn.

The test is exact-conservative for linear-blend skinning: a skinned vertex is a convex combination
of its rest position moved rigidly by each influencing bone, so it lies in the convex hull of the
part's rest bounding sphere moved by each of the part's bones. A part is culled only when one
frustum plane has *all* those moved spheres outside it. Blendshape offsets (face) are added to the
radius as their largest possible displacement.

    parts = partition(asset)                 # once: reordered triangles + bounds
    ranges = parts.ranges(parts.visible(skin, view_proj))  # per frame: [(first_index, index_count), ...]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mio.render.asset import AvatarAsset

# (part, root bone): a bone belongs to the part of its nearest ancestor (itself included) listed
# here, else to "hips". The order is the order in the index buffer: parts usually visible together
# are adjacent so they merge into one draw call, and the head (nearest the camera) draws first.
PART_ROOTS: tuple[tuple[str, str], ...] = (
    ("head", "neck01"),
    ("chest", "spine02"),
    ("upperarm.L", "upperarm01.L"),
    ("upperarm.R", "upperarm01.R"),
    ("forearm.L", "lowerarm01.L"),
    ("forearm.R", "lowerarm01.R"),
    ("hand.L", "wrist.L"),
    ("hand.R", "wrist.R"),
    ("hips", "root"),
    ("thigh.L", "upperleg01.L"),
    ("thigh.R", "upperleg01.R"),
    ("shin.L", "lowerleg01.L"),
    ("shin.R", "lowerleg01.R"),
    ("foot.L", "foot.L"),
    ("foot.R", "foot.R"),
    ("eye.L", "eye.L"),  # the eyeballs last: the renderer draws them with their own program
    ("eye.R", "eye.R"),
)


@dataclass(frozen=True)
class Parts:
    names: tuple[str, ...]
    triangles: np.ndarray  # (T, 3) uint32, grouped by part in `names` order
    first: np.ndarray  # (P,) first index (3 per triangle) of each part in `triangles`
    count: np.ndarray  # (P,) index count of each part
    # one row per (part, influencing bone) pair:
    pair_part: np.ndarray  # (K,) part id, ascending
    pair_start: np.ndarray  # (P',) first pair of each part that has pairs
    pair_bone: np.ndarray  # (K,) bone id
    center: np.ndarray  # (K, 4) homogeneous rest centre of the pair's part
    radius: np.ndarray  # (K,) rest radius of the pair's part, blendshape reach included

    def visible(self, skin: np.ndarray, view_proj: np.ndarray) -> np.ndarray:
        """(P,) bool: parts that may show. skin (B, 4, 4) skinning matrices, view_proj (4, 4) clip."""
        moved = np.einsum("kij,kj->ki", skin[self.pair_bone], self.center)  # (K, 4) sphere centres
        dist = moved @ frustum_planes(view_proj).T  # (K, 5) signed distances to the planes
        outside = dist < -self.radius[:, None]
        # a part is culled when some plane has all of its moved spheres outside
        all_out = np.logical_and.reduceat(outside, self.pair_start, axis=0)  # (P', 5)
        vis = np.zeros(len(self.names), bool)
        vis[self.pair_part[self.pair_start]] = ~all_out.any(axis=1)
        return vis

    def mask(self, names: tuple[str, ...]) -> np.ndarray:
        """(P,) bool selecting the named parts."""
        return np.isin(np.asarray(self.names), names)

    def ranges(self, visible: np.ndarray) -> list[tuple[int, int]]:
        """(first index, index count) of the parts selected by `visible` (P,) bool, adjacent parts
        merged into one range (one draw call)."""
        ranges: list[tuple[int, int]] = []
        for p in np.flatnonzero(visible):
            first, count = int(self.first[p]), int(self.count[p])
            if count == 0:
                continue
            if ranges and ranges[-1][0] + ranges[-1][1] == first:
                ranges[-1] = (ranges[-1][0], ranges[-1][1] + count)
            else:
                ranges.append((first, count))
        return ranges


def frustum_planes(view_proj: np.ndarray) -> np.ndarray:
    """(5, 4) planes (a, b, c, d), normalised so a*x + b*y + c*z + d is the signed distance in
    metres, positive inside: left, right, bottom, top, near (Gribb-Hartmann). The far plane (20 m)
    never culls anything here."""
    m = np.asarray(view_proj, np.float64)
    planes = np.stack([m[3] + m[0], m[3] - m[0], m[3] + m[1], m[3] - m[1], m[3] + m[2]])
    return planes / np.linalg.norm(planes[:, :3], axis=1, keepdims=True)


def bone_parts(names: tuple[str, ...], parents: np.ndarray) -> np.ndarray:
    """(B,) part id of each bone (index into PART_ROOTS)."""
    root_of = {bone: p for p, (_, bone) in enumerate(PART_ROOTS)}
    out = np.empty(len(names), np.int64)
    for i in range(len(names)):
        k = i
        while k >= 0 and names[k] not in root_of:
            k = int(parents[k])
        out[i] = root_of[names[k]] if k >= 0 else root_of["root"]
    return out


def partition(asset: AvatarAsset, margin: float = 0.01) -> Parts:
    """Group the asset's triangles by body part (keeping their order within a part) and bound each
    part. `margin` (metres) is added to every radius."""
    a = asset
    part_of_bone = bone_parts(a.bone_names, a.bone_parents)
    # a triangle belongs to the part of the bone with the largest weight summed over its corners
    nb = len(a.bone_names)
    nt = len(a.triangles)
    corner = a.triangles.astype(np.int64)  # (T, 3)
    flat = (np.arange(nt)[:, None, None] * nb + a.bone_indices[corner]).ravel()  # (T, 3, I) -> bins
    tri_w = np.bincount(flat, weights=a.bone_weights[corner].ravel(), minlength=nt * nb).reshape(nt, nb)
    tri_part = part_of_bone[tri_w.argmax(1)]
    order = np.argsort(tri_part, kind="stable")
    triangles = np.ascontiguousarray(a.triangles[order], dtype=np.uint32)
    counts = np.bincount(tri_part, minlength=len(PART_ROOTS)) * 3
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])

    # largest displacement blendshapes can give each vertex (weights are clipped to [0, 1])
    reach = np.zeros(len(a.vertices))
    reach[: a.n_face_vertices] = np.linalg.norm(a.blendshape_deltas, axis=2).sum(0)
    pair_part, pair_bone, centers, radii = [], [], [], []
    for p in range(len(PART_ROOTS)):
        tris = a.triangles[tri_part == p]
        if len(tris) == 0:
            continue
        verts = np.unique(tris)
        pos = a.vertices[verts].astype(np.float64)
        c = 0.5 * (pos.min(0) + pos.max(0))
        r = float(np.max(np.linalg.norm(pos - c, axis=1) + reach[verts])) + margin
        bones = np.unique(a.bone_indices[verts][a.bone_weights[verts] > 0])
        for b in bones:
            pair_part.append(p)
            pair_bone.append(int(b))
            centers.append([*c, 1.0])
            radii.append(r)
    return Parts(
        names=tuple(n for n, _ in PART_ROOTS),
        triangles=triangles,
        first=first.astype(np.int64),
        count=counts.astype(np.int64),
        pair_part=np.asarray(pair_part, np.int64),
        pair_start=np.flatnonzero(np.diff(np.asarray([-1, *pair_part])) != 0),
        pair_bone=np.asarray(pair_bone, np.int64),
        center=np.asarray(centers, np.float64),
        radius=np.asarray(radii, np.float64),
    )
