"""Campaign 6: resource exhaustion against a running node.

While each attack runs, a prober asks `GET /api/v1/status` every 100 ms on a fresh connection;
the bar is that every probe is answered within 1 s, and that the node's memory stays bounded
(its peak RSS is printed). Attacks:

- 1,000 slow connections: each sends half a request, then one byte a second;
- bodies declared huge (`Content-Length: 2^40`) on every POST route, and a chunked body that
  never ends;
- a peer batch of 100,000 tiny lines, and a full batch of 10,000 valid events;
- JSON nested 262,144 levels deep, to the client and the peer routes;
- Negentropy sessions that never end, both ways: a peer sending 1 MiB messages back to back
  (we respond), and a peer that answers every round of ours with a new 1,500-id list and a
  range still to split (we initiate, with Rome's URL pointing at the hostile server).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from node.federation.negentropy import Negentropy, VectorStorage, encode_varint
from node.protocol.events import sign_event
from node.protocol.times import format_ms

from .live import CONNECTORS, federation, peer_request, request, rss_mb, status_time
from .report import Failure, Result

__all__ = ["Probe", "probing", "scenarios", "run", "full_batch_lines", "send_batch", "open_slow",
           "dribble"]

BAR_S = 1.0


@dataclass
class Probe:
    port: int
    worst: float = 0.0
    answered: int = 0
    late: int = 0
    samples: list[float] = field(default_factory=list)


@contextmanager
def probing(port: int, interval: float = 0.1) -> Iterator[Probe]:
    probe = Probe(port)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            t = status_time(port, timeout=5.0)
            probe.samples.append(t)
            probe.worst = max(probe.worst, t)
            probe.answered += t != float("inf")
            probe.late += t > BAR_S
            stop.wait(interval)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        stop.set()
        thread.join(10)


@dataclass
class Outcome:
    name: str
    tried: str
    count: int
    worst_status_s: float
    peak_rss_mb: float
    problems: list[str]
    bug: str | None = None


# --- attacks ----------------------------------------------------------------------------------


def slow_connections(port: int, n: int, seconds: float) -> list[str]:
    """`n` connections that never finish their request; returns problems."""
    socks, problems = open_slow(port, n)
    return problems + dribble(socks, seconds)


def open_slow(port: int, n: int) -> tuple[list[socket.socket], list[str]]:
    """Open `n` connections as fast as possible, each sending half a request."""
    socks = []
    problems = []
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError as e:
            problems.append(f"connection {i} refused: {e}")
            continue
        s.setblocking(False)
        socks.append(s)
    head = (b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\nX-Slow: ")
    sent = 0
    for s in socks:
        try:
            s.send(head if sent % 2 else head + b"x\r\n\r\n{")
            sent += 1
        except OSError:
            pass
    if sent < n:
        problems.append(f"only {sent}/{n} slow connections got their first bytes out")
    return socks, problems


def dribble(socks: list[socket.socket], seconds: float) -> list[str]:
    """One more byte a second on every connection for `seconds`, then close them."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for s in socks:
            try:
                s.send(b"a")
            except OSError:
                pass
        time.sleep(1)
    for s in socks:
        s.close()
    return []


def huge_declared(port: int) -> tuple[int, list[str]]:
    problems = []
    routes = ["/api/v1/events", "/federation/v1/events", "/federation/v1/negentropy",
              "/federation/v1/fetch"]
    count = 0
    for path in routes:
        for declared in (2**40, 2**63 - 1, 17 * 1024 * 1024):
            start = time.monotonic()
            try:
                reply = request(port, "POST", path, b"",
                                [("Content-Length", str(declared)),
                                 ("Content-Type", "application/json")], timeout=5)
                status = reply.status
            except OSError as e:
                status = -1
                problems.append(f"{path} declared {declared}: {type(e).__name__}")
            count += 1
            took = time.monotonic() - start
            if status != 413 and status != -1:
                problems.append(f"{path} declared {declared}: HTTP {status}")
            if took > BAR_S:
                problems.append(f"{path} declared {declared}: answered in {took:.1f} s")
    # a chunked body that never ends: cut off with 413 once over the route's limit
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Type: application/json\r\n\r\n")
    chunk = b"[" * 65536
    answered = b""
    try:
        for _ in range(64):  # 4 MiB, far over the 256 KiB limit
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    except OSError:
        pass
    try:
        answered = s.recv(200)
    except OSError:
        pass
    s.close()
    count += 1
    if b" 413 " not in answered.split(b"\r\n", 1)[0] + b" ":
        problems.append(f"endless chunked body: {answered[:60]!r}")
    return count, problems


