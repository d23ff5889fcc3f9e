"""Skinning against a hand-computed pose, blendshape application, camera projection (pure maths and
through the rasteriser), gaze, and multi-view depth."""

import numpy as np
import pytest

from mio.core.config import RenderConfig
from mio.core.layouts import ARKIT52, blendshape_index
from mio.render.camera import Camera, camera_center, from_opencv, orbit, project
from mio.render.retarget import Rig, RigPose, axis_angle_to_matrix, skinning_matrices


def test_skinning_matches_a_hand_computed_two_bone_pose():
    # a chain root (0,0,0) -> elbow (0,1,0) -> tip (0,2,0); bend the elbow 90 degrees about +Z
    rig = Rig(("root", "elbow", "tip"), np.array([-1, 0, 1]), np.array([[0, 0, 0], [0, 1, 0], [0, 2, 0]], float))
    L = np.tile(np.eye(3), (3, 1, 1))
    L[1] = axis_angle_to_matrix(np.array([0, 0, np.pi / 2]))
    M = skinning_matrices(rig, RigPose(L, np.array([0.0, 0.0, 0.5])))
    v = np.array([0.0, 1.5, 0.0, 1.0])  # halfway up the forearm, rest
    # rigid with the elbow: (0, 1.5) turns about (0, 1) by 90 degrees -> (-0.5, 1), then the root shift
    np.testing.assert_allclose(M[1] @ v, [-0.5, 1.0, 0.5, 1.0], atol=1e-12)
    np.testing.assert_allclose(M[0] @ v, [0.0, 1.5, 0.5, 1.0], atol=1e-12)
    blended = 0.25 * (M[0] @ v) + 0.75 * (M[1] @ v)  # linear-blend skinning, weights 0.25 / 0.75
    np.testing.assert_allclose(blended[:3], [-0.375, 1.125, 0.5], atol=1e-12)
    np.testing.assert_allclose(M[2] @ [0, 2, 0, 1], [-1.0, 1.0, 0.5, 1.0], atol=1e-12)  # the tip follows


def test_projection_matches_the_clip_matrix_and_opencv():
    cam = Camera.look_at([0.3, 1.6, 2.0], [0.0, 1.4, 0.0], 320, 240, fov_y_deg=40)
    rng = np.random.default_rng(0)
    pts = rng.uniform([-0.5, 0.8, -0.5], [0.5, 2.0, 0.5], (50, 3))
    uv = project(cam, pts)
    clip = np.c_[pts, np.ones(50)] @ (cam.projection_matrix() @ cam.view_matrix()).T
    ndc = clip[:, :2] / clip[:, 3:]
    np.testing.assert_allclose(uv[:, 0], (ndc[:, 0] + 1) / 2 * 320, atol=1e-4)
    np.testing.assert_allclose(uv[:, 1], (1 - ndc[:, 1]) / 2 * 240, atol=1e-4)  # rows from the top
    # the same camera given the OpenCV way projects the same points to the same pixels
    K = np.array([[cam.fx, 0, cam.cx], [0, cam.fy, 240 - cam.cy], [0, 0, 1]])
    flip = np.diag([1.0, -1.0, -1.0])
    R_cv, t_cv = flip @ cam.R, flip @ cam.t
    p_cv = pts @ R_cv.T + t_cv
    uv_cv = (p_cv @ K.T)[:, :2] / p_cv[:, 2:]
    np.testing.assert_allclose(uv, uv_cv, atol=1e-3)
    cam2 = from_opencv(K, R_cv, t_cv, 320, 240)
    np.testing.assert_allclose(project(cam2, pts), uv, atol=1e-3)
    assert np.isnan(project(cam, np.array([[0.0, 1.6, 3.0]]))).all()  # behind the camera


