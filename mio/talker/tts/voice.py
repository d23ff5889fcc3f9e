"""`kodama` Talker backend: Kodama-TTS + the Kodama codec, streaming (paper §2.2).

    text ──LM tokenizer──> Kodama-TTS ──frames (K=8 codes, 80 ms each)──> codec stream decoder ──> 24 kHz audio
                              ▲ speaker vector (Resemblyzer), emotion vector, acoustic prompt

`stream(text)` yields audio while generation continues: the first chunk is decoded after
`first_chunk_frames` frames, then every `chunk_frames`. `synthesize(text)` (the runtime's Voice
call) collects the stream and adds word/phone timings like the other embedded voices.

Voice cloning: `TalkerConfig.reference` names a wav. Its Resemblyzer embedding is the speaker
vector, and its first `prompt_seconds` (encoded by the codec) with their transcript are the
in-context acoustic prompt. The transcript comes from a LibriTTS-style `.normalized.txt` / `.txt`
beside the wav when the clip is short enough to use whole, else whisper tiny.en transcribes the cut.
Without a reference the checkpoint's default voice (a training speaker) is used.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from mio.audio import resample
from mio.core.config import TalkerConfig
from mio.core.errors import BackendError, InputError
from mio.core.frames import Emotion
from mio.talker.base import Speech
from mio.talker.text import clean_text
from mio.talker.tts.lm import TOKENIZER_JSON, LMTokenizer, TextTokenizer
from mio.talker.tts.model import DefaultVoice, KodamaTTS, emotion_vector
from mio.talker.tts.sequence import join_text
from mio.talker.voices._common import EmbeddedVoice, Prosody

CHARS_PER_SECOND = 12.0  # slow English reading rate: caps generation at ~1.3x a normal reading + 1 s
MIN_CHARS_PER_SECOND = 30.0  # twice a fast reading rate: EOS is not allowed before this much audio


class StreamDecoder(Protocol):
    def push(self, codes: np.ndarray) -> np.ndarray: ...


class Codec(Protocol):
    """The Kodama codec's interface as Kodama-TTS uses it (mio.talker.codec.KodamaCodec)."""

    sample_rate: int
    frame_rate: float
    n_codebooks: int
    codebook_size: int

    def encode(self, wav: np.ndarray, sample_rate: int) -> np.ndarray: ...

    def decode(self, codes: np.ndarray) -> np.ndarray: ...

    def stream_decoder(self) -> StreamDecoder: ...


