"""Kodama-TTS on tiny random presets and synthetic codes: sequences, L_TTS, cloning prompts,
streaming, one training step, save/load, data preparation and curation. No trained weights needed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mio.core.config import TalkerConfig
from mio.core.errors import ConfigError, InputError
from mio.core.frames import Emotion
from mio.talker.tts.curation import CurationConfig, judge, summarize
from mio.talker.tts.data import TTSData, default_voice, load_data, prepare
from mio.talker.tts.lm import dequantize_q8_0
from mio.talker.tts.model import (
    EMOTIONS,
    DefaultVoice,
    KodamaTTS,
    emotion_vector,
    preset,
    tts_loss,
)
from mio.talker.tts.sequence import IGNORE, TTSExample, audio_rows, collate, join_text
from mio.talker.tts.train import Batcher, TrainConfig, train
from mio.talker.tts.voice import KodamaVoice, SamplingConfig
from tests.torchrun import run_two_ranks

HOP = 1920
CFG = preset("tiny")
K, V = CFG.n_codebooks, CFG.codebook_size


# -- fakes ----------------------------------------------------------------------------------

class FakeCodec:
    """A deterministic stand-in for the Kodama codec: each frame decodes to a tone set by its codes."""

    sample_rate, frame_rate, n_codebooks, codebook_size = 24000, 12.5, K, V

    def encode(self, wav: np.ndarray, sr: int) -> np.ndarray:
        x = np.asarray(wav, np.float32)[: len(wav) // HOP * HOP].reshape(-1, HOP)  # (T, HOP)
        level = (np.abs(x).mean(axis=1) * 1000).astype(np.int64)  # (T,)
        return (level[:, None] + np.arange(K)[None]) % V  # (T, K)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes).reshape(-1, K)
        t = np.arange(HOP) / self.sample_rate
        return np.concatenate([0.3 * np.sin(2 * np.pi * (100 + 5 * c[0] + c[1]) * t) for c in codes]
                              + [np.zeros(0)]).astype(np.float32)

    def stream_decoder(self):
        codec, pushes = self, []

        class Decoder:
            def push(self, codes: np.ndarray) -> np.ndarray:
                pushes.append(len(codes))
                return codec.decode(codes)

        self.pushes = pushes
        return Decoder()


class ByteTokenizer:
    def encode(self, text: str) -> list[int]:
        return [b % CFG.text_vocab for b in text.encode()]


class FakeSpeaker:
    dim = CFG.speaker_dim

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        v = np.full(self.dim, float(np.abs(wav).mean()) + 0.1, np.float32)
        return v / np.linalg.norm(v)

    def consistency(self, wav: np.ndarray, sr: int) -> float:
        return 0.9

    def analyze(self, wav: np.ndarray, sr: int) -> tuple[np.ndarray, float]:
        return self.embed(wav, sr), self.consistency(wav, sr)


def _model(seed: int = 0) -> KodamaTTS:
    torch.manual_seed(seed)
    return KodamaTTS(CFG)


def _examples(n: int = 3, seed: int = 0, prompt: bool = True) -> list[TTSExample]:
    g = torch.Generator().manual_seed(seed)
    return [TTSExample(text_ids=torch.randint(0, CFG.text_vocab, (4 + i,), generator=g),
                       codes=torch.randint(0, V, (6 + 2 * i, K), generator=g),
                       speaker=torch.randn(CFG.speaker_dim, generator=g), emotion=emotion_vector(),
                       prompt_codes=torch.randint(0, V, (i, K), generator=g) if prompt and i else None)
            for i in range(n)]


# -- sequence building ------------------------------------------------------------------------

def test_audio_rows_shift_targets_by_one_frame_and_ignore_the_prompt():
    codes = torch.arange(3 * K).view(3, K) % V
    prompt = torch.full((2, K), 7)
    audio_in, targets = audio_rows(codes, prompt, bos=CFG.bos, eos=CFG.eos)
    assert audio_in.shape == targets.shape == (1 + 2 + 3, K)
    assert (audio_in[0] == CFG.bos).all() and (audio_in[1:3] == 7).all() and torch.equal(audio_in[3:], codes)
    assert (targets[:2] == IGNORE).all()  # the prompt is given, not predicted
    assert torch.equal(targets[2:5], codes)  # the last prompt frame predicts the first target frame
    assert targets[5, 0] == CFG.eos and (targets[5, 1:] == IGNORE).all()
    with pytest.raises(ValueError, match="prompt codes"):
        audio_rows(codes, torch.zeros(2, K + 1), bos=CFG.bos, eos=CFG.eos)


def test_collate_pads_right_and_counts_target_frames():
    ex = _examples()
    b = collate(ex, bos=CFG.bos, eos=CFG.eos)
    assert b.text_ids.shape == (3, 6) and b.text_len.tolist() == [4, 5, 6]
    assert b.audio_len.tolist() == [1 + 0 + 6, 1 + 1 + 8, 1 + 2 + 10]
    assert b.audio_in.shape == b.targets.shape == (3, 13, K)
    assert b.frames == (6 + 1) + (8 + 1) + (10 + 1)  # target frames + EOS, prompts excluded
    assert (b.targets[0, 7:] == IGNORE).all()  # padding carries no loss
    assert join_text(" The prompt. ", "Target text ") == "The prompt. Target text"
    assert join_text("", "Only target") == "Only target"


def test_emotion_vector_is_a_scaled_one_hot():
    assert emotion_vector().tolist()[0] == 1.0 and emotion_vector().sum() == 1.0
    v = emotion_vector("happy", 0.7)
    assert v[EMOTIONS.index("happy")] == pytest.approx(0.7) and v[0] == pytest.approx(0.3)


# -- the model and L_TTS ----------------------------------------------------------------------

def test_forward_shapes_and_loss_is_the_per_frame_nll_over_all_codebooks():
    m = _model()
    b = collate(_examples(), bos=CFG.bos, eos=CFG.eos)
    logits = m(b)
    assert logits.shape == (3, 13, K, V + 1)
    loss, logs = tts_loss(logits, b.targets)
    # by hand: -1/T sum_t sum_k log p(a_tk)
    logp = F.log_softmax(logits.detach(), -1)
    total, frames = 0.0, 0
    for i in range(3):
        for n in range(b.targets.shape[1]):
            if b.targets[i, n, 0] == IGNORE:
                continue
            frames += 1
            for k in range(K):
                if b.targets[i, n, k] != IGNORE:
                    total -= float(logp[i, n, k, b.targets[i, n, k]])
    assert frames == b.frames
    assert float(loss) == pytest.approx(total / frames, rel=1e-5)
    assert float(loss) == pytest.approx(K * math.log(V + 1), rel=0.1)  # ~uniform at initialisation
    assert set(logs) >= {"loss", "nll_semantic", "acc_semantic", "nll_acoustic"}


def test_model_is_causal_and_padding_does_not_leak():
    m = _model()
    ex = _examples(1, prompt=False)[0]
    b1 = collate([ex], bos=CFG.bos, eos=CFG.eos)
    later = TTSExample(ex.text_ids, ex.codes.clone(), ex.speaker, ex.emotion)
    later.codes[4:] = (later.codes[4:] + 1) % V  # change the future
    b2 = collate([later], bos=CFG.bos, eos=CFG.eos)
    with torch.no_grad():
        l1, l2 = m(b1), m(b2)
        # positions 0..4 (BOS + 4 frames) saw only frames before the change
        assert torch.allclose(l1[0, :5], l2[0, :5], atol=1e-5)
        assert not torch.allclose(l1[0, 5:], l2[0, 5:], atol=1e-5)
        alone = m(collate([ex], bos=CFG.bos, eos=CFG.eos))
        batched = m(collate([ex, *_examples(2, seed=3)], bos=CFG.bos, eos=CFG.eos))
    n = int(b1.audio_len[0])
    assert torch.allclose(alone[0, :n], batched[0, :n], atol=1e-4)


@pytest.mark.slow  # training
def test_one_training_step_lowers_the_loss():
    m = _model()
    b = collate(_examples(), bos=CFG.bos, eos=CFG.eos)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    before, _ = m.loss(b)
    for _ in range(3):
        loss, _ = m.loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, _ = m.loss(b)
    assert float(after) < float(before) - 0.5
    assert m.text_table.requires_grad is False  # the pretrained LM's table stays frozen


def test_streaming_generation_equals_the_offline_forward_pass():
    """Frames generated one at a time with the KV cache are what the full-sequence forward pass
    predicts (greedy), so incremental decoding is exact; a prompt changes the continuation."""
    m = _model().eval()
    ex = _examples(3)[2]
    frames = m.generate(ex.text_ids, ex.speaker, ex.emotion, ex.prompt_codes, max_frames=6, min_frames=6,
                        temperature=0)
    assert frames.shape == (6, K) and frames.dtype == torch.long and int(frames.max()) < V
    check = TTSExample(ex.text_ids, frames, ex.speaker, ex.emotion, ex.prompt_codes)
    with torch.no_grad():
        logits = m(collate([check], bos=CFG.bos, eos=CFG.eos))[0]  # (N, K, V+1)
    p = len(ex.prompt_codes)
    pred = logits[p: p + 6].clone()
    pred[:, 1:, CFG.eos] = -math.inf
    pred[:, 0, CFG.eos] = -math.inf
    assert torch.equal(pred.argmax(-1), frames)
    no_prompt = m.generate(ex.text_ids, ex.speaker, ex.emotion, None, max_frames=6, min_frames=6, temperature=0)
    assert not torch.equal(no_prompt, frames)


def test_generation_stops_at_eos_and_respects_limits(monkeypatch):
    m = _model().eval()
    ex = _examples(1)[0]
    heads = m.frame_logits

    def eos_first(h):
        out = heads(h)
        out[..., 0, CFG.eos] = 1e4  # codebook 0 wants to end at once
        out[..., 1:, CFG.eos] = 1e4  # other codebooks may not end: must be masked
        return out

    monkeypatch.setattr(m, "frame_logits", eos_first)
    frames = m.generate(ex.text_ids, ex.speaker, ex.emotion, max_frames=20, min_frames=3, temperature=0)
    assert frames.shape == (3, K) and int(frames.max()) < V  # ends right after min_frames
    monkeypatch.setattr(m, "frame_logits", heads)
    assert len(m.generate(ex.text_ids, ex.speaker, ex.emotion, max_frames=4, min_frames=4, temperature=0)) == 4


def test_save_load_roundtrip_keeps_weights_and_the_default_voice(tmp_path):
    m = _model()
    voice = DefaultVoice(speaker=torch.randn(CFG.speaker_dim), prompt_codes=torch.randint(0, V, (5, K)),
                         prompt_text="A prompt.", name="spk")
    m.save_pretrained(tmp_path / "ck", voice=voice)
    saved = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert saved["kind"] == "kodama-tts" and saved["voice"]["text"] == "A prompt."
    from safetensors.torch import load_file

    assert not any("text_table" in k for k in load_file(str(tmp_path / "ck" / "model.safetensors")))
    m2 = KodamaTTS.from_pretrained(tmp_path / "ck")
    v2 = m2.default_voice
    b = collate(_examples(), bos=CFG.bos, eos=CFG.eos)
    with torch.no_grad():
        assert torch.allclose(m.eval()(b), m2(b), atol=1e-6)
    assert v2 is not None and torch.equal(v2.prompt_codes, voice.prompt_codes) and v2.name == "spk"
    assert torch.allclose(v2.speaker, voice.speaker)


def test_presets_and_bad_configs():
    assert preset("small").text_embeddings == "smollm2" and preset("paper").backbone == "qwen3"
    with pytest.raises(ConfigError, match="unknown Kodama-TTS preset"):
        preset("huge")
    with pytest.raises(ConfigError, match="local directory"):
        KodamaTTS(preset("paper", backbone_path="/nonexistent/qwen3"))


def test_qwen3_backbone_from_a_tiny_random_config():
    qcfg = {"vocab_size": 300, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 32, "intermediate_size": 128, "max_position_embeddings": 256}
    cfg = preset("tiny", backbone="qwen3", backbone_config=qcfg)
    torch.manual_seed(0)
    m = KodamaTTS(cfg)
    b = collate(_examples(), bos=cfg.bos, eos=cfg.eos)
    loss, _ = m.loss(b)
    assert torch.isfinite(loss)
    ex = _examples(1)[0]
    assert m.generate(ex.text_ids, ex.speaker, ex.emotion, max_frames=3, min_frames=3).shape == (3, K)


def test_q8_0_dequantization():
    scale = np.array([0.5, 2.0], np.float16)
    q = np.arange(64, dtype=np.int8).reshape(2, 32) - 16
    raw = np.concatenate([np.concatenate([scale[i: i + 1].view(np.uint8), q[i].view(np.uint8)]) for i in range(2)])
    out = dequantize_q8_0(raw, 2, 32)
    assert np.allclose(out, q.astype(np.float32) * scale.astype(np.float32)[:, None])


# -- the voice backend: cloning prompt and streaming decode -------------------------------------

def _voice(**kw) -> KodamaVoice:
    return KodamaVoice(TalkerConfig(backend="kodama", align=False), model=_model(), codec=FakeCodec(),
                       tokenizer=ByteTokenizer(), speaker_encoder=FakeSpeaker(), **kw)


def test_voice_streams_audio_while_generating_and_equals_offline_decode():
    v = _voice(sampling=SamplingConfig(temperature=0, first_chunk_frames=2, chunk_frames=3))
    chunks = list(v.stream("Hello there, captain."))
    pushes = v.codec.pushes
    assert pushes[0] == 2 and all(p == 3 for p in pushes[1:-1]) and 1 <= pushes[-1] <= 3
    assert [len(c) for c in chunks] == [p * HOP for p in pushes]  # one chunk per push, as they come
    ids = torch.tensor(ByteTokenizer().encode("Hello there, captain."))
    frames = v.model.generate(ids, v.prompt.speaker, emotion_vector(), v.prompt.codes, temperature=0,
                              max_frames=v.max_frames("Hello there, captain."),
                              min_frames=v.min_frames("Hello there, captain."))
    assert np.allclose(np.concatenate(chunks), v.codec.decode(frames.numpy()))
    sp = v.synthesize("Hello there, captain.", Emotion(label="joyful", intensity=0.5))
    assert sp.sample_rate == 24000 and sp.samples.dtype == np.float32 and sp.duration > 0


def test_cloning_prompt_from_a_reference_clip(tmp_path, monkeypatch):
    import soundfile as sf

    v = _voice(sampling=SamplingConfig(prompt_seconds=1.0))
    t = np.arange(int(2.5 * 24000)) / 24000
    wav = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    ref = tmp_path / "ref.wav"
    sf.write(ref, wav, 24000)
    heard = []
    monkeypatch.setattr(v, "_transcribe", lambda x, sr: heard.append(len(x) / sr) or "heard words")
    p = v.prompt_from_wav(ref)  # 2.5 s > prompt_seconds: cut to 1 s and transcribed
    assert heard == [1.0] and p.text == "heard words" and p.codes.shape == (12, K)
    assert p.speaker.shape == (CFG.speaker_dim,)
    short = tmp_path / "short.wav"
    sf.write(short, wav[:24000], 24000)
    (tmp_path / "short.normalized.txt").write_text("the transcript\n")
    p2 = v.prompt_from_wav(short)  # whole clip fits: its LibriTTS transcript is used
    assert p2.text == "the transcript" and len(heard) == 1
    v.prompt = p2
    ids = []
    v.tokenizer = type("T", (), {"encode": lambda self, s: ids.append(s) or ByteTokenizer().encode(s)})()
    list(v.stream("New words."))
    assert ids == ["the transcript New words."]  # transcript first, then the target text
    v2 = _voice(use_prompt=False)
    assert len(v2.prompt_from_wav(short).codes) == 0  # speaker-vector-only cloning
    with pytest.raises(InputError, match="does not exist"):
        v.prompt_from_wav(tmp_path / "missing.wav")


# -- data: curation, preparation, batches, a short training run ----------------------------------

def test_curation_drops_for_each_reason():
    cfg = CurationConfig(min_dnsmos=3.0, min_consistency=0.7, min_seconds=0.5, max_seconds=5.0)
    ok = (0.3 * np.sin(np.arange(24000) / 10)).astype(np.float32)
    good = judge(ok, 24000, cfg, quality=lambda x, sr: 3.3, consistency=lambda x, sr: 0.9)
    assert good.keep and good.dnsmos == 3.3
    assert not judge(ok[:1000], 24000, cfg, quality=None, consistency=None).keep
    assert judge(np.ones(24000, np.float32), 24000, cfg, quality=None, consistency=None).reason == "clipped"
    noisy = judge(ok, 24000, cfg, quality=lambda x, sr: 2.1, consistency=lambda x, sr: 0.9)
    mixed = judge(ok, 24000, cfg, quality=lambda x, sr: 3.3, consistency=lambda x, sr: 0.2)
    assert not noisy.keep and "DNSMOS" in noisy.reason and mixed.consistency == 0.2 and not mixed.keep
    s = summarize([good, noisy, mixed])
    assert s["kept"] == 1 and s["dropped"] == {"DNSMOS": 1, "speaker": 1}


def _corpus(root: Path, n: int = 6) -> Path:
    import soundfile as sf

    rows = []
    for i in range(n):
        spk = f"spk{i % 2}"
        secs = 1.0 + 0.3 * i
        t = np.arange(int(secs * 24000)) / 24000
        x = ((0.2 + 0.05 * i) * np.sin(2 * np.pi * (150 + 40 * (i % 2)) * t)).astype(np.float32)
        rel = f"{spk}/c0/{spk}_c0_{i:03d}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, x, 24000)
        rows.append({"path": rel, "speaker": spk, "text": f"sentence number {i}.", "split": "train"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _prepared(tmp_path: Path) -> TTSData:
    corpus = _corpus(tmp_path / "corpus")
    scores = iter([3.5, 3.5, 2.0, 3.5, 3.5, 3.5])  # the third utterance is "noisy"
    prepare(corpus, tmp_path / "data", codec=FakeCodec(), tokenizer=ByteTokenizer(), speaker_encoder=FakeSpeaker(),
            curation=CurationConfig(min_seconds=0.5), quality=lambda x, sr: next(scores))
    return load_data(tmp_path / "data")


def test_prepare_curates_encodes_and_loads(tmp_path):
    data = _prepared(tmp_path)
    assert len(data) == 5 and data.speakers == ["spk0", "spk1"]
    assert "sentence number 2." not in data.texts
    assert data.utt_codes(0).shape == (12, K) and data.utt_text(0).tolist() == ByteTokenizer().encode(data.texts[0])
    report = json.loads((tmp_path / "data" / "curation.json").read_text())
    assert report["total"] == 6 and report["kept"] == 5 and report["dropped"] == {"DNSMOS": 1}


def test_batches_are_deterministic_and_clone_within_a_speaker(tmp_path):
    data = _prepared(tmp_path)
    bt = Batcher(data, TrainConfig(batch_size=4, prompt_prob=1.0), bos=CFG.bos, eos=CFG.eos)
    a, b = bt.batch(3), bt.batch(3)
    assert torch.equal(a.audio_in, b.audio_in) and torch.equal(a.text_ids, b.text_ids)
    assert not torch.equal(bt.batch(4).targets, a.targets) or not torch.equal(bt.batch(4).text_ids, a.text_ids)
    rng = np.random.default_rng(0)
    ex = bt.example(0, rng)
    assert ex.prompt_codes is not None  # spk0 has other short utterances
    assert len(ex.text_ids) > len(data.utt_text(0))  # prompt transcript + target text
    dv = default_voice(data, "spk1", max_frames=50)
    assert dv.name == "spk1" and dv.prompt_codes.shape[1] == K


@pytest.mark.slow  # training
def test_train_writes_a_resumable_checkpoint_with_its_voice(tmp_path):
    data = _prepared(tmp_path)
    cfg = TrainConfig(batch_size=4, lr=3e-3, warmup=1)
    voice = default_voice(data, "spk0")
    hist = train(_model(), data, tmp_path / "run", steps=4, cfg=cfg, voice=voice, log_every=1, save_every=2,
                 progress=False)
    assert [h["step"] for h in hist] == [1, 2, 3, 4]
    m = KodamaTTS.from_pretrained(tmp_path / "run")
    v, meta = m.default_voice, m.pretrained_config
    assert meta["trained_steps"] == 4 and v is not None and v.name == "spk0"
    hist2 = train(_model(seed=1), data, tmp_path / "run", steps=6, cfg=cfg, voice=voice, log_every=1,
                  progress=False)
    assert [h["step"] for h in hist2] == [5, 6]  # resumed, not restarted


DDP_SCRIPT = r"""
import os, sys
sys.path.insert(0, sys.argv[2])
from test_tts import _model, _prepared
from mio.talker.tts.train import TrainConfig, train
from pathlib import Path
import torch.distributed as dist
data = _prepared(Path(sys.argv[1]) / ("rank" + os.environ["RANK"]))
m = _model()
train(m, data, Path(sys.argv[1]) / "ck", steps=2, cfg=TrainConfig(batch_size=2, warmup=1), progress=False)
# One file per rank: two ranks printing to one stdout can interleave their lines.
total = float(sum(p.sum() for p in m.parameters()))
(Path(sys.argv[1]) / f"rank{dist.get_rank()}.txt").write_text(repr(total))
dist.destroy_process_group()  # exiting with the gloo group up can abort in its teardown
"""


@pytest.mark.slow
def test_ddp_on_two_gloo_processes(tmp_path):
    reports = run_two_ranks(DDP_SCRIPT, tmp_path, str(Path(__file__).parent))
    totals = [float(r) for r in reports]
    assert totals[0] == pytest.approx(totals[1], rel=1e-6)  # replicas stayed identical
    assert (tmp_path / "ck" / "model.safetensors").is_file()


def test_streaming_through_the_kodama_codec_equals_offline_decode():
    """The adapter over engineer A's codec (a tiny random one): frames pushed in chunks decode to
    the same audio as one offline decode, so audio can be played while generation continues."""
    codec_mod = pytest.importorskip("mio.talker.codec")
    from mio.talker.tts.voice import NumpyCodec

    torch.manual_seed(0)
    codec = NumpyCodec(codec_mod.KodamaCodec(codec_mod.CodecConfig.tiny()).eval())
    assert (codec.sample_rate, codec.frame_rate, codec.n_codebooks) == (24000, 12.5, 8)
    codes = torch.randint(0, codec.codebook_size, (7, 8)).numpy()
    dec = codec.stream_decoder()
    streamed = np.concatenate([dec.push(codes[:2]), dec.push(codes[2:5]), dec.push(codes[5:])])
    dec.close()
    offline = codec.decode(codes)
    assert streamed.shape == offline.shape == (7 * HOP,)
    assert np.allclose(streamed, offline, atol=1e-4)
    wav = (0.3 * np.sin(np.arange(5 * HOP) / 7)).astype(np.float32)
    assert codec.encode(wav, 24000).shape == (5, 8)


def test_cli_commands_are_registered():
    from mio.cli import build_parser

    p = build_parser()
    a = p.parse_args(["tts", "Hello there.", "--voice", "ref.wav", "-o", "x.wav", "--emotion", "happy:0.5"])
    assert a.text == "Hello there." and a.voice == "ref.wav" and a.output == "x.wav"
    b = p.parse_args(["bench", "tts", "--quick", "--backends", "kodama,hibari"])
    assert b.quick and b.backends == "kodama,hibari" and b.output == "out/bench/tts.json"
    t = p.parse_args(["train", "tts", "--preset", "tiny", "--steps", "5", "--prepare-only"])
    assert t.preset == "tiny" and t.steps == 5 and t.prepare_only


def test_dnsmos_p808_scores_one_window():
    from mio.talker.tts.curation import dnsmos_p808

    t = np.arange(2 * 24000) / 24000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 0.3, tone.size).clip(-1, 1).astype(np.float32)
    a, b = dnsmos_p808(tone, 24000), dnsmos_p808(noise, 24000)
    assert 1.0 <= a <= 5.0 and 1.0 <= b <= 5.0 and a != b


@pytest.mark.slow
def test_resemblyzer_speaker_embedding_and_consistency():
    from mio.talker.tts.speaker import SpeakerEncoder

    enc = SpeakerEncoder()
    t = np.arange(4 * 24000) / 24000
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.5 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 24000) / k for k in range(1, 8))
    wav = (0.2 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2)).astype(np.float32)
    vec, cons = enc.analyze(wav, 24000)
    assert vec.shape == (256,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-3
    assert -1.0 <= cons <= 1.0 and cons > 0.5  # one synthetic "speaker" throughout
    with pytest.raises(InputError, match="too short"):
        enc.embed(wav[:1000], 24000)


def test_export_halves_the_weights_and_loads_back(tmp_path):
    from mio.talker.tts.train import export

    m = _model()
    m.save_pretrained(tmp_path / "ck", voice=DefaultVoice(torch.randn(CFG.speaker_dim), torch.zeros(3, K).long()))
    export(tmp_path / "ck", tmp_path / "ship")
    a, b = (tmp_path / "ck" / "model.safetensors").stat().st_size, (tmp_path / "ship" / "model.safetensors").stat().st_size
    assert b < 0.6 * a and (tmp_path / "ship" / "voice.safetensors").is_file()
    m2 = KodamaTTS.from_pretrained(tmp_path / "ship")
    v2 = m2.default_voice
    batch = collate(_examples(), bos=CFG.bos, eos=CFG.eos)
    with torch.no_grad():
        assert torch.allclose(m.eval()(batch), m2(batch), atol=2e-2)
    assert next(m2.parameters()).dtype == torch.float32 and v2 is not None


@pytest.mark.slow
def test_embedded_checkpoint_speaks_through_the_runtime_interface():
    """The committed checkpoint + its codec through the registry, as `mio say` creates it."""
    from mio.core import registry
    from mio.talker.tts.model import KodamaTTS

    EMBEDDED = KodamaTTS.embedded

    if not (EMBEDDED / "config.json").is_file():
        pytest.skip("no embedded Kodama-TTS checkpoint in this checkout")
    voice = registry.create("talker", "kodama", TalkerConfig(backend="kodama", align=False))
    sp = voice.synthesize("The birch canoe slid on the smooth planks.")
    assert sp.sample_rate == 24000 and sp.duration > 0.3 and np.all(np.isfinite(sp.samples))
    assert float(np.abs(sp.samples).max()) > 0.01  # not silence
