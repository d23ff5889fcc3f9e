"""Cutting a mesh along a field's zero level, and stepping layers at the cut (pure numpy, no anny)."""

import numpy as np

from mio.render.seams import Mesh, cut, offset_with_walls, seam_edges, weld_ids


def grid(n: int = 12) -> Mesh:
    """A unit square in the z = 0 plane, (n - 1)^2 quads as triangles, counter-clockwise from +z."""
    xs, ys = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    pos = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], 1)
    tris = []
    for i in range(n - 1):
        for j in range(n - 1):
            a = i * n + j
            tris += [(a, a + 1, a + n + 1), (a, a + n + 1, a + n)]
    return Mesh(np.asarray(tris), {"pos": pos, "normal": np.tile([0.0, 0.0, 1.0], (n * n, 1)),
                                   "color": np.ones((n * n, 3)), "mat": np.zeros(n * n)})


def signed_area(m: Mesh) -> np.ndarray:
    p = m.attrs["pos"]
    t = m.triangles
    return 0.5 * np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]])[:, 2]


def test_a_cut_follows_the_field_and_leaves_no_triangle_across_it():
    m = grid()
    p = m.attrs["pos"]
    field = 0.3 - np.hypot(p[:, 0] - 0.5, p[:, 1] - 0.5)  # a disc of radius 0.3
    out, inside = cut(m, field)
    s = inside[out.triangles]
    assert np.all(s.all(1) | ~s.any(1))  # every triangle wholly on one side
    assert np.all(signed_area(out) >= -1e-15)  # winding kept
    assert np.isclose(signed_area(out).sum(), 1.0)  # nothing lost or doubled
    disc = signed_area(out)[s.all(1)].sum()
    assert abs(disc - np.pi * 0.09) < 0.01  # the polygon inscribed in the circle at this resolution
    # the crossing points lie on the circle where the linear interpolation puts them: at radius ~0.3
    new = out.attrs["pos"][m.n_vertices:]
    r = np.hypot(new[:, 0] - 0.5, new[:, 1] - 0.5)
    assert np.all(np.abs(r - 0.3) < 0.01)


def test_a_cut_opens_no_crack_each_seam_edge_has_a_twin_on_the_other_side():
    m = grid()
    out, inside = cut(m, m.attrs["pos"][:, 0] - 0.37)
    seams = seam_edges(out, weld_ids(out.attrs["pos"]))
    assert len(seams) > 0 and len(seams) % 2 == 0
    a1, a2, b1, b2 = seams.T
    p = out.attrs["pos"]
    assert np.array_equal(p[a1], p[b1]) and np.array_equal(p[a2], p[b2])  # twins coincide
    assert np.all(inside[a1] != inside[b1])  # one copy per side
    assert np.allclose(p[a1, 0], 0.37)  # the seam is the line x = 0.37


def test_interpolated_attributes_are_linear_along_the_cut_edge():
    m = grid(3)
    m.attrs["value"] = m.attrs["pos"][:, 0] * 10.0
    out, _ = cut(m, m.attrs["pos"][:, 0] - 0.25)
    new = slice(m.n_vertices, None)
    assert np.allclose(out.attrs["value"][new], 2.5)  # 10 * x at x = 0.25


def test_layers_step_up_at_the_seam_and_walls_face_the_lower_side():
    m = grid()
    out, inside = cut(m, m.attrs["pos"][:, 0] - 0.5)  # right half: a layer 1 cm thick
    out.attrs["color"][inside] = (0.0, 1.0, 0.0)
    out.attrs["mat"][inside] = 6
    layered = offset_with_walls(out, np.where(inside, 0.01, 0.0))
    wall = layered.attrs["wall"] > 0.5
    assert wall.sum() > 0
    p = layered.attrs["pos"]
    assert np.allclose(p[~wall & np.r_[inside, np.zeros(len(p) - len(inside), bool)], 2], 0.01)
    walls = layered.triangles[len(out.triangles):]
    assert len(walls) == 2 * (len(seam_edges(out, weld_ids(out.attrs["pos"]))) // 2)
    normal = np.cross(p[walls[:, 1]] - p[walls[:, 0]], p[walls[:, 2]] - p[walls[:, 0]])
    assert np.all(normal[:, 0] < 0)  # towards x < 0.5, the lower (bare) side
    assert np.allclose(layered.attrs["color"][wall], (0.0, 0.75, 0.0))  # the layer's colour, shaded
    assert np.all(layered.attrs["mat"][wall] == 6)


def _synthetic_foot(seed: int = 0):
    """A foot bone at the origin and 400 'toe' vertices filling a box ahead of it (12 x 3 x 5 cm,
    pointing along +Z with a 20 degree turn outwards), weighted to a toe bone."""
    from mio.render.fields import Body

    rng = np.random.default_rng(seed)
    box = rng.uniform([-0.06, 0.0, 0.0], [0.06, 0.03, 0.05], (400, 3)) + [0, 0, 0.12]
    turn = np.deg2rad(20)
    rot = np.array([[np.cos(turn), 0, np.sin(turn)], [0, 1, 0], [-np.sin(turn), 0, np.cos(turn)]])
    pos = box @ rot.T
    weights = np.zeros((len(pos), 2))
    weights[:, 1] = 1.0
    return Mesh(np.zeros((0, 3), np.int64), {"pos": pos, "weights": weights}), Body(["foot.L", "toe1-1.L"],
                                                                                      np.zeros((2, 3)))


def test_a_toe_cap_covers_the_front_of_the_toes_and_faces_outwards():
    from scipy.spatial import Delaunay

    from mio.render.looks import LOOKS
    from mio.render.outfit import toe_caps

    mesh, body = _synthetic_foot()
    (verts, normals, tris, colours, bone), = toe_caps(mesh, body, LOOKS["nemo"])
    assert bone == "foot.L" and np.allclose(colours, LOOKS["nemo"].shoes) and tris.max() < len(verts)
    toes = mesh.attrs["pos"]
    ahead = toes @ (toes.mean(0) / np.linalg.norm(toes.mean(0))) > np.linalg.norm(toes.mean(0))
    assert (Delaunay(verts).find_simplex(toes[ahead]) >= 0).all()  # no toe tip shows through the cap
    centre = verts.mean(0)
    assert (np.einsum("ij,ij->i", normals, verts - centre) > 0).mean() > 0.97  # lit from outside
    # a rounded box, not a bulb: round these box-shaped toes an ellipsoid would be 1.7x as wide
    # (the corners reach sqrt(3) of its radii), this cap is under 1.4x; and flat at the sole
    across = np.ptp(verts @ np.array([np.cos(np.deg2rad(20)), 0, -np.sin(np.deg2rad(20))]))
    assert across < 1.4 * 0.12 and verts[:, 1].min() > -0.002
