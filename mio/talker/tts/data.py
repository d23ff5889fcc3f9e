"""Kodama-TTS's training data (paper §2.2.2): a LibriTTS-style corpus prepared once, resumably.

Every training utterance is curated (DNSMOS, speaker consistency; see curation.py), encoded by the
Kodama codec into (T, 8) frames, embedded by Resemblyzer, and its text tokenized by the
pretrained LM's tokenizer; written in parts of 100 as safetensors + JSON (`prepare`), then read
as one `TTSData` (`load_data`) and served in batches of whole utterances (`Batcher`): with
probability `prompt_prob` an example is an in-context clone (another utterance of the same speaker
is its acoustic prompt, its transcript goes first); the speaker vector always comes from a
different utterance of the same speaker, as at inference.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mio.core.errors import InputError
from mio.talker.tts.curation import CurationConfig, dnsmos_p808, judge, summarize
from mio.talker.tts.model import (
    DefaultVoice,
)

log = logging.getLogger(__name__)

DEFAULT_CORPUS = Path("out/codec-corpus")  # what `mio train codec --build-corpus` writes
PART = 100  # utterances per prepared data part



@dataclass
class TTSData:
    """Prepared training data: codes, token ids, speaker vectors, all flat with offsets."""

    codes: torch.Tensor  # (sum T, K) int16
    code_off: torch.Tensor  # (N + 1,) int64
    text: torch.Tensor  # (sum L,) int32
    text_off: torch.Tensor  # (N + 1,)
    speaker_vec: torch.Tensor  # (N, S) float32, per utterance
    speaker_id: torch.Tensor  # (N,) int64
    texts: list[str]
    speakers: list[str]  # speaker names, indexed by speaker_id

    def __len__(self) -> int:
        return len(self.texts)

    def utt_codes(self, i: int) -> torch.Tensor:
        return self.codes[self.code_off[i]: self.code_off[i + 1]].long()

    def utt_text(self, i: int) -> torch.Tensor:
        return self.text[self.text_off[i]: self.text_off[i + 1]].long()

    def frames(self, i: int) -> int:
        return int(self.code_off[i + 1] - self.code_off[i])


def _flat(chunks: list[torch.Tensor], dtype: torch.dtype, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    off = torch.tensor([0] + [len(c) for c in chunks]).cumsum(0)
    if not chunks:
        shape = (0, width) if width else (0,)
        return torch.zeros(shape, dtype=dtype), off
    return torch.cat([c.to(dtype) for c in chunks]), off


def codec_identity(codec) -> str:
    """What the cached codes depend on: the sha256 of the codec's weights file, if known."""
    from mio.talker.tts.voice import codec_fingerprint

    return codec_fingerprint(codec) or type(codec).__name__


def prepare(corpus: str | Path, out: str | Path, *, codec, tokenizer, speaker_encoder, curation: CurationConfig,
            quality=dnsmos_p808, progress=None, limit: int | None = None) -> Path:
    """Curate, embed and tokenize the corpus's training split into `out` (parts of 100, resumable),
    then encode the kept utterances with `codec` (skipped when None; redone when the codec changes)."""
    from mio.talker.codec.data import load_audio, scan

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    utts = scan(corpus, split="train")[:limit]
    rate = codec.sample_rate if codec is not None else 24000
    for p0 in range(0, len(utts), PART):
        stem = out / f"part-{p0 // PART:04d}"
        if stem.with_suffix(".json").is_file():
            continue
        texts, vecs, rows, verdicts = [], [], [], []
        for u in utts[p0: p0 + PART]:
            wav = load_audio(u.path, rate)
            seen: dict[str, np.ndarray] = {}

            def consistency(x: np.ndarray, sr: int, seen=seen) -> float:
                seen["vec"], score = speaker_encoder.analyze(x, sr)  # one encoder pass for both
                return score

            v = judge(wav, rate, curation, quality=quality, consistency=consistency)
            verdicts.append(v.as_dict() | {"path": str(u.path)})
            if not v.keep or not u.text.strip():
                continue
            texts.append(torch.tensor(tokenizer.encode(u.text.strip()), dtype=torch.int32))
            vecs.append(torch.from_numpy(seen["vec"]).float())
            rows.append({"text": u.text.strip(), "speaker": u.speaker, "path": str(u.path)})
        flat_text, text_off = _flat(texts, torch.int32)
        save_file({"text": flat_text, "text_off": text_off,
                   "speaker_vec": torch.stack(vecs) if vecs else torch.zeros(0, speaker_encoder.dim)},
                  str(stem.with_suffix(".safetensors")))
        tmp = stem.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"rows": rows, "verdicts": verdicts}))
        os.replace(tmp, stem.with_suffix(".json"))  # the part is complete only once its JSON exists
        if progress:
            progress(f"curated {min(p0 + PART, len(utts))}/{len(utts)} utterances "
                     f"({sum(v['keep'] for v in verdicts)} kept in this part)")
    report = summarize_parts(out)
    (out / "curation.json").write_text(json.dumps(report, indent=2) + "\n")
    if codec is not None:
        stems = [out / f"part-{p0 // PART:04d}" for p0 in range(0, len(utts), PART)]
        encode_parts([st.with_suffix(".json") for st in stems], codec, progress=progress)
    return out


