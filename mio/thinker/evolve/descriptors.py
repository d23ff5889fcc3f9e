"""f_desc (§6.2.1, Eq. 19-20): the user's multimodal reaction m_t = [v_t, p_t, e_t] -> words d_t.

The numbers are read against the user's own baseline in the session (median pitch and loudness of
their turns with audio) when there is one, so "high pitch" means higher than *this* user usually
speaks; otherwise against fixed adult-speech ranges. The text embedding e_t is placed among anchor
phrases for a few reaction types (pleased, amused, curious, confused, annoyed, bored) by cosine
similarity; the nearest anchor names the reaction when it wins by a margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mio.thinker.evolve.prosody import Prosody
from mio.thinker.evolve.trajectory import Trajectory, TurnRecord
from mio.thinker.evolve.visual import Visual
from mio.thinker.memory.embed import Embedder

PITCH_ST_HIGH = 2.0  # semitones above the user's median: "high pitch"
LOUD_DB = 4.0  # dB above / below the user's usual level
JITTER_SHAKY = 0.03  # frame-level jitter above which the voice sounds unsteady
RANGE_LIVELY_ST, RANGE_FLAT_ST = 3.0, 1.0
ABS_PITCH_HIGH_HZ = {"low": 90.0, "high": 250.0}  # no baseline: absolute bounds
ABS_LOUD_DB, ABS_QUIET_DB = -14.0, -32.0
SMILE_ON, GAZE_AWAY, MOTION_ON = 0.6, 0.35, 0.4
ANCHOR_MARGIN = 0.03  # cosine margin of the best anchor over the runner-up

ANCHORS: dict[str, tuple[str, ...]] = {
    "pleased": ("That's wonderful, thank you!", "I love that, how lovely.", "Great answer, I really like it."),
    "amused": ("Haha, that's funny!", "Ha, you made me laugh.", "That's hilarious."),
    "curious": ("Tell me more about that.", "Really? How does that work?", "What happened next?"),
    "confused": ("I don't understand.", "What do you mean?", "That makes no sense to me."),
    "annoyed": ("That's not what I asked.", "Stop it, you're annoying me.", "Ugh, that's a useless answer."),
    "bored": ("Whatever.", "ok.", "Fine, I guess. Anyway."),
}


def feature_vector(turn: TurnRecord, dim: int = 384) -> np.ndarray:
    """m_t = [v_t, p_t, e_t] (Eq. 19) as one vector; a missing modality is zeros."""
    v = turn.visual.vector() if turn.visual else np.zeros(4, np.float32)
    p = turn.prosody.vector() if turn.prosody else np.zeros(6, np.float32)
    e = turn.embedding if turn.embedding is not None else np.zeros(dim, np.float32)
    return np.concatenate([v, p, e]).astype(np.float32)


@dataclass(frozen=True)
class Baseline:
    pitch_hz: float | None
    intensity_db: float | None

    @classmethod
    def of(cls, traj: Trajectory) -> Baseline:
        pros = [t.prosody for t in traj.turns if t.prosody is not None]
        voiced = [p.pitch_hz for p in pros if p.pitch_hz > 0]
        if len(pros) < 2:
            return cls(None, None)
        return cls(float(np.median(voiced)) if len(voiced) >= 2 else None, float(np.median([p.intensity_db for p in pros])))


class TextReaction:
    """e_t -> the nearest reaction anchor (or none)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.labels = list(ANCHORS)
        phrases = [p for k in self.labels for p in ANCHORS[k]]
        m = embedder.encode(phrases)  # (n_phrases, D)
        owners = np.repeat(np.arange(len(self.labels)), [len(ANCHORS[k]) for k in self.labels])
        c = np.stack([m[owners == i].mean(axis=0) for i in range(len(self.labels))])
        self.centroids = c / (np.linalg.norm(c, axis=1, keepdims=True) + 1e-9)  # (n_labels, D)

    def __call__(self, e: np.ndarray) -> str | None:
        e = e / (np.linalg.norm(e) + 1e-9)
        s = self.centroids @ e
        order = np.argsort(-s)
        return self.labels[order[0]] if s[order[0]] - s[order[1]] >= ANCHOR_MARGIN else None


def describe_prosody(p: Prosody, base: Baseline) -> list[str]:
    if p.pitch_hz <= 0:
        return ["their voice was barely voiced (whisper or noise)"] if p.duration_s > 0.3 else []
    out: list[str] = []
    if base.pitch_hz:
        st = 12 * np.log2(p.pitch_hz / base.pitch_hz)
        if st >= PITCH_ST_HIGH:
            out.append(f"their pitch was high ({st:+.1f} semitones over their usual)")
        elif st <= -PITCH_ST_HIGH:
            out.append(f"their pitch was low ({st:+.1f} semitones under their usual)")
    elif p.pitch_hz > ABS_PITCH_HIGH_HZ["high"]:
        out.append("their pitch was high")
    if base.intensity_db is not None:
        d = p.intensity_db - base.intensity_db
        if d >= LOUD_DB:
            out.append(f"they spoke louder than usual ({d:+.0f} dB)")
        elif d <= -LOUD_DB:
            out.append(f"they spoke more quietly than usual ({d:+.0f} dB)")
    elif p.intensity_db > ABS_LOUD_DB:
        out.append("they spoke loudly")
    elif p.intensity_db < ABS_QUIET_DB:
        out.append("they spoke quietly")
    if p.pitch_range_st >= RANGE_LIVELY_ST:
        out.append("their intonation was lively")
    elif p.pitch_range_st <= RANGE_FLAT_ST:
        out.append("their intonation was flat")
    if p.jitter >= JITTER_SHAKY:
        out.append("their voice was unsteady")
    return out


def describe_visual(v: Visual) -> list[str]:
    if not v.face:
        return ["their face was not visible"]
    out = ["they were smiling" if v.smile >= SMILE_ON else "they were not smiling"]
    if v.gaze_on < GAZE_AWAY:
        out.append("they looked away")
    else:
        out.append("they looked at Mio")
    if v.motion >= MOTION_ON:
        out.append("they moved their head a lot")
    return out


def describe(reaction: TurnRecord | None, base: Baseline, text_reaction: TextReaction | None = None) -> str:
    """d_t = f_desc(m_t) for the reaction to one action (Eq. 20's augmented trajectory)."""
    if reaction is None:
        return "The session ended after this reply."
    parts: list[str] = []
    words = len(reaction.user_text.split())
    if text_reaction is not None and reaction.embedding is not None:
        label = text_reaction(reaction.embedding)
        if label:
            parts.append(f"their words sounded {label}")
    if words <= 2:
        parts.append("they answered in very few words")
    if reaction.prosody is not None:
        parts += describe_prosody(reaction.prosody, base)
    if reaction.visual is not None:
        parts += describe_visual(reaction.visual)
    said = " ".join(reaction.user_text.split()[:20])
    cues = ("; ".join(parts) + ".") if parts else "no strong cues."
    return f'User then said "{said}" — {cues[0].upper() + cues[1:]}'


def describe_trajectory(traj: Trajectory, embedder: Embedder | None = None) -> list[str]:
    """d_t for every action a_t of a trajectory; embeds the user's turns that lack e_t."""
    text_reaction = None
    if embedder is not None:
        missing = [t for t in traj.turns if t.embedding is None]
        if missing:
            for t, e in zip(missing, embedder.encode([t.user_text for t in missing]), strict=True):
                t.embedding = e
        text_reaction = TextReaction(embedder)
    base = Baseline.of(traj)
    return [describe(traj.reaction(i), base, text_reaction) for i in range(len(traj.turns))]
