"""Looks: every character card's look resolves (without building anything) and renders as itself;
specs are validated with one-line errors; several looks live in one renderer; garment and hair
borders are crisp (no blend of skin into cloth or hair along them)."""

from pathlib import Path

import numpy as np
import pytest

from mio.core.config import RenderConfig
from mio.core.errors import ConfigError
from mio.core.layouts import ARKIT52
from mio.render import avatar, build
from mio.render.asset import ASSET_VERSION, asset_path
from mio.render.looks import LOOKS, check_look_spec, resolve_look
from mio.thinker.persona import known_characters, load_character

CARDS = known_characters()


def card_spec(name: str):
    c = load_character(name)
    return c.avatar or c.look


def test_every_card_names_its_own_look_and_checking_builds_nothing(monkeypatch):
    def no_build(*a, **k):
        raise AssertionError("check_look_spec must not build an asset")

    monkeypatch.setattr(avatar, "build_avatar", no_build)
    monkeypatch.setattr(build, "_run_anny", no_build)
    assert {"mio", "nemo", "aronnax", "conseil", "ned"} <= set(CARDS)
    names = {}
    for card in CARDS:
        check_look_spec(card_spec(card), f"{card}.avatar")
        names[card] = resolve_look(card_spec(card)).name
    assert len(set(names.values())) == len(names)  # one look per character
    nemo, ned, mio = (resolve_look(card_spec(c)) for c in ("nemo", "ned", "mio"))
    assert nemo.phenotype["age"] > mio.phenotype["age"] and nemo.beard == "short" and nemo.top == "coat"
    assert ned.phenotype["muscle"] > 0.8 and ned.pattern == "check"
    assert mio.phenotype["gender"] > 0.5 and mio.beard == "none"


def test_a_changed_look_is_named_by_its_changes_and_registers_nothing():
    before = dict(LOOKS)
    spec = {"look": "casual", "phenotype": {"height": 0.3}, "top_color": [0.1, 0.6, 0.2]}
    look = resolve_look(spec)
    assert LOOKS == before  # pure: the presets are untouched, nothing is added
    assert look.name.startswith("casual-") and look.name == resolve_look(dict(reversed(spec.items()))).name
    assert look.phenotype["height"] == 0.3 and look.phenotype["gender"] == LOOKS["casual"].phenotype["gender"]
    assert look.top_color == (0.1, 0.6, 0.2)
    assert resolve_look({"look": "casual", "top_color": [0.1, 0.6, 0.21]}).name != look.name
    assert resolve_look({"look": "nemo"}) is LOOKS["nemo"] and resolve_look("nemo") is LOOKS["nemo"]
    assert resolve_look({"look": "nemo", "face": {"cheek-bones-incr": 0.2}}).face["cheek-bones-incr"] == 0.2
    # the asset file is named by the look's content: an edited preset never reads a stale file
    path = asset_path(look)
    assert path.name.endswith(f"_v{ASSET_VERSION}.npz") and look.digest() in path.name
    assert asset_path("nemo") != asset_path({"look": "nemo", "hair_grey": 0.9})


@pytest.mark.parametrize(
    "spec, field, hint",
    [
        ("nobody", "avatar.look", "aronnax"),
        ({"look": "nemoo"}, "avatar.look", "nemo"),
        ({"look": "nemo", "wings": 2}, "avatar.wings", "known"),
        ({"look": "nemo", "phenotype": {"age": 1.5}}, "avatar.phenotype.age", "[0, 1]"),
        ({"look": "nemo", "phenotype": {"wisdom": 0.5}}, "avatar.phenotype.wisdom", "gender"),
        ({"look": "nemo", "skin": [1, 2]}, "avatar.skin", "sRGB"),
        ({"look": "nemo", "beard": "long"}, "avatar.beard", "stubble"),
        ({"look": "nemo", "sleeves": 3}, "avatar.sleeves", "rolled"),
        ({"look": "nemo", "hair_grey": "lots"}, "avatar.hair_grey", "number"),
        ({"look": "nemo", "face": {"nose-wiggle": 0.5}}, "avatar.face.nose-wiggle", "local changes"),
        ({"look": "nemo", "face": {"nose-hump-incr": 3}}, "avatar.face.nose-hump-incr", "[-1, 1]"),
        (42, "avatar", "mapping"),
    ],
)
def test_a_bad_spec_is_a_one_line_error_naming_the_field_and_the_choices(spec, field, hint):
    with pytest.raises(ConfigError) as e:
        check_look_spec(spec, "avatar")
    msg = str(e.value)
    assert msg.startswith(f"{field}:") and hint in msg and "\n" not in msg


# ---- rendered (the first run builds each look with anny, ~30 s each, then cached) -------------

SIZE = 128


@pytest.fixture(scope="module")
def renderer():
    pytest.importorskip("anny")
    pytest.importorskip("moderngl")
    from mio.render.raster import AnnyRenderer

    r = AnnyRenderer(RenderConfig(width=SIZE, height=SIZE, samples=0))
    yield r
    r.close()


