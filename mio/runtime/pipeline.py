"""The streaming runtime: an asyncio pipeline of processors (docs/architecture.md §4).

Each processor runs its own task and owns an inbox. Frames flow downstream in order.
- System frames (`Interrupt`, `ErrorFrame`) jump the inbox and are never dropped.
- On an `Interrupt`, a processor drops its queued data frames, cancels the data frame it is
  working on (model work in flight is abandoned: its result is discarded), runs its
  `on_interrupt` hook and passes the Interrupt on at once, so barge-in reaches the end of the
  pipeline without waiting behind queued audio or video.
- Control frames (EndOfTurn, Tick, EndOfStream) keep their order and survive interruptions.

A processor overrides `process(frame)`, an async generator that yields output frames; frames it
does not handle it yields unchanged. Heavy model work goes through `run_blocking`, which runs it
in a worker thread so the event loop keeps serving other frames and sessions.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from mio.core.frames import DataFrame, EndOfStream, ErrorFrame, Frame, Interrupt, SystemFrame

T = TypeVar("T")


class Inbox:
    """A bounded FIFO for ordered frames plus an unbounded lane for system frames."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._ordered: collections.deque[Frame] = collections.deque()
        self._system: collections.deque[Frame] = collections.deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def __len__(self) -> int:
        return len(self._ordered) + len(self._system)

    async def put(self, frame: Frame) -> None:
        if isinstance(frame, SystemFrame):
            self._system.append(frame)
        else:
            while len(self._ordered) >= self.maxsize:  # backpressure
                self._writable.clear()
                await self._writable.wait()
            self._ordered.append(frame)
        self._readable.set()

    async def get(self) -> Frame:
        while not self._system and not self._ordered:
            self._readable.clear()
            await self._readable.wait()
        frame = self._system.popleft() if self._system else self._ordered.popleft()
        if len(self._ordered) < self.maxsize:
            self._writable.set()
        return frame

    def drop_data(self) -> int:
        """Remove queued data frames (keep control frames in order). Returns how many were dropped."""
        kept = [f for f in self._ordered if not isinstance(f, DataFrame)]
        dropped = len(self._ordered) - len(kept)
        self._ordered = collections.deque(kept)
        self._writable.set()
        return dropped


class Processor:
    """One stage of the pipeline. Override `process`; optionally `start`, `on_interrupt`, `stop`."""

    name: str = "processor"
    # A stage whose input is the user's (not the avatar's output) keeps its queue on a barge-in.
    keeps_input_on_interrupt: bool = False

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.next: Processor | None = None
        self.dropped = 0
        self._worker: asyncio.Task[None] | None = None
        self._current: Frame | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._send: Callable[[Frame], Awaitable[None]] | None = None

    # -- hooks --------------------------------------------------------------------------
    async def start(self) -> None:
        """Per-session setup (after the pipeline is wired, before any frame)."""

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        yield frame

    async def on_interrupt(self, frame: Interrupt) -> None:
        """Reset turn state after a barge-in. May fill `frame.heard_text`."""

    async def stop(self) -> None:
        """Release per-session resources."""

    # -- helpers for subclasses ---------------------------------------------------------
    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run model work in a worker thread so the event loop never blocks."""
        return await asyncio.to_thread(fn, *args)

    async def push(self, frame: Frame) -> None:
        """Send a frame downstream (also usable from `process` for out-of-band frames)."""
        assert self._send is not None, "processor is not part of a running pipeline"
        await self._send(frame)

    # -- machinery ----------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            frame = await self.inbox.get()
            if isinstance(frame, SystemFrame):
                await self._handle_system(frame)
                continue
            self._current = frame
            work = asyncio.ensure_future(self._process_one(frame))
            self._inflight = work
            try:
                await work
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # the pipeline is stopping us
                    raise
                # else: the frame's work was abandoned by an Interrupt; go on with the next
            finally:
                self._current = None
                self._inflight = None
            if isinstance(frame, EndOfStream):
                return

    async def _process_one(self, frame: Frame) -> None:
        try:
            async for out in self.process(frame):
                await self.push(out)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a processor error becomes an error frame, not a crash
            await self.push(ErrorFrame(message=f"{self.name}: {e}", session_id=frame.session_id, pts=frame.pts))

    async def _handle_system(self, frame: Frame) -> None:
        if isinstance(frame, Interrupt) and self.keeps_input_on_interrupt:
            await self.on_interrupt(frame)
        elif isinstance(frame, Interrupt):
            self.dropped += self.inbox.drop_data()
            inflight = self._inflight
            if inflight is not None and isinstance(self._current, DataFrame) and not inflight.done():
                inflight.cancel()
            await self.on_interrupt(frame)
        await self.push(frame)


class Pipeline:
    """Processors in a chain; `output` receives every frame leaving the last stage."""

    def __init__(self, processors: Iterable[Processor], output: Callable[[Frame], Awaitable[None]]) -> None:
        self.processors = list(processors)
        if not self.processors:
            raise ValueError("a pipeline needs at least one processor")
        self.output = output
        self._tasks: list[asyncio.Task[None]] = []
        self._sys_tasks: set[asyncio.Task[None]] = set()
        for i, p in enumerate(self.processors):
            p.next = self.processors[i + 1] if i + 1 < len(self.processors) else None
            p._send = self._sender(p)

    def _sender(self, p: Processor) -> Callable[[Frame], Awaitable[None]]:
        async def send(frame: Frame) -> None:
            if p.next is None:
                await self.output(frame)
            elif isinstance(frame, SystemFrame):
                # Jump the queue: handle it in the next stage immediately, concurrently with
                # whatever that stage is doing.
                await p.next._handle_system(frame)
            else:
                await p.next.inbox.put(frame)

        return send

    async def start(self) -> None:
        for p in self.processors:
            await p.start()
        self._tasks = [asyncio.create_task(p._run(), name=p.name) for p in self.processors]
        for p, t in zip(self.processors, self._tasks, strict=True):
            p._worker = t

    async def put(self, frame: Frame) -> None:
        """Inject a frame at the head of the pipeline."""
        head = self.processors[0]
        if isinstance(frame, SystemFrame):
            await head._handle_system(frame)
        else:
            await head.inbox.put(frame)

    async def interrupt(self, session_id: str = "", reason: str = "user") -> Interrupt:
        frame = Interrupt(session_id=session_id, reason=reason, pts=time.monotonic())
        await self.put(frame)
        return frame

    async def wait(self) -> None:
        """Wait until EndOfStream has passed every stage."""
        await asyncio.gather(*self._tasks)

    async def stop(self) -> None:
        for t in self._tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for p in self.processors:
            await p.stop()


async def run_test(
    processors: Processor | list[Processor],
    frames_in: Iterable[Frame],
    *,
    timeout: float = 30.0,
    between: Callable[[Frame], Awaitable[None]] | None = None,
) -> list[Frame]:
    """Test harness: run processors on the given frames (EndOfStream appended) and return
    every frame that left the last stage, EndOfStream included."""
    procs = processors if isinstance(processors, list) else [processors]
    out: list[Frame] = []

    async def collect(frame: Frame) -> None:
        out.append(frame)

    pipe = Pipeline(procs, collect)
    await pipe.start()
    try:
        for f in frames_in:
            await pipe.put(f)
            if between is not None:
                await between(f)
        await pipe.put(EndOfStream())
        await asyncio.wait_for(pipe.wait(), timeout)
    finally:
        await pipe.stop()
    return out
