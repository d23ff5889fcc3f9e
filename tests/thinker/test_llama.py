"""The embedded LLM (the default Qwen2.5-Coder-0.5B GGUF via llama.cpp, and SmolLM2-135M): real text,
streamed, with the persona cached."""

import dataclasses
import os
from pathlib import Path

import pytest

from mio.core.config import ThinkerConfig
from mio.core.errors import BackendError, ConfigError
from mio.thinker.llm.llama import LlamaCppLLM, embedded_gguf, served_gguf
from mio.thinker.persona import load_character
from mio.thinker.thinker import Thinker

pytestmark = pytest.mark.slow
SMOL = ThinkerConfig(embedded="smollm2-135m")


@pytest.fixture(scope="module")
def thinker(tmp_path_factory):
    return Thinker(ThinkerConfig(memory_dir=str(tmp_path_factory.mktemp("memory"))))


def test_embedded_gguf_ships_in_the_wheel():
    path = embedded_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50e6


def test_reply_is_real_english_in_clauses(thinker):
    conv = thinker.new_conversation(load_character("mio"))
    clauses = list(thinker.reply(conv, "Hello! How are you today?"))
    text = " ".join(c.text for c in clauses)
    assert 2 <= len(text.split()) <= 80
    assert sum(ch.isalpha() for ch in text) > 0.6 * len(text)
    assert all(c.emotion.label and 0 <= c.emotion.intensity <= 1 for c in clauses)
    assert not any(w in text.lower() for w in ("language model", "assistant"))


def test_persona_prefix_stays_cached_between_turns(thinker):
    """After the warm-up, a turn only pre-fills its new tokens (the persona is in the KV cache)."""
    import llama_cpp

    conv = thinker.new_conversation(load_character("mio"))
    thinker.warm(conv)
    llm = thinker.llm.llm
    prompt_len = len(llm.tokenize(conv.character.system_prompt().encode(), add_bos=False))
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    list(thinker.reply(conv, "What do you like?"))
    evaluated = llama_cpp.llama_perf_context(llm._ctx.ctx).n_p_eval
    assert prompt_len > 50
    assert 0 < evaluated < 30, f"{evaluated} prompt tokens evaluated: the persona prefix was not reused"


def test_threads_follow_the_free_cores_and_a_fixed_count_is_kept(tmp_path, monkeypatch):
    """thinker.n_threads=0 (the default): each reply runs on as many threads as the cores other
    processes leave free (mio.core.cpu); a fixed count is used as given; a negative one is refused."""
    from mio.core import cpu

    auto = LlamaCppLLM(SMOL)
    assert auto.auto_threads and auto.n_threads == min(os.cpu_count() or 1, 8)
    msgs = [{"role": "user", "content": "Say hello."}]
    for free, want in ((0.3, 1), (float(auto.n_threads), auto.n_threads)):
        monkeypatch.setattr(cpu.CpuMeter, "free_cores", lambda self, f=free: f)
        text = "".join(auto.stream(msgs, 4, 0.0))
        assert text.strip() and auto.threads_used[-1] == want
    fixed = LlamaCppLLM(dataclasses.replace(SMOL, n_threads=1))
    assert not fixed.auto_threads and "".join(fixed.stream(msgs, 4, 0.0)).strip() and fixed.threads_used[-1] == 1
    with pytest.raises(ConfigError, match="n_threads"):
        LlamaCppLLM(dataclasses.replace(SMOL, n_threads=-1))


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="does not exist"):
        LlamaCppLLM(ThinkerConfig(model_path=str(tmp_path / "none.gguf")))


def test_nemo_turn_reuses_the_cached_persona_and_retrieves_within_story_time(thinker):
    """With the Nemo pack, retrieved facts come after the cached prefix: only the per-turn note and
    the question are evaluated, never the persona again; a future fact never reaches the prompt."""
    import llama_cpp

    conv = thinker.new_conversation(load_character("nemo"), user_id="slow-test")
    thinker.warm(conv)
    llm = thinker.llm.llm
    persona = len(llm.tokenize(conv.character.system_prompt().encode(), add_bos=False))
    note, _ = thinker.recall(conv, "Have you been to the South Pole?")
    assert "South Pole" not in note
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    clauses = list(thinker.reply(conv, "What powers the Nautilus?"))
    evaluated = llama_cpp.llama_perf_context(llm._ctx.ctx).n_p_eval
    assert clauses and 0 < evaluated < persona, f"{evaluated} tokens evaluated; persona is {persona}"


