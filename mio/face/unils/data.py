"""Data for UniLS (§3.2): dyadic conversations, single-speaker tracks, and a synthetic generator.

On disk (what `mio train face --data DIR` reads; Seamless-Interaction-like):

    DIR/<conversation>/<participant>.wav   the participant's own audio track (mono, any rate)
    DIR/<conversation>/<participant>.npz   their face track: `params` (T, D), `layout`, `fps` (25)
    DIR/<anything>.npz                     a single-speaker track without audio (e.g. from
                                           `mio face track VIDEO`): stage-1 (audio-free) data only

A conversation folder holds exactly two participants whose tracks share one timeline (t = 0 is
the same instant in both). Optional keys of a face npz: `style` (int identity id) and `speaking`
(T,) bool; without them the style is 0 and speaking comes from the own track's voice activity.

The synthetic generator (`generate_dyadic`) stands in for Seamless Interaction: two embedded
voices (hibari, piper, espeak-ng) talk in turns, with short backchannels ("yeah", "mm-hmm")
over the other's turn; each side's face comes from the procedural animator (mio.face.procedural)
fed with its own speech (plus phone timings) as the agent track and the other's speech as the
user track, which gives it speaking lip motion and stochastic listening behaviour (blinks,
saccades, nods and smiles at the other's pauses). Each participant gets an identity "style":
a variant of the animator's timing/amplitude knobs, so the style embedding has something to learn.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from mio.core.errors import InputError
from mio.core.layouts import FACE_FPS, LAYOUTS
from mio.face.unils import audio as A

SENTENCES = (
    "I think the sea is calm tonight, and the stars are bright.",
    "Do you really believe that? Tell me more about the ship.",
    "We left the harbour early in the morning, before the fog lifted.",
    "That is a strange story, but I have heard stranger ones.",
    "The engine makes a low humming sound that never stops.",
    "Would you like some tea while we wait for the captain?",
    "I have never seen so many fish in one place.",
    "Look at the window, the light is changing colour again.",
    "My brother used to work on a fishing boat near the coast.",
    "Honestly, I was a little afraid when the storm began.",
    "It took us three days to repair the broken pump.",
    "Why do you keep the library so far below the deck?",
    "Books are the only friends that never argue with me.",
    "Please sit down, the chair by the map is quite comfortable.",
    "We could go back to the island tomorrow if the weather holds.",
    "The divers found an old anchor covered with coral.",
    "I am not sure that the plan will work, but we can try.",
    "Listen carefully, because I will only explain this once.",
    "The museum in Paris has a wonderful collection of shells.",
    "She wrote a long letter to her family every single week.",
    "Nobody knows how deep the trench really goes.",
    "Good morning! Did you sleep well in the cabin?",
    "The music from the organ echoed through the whole room.",
    "We should count the supplies before the next voyage.",
    "That sounds wonderful, I would love to see it.",
    "Perhaps the current carried the boat further than we thought.",
    "Every evening the crew gathers to share the news.",
    "The octopus changed colour as soon as it saw the light.",
    "I remember the first time I saw the ocean as a child.",
    "Can you hear that? Something is knocking on the hull.",
    "The professor spends hours drawing the plants he collects.",
    "It is quite simple once you understand the principle.",
    "We will reach the southern ice before the end of the month.",
    "Thank you, that is very kind of you to say.",
    "The pearls in this shell are larger than any I have seen.",
    "Be careful with the lamp, the glass is very thin.",
    "A ship passed above us this afternoon without noticing.",
    "I cannot decide whether this journey is a dream or a prison.",
    "The water here is so clear that you can see the sand.",
    "Let me show you the instruments in the control room.",
    "Sometimes silence is the best answer to a difficult question.",
    "The whales were singing all night long.",
    "What would you do if you could never go home again?",
    "Our maps of this region are old and probably wrong.",
    "He laughed so loudly that everybody turned around.",
    "The harpoon missed, and the creature disappeared into the dark.",
    "I suppose we have no choice but to wait.",
    "Tomorrow we will walk on the bottom of the sea.",
)
BACKCHANNELS = ("Yeah.", "Mm-hmm.", "Right.", "I see.", "Oh, really?", "Okay.", "Sure.", "Wow.")
VOICES = ("hibari", "piper", "espeak")
N_STYLES = 8  # identities in the synthetic data


# ---------------------------------------------------------------- a conversation in memory


@dataclass
class Track:
    """One participant of a conversation: their face and both audio tracks at the face rate."""

    name: str
    motion: np.ndarray  # (T, D) face parameters
    own: np.ndarray | None  # (T, F) log-mel of the participant's own audio (None: no audio)
    other: np.ndarray | None  # (T, F) log-mel of the other participant's audio
    speaking: np.ndarray  # (T,) bool
    style: int = 0

    @property
    def frames(self) -> int:
        return len(self.motion)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    from mio.core.audiofile import read_audio  # rate, length, NaN and truncation checks

    return read_audio(path)


def read_face(path: str | Path, layout: str | None = None) -> tuple[np.ndarray, dict]:
    """A face.npz -> (params (T, D) float32, extra keys). Checks layout, fps and values."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read face track {path}: {e}") from e
    if "params" not in d:
        raise InputError(f"{path} has no `params` array (expected the face.npz format)")
    name = str(d.get("layout", layout or "arkit52"))
    if name not in LAYOUTS:
        raise InputError(f"{path}: unknown layout {name!r}")
    if layout is not None and name != layout:
        raise InputError(f"{path} holds layout {name!r}, the model expects {layout!r}")
    fps = float(d.get("fps", FACE_FPS))
    if abs(fps - FACE_FPS) > 1e-3:
        raise InputError(f"{path} is at {fps} fps; UniLS works at {FACE_FPS:.0f} fps")
    try:
        params = LAYOUTS[name].check(d["params"])
    except ValueError as e:
        raise InputError(f"{path}: {e}") from e
    return params, d