def tiny_batch(fed, lines: int) -> tuple[int, float]:
    body = b"{}\n" * lines
    start = time.monotonic()
    reply = peer_request(fed, "rome", "paris", "POST", "/federation/v1/events", body)
    return reply.status, time.monotonic() - start


def full_batch(fed, n: int = 10_000) -> tuple[int, float]:
    return send_batch(fed, full_batch_lines(fed, n))


def full_batch_lines(fed, n: int = 10_000) -> list[bytes]:
    """A proposal and `n - 1` endorsements of it, each a distinct valid event."""
    now = int(time.time() * 1000)
    proposal = sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                          created_at=format_ms(now - 200_000),
                          body={"title": "Target", "text": "", "kind": "action"},
                          signing_key=CONNECTORS[0].key)
    lines = [proposal.canonical] + [
        sign_event(federation=fed.charter.id, type="endorse", chapter="rome",
                   created_at=format_ms(now - 190_000 + i), body={"proposal": proposal.id},
                   signing_key=CONNECTORS[2].key).canonical for i in range(n - 1)]
    return lines


def send_batch(fed, lines: list[bytes]) -> tuple[int, float]:
    start = time.monotonic()
    reply = peer_request(fed, "rome", "paris", "POST", "/federation/v1/events", b"\n".join(lines))
    return reply.status, time.monotonic() - start


