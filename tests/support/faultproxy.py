"""A small fault-injecting TCP proxy for multi-node tests on 127.0.0.1.

Kernel traffic shaping is not available here, so partitions are made in user space: each
node's charter URL points at a proxy in front of it, and a test flips the proxy's mode:
`pass`, `refuse` (close new and current connections), `blackhole` (accept, never answer) or
`delay` (hold each chunk for `delay_s`). `block_from` cuts only connections whose first
request is signed by one of the given node keys (RFC 9421 `keyid`), which is how a test
partitions the federation both ways with one proxy per node: every connection a node opens
to a peer carries its own signature. It runs in its own thread and event loop so tests that
drive real node processes can control it from plain code.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import threading

__all__ = ["FaultProxy", "free_port"]

_KEYID = re.compile(rb'keyid="([A-Za-z0-9_-]{43})"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FaultProxy:
    def __init__(self, target_port: int, listen_port: int | None = None) -> None:
        self.target_port = target_port
        self.port = listen_port or free_port()
        self.mode = "pass"
        self.delay_s = 0.0
        self.block_from: frozenset[str] = frozenset()
        self.drop = 0.0  # share of new connections cut at once (message loss)
        self._rng = random.Random(target_port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5)

    def stop(self) -> None:
        """Close the server, cancel every connection's task, then stop the loop."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self.mode = "refuse"  # pipes stuck in a blackhole wake up and end
        self._cut_all()
        tasks = [t for t in asyncio.all_tasks(self._loop) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def set(self, mode: str, delay_s: float = 0.0) -> None:
        assert mode in ("pass", "refuse", "blackhole", "delay")
        self.mode, self.delay_s = mode, delay_s
        if mode == "refuse":
            self._loop.call_soon_threadsafe(self._cut_all)

    def _cut_all(self) -> None:
        for w in list(self._writers):
            w.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.close()
            return
        self._writers.add(writer)
        try:
            first = await reader.read(65536)
        except OSError:
            first = b""
        found = _KEYID.search(first)
        if not first or (found and found.group(1).decode() in self.block_from) \
                or (self.drop and self._rng.random() < self.drop):
            writer.close()
            self._writers.discard(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        up_writer.write(first)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)
        self._writers.discard(writer)
        self._writers.discard(up_writer)

    def partition(self, keyids: set[str] | frozenset[str]) -> None:
        """Refuse connections from these node keys (and cut the open ones)."""
        self.block_from = frozenset(keyids)
        self._loop.call_soon_threadsafe(self._cut_all)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                while self.mode == "blackhole":
                    await asyncio.sleep(0.05)
                if self.mode == "refuse":
                    break
                if self.mode == "delay" and self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
