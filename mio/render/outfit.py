"""Hair, beard, skin tone and clothes on the anny mesh: what a Look adds to anny's bare body.

anny has no hair or garment meshes, so they are made on its skin. Each border (the hairline, the
beard's edge, a neckline, a sleeve end, a collar, a coat's opening, a hem, a shoe top, a button) is
the zero level of a smooth field over the rest pose - in the body's own landmarks (eyes, ears,
lips, neck and arm bones), so it fits every phenotype - and the mesh is cut along it
(mio.render.seams): borders are exact smooth lines, never the mesh's edges. Each region then gets
a colour, a lighting material and a layer height; `seams.offset_with_walls` lifts the layers off
the skin and closes each step with a narrow wall (a collar's edge, a hem, the hairline).

    mesh = dress(mesh, Body(bone_names, bone_heads), look)   # attrs: pos, normal, color, mat, wall, ...
"""

from __future__ import annotations

import numpy as np

from mio.render.asset import (
    MAT_BROW,
    MAT_HAIR,
    MAT_LIPS,
    MAT_METAL,
    MAT_MOUTH,
    MAT_SHIRT,
    MAT_SHOES,
    MAT_SKIN,
    MAT_TROUSERS,
)
from mio.render.fields import (
    BUTTON_HEIGHT,
    BUTTON_RADIUS,
    HEAD_BONES,
    Body,
    arm_coordinate,
    beard_field,
    button_centres,
    check_lines,
    hair_field,
    measure_face,
    opening_field,
    shoes_field,
    smooth_noise,
    smoothstep,
    top_field,
    torso_frame,
    trousers_field,
)
from mio.render.looks import Look
from mio.render.seams import Mesh, cut, offset_with_walls, uv_sphere

GREY_HAIR = np.array([0.66, 0.65, 0.63])
MOUTH_COLOR = (0.45, 0.18, 0.18)
TONGUE_COLOR = (0.75, 0.40, 0.42)

# Layer heights over the skin, metres: a layer drawn above another one steps up at their border.
LAYER = {
    "hair": 0.0010,  # at the hairline; the crown rises by Look.hair_volume
    "beard": 0.0015,  # at its edge; rises by BEARD_DEPTH inside
    "shirt": 0.0020,
    "trousers": 0.0070,  # loose over the legs; a tucked shirt disappears under the waistband
    "shoes": 0.0040,  # low shoes: the trouser hem falls over them
    "boots": 0.0095,  # boots: over the trousers
    "inner": 0.0050,  # a jumper or waistcoat under a coat
    "inner_shirt": 0.0040,  # the shirt front inside a waistcoat's V
    "neckwear": 0.0060,
    "coat": 0.0100,
    "collar": 0.0135,  # a coat's stand collar stands off the neck
    "cuff": 0.0055,  # a rolled sleeve
}
BEARD_DEPTH = 0.0035
BOOTS_FROM = 0.12  # shoes reaching higher than this are boots
ARM_BONES = ("upperarm", "lowerarm", "wrist", "finger", "metacarpal")



# ---------------------------------------------------------------------------------------------
# Dressing
# ---------------------------------------------------------------------------------------------


def add_buttons(mesh: Mesh, at: list[int], rgb: tuple[float, float, float]) -> Mesh:
    """Small domes on the (already layered) surface, each skinned like the vertex it sits on."""
    a = mesh.attrs
    tris = [mesh.triangles]
    for i in at:
        n = a["normal"][i] / np.linalg.norm(a["normal"][i])
        sv, sn, st, _ = uv_sphere(np.zeros(3), 1.0, rings=6, segments=12)
        # the unit sphere squashed to a dome, its pole turned onto the surface normal
        u = np.cross(n, [0.0, 1.0, 0.0])
        u /= np.linalg.norm(u)
        basis = np.stack([u, np.cross(n, u), n], 1)  # columns: x, y, z(pole) -> world
        scale = np.array([BUTTON_RADIUS, BUTTON_RADIUS, BUTTON_HEIGHT])
        verts = a["pos"][i] + (sv * scale) @ basis.T
        normals = (sn / scale) @ basis.T
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        new = {k: np.repeat(v[i: i + 1], len(sv), axis=0) for k, v in a.items()}
        new.update(pos=verts, normal=normals, color=np.tile(rgb, (len(sv), 1)), mat=np.full(len(sv), float(MAT_METAL)),
                   wall=np.ones(len(sv)))  # "wall": keeps these normals (not welded, not recomputed)
        idx = mesh.append(new)
        a = mesh.attrs
        tris.append(st + idx[0])
    mesh.triangles = np.concatenate(tris)
    return mesh