class NumpyCodec:
    """The Kodama codec (mio.talker.codec.KodamaCodec: torch, (B, 8, T) codes) seen through the `Codec`
    interface above: numpy in and out, codes as (T, K) rows, a stream decoder that keeps the causal
    decoder's state. `NumpyCodec.from_pretrained(path)` loads the codec (None: the embedded one)."""

    def __init__(self, codec, checkpoint: Path | None = None) -> None:
        self.model = codec
        self.sample_rate = int(codec.cfg.sample_rate)
        self.hop = int(codec.cfg.hop)
        self.frame_rate = self.sample_rate / self.hop
        self.n_codebooks = int(codec.cfg.n_q)
        self.codebook_size = int(codec.cfg.codebook_size)
        self.checkpoint = checkpoint  # its weights file, when loaded from one

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> NumpyCodec:
        from mio.talker.codec import KodamaCodec

        folder = KodamaCodec.checkpoint_path(path)
        return cls(KodamaCodec.from_pretrained(folder), folder / "model.safetensors")

    def encode(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        from mio.talker.codec.stream import encode_array

        x = resample(np.asarray(wav, np.float32).reshape(-1), sample_rate, self.sample_rate)
        return encode_array(self.model, x).T.astype(np.int64)  # (T, K)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        from mio.talker.codec.stream import decode_array

        return decode_array(self.model, np.asarray(codes).T)

    def stream_decoder(self) -> _CodecStream:
        return _CodecStream(self.model)


class _CodecStream:
    """Feeds frames to the codec's causal decoder with its streaming state kept between pushes.
    `close()` (also on garbage collection of the voice's generator) clears the state."""

    def __init__(self, model) -> None:
        from mio.talker.codec.modules import streaming

        self.model = model
        self._ctx = streaming(model.decoder)
        self._ctx.__enter__()

    def push(self, codes: np.ndarray) -> np.ndarray:
        c = torch.as_tensor(np.asarray(codes, dtype=np.int64)).T[None]  # (1, K, n)
        with torch.inference_mode():
            return self.model.decode(c)[0, 0].numpy()

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn the modules down
            pass


def codec_fingerprint(codec: Any) -> str | None:
    """sha256 of the codec's weights file (a TTS checkpoint only fits the codec it was trained with)."""
    import hashlib

    path = getattr(codec, "checkpoint", None) or getattr(codec, "path", None)
    if path and Path(path).is_dir():
        path = Path(path) / "model.safetensors"
    if not path or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Prompt:
    """What conditions one voice: speaker vector, acoustic prompt frames and their transcript."""

    speaker: torch.Tensor  # (S,)
    codes: torch.Tensor  # (P, K), may be empty
    text: str = ""


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.8  # 0 = greedy
    top_k: int = 50  # sample among the k most likely codes per codebook
    first_chunk_frames: int = 2  # decode after 2 frames (160 ms of audio) for a fast first chunk
    chunk_frames: int = 5  # then every 400 ms
    prompt_seconds: float = 4.0  # longest acoustic prompt taken from a reference
    seed: int = 0  # sampling seed: the same clause sounds the same


class KodamaVoice(EmbeddedVoice):
    name = "kodama"

    def __init__(self, config: TalkerConfig | None = None, *, model: KodamaTTS | None = None,
                 codec: Codec | None = None, tokenizer: TextTokenizer | None = None,
                 default_voice: DefaultVoice | None = None, speaker_encoder: Any = None,
                 sampling: SamplingConfig | None = None, use_prompt: bool = True, threads: int = 1) -> None:
        super().__init__(config)
        torch.set_num_threads(max(1, threads))
        self.sampling = sampling or SamplingConfig()
        self.use_prompt = use_prompt
        ckpt = Path(self.config.checkpoint) if self.config.checkpoint else KodamaTTS.embedded
        meta: dict[str, Any] = {}
        if model is None:
            if not (ckpt / "config.json").is_file():
                raise BackendError(f"no Kodama-TTS checkpoint at {ckpt} (train one: `mio train tts`)")
            model = KodamaTTS.from_pretrained(ckpt)
            default_voice, meta = model.default_voice, model.pretrained_config
        self.model = model.eval()
        if codec is None:
            # a shipped checkpoint carries the codec it was trained on (ckpt/codec); else the embedded one
            own = ckpt / "codec"
            codec = NumpyCodec.from_pretrained(self.config.codec or (own if (own / "config.json").is_file() else None))
            fresh_codec = True
        else:
            fresh_codec = False
        self.codec = codec
        want = meta.get("codec", {}).get("sha256")
        if want and fresh_codec and codec_fingerprint(self.codec) not in (None, want):
            warnings.warn(f"{ckpt} was trained on the tokens of another Kodama codec checkpoint "
                          f"(sha256 {want[:12]}...); its speech will be garbled until it is retrained "
                          "(`mio train tts`) on this codec", stacklevel=2)
        if self.codec.n_codebooks != model.cfg.n_codebooks or self.codec.codebook_size != model.cfg.codebook_size:
            raise BackendError(f"codec ({self.codec.n_codebooks} x {self.codec.codebook_size}) does not match the "
                               f"TTS model ({model.cfg.n_codebooks} x {model.cfg.codebook_size})")
        if tokenizer is None:
            tj = ckpt / TOKENIZER_JSON
            tokenizer = LMTokenizer(tj if tj.is_file() else None)
        self.tokenizer = tokenizer
        self._speaker_encoder = speaker_encoder
        self._lock = threading.Lock()  # one generation at a time per model (sessions share the weights)
        if self.config.reference:
            self.prompt = self.prompt_from_wav(self.config.reference)
        elif default_voice is not None:
            self.prompt = Prompt(default_voice.speaker, default_voice.prompt_codes, default_voice.prompt_text)
        else:
            self.prompt = Prompt(torch.zeros(model.cfg.speaker_dim), torch.zeros(0, model.cfg.n_codebooks,
                                                                                 dtype=torch.long))

    # -- the voice to speak with ------------------------------------------------------------
    def speaker_encoder(self):
        if self._speaker_encoder is None:
            from mio.talker.tts.speaker import SpeakerEncoder

            self._speaker_encoder = SpeakerEncoder()
        return self._speaker_encoder

    def prompt_from_wav(self, path: str | Path, text: str | None = None) -> Prompt:
        """Speaker vector + acoustic prompt from a reference recording (any soundfile format)."""
        from mio.audio import read_audio

        path = Path(path)
        wav, sr = read_audio(path, what="reference voice")
        if text is None:
            for suffix in (".normalized.txt", ".txt"):
                side = path.with_name(path.name[: -len(path.suffix)] + suffix)
                if side.is_file():
                    text = side.read_text().strip()
                    break
        return self.prompt_from_audio(wav, int(sr), text)

    def prompt_from_audio(self, wav: np.ndarray, sample_rate: int, text: str | None = None) -> Prompt:
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        if wav.size == 0 or not np.all(np.isfinite(wav)):
            raise InputError("reference audio is empty or holds NaN/inf samples")
        speaker = torch.from_numpy(self.speaker_encoder().embed(wav, sample_rate)).float()
        if speaker.numel() != self.model.cfg.speaker_dim:
            raise BackendError(f"speaker embedding has {speaker.numel()} dims, the model wants "
                               f"{self.model.cfg.speaker_dim}")
        k = self.model.cfg.n_codebooks
        if not self.use_prompt:
            return Prompt(speaker, torch.zeros(0, k, dtype=torch.long), "")
        limit = int(self.sampling.prompt_seconds * sample_rate)
        if text is None or wav.size > limit:  # the transcript must match exactly the frames we keep
            wav = wav[:limit]
            text = self._transcribe(wav, sample_rate)
        x = resample(wav, sample_rate, self.codec.sample_rate)
        codes = torch.as_tensor(np.asarray(self.codec.encode(x, self.codec.sample_rate)), dtype=torch.long)
        return Prompt(speaker, codes.reshape(-1, k), text)

    def _transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        from mio.talker.asr import WhisperASR

        return WhisperASR(threads=1).transcribe(wav, sample_rate)

    # -- synthesis ------------------------------------------------------------------------------
    def max_frames(self, text: str) -> int:
        return int(math.ceil((1.0 + len(text) / CHARS_PER_SECOND) * self.model.cfg.frame_rate))

    def min_frames(self, text: str) -> int:
        """A decoding guard, not a duration model: a clause cannot end before half the time a fast
        reader needs (a weakly trained model otherwise stops after a syllable)."""
        return int(len(text) / MIN_CHARS_PER_SECOND * self.model.cfg.frame_rate)

    def stream(self, text: str, emotion: Emotion | None = None) -> Iterator[np.ndarray]:
        """Yield float32 audio chunks at `codec.sample_rate` while frames are still being generated."""
        text = clean_text(text)
        label, intensity = ("neutral", 1.0)
        if emotion is not None:
            from mio.core.emotions import resolve

            label, intensity = resolve(emotion)
        p = self.prompt
        ids = torch.tensor(self.tokenizer.encode(join_text(p.text, text) if len(p.codes) else text), dtype=torch.long)
        if ids.numel() == 0:
            raise InputError(f"nothing to say in {text[:60]!r}")
        with self._lock:
            decoder = self.codec.stream_decoder()
            try:
                yield from self._generate(decoder, ids, emotion_vector(label, intensity), text)
            finally:
                close = getattr(decoder, "close", None)
                if close is not None:
                    close()

    def _generate(self, decoder: StreamDecoder, ids: torch.Tensor, emotion: torch.Tensor, text: str
                  ) -> Iterator[np.ndarray]:
        p, s = self.prompt, self.sampling
        gen = torch.Generator().manual_seed(s.seed)
        pending: list[torch.Tensor] = []
        first = True
        for frame in self.model.stream_frames(ids, p.speaker, emotion, p.codes, max_frames=self.max_frames(text),
                                              min_frames=self.min_frames(text), temperature=s.temperature,
                                              top_k=s.top_k, generator=gen):
            pending.append(frame)
            if len(pending) >= (s.first_chunk_frames if first else s.chunk_frames):
                yield np.asarray(decoder.push(torch.stack(pending).numpy()), dtype=np.float32)
                pending, first = [], False
        if pending:
            yield np.asarray(decoder.push(torch.stack(pending).numpy()), dtype=np.float32)

    def _render(self, text: str, prosody: Prosody) -> tuple[np.ndarray, int]:
        chunks = list(self.stream(text))
        return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), self.codec.sample_rate

    def synthesize(self, text: str, emotion: Emotion | None = None) -> Speech:
        """One clause: the emotion goes to the model's emotion vector (not to speed/pitch)."""
        text = clean_text(text)
        chunks = list(self.stream(text, emotion))
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if samples.size == 0 or not np.any(samples):
            raise BackendError(f"the kodama voice produced no audio for {text[:60]!r}")
        if not np.all(np.isfinite(samples)):
            raise BackendError(f"the kodama voice produced NaN/inf samples for {text[:60]!r}")
        out = np.clip(resample(samples, self.codec.sample_rate, self.sample_rate), -1.0, 1.0)
        timings = self.timings(out, text)
        return Speech(samples=out, sample_rate=self.sample_rate, words=timings.words, phones=timings.phones)
