"""Speech data for the codec: a corpus builder on the embedded voices, and a LibriTTS-style loader.

The builder makes varied read speech from every voice engine on the machine — hibari (pitch and
tempo variants of its bundled voice), piper (joe), espeak-ng (variants), flite and festival (from
Debian) — speaking sentences taken from the story packs, and writes it the way LibriTTS lays out
a corpus, so a real LibriTTS folder drops in for it:

    root/<speaker>/<chapter>/<speaker>_<chapter>_<utt>.wav      (24 kHz mono, 16-bit)
    root/<speaker>/<chapter>/<speaker>_<chapter>_<utt>.normalized.txt
    root/manifest.jsonl                                         (path, speaker, text, split)

Voices and sentences of the `test` split are held out of training: `mio bench codec` measures
the codec on speakers and texts it has never heard.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from mio.core import atomic
from mio.core.errors import BackendError, InputError
from mio.talker.codec.config import SAMPLE_RATE
from mio.talker.voices._common import Prosody, resample

STORIES = Path(__file__).resolve().parents[3] / "stories"


@dataclass(frozen=True)
class VoiceSpec:
    speaker: str  # corpus speaker id
    engine: str  # hibari | piper | espeak | flite | festival
    voice: str = ""  # engine voice name
    speed: float = 1.0
    pitch: float = 1.0
    held_out: bool = False


VOICES: tuple[VoiceSpec, ...] = (
    VoiceSpec("hibari-heart", "hibari", "heart"),
    VoiceSpec("hibari-heart-low", "hibari", "heart", 0.95, 0.82),
    VoiceSpec("hibari-heart-high", "hibari", "heart", 1.05, 1.18),
    VoiceSpec("hibari-heart-deep", "hibari", "heart", 0.9, 0.7),
    VoiceSpec("piper-joe", "piper", "joe"),
    VoiceSpec("piper-joe-fast", "piper", "joe", 1.15),
    VoiceSpec("espeak-us-m1", "espeak", "en-us+m1"),
    VoiceSpec("espeak-gb-f2", "espeak", "en-gb+f2", 1.0, 1.1),
    VoiceSpec("espeak-rp-m3", "espeak", "en-gb-x-rp+m3", 0.9),
    VoiceSpec("espeak-us-f4", "espeak", "en-us+f4", 1.1),
    VoiceSpec("flite-kal", "flite", "kal16"),
    VoiceSpec("flite-awb", "flite", "awb"),
    VoiceSpec("festival-kal", "festival", "kal_diphone"),
    VoiceSpec("festival-ked", "festival", "ked_diphone"),
    # held out of training: new speakers for the benchmark
    VoiceSpec("festival-slt", "festival", "cmu_us_slt_arctic_hts", held_out=True),
    VoiceSpec("flite-rms", "flite", "rms", held_out=True),
    VoiceSpec("espeak-scot-f3", "espeak", "en-gb-scotland+f3", 1.0, 1.05, held_out=True),
    VoiceSpec("hibari-heart-mid", "hibari", "heart", 1.0, 0.9, held_out=True),
)


def story_sentences(root: Path = STORIES) -> list[str]:
    """Every sentence of 4-30 words in the story packs' YAML (descriptions, facts, dialogue)."""
    import yaml

    found: list[str] = []

    def walk(x: object) -> None:
        if isinstance(x, str):
            for s in re.split(r"(?<=[.!?])\s+", " ".join(x.split())):
                s = re.sub(r"[^A-Za-z0-9 ,.;:'!?\-]", "", s).strip()
                if 4 <= len(s.split()) <= 30 and re.search(r"[A-Za-z]", s):
                    found.append(s)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for f in sorted(root.rglob("*.yaml")):
        walk(yaml.safe_load(f.read_text()))
    return sorted(set(found))


def is_held_out_text(text: str) -> bool:
    """One sentence in eight, by a stable hash, is never spoken in the training split."""
    return hashlib.sha1(text.encode()).digest()[0] % 8 == 0


class Renderer:
    """Speaks one sentence with one VoiceSpec -> float32 24 kHz. Engines load once, lazily."""

    def __init__(self) -> None:
        self._engines: dict[str, object] = {}

    def _embedded(self, engine: str):
        if engine not in self._engines:
            from mio.core.config import TalkerConfig

            if engine == "hibari":
                from mio.talker.voices.hibari import HibariVoice as V
            else:
                from mio.talker.voices.piper import PiperVoice as V  # type: ignore[assignment]
            self._engines[engine] = V(TalkerConfig(align=False))
        return self._engines[engine]

    def __call__(self, spec: VoiceSpec, text: str) -> np.ndarray:
        if spec.engine in ("hibari", "piper"):
            x, rate = self._embedded(spec.engine)._render(text, Prosody(spec.speed, spec.pitch))
        elif spec.engine == "espeak":
            cmd = ["espeak-ng", "--stdout", "-v", spec.voice, "-s", str(int(165 * spec.speed)),
                   "-p", str(int(50 * spec.pitch)), text]
            x, rate = _wav_from_cmd(cmd)
        elif spec.engine == "flite":
            with tempfile.TemporaryDirectory() as d:
                out = Path(d) / "o.wav"
                _run(["flite", "-voice", spec.voice, "--setf", f"duration_stretch={1 / spec.speed:.3f}",
                      "-t", text, "-o", str(out)])
                x, rate = sf.read(out, dtype="float32")
        elif spec.engine == "festival":
            with tempfile.TemporaryDirectory() as d:
                txt, out = Path(d) / "t.txt", Path(d) / "o.wav"
                txt.write_text(text)
                _run(["text2wave", "-eval", f"(voice_{spec.voice})", str(txt), "-o", str(out)])
                x, rate = sf.read(out, dtype="float32")
        else:
            raise BackendError(f"unknown voice engine {spec.engine!r}")
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if x.size == 0 or not np.any(x):
            raise BackendError(f"{spec.speaker} produced no audio for {text[:40]!r}")
        return resample(x, int(rate), SAMPLE_RATE)