def hair_colors(pos: np.ndarray, body: Body, look: Look) -> np.ndarray:
    """(V, 3) hair colour, vertex by vertex a little lighter or darker (hairs, at the mesh's ~3 mm
    spacing on the head) and, with age, grey hairs: more at the temples."""
    rel = pos - body.eye_mid
    rng = np.random.default_rng(len(pos))  # deterministic: a look always bakes the same
    base = np.asarray(look.hair) * (1 + 0.12 * rng.standard_normal(len(pos)))[:, None]
    temples = smoothstep(0.03, 0.075, np.abs(rel[:, 0])) * smoothstep(0.06, -0.02, rel[:, 1])
    p_grey = np.clip(look.hair_grey * (0.6 + 0.8 * temples), 0, 1)
    grey = np.clip(p_grey + 0.35 * (rng.random(len(pos)) - 0.5) * (p_grey > 0), 0, 1)
    return (1 - grey[:, None]) * base + grey[:, None] * GREY_HAIR


BOB_OPEN = 64.0  # degrees either side of the face the bob leaves open (the ears are at ~95)
BOB_VOLUME = 0.008  # metres the bob stands off the head


def hair_shell(mesh: Mesh, body: Body, look: Look, rings: int = 16, segments: int = 32):
    """A bob: a sheet of hair round the back and sides of the head, over the ears, falling straight
    from the head's widest point to the jaw, open at the face. Built on the head's own shape (the
    largest radius of its vertices round a vertical axis, per angle and height). Two-sided (the
    inside darker). Returns vertices, normals, triangles and colours, to be skinned to the head."""
    pos = mesh.attrs["pos"]
    face = measure_face(mesh, body)
    head = body.group(mesh.attrs["weights"], *HEAD_BONES) > 0.5
    axis = body.eye_mid + np.array([0.0, 0.0, float(face.ears[:, 2].mean()) + 0.012])
    rel = pos[head] - axis
    ang = np.degrees(np.arctan2(rel[:, 0], rel[:, 2])) % 360  # 0 front, 90 left, 180 back
    rad = np.hypot(rel[:, 0], rel[:, 2])
    top = face.crown_y - 0.025
    bottom = face.chin_y + 0.012
    ys = np.linspace(top, bottom, rings)
    # the front edge sweeps back over the crown, so the sheet meets the scalp round its top
    open_at = BOB_OPEN + 55.0 * smoothstep(top - 0.06, top, ys)
    th = np.stack([np.linspace(o, 360 - o, segments) for o in open_at])  # (rings, segments)
    r = np.zeros((rings, segments))
    for i, y in enumerate(ys):
        near_y = np.abs(rel[:, 1] - y) < 0.012
        for k, t in enumerate(th[i]):
            sel = near_y & (np.abs((ang - t + 180) % 360 - 180) < 9)
            r[i, k] = rad[sel].max() if sel.any() else 0.0
    for i in range(rings - 2, -1, -1):  # bins with no head vertex (the crown's edge): as the row below
        r[i] = np.where(r[i] > 0, r[i], r[i + 1])
    r = np.maximum.accumulate(r, axis=0)  # hair falls straight from the widest point
    pad = np.pad(r, 1, mode="edge")  # smooth over neighbouring angles and heights
    r = sum(pad[1 + di: 1 + di + rings, 1 + dk: 1 + dk + segments] for di in (-1, 0, 1) for dk in (-1, 0, 1)) / 9
    r = r + BOB_VOLUME * (0.35 + 0.65 * smoothstep(top, top - 0.035, ys))[:, None]  # tucked into the crown
    t = np.radians(th)
    verts = np.stack([r * np.sin(t), np.broadcast_to(ys[:, None], r.shape), r * np.cos(t)], -1) + axis
    verts = verts.reshape(-1, 3)
    idx = np.arange(rings * segments).reshape(rings, segments)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    outer = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    fn = np.cross(verts[outer[:, 1]] - verts[outer[:, 0]], verts[outer[:, 2]] - verts[outer[:, 0]])
    if np.einsum("ij,ij->i", fn, verts[outer[:, 0]] - axis).mean() < 0:  # face outwards
        outer = outer[:, [0, 2, 1]]
    n = np.zeros_like(verts)
    fn = np.cross(verts[outer[:, 1]] - verts[outer[:, 0]], verts[outer[:, 2]] - verts[outer[:, 0]])
    for k in range(3):
        np.add.at(n, outer[:, k], fn)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    colors = hair_colors(verts, body, look)
    m = len(verts)
    return (np.concatenate([verts, verts]), np.concatenate([n, -n]),
            np.concatenate([outer, outer[:, [0, 2, 1]] + m]), np.concatenate([colors, 0.8 * colors]))


