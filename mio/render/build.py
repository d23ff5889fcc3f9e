"""Building an avatar asset: run anny once for a look, dress it (mio.render.outfit), bake what posing
needs and write the asset file atomically (mio.render.asset). ~1 min per look; cached by content.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mio.core.errors import BackendError, ConfigError
from mio.core.layouts import ARKIT_BLENDSHAPES
from mio.core.paths import cache_root
from mio.render import outfit
from mio.render.asset import (
    ASSET_VERSION,
    MAT_EYE,
    MAT_HAIR,
    MAT_SHOES,
    MAX_INFLUENCES,
    asset_path,
)
from mio.render.fields import Body
from mio.render.looks import Look, anny_local_changes, resolve_look
from mio.render.seams import Mesh, smooth_normals, uv_sphere, weld_ids

log = logging.getLogger(__name__)

# anny (Z up, facing -Y) -> Mio world (Y up, facing +Z): a -90 degree rotation about X.
ANNY_TO_WORLD = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)


def build_avatar(look: str | dict | Look = "default", cache_dir: str | None = None) -> Path:
    """Run anny for `look` and write the asset file atomically. Returns its path."""
    spec = resolve_look(look)
    root = cache_root(cache_dir)
    path = asset_path(spec, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    log.info(f"preparing the avatar (look {spec.name!r}) with anny into {path.parent} - "
             "the first run takes about a minute...")
    raw = _run_anny(spec, root / "anny")
    arrays = _bake(raw, spec)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # atomic: concurrent builders never see a half-written file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    # earlier builds of this look by this format (a preset since edited); other versions may
    # belong to another checkout sharing the cache, so they stay
    for stale in path.parent.glob(f"anny_{spec.name}_*_v{ASSET_VERSION}.npz"):
        if stale != path:
            stale.unlink(missing_ok=True)
    log.info(f"avatar ready in {time.monotonic() - t0:.0f} s")
    return path


def _run_anny(spec: Look, anny_cache: Path) -> dict[str, np.ndarray | list]:
    """Rest mesh, rig, skinning and the 52 facial-action deltas of one body, from anny."""
    anny_cache.mkdir(parents=True, exist_ok=True)
    os.environ["ANNY_CACHE_DIR"] = str(anny_cache)
    try:
        import anny
        import anny.paths
        import torch
        import yaml
        from anny.face_segmentation import get_face_segmentation_mask
    except ImportError as e:
        raise BackendError(f"the avatar needs the `anny` package (pip install 'mio[embedded]'): {e}") from e
    anny.paths.set_anny_cache_path(anny_cache)

    # local_changes="default": every face and body modifier anny has (one cached model for all looks)
    model = anny.Anny(facial_actions="all", local_changes="default").to(dtype=torch.float32)
    labels = list(model.facial_action_labels)
    missing = [n for n in ARKIT_BLENDSHAPES if n not in labels]
    if missing:
        raise BackendError(f"anny lacks ARKit blendshapes {missing}")
    local = anny_local_changes(spec.face)
    unknown = sorted(set(local) - set(model.local_change_labels))
    if unknown:
        raise ConfigError(f"look {spec.name!r}: anny has no local changes {unknown}")
    with torch.no_grad():
        _, phen, loc, facial = model.get_tensor_inputs(None, spec.phenotype, local, None)
        coeffs = model._get_phenotype_blendshape_coefficients(phen, loc, facial)
        rest = model.get_rest_model(coeffs)
    # Facial-action rows of the blendshape stack, mapped by name into ARKIT_BLENDSHAPES order.
    rows = [model.blendshape_labels.index(f"facial_action:{n}") for n in ARKIT_BLENDSHAPES]
    seg_file = Path(anny.__file__).parent / "data/segmentation/body_parts_segmentation.yaml"
    seg_labels = list(yaml.safe_load(seg_file.read_text())["colors"])
    segments = {lab: get_face_segmentation_mask(model, [lab]).numpy() for lab in seg_labels}
    tex = Path(anny.__file__).parent / "data/mpfb2/textures"
    return {
        "vertices": rest["rest_vertices"][0].numpy().astype(np.float64),
        "bone_heads": rest["rest_bone_heads"][0].numpy().astype(np.float64),
        "bone_poses": rest["rest_bone_poses"][0].numpy().astype(np.float64),
        "faces": model.faces.numpy().astype(np.int64),
        "deltas": model.blendshapes[rows].numpy().astype(np.float64),
        "weights": model.vertex_bone_weights.numpy().astype(np.float64),
        "indices": model.vertex_bone_indices.numpy().astype(np.int64),
        "uv": model.texture_coordinates.numpy().astype(np.float64),
        "face_uv": model.face_texture_coordinate_indices.numpy().astype(np.int64),
        "bone_names": list(model.bone_labels),
        "bone_parents": list(model.bone_parents),
        "segments": segments,
        "lips_mask": _read_mask(tex / "mpfb_lips.jpg"),
        "ears_mask": _read_mask(tex / "mpfb_ears.jpg"),
    }


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image, ImageFilter

    im = Image.open(path).convert("L").filter(ImageFilter.GaussianBlur(6))
    return np.asarray(im, dtype=np.float32) / 255.0


def _vertex_uv(raw: dict, nv: int) -> np.ndarray:
    """(V, 2) each vertex's texture coordinate (the mean over its corners; UV seams aside, one)."""
    faces = raw["faces"]
    uv = np.zeros((nv, 2))
    cnt = np.zeros(nv)
    np.add.at(uv, faces.ravel(), raw["uv"][raw["face_uv"].ravel()])
    np.add.at(cnt, faces.ravel(), 1)
    return uv / np.maximum(cnt, 1)[:, None]