def test_orbit_keeps_the_target_fixed_and_the_distance():
    cam = Camera.look_at([0, 1.5, 2.0], [0, 1.5, 0], 100, 100)
    target = np.array([0.0, 1.5, 0.0])
    for az, el in ((90, 0), (-45, 20), (180, 0)):
        o = orbit(cam, target, az, el)
        np.testing.assert_allclose(np.linalg.norm(camera_center(o) - target), 2.0, atol=1e-5)
        np.testing.assert_allclose(project(o, target[None])[0], [50, 50], atol=1e-3)
    np.testing.assert_allclose(camera_center(orbit(cam, target, 90)), [2.0, 1.5, 0.0], atol=1e-5)  # +X: its left


# ---------------------------------------------------------------------------------------------
# Through the rasteriser (builds the avatar asset on first use)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renderer():
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    from mio.render.raster import AnnyRenderer

    r = AnnyRenderer(RenderConfig(width=160, height=160, samples=0))
    yield r
    r.close()


def _cpu_skin(asset, M: np.ndarray, idx: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear-blend skinning of the vertices `idx` (the shader's formula, on the CPU)."""
    b, w = asset.bone_indices[idx].astype(int), asset.bone_weights[idx].astype(np.float64)
    hom = np.c_[positions, np.ones(len(idx))]
    return np.einsum("vk,vkij,vj->vi", w, M[b], hom)[:, :3]


@pytest.mark.slow
def test_blendshapes_are_applied_to_the_vertex_buffer(renderer):
    a = renderer.asset
    f = ARKIT52.zeros().astype(np.float64)
    f[blendshape_index("jawOpen")] = 0.3
    f[blendshape_index("mouthSmileLeft")] = 0.5
    f[blendshape_index("eyeBlinkRight")] = 2.0  # weights are clipped to [0, 1]
    renderer.pose(f, None)
    with renderer.ctx:
        gpu = np.frombuffer(renderer._vbo_pos.read(), np.float32).reshape(-1, 3)
    d = a.blendshape_deltas.astype(np.float64)
    expected = a.vertices[: a.n_face_vertices] + 0.3 * d[blendshape_index("jawOpen")] \
        + 0.5 * d[blendshape_index("mouthSmileLeft")] + 1.0 * d[blendshape_index("eyeBlinkRight")]
    np.testing.assert_allclose(gpu[: a.n_face_vertices], expected, atol=1e-5)
    np.testing.assert_array_equal(gpu[a.n_face_vertices:], a.vertices[a.n_face_vertices:])  # the body is untouched


@pytest.mark.slow
def test_rendered_depth_matches_cpu_skinning_and_projection(renderer):
    """The GPU's skinned, projected mesh against the CPU formula: depth at the projected pixels of
    visible vertices equals their distance from the camera."""
    from mio.core.layouts import HUMANML3D_JOINT_NAMES
    from mio.render.retarget import relaxed_joints

    a = renderer.asset
    names = list(HUMANML3D_JOINT_NAMES)
    j = relaxed_joints(renderer.rig)
    s, e, w = (names.index(n) for n in ("left_shoulder", "left_elbow", "left_wrist"))
    j[e] = j[s] + [0.27, 0.05, 0.05]  # arm out to the side and forearm up
    j[w] = j[e] + [0.02, 0.25, 0.05]
    f = ARKIT52.zeros().astype(np.float64)
    f[blendshape_index("jawOpen")] = 0.5
    cam = renderer.preset_camera("full_body")
    M = renderer.pose(f, j)
    depth = renderer.render_batch(f, j, [cam], depth=True)[0]
    rest = a.vertices.astype(np.float64).copy()
    rest[: a.n_face_vertices] += 0.5 * a.blendshape_deltas[blendshape_index("jawOpen")]
    idx = np.arange(0, len(rest), 7)
    world = _cpu_skin(a, M, idx, rest[idx])
    uv = project(cam, world)
    z = -(world @ cam.R.T + cam.t)[:, 2]
    col, row = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    inside = (col >= 0) & (col < 160) & (row >= 0) & (row < 160)
    d = depth[row[inside], col[inside]]
    front = np.abs(d - z[inside]) < 0.02  # visible vertices (the rest are occluded: d < z)
    assert front.mean() > 0.3
    # where the pixel shows the mesh at all (at silhouettes its centre may miss it), nothing is
    # drawn behind a skinned vertex but at folds and thin parts a pixel wide
    drawn = np.isfinite(d)
    assert drawn.mean() > 0.8
    assert (d[drawn] > z[inside][drawn] + 0.03).mean() < 0.05
    hand = idx[inside][front]
    assert np.any(np.isin(a.bone_indices[hand, 0], [renderer.rig.index("wrist.L")]))  # the raised hand is there


@pytest.mark.slow
def test_eyes_follow_the_gaze(renderer):
    cam = renderer.preset_camera("portrait", 512, 512)
    f = ARKIT52.zeros().astype(np.float64)

    def iris_x(face: np.ndarray) -> float:
        """Mean column of the dark iris/pupil pixels in a box round each eye."""
        img = renderer.render(face, None, cam).astype(int)
        cols = []
        for bone in ("eye.L", "eye.R"):
            u, v = project(cam, renderer.asset.bone_heads[renderer.rig.index(bone)][None].astype(float))[0]
            u, v = int(u), int(v)
            box = img[v - 12 : v + 12, u - 20 : u + 20].sum(-1)  # the eye, not the hair beside the face
            cols.append(np.nonzero(box < 250)[1].mean() + u - 20)
        return float(np.mean(cols))

    base = iris_x(f)
    g = f.copy()
    for part in ("eye_left", "eye_right"):
        g[ARKIT52.slice(part)] = [0.0, 0.35, 0.0]  # both eyes turn towards the avatar's left (+X)
    assert iris_x(g) > base + 3  # +X is to the right of the image
    g[ARKIT52.slice("eye_left")] = g[ARKIT52.slice("eye_right")] = [0.0, -0.35, 0.0]
    assert iris_x(g) < base - 3
    h = f.copy()
    h[blendshape_index("eyeLookOutLeft")] = h[blendshape_index("eyeLookInRight")] = 1.0  # ARKit: look left
    assert iris_x(h) > base + 3


@pytest.mark.slow
def test_control_render_is_the_bare_mesh_on_black(renderer):
    f = ARKIT52.zeros().astype(np.float64)
    img = renderer.render(f, None)
    ctl = renderer.render_control(f, None)
    depth = renderer.render_batch(f, None, [None], depth=True)[0]
    mesh = ctl.sum(-1) > 0
    assert 0.1 < mesh.mean() < 0.9
    assert (mesh == np.isfinite(depth)).mean() > 0.99  # exactly where the mesh is
    assert np.abs(img.astype(int) - ctl.astype(int))[mesh].mean() > 30  # no appearance in it
    assert np.array_equal(renderer.render(f, None), img)  # the normal path is unchanged afterwards


@pytest.mark.slow
def test_multiview_consistency_of_the_rasteriser_and_of_a_corrupted_view(renderer):
    from mio.render.consistency import reprojection_consistency

    base = renderer.preset_camera("upper_body")
    c = camera_center(base)
    pivot = np.array([0.0, c[1], float(renderer.asset.landmarks["eye_mid"][2])])
    cams = [orbit(base, pivot, az) for az in (-25, 0, 25)]
    f = ARKIT52.zeros().astype(np.float64)
    imgs = renderer.render_batch(f, None, cams)
    depths = renderer.render_batch(f, None, cams, depth=True)
    good = reprojection_consistency(imgs, depths, cams)
    assert good["pairs"] == 6 and good["psnr_db"] > 20 and good["ssim"] > 0.85
    broken = [imgs[0], np.roll(imgs[1], 8, axis=1), imgs[2]]  # one view drifts sideways
    bad = reprojection_consistency(broken, depths, cams)
    assert bad["psnr_db"] < good["psnr_db"] - 2 and bad["ssim"] < good["ssim"]