def test_embedded_model_is_served_as_q8_0_with_the_shipped_outputs(tmp_path, monkeypatch):
    """The shipped Q4_1 file is re-encoded once into the cache as Q8_0 (faster pre-fill); the copy
    predicts what the shipped model predicts, and `weights=shipped` serves the file as shipped."""
    import llama_cpp

    from mio.bench.llm import fidelity, next_token_logprobs
    from mio.core.errors import ConfigError
    from mio.thinker.llm.llama import embedded_q8_0

    monkeypatch.setenv("MIO_CACHE", str(tmp_path))
    q8 = served_gguf(SMOL)
    assert q8.parent == tmp_path / "llm" and q8.name.endswith(".Q8_0.gguf") and q8.is_file()
    assert embedded_q8_0() == q8 and q8.stat().st_size > embedded_gguf().stat().st_size  # cached, 8 bits
    assert served_gguf(dataclasses.replace(SMOL, weights="shipped")) == embedded_gguf()
    assert served_gguf(ThinkerConfig(model_path="/x/y.gguf", weights="shipped")) == Path("/x/y.gguf")
    with pytest.raises(ConfigError, match="thinker.weights"):
        served_gguf(ThinkerConfig(weights="q2"))

    text = load_character("nemo").system_prompt().encode()
    shipped, served = (llama_cpp.Llama(model_path=str(p), n_ctx=512, n_threads=2, logits_all=True, verbose=False)
                       for p in (embedded_gguf(), q8))
    tokens = shipped.tokenize(text)[:120]
    f = fidelity(next_token_logprobs(shipped, tokens), next_token_logprobs(served, tokens), tokens)
    # measured 0.007 (an f16 copy: 0.004); a 4-bit re-encoding (Q4_0, IQ4_NL): 0.2-0.3
    assert f["kl_to_shipped_mean"] < 0.03 and f["top1_agreement"] > 0.9, f


def test_the_persona_prefix_is_kept_on_disk_between_processes(tmp_path, monkeypatch):
    """A second model (as in a new process) loads the warmed persona from the state file instead of
    pre-filling it again, and then answers exactly as a freshly pre-filled one; a damaged file is
    replaced by pre-filling."""
    import llama_cpp

    model = served_gguf(ThinkerConfig())  # the default model, from the shared cache (the prefix state goes to tmp)
    monkeypatch.setenv("MIO_CACHE", str(tmp_path))
    character = load_character("mio")
    cfg = ThinkerConfig(model_path=str(model), memory_dir=":memory:", episodic=False, temperature=0.0)

    def session() -> tuple[int, str]:
        th = Thinker(cfg)
        conv = th.new_conversation(character)
        ctx = th.llm.llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        th.warm(conv)
        warmed = llama_cpp.llama_perf_context(ctx).n_p_eval
        return warmed, " ".join(c.text for c in th.reply(conv, "What do you like to do?"))

    first, fresh = session()
    files = list((tmp_path / "llm" / "prefix").glob("*.state"))
    assert first > 100 and len(files) == 1
    second, loaded = session()
    assert second <= 1 and loaded == fresh
    files[0].write_bytes(b"not a llama.cpp state file")
    third, again = session()
    assert third > 100 and again == fresh


def test_sessions_taking_turns_keep_their_own_prefilled_state(tmp_path, monkeypatch):
    """Two conversations alternating on the one llama context: each turn pre-fills only its new
    tokens (its conversation is restored, not re-read), and each conversation gets exactly the
    replies it gets when it runs alone."""
    import llama_cpp

    model = served_gguf(ThinkerConfig())
    monkeypatch.setenv("MIO_CACHE", str(tmp_path))
    cfg = ThinkerConfig(model_path=str(model), memory_dir=":memory:", episodic=False, temperature=0.0, max_tokens=24)
    character = load_character("mio")
    lines = ["Hello! Who are you?", "What do you like to do?", "Tell me about your day."]

    def run(th: Thinker, conv, line: str) -> tuple[str, int]:
        ctx = th.llm.llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        text = " ".join(c.text for c in th.reply(conv, line))
        conv.add("user", line)
        conv.add("assistant", text)
        return text, llama_cpp.llama_perf_context(ctx).n_p_eval

    th = Thinker(cfg)
    alone = th.new_conversation(character, session_id="alone")
    th.warm(alone)
    expected = []
    for line in lines:
        expected.append(run(th, alone, line)[0])

    th = Thinker(cfg)
    a, b = th.new_conversation(character, session_id="a"), th.new_conversation(character, session_id="b")
    th.warm(a)
    th.warm(b)
    got, prefilled = [], []
    for line in lines:
        text, n = run(th, a, line)
        got.append(text)
        prefilled.append(n)
        prefilled.append(run(th, b, line)[1])
    assert got == expected
    assert max(prefilled) < 60, prefilled  # without the saved states the last turns re-read ~150 tokens


