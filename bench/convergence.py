"""Convergence: real nodes on loopback, events injected at random nodes, time to agree.

`node.dev.devcluster` starts N chapter nodes (`python -m node run`, pull every second,
anti-entropy every 10 s). The issue's setup first: each node peered with 3 chapters at random
(the `peers = 3` setting, `CHAPTER_NODE_PEERS=3`: drawn from its node key, so the links form a
random 3-out graph; an event reaches the others by relaying, several hops). Then, beside it,
the full mesh (`peers = all`, the default: every node pushes to every other, one hop) unless
`full_mesh=False`. Injected: action proposals (they name no other event, so any node takes
them at once), each signed by a Connector and posted by a client to a random node, 8 clients
at a time. Measured: from the last injection answered to every node holding every injected
event (read from each node's store, read-only), bounded.

On 2 cores, 20 Python node processes are heavy; the figure is what this machine does with all
of them on it.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp

from .common import Context, Row, log

__all__ = ["run"]


def _held(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        return conn.execute("select count(*) from events where type = 'proposal'").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


async def _inject(targets: list[tuple[str, bytes]], clients: int) -> float:
    queue = list(targets)

    async def client(session: aiohttp.ClientSession) -> None:
        while queue:
            url, body = queue.pop()
            async with session.post(url + "/api/v1/events", data=body,
                                    headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                if resp.status != 201:
                    raise RuntimeError(f"injection refused: HTTP {resp.status}")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return time.perf_counter()


def run(ctx: Context) -> list[Row]:
    return [_converge(ctx, peers=3, seed=6), _converge(ctx, peers=None, seed=6)]


def _converge(ctx: Context, *, peers: int | None, seed: int) -> Row:
    from node.dev.devcluster import LocalFederation, Person
    from node.protocol.events import sign_event
    from node.protocol.times import format_ms

    nodes = ctx.size(20, 5)
    events = ctx.size(1_000, 30)
    bound = ctx.seconds(120, 30)
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(dir=ctx.workdir, prefix="converge-"))
    chapters = [f"chapter-{i:02d}" for i in range(nodes)]
    people = [Person(f"C{i}", chapters[i % nodes]) for i in range(3 * nodes)]
    fed = LocalFederation(root, chapters, people, rules={"min_open_hours": 1},
                          pull_interval=1.0, anti_entropy_interval=10.0,
                          env={"CHAPTER_NODE_PEERS": str(peers) if peers else "all"})
    shape = f"each peered with {peers} at random" if peers else "full mesh"
    try:
        fed.setup()
        log(f"convergence: starting {nodes} nodes, {shape}")
        t0 = time.monotonic()
        fed.start_all()
        started = time.monotonic() - t0
        assert fed.charter is not None
        now = int(time.time() * 1000)
        targets = []
        for i in range(events):
            via = rng.choice(chapters)
            person = rng.choice(people)
            event = sign_event(federation=fed.charter.id, type="proposal", chapter=via,
                               created_at=format_ms(now + i), signing_key=person.key,
                               body={"title": f"Action {i}", "text": "", "kind": "action"})
            targets.append((fed.nodes[via].url, event.canonical))
        log(f"convergence: injecting {events:,} events at random nodes")
        t_first = time.perf_counter()
        t_last = asyncio.run(_inject(targets, 8))
        dbs = [n.data_dir / "node.db" for n in fed.nodes.values()]
        held = [0] * nodes
        while time.perf_counter() - t_last < bound:
            held = [_held(db) for db in dbs]
            if min(held) >= events:
                break
            time.sleep(0.1)
        converged = time.perf_counter() - t_last
        done = min(held) >= events
        return Row("convergence", f"{nodes} real nodes, {shape}, {events:,} events injected "
                                  f"at random nodes: all hold all, after the last injection"
                   + ("" if done else f" (NOT converged at the {bound:.0f} s bound)"),
                   converged, "s", target="< 10 s",
                   note=(f"injection took {t_last - t_first:.1f} s "
                         f"({events / (t_last - t_first):.0f} events/s); nodes started in "
                         f"{started:.1f} s; fewest held at the end: {min(held):,}"))
    finally:
        fed.stop_all()
        shutil.rmtree(root, ignore_errors=True)
