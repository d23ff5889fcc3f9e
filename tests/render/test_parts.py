"""Frustum culling of body parts: it never drops a triangle the camera could see.

Checked against CPU linear-blend skinning of every vertex over varied poses and all camera presets."""

import numpy as np
import pytest

from mio.core.config import RenderConfig
from mio.core.layouts import ARKIT52, HUMANML3D_JOINT_NAMES, blendshape_index

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def renderer():
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    from mio.render.raster import AnnyRenderer

    r = AnnyRenderer(RenderConfig(width=96, height=96, samples=0))
    yield r
    r.close()


def _poses(rig, n: int, seed: int = 0):
    """Relaxed stance plus random arm swings (hands often come up into the portrait) and turns."""
    from mio.render.retarget import axis_angle_to_matrix, relaxed_joints

    rng = np.random.default_rng(seed)
    names = list(HUMANML3D_JOINT_NAMES)
    rest = relaxed_joints(rig)
    for _ in range(n):
        j = rest.copy()
        for side in ("left", "right"):
            s, e, w = (names.index(f"{side}_{k}") for k in ("shoulder", "elbow", "wrist"))
            up, lo = np.linalg.norm(rest[e] - rest[s]), np.linalg.norm(rest[w] - rest[e])
            d1, d2 = rng.normal(size=3), rng.normal(size=3)
            j[e] = j[s] + up * d1 / np.linalg.norm(d1)
            j[w] = j[e] + lo * d2 / np.linalg.norm(d2)
        pelvis = j[names.index("pelvis")].copy()
        R = axis_angle_to_matrix(np.array([0.0, rng.uniform(-0.6, 0.6), 0.0]))
        yield (j - pelvis) @ R.T + pelvis


def test_culling_keeps_every_part_with_a_vertex_in_view(renderer):
    from mio.render.parts import frustum_planes
    from mio.render.raster import _FLIP_Y

    a, parts = renderer.asset, renderer.parts
    face = ARKIT52.zeros()
    face[blendshape_index("jawOpen")] = 1.0  # blendshapes move vertices beyond the rest mesh
    nf = a.n_face_vertices
    rest = a.vertices.astype(np.float64).copy()
    rest[:nf] += a.blendshape_deltas[blendshape_index("jawOpen")]
    # part of each vertex (via the triangles that use it)
    tri_part = np.repeat(np.arange(len(parts.names)), parts.count // 3)
    culled_somewhere = 0
    for name in ("portrait", "upper_body", "full_body"):
        cam = renderer.preset_camera(name)
        view_proj = _FLIP_Y @ cam.projection_matrix() @ cam.view_matrix()
        planes = frustum_planes(view_proj)
        for joints in _poses(renderer.rig, 6):
            skin = renderer.pose(face, joints)
            blended = np.einsum("vk,vkij->vij", a.bone_weights, skin[a.bone_indices])  # (V, 4, 4)
            posed = np.einsum("vij,vj->vi", blended[:, :3, :3], rest) + blended[:, :3, 3]
            inside = (np.c_[posed, np.ones(len(posed))] @ planes.T > 0).all(1)  # (V,)
            needed = np.zeros(len(parts.names), bool)
            tri_inside = inside[parts.triangles].any(1)
            needed[np.unique(tri_part[tri_inside])] = True
            visible = parts.visible(skin, view_proj)
            assert not (needed & ~visible).any(), (name, np.asarray(parts.names)[needed & ~visible])
            culled_somewhere += int((~visible).sum())
    assert culled_somewhere > 0


def test_portrait_does_not_draw_the_legs(renderer):
    from mio.render.raster import _FLIP_Y

    cam = renderer.preset_camera("portrait")
    skin = renderer.pose(ARKIT52.zeros(), None)
    visible = renderer.parts.visible(skin, _FLIP_Y @ cam.projection_matrix() @ cam.view_matrix())
    shown = {n for n, v in zip(renderer.parts.names, visible, strict=True) if v}
    assert {"head", "chest", "eye.L", "eye.R"} <= shown
    assert not shown & {"thigh.L", "thigh.R", "shin.L", "shin.R", "foot.L", "foot.R"}


def test_parts_cover_every_triangle_once(renderer):
    a, parts = renderer.asset, renderer.parts
    assert parts.count.sum() == 3 * len(a.triangles)
    key = lambda t: np.sort(np.sort(t, axis=1).view([("", t.dtype)] * 3).ravel())  # noqa: E731
    assert np.array_equal(key(parts.triangles), key(a.triangles))
    ranges = parts.ranges(np.ones(len(parts.names), bool))
    assert ranges == [(0, 3 * len(a.triangles))]  # all parts adjacent: one draw call
