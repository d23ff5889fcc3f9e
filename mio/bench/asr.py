"""`mio bench asr`: does the ASR hear the story? Spoken story names, WER, RTF, determinism.

A spoken-names set -- sentences a visitor of *Twenty Thousand Leagues* says, with the names the
story turns on (Nautilus, Aronnax, Conseil, Ned Land, Nemo, Abraham Lincoln) -- is synthesised with
the offline voices (hibari "heart", piper "joe"; espeak-ng as a third, robotic voice when asked)
and transcribed by whisper tiny.en:
- primed with the story (`asr_context(character)`: the card's name, the graph's proper names and
  the card's lexicon), against the previous prompt ("A conversation with {name}.");
- WER (jiwer, after normalising case and punctuation) and the share of names heard exactly;
- RTF (decode time / audio time) on the configured threads, each utterance decoded twice: the
  two transcripts must match (temperature 0, no fallback: deterministic).
Real human recordings: none ship inside the installed packages (searched: every .wav/.flac/.mp3
in the virtualenv is a scipy format-test tone), so the JSON says so instead of a figure.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable

from mio.core.config import MioConfig, TalkerConfig, to_dict

SENTENCES = (
    "Captain, what is the Nautilus?",
    "Professor Aronnax, where are we now?",
    "Conseil, please classify this fish for me.",
    "Ned Land wants to leave the ship.",
    "Captain Nemo, why do you hate the land?",
    "The Abraham Lincoln was hunting a sea monster.",
    "Is Ned Land a good harpooner?",
    "Conseil and Aronnax came aboard together.",
    "How deep can the Nautilus go, Captain Nemo?",
    "We sailed from New York on the Abraham Lincoln.",
)
NAMES = ("Nautilus", "Aronnax", "Conseil", "Ned Land", "Nemo", "Abraham Lincoln")
VOICES = (("hibari", None), ("piper", None))
BUDGETS = {"wer": 0.1, "names_heard": 1.0, "rtf": 0.5}
_PUNCT = re.compile(r"[^\w\s']")


def normalise(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def names_in(text: str) -> list[str]:
    t = normalise(text)
    return [n for n in NAMES if normalise(n) in t]


def _wer(refs: list[str], hyps: list[str]) -> float:
    import jiwer

    return round(float(jiwer.wer([normalise(r) for r in refs], [normalise(h) for h in hyps])), 4)


def measure_voice(asr, speech: list, prompts: dict[str, str | None]) -> dict:
    """Transcribe each (text, samples, rate) under each prompt, twice; WER, names, RTF, determinism."""
    out: dict[str, dict] = {}
    for label, prompt in prompts.items():
        rows, rtfs, stable = [], [], True
        for text, samples, rate in speech:
            t0 = time.perf_counter()
            hyp = asr.transcribe(samples, rate, prompt)
            dt = time.perf_counter() - t0
            again = asr.transcribe(samples, rate, prompt)
            stable &= again == hyp
            rtfs.append(dt / (len(samples) / rate))
            want, got = names_in(text), names_in(hyp)
            rows.append({"text": text, "heard": hyp, "names": want, "names_heard": [n for n in want if n in got]})
        n_names = sum(len(r["names"]) for r in rows)
        out[label] = {
            "wer": _wer([r["text"] for r in rows], [r["heard"] for r in rows]),
            "names_heard": round(sum(len(r["names_heard"]) for r in rows) / n_names, 4) if n_names else None,
            "names_missed": sorted({n for r in rows for n in r["names"] if n not in r["names_heard"]}),
            "rtf_median": round(statistics.median(rtfs), 4),
            "deterministic": stable,
            "utterances": rows,
        }
    return out


def bench_asr(config: MioConfig, voices: tuple[tuple[str, str | None], ...] = VOICES, threads: int = 2,
              progress: Callable[[str], None] | None = None, asr=None, synth: Callable | None = None,
              window_s: float | None = None) -> dict:
    """`asr` (a WhisperASR) and `synth(backend, voice) -> Voice` replace the real ones (tests)."""
    from mio.talker.asr import WhisperASR, asr_context
    from mio.thinker.persona import load_character

    say = progress or (lambda m: None)
    character = load_character(config.character if config.character != "mio" else "nemo")
    if asr is None:
        say(f"loading whisper tiny.en ({threads} threads) ...")
        asr = WhisperASR(threads=threads) if window_s is None else WhisperASR(threads=threads, window_s=window_s)
    asr.warm() if hasattr(asr, "warm") else None
    if synth is None:
        from mio.core import registry

        def synth(backend: str, voice: str | None):
            return registry.create("talker", backend, TalkerConfig(backend=backend, voice=voice, align=False))

    prompts = {"story": asr_context(character), "name_only": f"A conversation with {character.name}."}
    results: dict[str, dict] = {}
    for backend, voice in voices:
        label = f"{backend}:{voice or 'default'}"
        say(f"{label}: synthesising {len(SENTENCES)} sentences, transcribing ...")
        v = synth(backend, voice)
        speech = [(s, sp.samples, sp.sample_rate) for s in SENTENCES for sp in (v.synthesize(s),)]
        results[label] = measure_voice(asr, speech, prompts)
    story = [r["story"] for r in results.values()]
    summary = {
        "wer_story_prompt": max(r["wer"] for r in story),
        "wer_name_only_prompt": max(r["name_only"]["wer"] for r in results.values()),
        "names_heard_story_prompt": min(r["names_heard"] for r in story),
        "names_heard_name_only_prompt": min(r["name_only"]["names_heard"] for r in results.values()),
        "rtf_median": round(statistics.median(r["rtf_median"] for r in story), 4),
        "deterministic": all(r[p]["deterministic"] for r in results.values() for p in prompts),
        "per_voice": {k: {"wer": v["story"]["wer"], "names_heard": v["story"]["names_heard"],
                          "wer_name_only": v["name_only"]["wer"], "names_heard_name_only": v["name_only"]["names_heard"]}
                      for k, v in results.items()},
    }
    return {
        "suite": "asr",
        "asr": getattr(asr, "name", type(asr).__name__),
        "threads": threads,
        "character": character.name,
        "prompts": prompts,
        "how": "worst voice's WER (jiwer, lower-cased, punctuation removed) and share of names heard exactly; "
               "RTF = decode seconds / audio seconds; each utterance decoded twice to check determinism",
        "human_recordings": "none: no installed package ships recordings of human speech "
                            "(every .wav in the virtualenv is a scipy format-test tone)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_1min": round(os.getloadavg()[0], 2)},
        "config": to_dict(config),
        "budgets": BUDGETS,
        "summary": summary,
        "voices": results,
    }