TOE_CAP_MARGIN = (0.006, 0.005, 0.003)  # metres added round the toes: along the foot, across it, up
TOE_CAP_RINGS, TOE_CAP_SEGMENTS = 8, 16  # the cap's facets
TOE_CAP_ROUNDNESS = 4.0  # superellipsoid exponent: 2 an ellipsoid, higher a squarer box (toes are box-like)


def toe_caps(mesh: Mesh, body: Body, look: Look) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]]:
    """The front of each shoe: a rounded box (a superellipsoid, TOE_CAP_ROUNDNESS) over the toes
    (anny's feet are bare, with toes; painted shoes showed each toe), along the foot's own
    direction, flat underneath. Returns (vertices, normals, triangles, colours, foot bone) per foot."""
    n = TOE_CAP_ROUNDNESS
    pos, w = mesh.attrs["pos"], mesh.attrs["weights"]
    out = []
    for side in ("L", "R"):
        cols = [i for i, name in enumerate(body.bone_names) if name.startswith("toe") and name.endswith(f".{side}")]
        toes = pos[w[:, cols].sum(1) > 0.5]
        if len(toes) == 0:
            continue
        foot = body.joint(f"foot.{side}")
        fwd = toes.mean(0) - foot
        fwd[1] = 0.0
        fwd /= np.linalg.norm(fwd)
        across = np.cross([0.0, 1.0, 0.0], fwd)
        basis = np.stack([across, [0.0, 1.0, 0.0], fwd], 1)  # local (x across, y up, z along) -> world
        local = toes @ basis
        lo, hi = local.min(0), local.max(0)
        centre = 0.5 * (lo + hi)
        centre[1] = lo[1]  # the sole: the cap is the dome above it
        radii = 0.5 * (hi - lo) * np.array([1.0, 2.0, 1.0])
        # grown until the front half of the toes is inside (their tips showed through a plain
        # ellipsoid's front; the back half is under the foot's own painted shoe), then the margin,
        # then circumscribing the facets (a polyhedron lies inside the surface it samples)
        q = (local - centre) / radii
        reach = ((np.abs(q[q[:, 2] > 0]) ** n).sum(1) ** (1 / n)).max(initial=1.0)
        facets = 1.0 / (np.cos(np.pi / TOE_CAP_SEGMENTS) * np.cos(np.pi / (2 * TOE_CAP_RINGS)))
        radii = (reach * radii + np.asarray(TOE_CAP_MARGIN)[[1, 2, 0]]) * facets
        d, _, st, _ = uv_sphere(np.zeros(3), 1.0, rings=TOE_CAP_RINGS, segments=TOE_CAP_SEGMENTS)
        d = d / ((np.abs(d) ** n).sum(1, keepdims=True) ** (1 / n))  # onto the unit superellipsoid
        d[:, 1] = np.where(d[:, 1] < 0, 0.05 * d[:, 1], d[:, 1])  # flat underneath
        verts = (centre + d * radii) @ basis.T
        normals = (np.sign(d) * np.abs(d) ** (n - 1) / radii) @ basis.T  # the gradient of sum |x / r|^n
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        out.append((verts, normals, st, np.tile(look.shoes, (len(d), 1)), f"foot.{side}"))
    return out


