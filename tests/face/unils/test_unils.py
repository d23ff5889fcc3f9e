"""UniLS (§3): VQ round trip, streaming causality, LoRA freezing, one step per stage, save/load, backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from mio.core.config import FaceConfig
from mio.core.errors import CheckpointError, ConfigError, InputError
from mio.core.frames import AudioChunk, UserAudio
from mio.face.unils import audio as A
from mio.face.unils.backend import UniLSFace
from mio.face.unils.config import UniLSConfig, paper
from mio.face.unils.data import Track, load_dataset, split, write_face
from mio.face.unils.model import UniLS, copy_stage1
from mio.face.unils.streaming import AudioTimeline, UniLSStream, animate
from mio.face.unils.train import gen_step, make_batch, train
from mio.face.unils.transformer import block_causal_mask
from mio.metrics.face import FaceMesh, evaluate

CFG = UniLSConfig(chunk=4, scales=(1, 2, 4), codebook_size=32, code_dim=8, vq_hidden=16, vq_layers=1, context=4,
                  audio_context=4, d_model=32, n_layers=2, n_heads=2, n_styles=2, audio_dim=32, lora_rank=4,
                  lora_alpha=8, dropout=0.0)
SR = 16000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: extra intra-op threads only add overhead (and fight other processes for the cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tracks(n: int = 3, T: int = 60, seed: int = 0) -> list[Track]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = np.arange(T)[:, None] / 25.0
        motion = (0.3 + 0.2 * np.sin(2 * np.pi * (0.5 + i) * t + rng.uniform(0, 6, (1, 61)))).astype(np.float32)
        own = rng.normal(-4, 1, (T, CFG.audio_dim)).astype(np.float32)
        other = rng.normal(-4, 1, (T, CFG.audio_dim)).astype(np.float32)
        out.append(Track(f"c{i}/a", motion, own, other, rng.random(T) < 0.5, i % 2))
    return out


def _randomise_audio_layers(model: UniLS) -> None:
    """Cross-attention outputs start at zero (stage 2 starts at the stage-1 prior); give them weights."""
    g = torch.Generator().manual_seed(3)
    for name, p in model.gen.named_parameters():
        if "audio_xattn" in name and name.endswith("proj.weight"):
            p.data = torch.randn(p.shape, generator=g) * 0.5


def _speech(seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    return (0.3 * env * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.01 * rng.normal(size=len(t))).astype(np.float32)


# ---------------------------------------------------------------- VQ-VAE


def test_vq_round_trip_indices_give_back_the_quantised_latent_and_decode_to_motion():
    torch.manual_seed(0)
    vq = UniLS(CFG, "vq").vq.eval()
    prev, cur = torch.rand(3, CFG.chunk, 61), torch.rand(3, CFG.chunk, 61)
    f_hat, indices, _ = vq.quantize(cur)
    assert [i.shape for i in indices] == [(3, s) for s in CFG.scales]
    assert all(int(i.max()) < CFG.codebook_size for i in indices)
    torch.testing.assert_close(vq.quantizer.f_hat_from_indices(indices), f_hat, atol=1e-5, rtol=1e-5)
    recon, again, _ = vq(prev, cur)
    assert recon.shape == cur.shape
    assert all(torch.equal(a, b) for a, b in zip(again, indices, strict=True))
    # the decoded chunk is exactly the decoder applied to the tokens' latent: tokens are the whole code
    torch.testing.assert_close(vq.decode(vq.quantize(prev)[0], vq.quantizer.f_hat_from_indices(indices)), recon)


@pytest.mark.slow  # training
def test_vq_training_lowers_the_reconstruction_error():
    torch.manual_seed(0)
    model = UniLS(CFG, "vq")
    batch = make_batch(_tracks(), CFG, np.random.default_rng(0), 8, audio=False)
    opt = torch.optim.AdamW(model.vq.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        _, _, parts = model.vq(batch.prev, batch.cur)
        loss = model.vq.loss(parts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(parts["rec"].detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_presets_and_layouts():
    p = paper()
    assert p.scales == (1, 5, 25, 50, 100) and p.chunk == 100 and p.codebook_size == 256 and p.code_dim == 64
    assert p.motion_dim == 112 and CFG.motion_dim == 61
    with pytest.raises(ConfigError):
        UniLSConfig(chunk=10, scales=(1, 5))
    m = UniLS(UniLSConfig(**{**CFG.to_dict(), "layout": "flame112", "scales": CFG.scales}), "free")
    assert m.vq.mean.shape == (112,)


# ---------------------------------------------------------------- generator


def test_block_causal_mask():
    m = block_causal_mask(2, (1, 2))
    assert m[:2, :2].all() and not m[:2, 2:].any()  # the prefix sees only the prefix
    assert m[2, :3].all() and not m[2, 3:].any()  # scale 0 sees prefix + itself
    assert m[3:, :].all()  # scale 1 sees everything before and its own block


def test_cached_sampling_equals_the_full_forward_pass():
    torch.manual_seed(0)
    m = UniLS(CFG, "e2e").eval()
    _randomise_audio_layers(m)
    ctx, style = torch.randn(2, CFG.context, 61), torch.tensor([0, 1])
    own, other = torch.randn(2, CFG.audio_context + CFG.chunk, 32), torch.randn(2, CFG.audio_context, 32)
    f_hat, idx = m.gen.sample(m.vq, ctx, style, own, other, temperature=0)
    logits = m.gen(ctx, style, m.gen.teacher_inputs(m.vq, idx), own, other)
    assert torch.equal(logits.argmax(-1), torch.cat(idx, 1))
    torch.testing.assert_close(m.vq.quantizer.f_hat_from_indices(idx), f_hat)


@pytest.mark.parametrize("stage", ["free", "audio", "e2e"])
@pytest.mark.slow  # training
def test_one_training_step_per_stage_lowers_the_loss(stage):
    torch.manual_seed(0)
    model = UniLS(CFG, stage)
    if stage == "audio":
        copy_stage1(model, UniLS(CFG, "free"))
    batch = make_batch(_tracks(), CFG, np.random.default_rng(1), 16, audio=model.uses_audio)
    params = [p for p in model.gen.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    first = None
    for _ in range(8):
        loss, _ = gen_step(model, model.gen, batch)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(gen_step(model, model.gen, batch)[0]) < first


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Every stage through the real `train` entry (2-3 steps each): vq -> free -> audio, vq -> e2e."""
    root = tmp_path_factory.mktemp("unils")
    tracks = _tracks()
    kw = dict(cfg=CFG, batch=4, tracks=tracks, progress=False)
    train("vq", "", str(root / "vq"), steps=2, **kw)
    train("free", "", str(root / "free"), init=str(root / "vq"), steps=3, **kw)
    train("audio", "", str(root / "audio"), init=str(root / "free"), steps=3, lr=1e-2, **kw)
    train("e2e", "", str(root / "e2e"), init=str(root / "vq"), steps=2, **kw)
    return root


