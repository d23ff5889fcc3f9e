"""FloodDiffusion (§4): features, BVH, library, VAE causality, schedules, DiT masks, streaming, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mio.body.actions import ACTIONS, labels
from mio.body.bvh import read_bvh_joints, write_bvh
from mio.body.flood.config import DiTConfig, VAEConfig, replace
from mio.body.flood.dit import FloodDiT
from mio.body.flood.schedule import lower_triangular, regions, training_alphas, window_at
from mio.body.flood.stream import FloodStream, generate_offline
from mio.body.flood.text import HashTextEncoder
from mio.body.flood.train import dit_batch, dit_loss, encode_latents
from mio.body.flood.vae import CausalVAE, StreamingDecoder
from mio.body.humanml3d import features_to_joints
from mio.body.motionlib import make_split, render_sequence
from mio.core.layouts import HUMANML3D


def _randomize(module: torch.nn.Module, std: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere (the zero-initialised adaLN/output layers would make outputs trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std + (1.0 if p.ndim == 2 and p.shape[1] == 1 else 0.0))
    return module.eval()


@pytest.fixture(scope="module")
def samples():
    return make_split("train", 3, seed=5, seconds=(2.0, 3.0))


@pytest.fixture(scope="module")
def text():
    return HashTextEncoder(max_tokens=8, dim=32)


@pytest.fixture(scope="module")
def models(samples):
    vae = _randomize(CausalVAE(VAEConfig.tiny()), std=0.1)
    vae.fit_latent_stats([torch.from_numpy(s.features) for s in samples])
    dit = _randomize(FloodDiT(replace(DiTConfig.tiny(), text_dim=32, text_tokens=8)), std=0.1)
    return vae, dit


# ---- representation, BVH, library ------------------------------------------------------------


def test_library_has_40_labelled_actions_with_held_out_phrasings() -> None:
    assert len(ACTIONS) == 40  # docs/body.md and the README describe these 40
    assert all(len(a.labels) >= 4 for a in ACTIONS.values())
    train, test = {t for _, t in labels("train")}, {t for _, t in labels("test")}
    assert not train & test and len(test) == len(ACTIONS)
    for name in ("walk", "run", "turn_left", "wave_right", "point_forward", "nod", "bow", "clap", "shrug", "jump",
                 "crouch", "idle", "talk"):
        assert name in ACTIONS


def test_sequences_tile_segments_and_round_trip_features(samples) -> None:
    for s in samples:
        assert s.features.shape == (len(s.joints), HUMANML3D.dim)
        assert s.segments[0].start == 0 and s.segments[-1].end == len(s.features)
        assert all(a.end == b.start for a, b in zip(s.segments, s.segments[1:], strict=False))
        back = features_to_joints(s.features)  # features <-> joints (§4.1)
        assert np.abs(back - s.joints).max() < 1e-3


def test_walk_moves_forward_and_idle_stays() -> None:
    rng = np.random.default_rng(0)
    walk = render_sequence([("walk", 3.0)], rng).joints
    idle = render_sequence([("idle", 3.0)], rng).joints
    assert walk[-1, 0, 2] - walk[0, 0, 2] > 2.0  # ~1 m/s
    assert np.abs(idle[:, 0, [0, 2]]).max() < 0.1


def test_bvh_round_trip(samples, tmp_path) -> None:
    f = samples[0].features
    path = write_bvh(tmp_path / "m.bvh", f)
    joints, fps = read_bvh_joints(path)
    assert fps == pytest.approx(20.0)
    # The library's skeleton is rigid: FK of the file (rotations only) gives the joints back.
    assert np.abs(joints - features_to_joints(f)).max() < 1e-4


def test_data_folders_round_trip(samples, tmp_path) -> None:
    from mio.body.data import load_babel, load_humanml3d, write_babel, write_humanml3d

    write_humanml3d(samples, tmp_path / "h", "train")
    back = load_humanml3d(tmp_path / "h", "train")
    assert [g.text for g in back[0].segments] == [g.text for g in samples[0].segments]
    assert [g.start for g in back[1].segments] == [g.start for g in samples[1].segments]
    np.testing.assert_array_equal(back[2].features, samples[2].features)
    write_babel(samples, tmp_path / "b.json", tmp_path / "feats")
    babel = load_babel(tmp_path / "b.json", tmp_path / "feats")
    assert [g.start for g in babel[0].segments] == [g.start for g in samples[0].segments]


def test_bench_data_is_made_when_missing(tmp_path, monkeypatch) -> None:
    """`mio bench body` on a fresh checkout renders the held-out split it needs, once; a --data
    folder without one is a one-line error that names the command making it."""
    from mio.bench import body as flood_cli
    from mio.body.data import load_babel, load_humanml3d
    from mio.core.errors import InputError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(flood_cli, "BENCH_TEST_SEQUENCES", 3)
    root = flood_cli.bench_data(None)
    assert root == tmp_path.joinpath(flood_cli.BENCH_DATA_DIR).relative_to(tmp_path)
    test = load_humanml3d(root, "test", min_frames=0)
    expected = make_split("test", 3, seed=0, seconds=(2.0, 4.0))  # the library's own test clips
    assert [len(s.features) for s in test] == [len(s.features) for s in expected]
    assert len(load_babel(root / "babel_test.json", root / "babel_feats")) == 3
    assert not (root / "train.txt").exists() and (root / "DONE-test").is_file()
    assert flood_cli.bench_data(None) == root  # kept
    with pytest.raises(InputError, match="mio train body --stage data --out nowhere"):
        flood_cli.bench_data("nowhere")


# ---- VAE ---------------------------------------------------------------------------------------


def test_vae_shapes_and_causality(models) -> None:
    vae, _ = models
    x = torch.randn(1, 32, HUMANML3D.dim)
    z = vae.encode_raw(x)
    assert z.shape == (1, 8, 4)  # x4 temporal down, 4 channels (§4.2.2)
    x2 = x.clone()
    x2[:, 20:] += 1.0  # change frames >= 20: latents j with 4j + 3 < 20 (j <= 4) must not move
    z2 = vae.encode_raw(x2)
    assert torch.allclose(z[:, :5], z2[:, :5], atol=1e-6) and not torch.allclose(z[:, 5:], z2[:, 5:])
    y, zz = vae.decode_raw(z), z.clone()
    zz[:, 5:] += 1.0  # change latents >= 5: frames < 20 must not move
    y2 = vae.decode_raw(zz)
    assert torch.allclose(y[:, :20], y2[:, :20], atol=1e-6) and not torch.allclose(y[:, 20:], y2[:, 20:])


def test_vae_streaming_decode_equals_offline(models) -> None:
    vae, _ = models
    z = torch.randn(1, 20, 4)
    dec = StreamingDecoder(vae)
    streamed = torch.cat([dec.push(z[0, k]) for k in range(20)])
    assert torch.allclose(streamed, vae.decode(z)[0], atol=1e-5)


@pytest.mark.slow  # training
def test_vae_training_step_lowers_eq13_loss(samples) -> None:
    torch.manual_seed(0)
    vae = CausalVAE(VAEConfig.tiny())
    x = torch.from_numpy(np.stack([s.features[:32] for s in samples]))
    x = (x - x.mean((0, 1))) / (x.std((0, 1)) + 0.1)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        torch.manual_seed(1)  # same latent noise each step
        loss = vae(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0]


# ---- schedules ---------------------------------------------------------------------------------


def test_lower_triangular_schedule_has_three_regions() -> None:
    n_s, k = 4, torch.arange(20)
    alpha, beta = lower_triangular(2.5, k, n_s)  # Eq. 14-15
    assert torch.allclose(alpha + beta, torch.ones(20))
    past, active, future = regions(alpha)
    assert past[:7].all() and not past[7:].any()  # k <= n_s (t - 1) = 6
    assert active[7:10].all() and active.sum() == 3  # 0 < alpha < 1 (k = 10 is exactly 0)
    assert future[10:].all()
    assert window_at(2.5, n_s) == (7, 10)
    assert torch.all(alpha[:-1] >= alpha[1:])  # cascading: earlier frames are always cleaner
    # one streaming step (t += 1/n_s) finishes exactly one frame
    nxt, _ = lower_triangular(2.5 + 1 / n_s, k, n_s)
    assert int((nxt >= 1).sum()) == int((alpha >= 1).sum()) + 1


def test_training_alphas_match_streaming_windows() -> None:
    a = training_alphas("triangular", 3, 4, 4, torch.Generator().manual_seed(0))
    assert a.shape == (3, 8) and torch.all(a[:, :4] == 1.0)
    assert torch.all(a[:, -1] < 0.25) and torch.all(torch.diff(a, dim=1) <= 0)
    chunk = training_alphas("chunk", 2, 4, 4)
    assert torch.all(chunk[:, 4:] == chunk[:, 4:5])
    rand = training_alphas("random", 2, 4, 4)
    assert rand.shape == (2, 8)


# ---- DiT ---------------------------------------------------------------------------------------


def _dit_inputs(b: int = 1, w: int = 8, p: int = 2, L: int = 8, d: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pid = torch.zeros(b, w, dtype=torch.long)
    pid[:, w // 2:] = 1
    return (torch.randn(b, w, 4, generator=g), torch.rand(b, w, generator=g), pid,
            torch.randn(b, p, L, d, generator=g), torch.ones(b, p, L, dtype=torch.bool), torch.randn(b, p, d, generator=g))


def test_framewise_text_mask_each_frame_sees_only_its_prompt() -> None:
    dit = _randomize(FloodDiT(replace(DiTConfig.tiny(), depth=1, text_dim=32, text_tokens=8)))
    x, a, pid, tok, mask, sent = _dit_inputs()
    out = dit(x, a, pid, tok, mask, sent)
    tok2 = tok.clone()
    tok2[:, 1] += 1.0  # change prompt 1: frames on prompt 0 (first half) must not change at depth 1
    out2 = dit(x, a, pid, tok2, mask, sent)
    assert torch.allclose(out[:, :4], out2[:, :4], atol=1e-6) and not torch.allclose(out[:, 4:], out2[:, 4:])


@pytest.mark.parametrize("attention", ["bidirectional", "causal"])
def test_window_attention(attention: str) -> None:
    dit = _randomize(FloodDiT(replace(DiTConfig.tiny(), attention=attention, text_dim=32, text_tokens=8)))
    x, a, pid, tok, mask, sent = _dit_inputs()
    out = dit(x, a, pid, tok, mask, sent)
    x2 = x.clone()
    x2[:, 6] += 1.0
    out2 = dit(x2, a, pid, tok, mask, sent)
    earlier_same = torch.allclose(out[:, :6], out2[:, :6], atol=1e-6)
    assert earlier_same == (attention == "causal")  # bidirectional: earlier frames see later ones


@pytest.mark.slow  # training
def test_dit_training_step_lowers_loss(samples, text, models) -> None:
    vae, _ = models
    torch.manual_seed(0)
    cfg = replace(DiTConfig.tiny(), text_dim=32, text_tokens=8)
    data = encode_latents(vae, samples, text)
    batch = dit_batch(data, cfg, np.random.default_rng(0), 8, torch.Generator().manual_seed(0))
    dit = FloodDiT(cfg)
    opt = torch.optim.Adam(dit.parameters(), lr=2e-3)
    losses = []
    for _ in range(10):
        loss = dit_loss(dit, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


# ---- streaming -----------------------------------------------------------------------------------


def test_streaming_equals_offline_for_committed_frames(models, text) -> None:
    vae, dit = models
    stream = FloodStream(dit, vae, text, seed=3, prompt="walk forward")
    out = []
    for i in range(14):
        if i == 6:
            stream.set_prompt("wave with the right hand", 1.6)  # mid-stream, at a future frame time
        out.append(stream.step())
    streamed = torch.cat(out)
    assert len(streamed) == 4 * stream.committed and stream.committed == 14 - dit.cfg.n_s + 1
    offline = generate_offline(dit, vae, text, [(0.0, "walk forward"), (1.6, "wave with the right hand")],
                               stream.committed, seed=3)
    assert torch.allclose(streamed, offline, atol=1e-4)


def test_prompt_switch_changes_only_uncommitted_future(models, text) -> None:
    vae, dit = models
    a = FloodStream(dit, vae, text, seed=1, prompt="walk forward")
    b = FloodStream(dit, vae, text, seed=1, prompt="walk forward")
    fa, fb = [], []
    for i in range(12):
        if i == 5:
            b.set_prompt("jump", 0.0)  # asks for the past: applies from the first uncommitted frame
            assert all(b.prompt_of[k] == b.prompts.index("jump") for k in b.prompt_of if k >= b.committed)
        fa.append(a.step())
        fb.append(b.step())
    switched = 4 * (5 - dit.cfg.n_s + 1)  # frames committed before the switch
    fa, fb = torch.cat(fa), torch.cat(fb)
    assert torch.equal(fa[:switched], fb[:switched])
    assert not torch.allclose(fa[switched:], fb[switched:])
    # constant cost: the window never exceeds context + n_s frames, however long the stream runs
    assert len(b.latents) <= dit.cfg.context + dit.cfg.n_s


def test_save_load_and_backend_session(models, text, tmp_path) -> None:
    from mio.body.flood.backend import FloodBody
    from mio.core.config import BodyConfig

    vae, dit = models
    vae.save_pretrained(tmp_path / "ck" / "vae")
    dit.save_pretrained(tmp_path / "ck" / "dit", extra={"text_encoder": "hash"})
    vae2, dit2 = CausalVAE.from_pretrained(tmp_path / "ck" / "vae"), FloodDiT.from_pretrained(tmp_path / "ck" / "dit")
    args = _dit_inputs(d=32)
    assert torch.equal(dit(*args), dit2(*args))
    z = torch.randn(1, 5, 4)
    assert torch.equal(vae.decode(z), vae2.decode(z))
    body = FloodBody(BodyConfig(backend="flood", checkpoint=str(tmp_path / "ck")), text=text)
    session = body.new_session(seed=0)
    poses = []
    for i in range(30):
        t = i / 25
        if i == 10:
            session.set_prompt("wave", t)
        if i == 20:
            session.set_prompt(None, t)
        poses.append(session.frame(t))
    assert poses[-1].features.shape == (HUMANML3D.dim,) and poses[-1].joints.shape == (22, 3)
    assert all(np.isfinite(p.joints).all() for p in poses)


@pytest.mark.slow
def test_embedded_checkpoint_follows_prompts() -> None:
    """The shipped weights: "walk forward" travels, "raise both arms" lifts the wrists, and a
    session through the runtime interface switches prompts mid-stream."""
    from mio.body.flood.backend import FloodBody
    from mio.body.flood.generate import generate_batch

    body = FloodBody()
    feats = generate_batch(body.dit, body.vae, body.text, ["walk forward", "raise both arms", "stand"], 16, seed=0)
    walk, arms, stand = (features_to_joints(f[16:]) for f in feats)
    assert np.linalg.norm(walk[-1, 0, [0, 2]] - walk[0, 0, [0, 2]]) > 1.0  # metres in 2.4 s
    assert np.linalg.norm(stand[-1, 0, [0, 2]] - stand[0, 0, [0, 2]]) < 0.5
    assert arms[:, [20, 21], 1].mean() > stand[:, [20, 21], 1].mean() + 0.3  # wrists up
    session = body.new_session(seed=0)
    for i in range(40):
        if i == 10:
            session.set_prompt("wave with the right hand", i / 25)
        pose = session.frame(i / 25)
    assert np.isfinite(pose.joints).all() and pose.features.shape == (HUMANML3D.dim,)
