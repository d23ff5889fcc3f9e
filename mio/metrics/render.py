"""Renderer metrics (§7.1, Tables 6-7): PSNR, SSIM, LPIPS, CLIP similarity, FID, FVD, flicker.

- `psnr`, `ssim`: full-reference image quality on images in [0, 1] or uint8, optionally over a mask
  (SSIM: Wang et al. 2004, 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, on each RGB
  channel, averaged; windows wholly inside the image).
- LPIPS, CLIP, FID and FVD need networks (AlexNet/VGG + linear heads, CLIP's image tower,
  Inception-v3, I3D) that cannot be downloaded here: their formulas take pluggable feature
  functions (`lpips`, `clip_similarity`, `image_fid`, `fvd`), and `lpips_model`, `fid_model`,
  `fvd_model` run them from ONNX files the user gives (mio.metrics.networks).

Multi-view consistency, which needs the renderer's cameras, is mio.render.consistency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mio.core.errors import InputError
from mio.metrics.frechet import fid_from_features
from mio.metrics.networks import load_onnx
from mio.metrics.talker import cosine


def as_float_image(img: np.ndarray) -> np.ndarray:
    """uint8 (0-255) or float (0-1) images -> float64 in [0, 1]."""
    img = np.asarray(img)
    return img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1] (or uint8), optionally over a (H, W) mask."""
    a, b = as_float_image(a), as_float_image(b)
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
    a, b = as_float_image(a), as_float_image(b)
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


FeatureFn = Callable[[np.ndarray], Sequence[np.ndarray]]


def lpips(img: np.ndarray, ref: np.ndarray, features: FeatureFn, weights: Sequence[np.ndarray]) -> float:
    """LPIPS (Zhang et al. 2018): sum over layers l of mean_{h,w} || w_l * (f̂_l(x) - f̂_l(y)) ||^2,

    where f̂ is the feature map (C, H, W) unit-normalised along channels and w_l (C,) the learned
    linear head. `features(image)` returns the layer maps; both come from the user's model files."""
    fa, fb = features(img), features(ref)
    if not (len(fa) == len(fb) == len(weights)):
        raise ValueError("features of both images and the weights must have one entry per layer")
    total = 0.0
    for a, b, w in zip(fa, fb, weights, strict=True):
        a = a / (np.sqrt((a**2).sum(0, keepdims=True)) + 1e-10)
        b = b / (np.sqrt((b**2).sum(0, keepdims=True)) + 1e-10)
        total += float((np.asarray(w)[:, None, None] * (a - b) ** 2).sum(0).mean())
    return total


def clip_similarity(img: np.ndarray, ref: np.ndarray, embed: Callable[[np.ndarray], np.ndarray]) -> float:
    """CLIP image similarity: cosine of the two image embeddings."""
    return cosine(embed(img), embed(ref))


def image_fid(real_features: np.ndarray, gen_features: np.ndarray) -> float:
    """FID: Fréchet distance of Inception pool features (N, 2048) -- any image features here."""
    return fid_from_features(real_features, gen_features)


def fvd(real_video_features: np.ndarray, gen_video_features: np.ndarray) -> float:
    """FVD: Fréchet distance of per-clip video features (I3D logits in the reference code)."""
    return fid_from_features(real_video_features, gen_video_features)


def temporal_flicker(frames: np.ndarray) -> float:
    """Mean absolute frame-to-frame change (0-255 scale): the paper's "frame-to-frame variation"."""
    f = np.asarray(frames, np.float64)
    if f.ndim < 3 or len(f) < 2:
        raise ValueError("need at least two frames")
    return float(np.abs(np.diff(f, axis=0)).mean())


# --- the same metrics with networks from files -------------------------------------------------

def _images(images: list[np.ndarray]) -> np.ndarray:
    x = np.stack([as_float_image(im) for im in images]).astype(np.float32)  # (N, H, W, 3) in [0, 1]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, 3, H, W)


def lpips_model(a: list[np.ndarray], b: list[np.ndarray], model_path: str | Path) -> float:
    """Mean LPIPS between image pairs; the model is an ONNX graph (x, y in [-1, 1]) -> distance."""
    net = load_onnx(model_path, "LPIPS", 2)
    return float(net(_images(a) * 2 - 1, _images(b) * 2 - 1).astype(np.float64).mean())


def fid_model(real: list[np.ndarray], fake: list[np.ndarray], model_path: str | Path) -> float:
    """FID with an ONNX image feature network: (N, 3, H, W) in [0, 1] -> (N, D) features."""
    net = load_onnx(model_path, "FID feature", 1)
    fa, fb = net(_images(real)), net(_images(fake))
    return image_fid(fa.reshape(len(fa), -1), fb.reshape(len(fb), -1))


def fvd_model(real: list[np.ndarray], fake: list[np.ndarray], model_path: str | Path) -> float:
    """FVD with an ONNX I3D: videos (T, H, W, 3) each -> input (N, 3, T, H, W) in [-1, 1]."""
    net = load_onnx(model_path, "I3D", 1)

    def feats(videos: list[np.ndarray]) -> np.ndarray:
        x = np.stack([_images(list(v)).transpose(1, 0, 2, 3) for v in videos]) * 2 - 1  # (N, 3, T, H, W)
        f = net(np.ascontiguousarray(x, dtype=np.float32))
        return f.reshape(len(f), -1)

    return fvd(feats(real), feats(fake))