def encode_parts(parts: list[Path], codec, progress=None) -> None:
    """Codec frames (T, K) of every kept utterance of these parts (their part-*.json files); a part is
    redone if the codec changed."""
    from safetensors import safe_open

    from mio.talker.codec.data import load_audio

    ident = codec_identity(codec)
    for n, j in enumerate(parts):
        cf = j.with_suffix(".codes.safetensors")
        if cf.is_file():
            with safe_open(str(cf), "pt") as f:
                if (f.metadata() or {}).get("codec") == ident:
                    continue
        codes = []
        for r in json.loads(j.read_text())["rows"]:
            wav = load_audio(r["path"], codec.sample_rate)
            codes.append(torch.as_tensor(np.asarray(codec.encode(wav, codec.sample_rate)), dtype=torch.int16))
        flat, off = _flat(codes, torch.int16, codec.n_codebooks)
        save_file({"codes": flat, "code_off": off}, str(cf), metadata={"codec": ident})
        if progress:
            progress(f"encoded part {n + 1}/{len(parts)}")


def summarize_parts(data_dir: Path) -> dict:
    from mio.talker.tts.curation import Verdict

    vs = []
    for j in sorted(data_dir.glob("part-*.json")):
        for v in json.loads(j.read_text())["verdicts"]:
            vs.append(Verdict(v["keep"], v["seconds"], v["dnsmos"], v["consistency"], v["reason"]))
    return summarize(vs)


def load_data(data_dir: str | Path, limit: int | None = None) -> TTSData:
    """The prepared parts that have codec frames (the first `limit` utterances' parts when given)."""
    data_dir = Path(data_dir)
    parts = sorted(data_dir.glob("part-*.json"))
    if limit is not None:
        parts = parts[: math.ceil(limit / PART)]
    parts = [j for j in parts if j.with_suffix(".codes.safetensors").is_file()]
    if not parts:
        raise InputError(f"no encoded data in {data_dir} (run `mio train tts` with a codec first)")
    codes, texts, vecs, names, strs = [], [], [], [], []
    for j in parts:
        cf = j.with_suffix(".codes.safetensors")
        t = load_file(str(j.with_suffix(".safetensors")))
        c = load_file(str(cf))
        rows = json.loads(j.read_text())["rows"]
        for i, r in enumerate(rows):
            codes.append(c["codes"][c["code_off"][i]: c["code_off"][i + 1]])
            texts.append(t["text"][t["text_off"][i]: t["text_off"][i + 1]])
            vecs.append(t["speaker_vec"][i])
            names.append(r["speaker"])
            strs.append(r["text"])
    if not codes:
        raise InputError(f"every utterance in {data_dir} was filtered out; see {data_dir / 'curation.json'}")
    speakers = sorted(set(names))
    flat_codes, code_off = _flat(codes, torch.int16)
    flat_text, text_off = _flat(texts, torch.int32)
    return TTSData(flat_codes, code_off, flat_text, text_off, torch.stack(vecs),
                   torch.tensor([speakers.index(n) for n in names]), strs, speakers)


def default_voice(data: TTSData, speaker: str | None, *, max_frames: int = 50) -> DefaultVoice:
    """The checkpoint's voice without a reference: the shortest-enough utterance of `speaker`."""
    names = data.speakers
    sid = names.index(speaker) if speaker in names else 0
    cands = [i for i in range(len(data)) if int(data.speaker_id[i]) == sid and 12 <= data.frames(i) <= max_frames]
    if not cands:
        cands = [i for i in range(len(data)) if int(data.speaker_id[i]) == sid]
    i = max(cands, key=data.frames)
    vecs = data.speaker_vec[data.speaker_id == sid]
    return DefaultVoice(speaker=vecs.mean(0), prompt_codes=data.utt_codes(i), prompt_text=data.texts[i],
                        name=names[sid])
