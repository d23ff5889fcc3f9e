"""The avatar asset: one look baked into a plain `.npz` (no pickle) that loads in milliseconds, with
everything posing and drawing need (mio.render.pose, mio.render.raster).

World frame of the asset: metres, Y up, the character faces +Z with its left at +X, feet on y = 0
(HumanML3D's convention; anny itself is Z up facing -Y).

Vertices are ordered so that the ones any ARKit blendshape moves come first (`n_face_vertices`):
expression changes then rewrite only that prefix of the GPU buffer. anny's own eyeballs (a coarse
helper mesh) are replaced by UV spheres with an iris/pupil that the fragment shader draws; each
sphere is skinned rigidly to its eye bone so gaze rotations turn it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mio.core.paths import cache_root
from mio.render.looks import Look, resolve_look

ASSET_VERSION = 10  # bump whenever the baking code changes; the look's own content is hashed into the name
MAX_INFLUENCES = 4  # skinning influences kept per vertex (anny uses up to 9; the rest carry <0.5% on average)

# Material ids (per vertex). The fragment shader picks specular and subsurface response by id.
# Cloth ids name a lighting response, not a garment: a coat and a shirt are both MAT_SHIRT.
(MAT_SKIN, MAT_LIPS, MAT_HAIR, MAT_BROW, MAT_EYE, MAT_MOUTH, MAT_SHIRT, MAT_TROUSERS, MAT_SHOES,
 MAT_METAL) = range(10)


# ---------------------------------------------------------------------------------------------
# The asset
# ---------------------------------------------------------------------------------------------


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
    bind_poses: np.ndarray  # (B, 4, 4) float32 anny's rest bone frames (world); posing uses world-aligned frames
    n_face_vertices: int  # vertices [0, n) are the ones blendshapes move
    blendshape_deltas: np.ndarray  # (52, n_face_vertices, 3) float32, ARKIT_BLENDSHAPES order
    normal_deltas: np.ndarray  # (52, n_face_vertices, 3) float32 (linearised normal change per unit weight)
    iris: np.ndarray = field(default_factory=lambda: np.array([0.33, 0.22, 0.12], np.float32))  # (3,) sRGB
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)  # named points: eye_mid, head_top, ...

    def bone(self, name: str) -> int:
        try:
            return self.bone_names.index(name)
        except ValueError:
            raise KeyError(f"avatar rig has no bone {name!r}") from None

    @property
    def height(self) -> float:
        return float(self.landmarks["head_top"][1])


def asset_path(look: str | dict | Look, cache_dir: str | None = None) -> Path:
    """Where the asset of a look is cached: named by the look, a hash of its content and the format
    version, so a changed preset (or another checkout's) never reads a stale file."""
    spec = resolve_look(look)
    return cache_root(cache_dir) / "avatar" / f"anny_{spec.name}_{spec.digest()}_v{ASSET_VERSION}.npz"


def read_asset(path: Path, look: str) -> AvatarAsset:
    """An asset file written by mio.render.build (ValueError / KeyError / OSError if it is not one)."""
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
        iris=d["iris"].astype(np.float32),
        landmarks={k[3:]: d[k] for k in d if k.startswith("lm_")},
    )
