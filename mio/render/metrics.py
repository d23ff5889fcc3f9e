"""Renderer metrics (paper §7.1 "Renderer", §7.5): SSIM, PSNR, multi-view consistency; LPIPS, CLIP,
FID and FVD when their networks are given by path.

- `psnr`, `ssim`: full-reference image quality (SSIM: Wang et al. 2004, 11x11 Gaussian window,
  sigma 1.5, K1 = 0.01, K2 = 0.03, on each RGB channel, averaged).
- Multi-view consistency, two protocols on views rendered from the *same* motion state:
  `reprojection_consistency` - the geometric one: each view is warped into every other through the
  known geometry (depth from the parametric mesh, any renderer's images), and PSNR / SSIM are
  taken where the surface is visible in both. A renderer whose views agree scores high; identity
  drift or view-dependent artefacts lower it. `pairwise_view_similarity` - the paper's: LPIPS and
  CLIP similarity between the views (needs those networks).
- `frechet_distance` on features; FID uses an image feature network, FVD a video one (I3D).

Networks load from local files only (no downloads): LPIPS, Inception (FID) and I3D (FVD) as ONNX
files run by onnxruntime (export one with `torch.onnx.export`), CLIP as a transformers folder of
safetensors. TorchScript and torch.export files are refused: loading either unpickles, and a
metric network is a file someone else made (issue 20).
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path

import numpy as np

from mio.core.errors import InputError
from mio.render.camera import Camera, project


def _as_float(img: np.ndarray) -> np.ndarray:
    """uint8 (0-255) or float (0-1) images -> float64 in [0, 1]."""
    img = np.asarray(img)
    return img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1] (or uint8), optionally over a (H, W) mask."""
    a, b = _as_float(a), _as_float(b)
    if a.shape != b.shape:
        raise InputError(f"images differ in shape: {a.shape} vs {b.shape}")
    err = (a - b) ** 2
    if mask is not None:
        if not mask.any():
            return float("nan")
        err = err[mask]
    mse = float(err.mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of (H, W, C) over H and W."""
    from scipy.ndimage import correlate1d

    y = correlate1d(x, g, axis=0, mode="constant")
    y = correlate1d(y, g, axis=1, mode="constant")
    r = len(g) // 2
    return y[r : y.shape[0] - r, r : y.shape[1] - r]


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H - 10, W - 10) SSIM map averaged over channels (images (H, W, 3) in [0, 1] or uint8)."""
    a, b = _as_float(a), _as_float(b)
    if a.shape != b.shape:
        raise InputError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if min(a.shape[:2]) < 11:
        raise InputError(f"SSIM needs images of at least 11x11 pixels, got {a.shape[:2]}")
    g = _gaussian_window()
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _filter(a, g), _filter(b, g)
    var_a = _filter(a * a, g) - mu_a**2
    var_b = _filter(b * b, g) - mu_b**2
    cov = _filter(a * b, g) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(-1)


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM; with a (H, W) mask, over the windows centred inside it."""
    s = ssim_map(a, b)
    if mask is None:
        return float(s.mean())
    m = np.asarray(mask)[5:-5, 5:-5]
    return float(s[m].mean()) if m.any() else float("nan")


# ---------------------------------------------------------------------------------------------
# Multi-view consistency
# ---------------------------------------------------------------------------------------------


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
    out[visible] = _bilinear(_as_float(src_img), uv[visible])
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
        target = _as_float(images[j]) * mask[..., None]
        ps.append(psnr(warped, target, mask))
        ss.append(ssim(warped, target, mask))
    return {
        "pairs": len(ps),
        "psnr_db": float(np.median(ps)) if ps else float("nan"),
        "ssim": float(np.median(ss)) if ss else float("nan"),
        "overlap": float(np.mean(overlap)),
    }


# ---------------------------------------------------------------------------------------------
# Learned metrics from local files
# ---------------------------------------------------------------------------------------------


def _images(images: list[np.ndarray]) -> np.ndarray:
    x = np.stack([_as_float(im) for im in images]).astype(np.float32)  # (N, H, W, 3) in [0, 1]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, 3, H, W)


def _load_onnx(path: str | Path, what: str, n_inputs: int):
    """A metric network from a local ONNX file -> f(*arrays) -> first output. ONNX is a graph of
    operators and tensors, never code, so a file from elsewhere cannot run anything on load."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} model file {path} does not exist")
    if path.suffix.lower() != ".onnx":
        raise InputError(f"{what} model {path}: Mio runs metric networks only as .onnx files (TorchScript and "
                         "torch.export files unpickle when loaded; convert with torch.onnx.export)")
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise InputError(f"{path} is not a readable ONNX {what} model ({' '.join(str(e).split())[:300]})") from None
    names = [i.name for i in session.get_inputs()]
    if len(names) != n_inputs:
        raise InputError(f"{what} model {path} takes {len(names)} input(s); it must take {n_inputs}")

    def run(*arrays: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, dict(zip(names, arrays, strict=True)))[0])

    return run