@pytest.mark.slow  # training
def test_stage2_lora_keeps_the_stage1_backbone_unchanged(trained):
    stage1 = UniLS.from_pretrained(trained / "free")
    stage2 = UniLS.from_pretrained(trained / "audio", merge=False)
    s1, s2 = stage1.gen.state_dict(), stage2.gen.state_dict()
    base = {k: v for k, v in s2.items() if ".base_layer." in k}
    assert base, "LoRA adapters were not injected"
    for k, v in base.items():
        assert torch.equal(v, s1[k.replace(".base_layer.", ".")]), k  # frozen backbone (LoRA only)
    others = [k for k in s2 if "lora_" not in k and ".base_layer." not in k and "audio" not in k]
    for k in others:
        assert torch.equal(s2[k], s1[k]), k  # embeddings, norms, head: frozen too
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in s2.items() if "lora_B" in k)  # LoRA trained
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in s2.items() if "xattn_own.proj.weight" in k)
    for k, v in stage2.vq.state_dict().items():
        assert torch.equal(v, stage1.vq.state_dict()[k])  # the VQ-VAE stays frozen
    merged = UniLS.from_pretrained(trained / "audio")  # LoRA folded in: the same function, fewer matmuls
    x = (_speech(0.6, 0), SR)
    np.testing.assert_allclose(animate(merged, x, x, seed=1, temperature=0), animate(stage2, x, x, seed=1, temperature=0),
                               atol=1e-4)