def dress(mesh: Mesh, body: Body, look: Look) -> Mesh:
    """Cut, colour, layer: returns the dressed mesh, whose attributes add "color" (V, 3) sRGB,
    "mat" (V,) material id, "wall" (V,) 1 on the layers' edge walls."""
    face = measure_face(mesh, body)
    frame = torso_frame(mesh, body)
    regions: list[str] = []

    def region(name: str, field_fn) -> None:
        nonlocal mesh
        a = mesh.attrs
        field = field_fn(a["pos"], a["pos"] - body.eye_mid, a)
        mesh, inside = cut(mesh, field)
        mesh.attrs[name] = inside.astype(np.float64)
        regions.append(name)

    head_w = lambda a: body.group(a["weights"], *HEAD_BONES)  # noqa: E731
    arm_t = lambda a: arm_coordinate(a["pos"], body.group(a["weights"], *ARM_BONES), frame)  # noqa: E731

    region("hair", lambda p, rel, a: hair_field(rel, face, head_w(a), look))
    if look.beard in ("moustache", "short"):
        region("beard", lambda p, rel, a: beard_field(rel, face, head_w(a), a["lips"], a["mouth"], look.beard))
    region("trousers", lambda p, rel, a: trousers_field(p, arm_t(a), frame))
    region("shoes", lambda p, rel, a: shoes_field(p, arm_t(a), look))
    region("top", lambda p, rel, a: top_field(p, arm_t(a), head_w(a), frame, look))
    if look.top == "coat":
        region("collar_band", lambda p, rel, a: p[:, 1] - (frame.neck[1] - 0.01))
        depth = 0.10 if look.collar is None else 0.24
        region("opening", lambda p, rel, a: opening_field(p, frame, depth, 0.40 if look.collar is None else 0.32))
    if look.collar is not None or look.top == "shirt":
        region("shirt_v", lambda p, rel, a: opening_field(p, frame, 0.075, 0.55))
    if look.neckwear is not None:
        region("neckwear", lambda p, rel, a: np.minimum(0.011 + 0.10 * (p[:, 1] - frame.neck[1] + 0.07) .clip(0, 0.1)
                                                        - np.abs(p[:, 0]), opening_field(p, frame, 0.07, 0.55)))
    if look.sleeves == "rolled":
        region("cuff", lambda p, rel, a: np.where(arm_t(a) >= 0, arm_t(a) - 1.14, -1.0))
    if look.pattern == "check":  # two sets of parallel cuts; dark where exactly one is positive
        region("check_x", lambda p, rel, a: check_lines(p[:, 0], a["top"] > 0.5))
        region("check_y", lambda p, rel, a: check_lines(p[:, 1] + 0.01, a["top"] > 0.5))

    a = mesh.attrs
    pos = a["pos"]
    rel = pos - body.eye_mid
    nv = mesh.n_vertices
    R = {name: a[name] > 0.5 for name in regions}
    no = np.zeros(nv, bool)
    hair, beard, top = R["hair"], R.get("beard", no), R["top"]
    shoes = R["shoes"]
    if look.top == "coat":  # over the trousers
        trousers = R["trousers"] & ~top
    else:  # a shirt is tucked in: the waistband is over it
        trousers = R["trousers"]
        top = top & ~trousers
    opening = R.get("opening", no) & top
    shirt_v = R.get("shirt_v", no) & top & (opening if look.top == "coat" else True)
    neckwear = R.get("neckwear", no) & shirt_v
    collar_band = R.get("collar_band", no) & top & ~opening
    cuff = R.get("cuff", no) & top
    check = (R.get("check_x", no) ^ R.get("check_y", no)) & top & ~cuff

    # ---- skin: lips blended in, mouth, weathering, stubble, brows --------------------------
    skin = np.asarray(look.skin)
    lips = np.clip(a["lips"], 0, 1)[:, None]
    color = (1 - lips) * skin + lips * np.asarray(look.lips)
    mat = np.where(a["lips"] > 0.5, MAT_LIPS, MAT_SKIN).astype(np.float64)
    mouth = a["mouth"] > 0.5
    color[mouth] = MOUTH_COLOR
    color[a["tongue"] > 0.5] = TONGUE_COLOR
    mat[mouth] = MAT_MOUTH
    if look.weathered > 0:
        ax = np.abs(rel[:, 0])
        cheeks = np.exp(-(((ax - 0.04) / 0.018) ** 2 + ((rel[:, 1] - face.nose_y) / 0.02) ** 2))
        nose = np.exp(-((rel[:, 0] / 0.012) ** 2 + ((rel[:, 1] - face.nose_y) / 0.015) ** 2))
        ears = np.min(np.linalg.norm(rel[:, None] - face.ears[None], axis=2), axis=1) < face.ear_radius
        red = np.clip(0.5 * cheeks + 0.5 * nose + 0.4 * ears, 0, 1) * look.weathered
        skin_like = ~mouth
        color[skin_like] *= 1 - 0.06 * look.weathered
        color[skin_like] = (1 - 0.35 * red[skin_like, None]) * color[skin_like] + 0.35 * red[skin_like, None] * np.array(
            [0.72, 0.36, 0.30])
    hcol = hair_colors(pos, body, look)
    if look.beard == "stubble":  # shaved a few days ago: a shadow, soft at its edge
        f = beard_field(rel, face, head_w(a), a["lips"], a["mouth"], "short")
        s = (0.30 * smoothstep(-0.004, 0.008, f) * (1 + 0.25 * smooth_noise(pos, 0.003, 5)))[:, None]
        color = (1 - s) * color + s * 0.6 * hcol
    # eyebrows: a soft arch over each eye (hairs, not a hard-edged shape)
    ax = np.abs(rel[:, 0])
    arch = 0.021 + 0.004 * (1 - ((ax - 0.032) / 0.024) ** 2)
    taper = np.clip((ax - 0.008) / 0.01, 0, 1) * np.clip((0.058 - ax) / 0.012, 0, 1)
    brow = (head_w(a) > 0.5) * (rel[:, 2] > face.lips_front - 0.06) * taper * np.exp(-(((rel[:, 1] - arch) / 0.0038) ** 2))
    brow = 0.9 * brow * ~hair
    color = (1 - brow[:, None]) * color + brow[:, None] * hcol
    mat[(brow > 0.45)] = MAT_BROW

    # ---- hair and beard ----------------------------------------------------------------------
    color[hair | beard] = hcol[hair | beard]
    mat[hair | beard] = MAT_HAIR

    # ---- clothes, lowest layer first -------------------------------------------------------
    weave = 1 + 0.015 * np.random.default_rng(13).standard_normal(nv)[:, None]  # cloth is never flat

    def paint(where: np.ndarray, rgb, material: int) -> None:
        color[where] = np.asarray(rgb) * weave[where]
        mat[where] = material

    boots = look.shoe_height > BOOTS_FROM
    paint(trousers, look.trousers, MAT_TROUSERS)
    paint(shoes, look.shoes, MAT_SHOES)
    paint(top, look.top_color, MAT_SHIRT)
    paint(check, look.pattern_color, MAT_SHIRT)
    paint(cuff, np.asarray(look.top_color) * 0.8, MAT_SHIRT)
    paint(collar_band, np.asarray(look.top_color) * 1.08, MAT_SHIRT)
    paint(opening, look.inner, MAT_SHIRT)
    paint(shirt_v, look.collar if look.collar is not None else look.skin, MAT_SHIRT)
    if look.collar is None:  # an open shirt: skin in its V
        color[shirt_v], mat[shirt_v] = skin, MAT_SKIN
    paint(neckwear, look.neckwear if look.neckwear is not None else look.skin, MAT_SHIRT)

    # ---- layers ----------------------------------------------------------------------------
    offset = np.zeros(nv)
    crown = smoothstep(0.0, 0.05, hair_field(rel, face, head_w(a), look))
    offset[hair] = LAYER["hair"] + look.hair_volume * crown[hair]
    if beard.any():
        depth = np.clip(beard_field(rel, face, head_w(a), a["lips"], a["mouth"], look.beard) / 0.01, 0, 1)
        offset[beard] = LAYER["beard"] + BEARD_DEPTH * depth[beard]
    offset[trousers] = LAYER["trousers"]
    offset[shoes] = LAYER["boots" if boots else "shoes"]
    offset[top] = LAYER["coat" if look.top == "coat" else "shirt"]
    offset[collar_band] = LAYER["collar"]
    offset[opening] = LAYER["inner"]
    offset[shirt_v & (look.collar is not None)] = LAYER["inner_shirt"] if look.top == "coat" else LAYER["shirt"]
    if look.collar is None and look.top != "coat":
        offset[shirt_v] = 0.0
    offset[neckwear] = LAYER["neckwear"]
    offset[cuff] = LAYER["cuff"]
    a["color"], a["mat"] = np.clip(color, 0, 1), mat
    mesh = offset_with_walls(mesh, offset)
    if look.buttons is not None:
        on = np.zeros(mesh.n_vertices, bool)
        on[: len(top)] = top & ~opening & ~collar_band
        mesh = add_buttons(mesh, button_centres(mesh.attrs["pos"], on, frame, look), look.buttons)
    return mesh