def lpips(a: list[np.ndarray], b: list[np.ndarray], model_path: str | Path) -> float:
    """Mean LPIPS between image pairs; the model is an ONNX graph (x, y in [-1, 1]) -> distance."""
    net = _load_onnx(model_path, "LPIPS", 2)
    return float(net(_images(a) * 2 - 1, _images(b) * 2 - 1).astype(np.float64).mean())


class ClipSimilarity:
    """Cosine similarity of CLIP image embeddings (transformers CLIPModel from a local folder)."""

    def __init__(self, path: str | Path) -> None:
        from transformers import CLIPImageProcessor, CLIPModel

        self.model = CLIPModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True).eval()
        self.processor = CLIPImageProcessor.from_pretrained(str(path), local_files_only=True)

    def embed(self, images: list[np.ndarray]):
        import torch

        inputs = self.processor(images=[np.asarray(im) for im in images], return_tensors="pt")
        with torch.no_grad():
            e = self.model.get_image_features(**inputs)
        e = getattr(e, "pooler_output", e)
        return torch.nn.functional.normalize(e, dim=-1)

    def __call__(self, a: list[np.ndarray], b: list[np.ndarray]) -> float:
        return float((self.embed(a) * self.embed(b)).sum(-1).mean())


def pairwise_view_similarity(views: list[np.ndarray], lpips_path: str | None = None,
                             clip_path: str | None = None) -> dict[str, float]:
    """The paper's multi-view protocol (§7.1): LPIPS and CLIP similarity between views rendered from
    identical motion states, over all unordered view pairs."""
    pairs = [(i, j) for i in range(len(views)) for j in range(i + 1, len(views))]
    a, b = [views[i] for i, _ in pairs], [views[j] for _, j in pairs]
    out: dict[str, float] = {}
    if lpips_path:
        out["lpips"] = lpips(a, b, lpips_path)
    if clip_path:
        out["clip_similarity"] = ClipSimilarity(clip_path)(a, b)
    return out


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) between two (N, D) feature sets (FID/FVD)."""
    from scipy.linalg import sqrtm

    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise InputError(f"Frechet distance needs two (N >= 2, D) feature sets, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = sqrtm(sa @ sb)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa + sb - 2 * covmean))


def fid(real: list[np.ndarray], fake: list[np.ndarray], model_path: str | Path) -> float:
    """FID with an ONNX image feature network: (N, 3, H, W) in [0, 1] -> (N, D) features."""
    net = _load_onnx(model_path, "FID feature", 1)
    fa, fb = net(_images(real)), net(_images(fake))
    return frechet_distance(fa.reshape(len(fa), -1), fb.reshape(len(fb), -1))


def fvd(real: list[np.ndarray], fake: list[np.ndarray], model_path: str | Path) -> float:
    """FVD with an ONNX I3D: videos (T, H, W, 3) each -> input (N, 3, T, H, W) in [-1, 1]."""
    net = _load_onnx(model_path, "I3D", 1)

    def feats(videos: list[np.ndarray]) -> np.ndarray:
        x = np.stack([_images(list(v)).transpose(1, 0, 2, 3) for v in videos]) * 2 - 1  # (N, 3, T, H, W)
        f = net(np.ascontiguousarray(x, dtype=np.float32))
        return f.reshape(len(f), -1)

    return frechet_distance(feats(real), feats(fake))
