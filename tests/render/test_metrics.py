"""Renderer metrics: PSNR, SSIM, Frechet distance, reprojection warping, metric networks by path."""

import numpy as np
import pytest

from mio.core.errors import InputError
from mio.metrics.frechet import fid_from_features
from mio.metrics.render import psnr, ssim
from mio.render.camera import Camera
from mio.render.consistency import warp


def _image(seed=0, size=48):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * x), np.cos(5 * y), x * y], -1) * 0.4 + 0.5
    return np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1)


def test_psnr_and_ssim_known_values():
    a = _image()
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a + 0.1, 0, 1)
    assert psnr(a, np.clip(a + 0.1, -1, 2)) == pytest.approx(20.0, abs=1e-6)  # MSE 0.01
    noisy = np.clip(a + np.random.default_rng(1).normal(0, 0.1, a.shape), 0, 1)
    assert ssim(a, noisy) < ssim(a, b) < 1.0 and ssim(a, noisy) < 0.9
    u8 = (a * 255).round().astype(np.uint8)
    assert psnr(u8, u8) == float("inf") and 0 < psnr(u8, (noisy * 255).astype(np.uint8)) < 30
    with pytest.raises(InputError):
        ssim(a, a[:20])


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert fid_from_features(a, rng.normal(size=(4000, 3))) < 0.02
    assert fid_from_features(a, a + [2.0, 0, 0]) == pytest.approx(4.0, rel=1e-6)


def test_warp_into_the_same_camera_is_the_identity():
    cam = Camera.look_at([0, 0, 2], [0, 0, 0], 32, 32)
    img = _image(size=32)
    depth = np.full((32, 32), 2.0, np.float32)  # a wall facing the camera
    depth[:, :4] = np.inf  # no surface on the left
    out, mask = warp(img, depth, cam, depth, cam)
    assert mask[:, 4:].all() and not mask[:, :4].any()
    np.testing.assert_allclose(out[mask], img[mask], atol=1e-9)


def test_warp_respects_occlusion():
    cam = Camera.look_at([0, 0, 2], [0, 0, 0], 32, 32)
    near = np.full((32, 32), 1.0, np.float32)  # the source saw something nearer than the target's surface
    far = np.full((32, 32), 2.0, np.float32)
    _, mask = warp(_image(size=32), near, cam, far, cam)
    assert not mask.any()


def _onnx_file(path, nodes, inputs, output="out"):
    """An ONNX model written with the onnx package's own builders to the ONNX operator spec (opset
    17), standing in for an exported LPIPS / Inception / I3D network."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "metric",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime >= 1.18 reads
    onnx.save(model, str(path))
    return path


def test_metric_networks_run_from_onnx_files(tmp_path):
    pytest.importorskip("onnxruntime")
    from onnx import helper

    from mio.metrics.render import fid_model as fid
    from mio.metrics.render import fvd_model as fvd
    from mio.metrics.render import lpips_model as lpips

    # LPIPS stand-in: mean |x - y| over channels and pixels, per pair
    l1 = _onnx_file(tmp_path / "lpips.onnx", [
        helper.make_node("Sub", ["x", "y"], ["d"]), helper.make_node("Abs", ["d"], ["a"]),
        helper.make_node("ReduceMean", ["a"], ["out"], axes=[1, 2, 3], keepdims=0)],
        [("x", ["N", 3, "H", "W"]), ("y", ["N", 3, "H", "W"])])
    # feature stand-in: per-channel spatial means (Inception: N,3,H,W; I3D: N,3,T,H,W)
    feats = _onnx_file(tmp_path / "feats.onnx", [helper.make_node("ReduceMean", ["x"], ["out"], axes=[2, 3], keepdims=0)],
                       [("x", ["N", 3, "H", "W"])])
    i3d = _onnx_file(tmp_path / "i3d.onnx", [helper.make_node("ReduceMean", ["x"], ["out"], axes=[2, 3, 4], keepdims=0)],
                     [("x", ["N", 3, "T", "H", "W"])])
    imgs = [_image(s, 16) for s in range(4)]
    assert lpips(imgs, imgs, l1) == 0.0
    inverted = [1 - i for i in imgs]
    # images in [-1, 1]: |(2a-1) - (2(1-a)-1)| = |4a - 2|, its mean over these images
    expect = float(np.mean([np.abs(4 * i - 2).mean() for i in imgs]))
    assert lpips(imgs, inverted, l1) == pytest.approx(expect, rel=1e-5)
    assert fid(imgs, imgs, feats) == pytest.approx(0.0, abs=1e-6)
    assert fid(imgs, inverted, feats) > 0.01
    videos = [np.stack([_image(s + t, 16) for t in range(3)]) for s in range(3)]
    assert fvd(videos, videos, i3d) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(InputError, match="does not exist"):
        lpips(imgs, imgs, tmp_path / "missing.onnx")
    with pytest.raises(InputError, match="takes 1 input"):
        lpips(imgs, imgs, feats)
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(InputError, match="not a readable ONNX"):
        fid(imgs, imgs, tmp_path / "bad.onnx")


@pytest.mark.parametrize("name", ["lpips.pt", "i3d_torchscript.pt", "net.pt2", "net.ts", "net.pth"])
def test_torchscript_and_pickled_metric_networks_are_refused_unopened(tmp_path, name):
    import pickle

    from mio.metrics.render import fid_model as fid
    from mio.metrics.render import lpips_model as lpips

    marker = tmp_path / "ran"

    class Payload:  # a hostile "model": unpickling it runs code
        def __reduce__(self):
            return (marker.write_text, ("unpickled",))

    path = tmp_path / name
    path.write_bytes(pickle.dumps(Payload()))
    imgs = [_image(s, 16) for s in range(2)]
    for metric in (lpips, fid):
        with pytest.raises(InputError, match="only as .onnx files"):
            metric(imgs, imgs, path)
    assert not marker.exists()


@pytest.mark.slow  # imports transformers
def test_a_clip_folder_with_only_a_pickled_checkpoint_is_refused_unopened(tmp_path):
    import pickle

    transformers = pytest.importorskip("transformers")
    from mio.metrics.networks import ClipSimilarity

    cfg = transformers.CLIPConfig(text_config={"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                                               "num_attention_heads": 1},
                                  vision_config={"hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                                                 "num_attention_heads": 1, "image_size": 16, "patch_size": 8},
                                  projection_dim=8)
    cfg.save_pretrained(tmp_path)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("unpickled",))

    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(OSError, match="safetensors"):
        ClipSimilarity(tmp_path)
    assert not marker.exists()
