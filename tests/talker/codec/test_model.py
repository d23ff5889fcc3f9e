"""Kodama tokenizer: rates, band-split, RVQ round trip, streaming == offline, causality, losses,
one training step, save/load. Tiny preset, CPU, no data files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mio.core.errors import CheckpointError, ConfigError, InputError
from mio.talker.codec.config import BITRATE, FRAME_RATE, HOP, CodecConfig
from mio.talker.codec.losses import (
    Discriminators,
    LossWeights,
    MelLoss,
    PitchLoss,
    discriminator_loss,
    generator_losses,
    semantic_loss,
)
from mio.talker.codec.model import BandSplit, KodamaCodec, pad_to_frames
from mio.talker.codec.modules import CausalConv1d, CausalResampler, ISTFTHead, streaming
from mio.talker.codec.quant import ResidualVQ
from mio.talker.codec.stream import StreamingDecoder, StreamingEncoder, decode_array, encode_array


@pytest.fixture(scope="module")
def codec() -> KodamaCodec:
    torch.manual_seed(0)
    return KodamaCodec(CodecConfig.tiny()).eval()


def _speechlike(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 24000
    f0 = 120 + 30 * torch.sin(2 * math.pi * 0.7 * t)
    x = sum(torch.sin(2 * math.pi * k * torch.cumsum(f0, 0) / 24000) / k for k in range(1, 6))
    return (0.2 * x * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t)) + 0.01 * torch.randn(n, generator=g))[None, None]


# --- rates ------------------------------------------------------------------------------------

def test_rates_are_the_papers():
    assert HOP == 1920 and FRAME_RATE == 12.5 and BITRATE == 1000.0
    for preset in (CodecConfig.tiny(), CodecConfig.embedded(), CodecConfig.paper()):
        assert preset.bitrate == 1000.0 and preset.n_q == 8 and preset.codebook_size == 1024
        assert math.prod(preset.acoustic_strides) == 480  # 24 kHz -> 50 Hz
        assert preset.semantic_hop == 1280  # 16 kHz -> 12.5 Hz
    assert CodecConfig.paper().acoustic_base * 2 ** 4 == 512  # four stages doubling up to 512
    with pytest.raises(ConfigError):
        CodecConfig(acoustic_strides=(4, 4, 5, 5))
    with pytest.raises(ConfigError):
        CodecConfig(codebook_size=512)


def test_shapes_and_rates(codec):
    x = _speechlike(HOP * 5)
    with torch.no_grad():
        codes = codec.encode(x)
        y = codec.decode(codes)
        lat = codec.acoustic(x)
    assert codes.shape == (1, 8, 5) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < 1024
    assert y.shape == x.shape
    assert lat.shape[-1] == 5 * 4  # the acoustic encoder's 50 Hz
    with pytest.raises(ValueError, match="multiple"):
        codec.encode(x[..., :-1])
    assert pad_to_frames(x[..., :-1], HOP).shape[-1] == HOP * 5


def test_band_split_is_exact_and_learnable():
    bs = BandSplit(32, 0.25)
    x = torch.randn(2, 32, 7, requires_grad=True)
    low, high = bs(x)
    assert torch.allclose(low + high, x, atol=1e-6)
    # the low band is smooth along the channels: little energy in the upper channel-frequencies
    spec = torch.fft.rfft(low, dim=1).abs().pow(2).sum(dim=(0, 2))
    assert spec[:5].sum() > 10 * spec[9:].sum()
    low.pow(2).sum().backward()
    assert bs.logits.grad is not None and bs.logits.grad.abs().sum() > 0


def test_rvq_round_trip_and_residuals():
    torch.manual_seed(0)
    rvq = ResidualVQ(16, n_q=4, codebook_size=64, code_dim=4).eval()
    x = torch.randn(3, 16, 9)
    q, idx, loss = rvq(x)
    assert idx.shape == (3, 4, 9) and loss.ndim == 0
    codes = rvq.encode(x)
    assert torch.equal(codes, idx)
    assert torch.allclose(rvq.from_indices(codes), q, atol=1e-5)
    rvq.train()
    _, _, _ = rvq(x)
    assert rvq.layers[0].last_latents is not None
    rvq.layers[0].usage.fill_(0)
    assert rvq.revive_dead_codes() >= 64


def test_codes_round_trip_through_numpy(codec):
    x = _speechlike(HOP * 3 + 100)[0, 0].numpy()
    codes = encode_array(codec, x)
    assert codes.shape == (8, 4) and codes.dtype == np.int16
    y = decode_array(codec, codes)
    assert y.shape == (HOP * 4,)
    with pytest.raises(InputError):
        decode_array(codec, codes[:7])
    with pytest.raises(InputError):
        decode_array(codec, np.full((8, 2), 5000))


# --- streaming --------------------------------------------------------------------------------

def test_streamed_equals_offline(codec):
    x = _speechlike(HOP * 7, seed=1)
    with torch.no_grad():
        codes = codec.encode(x)
        y = codec.decode(codes)
    with StreamingEncoder(codec) as enc, StreamingDecoder(codec) as dec:
        parts = [(x[..., :HOP]), x[..., HOP:HOP * 3], x[..., HOP * 3:HOP * 4], x[..., HOP * 4:]]  # 1, 2, 1, 3 frames
        c_parts = [enc.step(p) for p in parts]
        y_parts = [dec.step(c) for c in c_parts]
    assert torch.equal(torch.cat(c_parts, -1), codes)
    assert torch.allclose(torch.cat(y_parts, -1), y, atol=1e-5)
    with StreamingEncoder(codec) as enc:  # state is cleared between streams
        assert torch.equal(enc.step(x[..., :HOP]), codes[..., :1])


def test_outputs_never_depend_on_future_input(codec):
    x = _speechlike(HOP * 6, seed=2)
    x2 = x.clone()
    x2[..., HOP * 3 + 7:] += torch.randn_like(x2[..., HOP * 3 + 7:])  # change only the 4th frame onwards
    with torch.no_grad():
        c1, c2 = codec.encode(x), codec.encode(x2)
        assert torch.equal(c1[..., :3], c2[..., :3])
        c3 = c1.clone()
        c3[..., 3:] = (c3[..., 3:] + 17) % 1024  # different future tokens
        y1, y3 = codec.decode(c1), codec.decode(c3)
    assert torch.equal(y1[..., : HOP * 3], y3[..., : HOP * 3])
    assert not torch.equal(y1[..., HOP * 3:], y3[..., HOP * 3:])


def test_streaming_layers_match_offline():
    torch.manual_seed(0)
    conv = CausalConv1d(3, 5, 8, stride=4, dilation=1)
    head = ISTFTHead(6, 64, 16)
    x, h = torch.randn(2, 3, 64), torch.randn(2, 6, 12)
    with torch.no_grad():
        ref_c, ref_h = conv(x), head(h)
        with streaming(conv, head):
            sc = torch.cat([conv(x[..., :16]), conv(x[..., 16:20]), conv(x[..., 20:])], -1)
            sh = torch.cat([head(h[..., :1]), head(h[..., 1:5]), head(h[..., 5:])], -1)
    assert torch.allclose(sc, ref_c, atol=1e-6) and torch.allclose(sh, ref_h, atol=1e-6)
    with pytest.raises(ValueError, match="stride"):
        conv(torch.randn(1, 3, 10))


def test_causal_resampler_keeps_a_tone():
    rs = CausalResampler(2, 3)
    t = torch.arange(24000 * 0.5) / 24000
    x = torch.sin(2 * math.pi * 440 * t)[None, None]
    with torch.no_grad():
        y = rs(x)[0, 0].numpy()
    assert y.shape == (8000,)
    spec = np.abs(np.fft.rfft(y[2000:] * np.hanning(6000)))
    assert abs(np.argmax(spec) * 16000 / 6000 - 440) < 5
    assert 0.9 < np.abs(y[2000:]).max() < 1.1
    hi = torch.sin(2 * math.pi * 10000 * t)[None, None]  # above the new Nyquist: removed
    with torch.no_grad():
        assert rs(hi)[0, 0, 2000:].abs().max() < 0.05


# --- losses and training ------------------------------------------------------------------------

def test_pitch_tracker_finds_f0():
    pl = PitchLoss()
    t = torch.arange(12000) / 24000
    x = sum(torch.sin(2 * math.pi * 150 * k * t) / k for k in range(1, 4))[None]
    f0, voiced = pl.f0(x)
    assert abs(float(f0.exp().median()) - 150) < 8 and float(voiced.median()) > 0.8
    assert float(pl(x, x)) < 1e-6


def test_losses_and_discriminators_shapes():
    x, y = _speechlike(HOP * 2)[:, :, :], _speechlike(HOP * 2, seed=5)
    assert float(MelLoss()(x, x)) == 0.0 and float(MelLoss()(y, x)) > 0
    d = Discriminators()
    real, fake = d(x), d(y)
    assert len(real) == 8  # 5 periods + 3 STFT resolutions
    assert discriminator_loss(real, fake).ndim == 0
    adv, fm = generator_losses(real, fake)
    assert adv.ndim == 0 and float(fm) > 0
    assert float(semantic_loss(torch.randn(2, 8, 4), torch.randn(2, 10, 4))) > 0


@pytest.mark.slow  # training
def test_one_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = KodamaCodec(CodecConfig.tiny()).train()
    disc = Discriminators(mpd_channels=(4, 8), stft_filters=4)
    mel, pitch, w = MelLoss(), PitchLoss(), LossWeights()
    x = torch.cat([_speechlike(HOP * 2, seed=s) for s in range(2)])
    teacher = torch.randn(2, 8, model.cfg.teacher_dim)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    d_opt = torch.optim.AdamW(disc.parameters(), lr=2e-4)

    def gen_loss() -> tuple[torch.Tensor, torch.Tensor]:
        out = model(x)
        y = out["audio"]
        loss = (w.mel * mel(y, x) + w.pitch * pitch(y, x) + w.commit * out["commit"]
                + w.semantic * semantic_loss(out["semantic"], teacher))
        return loss, y

    before, y = gen_loss()
    d_loss = discriminator_loss(disc(x), disc(y.detach()))  # Eq. 1
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    adv, fm = generator_losses(disc(x), disc(y))  # Eq. 2-3
    opt.zero_grad()
    (before + w.adv * adv + w.fm * fm).backward()
    opt.step()
    after, _ = gen_loss()
    assert float(after) < float(before)


def test_save_and_load(tmp_path, codec):
    from mio.train import save_pretrained

    codec.save_pretrained(tmp_path / "ck")
    loaded = KodamaCodec.from_pretrained(tmp_path / "ck")
    x = _speechlike(HOP * 3)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), codec.encode(x))
        assert torch.allclose(loaded.decode(codec.encode(x)), codec.decode(codec.encode(x)))
    assert loaded.cfg == codec.cfg
    save_pretrained(torch.nn.Linear(2, 2), tmp_path / "other", {}, kind="toy")
    with pytest.raises(CheckpointError, match="not 'kodama-codec'"):
        KodamaCodec.from_pretrained(tmp_path / "other")


def test_paper_teacher_loads_from_a_local_folder_only(tmp_path):
    from mio.core.errors import BackendError
    from mio.talker.codec.teacher import load_teacher

    with pytest.raises(BackendError, match="does not exist"):
        load_teacher(str(tmp_path / "w2v-bert-2.0"))


def test_learning_rate_warms_up_holds_then_decays():
    from mio.talker.codec.train import CodecTrainConfig, lr_factor

    const = CodecTrainConfig(steps=1000, warmup=10)
    assert lr_factor(0, const) == 0.1 and lr_factor(10, const) == 1.0 and lr_factor(999, const) == 1.0
    decay = CodecTrainConfig(steps=1000, warmup=10, decay_start=600)
    assert lr_factor(599, decay) == 1.0 and lr_factor(600, decay) == 1.0
    assert 0.45 < lr_factor(800, decay) < 0.55  # half-way down the cosine
    assert abs(lr_factor(1000, decay) - 0.02) < 1e-9 and lr_factor(5000, decay) == lr_factor(1000, decay)


def test_mel_floor_hides_detail_far_below_speech():
    x = _speechlike(HOP * 4)
    x[..., HOP * 2:] = 0  # a digital-silence pause
    quiet = x + 1e-4 * torch.randn_like(x)  # a hiss ~65 dB below the speech
    assert float(MelLoss(floor=1e-3)(quiet, x)) < 0.1 * float(MelLoss(floor=1e-7)(quiet, x))


def test_warm_start_grows_the_decoder_without_changing_the_output(tmp_path):
    from mio.talker.codec.train import KIND, warm_start
    from mio.train.checkpoint import save_pretrained

    torch.manual_seed(0)
    src = KodamaCodec(CodecConfig.tiny()).eval()
    save_pretrained(src, tmp_path / "src", config=src.cfg.to_dict(), kind=KIND)
    deeper = KodamaCodec(CodecConfig.from_dict({**src.cfg.to_dict(), "vocos_layers": 3})).eval()
    assert warm_start(deeper, tmp_path / "src") == 2
    x = _speechlike(HOP * 3)
    with torch.no_grad():
        assert torch.equal(deeper.decode(deeper.encode(x)), src.decode(src.encode(x)))
    wider = KodamaCodec(CodecConfig.from_dict({**src.cfg.to_dict(), "vocos_dim": 24}))
    with pytest.raises(CheckpointError, match="does not fit"):
        warm_start(wider, tmp_path / "src")
    shallower = KodamaCodec(CodecConfig.from_dict({**src.cfg.to_dict(), "vocos_layers": 1}))
    warm_start(shallower, tmp_path / "src")  # same depth: a plain reload


@pytest.mark.slow  # training
def test_residual_quantizer_leaves_less_for_each_stage():
    """DAC-style RVQ: after fitting, every stage shrinks the residual, so more codebooks
    reconstruct better."""
    torch.manual_seed(0)
    x = torch.randn(64, 16, 8) * 3.0
    rvq = ResidualVQ(16, n_q=4, codebook_size=64, code_dim=8).train()
    opt = torch.optim.Adam(rvq.parameters(), lr=1e-2)
    for step in range(300):
        q, _, commit = rvq(x)
        loss = F.mse_loss(q, x) + commit
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 49:
            rvq.revive_dead_codes()
    rvq.eval()
    with torch.no_grad():
        codes = rvq.encode(x)
        errs = [float((x - sum(rvq.layers[i].from_indices(codes[:, i]) for i in range(k))).pow(2).mean())
                for k in range(1, 5)]
    assert errs[0] < float(x.pow(2).mean()) and all(b < a for a, b in zip(errs, errs[1:], strict=False)), errs
    assert errs[-1] < 0.5 * float(x.pow(2).mean()), errs


def test_residual_commitment_sees_the_latents_size():
    """The residual mode's commitment is on the unnormalised projection, so a latent that grows
    pays for it (what keeps the encoder's scale tied to the codes); the cosine mode's is blind to
    size, which let the first embedded checkpoint's latent drift to ~1e7."""
    x = torch.randn(2, 16, 5)
    for mode, scale_matters in (("residual", True), ("cosine", False)):
        torch.manual_seed(0)
        vq = ResidualVQ(16, n_q=1, codebook_size=32, code_dim=4, mode=mode).eval()
        small, big = float(vq(x)[2]), float(vq(100 * x)[2])
        assert (big > 10 * small) == scale_matters, (mode, small, big)


def test_checkpoints_without_a_quantizer_setting_load_as_cosine():
    legacy = {k: v for k, v in CodecConfig.embedded().to_dict().items() if k != "quantizer"}
    assert CodecConfig.from_dict(legacy).quantizer == "cosine"
    assert CodecConfig.embedded().quantizer == "residual" == CodecConfig.paper().quantizer
    with pytest.raises(ConfigError, match="quantizer"):
        CodecConfig.from_dict({**legacy, "quantizer": "scalar"})


def test_cosine_checkpoint_carries_over_to_the_residual_quantizer():
    from mio.talker.codec.train import to_residual_quantizer

    torch.manual_seed(0)
    tiny = CodecConfig.tiny().to_dict()
    old = KodamaCodec(CodecConfig.from_dict({**tiny, "quantizer": "cosine"})).eval()
    new = KodamaCodec(CodecConfig.from_dict(tiny)).eval()
    new.load_state_dict(old.state_dict())
    x = _speechlike(HOP * 4)
    with torch.no_grad():
        scales = to_residual_quantizer(new, x)
        before, after = old.encode(x), new.encode(x)
        assert torch.equal(before[:, 0], after[:, 0]) and torch.equal(before[:, 2], after[:, 2])  # first stages
        z = new.semantic_rvq.layers[0].encode(new._latents(x)[0])[0]
    assert set(scales) == {"semantic", "acoustic"}
    assert abs(float(z.norm(dim=-1).mean()) - 1) < 0.05
    assert all(vq.mode == "residual" for vq in new.acoustic_rvq.layers)
    assert torch.allclose(new.acoustic_rvq.layers[3].codebook.weight.norm(dim=-1), torch.ones(CodecConfig.tiny().codebook_size))
