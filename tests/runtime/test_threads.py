"""Each reply runs on a fresh thread of its own (mio.runtime.threads)."""

from __future__ import annotations

import asyncio
import threading

from mio.runtime.threads import run_in_thread
from tests.fakes import FakeLLM, fake_models


def test_run_in_thread_returns_results_and_errors():
    assert run_in_thread(lambda a, b: a + b, 2, 3).result(5) == 5
    fut = run_in_thread(lambda: 1 / 0)
    assert isinstance(fut.exception(5), ZeroDivisionError)


class ThreadRecordingLLM(FakeLLM):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.threads: list[int] = []

    def stream(self, messages, max_tokens, temperature, *, session=None, avoid=None):
        self.threads.append(threading.get_ident())
        yield from super().stream(messages, max_tokens, temperature, session=session, avoid=avoid)


def test_every_reply_is_written_on_a_thread_of_its_own():
    from mio.runtime.session import Session

    models = fake_models()
    llm = ThreadRecordingLLM("Aye, I am here. The sea is calm tonight.")
    models.thinker.llm = llm

    async def go():
        s = Session(models, realtime=True)
        await s.start()
        for text in ("Hello?", "Who are you?"):
            await s.send_text(text)
            await s.wait_turn(10)
        await s.close()
        return s

    s = asyncio.run(go())
    assert len(llm.threads) == 2 and threading.get_ident() not in llm.threads
    assert [t.role for t in s.conversation.turns] == ["user", "assistant", "user", "assistant"]
    models.close()
