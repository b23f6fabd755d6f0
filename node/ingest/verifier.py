"""Ed25519 signatures checked on every core: worker processes (`worker.py`, one per core but
one) fed through pipes and a shared claims map, and the calling thread for what they have no
time for. A `Ticket` is one hand-off; its `result()` is one verdict per event, in order.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import mmap
import os
import select
import struct
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from ..protocol.events import UnverifiedEvent
from .worker import CLAIM_SLOTS, FREE, NOT_CHECKED, STOLEN, encode_request

__all__ = ["SignatureVerifier", "Ticket", "shared_verifier", "CHUNK", "FIRST_CHUNK",
           "MIN_PARALLEL"]

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
    """One `node.ingest.worker` process, the tickets it has not answered yet, and the claims
    file both read to tell which of them the calling thread has taken back. Used under the
    verifier's lock: one thread at a time talks to its workers."""

    def __init__(self) -> None:
        shared = _claims_map()
        self.claims = shared[0] if shared is not None else None
        argv = [sys.executable, str(Path(__file__).with_name("worker.py"))]
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
