"""The state-independent half of ingest for a peer batch, with signatures checked on every core.

`check_lines()` runs, line by line and in the order of PROTOCOL §2.1, exactly the checks that
`ChapterNode.receive` runs first (size, JSON, `sealed` lines told apart, envelope, encodings,
schema, canonical size, federation) on the calling thread, and hands each event's signature
(step 10) to a `SignatureVerifier`: worker processes, one per core but one, and the calling
thread for what they have no time for. Verification of the first
lines runs while later lines are still being parsed, and while the caller admits events it
already has the verdict of.

Each line gives a `PendingEvent` (its `event()` waits for its signature and returns the
verified `Event` or raises `InvalidEvent("bad_signature")`), a `SealedLine`, or the
`ChapterNodeError` that refused it: the same codes and messages as the sequential path.

An event whose id the store already holds is not verified again (`held`): the same id is the
same bytes, and those bytes were verified when they were stored. It is reported `held`, and
the caller answers "duplicate" as before.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import logging
import mmap
import os
import select
import struct
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import ChapterNodeError, InvalidEvent
from .events import (
    Event, UnverifiedEvent, event_id, line_too_large, load_event_json,
    precheck_object,
)
from .verify_worker import CLAIM_SLOTS, FREE, NOT_CHECKED, STOLEN, encode_request
from .times import wall_clock_ms

__all__ = ["ClientGroups", "drive", "SignatureVerifier", "Ticket", "PendingEvent", "SealedLine", "check_lines",
           "shared_verifier"]

T = TypeVar("T")

CHUNK = 64  # signatures per hand-off: large enough to amortise it, small enough to overlap
FIRST_CHUNK = 16  # the first hand-off of a call: the workers have nothing to do until it
MIN_PARALLEL = 32  # smaller batches are checked on the calling thread: a hand-off costs more
WORKER_TIMEOUT_S = 30.0  # a worker silent this long is killed; its chunks are checked here


class Ticket:
    """The verdicts of one submitted chunk, in order; `result()` waits for them."""

    __slots__ = ("items", "number", "size", "_verdicts", "_worker", "_verifier")

    def __init__(self, items: list[UnverifiedEvent], verifier: SignatureVerifier | None) -> None:
        self.items = items
        self.number = 0  # set when sent: its claim slot is `number % CLAIM_SLOTS` on its worker
        self.size = 0  # bytes of its request frame, once sent
        self._verifier = verifier
        self._worker: _Worker | None = None
        self._verdicts: list[bool] | None = None

    def result(self) -> list[bool]:
        if self._verdicts is None:
            if self._verifier is not None:
                self._verifier._wait_for(self)
            if self._verdicts is None:  # kept for us, no worker, or it died: check them here
                self.check_here()
        return self._verdicts  # type: ignore[return-value]

    def check_here(self) -> None:
        self._verdicts = [item.signature_ok() for item in self.items]


class _Worker:
    """One `node.verify_worker` process, the tickets it has not answered yet, and the claims
    file both read to tell which of them the calling thread has taken back. Used under the
    verifier's lock: one thread at a time talks to its workers."""

    def __init__(self) -> None:
        shared = _claims_map()
        self.claims = shared[0] if shared is not None else None
        argv = [sys.executable, str(Path(__file__).with_name("verify_worker.py"))]
        fds = (shared[1],) if shared is not None else ()
        argv += [str(fd) for fd in fds]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         bufsize=0, close_fds=True, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)  # the map stays; the worker has its own descriptor
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.capacity = _pipe_capacity(self.wfd)
        self.waiting: deque[Ticket] = deque()
        self.queued = 0  # signatures in `waiting`
        self.queued_bytes = 0  # their frames' bytes: at most what the pipe holds
        self.buffer = bytearray()
        self.alive = True
        self._number = 0

    def has_room(self, ticket: Ticket, backlog: int | None) -> bool:
        """Whether `ticket` can be sent without the write waiting for the worker."""
        if not self.alive or len(self.waiting) >= CLAIM_SLOTS // 2:
            return False
        if backlog is not None and self.queued >= backlog:
            return False
        return self.queued_bytes == 0 or self.queued_bytes + _frame_size(ticket) <= self.capacity

    def send(self, ticket: Ticket) -> None:
        self._number = (self._number + 1) % (1 << 32)  # a u32 in the frame; CLAIM_SLOTS divides it
        ticket.number = self._number
        if self.claims is not None:
            self.claims[ticket.number % CLAIM_SLOTS] = FREE
        data = encode_request(ticket.number,
                              [(i.author_key, i.signature, i.message) for i in ticket.items])
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.wfd, view):]
        except OSError:
            self.fail()
            return
        ticket.size = len(data)
        self.waiting.append(ticket)
        self.queued += len(ticket.items)
        self.queued_bytes += len(data)

    def stealable(self) -> Ticket | None:
        """The newest ticket the worker has not started (it works from the oldest), if any."""
        if self.claims is None:
            return None
        for ticket in reversed(self.waiting):
            if ticket._verdicts is not None:
                continue  # taken back already; its reply is still to come
            return ticket if self.claims[ticket.number % CLAIM_SLOTS] == FREE else None
        return None

    def steal(self, ticket: Ticket) -> None:
        """Check `ticket` here; the worker skips it, unless it started it in this instant."""
        assert self.claims is not None
        self.claims[ticket.number % CLAIM_SLOTS] = STOLEN
        ticket.check_here()

    def poll(self) -> None:
        """Take in whatever replies have arrived, without waiting."""
        while self.alive and self.waiting and select.select([self.rfd], [], [], 0)[0]:
            if not self._read():
                return

    def wait_reply(self) -> None:
        """Wait for the next reply; a worker silent for `WORKER_TIMEOUT_S` is killed."""
        if not select.select([self.rfd], [], [], WORKER_TIMEOUT_S)[0]:
            self.proc.kill()  # hung: give up on it
            self.fail()
            return
        self._read()

    def _read(self) -> bool:
        try:
            chunk = os.read(self.rfd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.fail()
            return False
        self.buffer += chunk
        while len(self.buffer) >= 4:
            (count,) = struct.unpack_from("<I", self.buffer)
            if len(self.buffer) < 4 + count:
                break
            verdicts = self.buffer[4:4 + count]
            del self.buffer[:4 + count]
            ticket = self.waiting.popleft()
            skipped = NOT_CHECKED in verdicts
            if count != len(ticket.items) or (skipped and ticket._verdicts is None):
                # out of step with us (or it skipped what we did not take back): trust none
                # of its answers
                self.waiting.appendleft(ticket)
                self.proc.kill()
                self.fail()
                return False
            self.queued -= count
            self.queued_bytes -= ticket.size
            if ticket._verdicts is None:  # else checked here, taken back from the worker
                ticket._verdicts = [b == 1 for b in verdicts]
        return True

    def fail(self) -> None:
        """The process is gone: its tickets will be checked by whoever waits for them."""
        self.alive = False
        for ticket in self.waiting:
            ticket._worker = None
        self.waiting.clear()
        self.queued = self.queued_bytes = 0
        self.close()

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.claims is not None:
            with contextlib.suppress(BufferError, ValueError):
                self.claims.close()


def _claims_map() -> tuple[mmap.mmap, int] | None:
    """A claims file shared with a worker (an unlinked temporary file, mapped), and a
    descriptor to hand it; None where that fails: the worker then checks all it is sent."""
    try:
        with tempfile.TemporaryFile() as f:
            f.truncate(CLAIM_SLOTS)
            mapped = mmap.mmap(f.fileno(), CLAIM_SLOTS)
            return mapped, os.dup(f.fileno())
    except (OSError, ValueError):
        return None


def _pipe_capacity(fd: int) -> int:
    with contextlib.suppress(OSError, AttributeError):  # Linux: room for a batch or two
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    try:
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    except (OSError, AttributeError):
        return 1 << 16  # POSIX leaves it open; 64 KiB is the usual size


def _frame_size(ticket: Ticket) -> int:
    return 8 + sum(100 + len(i.message) for i in ticket.items)


class SignatureVerifier:
    """Verifies chunks of signatures in `workers` worker processes and on the calling thread.

    The default is one worker per core but one: the calling thread is the last verifier.
    Every chunk is sent to a worker at once, as long as its pipe has room; a worker checks
    its chunks oldest first. When the calling thread needs a verdict a worker has not given
    yet, it takes back the newest chunk that worker has not started (a claims byte per chunk,
    shared with the worker) and checks it itself, until the chunk it waits for is answered
    or is the newest left: the two meet in the middle, so neither waits for the other longer
    than one chunk. Chunks a pipe has no room for are kept, and go to the first worker with
    room (`rebalance`) or are checked here when asked for. So the caller, which parses,
    admits and stores, verifies what it has time for, and two cores are shared by two busy
    processes rather than three (bench/notes.py). Processes, not threads: PyNaCl does
    release the GIL while libsodium verifies, but a thread coming back from C needs the GIL
    again, and the thread parsing the next lines holds it for up to the switch interval
    (5 ms); measured, a thread pool overlaps almost nothing with parsing. With `workers=0`
    (or one core) every signature is checked on the calling thread, when its verdict is
    asked for. `backlog`: at most that many signatures queued on a worker (None: as many as
    its pipe holds).
    """

    def __init__(self, workers: int | None = None, *, backlog: int | None = None) -> None:
        cores = os.cpu_count() or 1
        self.workers = (cores - 1 if cores > 1 else 0) if workers is None else workers
        self.backlog = backlog
        self._pool: list[_Worker] = []
        self._kept: deque[Ticket] = deque()  # submitted, no worker had room yet
        self._lock = threading.RLock()
        self._pid = os.getpid()

    def submit(self, items: Sequence[UnverifiedEvent]) -> Ticket:
        with self._lock:
            worker = self._pick()
            ticket = Ticket(list(items), self)
            if worker is None:
                return ticket  # checked by the caller
            if not self._kept and worker.has_room(ticket, self.backlog):
                self._send(worker, ticket)
            else:
                self._kept.append(ticket)
                self._give_kept()
            return ticket

    def rebalance(self) -> None:
        """Take in the workers' replies, and hand kept chunks to those with room."""
        with self._lock:
            for worker in self._pool:
                worker.poll()
            self._give_kept()

    def _give_kept(self) -> None:
        for worker in self._pool:
            while self._kept and worker.has_room(self._kept[0], self.backlog):
                self._send(worker, self._kept.popleft())

    def _send(self, worker: _Worker, ticket: Ticket) -> None:
        ticket._worker = worker
        worker.send(ticket)
        if not worker.alive:
            ticket._worker = None

    def _wait_for(self, ticket: Ticket) -> None:
        """Until `ticket` has its verdicts or is the caller's to check: check the newest
        chunk a worker has not started meanwhile, else wait for a reply."""
        with self._lock:
            if ticket in self._kept:  # the caller checks it (newer kept ones may go out)
                self._kept.remove(ticket)
                self.rebalance()
                return
            while ticket._verdicts is None:
                worker = ticket._worker
                if worker is None or not worker.alive or ticket not in worker.waiting:
                    return
                worker.poll()
                if ticket._verdicts is not None:
                    return
                victim = max(((w, t) for w in self._pool if (t := w.stealable()) is not None),
                             key=lambda wt: wt[0].queued, default=None)
                if victim is None:
                    worker.wait_reply()
                else:
                    victim[0].steal(victim[1])

    def _pick(self) -> _Worker | None:
        if self.workers <= 0 or os.name != "posix":
            return None
        if os.getpid() != self._pid:
            # A forked child: the pipes it inherited lead to its parent's workers, whose
            # replies the parent reads too; sharing them would pair verdicts with the wrong
            # signatures. Leave them to the parent and start our own.
            self._pool, self._kept, self._pid = [], deque(), os.getpid()
        self._pool = [w for w in self._pool if w.alive]
        while len(self._pool) < self.workers:
            try:
                self._pool.append(_Worker())
            except OSError:
                return None
        for worker in self._pool:
            worker.poll()
        worker = min(self._pool, key=lambda w: w.queued)
        return worker

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, []
        for worker in pool:
            worker.close()


_SHARED: SignatureVerifier | None = None
_SHARED_LOCK = threading.Lock()


def shared_verifier() -> SignatureVerifier:
    """One verifier per process; its workers start on first use and stop at exit."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = SignatureVerifier()
            atexit.register(_SHARED.close)
        return _SHARED


@dataclass(frozen=True, slots=True)
class SealedLine:
    """A `{"sealed": {...}}` line of a batch; `value` is what `accept_sealed` takes."""

    value: Any


@dataclass(slots=True)
class PendingEvent:
    """An event that passed steps 1-9; its signature is being (or was) checked elsewhere."""

    unverified: UnverifiedEvent
    id: str
    held: bool = False
    _ticket: Ticket | None = field(default=None, repr=False)
    _slot: int = 0
    _ok: bool | None = field(default=None, repr=False)

    @property
    def order_key(self) -> tuple[str, str]:
        """PROTOCOL §5 order: (`created_at`, id), as `Event.order_key`."""
        return (self.unverified.obj["created_at"], self.id)

    def verdict(self) -> bool:
        """Whether the signature verifies (waits for it); held bytes were verified before."""
        if self.held:
            return True
        if self._ticket is not None:
            return self._ticket.result()[self._slot]
        if self._ok is None:
            self._ok = self.unverified.signature_ok()
        return self._ok

    def event(self) -> Event:
        """The verified `Event` (waits for the verdict), or `InvalidEvent("bad_signature")`."""
        return self.unverified.verified(signature_ok=self.verdict(), id=self.id)

    def assumed(self) -> Event:
        """The `Event` as if its signature verified, without waiting for the verdict.

        Only for admission that stores nothing until `verdict()` says it holds
        (`ChapterNode._ingest_steps`): admission reads no signature, so its answer is the
        same, and an event whose verdict fails is never committed."""
        return self.unverified.verified(signature_ok=True, id=self.id)


Checked = PendingEvent | SealedLine | ChapterNodeError


def check_lines(lines: Iterable[bytes], *, federation: str,
                verifier: SignatureVerifier | None = None,
                held: Callable[[list[str]], set[str]] | None = None) -> list[Checked]:
    """Steps 1-9 of §2.1 for each line now, step 10 on the verifier's threads.

    `verifier`: None checks signatures on the calling thread, when `event()` is called.
    `held`: given a list of ids, the subset the store holds (e.g. `Store.known`); those are
    marked `held` and not verified again.
    """
    if isinstance(lines, Sequence) and len(lines) < MIN_PARALLEL:
        verifier = None
    out: list[Checked] = []
    chunk: list[PendingEvent] = []
    limit = FIRST_CHUNK

    def flush() -> None:
        nonlocal limit
        limit = CHUNK
        if not chunk:
            return
        known = held([p.id for p in chunk]) if held is not None else set()
        todo = []
        for pending in chunk:
            if pending.id in known:
                pending.held = True
            else:
                todo.append(pending)
        if verifier is not None and todo:
            ticket = verifier.submit([p.unverified for p in todo])
            for slot, pending in enumerate(todo):
                pending._ticket, pending._slot = ticket, slot
        chunk.clear()

    for line in lines:
        try:
            if line_too_large(line):
                raise InvalidEvent("line over the size limit", code="too_large")
            obj, text = load_event_json(line)
            if isinstance(obj, dict) and len(obj) == 1 and "sealed" in obj:
                out.append(SealedLine(obj["sealed"]))
                continue
            unverified = precheck_object(obj, federation=federation, canonical_text=text)
        except ChapterNodeError as e:
            out.append(e)
            continue
        pending = PendingEvent(unverified, event_id(unverified.signed_bytes))
        out.append(pending)
        chunk.append(pending)
        if len(chunk) >= limit:
            flush()
    flush()
    return out


async def drive(steps: Generator[None, None, T]) -> T:
    """Run an ingest generator (`receive_steps`, `admit_clients_steps`) on the event loop,
    letting other requests in at each of its pauses; return what it returns."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(0)


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