def write_face(path: str | Path, params: np.ndarray, layout: str, **extra: np.ndarray) -> Path:
    """face.npz, written under a temporary name and renamed (a killed run leaves no torn file); the
    name is used as given (np.savez on a path would append .npz to any other suffix)."""
    from mio.core.atomic import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, params=np.asarray(params, np.float32), layout=np.array(layout), fps=np.float32(FACE_FPS), **extra)
    return path


def load_dataset(root: str | Path, layout: str = "arkit52", n_mels: int = 32) -> list[Track]:
    """Every conversation side under `root` (with audio) and every single-speaker track (without)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"face data folder {root} does not exist")
    tracks: list[Track] = []
    for conv in sorted(p for p in root.iterdir() if p.is_dir()):
        wavs = sorted(conv.glob("*.wav"))
        if len(wavs) != 2 or not all(w.with_suffix(".npz").is_file() for w in wavs):
            raise InputError(f"{conv} must hold two participants, each as NAME.wav + NAME.npz")
        audio = [_read_wav(w) for w in wavs]
        faces = [read_face(w.with_suffix(".npz"), layout) for w in wavs]
        T = min(len(f[0]) for f in faces)
        feats = [A.track_features(x, sr, T, n_mels) for x, sr in audio]
        for i in range(2):
            params, extra = faces[i]
            speaking = extra.get("speaking")
            if speaking is None:
                speaking = A.voice_activity(*audio[i], T)
            tracks.append(Track(f"{conv.name}/{wavs[i].stem}", params[:T], feats[i], feats[1 - i],
                                np.asarray(speaking[:T], bool), int(extra.get("style", 0))))
    for f in sorted(root.glob("*.npz")):
        params, extra = read_face(f, layout)
        T = len(params)
        tracks.append(Track(f.stem, params, None, None, np.zeros(T, bool), int(extra.get("style", 0))))
    if not tracks:
        raise InputError(f"{root} holds no conversations (DIR/CONV/NAME.wav + .npz) and no face tracks (*.npz)")
    return tracks


def split(tracks: list[Track], test_fraction: float = 0.15) -> tuple[list[Track], list[Track]]:
    """Whole conversations go to train or test (both sides together), chosen by a stable hash of the name."""
    import zlib

    def is_test(t: Track) -> bool:
        conv = t.name.split("/")[0]
        return t.own is not None and (zlib.crc32(conv.encode()) % 1000) < 1000 * test_fraction

    return [t for t in tracks if not is_test(t)], [t for t in tracks if is_test(t)]


# ---------------------------------------------------------------- synthetic dyadic conversations


def style_tuning(style: int):
    """The procedural animator's knobs for identity `style` (0 = the animator's defaults)."""
    from mio.face.procedural import FaceTuning

    base = FaceTuning()
    if style == 0:
        return base
    r = np.random.default_rng([91, style])
    s = lambda lo, hi: float(r.uniform(lo, hi))  # noqa: E731
    blink = s(0.6, 1.6)
    return dataclasses.replace(
        base,
        blink_interval=(base.blink_interval[0] * blink, base.blink_interval[1] * blink),
        fixation=(base.fixation[0] * s(0.6, 1.5), base.fixation[1] * s(0.6, 1.5)),
        gaze_range=base.gaze_range * s(0.6, 1.5),
        nod_speaking=base.nod_speaking * s(0.5, 1.8),
        nod_listening=base.nod_listening * s(0.5, 1.8),
        head_noise=tuple(h * s(0.5, 1.8) for h in base.head_noise),
        rest_dominance=base.rest_dominance * s(0.7, 1.4),
    )


def _script(rng: np.random.Generator, seconds: float) -> list[tuple[int, str, bool]]:
    """(speaker, text, is_backchannel) in order: turns of 1-3 sentences, some backchannels."""
    out: list[tuple[int, str, bool]] = []
    speaker, total = int(rng.integers(2)), 0.0
    while total < seconds:
        for _ in range(int(rng.integers(1, 4))):
            out.append((speaker, str(SENTENCES[rng.integers(len(SENTENCES))]), False))
            total += 3.0
            if rng.random() < 0.3:
                out.append((1 - speaker, str(BACKCHANNELS[rng.integers(len(BACKCHANNELS))]), True))
        speaker = 1 - speaker
    return out


def _place(script, voices, rng: np.random.Generator):
    """Synthesize and place every utterance on the timeline -> per speaker: list of (pts, Speech, text)."""
    placed: list[list] = [[], []]
    t = float(rng.uniform(0.3, 1.0))
    turn_end = t
    last_speaker = None
    for speaker, text, back in script:
        sp = voices[speaker].synthesize(text)
        if back:  # over the other's ongoing utterance, somewhere in its second half
            prev = placed[1 - speaker][-1] if placed[1 - speaker] else None
            if prev is None:
                continue
            p0, psp, _ = prev
            placed[speaker].append((p0 + psp.duration * float(rng.uniform(0.5, 0.9)), sp, text))
            continue
        gap = float(rng.uniform(0.15, 0.5)) if speaker == last_speaker else float(rng.uniform(0.3, 1.2))
        start = turn_end + gap
        placed[speaker].append((start, sp, text))
        turn_end = start + sp.duration
        last_speaker = speaker
    return placed, turn_end + float(rng.uniform(0.8, 1.5))


def generate_dyadic(out_dir: str | Path, n: int, seconds: float = 40.0, seed: int = 0, progress=None,
                    bar: bool = False) -> list[Path]:
    """Write `n` synthetic conversations (see module docstring) into out_dir/convNNNN/{a,b}.{wav,npz}.

    Existing complete conversations are kept (the generator resumes). `bar`: a progress bar on stderr."""
    from mio.core import registry
    from mio.core.config import TalkerConfig
    from mio.core.frames import AudioChunk, Emotion, UserAudio
    from mio.face.procedural import ProceduralSession

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    voices = {b: registry.create("talker", b, TalkerConfig(backend=b)) for b in VOICES}
    made: list[Path] = []
    emotions = ("happy", "curious", "thinking", "concerned", "surprised", "calm")
    todo = range(n)
    if bar:
        import sys

        from tqdm import tqdm

        todo = tqdm(todo, desc="conversations", unit="conv", file=sys.stderr)
    for i in todo:
        conv = out_dir / f"conv{i:04d}"
        made.append(conv)
        if (conv / "b.npz").is_file():
            continue
        rng = np.random.default_rng([seed, i])
        pair = rng.choice(len(VOICES), size=2, replace=False)
        styles = rng.choice(N_STYLES, size=2, replace=False)
        placed, end = _place(_script(rng, seconds), [voices[VOICES[k]] for k in pair], rng)
        sr = 24000
        T = int(math.ceil(end * FACE_FPS))
        tracks = np.zeros((2, int(end * sr) + sr), np.float32)
        for s in range(2):
            for pts, sp, _ in placed[s]:
                x = sp.samples
                if sp.sample_rate != sr:  # voices all leave the Talker at 24 kHz; keep it general
                    from scipy.signal import resample_poly

                    x = resample_poly(sp.samples, sr, sp.sample_rate).astype(np.float32)
                a = int(pts * sr)
                tracks[s, a : a + len(x)] += x[: tracks.shape[1] - a]
        tracks = np.clip(tracks, -1, 1)
        conv.mkdir(parents=True, exist_ok=True)
        for s, name in enumerate(("a", "b")):
            face = ProceduralSession(seed=int(rng.integers(1 << 30)), tuning=style_tuning(int(styles[s])))
            for pts, sp, text in placed[s]:
                emo = Emotion(str(rng.choice(emotions)), float(rng.uniform(0.3, 0.8))) if rng.random() < 0.3 else Emotion()
                face.push_agent_audio(AudioChunk(samples=sp.samples, sample_rate=sp.sample_rate, text=text,
                                                 words=sp.words, phones=sp.phones, emotion=emo, pts=pts))
            other = tracks[1 - s]
            step = sr // 10  # the listener hears the other track as 100 ms microphone chunks
            for a in range(0, len(other), step):
                face.push_user_audio(UserAudio(samples=other[a : a + step], sample_rate=sr, pts=a / sr))
            params = face.frames(np.arange(T) / FACE_FPS)
            speaking = np.zeros(T, bool)
            for pts, sp, _ in placed[s]:
                speaking[int(pts * FACE_FPS) : int(math.ceil((pts + sp.duration) * FACE_FPS))] = True
            wavfile.write(str(conv / f"{name}.wav"), sr, (tracks[s, : int(end * sr)] * 32767).astype(np.int16))
            write_face(conv / f"{name}.npz", params, "arkit52", style=np.int64(styles[s]), speaking=speaking)
        (conv / "script.json").write_text(json.dumps(
            {"voices": [VOICES[k] for k in pair], "styles": [int(s) for s in styles], "seconds": end,
             "utterances": [[s, round(p, 3), txt] for s in range(2) for p, _, txt in placed[s]]}, indent=1))
        if progress:
            progress(i + 1, n)
    return made
