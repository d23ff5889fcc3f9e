"""`mio tts` and `mio bench tts` (registered into `mio` by mio.cli).

    mio tts "Hello there." --voice ref.wav -o out.wav      # Kodama-TTS, cloning ref.wav
    mio bench tts                                          # kodama vs hibari vs piper -> out/bench/tts.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mio.cli.common import config_from_args, say
from mio.core import atomic
from mio.core.atomic import atomic_output, check_output
from mio.core.errors import InputError


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
    from mio.talker.tts.voice import KodamaVoice, SamplingConfig

    cfg = config_from_args(args).talker
    cfg = replace(cfg, backend="kodama", checkpoint=args.checkpoint or cfg.checkpoint, codec=args.codec or cfg.codec,
                  reference=None, align=False)  # stream() yields bare audio; no timings needed
    sampling = SamplingConfig(temperature=args.temperature, seed=args.seed)
    voice = KodamaVoice(cfg, sampling=sampling, use_prompt=not args.no_prompt)
    if args.voice:
        voice.prompt = voice.prompt_from_wav(args.voice, args.voice_text)
        say(f"cloning {args.voice}: {len(voice.prompt.codes)} prompt frames, transcript {voice.prompt.text!r}")
    return voice


def _tts(args: argparse.Namespace) -> int:
    import soundfile as sf


    out = check_output(args.output, {".wav": "the speech"})
    if not args.text.strip():
        raise InputError("the text is empty")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise InputError(f"--temperature must be a finite number >= 0 (0: greedy), got {args.temperature}")
    emotion = _emotion(args.emotion)  # before the model loads: a typo costs nothing
    t0 = time.perf_counter()
    voice = _voice(args)
    say(f"model ready in {time.perf_counter() - t0:.1f} s")
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


def _bench(args: argparse.Namespace) -> int:
    from mio.bench.tts import bench_tts
    from mio.core import registry

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in registry.names("talker")]
    if unknown or not backends:  # said before any reference speech is rendered
        raise InputError(f"--backends {args.backends!r}: unknown {unknown or 'empty'}; choose from "
                         f"{', '.join(registry.names('talker'))}")
    out = Path(args.output)
    previous = json.loads(out.read_text()) if args.merge and out.is_file() else None
    result = bench_tts(config_from_args(args).talker, backends=backends,
                       kodama=lambda: _voice(argparse.Namespace(**{**vars(args), "voice": None, "voice_text": None})),
                       corpus=args.corpus, out_dir=out.parent, quick=args.quick, previous=previous, progress=say)
    atomic.write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"{'backend':<18} {'WER':>6} {'DNSMOS':>7} {'SIM':>6} {'first chunk':>12} {'RTF':>6}")
    for name, r in result["backends"].items():
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
