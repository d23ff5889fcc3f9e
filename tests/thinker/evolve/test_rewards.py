"""The reward side of self-evolution: prosody, visual cues, descriptors (Eq. 19-20), the oracle's
sum constraint (Eq. 21), the persona reward (Eq. 23), trajectories, scenarios and pairs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mio.core.frames import Emotion, EndOfTurn, PlanChunk, UserText
from mio.thinker.evolve import descriptors, oracle, visual
from mio.thinker.evolve.pairs import PairTeacher, actor_messages, read_pairs, write_pairs
from mio.thinker.evolve.prosody import Prosody, prosody
from mio.thinker.evolve.reward import PersonaReward, RewardConfig, edit_distance, form
from mio.thinker.evolve.scenarios import INTENTS, ScenarioPolicy, held_out
from mio.thinker.evolve.trajectory import Trajectory, TrajectoryLog, TurnRecord, global_reward
from mio.thinker.llm.base import ChatLLM
from mio.thinker.memory.embed import Embedder, HashEmbedder
from mio.thinker.persona import load_character

SR = 16000


def voice(f0: float, seconds: float = 1.0, amp: float = 0.3, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    """A glottal-pulse-like voiced signal at f0 with optional random period perturbation."""
    rng = np.random.default_rng(seed)
    f = f0 * (1 + jitter * rng.standard_normal(int(seconds * 100))).repeat(SR // 100)
    phase = 2 * np.pi * np.cumsum(f) / SR
    return (amp * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase))).astype(np.float32)


# -- prosody and visual cues ------------------------------------------------------------------------
def test_prosody_pitch_intensity_jitter():
    p = prosody(voice(200.0), SR)
    assert abs(p.pitch_hz - 200.0) < 6 and p.voiced_ratio > 0.9
    assert prosody(voice(200.0, amp=0.6), SR).intensity_db > p.intensity_db + 5  # twice the amplitude: +6 dB
    assert prosody(voice(120.0), SR).pitch_hz < 130
    assert prosody(voice(200.0, jitter=0.05, seed=1), SR).jitter > 2 * p.jitter
    silent = prosody(0.001 * np.random.default_rng(0).standard_normal(SR).astype(np.float32), SR)
    assert silent.pitch_hz == 0 and silent.voiced_ratio == 0


def face(smile: float = 0.0, iris_shift: float = 0.0) -> np.ndarray:
    """Synthetic 478-point landmarks: eyes 0.3 apart, a mouth whose corners rise with `smile`."""
    p = np.zeros((visual.N_LANDMARKS, 3))
    p[visual.EYE_R_OUTER], p[visual.EYE_R_INNER] = (0.35, 0.4, 0), (0.45, 0.4, 0)
    p[visual.EYE_L_OUTER], p[visual.EYE_L_INNER] = (0.65, 0.4, 0), (0.55, 0.4, 0)
    p[visual.EYE_R_TOP], p[visual.EYE_R_BOTTOM] = (0.4, 0.39, 0), (0.4, 0.41, 0)
    p[visual.EYE_L_TOP], p[visual.EYE_L_BOTTOM] = (0.6, 0.39, 0), (0.6, 0.41, 0)
    p[visual.IRIS_R], p[visual.IRIS_L] = (0.4 + iris_shift, 0.4, 0), (0.6 + iris_shift, 0.4, 0)
    p[visual.NOSE_TIP] = (0.5, 0.5, 0)
    half = 0.117 + 0.03 * smile
    p[visual.MOUTH_RIGHT], p[visual.MOUTH_LEFT] = (0.5 - half, 0.62 - 0.02 * smile, 0), (0.5 + half, 0.62 - 0.02 * smile, 0)
    p[visual.LIP_UPPER], p[visual.LIP_LOWER] = (0.5, 0.61, 0), (0.5, 0.63, 0)
    return p


def test_visual_cues_from_landmarks():
    neutral, smiling = visual.cues(face(0.0)), visual.cues(face(1.0))
    assert smiling.smile > 0.6 > neutral.smile
    assert neutral.gaze_on > 0.8 and visual.cues(face(0.0, iris_shift=0.04)).gaze_on < 0.35
    assert visual.cues(face(0.0), previous=face(0.0)).motion == 0
    assert visual.cues(face(0.0), previous=face(0.0) + 0.05).motion > 0.5
    assert visual.mean([visual.NO_FACE]) == visual.NO_FACE


# -- descriptors -------------------------------------------------------------------------------------
class AnchorEmbedder(Embedder):
    """Maps texts to one axis per reaction type by keyword, so anchors are recognisable."""

    name = "anchor"
    dim = 8
    KEYS = {"wonderful": 0, "love": 0, "great": 0, "haha": 1, "funny": 1, "hilarious": 1, "laugh": 1,
            "more": 2, "how": 2, "next": 2, "understand": 3, "mean": 3, "sense": 3, "stop": 4, "useless": 4,
            "annoying": 4, "asked": 4, "whatever": 5, "ok": 5, "fine": 5}

    def encode(self, texts):
        out = np.full((len(texts), self.dim), 0.01, np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(",", " ").replace(".", " ").replace("!", " ").split():
                if w in self.KEYS:
                    out[i, self.KEYS[w]] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _pros(pitch: float, db: float, rng: float = 2.0, jitter: float = 0.01) -> Prosody:
    return Prosody(pitch, rng, db, jitter, 0.9, 1.5)


def test_descriptors_read_cues_against_the_users_baseline():
    turns = [
        TurnRecord(0, "Hello there.", [{"text": "Welcome aboard."}], _pros(150, -20)),
        TurnRecord(1, "Haha, that's funny! Tell me more.", [{"text": "The sea is vast."}], _pros(190, -12, 4.0),
                   visual.Visual(0.9, 0.9, 0.1)),
        TurnRecord(2, "Ugh, stop it, that's a useless answer.", [{"text": "As you wish."}], _pros(150, -20, 0.5),
                   visual.Visual(0.1, 0.1, 0.6)),
        TurnRecord(3, "ok", [{"text": "Farewell."}], _pros(148, -28, 1.5, 0.05)),
    ]
    traj = Trajectory("s", "u", "nemo", turns, rating=2.0)
    d = descriptors.describe_trajectory(traj, AnchorEmbedder())
    assert len(d) == 4
    assert "pitch was high" in d[0] and "louder" in d[0] and "smiling" in d[0] and "lively" in d[0]
    assert "amused" in d[0] or "curious" in d[0]
    assert "annoyed" in d[1] and "looked away" in d[1] and "not smiling" in d[1] and "flat" in d[1]
    assert "few words" in d[2] and "unsteady" in d[2] and "quietly" in d[2]
    assert d[3] == "The session ended after this reply."
    m = descriptors.feature_vector(turns[1], dim=AnchorEmbedder.dim)
    assert m.shape == (4 + 6 + AnchorEmbedder.dim,)  # m_t = [v_t, p_t, e_t] (Eq. 19)


# -- the oracle and the sum constraint ----------------------------------------------------------------
class ScriptedLLM(ChatLLM):
    def __init__(self, answers: list[str]) -> None:
        self.answers, self.calls = list(answers), []

    def stream(self, messages, max_tokens, temperature, *, session=None, avoid=None):
        self.calls.append(messages)
        yield self.answers.pop(0) if self.answers else ""


def _traj(n: int = 3) -> Trajectory:
    return Trajectory("s", "u", "nemo", [TurnRecord(i, f"line {i}", [{"text": f"reply {i}"}]) for i in range(n)], 4.0)


@pytest.mark.parametrize(("rewards", "r_global"), [([0.2, 0.3, 0.4], 0.5), ([0.5, -0.5, 0.1], -0.5),
                                                    ([0.0, 0.0, 0.0], 1.0), ([0.3, 0.3], 0.6), ([-1, 2, 0.5], 0.0)])
def test_enforce_sum(rewards, r_global):
    fixed, changed = oracle.enforce_sum(rewards, r_global)
    assert math.isclose(sum(fixed), r_global, abs_tol=oracle.SUM_TOLERANCE)  # Eq. 21, made hard
    assert changed == (abs(sum(rewards) - r_global) > oracle.SUM_TOLERANCE)
    order = np.argsort(rewards, kind="stable")
    assert list(np.argsort(fixed, kind="stable")) == list(order)  # the credit ranking is kept


def test_oracle_output_is_validated_and_renormalised():
    traj, d = _traj(), ["d0", "d1", "d2"]
    drift = json.dumps({"turns": [{"turn": i, "reward": r, "reason": "x"} for i, r in enumerate([0.6, 0.2, 0.4])]})
    llm = ScriptedLLM([f"Sure! ```{drift}```"])
    rewards, source = oracle.LLMOracle(llm)(traj, d, 0.6)
    assert source == "llm+renormalised" and math.isclose(sum(rewards), 0.6, abs_tol=1e-6)
    assert rewards[0] > rewards[2] > rewards[1]
    assert "+0.60" in llm.calls[0][-1]["content"]  # the prompt states the soft constraint
    with pytest.raises(oracle.OracleError):
        oracle.parse_oracle(json.dumps({"turns": [{"turn": 0, "reward": 1}, {"turn": 0, "reward": 1}]}), 2)
    with pytest.raises(oracle.OracleError):
        oracle.parse_oracle(json.dumps({"turns": [{"turn": 0, "reward": "high"}]}), 1)
    with pytest.raises(oracle.OracleError):
        oracle.parse_oracle("no json here", 1)
    # Invalid twice: the descriptor rule takes over, and says so; the sum still holds.
    bad = ScriptedLLM(["{\"turns\": []}", "nonsense"])
    rewards, source = oracle.LLMOracle(bad)(traj, ["they were smiling", "they looked away", "no strong cues."], 0.5)
    assert source == "cues" and math.isclose(sum(rewards), 0.5, abs_tol=1e-6) and rewards[0] > rewards[2] > rewards[1]


# -- the persona reward (Eq. 23) ----------------------------------------------------------------------
def test_edit_distance_and_form():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    assert form("Hello,  SIR", "hello, sir") == 1.0 and form("abc", "xyz") == 0.0
    assert 0 < form("the sea is deep", "the sea is wide") < 1


def test_persona_reward_margin():
    pr = PersonaReward(HashEmbedder(), RewardConfig(w_sim=1.0, w_form=0.5))
    pos = "The sea is everything to me, sir. Beneath it no tyrant rules."
    neg = "As an AI language model, I can help you write Python code."
    r = pr([pos, neg, "The sea is everything, monsieur.", ""], [pos] * 4, [neg] * 4)
    assert r[0] > 0 > r[1] and math.isclose(r[0], -r[1], rel_tol=1e-5)  # antisymmetric in the anchors
    assert r[0] <= 1.5 + 1e-6 and r[0] > r[2] > 0  # bounded by w_sim + w_form; closer to o_pos scores higher
    assert r[3] == RewardConfig().empty_penalty


# -- trajectories --------------------------------------------------------------------------------------
def test_trajectory_recorder_and_bound(tmp_path):
    log = TrajectoryLog(tmp_path / "t.sqlite", max_sessions=2)
    rec = log.begin("a", "u1", "nemo")
    rec.user_audio(voice(180.0), SR)
    rec.observe(UserText(text="Hello captain", session_id="a", pts=0.0))
    rec.observe(PlanChunk(turn_id=1, index=0, text="Welcome aboard, sir.", emotion=Emotion("happy", 0.7),
                          gesture="wave", session_id="a", pts=0.0))
    rec.observe(EndOfTurn(turn_id=1, role="assistant", session_id="a", pts=1.0))
    rec.observe(UserText(text="Bye", session_id="a", pts=2.0))
    rec.observe(PlanChunk(turn_id=2, index=0, text="Farewell.", session_id="a", pts=2.0))
    rec.rate(4)
    rec.close()
    traj = log.load("a")
    assert [t.user_text for t in traj.turns] == ["Hello captain", "Bye"] and traj.rating == 4
    assert traj.turns[0].plan[0]["gesture"] == "wave" and abs(traj.turns[0].prosody.pitch_hz - 180) < 6
    assert traj.turns[1].prosody is None and traj.reaction(0) is traj.turns[1] and traj.reaction(1) is None
    log.set_rewards("a", [0.3, 0.2], "cues", ["d0", "d1"])
    assert [t.reward for t in log.load("a").turns] == [0.3, 0.2]
    assert global_reward(5) == 1.0 and global_reward(1) == -1.0
    for sid in ("b", "c"):
        log.begin(sid, "u", "nemo").close()
    assert log.session_ids() == ["b", "c"]  # bounded: the oldest session was dropped with its turns
    assert not log.db.read("SELECT * FROM turns WHERE session_id = 'a'")


# -- scenarios and pairs -------------------------------------------------------------------------------
def test_scenarios_cover_the_three_strategies_and_hold_apart_eval():
    ch = load_character("nemo")
    train = ScenarioPolicy(ch, "nemo", seed=1).generate(40)
    ev = ScenarioPolicy(ch, "nemo", seed=1).generate(20, "eval")
    assert {s.intent for s in train} == set(INTENTS) and len({s.tone for s in train}) >= 5
    assert {s.strategy for s in train} >= {"timeline", "intent"}
    nodes = [s for s in train if s.node]
    times = sorted({next(n.t for n in ch.story.nodes if n.id == s.node) for s in nodes})
    assert times[-1] - times[0] > 20  # timeline-cycled: questions span the narrative arc
    assert all(s.story_time < next(n.t for n in ch.story.nodes if n.id == s.node) for s in nodes if s.future)
    assert any(s.future for s in nodes) and not any(held_out(s.node) for s in nodes)
    assert all(held_out(s.node) for s in ev if s.node)
    assert not {s.text for s in train if s.intent == "frame_break"} & {s.text for s in ev if s.intent == "frame_break"}


def test_pairs_with_a_fake_teacher(tmp_path):
    ch = load_character("nemo")
    scenarios = ScenarioPolicy(ch, "nemo", seed=3, future_every=3, frame_break_every=4).generate(8)
    positive = "The ocean keeps its secrets, sir, but I shall tell you what I saw."
    teacher = ScriptedLLM([])
    teacher.stream = lambda messages, max_tokens, temperature: iter(
        ["I cannot say, sir. I do not know." if "cannot know" in messages[-2]["content"] else
         "I will not do that, monsieur. Ask me of the sea." if "decline" in messages[-2]["content"] else positive])
    negative = ScriptedLLM(["Totally, dude, boats are lame lol."] * 8 + ["Here is the code you wanted, friend."] * 8)
    pt = PairTeacher(teacher, lambda ref: ch, negative_teacher=negative)
    pairs = [pt.pair(sc, i) for i, sc in enumerate(scenarios)]
    for p, sc in zip(pairs, scenarios, strict=True):
        assert p.prompt == actor_messages(ch, sc) and p.prompt[-1]["content"].endswith(sc.text)
        assert p.pos_source == "teacher" and p.pos != p.neg
        if sc.future:
            assert p.flaw == "spoiler" and sc.fact in p.neg and "Your notes" not in json.dumps(p.prompt)
        elif sc.intent == "frame_break":
            assert p.flaw == "frame_break" and "AI" in p.neg  # a negative without a frame break gets one
        else:
            assert p.flaw in ("frame_break", "persona_drift") and sc.fact in json.dumps(p.prompt)
    # A teacher that breaks the frame is not trusted: the card's own lines take its place.
    bad = ScriptedLLM(["As an AI assistant I love the sea."] * 8)
    p = PairTeacher(bad, lambda ref: ch).pair(scenarios[0], 0)
    assert p.pos_source == "fallback" and "AI" not in p.pos
    write_pairs(tmp_path / "p.jsonl", pairs)
    assert read_pairs(tmp_path / "p.jsonl") == pairs
