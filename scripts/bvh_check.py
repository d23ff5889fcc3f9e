"""Check `mio body import` and `mio export motion` on BVH files you have (real mocap nobody here
wrote): for each file, import -> export -> import through the CLI and the largest joint error of the
round trip; and an independent check of the import itself, against forward kinematics written here
(not mio's): every pairwise distance between the joints mapped one-to-one, at the instants the file
and the 20 fps motion share (invariant to units, up axis, facing and mirroring).

    python scripts/bvh_check.py take1.bvh take2.bvh ...
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mio.cli import main

UNITS_M = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "cmu": 0.0254 / 0.45}


def parse(text: str):
    """(joints [(name, parent, offset, channels)], frame time, values (F, C)) of a BVH file."""
    tok = text.split()
    i, stack, joints, cur = 0, [], [], -1
    while tok[i] != "MOTION":
        t = tok[i]
        if t in ("ROOT", "JOINT", "End"):
            joints.append([tok[i + 1] if t != "End" else None, stack[-1] if stack else -1, None, []])
            cur, i = len(joints) - 1, i + 2
        elif t == "{":
            stack.append(cur)
            i += 1
        elif t == "}":
            stack.pop()
            i += 1
        elif t == "OFFSET":
            joints[cur][2] = np.array([float(x) for x in tok[i + 1:i + 4]])
            i += 4
        elif t == "CHANNELS":
            n = int(tok[i + 1])
            joints[cur][3] = tok[i + 2:i + 2 + n]
            i += 2 + n
        else:
            i += 1
    frames, dt = int(tok[i + 2]), float(tok[i + 5])
    return joints, dt, np.array([float(x) for x in tok[i + 6:]]).reshape(frames, -1)


def forward_kinematics(joints, values: np.ndarray) -> np.ndarray:
    """(F, J, 3) world positions: channels in the order listed, rotations intrinsic, in degrees."""
    n = len(values)
    pos, rot, col = np.zeros((n, len(joints), 3)), [None] * len(joints), 0
    for j, (_, parent, offset, channels) in enumerate(joints):
        t, order, angles = np.tile(offset, (n, 1)), "", []
        for c in channels:
            v = values[:, col]
            col += 1
            if c.lower().endswith("position"):
                t[:, "xyz".index(c[0].lower())] = v
            else:
                order += c[0].upper()
                angles.append(v)
        local = Rotation.from_euler(order, np.stack(angles, 1), degrees=True) if order else Rotation.identity(n)
        if parent < 0:
            pos[:, j], rot[j] = t, local
        else:
            pos[:, j], rot[j] = pos[:, parent] + rot[parent].apply(t), rot[parent] * local
    return pos


def check(path: Path, work: Path) -> str:
    a, b = work / "a.npz", work / "b.npz"
    with contextlib.redirect_stdout(sys.stderr):  # the commands' own lines go to stderr
        for step, argv in (("import", ["body", "import", str(path), "-o", str(a)]),
                           ("export", ["export", "motion", str(a), "-o", str(work / "engine")]),
                           ("re-import", ["body", "import", str(work / "engine" / "motion.bvh"), "-o", str(b)])):
            if main(argv) != 0:
                return f"{path.name}: {step} failed"
    with np.load(a) as za, np.load(b) as zb:
        trip = np.linalg.norm(za["joints"] - zb["joints"], axis=-1) * 1000
        imported, mapping, units = za["joints"], [str(m) for m in za["mapping"]], str(za["units"]).split()[0]
        feet = za["joints"][:, [7, 8, 10, 11], 1].min() * 1000
    joints, dt, values = parse(path.read_text())
    names = [j[0] for j in joints]
    direct = [(k, names.index(m)) for k, m in enumerate(mapping) if m in names]
    scale = UNITS_M.get(units) or float(units)
    src = np.arange(len(imported)) / 20.0 / dt
    keep = np.abs(src - np.round(src)) < 1e-3
    mine = forward_kinematics(joints, values)[np.round(src[keep]).astype(int)][:, [j for _, j in direct]] * scale
    theirs = imported[keep][:, [k for k, _ in direct]]
    d = lambda x: np.linalg.norm(x[:, :, None] - x[:, None], axis=-1)  # noqa: E731
    pair = np.abs(d(mine) - d(theirs)) * 1000
    return (f"{path.name}: {len(values)} frames at {1 / dt:.0f} fps, units {units}; round trip max {trip.max():.4f} mm "
            f"(mean {trip.mean():.4f}); lowest foot joint {feet:.1f} mm; vs independent FK ({len(direct)}/22 joints "
            f"one-to-one, {keep.sum()} instants): pairwise distances within {pair.max():.3f} mm")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            print(check(Path(arg), Path(tmp)), flush=True)
