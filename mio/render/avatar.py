"""The embedded avatar: the `anny` body model (ARCHITECTURE.md §2) exported once into a compact asset.

A full anny forward pass (warp skinning) costs 17-30 ms, too slow per frame, so we pose the mesh
ourselves (mio.render.raster): this module runs anny *once* per look, bakes what posing needs into a
plain `.npz` (no pickle) and loads it in milliseconds afterwards:

    asset = load_avatar("default")          # builds on first use (~1-2 min), then < 0.1 s
    asset.vertices, asset.triangles, asset.blendshape_deltas, ...

World frame of the asset: metres, Y up, the character faces +Z with its left at +X, feet on y = 0
(HumanML3D's convention; anny itself is Z up facing -Y).

Vertices are ordered so that the ones any ARKit blendshape moves come first (`n_face_vertices`):
expression changes then rewrite only that prefix of the GPU buffer. anny's own eyeballs (a coarse
helper mesh) are replaced by UV spheres with an iris/pupil that the fragment shader draws; each
sphere is skinned rigidly to its eye bone so gaze rotations turn it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mio.core.errors import BackendError, ConfigError
from mio.core.layouts import ARKIT_BLENDSHAPES
from mio.core.paths import cache_root as default_cache_root

ASSET_VERSION = 8  # bump whenever the baked content changes; part of the file name
MAX_INFLUENCES = 4  # skinning influences kept per vertex (anny uses up to 9; the rest carry <0.5% on average)

# Material ids (per vertex). The fragment shader picks specular and subsurface response by id.
MAT_SKIN, MAT_LIPS, MAT_HAIR, MAT_BROW, MAT_EYE, MAT_MOUTH, MAT_SHIRT, MAT_TROUSERS, MAT_SHOES = range(9)

# anny (Z up, facing -Y) -> Mio world (Y up, facing +Z): a -90 degree rotation about X.
ANNY_TO_WORLD = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)


@dataclass(frozen=True)
class Look:
    """An appearance preset: anny phenotype (values in [0, 1]) and material colours (sRGB 0-1)."""

    name: str
    phenotype: dict[str, float]
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    shirt: tuple[float, float, float]
    trousers: tuple[float, float, float]
    shoes: tuple[float, float, float]
    long_sleeves: bool = False
    hair_volume: float = 0.010  # metres the scalp is pushed out to give the hair cap some body
    hair_length: float = 0.0  # extra metres the hairline reaches down the back of the head


LOOKS: dict[str, Look] = {
    "default": Look(
        name="default",
        # anny: gender 0 = male, 1 = female; age anchors newborn..old on [-1/3, 1], young adult ~0.7.
        phenotype={
            "gender": 0.8,
            "age": 0.7,
            "muscle": 0.5,
            "weight": 0.45,
            "height": 0.55,
            "proportions": 0.7,
        },
        skin=(0.86, 0.63, 0.52),
        lips=(0.74, 0.40, 0.40),
        hair=(0.17, 0.10, 0.07),
        iris=(0.33, 0.22, 0.12),
        shirt=(0.20, 0.42, 0.62),
        trousers=(0.16, 0.17, 0.22),
        shoes=(0.92, 0.92, 0.90),
        hair_volume=0.012,
        hair_length=0.05,
    ),
    "casual": Look(
        name="casual",
        phenotype={
            "gender": 0.1,
            "age": 0.8,
            "muscle": 0.6,
            "weight": 0.6,
            "height": 0.6,
            "proportions": 0.6,
        },
        skin=(0.55, 0.38, 0.27),
        lips=(0.50, 0.28, 0.25),
        hair=(0.06, 0.05, 0.05),
        iris=(0.18, 0.11, 0.06),
        shirt=(0.72, 0.30, 0.20),
        trousers=(0.55, 0.47, 0.34),
        shoes=(0.15, 0.12, 0.10),
        long_sleeves=True,
        hair_volume=0.006,
    ),
}


def look_from_spec(spec: str | dict) -> str:
    """The look a character pack asks for: a preset name, or a mapping
    `{look: BASE, phenotype: {gender: 0.3, ...}, skin: [r, g, b], hair: ..., hair_length: 0.05, ...}`
    that changes a preset. A changed look is registered in LOOKS under `BASE-<hash>` (so its asset is
    built once and cached like the presets) and that name is returned."""
    import hashlib
    import json
    from dataclasses import fields, replace

    if isinstance(spec, str):
        if spec not in LOOKS:
            raise ConfigError(f"unknown avatar look {spec!r}; available: {', '.join(sorted(LOOKS))}")
        return spec
    if not isinstance(spec, dict):
        raise ConfigError(f"avatar must be a look name or a mapping, got {type(spec).__name__}")
    spec = dict(spec)
    base = LOOKS.get(str(spec.pop("look", "default")))
    if base is None:
        raise ConfigError(f"unknown base look in {spec!r}; available: {', '.join(sorted(LOOKS))}")
    known = {f.name for f in fields(Look)} - {"name"}
    unknown = set(spec) - known
    if unknown:
        raise ConfigError(f"unknown avatar settings {sorted(unknown)}; known: {', '.join(sorted(known))}")
    if not spec:
        return base.name
    changes: dict = {}
    for key, value in spec.items():
        if key == "phenotype":
            bad = {k: v for k, v in value.items() if k not in base.phenotype or not 0 <= float(v) <= 1}
            if bad:
                raise ConfigError(f"phenotype values must be in [0, 1] for {sorted(base.phenotype)}: {bad}")
            changes[key] = {**base.phenotype, **{k: float(v) for k, v in value.items()}}
        elif isinstance(getattr(base, key), tuple):
            rgb = tuple(float(c) for c in value)
            if len(rgb) != 3 or not all(0 <= c <= 1 for c in rgb):
                raise ConfigError(f"avatar {key} must be three sRGB values in [0, 1], got {value!r}")
            changes[key] = rgb
        else:
            changes[key] = type(getattr(base, key))(value)
    digest = hashlib.sha1(json.dumps([base.name, changes], sort_keys=True).encode()).hexdigest()[:8]
    name = f"{base.name}-{digest}"
    LOOKS.setdefault(name, replace(base, name=name, **changes))
    return name


@dataclass(frozen=True)
class AvatarAsset:
    """Everything the rasteriser needs to pose and draw the avatar (see module docstring for frames)."""

    look: str
    vertices: np.ndarray  # (V, 3) float32 rest positions
    normals: np.ndarray  # (V, 3) float32 rest normals
    triangles: np.ndarray  # (T, 3) uint32
    colors: np.ndarray  # (V, 3) float32 base colour, sRGB 0-1
    materials: np.ndarray  # (V,) uint8 MAT_* ids
    eye_coords: np.ndarray  # (V, 2) float32 eye-local (angle-scaled) front coordinates; 0 off the eyes
    bone_indices: np.ndarray  # (V, MAX_INFLUENCES) uint8
    bone_weights: np.ndarray  # (V, MAX_INFLUENCES) float32, rows sum to 1
    bone_names: tuple[str, ...]
    bone_parents: np.ndarray  # (B,) int32, -1 for the root; parents come before children
    bone_heads: np.ndarray  # (B, 3) float32 rest joint positions
    bind_poses: (
        np.ndarray
    )  # (B, 4, 4) float32 anny's rest bone frames (world); posing uses world-aligned frames
    n_face_vertices: int  # vertices [0, n) are the ones blendshapes move
    blendshape_deltas: np.ndarray  # (52, n_face_vertices, 3) float32, ARKIT_BLENDSHAPES order
    normal_deltas: np.ndarray  # (52, n_face_vertices, 3) float32 (linearised normal change per unit weight)
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)  # named points: eye_mid, head_top, ...

    def bone(self, name: str) -> int:
        try:
            return self.bone_names.index(name)
        except ValueError:
            raise KeyError(f"avatar rig has no bone {name!r}") from None

    @property
    def height(self) -> float:
        return float(self.landmarks["head_top"][1])


def cache_root(cache_dir: str | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else default_cache_root()


def asset_path(look: str, cache_dir: str | None = None) -> Path:
    return cache_root(cache_dir) / "avatar" / f"anny_{look}_v{ASSET_VERSION}.npz"


def load_avatar(look: str = "default", cache_dir: str | None = None) -> AvatarAsset:
    """The prepared asset for `look`; builds and caches it with anny on first use."""
    if look not in LOOKS:
        raise ConfigError(f"unknown avatar look {look!r}; available: {', '.join(sorted(LOOKS))}")
    path = asset_path(look, cache_dir)
    if not path.is_file():
        build_avatar(look, cache_dir)
    try:
        return _read(path, look)
    except (OSError, ValueError, KeyError) as e:
        raise BackendError(f"avatar asset {path} is unreadable ({e}); delete it to rebuild") from e


def _read(path: Path, look: str) -> AvatarAsset:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    if int(d["version"]) != ASSET_VERSION:
        raise ValueError(f"asset version {int(d['version'])}, expected {ASSET_VERSION}")
    return AvatarAsset(
        look=look,
        vertices=d["vertices"],
        normals=d["normals"],
        triangles=d["triangles"],
        colors=d["colors"],
        materials=d["materials"],
        eye_coords=d["eye_coords"],
        bone_indices=d["bone_indices"],
        bone_weights=d["bone_weights"],
        bone_names=tuple(str(s) for s in d["bone_names"]),
        bone_parents=d["bone_parents"],
        bone_heads=d["bone_heads"],
        bind_poses=d["bind_poses"],
        n_face_vertices=int(d["n_face_vertices"]),
        blendshape_deltas=d["blendshape_deltas"].astype(np.float32),
        normal_deltas=d["normal_deltas"].astype(np.float32),
        landmarks={k[3:]: d[k] for k in d if k.startswith("lm_")},
    )


# ---------------------------------------------------------------------------------------------
# Building (runs anny once per look)
# ---------------------------------------------------------------------------------------------


def build_avatar(look: str = "default", cache_dir: str | None = None) -> Path:
    """Run anny for `look` and write the asset file atomically. Returns its path."""
    spec = LOOKS[look]
    root = cache_root(cache_dir)
    path = asset_path(look, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    sys.stderr.write(
        f"mio: preparing the avatar (look {look!r}) with anny into {path.parent} - "
        "the first run takes about 1-2 minutes...\n"
    )
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
    for stale in path.parent.glob(f"anny_{look}_v*.npz"):  # assets of older format versions
        if stale != path:
            stale.unlink(missing_ok=True)
    sys.stderr.write(f"mio: avatar ready in {time.monotonic() - t0:.0f} s\n")
    return path


def _run_anny(spec: Look, anny_cache: Path) -> dict[str, np.ndarray | list]:
    """Rest mesh, rig, skinning and the 52 facial-action deltas of one phenotype, from anny."""
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

    model = anny.Anny(facial_actions="all").to(dtype=torch.float32)
    labels = list(model.facial_action_labels)
    missing = [n for n in ARKIT_BLENDSHAPES if n not in labels]
    if missing:
        raise BackendError(f"anny lacks ARKit blendshapes {missing}")
    with torch.no_grad():
        _, phen, local, facial = model.get_tensor_inputs(None, spec.phenotype, None, None)
        coeffs = model._get_phenotype_blendshape_coefficients(phen, local, facial)
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
    }


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image, ImageFilter

    im = Image.open(path).convert("L").filter(ImageFilter.GaussianBlur(6))
    return np.asarray(im, dtype=np.float32) / 255.0


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # area-weighted face normals
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _uv_sphere(center: np.ndarray, radius: float, rings: int = 20, segments: int = 32):
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


def _bake(raw: dict, spec: Look) -> dict[str, np.ndarray]:
    A = ANNY_TO_WORLD
    v = raw["vertices"] @ A.T
    heads = raw["bone_heads"] @ A.T
    floor = v[:, 1].min()
    v[:, 1] -= floor
    heads[:, 1] -= floor
    deltas = np.einsum("kvi,ji->kvj", raw["deltas"], A)
    poses = raw["bone_poses"].copy()
    poses[:, :3, :3] = A @ poses[:, :3, :3]
    poses[:, :3, 3] = heads
    names, parents = raw["bone_names"], np.asarray(raw["bone_parents"], np.int32)
    bidx = lambda n: names.index(n)  # noqa: E731
    faces = raw["faces"]
    seg = raw["segments"]
    weights, indices = raw["weights"], raw["indices"]

    # ---- dense per-vertex weight of bone groups (used to paint clothes) -------------------
    nv = len(v)
    dense = np.zeros((nv, len(names)))
    np.add.at(dense, (np.repeat(np.arange(nv), indices.shape[1]), indices.ravel()), weights.ravel())

    def group(*prefixes: str) -> np.ndarray:
        cols = [i for i, n in enumerate(names) if n.startswith(prefixes)]
        return dense[:, cols].sum(1)

    w_hand = group("wrist", "finger", "metacarpal")
    w_foot = group("foot", "toe")
    w_head = group("neck", "head", "eye")
    w_lowarm = group("lowerarm")
    w_uparm2 = group("upperarm02")

    # ---- materials and colours ------------------------------------------------------------
    mat = np.full(nv, MAT_SKIN, np.uint8)
    face_mat = lambda mask, m: mat.__setitem__(np.unique(faces[mask]), m)  # noqa: E731
    waist_y = heads[bidx("spine04"), 1] + 0.01
    bare_arm = (w_lowarm + w_hand) > 0.5 if spec.long_sleeves else (w_lowarm + w_hand + w_uparm2) > 0.55
    covered = (w_hand < 0.5) & (w_head < 0.3) & ~bare_arm
    mat[covered] = MAT_SHIRT
    mat[covered & (v[:, 1] < waist_y)] = MAT_TROUSERS
    mat[(w_foot > 0.5) | (v[:, 1] < 0.075)] = MAT_SHOES

    eye_l, eye_r = heads[bidx("eye.L")], heads[bidx("eye.R")]
    eye_mid = 0.5 * (eye_l + eye_r)
    head_c = heads[bidx("head")]
    rel = v - eye_mid
    on_head = w_head > 0.5
    # Hair cap: above a hairline that runs from the forehead down to the nape.
    front = np.clip((rel[:, 2] - (head_c[2] - eye_mid[2] - 0.04)) / 0.09, 0, 1)  # 0 back .. 1 front
    hairline = (1 - front) * (-0.075 - spec.hair_length) + front * 0.056
    ear_zone = (np.abs(rel[:, 0]) > 0.055) & (rel[:, 1] < 0.035) & (rel[:, 2] > -0.15)  # keep ears bare
    hair = on_head & (rel[:, 1] > hairline) & ~ear_zone
    # Eyebrows: an arch over each eye on the front of the face.
    ax = np.abs(rel[:, 0])
    arch = 0.021 + 0.004 * (1 - ((ax - 0.032) / 0.024) ** 2)
    taper = np.clip((ax - 0.008) / 0.01, 0, 1) * np.clip((0.058 - ax) / 0.012, 0, 1)
    brow_f = on_head * (rel[:, 2] > -0.005) * taper * np.exp(-(((rel[:, 1] - arch) / 0.0038) ** 2)) * 0.9
    mat[hair] = MAT_HAIR
    mat[(brow_f > 0.45) & ~hair] = MAT_BROW
    face_mat(seg["mouth_cavity"] | seg["tongue"], MAT_MOUTH)

    # Lips from the MakeHuman lips mask, sampled at each vertex's texture coordinate.
    uv_of_vertex = np.zeros((nv, 2))
    cnt = np.zeros(nv)
    np.add.at(uv_of_vertex, faces.ravel(), raw["uv"][raw["face_uv"].ravel()])
    np.add.at(cnt, faces.ravel(), 1)
    uv_of_vertex /= np.maximum(cnt, 1)[:, None]
    m = raw["lips_mask"]
    px = np.clip((uv_of_vertex[:, 0] * m.shape[1]).astype(int), 0, m.shape[1] - 1)
    py = np.clip(((1 - uv_of_vertex[:, 1]) * m.shape[0]).astype(int), 0, m.shape[0] - 1)
    lips = m[py, px]
    mat[(lips > 0.5) & (mat == MAT_SKIN)] = MAT_LIPS

    palette = {
        MAT_SKIN: spec.skin,
        MAT_LIPS: spec.lips,
        MAT_HAIR: spec.hair,
        MAT_BROW: spec.hair,
        MAT_MOUTH: (0.45, 0.18, 0.18),
        MAT_SHIRT: spec.shirt,
        MAT_TROUSERS: spec.trousers,
        MAT_SHOES: spec.shoes,
    }
    colors = np.zeros((nv, 3))
    for k, c in palette.items():
        colors[mat == k] = c
    skin_like = np.isin(mat, (MAT_SKIN, MAT_LIPS))
    t = np.clip(lips, 0, 1)[:, None] * skin_like[:, None]  # soft lip edge
    colors = np.where(skin_like[:, None], (1 - t) * np.asarray(spec.skin) + t * np.asarray(spec.lips), colors)
    colors[np.unique(faces[seg["tongue"]])] = (0.75, 0.40, 0.42)
    # Soft edges where vertex colours would otherwise step: brows, and the neckline of the shirt.
    brow_f = brow_f * ~hair
    colors = (1 - brow_f[:, None]) * colors + brow_f[:, None] * np.asarray(spec.hair)
    neck_f = np.clip((w_head - 0.22) / 0.12, 0, 1)[:, None] * (np.isin(mat, (MAT_SKIN, MAT_SHIRT)))[:, None]
    colors = (1 - neck_f) * np.where(
        mat[:, None] == MAT_SHIRT, np.asarray(spec.shirt), colors
    ) + neck_f * np.asarray(spec.skin)
    mouth = v[lips > 0.5].mean(0)

    # Hair volume: push the cap out along the normal, easing in from the hairline.
    normals = _vertex_normals(v, faces)
    depth = np.clip((rel[:, 1] - hairline) / 0.03, 0, 1) * hair
    v = v + normals * (spec.hair_volume * depth)[:, None]

    # ---- replace anny's coarse eyeballs by spheres with an iris -----------------------------
    eye_faces = seg["eye_front.L"] | seg["eye_back.L"] | seg["eye_front.R"] | seg["eye_back.R"]
    eye_vertices = np.unique(faces[eye_faces])
    keep_faces = faces[~eye_faces]
    radius = float(
        np.median(np.linalg.norm(v[eye_vertices] - np.where(v[eye_vertices, :1] > 0, eye_l, eye_r), axis=1))
    )
    extra = []
    for c, bone in ((eye_l, "eye.L"), (eye_r, "eye.R")):
        sv, sn, st, suv = _uv_sphere(c, 0.97 * radius)
        extra.append((sv, sn, st, suv, bidx(bone)))

    # ---- skinning: keep the strongest influences ------------------------------------------
    order = np.argsort(-weights, axis=1)[:, :MAX_INFLUENCES]
    top_w = np.take_along_axis(weights, order, 1)
    top_i = np.take_along_axis(indices, order, 1)
    top_w /= top_w.sum(1, keepdims=True)

    # ---- assemble, dropping unreferenced vertices and putting face-deformed ones first ------
    used = np.zeros(nv, bool)
    used[keep_faces.ravel()] = True
    moved = (np.abs(deltas).max(axis=(0, 2)) > 1e-6) & used
    # Within each group vertices go front to back, and triangles follow vertex order (below): that
    # keeps llvmpipe's vertex cache warm *and* lets the depth test reject hidden fragments early.
    by_depth = lambda idx: idx[np.argsort(-v[idx, 2], kind="stable")]  # noqa: E731
    order_v = np.concatenate([by_depth(np.flatnonzero(moved)), by_depth(np.flatnonzero(used & ~moved))])
    remap = np.full(nv, -1, np.int64)
    remap[order_v] = np.arange(len(order_v))
    n_face = int(moved.sum())

    V = [v[order_v]]
    N = [normals[order_v]]
    T = [remap[keep_faces]]
    C = [colors[order_v]]
    M = [mat[order_v]]
    E = [np.zeros((len(order_v), 2))]
    BI = [top_i[order_v]]
    BW = [top_w[order_v]]
    base = len(order_v)
    for sv, sn, st, suv, b in extra:
        V.append(sv)
        N.append(sn)
        T.append(st + base)
        C.append(np.tile((0.93, 0.92, 0.90), (len(sv), 1)))
        M.append(np.full(len(sv), MAT_EYE, np.uint8))
        E.append(suv)
        bi = np.zeros((len(sv), MAX_INFLUENCES), np.int64)
        bi[:, 0] = b
        bw = np.zeros((len(sv), MAX_INFLUENCES))
        bw[:, 0] = 1
        BI.append(bi)
        BW.append(bw)
        base += len(sv)

    rest_face = v[order_v[:n_face]]
    d_face = deltas[:, order_v[:n_face]]
    # Linearised normal change per blendshape, evaluated at weight 1 (renormalised in the shader).
    full_faces = remap[keep_faces]
    allv = np.concatenate(V)
    n0 = np.concatenate(N)[:n_face]
    nd = np.empty_like(d_face)
    for k in range(len(ARKIT_BLENDSHAPES)):
        vk = allv.copy()
        vk[:n_face] = rest_face + d_face[k]
        nd[k] = _vertex_normals(vk, full_faces)[:n_face] - n0

    tris = np.concatenate(T)
    tris = tris[np.argsort(tris.min(1), kind="stable")]
    top = allv[:, 1].max()
    arrays: dict[str, np.ndarray] = {
        "version": np.asarray(ASSET_VERSION),
        "vertices": allv.astype(np.float32),
        "normals": np.concatenate(N).astype(np.float32),
        "triangles": tris.astype(np.uint32),
        "colors": np.concatenate(C).astype(np.float32),
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
        "lm_eye_mid": eye_mid.astype(np.float32),
        "lm_head_top": np.asarray([0.0, top, head_c[2]], np.float32),
        "lm_chin": np.asarray([0.0, eye_mid[1] - 0.115, eye_mid[2]], np.float32),
        "lm_mouth": mouth.astype(np.float32),
        "lm_shoulder_l": heads[bidx("upperarm01.L")].astype(np.float32),
        "lm_shoulder_r": heads[bidx("upperarm01.R")].astype(np.float32),
        "lm_pelvis": heads[bidx("root")].astype(np.float32),
    }
    return arrays