def test_between_turns_the_next_turns_opening_is_prefilled(tmp_path, monkeypatch):
    """prime() pre-fills the recorded turns and the template's opening of the next user turn while
    the conversation is idle: the next turn then pre-fills only the user's words and the reply's
    opening, its reply is the one it gets unprimed, and a second prime finds nothing to do. A reply
    cut short by a barge-in is re-read by the prime, not by the next turn; a busy LLM is not waited for."""
    import llama_cpp

    monkeypatch.setenv("MIO_CACHE", str(tmp_path))
    cfg = ThinkerConfig(model_path=str(served_gguf(ThinkerConfig())), memory_dir=":memory:", episodic=False,
                        temperature=0.0, max_tokens=24)
    character = load_character("mio")
    th = Thinker(cfg)
    llm = th.llm

    def evaluated() -> int:
        return llama_cpp.llama_perf_context(llm.llm._ctx.ctx).n_p_eval

    def turn(conv, line: str, prime: bool) -> tuple[str, int, int]:
        text = " ".join(c.text for c in th.reply(conv, line))
        conv.add("user", line)
        conv.add("assistant", text)
        primed = th.prime(conv) if prime else 0
        llama_cpp.llama_synchronize(llm.llm._ctx.ctx)  # the perf counters count a batch when it is synchronised
        llama_cpp.llama_perf_context_reset(llm.llm._ctx.ctx)
        return text, primed, evaluated()

    lines = ["Hello! Who are you?", "What do you like to do?"]
    plain = th.new_conversation(character, session_id="plain")
    th.warm(plain)
    unprimed = [turn(plain, line, prime=False)[0] for line in lines]

    conv = th.new_conversation(character, session_id="primed")
    th.warm(conv)
    text, primed, _ = turn(conv, lines[0], prime=True)
    assert text == unprimed[0]
    assert primed == 5  # ChatML: <|im_end|> \n <|im_start|> user \n
    assert th.prime(conv) == 0  # nothing new
    words = len(llm.llm.tokenize(lines[1].encode(), add_bos=False))
    text = " ".join(c.text for c in th.reply(conv, lines[1]))
    assert evaluated() <= words + 5, "the next turn pre-filled more than its words and the reply's opening"
    assert text == unprimed[1]
    conv.add("user", lines[1])
    conv.add("assistant", text)

    conv.turns[-1].text = text.split()[0] + " ..."  # what a barge-in leaves of the reply
    assert th.prime(conv) >= 5
    with llm._lock:  # a reply being written elsewhere: the prime does not wait for it
        conv.turns[-1].text = "(interrupted before speaking)"
        assert th.prime(conv) == 0


def test_the_characters_speak_in_the_first_person_with_the_real_model(thinker):
    """With the real model and the story's notes: greeted by name, asked about themselves and about what
    their notes say of them, the characters never name themselves as someone else (the sampling ban of
    mio.thinker.llm.selfname; the notes come in the first person, mio.thinker.pov)."""
    from mio.thinker.evals import third_person

    asked = {"nemo": ["Good evening, Captain Nemo! Who are you?", "Who built this ship?", "Tell me about yourself, captain."],
             "ned": ["Ned Land, tell me about your harpoon.", "Who are you?"],
             "aronnax": ["Professor Aronnax, what book did you write?"]}
    for name, questions in asked.items():
        ch = load_character(name)
        for q in questions:
            conv = thinker.new_conversation(ch, user_id="slow-test-pov")
            reply = " ".join(c.text for c in thinker.reply(conv, q))
            assert reply and third_person(reply, ch.name) is None, (q, reply)
            assert "nomo" not in reply.lower()  # nor a misspelt name around the ban
