"""The machine's limits, measured in the same run as the figures judged against them.

- Ed25519: PyNaCl verifications/s on one core, on every core (one process per core, started
  together), and on two threads of one process (does PyNaCl release the GIL? yes: the two
  threads add up, as long as nothing else wants the GIL).
- HTTP: an empty aiohttp handler's requests/s under the same client load as client ingest.
- `http_load()`: the client load itself, keep-alive connections posting bodies in turn.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import aiohttp

from .common import Context, Row, log

__all__ = ["verify_rates", "run", "EmptyServer", "http_load", "LoadResult", "empty_handler_rates"]


def _signatures(n: int = 256) -> list[tuple[bytes, bytes, bytes]]:
    import hashlib

    import nacl.signing

    out = []
    for i in range(n):
        key = nacl.signing.SigningKey(hashlib.sha256(f"limit {i}".encode()).digest())
        message = (b"%d " % i) * 60  # an event's signing input is a few hundred bytes
        out.append((bytes(key.verify_key), key.sign(message).signature, message))
    return out


def _verify_for(seconds: float, start_at: float) -> float:
    """Verifications/s on this process for `seconds`, starting at wall time `start_at`."""
    from nacl.bindings import crypto_sign_open

    items = [(pk, sig + m) for pk, sig, m in _signatures()]
    while time.time() < start_at:
        time.sleep(0.001)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for pk, signed in items:
            crypto_sign_open(signed, pk)
        done += len(items)
    return done / (time.perf_counter() - t0)


def verify_rates(seconds: float, repeats: int = 1) -> dict[str, float]:
    """{"verify_1": one core, "verify_all": every core, "verify_threads": 2 threads}.

    `repeats` > 1: the best of that many tries of each. The machine is shared: another
    tenant's burst only ever lowers a try, and a ceiling read low would flatter every ratio
    judged against it."""
    cores = os.cpu_count() or 1
    ctx = get_context("spawn")
    one = every = two_threads = 0.0
    with ProcessPoolExecutor(cores, mp_context=ctx) as pool:
        list(pool.map(_verify_for, [0.05] * cores, [0] * cores))  # warm the workers up
        for _ in range(repeats):
            one = max(one, pool.submit(_verify_for, seconds, time.time() + 0.2).result())
            start = time.time() + 0.3
            every = max(every, sum(pool.map(_verify_for, [seconds] * cores, [start] * cores)))
    with ThreadPoolExecutor(2) as threads:
        for _ in range(repeats):
            start = time.time() + 0.1
            two_threads = max(two_threads,
                              sum(threads.map(_verify_for, [seconds] * 2, [start] * 2)))
    return {"verify_1": one, "verify_all": every, "verify_threads": two_threads}


# --- HTTP ---------------------------------------------------------------------------------

_EMPTY_APP = r"""
import sys
from aiohttp import web

async def handler(request):
    await request.read()
    return web.json_response({"id": "0" * 64}, status=201)

app = web.Application()
app.router.add_post("/api/v1/events", handler)
app.router.add_get("/healthz", lambda request: web.json_response({"ok": True}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


class EmptyServer:
    """An aiohttp app whose handler reads the body and answers 201: the HTTP ceiling."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EmptyServer:
        self.proc = subprocess.Popen([sys.executable, "-c", _EMPTY_APP, str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{self.port}/healthz", 20)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_http(url: str, timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


class LoadResult:
    def __init__(self, done: int, seconds: float, statuses: dict[int, int]) -> None:
        self.done = done
        self.seconds = seconds
        self.statuses = statuses

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def http_load(url: str, bodies: Sequence[bytes], *, connections: int, seconds: float,
              headers: Callable[[bytes], dict[str, str]] | None = None) -> LoadResult:
    """POST `bodies` in turn over `connections` keep-alive connections, for at most `seconds`."""

    async def main() -> LoadResult:
        statuses: dict[int, int] = {}
        feed: Iterator[bytes] = iter(bodies)
        connector = aiohttp.TCPConnector(limit=connections, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            t0 = time.perf_counter()
            deadline = t0 + seconds

            async def client() -> int:
                done = 0
                for body in feed:
                    extra = headers(body) if headers else {}
                    async with session.post(url, data=body, headers={
                            "Content-Type": "application/json", **extra}) as resp:
                        await resp.read()
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    done += 1
                    if time.perf_counter() > deadline:
                        break
                return done

            done = sum(await asyncio.gather(*(client() for _ in range(connections))))
            return LoadResult(done, time.perf_counter() - t0, statuses)

    return asyncio.run(main())


def empty_handler_rates(connections: list[int], n: int, seconds: float) -> dict[int, float]:
    """Requests/s of the empty handler for each number of connections (one server)."""
    body = b'{"v":1}' + b" " * 400  # about an event's size
    port = free_port()
    rates = {}
    with EmptyServer(port):
        url = f"http://127.0.0.1:{port}/api/v1/events"
        http_load(url, [body] * 100, connections=1, seconds=1)  # warm-up
        for c in connections:
            rates[c] = http_load(url, [body] * n, connections=c, seconds=seconds).rate
    return rates


def run(ctx: Context) -> list[Row]:
    seconds = ctx.seconds(1.0, 0.1)
    log(f"limits: Ed25519 verify rates (best of 3 tries of {seconds:.1f} s each)")
    rates = verify_rates(seconds, repeats=3)
    ctx.limits.update(rates)
    cores = os.cpu_count() or 1
    return [
        Row("limit", "PyNaCl Ed25519 verify, 1 core", rates["verify_1"], "/s"),
        Row("limit", f"PyNaCl Ed25519 verify, {cores} processes", rates["verify_all"], "/s",
            "1 core", rates["verify_1"]),
        Row("limit", "PyNaCl Ed25519 verify, 2 threads of 1 process", rates["verify_threads"],
            "/s", "1 core", rates["verify_1"],
            note="PyNaCl releases the GIL while libsodium verifies"),
    ]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