@pytest.mark.slow  # training
def test_save_load_round_trip_gives_the_same_motion(trained):
    a, b = UniLS.from_pretrained(trained / "e2e"), UniLS.from_pretrained(trained / "e2e")
    x = (_speech(1.0, 0), SR)
    torch.testing.assert_close(torch.from_numpy(animate(a, x, x, seed=5)), torch.from_numpy(animate(b, x, x, seed=5)))
    with pytest.raises(CheckpointError):
        UniLS.from_pretrained(trained / "missing")
    with pytest.raises(ConfigError):  # stage 2 must start from stage 1, not from a VQ-VAE
        train("audio", "", str(trained / "bad"), cfg=CFG, init=str(trained / "vq"), steps=1, batch=2,
              tracks=_tracks(), progress=False)


# ---------------------------------------------------------------- streaming


def test_audio_timeline_features_equal_whole_track_features():
    x = _speech(2.0, 1)
    tl = AudioTimeline(8)
    tl.add(x[:12345], SR, 0.0)
    tl.add(x[12345:], SR, 12345 / SR)
    whole = A.track_features(x, SR, 50, 8)
    np.testing.assert_allclose(tl.features(10, 30), whole[10:30], atol=1e-4)
    np.testing.assert_allclose(tl.features(-3, 2)[:2], A.SILENCE, atol=1e-6)  # frame -1's last window reaches t > 0


def _stream(model: UniLS, own: np.ndarray, other: np.ndarray, frames: int) -> np.ndarray:
    return animate(model, (own, SR), (other, SR), seed=7, frames=frames)


def test_streaming_is_causal_in_both_audio_tracks():
    torch.manual_seed(0)
    model = UniLS(CFG, "e2e").eval()
    _randomise_audio_layers(model)
    own, other = _speech(2.0, 1), _speech(2.0, 2)
    base = _stream(model, own, other, 48)
    cut_frame = 24  # chunk boundary (chunk = 4 frames)
    cut = cut_frame * A.FRAME_SAMPLES
    other2 = other.copy()
    other2[cut:] = _speech(2.0, 9)[cut:]
    alt = _stream(model, own, other2, 48)
    # speaker A hears the other track strictly in the past: frames up to the chunk starting at the cut are equal
    np.testing.assert_array_equal(base[0, : cut_frame + CFG.chunk], alt[0, : cut_frame + CFG.chunk])
    assert not np.array_equal(base[0, cut_frame + CFG.chunk :], alt[0, cut_frame + CFG.chunk :])
    own2 = own.copy()
    own2[cut + A.WIN :] = _speech(2.0, 11)[cut + A.WIN :]
    alt = _stream(model, own2, other, 48)
    # the own track is read up to the end of the chunk being generated (+ one analysis window)
    np.testing.assert_array_equal(base[0, :cut_frame], alt[0, :cut_frame])
    assert not np.array_equal(base[0, cut_frame + CFG.chunk :], alt[0, cut_frame + CFG.chunk :])


def test_two_speakers_at_once_swap_their_tracks():
    torch.manual_seed(0)
    model = UniLS(CFG, "e2e").eval()
    _randomise_audio_layers(model)
    a, b = _speech(1.2, 1), _speech(1.2, 2)
    s = UniLSStream(model, [0, 0], seed=3)
    s.tracks[0].add(a, SR, 0.0)
    s.tracks[1].add(b, SR, 0.0)
    s.generator = torch.Generator().manual_seed(3)
    both = s.generate_until(12)
    assert both.shape == (2, 12, 61) and np.all(both[..., :52] >= 0) and np.all(both[..., :52] <= 1)
    assert s.other_tracks[0] is s.tracks[1] and s.other_tracks[1] is s.tracks[0]


# ---------------------------------------------------------------- runtime backend