def deep_nesting(fed, times: int) -> list[str]:
    problems = []
    body = b"[" * 262_144
    for i in range(times):
        reply = request(fed.nodes["paris"].port, "POST", "/api/v1/events", body)
        if reply.status != 400:
            problems.append(f"client route: HTTP {reply.status} {reply.code}")
    for i in range(max(1, times // 4)):
        reply = peer_request(fed, "rome", "paris", "POST", "/federation/v1/events",
                             (b"[" * 100_000 + b"\n") * 10)
        if reply.status != 200 or any(r["status"] != "refused" for r in reply.json()["results"]):
            problems.append(f"peer route: HTTP {reply.status}")
    return problems


def negentropy_flood(fed, messages: int) -> list[str]:
    """A peer that keeps initiating with a large fake set: 1 MiB messages back to back."""
    problems = []
    items = VectorStorage((1_767_225_600 + i, secrets.token_bytes(32)) for i in range(60_000))
    items.seal()
    msg = Negentropy(items, 0).initiate()
    msg = msg[:1024 * 1024]
    for i in range(messages):
        reply = peer_request(fed, "rome", "paris", "POST", "/federation/v1/negentropy", msg,
                             content_type="application/octet-stream")
        if reply.status not in (200, 400):
            problems.append(f"HTTP {reply.status}")
    return problems


def _hostile_reply(ids: int) -> bytes:
    out = bytearray([0x61])
    out += encode_varint(1_800_000_000 + 1) + b"\x00\x02" + encode_varint(ids)
    out += secrets.token_bytes(32 * ids)
    out += b"\x00\x00\x01" + secrets.token_bytes(16)  # infinity: a fingerprint to split
    return bytes(out)


@contextmanager
def hostile_responder(port: int, ids: int = 1500) -> Iterator[list[int]]:
    """An HTTP server on `port` that plays a peer whose reconciliation never ends."""
    from aiohttp import web

    rounds = [0]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: list = []

    async def neg(request: web.Request) -> web.Response:
        await request.read()
        rounds[0] += 1
        return web.Response(body=_hostile_reply(ids), content_type="application/octet-stream")

    async def events(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"results": []})

    async def changes(request: web.Request) -> web.Response:
        return web.Response(body=b"", headers={"X-Feed-Next": "0", "X-Feed-Head": "0",
                                               "X-Feed-Epoch": "hostile"})

    async def fetch(request: web.Request) -> web.Response:
        await request.read()  # it never has the events it claims: the session goes on
        return web.Response(body=b"", content_type="application/x-ndjson")

    def serve() -> None:
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/federation/v1/negentropy", neg)
        app.router.add_post("/federation/v1/events", events)
        app.router.add_get("/federation/v1/changes", changes)
        app.router.add_post("/federation/v1/fetch", fetch)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        runner_box.append(runner)
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield rounds
    finally:
        async def down() -> None:
            await runner_box[0].cleanup()

        asyncio.run_coroutine_threadsafe(down(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def act_set_flood(fed, n: int) -> tuple[Probe, float]:
    """One Connector endorses one (pending) action proposal `n` times, each endorsement a
    distinct signed event (a new timestamp): (status probe for 10 s after, seconds for the
    proposal's report)."""
    now = int(time.time() * 1000)
    proposal = sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                          created_at=format_ms(now), body={"title": "Pending", "text": "",
                                                           "kind": "action"},
                          signing_key=CONNECTORS[0].key)
    request(fed.nodes["paris"].port, "POST", "/api/v1/events", proposal.canonical)
    for start in range(0, n, 10_000):
        lines = [sign_event(federation=fed.charter.id, type="endorse", chapter="rome",
                            created_at=format_ms(now + 1 + i), body={"proposal": proposal.id},
                            signing_key=CONNECTORS[2].key).canonical
                 for i in range(start, min(n, start + 10_000))]
        send_batch(fed, lines)
    with probing(fed.nodes["paris"].port) as probe:
        time.sleep(10)
    t0 = time.monotonic()
    request(fed.nodes["paris"].port, "GET", f"/api/v1/proposals/{proposal.id}", timeout=120)
    return probe, time.monotonic() - t0


# --- the campaign ---------------------------------------------------------------------------


def scenarios(scale: float = 1.0, progress: Callable[[str], None] = print) -> list[Outcome]:
    n_slow = max(100, int(1000 * scale))
    out: list[Outcome] = []
    with federation(("paris", "rome"), start=("paris",)) as fed:
        port = fed.nodes["paris"].port
        pid = fed.nodes["paris"].process.pid

        def record(name: str, tried: str, count: int, probe: Probe, problems: list[str],
                   bug: str | None = None) -> None:
            if probe.late or probe.answered < len(probe.samples):
                problems = [*problems, f"status answered late {probe.late}×, worst "
                                       f"{probe.worst:.2f} s"]
            out.append(Outcome(name, tried, count, probe.worst, rss_mb(pid)[1], problems, bug))
            progress(f"exhaustion {name}: worst status {probe.worst:.3f} s, peak RSS "
                     f"{rss_mb(pid)[1]:.0f} MiB, problems {problems[:2]}")

        with probing(port) as probe:
            socks, problems = open_slow(port, n_slow)
        burst = probe
        with probing(port) as probe:
            problems += dribble(socks, seconds=max(3.0, 10 * scale))
        record("slow connections", f"{n_slow:,} connections sending half a request, then a "
               f"byte a second (status while they were opened: worst {burst.worst:.2f} s)",
               n_slow, probe, problems)
        if burst.late:
            out.append(Outcome("connection burst", f"{n_slow:,} connections opened at once",
                               n_slow, burst.worst, rss_mb(pid)[1],
                               [f"status answered late {burst.late}× while the connections "
                                f"were opened, worst {burst.worst:.2f} s"], "listen-backlog"))
        with probing(port) as probe:
            count, problems = huge_declared(port)
        record("huge bodies", "Content-Length 2^40, 2^63−1 and 17 MiB on 4 POST routes; an "
               "endless chunked body", count, probe, problems)
        with probing(port) as probe:
            status, took = tiny_batch(fed, 100_000)
        record("100,000-line batch", "a peer batch of 100,000 tiny lines", 100_000, probe,
               [] if status == 400 else [f"HTTP {status}"])
        with probing(port) as probe:
            status, took = full_batch(fed, 10_000)
        record("10,000-event batch", f"a peer batch of 10,000 valid events (took {took:.2f} s)",
               10_000, probe, [] if status == 200 else [f"HTTP {status}"],
               bug="batch-blocks-loop")
        with probing(port) as probe:
            problems = deep_nesting(fed, max(5, int(40 * scale)))
        record("deep nesting", "262,144-deep JSON to the client route, 100,000-deep lines to "
               "the peer route", max(5, int(40 * scale)) + max(1, int(10 * scale)), probe,
               problems)
        with probing(port) as probe:
            problems = negentropy_flood(fed, max(10, int(100 * scale)))
        record("Negentropy flood (we respond)", "1 MiB Negentropy messages back to back from "
               "a peer", max(10, int(100 * scale)), probe, problems)
        n_acts = max(10_000, int(150_000 * scale))
        probe, report_s = act_set_flood(fed, n_acts)
        record("one proposal's huge act set", f"one Connector's {n_acts:,} endorsements of one "
               f"pending action proposal (its report then took {report_s:.1f} s)", n_acts,
               probe, [f"GET /api/v1/proposals/<id> took {report_s:.1f} s"] if report_s > BAR_S
               else [], bug="act-set-amplification")
    # we initiate, against a peer whose reconciliation never ends
    seconds = max(8.0, 30 * scale)
    with federation(("paris", "rome"), start=(), anti_entropy=1.0) as fed:
        with hostile_responder(fed.nodes["rome"].port) as rounds:
            fed.start("paris")
            pid = fed.nodes["paris"].process.pid
            rss_start = rss_mb(pid)[0]
            with probing(fed.nodes["paris"].port) as probe:
                time.sleep(seconds)
            current, peak = rss_mb(pid)
        problems = []
        growth = current - rss_start
        if growth > 200:
            problems.append(f"RSS grew {growth:.0f} MiB in {seconds:.0f} s "
                            f"({rounds[0]:,} rounds) and kept growing")
        out.append(Outcome("Negentropy session that never ends (we initiate)",
                           f"a peer answering each of our rounds with 1,500 new ids and a range "
                           f"to split, for {seconds:.0f} s", rounds[0], probe.worst, peak,
                           problems + ([f"status late {probe.late}×"] if probe.late else []),
                           bug="negentropy-session-unbounded"))
        progress(f"exhaustion hostile negentropy: {rounds[0]} rounds, RSS {rss_start:.0f} → "
                 f"{current:.0f} MiB")
    return out


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    started = time.monotonic()
    outcomes = scenarios(scale, progress)
    failures = []
    for o in outcomes:
        if o.problems:
            failures.append(Failure(o.bug or f"{o.name}: {o.problems[0]}", 1,
                                    [f"{o.name}: {'; '.join(o.problems)}"]))
    held = "; ".join(f"{o.name}: worst status {o.worst_status_s * 1000:.0f} ms, peak RSS "
                     f"{o.peak_rss_mb:.0f} MiB" + ("" if not o.problems else " ✗")
                     for o in outcomes)
    return Result(
        number=6, name="resource exhaustion",
        tried="; ".join(f"{o.tried}" for o in outcomes),
        count=sum(o.count for o in outcomes),
        held=held,
        failures=failures,
        seconds=time.monotonic() - started,
    )
