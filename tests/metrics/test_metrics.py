"""Known-answer tests for every §7.1 metric (hand-computed cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mio.core.errors import InputError
from mio.metrics import body, face, render, talker, thinker
from mio.metrics.frechet import fid_from_features, frechet_distance

SR = 16000


def _speechlike(seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    """A voiced, amplitude-modulated harmonic tone that PESQ's VAD accepts as an utterance."""
    t = np.arange(int(seconds * sr)) / sr
    x = np.sin(2 * np.pi * 150 * t) + 0.5 * np.sin(2 * np.pi * 300 * t) + 0.3 * np.sin(2 * np.pi * 450 * t)
    return 0.3 * x * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))


# --- Fréchet distance (FID, FVD, F-FID, P-FID, motion FID) ---------------------------------------
def test_frechet_distance_diagonal_gaussians():
    # |(1,2)|^2 = 5; Tr(S1 + S2) = 10; (S1 S2)^{1/2} = diag(2, 2) -> trace 4; 5 + 10 - 8 = 7
    d = frechet_distance(np.array([0.0, 0.0]), np.diag([1.0, 4.0]), np.array([1.0, 2.0]), np.diag([4.0, 1.0]))
    assert d == pytest.approx(7.0, abs=1e-9)


def test_fid_of_shifted_features_is_squared_shift():
    x = np.random.default_rng(0).standard_normal((200, 3))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-6)
    assert fid_from_features(x, x + np.array([3.0, 0.0, 0.0])) == pytest.approx(9.0, abs=1e-6)


# --- Talker ------------------------------------------------------------------------------------
def test_stoi_of_identical_signal_is_one():
    x = _speechlike()
    assert talker.stoi(x, x, SR) == pytest.approx(1.0, abs=1e-6)


def test_pesq_of_identical_signal_is_the_scale_maximum():
    x = _speechlike()
    assert talker.pesq(x, x, SR, "nb") == pytest.approx(4.549, abs=0.01)  # P.862 MOS-LQO ceiling
    assert talker.pesq(x, x, SR, "wb") == pytest.approx(4.644, abs=0.01)  # P.862.2 ceiling
    noisy = x + 0.1 * np.random.default_rng(0).standard_normal(len(x))
    assert talker.pesq(x, noisy, SR, "wb") < 2.0
    with pytest.raises(ValueError, match="mode"):
        talker.pesq(x, x, SR, "xx")


def test_pesq_resamples_24khz_input():
    x = _speechlike(sr=24000)
    assert talker.pesq(x, x, 24000, "wb") == pytest.approx(4.644, abs=0.01)


def test_speaker_similarity_with_a_pluggable_embedding():
    def embed(x: np.ndarray, sr: int) -> np.ndarray:  # toy "speaker embedding": the first two samples
        return x[:2]

    ref, other = np.array([1.0, 0.0, 5.0]), np.array([1.0, 1.0, -3.0])
    assert talker.speaker_similarity(ref, other, SR, embed) == pytest.approx(1 / math.sqrt(2))
    assert talker.speaker_similarity(ref, ref, SR, embed) == pytest.approx(1.0)


def test_wer_and_cer():
    # one substitution (sat -> sit) and one deletion (the) over 6 reference words
    assert talker.wer("the cat sat on the mat", "the cat sit on mat") == pytest.approx(2 / 6)
    assert talker.wer("The cat, sat.", "the cat sat") == 0.0  # case and punctuation are normalised
    assert talker.wer("a b", "a b c d") == pytest.approx(1.0)  # insertions count: can exceed 100 % too
    assert talker.cer("abcd", "abed") == pytest.approx(0.25)
    assert talker.cer("你好世界", "你好世") == pytest.approx(0.25)
    with pytest.raises(ValueError):
        talker.wer("", "x")


def test_dnsmos_ranks_clean_speechlike_above_noise():
    x = _speechlike()
    clean = talker.dnsmos(x, SR)
    noise = talker.dnsmos(0.1 * np.random.default_rng(0).standard_normal(len(x)), SR)
    assert set(clean) == {"ovrl_mos", "sig_mos", "bak_mos", "p808_mos"}
    assert 1.0 <= noise["ovrl_mos"] < clean["ovrl_mos"] <= 5.0


def test_utmos_from_a_given_model_resamples_to_16k():
    # a stand-in "model": seconds of 16 kHz audio it was given -> 24000 samples at 24 kHz = 1.0
    assert talker.utmos(np.ones(24000), 24000, lambda w: len(w) / 16000) == pytest.approx(1.0)
    with pytest.raises(InputError, match="does not exist"):
        talker.utmos(np.ones(16000), SR, "/nonexistent/utmos.onnx")


def test_talker_rejects_bad_audio():
    with pytest.raises(ValueError):
        talker.stoi(np.array([np.nan, 1.0]), np.ones(2), SR)


# --- Face --------------------------------------------------------------------------------------
def test_lve_is_mean_over_frames_of_max_lip_error():
    gt = np.zeros((2, 3, 3))
    pred = gt.copy()
    pred[0, 0] = (3, 4, 0)  # frame 0: lip errors 5 and 1 -> max 5
    pred[0, 1] = (1, 0, 0)
    pred[1, 1] = (0, 2, 0)  # frame 1: lip errors 0 and 2 -> max 2
    pred[:, 2] = (100, 0, 0)  # not a lip vertex
    assert face.lip_vertex_error(pred, gt, np.array([0, 1])) == pytest.approx(3.5)
    # MHD: mean of all 6 vertex errors = (5 + 1 + 100 + 0 + 2 + 100) / 6
    assert face.mean_head_distance(pred, gt) == pytest.approx(208 / 6)


