"""`mio render`, `mio export`, `mio bench render` from the command line."""

import json

import numpy as np
import pytest

from mio.cli import build_parser, main
from mio.core.layouts import ARKIT52, blendshape_index

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    from mio.body.humanml3d import joints_to_features
    from mio.render.avatar import load_avatar
    from mio.render.retarget import Rig, relaxed_joints
    from mio.render.tracks import talking_face, waving_body

    d = tmp_path_factory.mktemp("inputs")
    a = load_avatar("default")
    rest = relaxed_joints(Rig(a.bone_names, a.bone_parents, a.bone_heads.astype(np.float64)))
    np.savez(d / "motion.npz", features=joints_to_features(waving_body(rest, 21, 20.0)), fps=np.float32(20.0))
    np.savez(d / "face.npz", params=talking_face(20).astype(np.float32), layout=np.str_("arkit52"),
             fps=np.float32(25.0))
    return d


def _frames(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_bench_render_is_registered_once():
    args = build_parser().parse_args(["bench", "render", "--frames", "3", "--views", "2"])
    assert args.frames == 3 and args.views == 2 and args.func.__module__ == "mio.cli.render"


def test_render_face_and_motion_from_an_orbit(files, tmp_path):
    out = tmp_path / "orbit.mp4"
    assert main(["render", str(files / "face.npz"), str(files / "motion.npz"), "--camera", "orbit",
                 "--size", "64x48", "--quiet", "-o", str(out)]) == 0
    frames = _frames(out)
    assert len(frames) == 25 and frames[0].shape == (48, 64, 3)  # 1 s of motion at 25 fps
    assert np.abs(frames[0].astype(int) - frames[12].astype(int)).mean() > 3  # the camera went round


def test_render_with_an_explicit_camera_file(files, tmp_path):
    from mio.render.camera import Camera

    cam = Camera.look_at([0.0, 1.5, 1.2], [0.0, 1.5, 0.0], 64, 64, fov_y_deg=35)
    spec = {"width": 64, "height": 64, "fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy,
            "R": cam.R.tolist(), "t": cam.t.tolist()}
    (tmp_path / "cam.json").write_text(json.dumps(spec))
    (tmp_path / "cam_cv.json").write_text(json.dumps({**spec, "convention": "opencv", "cy": 64 - cam.cy,
                                                       "R": (np.diag([1, -1, -1]) @ cam.R).tolist(),
                                                       "t": (np.diag([1, -1, -1]) @ cam.t).tolist()}))
    for name in ("cam", "cam_cv"):
        assert main(["render", str(files / "face.npz"), "--camera-file", str(tmp_path / f"{name}.json"),
                     "--quiet", "-o", str(tmp_path / f"{name}.mp4")]) == 0
    a, b = _frames(tmp_path / "cam.mp4"), _frames(tmp_path / "cam_cv.mp4")
    assert len(a) == 20 and np.abs(a[5].astype(int) - b[5].astype(int)).mean() < 2  # the same camera


def test_render_refuses_bad_inputs(files, tmp_path, capsys):
    np.savez(tmp_path / "flame.npz", params=np.zeros((5, 112), np.float32), layout=np.str_("flame112"))
    assert main(["render", str(tmp_path / "flame.npz"), "-o", str(tmp_path / "x.mp4")]) == 2
    assert "arkit52" in capsys.readouterr().err
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    assert main(["render", str(tmp_path / "other.npz"), "-o", str(tmp_path / "x.mp4")]) == 2


def test_export_avatar_and_motion(files, tmp_path):
    pygltflib = pytest.importorskip("pygltflib")
    assert main(["export", "avatar", "--look", "casual", "-o", str(tmp_path / "mio.glb")]) == 0
    g = pygltflib.GLTF2().load(str(tmp_path / "mio.glb"))
    assert len(g.meshes[0].primitives[0].targets) == 52
    assert main(["export", "motion", str(files / "motion.npz"), str(files / "face.npz"),
                 "-o", str(tmp_path / "engine")]) == 0
    assert {p.name for p in (tmp_path / "engine").iterdir()} == {"motion.bvh", "face.csv", "face.json"}


def test_face_expression_reaches_the_video(files, tmp_path):
    f = ARKIT52.zeros(10)
    f[5:, blendshape_index("jawOpen")] = 1.0
    np.savez(tmp_path / "jaw.npz", params=f, layout=np.str_("arkit52"), fps=np.float32(25.0))
    assert main(["render", str(tmp_path / "jaw.npz"), "--camera", "portrait", "--size", "96x96", "--quiet",
                 "-o", str(tmp_path / "jaw.mp4")]) == 0
    frames = _frames(tmp_path / "jaw.mp4")
    assert np.abs(frames[2].astype(int) - frames[8].astype(int)).sum(-1).max() > 60


def test_render_looks_draws_each_named_character_in_its_own_column(tmp_path, capsys):
    from PIL import Image

    from mio.cli.render import LOOKS_TILE

    out = tmp_path / "looks.png"
    assert main(["render", "looks", "--characters", "nemo,mio", "-o", str(out)]) == 0
    assert "2 looks: nemo, mio" in capsys.readouterr().out
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    t = LOOKS_TILE
    assert sheet.shape[1] == 2 * t and sheet.shape[0] > 3 * t  # portrait over full body, a label below
    for col in range(2):
        for rows in (slice(0, t), slice(t, 3 * t)):  # each view holds a figure, not just the backdrop
            view = sheet[rows, col * t:(col + 1) * t]
            assert (np.abs(view - view[2, 2]).sum(-1) > 40).mean() > 0.1, (col, rows)
    nemo, mio = sheet[:t, :t], sheet[:t, t:2 * t]
    assert np.abs(nemo - mio).sum(-1).mean() > 20  # two looks, not one drawn twice


def test_render_looks_refuses_unknown_characters_and_non_image_outputs(tmp_path, capsys):
    assert main(["render", "looks", "--characters", "nemo,nobody", "-o", str(tmp_path / "l.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nobody" in err and "nemo" in err and "\n" not in err
    assert main(["render", "looks", "-o", str(tmp_path / "looks.mp4")]) == 2
    assert ".png" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written
