"""`mio bench codec`: the Kodama tokenizer on held-out speech (§7.1 reconstruction metrics) and
its speed beside Mimi's architecture, in the same run.

Quality, per held-out utterance (voices and sentences never used in training): STOI, PESQ-NB
(8 kHz) and PESQ-WB (16 kHz), speaker similarity (cosine of Resemblyzer embeddings, the
offline stand-in for WavLM-SV), and the bitrate. Speed on this machine: offline real-time
factor (encode + decode of whole utterances / duration) and the streaming cost of one 80 ms
frame (encode step + decode step). Mimi (moshi 0.2.13) runs at random weights for speed only:
its architecture, not its quality, is the reference.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mio.core.errors import BackendError, InputError
from mio.talker.codec.config import SAMPLE_RATE
from mio.talker.codec.data import VOICES, build_corpus, load_audio, scan
from mio.talker.codec.stream import (
    StreamingDecoder,
    StreamingEncoder,
    decode_array,
    encode_array,
    load_codec,
)
from mio.talker.voices._common import resample

BUDGET_MS_PER_FRAME = 20.0  # ARCHITECTURE.md §7: streaming encode + decode per 80 ms frame
BUDGET_RTF = 0.05
TARGET_STOI = 0.85
PAPER = {"stoi": (0.91, 0.95), "pesq_wb": (2.35, 2.67), "pesq_nb": (2.88, 3.26), "sim": (0.81, 0.81)}


DEFAULT_CORPUS = Path("out/codec-corpus")  # what `mio train codec --build-corpus` writes


def heldout_utterances(corpus: str | Path | None, n: int, cache: Path, progress: Callable[[str], None]) -> list:
    """The held-out (test) utterances to measure on: `corpus`'s when given (it must have a test
    split); else those of out/codec-corpus when `mio train codec --build-corpus` made one; else
    held-out voices' utterances rendered into `cache` (once, with a progress bar; a later run that
    asks for more adds to them)."""
    if corpus is not None:
        utts = scan(corpus, split="test") if Path(corpus).is_dir() else []
        if not utts:
            raise InputError(f"{corpus} has no held-out split (a manifest.jsonl listing 'test' utterances): make "
                             f"one with `mio train codec --build-corpus --corpus {corpus}`, or leave --corpus out "
                             f"to use held-out voices rendered into {cache}")
        return utts[:n]
    if (DEFAULT_CORPUS / "manifest.jsonl").is_file():
        utts = scan(DEFAULT_CORPUS, split="test")
        if utts:
            return utts[:n]
    have = scan(cache, split="test") if (cache / "manifest.jsonl").is_file() else []
    if len(have) < n:
        progress(f"rendering {n} held-out utterances into {cache} (once)")
        build_corpus(cache, n_train=0, n_test=n, voices=tuple(v for v in VOICES if v.held_out), bar=True)
        have = scan(cache, split="test")
    return have[:n]


# --- quality --------------------------------------------------------------------------------

class Quality:
    """STOI, PESQ-NB/WB and Resemblyzer SIM of a reconstruction against its reference."""

    def __init__(self) -> None:
        try:
            from pesq import pesq
            from pystoi import stoi
        except ImportError as e:
            raise BackendError(f"the codec metrics need pesq and pystoi (the bench extra): {e}") from e
        self._pesq, self._stoi = pesq, stoi
        self._enc = None

    def _embed(self, x: np.ndarray) -> np.ndarray:
        if self._enc is None:
            from resemblyzer import VoiceEncoder

            self._enc = VoiceEncoder(device="cpu", verbose=False)
        from resemblyzer import preprocess_wav

        return self._enc.embed_utterance(preprocess_wav(x, source_sr=SAMPLE_RATE))

    def __call__(self, ref: np.ndarray, deg: np.ndarray) -> dict[str, float | None]:
        n = min(len(ref), len(deg))
        ref, deg = ref[:n], deg[:n]
        out: dict[str, float | None] = {"stoi": float(self._stoi(ref, deg, SAMPLE_RATE, extended=False)),
                                        **stoi_split(ref, deg, self._stoi)}
        for key, rate, mode in (("pesq_nb", 8000, "nb"), ("pesq_wb", 16000, "wb")):
            try:
                out[key] = float(self._pesq(rate, resample(ref, SAMPLE_RATE, rate), resample(deg, SAMPLE_RATE, rate), mode))
            except Exception:  # noqa: BLE001 - pesq raises on silent or too-short input
                out[key] = None
        a, b = self._embed(ref), self._embed(deg)
        out["sim"] = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
        return out


def stoi_split(ref: np.ndarray, deg: np.ndarray, stoi: Callable[..., float], n_fft: int = 960,
               hop: int = 240) -> dict[str, float]:
    """Where a reconstruction loses intelligibility: STOI of the reconstruction's STFT magnitude
    with the reference's phase (`stoi_own_magnitude`), and of the reference's magnitude with the
    reconstruction's phase (`stoi_own_phase`). The lower one names the bottleneck: a decoder
    whose phase is fine but whose magnitudes are off scores high on the second and low on the
    first. (Reference magnitude with random phase scores ~0.85 on this corpus; Griffin-Lim ~0.98.)"""
    win = torch.hann_window(n_fft)
    x, y = torch.from_numpy(np.asarray(ref, np.float32)), torch.from_numpy(np.asarray(deg, np.float32))
    sx, sy = (torch.stft(v, n_fft, hop, window=win, return_complex=True) for v in (x, y))

    def resynth(mag: torch.Tensor, phase: torch.Tensor) -> np.ndarray:
        return torch.istft(torch.polar(mag, phase), n_fft, hop, window=win, length=len(x)).numpy()

    return {"stoi_own_magnitude": float(stoi(ref, resynth(sy.abs(), sx.angle()), SAMPLE_RATE, extended=False)),
            "stoi_own_phase": float(stoi(ref, resynth(sx.abs(), sy.angle()), SAMPLE_RATE, extended=False))}


# --- speed ----------------------------------------------------------------------------------

def _offline_rtf(encode: Callable[[torch.Tensor], Any], decode: Callable[[Any], torch.Tensor],
                 clips: list[np.ndarray], repeats: int) -> dict[str, float]:
    """Best of `repeats` per clip, as wall time and as this process's CPU time (the latter does
    not grow when other jobs share the cores; with one thread it is the cost on a free core)."""
    rtfs, cpu = [], []
    with torch.inference_mode():
        encode(torch.from_numpy(clips[0][: 1920 * 4])[None, None])  # warm-up
        for x in clips:
            wav = torch.from_numpy(np.pad(x, (0, (-len(x)) % 1920)))[None, None]
            best, best_cpu = float("inf"), float("inf")
            for _ in range(repeats):
                t, c = time.perf_counter(), time.process_time()
                decode(encode(wav))
                best = min(best, time.perf_counter() - t)
                best_cpu = min(best_cpu, time.process_time() - c)
            rtfs.append(best / (len(x) / SAMPLE_RATE))
            cpu.append(best_cpu / (len(x) / SAMPLE_RATE))
    return {"median": statistics.median(rtfs), "max": max(rtfs), "cpu_median": statistics.median(cpu),
            "clips": len(clips)}


def _frame_costs(step_encode, step_decode, clip: np.ndarray, frames: int) -> dict[str, float]:
    enc_ms, dec_ms, cpu_ms = [], [], []
    x = np.pad(clip, (0, max(0, frames * 1920 - len(clip))))
    for i in range(frames):
        fr = torch.from_numpy(x[i * 1920:(i + 1) * 1920])[None, None]
        c0, t0 = time.process_time(), time.perf_counter()
        codes = step_encode(fr)
        t1 = time.perf_counter()
        step_decode(codes)
        t2, c2 = time.perf_counter(), time.process_time()
        enc_ms.append((t1 - t0) * 1e3)
        dec_ms.append((t2 - t1) * 1e3)
        cpu_ms.append((c2 - c0) * 1e3)
    tot = sorted(e + d for e, d in zip(enc_ms[2:], dec_ms[2:], strict=True))  # first frames warm up
    return {"encode_ms_median": statistics.median(enc_ms[2:]), "decode_ms_median": statistics.median(dec_ms[2:]),
            "ms_per_frame_median": statistics.median(tot), "ms_per_frame_p95": tot[int(0.95 * (len(tot) - 1))],
            "cpu_ms_per_frame_median": statistics.median(cpu_ms[2:]), "frames": len(tot), "frame_ms": 80.0}


def kodama_speed(codec, clips: list[np.ndarray], frames: int, repeats: int) -> dict[str, Any]:
    off = _offline_rtf(codec.encode, codec.decode, clips, repeats)
    with StreamingEncoder(codec) as enc, StreamingDecoder(codec) as dec:
        stream = _frame_costs(enc.step, dec.step, clips[0], frames)
    return {"offline_rtf": off, "streaming": stream}


def mimi_speed(clips: list[np.ndarray], frames: int, repeats: int) -> dict[str, Any]:
    """Mimi at random weights (speed only); moshi 0.2.13 installed without its dependencies."""
    try:
        from moshi.models import loaders
    except Exception as e:  # noqa: BLE001 - a partial install can fail in many ways
        return {"error": f"moshi==0.2.13 is not importable ({type(e).__name__}: {e}); `bash scripts/setup.sh` installs it"}
    torch.manual_seed(0)
    mimi = loaders.get_mimi(None, device="cpu", num_codebooks=8).eval()
    off = _offline_rtf(mimi.encode, mimi.decode, clips, repeats)
    with torch.inference_mode(), mimi.streaming(1):
        stream = _frame_costs(mimi.encode, mimi.decode, clips[0], frames)
    params = sum(p.numel() for p in mimi.parameters())
    return {"offline_rtf": off, "streaming": stream, "params_m": round(params / 1e6, 1),
            "weights": "random (speed only)", "frame_rate": float(mimi.frame_rate), "codebooks": 8,
            "bitrate": float(mimi.frame_rate) * 8 * 11}


# --- the suite --------------------------------------------------------------------------------

def bench_codec(checkpoint: str | None = None, *, corpus: str | None = None, utterances: int = 24,
                quick: bool = False, mimi: bool = True, threads: int = 2, out_dir: str | Path = "out/bench",
                progress: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    n = 6 if quick else utterances
    codec = load_codec(checkpoint)  # a bad checkpoint is said before any speech is rendered
    utts = heldout_utterances(corpus, n, Path(out_dir) / "codec-heldout", progress)
    cfg = codec.cfg
    progress(f"Kodama ({sum(p.numel() for p in codec.parameters()) / 1e6:.1f} M parameters) on {len(utts)} held-out utterances")
    q = Quality()
    rows = []
    for u in utts:
        x = load_audio(u.path)
        y = decode_array(codec, encode_array(codec, x))[: len(x)]
        rows.append({"path": str(u.path), "speaker": u.speaker, "seconds": round(len(x) / SAMPLE_RATE, 2), **q(x, y)})
    clips = [load_audio(u.path) for u in utts[: 3 if quick else 8]]
    frames = 40 if quick else 100
    repeats = 1 if quick else 2
    progress("Kodama speed (offline and streaming)")
    speed = {"kodama": kodama_speed(codec, clips, frames, repeats)}
    if mimi:
        progress("Mimi speed (random weights)")
        speed["mimi"] = mimi_speed(clips[:3], min(frames, 50), 1)  # ~10x slower: fewer clips and frames

    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return round(float(np.mean(vals)), 4) if vals else None

    k = speed["kodama"]
    summary = {
        "stoi": mean("stoi"), "stoi_own_magnitude": mean("stoi_own_magnitude"),
        "stoi_own_phase": mean("stoi_own_phase"), "pesq_nb": mean("pesq_nb"), "pesq_wb": mean("pesq_wb"), "sim": mean("sim"),
        "bitrate_bps": cfg.bitrate, "frame_rate_hz": cfg.frame_rate, "codebooks": cfg.n_q,
        "codebook_size": cfg.codebook_size,
        "offline_rtf": round(k["offline_rtf"]["median"], 4),
        "offline_rtf_cpu": round(k["offline_rtf"]["cpu_median"], 4),
        "stream_ms_per_frame": round(k["streaming"]["ms_per_frame_median"], 2),
        "stream_ms_per_frame_p95": round(k["streaming"]["ms_per_frame_p95"], 2),
        "stream_cpu_ms_per_frame": round(k["streaming"]["cpu_ms_per_frame_median"], 2),
        "threads": threads,
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }
    if "mimi" in speed and "error" not in speed["mimi"]:
        m = speed["mimi"]
        summary["mimi_offline_rtf"] = round(m["offline_rtf"]["median"], 4)
        summary["mimi_offline_rtf_cpu"] = round(m["offline_rtf"]["cpu_median"], 4)
        summary["mimi_stream_ms_per_frame"] = round(m["streaming"]["ms_per_frame_median"], 2)
        summary["mimi_stream_cpu_ms_per_frame"] = round(m["streaming"]["cpu_ms_per_frame_median"], 2)
    checks = {
        "stream_ms_per_frame": {"budget": BUDGET_MS_PER_FRAME, "ok": summary["stream_ms_per_frame"] <= BUDGET_MS_PER_FRAME,
                                "ok_cpu_time": summary["stream_cpu_ms_per_frame"] <= BUDGET_MS_PER_FRAME},
        "offline_rtf": {"budget": BUDGET_RTF, "ok": summary["offline_rtf"] <= BUDGET_RTF,
                        "ok_cpu_time": summary["offline_rtf_cpu"] <= BUDGET_RTF},
        "stoi": {"target": TARGET_STOI, "ok": summary["stoi"] is not None and summary["stoi"] >= TARGET_STOI},
    }
    return {
        "suite": "codec",
        "quick": quick,
        "checkpoint": str(checkpoint or "embedded"),
        "config": cfg.to_dict(),
        "held_out": {"utterances": len(rows), "speakers": sorted({r["speaker"] for r in rows}),
                     "note": "voices and sentences never used in training"},
        "summary": summary,
        "checks": checks,
        "paper_kodama": PAPER,
        "metric_notes": {"sim": "Resemblyzer (GE2E) cosine, stand-in for the paper's WavLM-Large SV model",
                         "pesq": "ITU-T P.862 via the pesq package: NB at 8 kHz, WB at 16 kHz"},
        "speed": speed,
        "utterances": rows,
        "machine": {"cpus": os.cpu_count(), "threads": threads, "platform": platform.platform(),
                    "loadavg_1min": round(os.getloadavg()[0], 2), "torch": torch.__version__},
        "wall_s": round(time.perf_counter() - t_start, 1),
    }


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    m = result["speed"].get("mimi", {})

    def f(v, p=3):
        return "n/a" if v is None else f"{v:.{p}f}"

    lines = [
        f"Kodama tokenizer ({result['checkpoint']}) on {result['held_out']['utterances']} held-out utterances "
        f"({', '.join(result['held_out']['speakers'])})",
        "",
        "| metric | Kodama (ours) | paper Kodama | Mimi (random weights) |",
        "|---|---|---|---|",
        f"| STOI | {f(s['stoi'])} | 0.91-0.95 | — |",
        f"| STOI, own magnitude + reference phase | {f(s.get('stoi_own_magnitude'))} | — | — |",
        f"| STOI, reference magnitude + own phase | {f(s.get('stoi_own_phase'))} | — | — |",
        f"| PESQ-NB | {f(s['pesq_nb'], 2)} | 2.88-3.26 | — |",
        f"| PESQ-WB | {f(s['pesq_wb'], 2)} | 2.35-2.67 | — |",
        f"| SIM (Resemblyzer) | {f(s['sim'])} | 0.81 (WavLM-SV) | — |",
        f"| bitrate | {s['bitrate_bps']:.0f} bps | 1000 bps | {f(m.get('bitrate'), 0)} bps |",
        f"| offline RTF, wall (budget {BUDGET_RTF}) | {f(s['offline_rtf'], 4)} | — | {f(s.get('mimi_offline_rtf'), 4)} |",
        f"| offline RTF, CPU time | {f(s['offline_rtf_cpu'], 4)} | — | {f(s.get('mimi_offline_rtf_cpu'), 4)} |",
        f"| streaming ms per 80 ms frame, wall (budget {BUDGET_MS_PER_FRAME:.0f}) | {f(s['stream_ms_per_frame'], 2)} "
        f"(p95 {f(s['stream_ms_per_frame_p95'], 2)}) | — | {f(s.get('mimi_stream_ms_per_frame'), 2)} |",
        f"| streaming ms per frame, CPU time | {f(s['stream_cpu_ms_per_frame'], 2)} | — "
        f"| {f(s.get('mimi_stream_cpu_ms_per_frame'), 2)} |",
        "",
        f"{s['threads']} torch thread(s); 1-min load average {s['loadavg_1min']} on {os.cpu_count()} cores. CPU time "
        "is what the process itself used: above a load of one per core, wall time also counts the waits for "
        "other jobs.",
    ]
    if "error" in m:
        lines.append(f"\nMimi: {m['error']}")
    return "\n".join(lines)
