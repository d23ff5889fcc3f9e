"""Kodama tokenizer end to end on real speech: corpus builder and loader, `mio train codec`
(single process, resume, DDP on 2 gloo processes), `mio codec encode|decode`, `mio bench codec`,
and the embedded checkpoint. Voices are Debian's espeak-ng; the teacher is whisper tiny."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mio.cli import main
from mio.core.errors import InputError
from mio.talker.codec.data import VOICES, build_corpus, load_audio, scan, story_sentences
from tests.torchrun import run_two_ranks

pytestmark = pytest.mark.slow
ESPEAK = tuple(v for v in VOICES if v.engine == "espeak")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    return build_corpus(root, n_train=6, n_test=2, voices=ESPEAK)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> Path:
    from mio.talker.codec.config import CodecConfig
    from mio.talker.codec.train import CodecTrainConfig, train_codec

    out = tmp_path_factory.mktemp("run")
    tcfg = CodecTrainConfig(steps=4, batch=2, segment_frames=4, gan_start=2, warmup=2)
    train_codec(corpus, out, CodecConfig.tiny(), tcfg, save_every=2, threads=1, progress=False)
    return out


def test_corpus_has_a_libritts_layout_and_held_out_voices(corpus):
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    for r in rows:
        wav = corpus / r["path"]
        speaker, chapter, name = Path(r["path"]).parts
        assert name.startswith(f"{speaker}_{chapter}_") and wav.with_suffix(".normalized.txt").is_file()
        info = sf.info(wav)
        assert info.samplerate == 24000 and info.channels == 1 and info.duration > 0.5
    train_spk = {r["speaker"] for r in rows if r["split"] == "train"}
    test_spk = {r["speaker"] for r in rows if r["split"] == "test"}
    assert train_spk and test_spk and not train_spk & test_spk
    assert len(story_sentences()) > 300


def test_loader_reads_a_plain_libritts_folder(tmp_path):
    d = tmp_path / "19" / "198"
    d.mkdir(parents=True)
    sf.write(d / "19_198_000000_000000.wav", np.zeros(16000, np.float32) + 0.1, 16000)
    (d / "19_198_000000_000000.normalized.txt").write_text("Hello there.\n")
    (utt,) = scan(tmp_path)
    assert utt.speaker == "19" and utt.text == "Hello there." and utt.split == "train"
    assert load_audio(utt.path).shape == (24000,)
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with pytest.raises(InputError, match="cannot read"):
        load_audio(tmp_path / "bad.wav")
    with pytest.raises(InputError, match="does not exist"):
        scan(tmp_path / "nope")


def test_training_writes_checkpoints_and_resumes(trained, corpus):
    from mio.talker.codec.config import CodecConfig
    from mio.talker.codec.train import CodecTrainConfig, train_codec

    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["kind"] == "kodama-codec" and cfg["trained_steps"] == 4 and cfg["teacher"] == "whisper-tiny"
    logs = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    assert "adv" in logs[-1] and "d" in logs[-1]  # the GAN joined at step 2
    assert (trained / "train_state" / "modules" / "disc.safetensors").is_file()
    last = train_codec(corpus, trained, CodecConfig.tiny(),
                       CodecTrainConfig(steps=6, batch=2, segment_frames=4, gan_start=2, warmup=2),
                       save_every=2, threads=1, progress=False)
    assert last["step"] == 6
    assert json.loads((trained / "config.json").read_text())["trained_steps"] == 6


DDP_SCRIPT = r"""
import sys, torch
from mio.talker.codec.config import CodecConfig
from mio.talker.codec.train import CodecTrainConfig, train_codec
from mio.train.dist import init_distributed
info = init_distributed()
train_codec(sys.argv[2], sys.argv[1] + "/ck", CodecConfig.tiny(), CodecTrainConfig(steps=2, batch=2, segment_frames=4,
            gan_start=1, warmup=1), save_every=2, threads=1, progress=False)
from mio.talker.codec import KodamaCodec
m = KodamaCodec.from_pretrained(sys.argv[1] + "/ck")
with open(f"{sys.argv[1]}/rank{info.rank}.txt", "w") as f:
    print(info.world_size, float(sum(p.double().sum() for p in m.parameters())), file=f)
