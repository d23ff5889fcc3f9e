"""A reply's work after its first clause runs at background CPU priority (mio.runtime.priority)."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from mio.runtime.priority import BACKGROUND_NICE, run_in_thread
from tests.fakes import FakeLLM, fake_models

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are a Linux feature")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_background_jobs_run_niced_on_their_own_threads():
    base = _nice()
    assert run_in_thread(_nice).result(5) == base
    assert run_in_thread(_nice, background=True).result(5) == max(base, BACKGROUND_NICE)
    assert _nice() == base  # the caller is untouched


class NiceRecordingLLM(FakeLLM):
    """Records the nice value of the thread at each piece it streams."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.nice: list[int] = []

    def stream(self, messages, max_tokens, temperature, *, session=None, avoid=None):
        for piece in super().stream(messages, max_tokens, temperature, session=session, avoid=avoid):
            self.nice.append(_nice())
            time.sleep(0.002)
            yield piece


def test_the_llm_writes_the_first_clause_at_normal_priority_and_the_rest_in_the_background():
    from mio.runtime.session import Session

    models = fake_models()
    llm = NiceRecordingLLM("Aye, I am here. The sea is calm tonight, and the Nautilus sleeps. Ask me more.")
    models.thinker.llm = llm

    async def go():
        s = Session(models, realtime=True)
        await s.start()
        await s.send_text("Hello?")
        await s.wait_turn(10)
        await s.close()

    asyncio.run(go())
    base = _nice()
    assert llm.nice[0] == base and llm.nice[-1] == max(base, BACKGROUND_NICE)
    models.close()
