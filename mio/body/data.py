"""Motion dataset folders: HumanML3D's layout and BABEL's JSON, read into `MotionSample`s (§4.1, §7.4).

HumanML3D (Guo et al. 2022) folder:

    root/new_joint_vecs/<id>.npy   (T, 263) float32 features at 20 fps
    root/new_joints/<id>.npy       (T, 22, 3) joint positions (optional)
    root/texts/<id>.txt            one caption per line: "text#word/POS ...#from#to" (seconds;
                                   0#0 = the whole clip, else the caption covers [from, to))
    root/train.txt, root/test.txt  clip ids of each split (val.txt, too, if present)
    root/Mean.npy, root/Std.npy    feature statistics (optional)

BABEL (Punnakkal et al. 2021), as streaming benchmarks use it with HumanML3D features:

    babel.json  {sid: {"dur": seconds, "frame_ann": {"labels": [{"proc_label", "start_t", "end_t"}]}}}
    feats/<sid>.npy  (T, 263) at 20 fps

Whole-clip captions of one HumanML3D clip are alternatives (one segment, `Segment.alternatives`);
time-tagged captions that follow each other become a multi-prompt sequence. The project's own
motion library (`mio.body.motionlib`) is written in the HumanML3D layout by `write_humanml3d`,
with each prompt as a time-tagged caption, so training reads real and synthetic data the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mio.body.motionlib import MotionSample, Segment
from mio.core.errors import InputError
from mio.core.layouts import BODY_FPS, HUMANML3D


def _caption_line(text: str, start: float, end: float) -> str:
    tokens = " ".join(f"{w}/OTHER" for w in text.lower().replace(".", "").split())
    return f"{text}#{tokens}#{start:.2f}#{end:.2f}"


def write_humanml3d(samples: list[MotionSample], root: str | Path, split: str, *, prefix: str | None = None,
                    fps: float = BODY_FPS) -> list[str]:
    """Write samples in HumanML3D's layout (appending their ids to root/<split>.txt); returns the ids."""
    root = Path(root)
    for sub in ("new_joint_vecs", "new_joints", "texts"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    prefix = prefix or split
    ids = []
    for i, s in enumerate(samples):
        cid = f"{prefix}_{i:06d}"
        np.save(root / "new_joint_vecs" / f"{cid}.npy", s.features.astype(np.float32))
        np.save(root / "new_joints" / f"{cid}.npy", s.joints.astype(np.float32))
        lines = [_caption_line(g.text, g.start / fps, g.end / fps) for g in s.segments]
        (root / "texts" / f"{cid}.txt").write_text("\n".join(lines) + "\n")
        ids.append(cid)
    (root / f"{split}.txt").parent.mkdir(parents=True, exist_ok=True)
    with (root / f"{split}.txt").open("a") as f:
        f.write("".join(f"{c}\n" for c in ids))
    return ids


def write_stats(root: str | Path, split: str = "train") -> None:
    """Mean.npy / Std.npy over a split's features (HumanML3D's files)."""
    root = Path(root)
    ids = (root / f"{split}.txt").read_text().split()
    feats = np.concatenate([np.load(root / "new_joint_vecs" / f"{c}.npy") for c in ids])
    np.save(root / "Mean.npy", feats.mean(0).astype(np.float32))
    np.save(root / "Std.npy", feats.std(0).astype(np.float32))


def _segments_from_captions(lines: list[str], n_frames: int, fps: float) -> list[Segment]:
    whole: list[str] = []
    tagged: list[tuple[int, str]] = []
    for line in lines:
        parts = line.strip().split("#")
        if not parts or not parts[0]:
            continue
        text = parts[0].strip()
        start = float(parts[2]) if len(parts) > 2 and parts[2] not in ("", "nan") else 0.0
        end = float(parts[3]) if len(parts) > 3 and parts[3] not in ("", "nan") else 0.0
        if start == 0.0 and end == 0.0:
            whole.append(text)
        else:
            tagged.append((int(round(start * fps)), text))
    if whole:  # HumanML3D proper: several descriptions of the whole clip
        return [Segment("", whole[0], 0, n_frames, tuple(whole[1:]))]
    tagged.sort()
    segs = []
    for i, (start, text) in enumerate(tagged):
        end = tagged[i + 1][0] if i + 1 < len(tagged) else n_frames
        segs.append(Segment("", text, min(start, n_frames), min(end, n_frames)))
    return segs


def load_humanml3d(root: str | Path, split: str = "train", *, limit: int | None = None,
                   min_frames: int = 8, fps: float = BODY_FPS) -> list[MotionSample]:
    """Read a HumanML3D-layout folder's split into samples (clips shorter than `min_frames` skipped)."""
    root = Path(root)
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise InputError(f"{root} is not a HumanML3D folder: no {split}.txt")
    out = []
    for cid in split_file.read_text().split():
        feat_path = root / "new_joint_vecs" / f"{cid}.npy"
        if not feat_path.is_file():
            continue
        feats = HUMANML3D.check(np.load(feat_path).astype(np.float32))
        if len(feats) < min_frames:
            continue
        joints_path = root / "new_joints" / f"{cid}.npy"
        joints = np.load(joints_path).astype(np.float32) if joints_path.is_file() else np.zeros((0, 22, 3), np.float32)
        text_path = root / "texts" / f"{cid}.txt"
        lines = text_path.read_text().splitlines() if text_path.is_file() else []
        segs = _segments_from_captions(lines, len(feats), fps)
        if not segs:
            continue
        out.append(MotionSample(feats, joints[: len(feats)], segs))
        if limit is not None and len(out) >= limit:
            break
    return out


def load_babel(json_path: str | Path, feats_dir: str | Path, *, fps: float = BODY_FPS,
               limit: int | None = None) -> list[MotionSample]:
    """BABEL frame annotations + per-sequence HumanML3D features -> multi-prompt samples."""
    ann = json.loads(Path(json_path).read_text())
    out = []
    for sid, item in ann.items():
        path = Path(feats_dir) / f"{sid}.npy"
        if not path.is_file():
            continue
        feats = HUMANML3D.check(np.load(path).astype(np.float32))
        labels = (item.get("frame_ann") or {}).get("labels") or (item.get("seq_ann") or {}).get("labels") or []
        spans = sorted((float(lb.get("start_t", 0.0)), lb.get("proc_label") or lb.get("raw_label") or "")
                       for lb in labels)
        segs = []
        for i, (start, text) in enumerate(spans):
            s = min(int(round(start * fps)), len(feats))
            e = min(int(round(spans[i + 1][0] * fps)), len(feats)) if i + 1 < len(spans) else len(feats)
            if e > s and text:
                segs.append(Segment("", text, s, e))
        if segs:
            segs[0].start = 0
            out.append(MotionSample(feats, np.zeros((0, 22, 3), np.float32), segs))
        if limit is not None and len(out) >= limit:
            break
    return out


def write_babel(samples: list[MotionSample], json_path: str | Path, feats_dir: str | Path,
                fps: float = BODY_FPS) -> None:
    """Write samples as BABEL-style frame annotations + feature files."""
    feats_dir = Path(feats_dir)
    feats_dir.mkdir(parents=True, exist_ok=True)
    ann = {}
    for i, s in enumerate(samples):
        sid = f"{i:06d}"
        np.save(feats_dir / f"{sid}.npy", s.features.astype(np.float32))
        ann[sid] = {"dur": len(s.features) / fps, "frame_ann": {"labels": [
            {"proc_label": g.text, "raw_label": g.text, "start_t": g.start / fps, "end_t": g.end / fps}
            for g in s.segments]}}
    Path(json_path).write_text(json.dumps(ann))


__all__ = ["load_babel", "load_humanml3d", "write_babel", "write_humanml3d", "write_stats"]


def build_library(root: str | Path, n_train: int = 800, n_test: int = 150, *, seed: int = 0,
                  progress: bool = True, splits: tuple[str, ...] = ("train", "test")) -> Path:
    """Render the procedural motion library (`mio.body.motionlib`) into a HumanML3D-layout folder
    (train / test splits, Mean/Std) plus BABEL-style annotations of the test split. Idempotent:
    an existing complete folder is kept. splits=("test",) renders the held-out split alone (what
    `mio bench body` needs), the same clips as a full library of the same n_test and seed."""
    from mio.body.motionlib import make_split

    root = Path(root)
    done = root / ("DONE" if "train" in splits else "DONE-" + "-".join(splits))
    if done.is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    chunks = 20
    jobs = [(split, lo) for split, total in (("train", n_train), ("test", n_test)) if split in splits
            for lo in range(0, total, chunks)]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="motion library", unit=f"x{chunks} seq")
    test_samples: list[MotionSample] = []
    for split, lo in jobs:
        n = min(chunks, (n_train if split == "train" else n_test) - lo)
        prefix = f"{split}{lo:06d}"
        part = root / "parts" / f"{prefix}.txt"  # a finished chunk: resume skips it
        if part.is_file() and split == "train":
            continue
        samples = make_split(split, n, seed=seed, offset=lo, seconds=(2.0, 4.0))
        part.unlink(missing_ok=True)  # a test chunk is rendered again on resume: do not list it twice
        write_humanml3d(samples, root, f"parts/{prefix}", prefix=prefix)
        if split == "test":
            test_samples += samples
    for split in splits:
        parts = sorted((root / "parts").glob(f"{split}0*.txt"))
        (root / f"{split}.txt").write_text("".join(p.read_text() for p in parts))
    if "train" in splits:
        write_stats(root, "train")
    if "test" in splits:
        write_babel(test_samples, root / "babel_test.json", root / "babel_feats")
    done.write_text("ok\n")
    return root