def test_backend_session_speaks_listens_and_handles_late_audio_and_interrupts():
    torch.manual_seed(0)
    model = UniLS(CFG, "e2e").eval()
    _randomise_audio_layers(model)
    face = UniLSFace(FaceConfig(backend="unils"), model=model)
    s = face.new_session(0)
    frames = [s.frame(i / 25) for i in range(6)]
    s.push_agent_audio(AudioChunk(samples=_speech(1.0, 1, 24000), sample_rate=24000, pts=0.3))
    s.push_user_audio(UserAudio(samples=_speech(0.5, 2), sample_rate=SR, pts=0.0))
    frames += [s.frame(i / 25) for i in range(6, 40)]
    s.interrupt(1.0)
    frames += [s.frame(i / 25) for i in range(40, 60)]
    f = np.stack(frames)
    assert f.shape == (60, 61) and np.isfinite(f).all()
    assert f[:, :52].min() >= 0 and f[:, :52].max() <= 1
    assert f.std(axis=0).max() > 0  # it moves
    with pytest.raises(InputError):
        s.push_agent_audio(AudioChunk(samples=np.full(100, np.nan, np.float32), sample_rate=24000, pts=1.0))
    s.frame(1000.0)  # a long jump does not generate the whole gap
    assert s.stream.frames.shape[1] <= 2 * max(CFG.context, CFG.chunk)


def test_backend_rejects_a_layout_mismatch():
    with pytest.raises(ConfigError):
        UniLSFace(FaceConfig(backend="unils", layout="flame112"), model=UniLS(CFG, "e2e"))


# ---------------------------------------------------------------- data and metrics


def test_dyadic_loader_pairs_own_and_other_audio(tmp_path):
    rng = np.random.default_rng(0)
    conv = tmp_path / "conv0"
    a, b = _speech(2.0, 1), np.zeros(32000, np.float32)
    wavfile.write(str(conv.mkdir() or conv / "a.wav"), SR, (a * 32767).astype(np.int16))
    wavfile.write(str(conv / "b.wav"), SR, (b * 32767).astype(np.int16))
    write_face(conv / "a.npz", rng.random((50, 61)), "arkit52", style=np.int64(1))
    write_face(conv / "b.npz", rng.random((50, 61)), "arkit52")
    write_face(tmp_path / "video_track.npz", rng.random((30, 61)), "arkit52")
    tracks = load_dataset(tmp_path, n_mels=8)
    assert [t.name for t in tracks] == ["conv0/a", "conv0/b", "video_track"]
    ta, tb, tv = tracks
    np.testing.assert_array_equal(ta.own, tb.other)
    assert ta.style == 1 and tv.own is None and ta.speaking.any() and not tb.speaking.any()
    train_set, test_set = split(tracks, test_fraction=0.0)
    assert len(train_set) == 3 and not test_set
    with pytest.raises(InputError):
        load_dataset(tmp_path, layout="flame112", n_mels=8)


def test_metrics_on_the_avatar_face_mesh():
    rng = np.random.default_rng(0)
    verts = rng.normal(0, 0.01, (40, 3)).astype(np.float32)
    deltas = rng.normal(0, 0.005, (52, 40, 3)).astype(np.float32)
    mesh = FaceMesh(verts, deltas, np.arange(5), np.arange(20, 40))
    gt = np.clip(rng.random((80, 61)) * 0.3, 0, 1).astype(np.float32)
    speaking = np.arange(80) < 40
    same = evaluate([(gt, gt, speaking)], mesh=mesh)
    assert same["speak"]["LVE"] == 0 and same["listen"]["FDD"] == 0 and same["listen"]["PDD"] == 0
    still = gt.copy()
    still[:] = gt.mean(0)  # a "zombie face": no motion at all
    z = evaluate([(still, gt, speaking)], mesh=mesh)
    assert z["listen"]["FDD"] > 0 and z["listen"]["PDD"] > 0 and z["speak"]["LVE"] > 0
    assert z["listen_variance"]["expr_std_pred"] < 1e-6 < z["listen_variance"]["expr_std_gt"]


def test_track_recovers_head_rotation_from_landmarks():
    from scipy.spatial.transform import Rotation

    from mio.face.track import blendshapes_from_landmarks

    rng = np.random.default_rng(0)
    face = rng.normal(0, 50, (478, 3))
    rotvecs = np.stack([np.zeros(3)] * 7 + [rng.normal(0, 0.1, 3) for _ in range(3)])  # median = unrotated
    lms = np.stack([Rotation.from_rotvec(r).apply(face) + 3.0 * i for i, r in enumerate(rotvecs)])  # and moving
    out = blendshapes_from_landmarks(lms)
    assert out.shape == (10, 61) and np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 52:55], rotvecs, atol=1e-5)
    assert out[:, :52].min() >= 0 and out[:, :52].max() <= 1
