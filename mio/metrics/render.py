"""Renderer metrics (§7.1, Tables 6-7): SSIM, PSNR, LPIPS, CLIP similarity, FID, FVD.

SSIM and PSNR are computed here directly. LPIPS, CLIP, FID and FVD need networks (AlexNet/VGG +
linear heads, CLIP image tower, Inception-v3, I3D) that cannot be downloaded here: their formulas
are implemented over pluggable feature functions, and `OnnxModel` wraps a model file the user gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

from mio.metrics.frechet import fid_from_features
from mio.metrics.talker import cosine

SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al. 2004
SSIM_SIGMA = 1.5  # 11x11 Gaussian window (truncate at 3.5 sigma -> radius 5)


def _image(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, np.float64)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"image must be (H, W) or (H, W, C), got {a.shape}")
    return a


def psnr(img: np.ndarray, ref: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio, dB: 10 log10(R^2 / MSE); inf for identical images."""
    a, b = _image(img), _image(ref)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def ssim(img: np.ndarray, ref: np.ndarray, data_range: float = 255.0) -> float:
    """Structural similarity (Wang et al. 2004), Gaussian window sigma 1.5, mean over pixels and channels."""
    a, b = _image(img), _image(ref)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return gaussian_filter(x, sigma=(SSIM_SIGMA, SSIM_SIGMA, 0), truncate=3.5, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


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
