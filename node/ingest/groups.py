"""Driving ingest on the event loop: `drive` runs a pausing ingest generator, letting other
requests in at each pause; `ClientGroups` gathers client events into group commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from ..protocol.times import wall_clock_ms

__all__ = ["ClientGroups", "drive", "drive_now"]

T = TypeVar("T")


def drive_now(steps: Generator[None, None, T]) -> T:
    """Run an ingest generator to its end without pausing (a caller with no event loop)."""
    while True:
        done, value = _advance(steps)
        if done:
            return value


async def drive(steps: Generator[None, None, T]) -> T:
    """Run an ingest generator (`receive_steps`, `admit_clients_steps`) on the event loop,
    letting other requests in at each of its pauses; return what it returns."""
    while True:
        done, value = _advance(steps)
        if done:
            return value
        await asyncio.sleep(0)


def _advance(steps: Generator[None, None, T]) -> tuple[bool, T | None]:
    """One step of an ingest generator: (True, its value) once it has returned."""
    try:
        next(steps)
    except StopIteration as finished:
        return True, finished.value
    return False, None


class ClientGroups:
    """Group commit for client events (`POST /api/v1/events`): one writer, many requests.

    Policy: each request queues its body and waits. The writer, whenever it is free, takes
    everything queued (at most `max_group`) after letting the requests the event loop has
    already read queue theirs (passes of the loop while each brings more; no timer: 16
    clients make groups of ~10 instead of ~8), and runs it through
    `ChapterNode.admit_clients_steps` as one group: each event judged alone with the client
    rules, the group's causal order kept, the admitted ones stored in one transaction (a
    registry-relevant event is committed at once, so the events after it see it). A client
    alone is served at once; under load, the events that arrive while one group is written
    form the next. Every request is answered only after the transaction holding its event
    committed: never an acknowledgement before the event is durable.

    A group that fails as a whole (not a refusal: an error of the node, e.g. the disk) is
    retried event by event, so one poison body costs only its own request.
    """

    def __init__(self, node: Any, *, max_group: int = 256,
                 clock: Callable[[], int] | None = None) -> None:
        self.node = node
        self.max_group = max_group
        # the node's clock (injectable for simulations), else the wall clock
        self._clock = clock or getattr(node, "clock", None) or wall_clock_ms
        self._queue: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.groups = 0  # groups written, and events in them (metrics, tests)
        self.events = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._writer())

    async def stop(self) -> None:
        """Answer what is queued, then stop the writer."""
        if self._task is None:
            return
        while self._queue and not self._task.done():
            self._wake.set()
            await asyncio.sleep(0.001)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self.groups:
            logging.getLogger("chapter_node").info(
                "client events: %d in %d groups (%.1f per group)", self.events, self.groups,
                self.events / self.groups)

    async def submit(self, raw: bytes) -> Any:
        """The `Outcome` of one client body, once it is durable (or refused)."""
        if self._task is None or self._task.done():
            return self.node.admit_clients([raw], now_ms=self._clock())[0]
        future = asyncio.get_running_loop().create_future()
        self._queue.append((raw, future))
        self._wake.set()
        return await future

    async def _writer(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            # requests the loop has already read join this group: one pass of the loop at a
            # time, while a pass brings more (no timer)
            while len(self._queue) < self.max_group:
                queued = len(self._queue)
                await asyncio.sleep(0)
                if len(self._queue) == queued:
                    break
            group = self._queue[:self.max_group]
            del self._queue[:self.max_group]
            await self._write(group, alone_on_error=len(group) > 1)

    async def _write(self, group: list[tuple[bytes, asyncio.Future[Any]]], *,
                     alone_on_error: bool) -> None:
        try:
            outcomes = await drive(self.node.admit_clients_steps([raw for raw, _ in group],
                                                                 now_ms=self._clock()))
        except Exception as e:  # noqa: BLE001 - not a refusal: the node failed on this group
            if alone_on_error:
                for item in group:
                    await self._write([item], alone_on_error=False)
                return
            for _, future in group:
                if not future.done():
                    future.set_exception(e)
            return
        self.groups += 1
        self.events += len(group)
        for (_, future), outcome in zip(group, outcomes):
            if not future.done():  # a client that went away has no one to tell
                future.set_result(outcome)
