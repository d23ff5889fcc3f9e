import asyncio

import numpy as np
import pytest

from mio.core.frames import (
    AudioChunk,
    ControlFrame,
    EndOfStream,
    EndOfTurn,
    ErrorFrame,
    Frame,
    Interrupt,
    PlanChunk,
    UserText,
)
from mio.runtime.pipeline import Inbox, Pipeline, Processor, run_test


class Doubler(Processor):
    name = "doubler"

    async def process(self, frame):
        if isinstance(frame, UserText):
            yield UserText(text=frame.text, pts=frame.pts)
            yield UserText(text=frame.text.upper(), pts=frame.pts)
        else:
            yield frame


class Slow(Processor):
    """Takes `delay` seconds per data frame (as model work would), recording what it finished."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.finished: list[str] = []
        self.interrupts = 0

    async def process(self, frame):
        if isinstance(frame, UserText):
            await asyncio.sleep(self.delay)
            self.finished.append(frame.text)
        yield frame

    async def on_interrupt(self, frame):
        self.interrupts += 1


class Boom(Processor):
    name = "boom"

    async def process(self, frame):
        if isinstance(frame, UserText) and frame.text == "bad":
            raise ValueError("cannot handle this")
        yield frame


def texts(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, UserText)]


def test_frames_keep_order_through_stages():
    frames = [UserText(text=f"m{i}") for i in range(5)]
    out = asyncio.run(run_test([Doubler(), Processor(), Doubler()], frames))
    assert texts(out)[:4] == ["m0", "M0", "M0", "M0"]
    assert len(texts(out)) == 20
    assert isinstance(out[-1], EndOfStream)


def test_processor_error_becomes_error_frame_and_pipeline_continues():
    out = asyncio.run(run_test([Boom()], [UserText(text="bad"), UserText(text="good")]))
    errors = [f for f in out if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and "boom: cannot handle this" in errors[0].message
    assert texts(out) == ["good"]


def test_inbox_system_frames_jump_and_data_is_dropped_but_control_kept():
    async def go():
        box = Inbox()
        await box.put(UserText(text="a"))
        await box.put(EndOfTurn(turn_id=1))
        await box.put(UserText(text="b"))
        await box.put(Interrupt())
        first = await box.get()
        assert isinstance(first, Interrupt)
        assert box.drop_data() == 2
        rest = [await box.get()]
        assert isinstance(rest[0], EndOfTurn) and len(box) == 0

    asyncio.run(go())


def test_interrupt_overtakes_queued_work_and_drops_it():
    """Barge-in: five slow frames are queued; an Interrupt arrives at the sink long before
    they could be processed, the frame in flight is abandoned and the queue is dropped."""

    async def go():
        slow = Slow(delay=0.2)
        out: list[tuple[float, Frame]] = []
        t0 = asyncio.get_running_loop().time()

        async def sink(f):
            out.append((asyncio.get_running_loop().time() - t0, f))

        pipe = Pipeline([Processor(), slow, Processor()], sink)
        await pipe.start()
        for i in range(5):
            await pipe.put(UserText(text=f"q{i}"))
        await pipe.put(EndOfTurn(turn_id=1))
        await asyncio.sleep(0.05)
        await pipe.put(Interrupt(heard_text="hel"))
        await pipe.put(UserText(text="after"))
        await pipe.put(EndOfStream())
        await asyncio.wait_for(pipe.wait(), 5)
        await pipe.stop()
        return slow, out

    slow, out = asyncio.run(go())
    kinds = [f for _, f in out]
    t_int = next(t for t, f in out if isinstance(f, Interrupt))
    assert t_int < 0.15, "the interrupt waited behind queued work"
    assert texts(kinds) == ["after"], "queued data frames should be dropped, new ones kept"
    assert "q0" not in slow.finished  # in-flight work abandoned
    assert any(isinstance(f, EndOfTurn) for f in kinds), "control frames survive interruption"
    assert slow.interrupts == 1
    assert kinds[-1].kind == "EndOfStream"


def test_system_frames_never_dropped_and_reach_the_end_once():
    out = asyncio.run(run_test([Processor(), Processor()], [Interrupt(), Interrupt(), UserText(text="x")]))
    assert sum(isinstance(f, Interrupt) for f in out) == 2


def test_backpressure_bounds_the_queue():
    async def go():
        box = Inbox(maxsize=2)
        await box.put(UserText(text="1"))
        await box.put(UserText(text="2"))
        blocked = asyncio.create_task(box.put(UserText(text="3")))
        await asyncio.sleep(0.01)
        assert not blocked.done()
        await box.get()
        await asyncio.wait_for(blocked, 1)
        assert len(box) == 2

    asyncio.run(go())


def test_frame_kinds():
    a = AudioChunk(samples=np.zeros(2400, np.float32), sample_rate=24000, pts=1.0)
    assert a.duration == pytest.approx(0.1) and a.end == pytest.approx(1.1)
    assert isinstance(EndOfTurn(turn_id=1), ControlFrame)
    assert PlanChunk(turn_id=1, index=0, text="hi").emotion.label == "neutral"
