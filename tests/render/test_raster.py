"""The anny avatar: asset, renderer outputs and that the face and body parameters visibly act.

The first run builds the avatar with anny (about 1-2 minutes, cached under ~/.cache/mio)."""

import numpy as np
import pytest

from mio.core.config import RenderConfig
from mio.core.errors import InputError
from mio.core.layouts import ARKIT52, ARKIT_BLENDSHAPES, blendshape_index

pytestmark = pytest.mark.slow

SIZE = 256


@pytest.fixture(scope="module")
def renderer():
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    from mio.render.raster import AnnyRenderer

    r = AnnyRenderer(RenderConfig(width=SIZE, height=SIZE))
    yield r
    r.close()


def face(**weights: float) -> np.ndarray:
    f = ARKIT52.zeros()
    for name, w in weights.items():
        f[blendshape_index(name)] = w
    return f


def project(cam, p: np.ndarray) -> tuple[int, int]:
    """World point -> (row, col) in the image."""
    c = cam.R @ p + cam.t  # camera looks down its -Z
    x = cam.cx + cam.fx * c[0] / -c[2]
    y = cam.cy + cam.fy * c[1] / -c[2]
    return int(round(cam.height - y)), int(round(x))


def skin_mask(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., k].astype(int) for k in range(3))
    return (r > 120) & (r > g + 15) & (g > b) & (r - b > 40)


def test_asset_has_52_arkit_blendshapes_in_order(renderer):
    from mio.render.asset import asset_path
    from mio.render.avatar import load_avatar

    a = renderer.asset
    assert a.blendshape_deltas.shape == (len(ARKIT_BLENDSHAPES), a.n_face_vertices, 3)
    assert asset_path("default").name.endswith(".npz") and "_v" in asset_path("default").name
    np.load(asset_path("default"), allow_pickle=False).close()  # no pickled objects inside
    jaw = np.linalg.norm(a.blendshape_deltas[blendshape_index("jawOpen")], axis=1)
    moved = a.vertices[: a.n_face_vertices][jaw > 0.5 * jaw.max()]
    assert moved[:, 1].mean() < a.landmarks["eye_mid"][1]  # jawOpen moves the lower face
    assert {"eye.L", "eye.R", "head"} <= set(a.bone_names)
    assert np.allclose(a.bone_weights.sum(1), 1, atol=1e-4)
    assert load_avatar("default").vertices.shape == a.vertices.shape


def test_render_shape_dtype_and_a_visible_person(renderer):
    img = renderer.render(face(), None)
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    bg = img[2, 2].astype(int)
    person = np.abs(img.astype(int) - bg).sum(-1) > 40
    assert 0.2 < person.mean() < 0.9
    assert skin_mask(img).mean() > 0.05


def test_jaw_open_changes_the_mouth_region(renderer):
    cam = renderer.default_camera
    a = renderer.render(face(), None).astype(int)
    b = renderer.render(face(jawOpen=1.0), None).astype(int)
    diff = np.abs(a - b).sum(-1) > 30
    assert diff.sum() > 100
    rows, cols = np.nonzero(diff)
    mr, mc = project(cam, renderer.asset.landmarks["mouth"].astype(np.float64))
    assert abs(np.median(rows) - mr) < 0.08 * SIZE and abs(np.median(cols) - mc) < 0.05 * SIZE
    er, _ = project(cam, renderer.asset.landmarks["eye_mid"].astype(np.float64))
    assert diff[:er].sum() < 0.2 * diff.sum()  # little changes above the eyes (temple shading)


def test_blink_covers_the_eyes(renderer):
    cam = renderer.default_camera
    a = renderer.render(face(), None).astype(int)
    b = renderer.render(face(eyeBlinkLeft=1.0, eyeBlinkRight=1.0), None).astype(int)
    er, ec = project(cam, renderer.asset.landmarks["eye_mid"].astype(np.float64))
    band = (slice(er - SIZE // 25, er + SIZE // 25), slice(ec - SIZE // 11, ec + SIZE // 11))  # the eyes, not the hair
    dark_open = (a[band].sum(-1) < 200).sum()  # iris and pupil
    dark_closed = (b[band].sum(-1) < 200).sum()
    assert dark_open > 10 and dark_closed < 0.3 * dark_open
    diff = np.abs(a - b).sum(-1) > 30
    upper_face = slice(er - SIZE // 6, er + SIZE // 12)  # lids, and the brow/hairline skin they pull
    assert diff[upper_face].sum() > 0.9 * diff.sum()


def test_raising_an_arm_changes_the_full_body_render(renderer):
    from mio.core.layouts import HUMANML3D_JOINT_NAMES
    from mio.render.retarget import relaxed_joints

    cam = renderer.preset_camera("full_body")
    j = relaxed_joints(renderer.rig)
    rest = renderer.render(face(), j, cam).astype(int)
    names = list(HUMANML3D_JOINT_NAMES)
    s, e, w = (names.index(n) for n in ("left_shoulder", "left_elbow", "left_wrist"))
    j[e] = j[s] + [0.05, 0.27, 0]
    j[w] = j[e] + [0.02, 0.25, 0]
    raised = renderer.render(face(), j, cam).astype(int)
    diff = np.abs(rest - raised).sum(-1) > 30
    assert diff.mean() > 0.005
    hr, _ = project(cam, renderer.asset.landmarks["head_top"].astype(np.float64))
    assert diff[: hr + 5].sum() > 20  # the hand now shows above the head


def test_camera_change_moves_the_image(renderer):
    a = renderer.render(face(), None, renderer.preset_camera("portrait"))
    b = renderer.render(face(), None, renderer.preset_camera("full_body"))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 10
    views = renderer.render_batch(
        face(), None, [renderer.preset_camera("portrait"), renderer.preset_camera("upper_body")]
    )
    assert len(views) == 2 and np.array_equal(views[0], a)


def test_head_rotation_turns_the_head(renderer):
    f = face()
    f[ARKIT52.slice("head")] = [0.0, 0.5, 0.0]
    a = renderer.render(face(), None).astype(int)
    b = renderer.render(f, None).astype(int)
    assert (np.abs(a - b).sum(-1) > 30).mean() > 0.02


@pytest.mark.parametrize(
    "bad, match",
    [(np.zeros(60), "61"), (np.full(61, np.nan), "NaN"), (np.zeros((2, 61)), "shape")],
)
def test_bad_face_input_is_refused(renderer, bad, match):
    with pytest.raises(ValueError, match=match):
        renderer.render(bad, None)


def test_bad_joints_are_refused(renderer):
    with pytest.raises(InputError):
        renderer.render(face(), np.zeros((21, 3)))
    j = np.zeros((22, 3))
    j[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        renderer.render(face(), j)


def test_without_msaa_only_edges_change(renderer):
    from mio.render.raster import AnnyRenderer

    with AnnyRenderer(RenderConfig(width=SIZE, height=SIZE, samples=0)) as plain:
        a = renderer.render(face(jawOpen=0.3), None).astype(int)
        b = plain.render(face(jawOpen=0.3), None).astype(int)
        assert set(plain.timings) == {"pose_ms", "draw_ms"}
    diff = np.abs(a - b).sum(-1)
    assert diff.mean() < 3 and (diff > 60).mean() < 0.02