@pytest.mark.slow
def test_each_cards_look_renders_and_differs_from_the_others(renderer):
    from mio.render.retarget import relaxed_joints

    images = {}
    for card in CARDS:
        name = renderer.add_look(card_spec(card))
        cam = renderer.preset_camera("upper_body", look=name)
        img = renderer.render(ARKIT52.zeros(), relaxed_joints(renderer._look(name).rig), cam, look=name)
        person = np.abs(img.astype(int) - img[2, 2].astype(int)).sum(-1) > 40
        assert 0.15 < person.mean() < 0.9, card  # a figure, not a blank or a flat frame
        images[card] = img.astype(int)
    for a in images:
        for b in images:
            if a < b:
                assert np.abs(images[a] - images[b]).sum(-1).mean() > 20, (a, b)


@pytest.mark.slow
def test_add_look_is_idempotent_and_alternating_looks_gives_each_its_own_frames(renderer):
    nemo = renderer.add_look("nemo")
    n_looks = len(renderer.looks)
    assert renderer.add_look({"look": "nemo"}) == nemo and len(renderer.looks) == n_looks
    face = ARKIT52.zeros()
    alone = renderer.render(face, None, look=nemo)
    default = renderer.render(face, None)
    frames = [renderer.render(face, None, look=look) for look in (nemo, None, nemo, None)]
    assert np.array_equal(frames[0], alone) and np.array_equal(frames[2], alone)
    assert np.array_equal(frames[1], default) and np.array_equal(frames[3], default)
    assert not np.array_equal(alone, default)
    from mio.core.errors import InputError

    with pytest.raises(InputError, match="add_look"):
        renderer.render(face, None, look="never-added")


def _blend_fraction(img: np.ndarray, a: int, b: int, rows: slice) -> tuple[float, int]:
    """Among pixels of pure channel `a` or `b` hue (the rest of the frame is grey), the share that
    mixes both: a colour blended across a border instead of a border."""
    x = img[rows].astype(float)
    peak = x.max(-1, keepdims=True) + 1e-6
    lo = x.min(-1)
    ca, cb = x[..., a] - lo, x[..., b] - lo
    coloured = np.maximum(ca, cb) > 40
    mixed = coloured & (ca > 0.3 * peak[..., 0]) & (cb > 0.3 * peak[..., 0])
    return float(mixed.sum() / max(coloured.sum(), 1)), int(coloured.sum())


@pytest.mark.slow
def test_garment_and_hair_borders_are_crisp(renderer):
    """A look keyed in pure colours - skin red, clothes green, hair blue - drawn without
    anti-aliasing: a crisp border leaves no pixel mixing two of them. (Materials assigned vertex by
    vertex, before the mesh was cut along its borders, gave mixed fringes here: 1.9% of the
    coloured pixels below the neck and 11.6% of those above the brows; now 0.)"""
    from mio.render.retarget import relaxed_joints

    keyed = renderer.add_look({
        "look": "default", "hair_style": "short", "skin": [1, 0, 0], "lips": [1, 0, 0], "top_color": [0, 1, 0],
        "trousers": [0, 1, 0], "hair": [0, 0, 1],
    })
    gl = renderer._look(keyed)
    cam = renderer.preset_camera("upper_body", 256, 256, look=keyed)
    img = renderer.render(ARKIT52.zeros(), relaxed_joints(gl.rig), cam, look=keyed)
    from mio.render.camera import project

    lm = gl.asset.landmarks
    row = lambda p: int(project(cam, np.asarray(p, float)[None])[0][1])  # noqa: E731
    eye, neck = row(lm["eye_mid"]), row(lm["neck"])
    brow_top = row(lm["eye_mid"] + np.array([0, 0.035, 0]))
    cloth, n_cloth = _blend_fraction(img, 0, 1, slice(neck - 30, None))  # neckline, sleeves, arms
    hair, n_hair = _blend_fraction(img, 0, 2, slice(0, brow_top))  # the hairline (above the soft brows)
    assert n_cloth > 2000 and n_hair > 500 and eye > brow_top
    assert cloth < 0.002 and hair < 0.002


def test_ages_in_years_follow_annys_own_calibration():
    anny = pytest.importorskip("anny")
    import torch

    from mio.render.looks import ANNY_AGE_ANCHORS, anny_age

    calibration = Path(anny.__file__).parent / "data" / "shape_calibration"
    for who in ("boys", "girls"):
        mapping = torch.load(calibration / f"{who}.pth", weights_only=True)["morphological_age_mapping"]
        pairs = list(zip(mapping["anny_age_anchors"].tolist(), mapping["morphological_age_anchors"].tolist(),
                         strict=True))
        assert np.allclose(pairs, ANNY_AGE_ANCHORS)
    assert anny_age(18) == 0.77 and anny_age(64) == 0.83 and anny_age(41) == pytest.approx(0.80)
    ages = {c: resolve_look(card_spec(c)).phenotype["age"] for c in ("nemo", "aronnax", "conseil", "mio")}
    assert ages["mio"] < ages["conseil"] < ages["aronnax"] < ages["nemo"] == anny_age(50)
