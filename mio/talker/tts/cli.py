"""`mio tts` and `mio bench tts` (registered into `mio` by mio/cli.py's EXTENSIONS).

    mio tts "Hello there." --voice ref.wav -o out.wav      # Kodama-TTS, cloning ref.wav
    mio bench tts                                          # kodama vs hibari vs piper -> out/bench/tts.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mio.core import atomic
from mio.core.errors import InputError

TTS_BENCH_SENTENCES = 6  # Harvard sentences per backend (3 with --quick)


def _say(msg: str) -> None:
    print(f"\033[2m[mio tts]\033[0m {msg}", file=sys.stderr, flush=True)


def _emotion(spec: str | None):
    if not spec:
        return None
    from mio.core.emotions import resolve
    from mio.core.frames import Emotion
    from mio.talker.tts.model import EMOTIONS

    label, _, inten = spec.partition(":")
    try:
        emotion = Emotion(label=label, intensity=float(inten) if inten else 1.0)
    except ValueError as e:
        raise InputError(f"--emotion must be LABEL or LABEL:INTENSITY, got {spec!r}") from e
    if resolve(emotion)[0] not in EMOTIONS:  # an unknown label would be spoken as neutral, silently
        raise InputError(f"unknown --emotion {label!r}; the voice knows {', '.join(EMOTIONS)} (and synonyms "
                         "such as joyful, worried)")
    return emotion


def _voice(args: argparse.Namespace):
    from mio.cli import config_from_args
    from mio.talker.tts.voice import KodamaVoice, SamplingConfig

    cfg = config_from_args(args).talker
    cfg = replace(cfg, backend="kodama", checkpoint=args.checkpoint or cfg.checkpoint, codec=args.codec or cfg.codec,
                  reference=None, align=False)  # stream() yields bare audio; no timings needed
    sampling = SamplingConfig(temperature=args.temperature, seed=args.seed)
    voice = KodamaVoice(cfg, sampling=sampling, use_prompt=not args.no_prompt)
    if args.voice:
        voice.prompt = voice.prompt_from_wav(args.voice, args.voice_text)
        _say(f"cloning {args.voice}: {len(voice.prompt.codes)} prompt frames, transcript {voice.prompt.text!r}")
    return voice


def _tts(args: argparse.Namespace) -> int:
    import soundfile as sf

    from mio.core.atomic import atomic_output
    from mio.runtime.transports.mp4 import check_output

    out = check_output(args.output, {".wav": "the speech"})
    if not args.text.strip():
        raise InputError("the text is empty")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise InputError(f"--temperature must be a finite number >= 0 (0: greedy), got {args.temperature}")
    emotion = _emotion(args.emotion)  # before the model loads: a typo costs nothing
    t0 = time.perf_counter()
    voice = _voice(args)
    _say(f"model ready in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    chunks, first = [], None
    for chunk in voice.stream(args.text, emotion):
        if first is None:
            first = time.perf_counter() - t0
        chunks.append(chunk)
    wall = time.perf_counter() - t0
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if audio.size == 0:
        raise InputError("the model produced no audio (it ended at once); try another --seed")
    with atomic_output(out) as tmp:
        sf.write(tmp, np.clip(audio, -1, 1), voice.codec.sample_rate, subtype="PCM_16", format="WAV")
    dur = audio.size / voice.codec.sample_rate
    print(f"wrote {out}: {dur:.2f} s of audio; first chunk after {first:.3f} s, RTF {wall / dur:.3f}")
    return 0


# -- bench ------------------------------------------------------------------------------------

REFERENCE_UTTERANCES = 24  # held-out clips rendered for the references when no corpus has them


def reference_corpus(corpus: str | None, out_dir: Path) -> Path:
    """The folder whose held-out (test) speakers are the reference voices: `corpus` if given (it
    must have a test split), else out/codec-corpus if built, else held-out voices rendered once
    into OUT_DIR/codec-heldout, the set `mio bench codec` measures on."""
    from mio.talker.codec.bench import DEFAULT_CORPUS, heldout_utterances

    cache = out_dir / "codec-heldout"
    utts = heldout_utterances(corpus, REFERENCE_UTTERANCES, cache, _say)
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
    from mio.bench.metrics import talker as tm

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


def _bench(args: argparse.Namespace) -> int:
    import soundfile as sf

    from mio.bench.iis import HARVARD
    from mio.cli import config_from_args
    from mio.core import registry
    from mio.talker.asr import WhisperASR
    from mio.talker.tts.speaker import SpeakerEncoder

    cfg = config_from_args(args)
    sentences = list(HARVARD[: 3 if args.quick else TTS_BENCH_SENTENCES])
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in registry.names("talker")]
    if unknown or not backends:  # said before any reference speech is rendered
        raise InputError(f"--backends {args.backends!r}: unknown {unknown or 'empty'}; choose from "
                         f"{', '.join(registry.names('talker'))}")
    ref_root = reference_corpus(args.corpus, Path(args.output).parent)
    refs_meta = _references(ref_root, 2 if args.quick else 4)
    refs = []
    for path, _, _ in refs_meta:
        x, sr = sf.read(str(path), dtype="float32")
        refs.append((x, int(sr)))
    _say(f"{len(sentences)} sentences, {len(refs)} held-out reference voices from {ref_root}")
    asr = WhisperASR(threads=1)
    enc = SpeakerEncoder()
    results: dict[str, dict] = {}
    out = Path(args.output)
    if args.merge and out.is_file():  # keep the other backends' figures from an earlier run
        results = {k: v for k, v in json.loads(out.read_text()).get("backends", {}).items()
                   if k not in args.backends.split(",")}

    no_align = replace(cfg.talker, align=False)
    kodama_codec = None
    for backend in backends:
        _say(f"loading {backend} ...")
        t0 = time.perf_counter()
        if backend == "kodama":
            voice = _voice(argparse.Namespace(**{**vars(args), "voice": None, "voice_text": None}))
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
                                   progress=_say)
        results[backend]["load_s"] = round(load_s, 2)
    if refs_meta and kodama_codec is not None:
        codec = kodama_codec  # the codec the kodama voice decodes with: its reconstruction ceiling
        rows = []
        for (_, text, _), (x, sr) in zip(refs_meta, refs, strict=True):
            y = codec.decode(codec.encode(x, sr))
            rows.append((text, y))
        results["codec-resynthesis"] = measure(
            "codec", lambda text, r: iter([(rows[r][1], codec.sample_rate)]), [t for t, _ in rows], refs,
            transcribe=asr.transcribe, embed=enc.embed, progress=_say)
        # decoded before timing: no latency to report; this row is the codec's reconstruction ceiling
        results["codec-resynthesis"].update(first_chunk_s_median=None, rtf=None,
                                            what="held-out reference clips encoded + decoded by the codec")
    kodama, hibari = results.get("kodama"), results.get("hibari")
    beats = bool(kodama and hibari and kodama["wer"] <= hibari["wer"] and (kodama["dnsmos"] or 0) >= hibari["dnsmos"])
    result = {
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
    atomic.write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"{'backend':<18} {'WER':>6} {'DNSMOS':>7} {'SIM':>6} {'first chunk':>12} {'RTF':>6}")
    for name, r in results.items():
        f = r["first_chunk_s_median"]
        print(f"{name:<18} {r['wer']:>6.3f} {r['dnsmos'] or 0:>7.2f} {(r['sim'] if r['sim'] is not None else 0):>6.3f} "
              f"{(f'{f:.3f} s' if f is not None else '-'):>12} {(r['rtf'] or 0):>6.3f}")
    print(f"default: {result['default']} — {result['note']}")
    print(f"wrote {out}")
    return 0


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="Kodama-TTS checkpoint folder (default: the embedded one)")
    p.add_argument("--codec", help="Kodama codec checkpoint folder (default: the embedded one)")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (0 = greedy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-prompt", action="store_true",
                   help="clone with the speaker vector only (no in-context acoustic prompt: faster first chunk)")


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tts", parents=[common], help="speak TEXT with Kodama-TTS (optionally cloning a voice)")
    p.add_argument("text")
    p.add_argument("--voice", metavar="REF.wav", help="reference recording to clone (a few seconds)")
    p.add_argument("--voice-text", help="transcript of REF.wav (default: REF.normalized.txt / REF.txt, "
                                        "else whisper tiny.en)")
    p.add_argument("--emotion", help="LABEL or LABEL:INTENSITY (e.g. happy:0.7)")
    p.add_argument("-o", "--output", default="out/tts.wav")
    _add_model_args(p)
    p.set_defaults(func=_tts)
    b = bench_sub.add_parser("tts", parents=[common],
                             help="Kodama-TTS vs the embedded voices: WER, DNSMOS, SIM, first chunk, RTF "
                                  "-> out/bench/tts.json")
    b.add_argument("--backends", default="kodama,hibari,piper")
    b.add_argument("--corpus", default=None,
                   help="corpus whose held-out (test) speakers are the reference voices (default: out/codec-corpus "
                        "if built, else held-out voices rendered once into out/bench/codec-heldout)")
    b.add_argument("--quick", action="store_true", help="3 sentences, 2 reference voices")
    b.add_argument("--merge", action="store_true", help="keep other backends' results from an existing -o file")
    b.add_argument("-o", "--output", default="out/bench/tts.json")
    _add_model_args(b)
    b.set_defaults(func=_bench)
