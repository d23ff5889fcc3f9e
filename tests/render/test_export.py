"""Engine export: the GLB loads back with pygltflib with its 52 morph targets and skin; ARKit curves."""

import csv
import json

import numpy as np
import pytest

from mio.core.errors import InputError
from mio.core.layouts import ARKIT52, ARKIT_BLENDSHAPES, blendshape_index
from mio.render.export import LIVE_LINK_ROTATIONS, face_curves, write_face_curves


def _read(gltf, accessor_index: int) -> np.ndarray:
    """Dense data of an accessor (sparse ones expanded), straight from the file's binary chunk."""
    blob = gltf.binary_blob()
    acc = gltf.accessors[accessor_index]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    dtype = {5126: np.float32, 5121: np.uint8, 5125: np.uint32}[acc.componentType]

    def view(i: int, count: int, w: int, dt) -> np.ndarray:
        bv = gltf.bufferViews[i]
        return np.frombuffer(blob, dt, count * w, bv.byteOffset or 0).reshape(count, w)

    out = view(acc.bufferView, acc.count, width, dtype).copy() if acc.bufferView is not None \
        else np.zeros((acc.count, width), dtype)
    if acc.sparse is not None:
        idx = view(acc.sparse.indices.bufferView, acc.sparse.count, 1, np.uint32)[:, 0]
        out[idx] = view(acc.sparse.values.bufferView, acc.sparse.count, width, dtype)
    return out


@pytest.mark.slow
def test_glb_loads_back_with_morph_targets_and_skin(tmp_path):
    pytest.importorskip("anny")
    pygltflib = pytest.importorskip("pygltflib")
    from mio.render.avatar import load_avatar
    from mio.render.export import write_glb

    asset = load_avatar("default")
    path = write_glb(asset, tmp_path / "mio.glb")
    g = pygltflib.GLTF2().load(str(path))
    assert g.asset.version == "2.0" and path.read_bytes()[:4] == b"glTF"
    mesh = g.meshes[0]
    prim = mesh.primitives[0]
    assert mesh.extras["targetNames"] == list(ARKIT_BLENDSHAPES) and len(prim.targets) == 52
    assert len(mesh.weights) == 52
    pos = _read(g, prim.attributes.POSITION)
    np.testing.assert_allclose(pos, asset.vertices)
    # a morph target, read back from the file, is the asset's blendshape (zero off the face)
    k = blendshape_index("jawOpen")
    jaw = _read(g, prim.targets[k]["POSITION"])
    np.testing.assert_allclose(jaw[: asset.n_face_vertices], asset.blendshape_deltas[k], atol=1e-6)
    assert not jaw[asset.n_face_vertices:].any()
    # skin: 104 joints whose node hierarchy puts each bone head at the asset's rest position
    skin = g.skins[0]
    assert len(skin.joints) == len(asset.bone_names) == 104
    world = {}
    for node_index in skin.joints:  # parents come first
        node = g.nodes[node_index]
        parent = next((i for i, n in enumerate(g.nodes) if n.children and node_index in n.children), None)
        world[node_index] = np.asarray(node.translation) + (world[parent] if parent in world else 0.0)
    heads = np.array([world[j] for j in skin.joints])
    np.testing.assert_allclose(heads, asset.bone_heads, atol=1e-5)
    ibm = _read(g, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major in the file
    np.testing.assert_allclose(ibm[:, :3, 3], -asset.bone_heads, atol=1e-6)
    joints = _read(g, prim.attributes.JOINTS_0)
    weights = _read(g, prim.attributes.WEIGHTS_0)
    assert joints.max() < 104 and np.allclose(weights.sum(1), 1, atol=1e-4)


def test_face_curves_names_ranges_and_head_angles():
    f = ARKIT52.zeros(3).astype(np.float64)
    f[:, blendshape_index("jawOpen")] = [0.0, 0.5, 1.5]
    f[1, ARKIT52.slice("head")] = [0.0, 0.3, 0.0]  # yaw
    f[2, ARKIT52.slice("head")] = [0.2, 0.0, 0.0]  # pitch
    f[2, ARKIT52.slice("eye_left")] = [0.0, 0.0, -0.1]  # roll
    c = face_curves(f)
    assert list(c) == [*ARKIT_BLENDSHAPES, *LIVE_LINK_ROTATIONS]
    np.testing.assert_allclose(c["jawOpen"], [0.0, 0.5, 1.0])  # clipped to [0, 1]
    np.testing.assert_allclose(c["HeadYaw"], [0, 0.3, 0], atol=1e-9)
    np.testing.assert_allclose(c["HeadPitch"], [0, 0, 0.2], atol=1e-9)
    np.testing.assert_allclose(c["LeftEyeRoll"], [0, 0, -0.1], atol=1e-9)
    with pytest.raises(InputError):
        face_curves(np.zeros((3, 60)))


def test_curves_files_csv_and_json(tmp_path):
    f = ARKIT52.zeros(30).astype(np.float64)
    f[:, blendshape_index("eyeBlinkLeft")] = np.linspace(0, 1, 30)
    write_face_curves(f, 25.0, tmp_path / "face.csv")
    rows = list(csv.reader(open(tmp_path / "face.csv")))
    assert rows[0][:4] == ["Timecode", "BlendShapeCount", "BrowDownLeft", "BrowDownRight"] and len(rows[0]) == 63
    assert len(rows) == 31 and rows[26][0] == "00:00:01:00.000" and rows[1][1] == "52"
    assert float(rows[-1][2 + blendshape_index("eyeBlinkLeft")]) == pytest.approx(1.0)
    write_face_curves(f, 25.0, tmp_path / "face.json")
    d = json.loads((tmp_path / "face.json").read_text())
    assert d["fps"] == 25.0 and len(d["names"]) == 61 and np.asarray(d["frames"]).shape == (30, 61)
    with pytest.raises(InputError):
        write_face_curves(f, 25.0, tmp_path / "face.txt")


def test_export_motion_writes_bvh_and_curves(tmp_path):
    pytest.importorskip("mio.body.bvh")
    from mio.body.humanml3d import joints_to_features
    from mio.cli.render import export_motion
    from mio.render.tracks import waving_body

    rest = np.zeros((22, 3))
    from mio.core.layouts import HUMANML3D_PARENTS

    rng = np.random.default_rng(0)
    for j, p in enumerate(HUMANML3D_PARENTS[1:], 1):  # a plausible standing skeleton: children above/below
        rest[j] = rest[p] + np.array([0.0, 0.1 if j in (3, 6, 9, 12, 15) else -0.1, 0.0]) + rng.normal(0, 0.01, 3)
    rest[:, 1] += 1.0
    feats = joints_to_features(waving_body(rest, 21, 20.0))
    np.savez(tmp_path / "motion.npz", features=feats, fps=np.float32(20.0))
    np.savez(tmp_path / "face.npz", params=ARKIT52.zeros(10), layout=np.str_("arkit52"), fps=np.float32(25.0))
    files = export_motion(tmp_path / "motion.npz", tmp_path / "face.npz", tmp_path / "engine")
    assert [p.name for p in files] == ["motion.bvh", "face.csv", "face.json"]
    assert (tmp_path / "engine" / "motion.bvh").read_text().startswith("HIERARCHY")
    np.savez(tmp_path / "flame.npz", params=np.zeros((4, 112), np.float32), layout=np.str_("flame112"))
    with pytest.raises(InputError, match="arkit52"):
        export_motion(None, tmp_path / "flame.npz", tmp_path / "x")
