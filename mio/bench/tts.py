"""`mio bench tts`: Kodama-TTS beside the embedded voices on Harvard sentences: WER (whisper tiny.en),
DNSMOS, speaker similarity to held-out reference clips, first-chunk latency and RTF.

    result = bench_tts(cfg.talker, backends=["kodama", "hibari"], kodama=make_voice)   # -> out/bench/tts.json
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mio.bench.iis import HARVARD
from mio.metrics import talker as tm

TTS_BENCH_SENTENCES = 6  # Harvard sentences per backend (3 with --quick)
REFERENCE_UTTERANCES = 24  # held-out clips rendered for the references when no corpus has them


def reference_corpus(corpus: str | Path | None, out_dir: Path, progress: Callable[[str], None] = print) -> Path:
    """The folder whose held-out (test) speakers are the reference voices: `corpus` if given (it
    must have a test split), else out/codec-corpus if built, else held-out voices rendered once
    into OUT_DIR/codec-heldout, the set `mio bench codec` measures on."""
    from mio.bench.codec import DEFAULT_CORPUS, heldout_utterances

    cache = out_dir / "codec-heldout"
    utts = heldout_utterances(corpus, REFERENCE_UTTERANCES, cache, progress)
    if corpus is not None:
        return Path(corpus)
    return DEFAULT_CORPUS if utts and utts[0].path.is_relative_to(DEFAULT_CORPUS) else cache


def _references(corpus: Path, n: int) -> list[tuple[Path, str, str]]:
    """(wav, transcript, speaker) of held-out speakers: one clip per speaker, 1.5-4 s long."""
    import soundfile as sf

    from mio.talker.codec.data import scan

    out, seen = [], set()
    for u in scan(corpus, split="test"):
        if u.speaker in seen or not u.text:
            continue
        info = sf.info(str(u.path))
        if 1.5 <= info.duration <= 4.0:  # fits the 4 s prompt whole, with its own transcript
            out.append((u.path, u.text, u.speaker))
            seen.add(u.speaker)
        if len(out) >= n:
            break
    return out


def measure(name: str, synth, sentences: list[str], refs: list[tuple[np.ndarray, int]], *, transcribe, embed,
            progress=None) -> dict:
    """WER, DNSMOS, SIM to the reference, first-chunk latency and RTF of one backend.

    `synth(text, ref_index) -> (iterator of (samples, rate) chunks)`; each sentence is spoken once
    per reference (cycling through them)."""
    rows, lat, synth_s, audio_s = [], [], 0.0, 0.0
    for i, text in enumerate(sentences):
        r = i % max(1, len(refs))
        t0 = time.perf_counter()
        parts, first, rates = [], None, [24000]
        for samples, sr in synth(text, r):
            if first is None:
                first = time.perf_counter() - t0
            parts.append(samples)
            rates.append(sr)
        rate = rates[-1]
        wall = time.perf_counter() - t0
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        if audio.size < rate // 10:
            rows.append({"text": text, "asr": "", "wer": 1.0, "seconds": 0.0, "error": "no audio"})
            continue
        synth_s += wall
        audio_s += audio.size / rate
        lat.append(first or wall)
        hyp = transcribe(audio, rate, None)
        row = {"text": text, "asr": hyp, "wer": tm.wer(text, hyp), "dnsmos": tm.dnsmos(audio, rate)["ovrl_mos"],
               "seconds": round(audio.size / rate, 2), "first_chunk_s": round(first or wall, 3)}
        if refs:
            ref, ref_rate = refs[r]
            row["sim"] = tm.cosine(embed(ref, ref_rate), embed(audio, rate))
        rows.append(row)
        if progress:
            progress(f"{name}: {text!r} -> {hyp!r}")
    ok = [r for r in rows if "error" not in r]
    return {
        "wer": tm.wer([r["text"] for r in rows], [r["asr"] for r in rows]),
        "dnsmos": float(np.mean([r["dnsmos"] for r in ok])) if ok else None,
        "sim": float(np.mean([r["sim"] for r in ok])) if ok and refs else None,
        "first_chunk_s_median": float(np.median(lat)) if lat else None,
        "rtf": synth_s / audio_s if audio_s else None,
        "utterances": rows,
    }


def bench_tts(talker: Any, *, backends: list[str], kodama: Callable[[], Any], corpus: str | Path | None = None,
              out_dir: str | Path = "out/bench", quick: bool = False, previous: dict | None = None,
              progress: Callable[[str], None] = print) -> dict:
    """Every backend of `backends` on the same sentences; `kodama()` makes the Kodama voice (its
    checkpoint, codec and sampling are the command's); the reference voices come from
    `reference_corpus(corpus, out_dir)`; `previous`, an earlier result whose other backends are kept."""
    import soundfile as sf

    from mio.core import registry
    from mio.talker.asr import WhisperASR
    from mio.talker.tts.speaker import SpeakerEncoder

    sentences = list(HARVARD[: 3 if quick else TTS_BENCH_SENTENCES])
    ref_root = reference_corpus(corpus, Path(out_dir), progress)
    refs_meta = _references(ref_root, 2 if quick else 4)
    refs = []
    for path, _, _ in refs_meta:
        x, sr = sf.read(str(path), dtype="float32")
        refs.append((x, int(sr)))
    progress(f"{len(sentences)} sentences, {len(refs)} held-out reference voices from {ref_root}")
    asr = WhisperASR(threads=1)
    enc = SpeakerEncoder()
    results: dict[str, dict] = {}
    for k, v in (previous or {}).get("backends", {}).items():  # the other backends' figures of an earlier run
        if k not in backends:
            results[k] = v

    no_align = replace(talker, align=False)
    kodama_codec = None
    for backend in backends:
        progress(f"loading {backend} ...")
        t0 = time.perf_counter()
        if backend == "kodama":
            voice = kodama()
            kodama_codec = voice.codec
            prompts = [voice.prompt_from_wav(p, t) for p, t, _ in refs_meta] or [voice.prompt]

            def synth(text, r, voice=voice, prompts=prompts):
                voice.prompt = prompts[r % len(prompts)]
                return ((c, voice.codec.sample_rate) for c in voice.stream(text))
        else:
            voice = registry.create("talker", backend, replace(no_align, backend=backend))

            def synth(text, r, voice=voice):
                sp = voice.synthesize(text)  # not streaming: the whole clause is its first chunk
                return iter([(sp.samples, sp.sample_rate)])
        load_s = time.perf_counter() - t0
        if backend != "kodama":
            voice.warm()
        results[backend] = measure(backend, synth, sentences, refs, transcribe=asr.transcribe, embed=enc.embed,
                                   progress=progress)
        results[backend]["load_s"] = round(load_s, 2)
    if refs_meta and kodama_codec is not None:
        codec = kodama_codec  # the codec the kodama voice decodes with: its reconstruction ceiling
        rows = []
        for (_, text, _), (x, sr) in zip(refs_meta, refs, strict=True):
            y = codec.decode(codec.encode(x, sr))
            rows.append((text, y))
        results["codec-resynthesis"] = measure(
            "codec", lambda text, r: iter([(rows[r][1], codec.sample_rate)]), [t for t, _ in rows], refs,
            transcribe=asr.transcribe, embed=enc.embed, progress=progress)
        # decoded before timing: no latency to report; this row is the codec's reconstruction ceiling
        results["codec-resynthesis"].update(first_chunk_s_median=None, rtf=None,
                                            what="held-out reference clips encoded + decoded by the codec")
    ours, hibari = results.get("kodama"), results.get("hibari")
    beats = bool(ours and hibari and ours["wer"] <= hibari["wer"] and (ours["dnsmos"] or 0) >= hibari["dnsmos"])
    return {
        "suite": "tts",
        "sentences": sentences,
        "references": [{"path": str(p), "text": t, "speaker": s} for p, t, s in refs_meta],
        "backends": results,
        "default": "kodama" if beats else "hibari",
        "note": ("kodama beats hibari on WER and DNSMOS, so it could be the default" if beats else
                 "hibari stays the runtime default: the embedded Kodama-TTS checkpoint, trained for minutes on 2 "
                 "shared CPU cores, does not reach hibari's intelligibility/quality (see wer, dnsmos)"),
        "how": "WER: whisper tiny.en transcript vs text (normalised); DNSMOS: speechmos OVRL; SIM: cosine of "
               "Resemblyzer embeddings of the output and the held-out reference clip (hibari/piper cannot clone: "
               "their SIM is a baseline); first chunk: time to the first audio chunk (kodama streams; hibari and "
               "piper return the whole clause); RTF: synthesis time / audio time. Figures are medians/means on "
               "2 CPU cores shared with other jobs, so timings are inflated.",
    }


__all__ = ["REFERENCE_UTTERANCES", "TTS_BENCH_SENTENCES", "bench_tts", "measure", "reference_corpus"]