def test_fdd_pdd_jdd_dynamic_deviation():
    gt = np.zeros((2, 2, 3))
    gt[1, 0] = (0, 2, 0)  # vertex 0 motion norms [0, 2] -> std 1; vertex 1 still -> std 0
    pred = np.zeros_like(gt)  # a frozen face: std 0 everywhere
    assert face.fdd(pred, gt, upper_idx=np.array([0])) == pytest.approx(1.0)
    assert face.fdd(pred, gt, upper_idx=np.array([0, 1])) == pytest.approx(0.5)
    pose_gt = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.2]])  # norms [0, 0.2] -> std 0.1
    assert face.pdd(np.zeros((2, 3)), pose_gt) == pytest.approx(0.1)
    assert face.jdd(pose_gt, pose_gt) == 0.0


def test_f_fid_and_p_fid():
    x = np.random.default_rng(1).standard_normal((300, 2))
    assert face.feature_fid(x + np.array([0.0, 2.0]), x) == pytest.approx(4.0, abs=1e-6)


# --- Body --------------------------------------------------------------------------------------
def test_r_precision():
    text = np.array([[0.0, 0.0], [10.0, 0.0]])
    good = np.array([[1.0, 0.0], [9.0, 0.0]])
    swapped = good[::-1]
    np.testing.assert_allclose(body.r_precision(text, good, top_k=2, batch=2), [1.0, 1.0])
    np.testing.assert_allclose(body.r_precision(text, swapped, top_k=2, batch=2), [0.0, 1.0])
    with pytest.raises(ValueError):
        body.r_precision(text, good, batch=32)


def test_mm_dist_and_diversity():
    assert body.mm_dist(np.zeros((2, 2)), np.array([[3.0, 4.0], [0.0, 1.0]])) == pytest.approx(3.0)
    m = np.random.default_rng(0).standard_normal((50, 4))
    assert body.diversity(np.ones((50, 4))) == 0.0
    assert body.diversity(3 * m) == pytest.approx(3 * body.diversity(m))
    assert body.motion_fid(m, m) == pytest.approx(0.0, abs=1e-6)


def test_jerk_of_a_cubic_trajectory():
    fps = 20.0
    t = np.arange(30) / fps
    joints = np.zeros((30, 2, 3))
    joints[:, 0, 0] = t**3  # d^3/dt^3 = 6 m/s^3; joint 1 still -> mean over joints 3
    np.testing.assert_allclose(body.jerk_curve(joints, fps), 3.0, rtol=1e-6)


def test_peak_jerk_and_area_under_jerk_at_a_transition():
    fps = 10.0
    joints = np.zeros((20, 1, 3))
    joints[10:, 0, 0] = 1.0  # a step at frame 10: third differences 1, -2, 1 (x fps^3) at curve 7, 8, 9
    pj, auj = body.transition_jerk(joints, fps, transitions=[8], window=2)
    assert pj == pytest.approx(2000.0)  # |-2| * 10^3
    assert auj == pytest.approx((1000 + 2000 + 1000) / fps)


# --- Renderer ----------------------------------------------------------------------------------
def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    assert render.psnr(a + 1, a) == pytest.approx(10 * math.log10(255**2))  # MSE 1 on the 0-255 scale
    assert render.psnr(a, a) == float("inf")


def test_ssim_known_cases():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert render.ssim(img, img) == pytest.approx(1.0)
    # constant images: variance terms vanish -> (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1), on [0, 1]
    c1 = 0.01**2
    a, b = 100 / 255, 50 / 255
    expected = (2 * a * b + c1) / (a**2 + b**2 + c1)
    assert render.ssim(np.full((16, 16), a), np.full((16, 16), b)) == pytest.approx(expected)


def test_lpips_formula_with_pluggable_features():
    def features(img):  # one layer, 2 channels, 1x1: the image itself
        return [np.asarray(img, float).reshape(2, 1, 1)]

    w = [np.array([0.5, 0.25])]
    # unit-normalised [1,0] vs [0,1]: squared differences [1, 1] weighted -> 0.75
    assert render.lpips(np.array([1.0, 0.0]), np.array([0.0, 1.0]), features, w) == pytest.approx(0.75)
    assert render.lpips(np.array([2.0, 0.0]), np.array([1.0, 0.0]), features, w) == pytest.approx(0.0)


def test_clip_similarity_fid_fvd_flicker():
    assert render.clip_similarity(np.array([1.0, 0.0]), np.array([1.0, 1.0]), lambda x: x) == pytest.approx(
        1 / math.sqrt(2))
    x = np.random.default_rng(2).standard_normal((100, 3))
    assert render.image_fid(x, x + 1.0) == pytest.approx(3.0, abs=1e-6)
    assert render.fvd(x, x + 2.0) == pytest.approx(12.0, abs=1e-6)
    frames = np.stack([np.zeros((2, 2, 3)), np.full((2, 2, 3), 10.0)])
    assert render.temporal_flicker(frames) == pytest.approx(10.0)


# --- Thinker -----------------------------------------------------------------------------------
def test_characterbox_aggregation():
    scores = {m: [3.0, 5.0] for m in thinker.CHARACTERBOX_METRICS}
    r = thinker.characterbox_score(scores)
    assert r["average"] == pytest.approx(4.0)
    assert r["per_metric"]["KA"] == {"mean": 4.0, "sd": pytest.approx(math.sqrt(2))}
    with pytest.raises(ValueError, match="missing"):
        thinker.characterbox_score({"KA": [3.0]})
    with pytest.raises(ValueError):
        thinker.characterbox_score({m: [6.0] for m in thinker.CHARACTERBOX_METRICS})


def test_tt_and_rt_are_shares_of_correct_answers():
    assert thinker.timeline_coherence([1, 0, 1, 1]) == pytest.approx(0.75)
    assert thinker.robustness([True, False]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        thinker.robustness([2])
