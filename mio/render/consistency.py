"""Multi-view consistency of the renderer (§7.1 "Renderer", §7.5), two protocols on views rendered from
the *same* motion state:

- `reprojection_consistency`, the geometric one: each view is warped into every other through the
  known geometry (depth from the parametric mesh, any renderer's images), and PSNR / SSIM
  (mio.metrics.render) are taken where the surface is visible in both. A renderer whose views agree
  scores high; identity drift or view-dependent artefacts lower it.
- `pairwise_view_similarity`, the paper's: LPIPS and CLIP similarity between the views (needs those
  networks as files, mio.metrics.networks).
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from mio.core.errors import InputError
from mio.metrics.networks import ClipSimilarity
from mio.metrics.render import as_float_image, lpips_model, psnr, ssim
from mio.render.camera import Camera, project


def unproject(camera: Camera, depth: np.ndarray) -> np.ndarray:
    """(H, W) depth (metres along the view axis; inf = background) -> (H, W, 3) world points of the
    pixel centres (NaN where no surface)."""
    h, w = depth.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    z = np.where(np.isfinite(depth), depth, np.nan)
    x_cam = (xs - camera.cx) / camera.fx * z
    y_cam = ((h - ys) - camera.cy) / camera.fy * z
    p_cam = np.stack([x_cam, y_cam, -z], axis=-1)  # the camera looks down its -Z
    R = np.asarray(camera.R, np.float64)
    return (p_cam - np.asarray(camera.t, np.float64)) @ R  # R^T (p - t), row-wise


def _bilinear(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Sample (H, W, C) at continuous pixel coordinates (N, 2) (centres at +0.5)."""
    h, w = img.shape[:2]
    x = np.clip(xy[:, 0] - 0.5, 0, w - 1)
    y = np.clip(xy[:, 1] - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def warp(src_img: np.ndarray, src_depth: np.ndarray, src_cam: Camera, dst_depth: np.ndarray, dst_cam: Camera,
         tolerance: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """The source view re-seen from the destination camera: (H, W, 3) image in [0, 1] and the (H, W)
    mask of destination pixels whose surface point the source camera also sees (depth test within
    `tolerance` metres)."""
    pts = unproject(dst_cam, dst_depth).reshape(-1, 3)
    ok = np.isfinite(pts).all(1)
    uv = project(src_cam, np.where(ok[:, None], pts, 0.0))
    h, w = src_depth.shape
    inside = ok & np.isfinite(uv).all(1) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    R, t = np.asarray(src_cam.R, np.float64), np.asarray(src_cam.t, np.float64)
    z_expected = -(pts @ R.T + t)[:, 2]
    col = np.clip(np.floor(uv[:, 0]), 0, w - 1).astype(int)
    row = np.clip(np.floor(uv[:, 1]), 0, h - 1).astype(int)
    visible = inside & (np.abs(src_depth[row, col] - z_expected) < tolerance)
    out = np.zeros((len(pts), 3))
    out[visible] = _bilinear(as_float_image(src_img), uv[visible])
    return out.reshape(*dst_depth.shape, 3), visible.reshape(dst_depth.shape)


def reprojection_consistency(images: list[np.ndarray], depths: list[np.ndarray], cameras: list[Camera],
                             min_overlap: float = 0.01) -> dict[str, float]:
    """Warp every view into every other through the known geometry; PSNR / SSIM where both see the
    surface. Returns medians over ordered view pairs and the mean overlap (share of pixels)."""
    if not (len(images) == len(depths) == len(cameras)) or len(images) < 2:
        raise InputError("multi-view consistency needs >= 2 views, each with its depth and camera")
    ps, ss, overlap = [], [], []
    for i, j in permutations(range(len(images)), 2):
        warped, mask = warp(images[i], depths[i], cameras[i], depths[j], cameras[j])
        frac = float(mask.mean())
        overlap.append(frac)
        if frac < min_overlap:
            continue
        target = as_float_image(images[j]) * mask[..., None]
        ps.append(psnr(warped, target, mask))
        ss.append(ssim(warped, target, mask))
    return {
        "pairs": len(ps),
        "psnr_db": float(np.median(ps)) if ps else float("nan"),
        "ssim": float(np.median(ss)) if ss else float("nan"),
        "overlap": float(np.mean(overlap)),
    }


def pairwise_view_similarity(views: list[np.ndarray], lpips_path: str | None = None,
                             clip_path: str | None = None) -> dict[str, float]:
    """The paper's multi-view protocol (§7.1): LPIPS and CLIP similarity between views rendered from
    identical motion states, over all unordered view pairs."""
    pairs = [(i, j) for i in range(len(views)) for j in range(i + 1, len(views))]
    a, b = [views[i] for i, _ in pairs], [views[j] for _, j in pairs]
    out: dict[str, float] = {}
    if lpips_path:
        out["lpips"] = lpips_model(a, b, lpips_path)
    if clip_path:
        out["clip_similarity"] = ClipSimilarity(clip_path)(a, b)
    return out