def _sample(mask: np.ndarray, uv: np.ndarray) -> np.ndarray:
    px = np.clip((uv[:, 0] * mask.shape[1]).astype(int), 0, mask.shape[1] - 1)
    py = np.clip(((1 - uv[:, 1]) * mask.shape[0]).astype(int), 0, mask.shape[0] - 1)
    return mask[py, px].astype(np.float64)


def _bake(raw: dict, spec: Look) -> dict[str, np.ndarray]:

    A = ANNY_TO_WORLD
    v = raw["vertices"] @ A.T
    heads = raw["bone_heads"] @ A.T
    floor = v[:, 1].min()
    v[:, 1] -= floor
    heads[:, 1] -= floor
    deltas = np.einsum("kvi,ji->kvj", raw["deltas"], A)  # (52, V, 3)
    poses = raw["bone_poses"].copy()
    poses[:, :3, :3] = A @ poses[:, :3, :3]
    poses[:, :3, 3] = heads
    names, parents = raw["bone_names"], np.asarray(raw["bone_parents"], np.int32)
    bidx = names.index
    faces = raw["faces"]
    seg = raw["segments"]
    nv = len(v)
    dense = np.zeros((nv, len(names)))  # per-vertex weight of every bone
    np.add.at(dense, (np.repeat(np.arange(nv), raw["indices"].shape[1]), raw["indices"].ravel()),
              raw["weights"].ravel())

    # ---- the surface to dress: anny's mesh without its coarse eyeballs ------------------------
    eye_faces = seg["eye_front.L"] | seg["eye_back.L"] | seg["eye_front.R"] | seg["eye_back.R"]
    eye_vertices = np.unique(faces[eye_faces])
    uv = _vertex_uv(raw, nv)
    mouth = np.zeros(nv)
    mouth[np.unique(faces[seg["mouth_cavity"] | seg["tongue"]])] = 1.0
    tongue = np.zeros(nv)
    tongue[np.unique(faces[seg["tongue"]])] = 1.0
    mesh = Mesh(faces[~eye_faces], {
        "pos": v,
        "normal": _vertex_normals(v, faces),
        "weights": dense,
        "deltas": deltas.transpose(1, 0, 2).reshape(nv, -1),  # (V, 52 * 3)
        "lips": _sample(raw["lips_mask"], uv),
        "ears": _sample(raw["ears_mask"], uv),
        "mouth": mouth,
        "tongue": tongue,
    })
    body = Body(names, heads)
    mesh = outfit.dress(mesh, body, spec)  # cuts, colours, materials, layers and their edges

    # ---- drop unreferenced vertices; then the eyeballs and a bob, skinned rigidly --------------
    used = np.zeros(mesh.n_vertices, bool)
    used[mesh.triangles.ravel()] = True
    remap = np.cumsum(used) - 1
    mesh = Mesh(remap[mesh.triangles], mesh.take(used))
    attrs = mesh.attrs
    eye_l, eye_r = heads[bidx("eye.L")], heads[bidx("eye.R")]
    radius = float(np.median(np.linalg.norm(v[eye_vertices] - np.where(v[eye_vertices, :1] > 0, eye_l, eye_r), axis=1)))
    rigid = []  # (verts, normals, tris, eye coords, bone, colour (n, 3), material)
    for c, bone in ((eye_l, "eye.L"), (eye_r, "eye.R")):
        sv, sn, st, suv = uv_sphere(c, 0.97 * radius)
        rigid.append((sv, sn, st, suv, bidx(bone), np.tile((0.93, 0.92, 0.90), (len(sv), 1)), MAT_EYE))
    for sv, sn, st, col, bone in outfit.toe_caps(mesh, body, spec):
        rigid.append((sv, sn, st, np.zeros((len(sv), 2)), bidx(bone), col, MAT_SHOES))
    if spec.hair_style == "bob":
        sv, sn, st, col = outfit.hair_shell(mesh, body, spec)
        rigid.append((sv, sn, st, np.zeros((len(sv), 2)), bidx("head"), col, MAT_HAIR))

    # ---- skinning: keep the strongest influences ------------------------------------------
    w = attrs["weights"]
    top_i = np.argsort(-w, axis=1)[:, :MAX_INFLUENCES]
    top_w = np.take_along_axis(w, top_i, 1)
    top_w /= top_w.sum(1, keepdims=True)

    # ---- final normals: smooth across a cut's copies; walls keep the normals they were given ---
    pos = attrs["pos"]
    d_all = attrs["deltas"].reshape(len(pos), len(ARKIT_BLENDSHAPES), 3)
    wall = attrs["wall"] > 0.5
    weld = weld_ids(pos)
    weld[wall] = weld.max() + 1 + np.arange(wall.sum())  # never welded to anything
    normals = np.where(wall[:, None], attrs["normal"], smooth_normals(pos, mesh.triangles, weld))

    # ---- order: face-deformed vertices first, each group front to back ------------------------
    moved = np.abs(d_all).max(axis=(1, 2)) > 1e-6
    # Within each group vertices go front to back, and triangles follow vertex order (below): that
    # keeps llvmpipe's vertex cache warm *and* lets the depth test reject hidden fragments early.
    by_depth = lambda idx: idx[np.argsort(-pos[idx, 2], kind="stable")]  # noqa: E731
    order_v = np.concatenate([by_depth(np.flatnonzero(moved)), by_depth(np.flatnonzero(~moved))])
    back = np.empty_like(order_v)
    back[order_v] = np.arange(len(order_v))
    n_face = int(moved.sum())

    V = [pos[order_v]]
    N = [normals[order_v]]
    T = [back[mesh.triangles]]
    C = [attrs["color"][order_v]]
    M = [np.rint(attrs["mat"][order_v]).astype(np.uint8)]
    E = [np.zeros((len(order_v), 2))]
    BI = [top_i[order_v]]
    BW = [top_w[order_v]]
    base = len(order_v)
    for sv, sn, st, suv, b, col, mat in rigid:
        V.append(sv)
        N.append(sn)
        T.append(st + base)
        C.append(col)
        M.append(np.full(len(sv), mat, np.uint8))
        E.append(suv)
        bi = np.zeros((len(sv), MAX_INFLUENCES), np.int64)
        bi[:, 0] = b
        bw = np.zeros((len(sv), MAX_INFLUENCES))
        bw[:, 0] = 1
        BI.append(bi)
        BW.append(bw)
        base += len(sv)

    allv = np.concatenate(V)
    tris = np.concatenate(T)
    rest_face = allv[:n_face]
    d_face = d_all[order_v[:n_face]].transpose(1, 0, 2)  # (52, n_face, 3)
    # Linearised normal change per blendshape, evaluated at weight 1 (renormalised in the shader),
    # by the same normal function as the rest normals (walls aside).
    n0 = np.concatenate(N)[:n_face]
    weld_all = np.concatenate([weld[order_v], weld.max() + 1 + np.arange(len(allv) - len(order_v))])
    wall_face = wall[order_v[:n_face]]
    nd = np.empty_like(d_face)
    for k in range(len(ARKIT_BLENDSHAPES)):
        vk = allv.copy()
        vk[:n_face] = rest_face + d_face[k]
        nd[k] = np.where(wall_face[:, None], 0.0, smooth_normals(vk, tris, weld_all)[:n_face] - n0)

    tris = tris[np.argsort(tris.min(1), kind="stable")]
    eye_mid = 0.5 * (eye_l + eye_r)
    head_c = heads[bidx("head")]
    lips = attrs["lips"] > 0.5
    arrays: dict[str, np.ndarray] = {
        "version": np.asarray(ASSET_VERSION),
        "vertices": allv.astype(np.float32),
        "normals": np.concatenate(N).astype(np.float32),
        "triangles": tris.astype(np.uint32),
        "colors": np.clip(np.concatenate(C), 0, 1).astype(np.float32),
        "materials": np.concatenate(M).astype(np.uint8),
        "eye_coords": np.concatenate(E).astype(np.float32),
        "bone_indices": np.concatenate(BI).astype(np.uint8),
        "bone_weights": np.concatenate(BW).astype(np.float32),
        "bone_names": np.asarray(names),
        "bone_parents": parents,
        "bone_heads": heads.astype(np.float32),
        "bind_poses": poses.astype(np.float32),
        "n_face_vertices": np.asarray(n_face),
        "blendshape_deltas": d_face.astype(np.float16),
        "normal_deltas": nd.astype(np.float16),
        "iris": np.asarray(spec.iris, np.float32),
        "lm_eye_mid": eye_mid.astype(np.float32),
        "lm_head_top": np.asarray([0.0, allv[:, 1].max(), head_c[2]], np.float32),
        "lm_chin": np.asarray([0.0, eye_mid[1] - 0.115, eye_mid[2]], np.float32),
        "lm_mouth": pos[lips].mean(0).astype(np.float32),
        "lm_shoulder_l": heads[bidx("upperarm01.L")].astype(np.float32),
        "lm_shoulder_r": heads[bidx("upperarm01.R")].astype(np.float32),
        "lm_pelvis": heads[bidx("root")].astype(np.float32),
        "lm_neck": heads[bidx("neck01")].astype(np.float32),
    }
    return arrays


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # area-weighted face normals
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