def _run(cmd: list[str]) -> bytes:
    if shutil.which(cmd[0]) is None:
        raise BackendError(f"{cmd[0]} is not installed (run `bash scripts/setup.sh`)")
    res = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if res.returncode != 0:
        raise BackendError(f"{cmd[0]} failed: {res.stderr.decode(errors='replace')[:200]}")
    return res.stdout


def _wav_from_cmd(cmd: list[str]) -> tuple[np.ndarray, int]:
    x, rate = sf.read(io.BytesIO(_run(cmd)), dtype="float32")
    return x, rate


def _normalise(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Trim silence at the ends (below -45 dB of the peak, keeping 80 ms) and scale to `peak`."""
    m = float(np.max(np.abs(x)))
    loud = np.flatnonzero(np.abs(x) > m * 10 ** (-45 / 20))
    pad = int(0.08 * SAMPLE_RATE)
    x = x[max(0, loud[0] - pad): loud[-1] + pad]
    return (x / m * peak).astype(np.float32)


def build_corpus(root: str | Path, *, n_train: int = 1200, n_test: int = 48, seed: int = 0,
                 voices: tuple[VoiceSpec, ...] = VOICES, sentences: list[str] | None = None,
                 progress: Callable[[str], None] | None = None, bar: bool = False) -> Path:
    """Write a LibriTTS-layout corpus of `n_train` training and `n_test` held-out utterances.

    Resumable: utterances already on disk are kept. Each utterance joins one to three sentences,
    so lengths vary (~2-12 s). `bar`: a progress bar on stderr."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sents = sentences if sentences is not None else story_sentences()
    if not sents:
        raise InputError("no sentences to speak")
    train_s = [s for s in sents if not is_held_out_text(s)] or sents
    test_s = [s for s in sents if is_held_out_text(s)] or sents
    train_v = [v for v in voices if not v.held_out]
    test_v = [v for v in voices if v.held_out] or train_v
    rng = random.Random(seed)
    render = Renderer()
    rows = []
    plan = [("train", i) for i in range(n_train)] + [("test", i) for i in range(n_test)]
    if bar:
        import sys

        from tqdm import tqdm

        plan = tqdm(plan, desc="held-out speech" if not n_train else "corpus", unit="utt", file=sys.stderr)
    for split, i in plan:
        vs, ss = (train_v, train_s) if split == "train" else (test_v, test_s)
        spec = vs[i % len(vs)]
        k = rng.choice((1, 1, 2, 2, 3)) if split == "train" else rng.choice((1, 2))
        text = " ".join(rng.choice(ss) for _ in range(k))
        chapter = f"{split}{i // 100:03d}"
        stem = f"{spec.speaker}_{chapter}_{i:06d}"
        wav = root / spec.speaker / chapter / f"{stem}.wav"
        if not wav.is_file():
            try:
                x = _normalise(render(spec, text))
            except (BackendError, InputError) as e:
                if progress:
                    progress(f"skipped {stem}: {e}")
                continue
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(wav.with_suffix(".tmp.wav"), x, SAMPLE_RATE, subtype="PCM_16")
            wav.with_suffix(".tmp.wav").rename(wav)
            wav.with_suffix(".normalized.txt").write_text(text + "\n")
        rows.append({"path": str(wav.relative_to(root)), "speaker": spec.speaker, "text": text, "split": split})
        if progress and len(rows) % 50 == 0:
            progress(f"{len(rows)}/{n_train + n_test} utterances")
    # the manifest last and atomically: a run stopped before it leaves a corpus that resumes
    atomic.write_text(root / "manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return root


@dataclass(frozen=True)
class Utterance:
    path: Path
    speaker: str
    text: str
    split: str


def scan(root: str | Path, split: str | None = None) -> list[Utterance]:
    """Utterances of a corpus folder: its manifest.jsonl if present, else every *.wav below it
    (LibriTTS: speaker = first folder, text from .normalized.txt when there). `split` filters."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"corpus folder {root} does not exist")
    out: list[Utterance] = []
    man = root / "manifest.jsonl"
    if man.is_file():
        for line in man.read_text().splitlines():
            r = json.loads(line)
            out.append(Utterance(root / r["path"], r["speaker"], r.get("text", ""), r.get("split", "train")))
    else:
        for wav in sorted(root.rglob("*.wav")):
            rel = wav.relative_to(root)
            txt = wav.with_suffix(".normalized.txt")
            out.append(Utterance(wav, rel.parts[0] if len(rel.parts) > 1 else "unknown",
                                 txt.read_text().strip() if txt.is_file() else "", "train"))
    if split is not None:
        out = [u for u in out if u.split == split]
    if not out:
        raise InputError(f"no {split + ' ' if split else ''}wav files in {root}")
    return out


def load_audio(path: str | Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any soundfile-readable file -> float32 mono at `rate`; clear errors on bad files (sample
    rate 8-192 kHz, length, NaN; a truncated WAV is read with a warning: mio.core.audiofile)."""
    from mio.core.audiofile import read_audio

    x, sr = read_audio(path)
    return resample(x, sr, rate)


def iter_segments(x: np.ndarray, n: int, rng: np.random.Generator, hop: int) -> Iterator[int]:
    """Random segment starts of length n, on token-frame boundaries (so teacher frames align)."""
    limit = max(0, (len(x) - n) // hop)
    while True:
        yield int(rng.integers(0, limit + 1)) * hop
