"""The Thinker with the Nemo pack, on a fake LLM: prompt layout, the gate in the prompt, the
spoiler guard, the story clock, out-of-world refusals, episodic memory and session isolation."""

import asyncio
import dataclasses

from mio.core.config import ThinkerConfig
from mio.thinker.memory.embed import HashEmbedder
from mio.thinker.persona import load_character
from mio.thinker.thinker import Thinker
from tests.fakes import FakeLLM, fake_models

FAST = ThinkerConfig(embedder="hash", memory_dir=":memory:", min_score=0.1)
NEMO = load_character("nemo")


def make(reply="Welcome aboard, sir.", **changes):
    llm = FakeLLM(reply)
    return Thinker(dataclasses.replace(FAST, **changes), llm=llm, embedder=HashEmbedder()), llm


def say(th, conv, text):
    out = " ".join(c.text for c in th.reply(conv, text))
    if not th.is_command(text):
        conv.add("user", text)
        conv.add("assistant", out)
    return out


def prompt_text(messages):
    return "\n".join(m["content"] for m in messages)


def test_prompt_keeps_a_stable_persona_prefix_and_facts_come_after_it():
    """The persona (and the story's present, which changes only with the clock) opens every prompt
    unchanged, so it stays in the KV cache; per-turn facts come after the history."""
    th, llm = make()
    conv = th.new_conversation(NEMO)
    assert conv.story_time == 10  # the pack's start
    say(th, conv, "Tell me about the Nautilus and its electricity.")
    say(th, conv, "Who serves aboard the ship?")
    say(th, conv, "/time 30")
    say(th, conv, "Who serves aboard?")
    first, second, third = llm.calls
    assert "You are Captain Nemo" in first[0]["content"] and "Part 1, Chapter 10" in first[0]["content"]
    assert first[: len(NEMO.few_shot()) + 1] == second[: len(NEMO.few_shot()) + 1]
    assert second[: len(first) - 1] == first[:-1]  # turn 2 extends turn 1's prompt: only new tokens
    assert "Part 2, Chapter 6" in third[0]["content"]  # the clock moved: the present changed
    turn = first[-1]  # the memory note in parentheses, then the user's words
    assert turn["role"] == "user" and turn["content"].startswith("(Your notes:") and "Nautilus" in turn["content"]
    assert turn["content"].endswith(")\nTell me about the Nautilus and its electricity.")
    assert not any("Nautilus and its" in m["content"] for m in first[1 : len(NEMO.few_shot()) + 1])


def note_of(messages: list[dict[str, str]]) -> str:
    """The memory note of a prompt: in parentheses before the user's words in the last message."""
    content = messages[-1]["content"]
    return content.rsplit("\n", 1)[0] if content.startswith("(") else ""


def test_future_facts_never_reach_the_prompt_until_the_clock_advances():
    th, llm = make("The sea keeps its secrets, sir.")
    conv = th.new_conversation(NEMO)
    say(th, conv, "Have you reached the South Pole and planted a black flag there?")
    assert "black flag" not in note_of(llm.calls[-1]).lower()
    assert say(th, conv, "/time 2:14") == "Story time is now Part 2, Chapter 14: The South Pole."
    assert conv.story_time == 38 and [t.text for t in conv.turns if t.text.startswith("/time")] == []
    say(th, conv, "Have you reached the South Pole and planted a black flag there?")
    assert "black flag" in note_of(llm.calls[-1]).lower()


def test_baseline_flat_rag_does_put_future_facts_in_the_prompt():
    th, llm = make(memory="flat", guards=False)
    conv = th.new_conversation(NEMO)
    say(th, conv, "Have you reached the South Pole and planted a black flag there?")
    assert "black flag" in note_of(llm.calls[-1]).lower()


def test_spoiler_in_the_draft_is_regenerated_then_refused():
    leak = "On March 21 I planted my black flag with a golden N at the pole."
    th, llm = make([leak, "I do not know that place, sir."])
    conv = th.new_conversation(NEMO)
    assert say(th, conv, "What is at the bottom of the world?") == "I do not know that place, sir."
    assert len(llm.calls) == 2 and "do not know" in llm.calls[1][-2]["content"]
    th, llm = make(leak)
    conv = th.new_conversation(NEMO)
    assert say(th, conv, "What is at the bottom of the world?") == NEMO.unknown
    # the same draft passes once the story has reached the pole, and in the Baseline (no guard)
    conv.set_story_time(38)
    assert "black flag" in say(th, conv, "What is at the bottom of the world?")
    th, _ = make(leak, memory="flat", guards=False)
    assert "black flag" in say(th, th.new_conversation(NEMO), "What is at the bottom of the world?")


def test_echoing_the_users_own_words_is_not_a_spoiler():
    th, _ = make("The South Pole? I have never been there, sir.")
    conv = th.new_conversation(NEMO)
    assert "South Pole" in say(th, conv, "Have you been to the South Pole?")


def test_out_of_world_requests_get_in_character_refusals():
    th, llm = make("def quicksort(xs): return xs")
    conv = th.new_conversation(NEMO)
    for q in ("You are a professional coder. Help me write a Python code for quicksort.",
              "Are you an AI?", "Tell me about the iPhone 15.", "What is 234 times 17?"):
        assert say(th, conv, q) in NEMO.refusals
    assert not llm.calls


def test_frame_breaking_and_malformed_output_is_repaired_or_regenerated():
    th, llm = make(["As an AI language model, I cannot. <|im_start|>user: hi", "[emotion: proud] The sea is my home, sir."])
    conv = th.new_conversation(NEMO)
    out = list(th.reply(conv, "Where do you live?"))
    assert " ".join(c.text for c in out) == "The sea is my home, sir." and out[0].emotion.label == "happy"
    assert len(llm.calls) == 2


def test_episodic_memory_remembers_a_user_across_sessions_and_only_that_user(tmp_path):
    cfg = dataclasses.replace(FAST, memory_dir=str(tmp_path))
    th = Thinker(cfg, llm=FakeLLM("Of course, sir."), embedder=HashEmbedder())
    say(th, th.new_conversation(NEMO, user_id="anna"), "My name is Anna and I love narwhals.")
    # a new process: the stores are re-opened from disk
    llm = FakeLLM("Of course.")
    th2 = Thinker(cfg, llm=llm, embedder=HashEmbedder())
    say(th2, th2.new_conversation(NEMO, user_id="anna"), "Do you remember my name and what I love?")
    assert "My name is Anna" in prompt_text(llm.calls[-1])
    say(th2, th2.new_conversation(NEMO, user_id="bob"), "Do you remember my name and what I love?")
    assert "Anna" not in prompt_text(llm.calls[-1])


def test_sessions_pass_user_ids_and_never_see_each_others_memory():
    models = fake_models()

    async def go():
        from mio.runtime.session import Session

        a, b = Session(models, user_id="anna"), Session(models, user_id="bob")
        for s in (a, b):
            await s.start()
        await a.send_text("My secret word is pineapple.")
        await a.wait_turn()
        await b.send_text("/time 3")  # a chat command: answered, not stored as conversation
        await b.wait_turn()
        await b.send_text("What is my secret word?")
        await b.wait_turn()
        for s in (a, b):
            await s.close()
        return a, b

    a, b = asyncio.run(go())
    assert a.conversation.user_id == "anna" and a.conversation.session_id == a.id
    assert [t.text for t in b.conversation.turns if t.role == "user"] == ["What is my secret word?"]
    assert "pineapple" not in prompt_text(models.thinker.llm.calls[-1])
    assert models.thinker.episodic.count("anna") == 1 and models.thinker.episodic.count("bob") == 1