from mio.train import shutdown_distributed
shutdown_distributed()  # exiting with the gloo group up can abort in its teardown
"""


def test_ddp_on_two_gloo_processes(corpus, trained, tmp_path):
    rows = [r.split() for r in run_two_ranks(DDP_SCRIPT, tmp_path, str(corpus), timeout=600)]
    assert all(r[0] == "2" for r in rows) and rows[0][1] == rows[1][1]


def test_cli_encode_decode_any_speech_file(trained, corpus, tmp_path, capsys):
    x = load_audio(next(iter(scan(corpus, split="test"))).path)
    stereo = np.stack([x, x * 0.5], axis=1)[::3]  # ~8 kHz stereo: resampled and mixed down
    src = tmp_path / "in.wav"
    sf.write(src, stereo, 8000)
    codes, wav = tmp_path / "codes.npz", tmp_path / "out.wav"
    assert main(["codec", "encode", str(src), "-o", str(codes), "--checkpoint", str(trained)]) == 0
    with np.load(codes) as z:
        assert z["codes"].shape[0] == 8 and int(z["n_samples"]) == round(len(stereo) * 3)
    assert main(["codec", "decode", str(codes), "-o", str(wav), "--checkpoint", str(trained)]) == 0
    y, sr = sf.read(wav)
    assert sr == 24000 and len(y) == round(len(stereo) * 3)
    bad = tmp_path / "bad.wav"
    bad.write_text("hello")
    assert main(["codec", "encode", str(bad), "-o", str(codes), "--checkpoint", str(trained)]) == 2
    assert main(["codec", "decode", str(bad), "-o", str(wav), "--checkpoint", str(trained)]) == 2
    assert main(["codec", "encode", str(tmp_path / "missing.wav"), "-o", str(codes)]) == 2
    assert "mio: error" in capsys.readouterr().err


def test_bench_codec_reports_quality_and_speed_beside_mimi(trained, corpus, tmp_path):
    from mio.bench.codec import bench_codec

    r = bench_codec(str(trained), corpus=str(corpus), quick=True, threads=1, out_dir=tmp_path)
    s = r["summary"]
    assert r["held_out"]["utterances"] == 2
    for key in ("stoi", "pesq_nb", "pesq_wb", "sim", "offline_rtf", "stream_ms_per_frame"):
        assert key in s
    assert s["bitrate_bps"] == 1000.0 and -1 <= s["sim"] <= 1
    mimi = r["speed"]["mimi"]
    assert "error" not in mimi, mimi
    assert mimi["streaming"]["ms_per_frame_median"] > 0 and s["mimi_offline_rtf"] > 0


def test_embedded_checkpoint_reconstructs_held_out_speech(corpus):
    from pystoi import stoi

    from mio.talker.codec import KodamaCodec
    from mio.talker.codec.stream import decode_array, encode_array

    codec = KodamaCodec.from_pretrained()
    assert codec.cfg.bitrate == 1000.0
    scores = []
    for utt in scan(corpus, split="test"):
        x = load_audio(utt.path)
        with torch.inference_mode():
            y = decode_array(codec, encode_array(codec, x))[: len(x)]
        scores.append(stoi(x, y, 24000))
    assert np.mean(scores) > 0.65, scores  # untrained ~0.38, first checkpoint ~0.68; the bench reports the real figure


def test_stoi_split_names_the_bottleneck(corpus):
    """Own magnitude + reference phase vs reference magnitude + own phase: a reconstruction with
    the reference's phase but magnitudes blurred over 80 ms must lose on the first, not the second."""
    from pystoi import stoi

    from mio.bench.codec import stoi_split

    x = load_audio(scan(corpus, split="test")[0].path)
    same = stoi_split(x, x, stoi)
    assert same["stoi_own_magnitude"] > 0.99 and same["stoi_own_phase"] > 0.99
    win = torch.hann_window(960)
    spec = torch.stft(torch.from_numpy(x), 960, 240, window=win, return_complex=True)
    mag = spec.abs()
    t = mag.shape[1] // 8 * 8
    mag[:, :t] = mag[:, :t].reshape(mag.shape[0], -1, 8).mean(-1, keepdim=True).expand(-1, -1, 8).reshape(-1, t)
    y = torch.istft(torch.polar(mag, spec.angle()), 960, 240, window=win, length=len(x)).numpy()
    split = stoi_split(x, y, stoi)
    assert split["stoi_own_phase"] > 0.95 and split["stoi_own_magnitude"] < split["stoi_own_phase"] - 0.05, split


def test_cli_resume_keeps_the_runs_own_model_settings(corpus, tmp_path):
    out = tmp_path / "run"
    flags = ["train", "codec", "--corpus", str(corpus), "--preset", "tiny", "--batch", "2", "--segment-frames", "4",
             "--gan-start", "100", "--save-every", "2", "--threads", "1", "--out", str(out)]
    assert main([*flags, "--steps", "2", "--quantizer", "cosine"]) == 0
    assert main([*flags, "--steps", "4", "--vocos-layers", "3"]) == 0  # flags that would change the model: ignored
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["trained_steps"] == 4 and cfg["quantizer"] == "cosine" and cfg["vocos_layers"] == 1


REVIVE_SCRIPT = r"""
import sys, torch, torch.distributed as dist
from mio.talker.codec.quant import VectorQuantizer
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(rank)  # different latents per rank, as under DDP
vq = VectorQuantizer(8, codebook_size=16, code_dim=4).train()
vq(torch.randn(2, 8, 5))
vq.usage.fill_(1.0)
if rank == 0:
    vq.usage[:3] = 0.0  # only rank 0's batches left codes unused
n = vq.revive_dead_codes()
with open(f"{sys.argv[1]}/rank{rank}.txt", "w") as f:
    print(rank, n, float(vq.codebook.weight.double().sum()), float(vq.usage.sum()), file=f)
dist.destroy_process_group()
"""


def test_reviving_codes_under_ddp_when_ranks_disagree(tmp_path):
    """Ranks see different batches, so their code usage differs; reviving must not deadlock and
    must leave identical codebooks (a one-sided broadcast hung a 2-process run at step 899)."""
    rows = sorted(r.split() for r in run_two_ranks(REVIVE_SCRIPT, tmp_path, timeout=120))
    assert [r[0] for r in rows] == ["0", "1"] and rows[0][1:] == rows[1][1:] and rows[0][1] == "3"
