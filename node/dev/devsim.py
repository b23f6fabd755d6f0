"""A federation of real nodes on the in-memory network, stepped round by round on virtual time.

What the hardening tests and `bench/scale.py` run (it was tests/support/memnet.py, which still
re-exports it).

    sim = Simulation.build(tmp_path, ["paris", "rome", "barcelona"], seed=7)
    sim.submit("paris", event)
    await sim.run_until(sim.converged)

Each node is a real `ChapterNode` over its own SQLite file with a virtual clock (shared time
plus a per-node skew); each `Federation` talks through `LocalNetwork`. Nothing runs in the
background: `round()` steps every node's peer rounds and duties in a fixed order, so a seed
gives one run. A round is not a unit of latency: within one, an event can cross many hops
(nodes later in the order pull from nodes that already have it). `memory=True` keeps stores in
SQLite memory (no files: 10,000 file stores would need 30,000 descriptors).

`hop_round()` is the synchronous round a benchmark counts: every node's feed and outbox are
held at what it held when the round began, so an event crosses exactly one link per round
(and the order nodes are stepped in no longer matters). `network.traffic` counts requests,
bytes and event lines moved.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.signing

from ..chapter.chapter_node import OUTBOX_BATCH_BYTES, ChapterNode
from ..federation.local_network import LocalNetwork
from ..federation.peer_client import PeerReply
from ..federation.sync import Federation, SyncSettings
from ..protocol.charter import Charter, charter_from_object
from ..protocol.events import Event, b64url, sign_event
from ..protocol.times import format_ms, parse_ms
from ..store import Store, open_store

__all__ = ["Simulation", "VirtualClock", "sim_charter", "person_key", "pub", "MeasuredNetwork"]


def person_key(name: str) -> nacl.signing.SigningKey:
    """A deterministic key per name (the test suite's: tests/conftest.py derives the same)."""
    return nacl.signing.SigningKey(hashlib.sha256(f"chapter-node test {name}".encode()).digest())


def pub(name: str) -> str:
    return b64url(bytes(person_key(name).verify_key))


def sim_charter(chapters: Sequence[str], connectors: dict[str, str] | None = None,
                **rules: Any) -> Charter:
    """Chapters with test node keys (`node <slug>`) at http://<slug>.sim; one Connector per
    chapter unless given (name -> chapter)."""
    connectors = connectors or {f"connector-{slug}": slug for slug in chapters}
    return charter_from_object({
        "name": "Simulated federation",
        "created_at": "2026-01-01T00:00:00.000Z",
        "chapters": [{"slug": s, "key": pub(f"node {s}"), "url": f"http://{s}.sim"}
                     for s in chapters],
        "connectors": [{"key": pub(n), "name": n, "chapter": c} for n, c in connectors.items()],
        "rules": rules or {"min_open_hours": 72},
    })


@dataclass
class VirtualClock:
    """Shared simulated time; each node reads it through `for_node` with its own skew."""

    now_ms: int = parse_ms("2026-02-01T09:00:00.000Z")
    skew_ms: dict[str, int] = field(default_factory=dict)

    def advance(self, ms: int) -> None:
        self.now_ms += ms

    def for_node(self, slug: str) -> Callable[[], int]:
        return lambda: self.now_ms + self.skew_ms.get(slug, 0)


class MeasuredNetwork(LocalNetwork):
    """The in-memory network, counting what crosses it (`traffic`): requests, request and
    reply bytes, and event lines moved (pushed batches, feed pages, fetched events)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.traffic: Counter[str] = Counter()

    async def deliver(self, caller: str, method: str, base_url: str, path: str,
                      body: bytes) -> PeerReply:
        self.traffic["requests"] += 1
        self.traffic["bytes_sent"] += len(body)
        if method == "POST" and path.startswith("/federation/v1/events"):
            self.traffic["lines"] += _lines(body)
        reply = await super().deliver(caller, method, base_url, path, body)
        self.traffic["bytes_received"] += len(reply.body)
        if path.startswith(("/federation/v1/changes", "/federation/v1/fetch")):
            self.traffic["lines"] += _lines(reply.body)
        return reply


def _lines(body: bytes) -> int:
    return sum(1 for line in body.split(b"\n") if line.strip())


class _SimNode(ChapterNode):
    """A node whose feed and outbox can be held at a sequence number (`hold`): what it stores
    after the hold leaves it only once the hold is lifted (see `Simulation.hop_round`)."""

    hold: int | None = None

    def _held_limit(self, after: int, limit: int) -> int:
        if self.hold is None:
            return limit
        below = self.store.arrived_between(after, self.hold)
        return min(limit, below)

    def changes(self, after: int, limit: int) -> tuple[list[bytes], int, int]:
        lines, last, head = super().changes(after, self._held_limit(after, limit))
        return lines, last, head if self.hold is None else min(head, max(self.hold, after))

    def outbox(self, peer: str, acked: int, limit: int,
               max_bytes: int = OUTBOX_BATCH_BYTES) -> tuple[list[bytes], int]:
        return super().outbox(peer, acked, self._held_limit(acked, limit), max_bytes)


@dataclass
class Simulation:
    root: Path
    charter: Charter
    network: LocalNetwork
    clock: VirtualClock
    settings: SyncSettings
    nodes: dict[str, ChapterNode] = field(default_factory=dict)
    federations: dict[str, Federation] = field(default_factory=dict)
    rounds: int = 0
    memory: bool = False  # stores in SQLite memory: no files (10,000 file stores need 30,000 fds)
    _kept: dict[str, Store] = field(default_factory=dict)  # a crashed in-memory node's store

    @classmethod
    def build(cls, root: Path, chapters: Sequence[str], *, seed: int = 0,
              charter: Charter | None = None, settings: SyncSettings | None = None,
              memory: bool = False, **faults: Any) -> Simulation:
        sim = cls(root, charter or sim_charter(chapters), MeasuredNetwork(seed, **faults),
                  VirtualClock(), settings or SyncSettings(batch_size=100), memory=memory)
        for slug in chapters:
            sim.start(slug)
        return sim

    def start(self, slug: str) -> ChapterNode:
        """Open (or reopen after a crash) the node of `slug` on its store and attach it.

        A crash loses nothing committed: a file store is reopened, an in-memory one kept."""
        if slug in self._kept:
            store = self._kept.pop(slug)
        else:
            store = open_store(":memory:" if self.memory else self.root / f"{slug}.db")
            store.skip_fsync()  # durability is not what this tests
        store.set_meta("chapter", slug)
        store.set_meta("federation", self.charter.id)
        node = _SimNode(store, self.charter, slug, person_key(f"node {slug}"),
                        clock=self.clock.for_node(slug))
        self.nodes[slug] = node
        self.federations[slug] = Federation(
            node, self.network.add(node), self.settings,  # type: ignore[arg-type]
            rng=random.Random(f"{self.network.rng.random()}"))
        return node

    def crash(self, slug: str) -> None:
        """The node stops between two steps (what its process held in memory is gone)."""
        self.network.crash(slug)
        self.federations.pop(slug)
        node = self.nodes.pop(slug)
        if self.memory:
            self._kept[slug] = node.store
        else:
            node.store.close()

    def close(self) -> None:
        for slug in list(self.nodes):
            self.crash(slug)
        for store in self._kept.values():
            store.close()
        self._kept.clear()

    # --- acting ---------------------------------------------------------------------------

    def sign(self, who: str, type: str, body: dict[str, Any], chapter: str,
             at_ms: int | None = None) -> Event:
        return sign_event(federation=self.charter.id, type=type, chapter=chapter,
                          created_at=format_ms(self.clock.now_ms if at_ms is None else at_ms),
                          body=body, signing_key=person_key(who))

    def submit(self, via: str, event: Event) -> None:
        node = self.nodes[via]
        node.submit(event.canonical, node.clock())

    # --- stepping -------------------------------------------------------------------------

    async def round(self, *, reconcile: bool = True) -> None:
        """Every node, in chapter order: one round with each of its peers, then its duties."""
        self.rounds += 1
        for slug in sorted(self.federations):
            federation = self.federations[slug]
            for peer in federation.peers():
                await federation.peer_round(peer, reconcile=reconcile)
            await federation.duty_round()

    async def hop_round(self, *, reconcile: bool = False) -> None:
        """A synchronous round: `round()` with every node's feed and outbox held at what it
        held when the round began, so whatever a node receives now leaves it next round.

        An event therefore crosses one link (push or pull) per round whatever the order, and
        rounds count hops. Reconciliation is off by default: it reads the whole store, past
        the hold."""
        for node in self.nodes.values():
            if isinstance(node, _SimNode):
                node.hold = node.store.max_seq()
        try:
            await self.round(reconcile=reconcile)
        finally:
            for node in self.nodes.values():
                if isinstance(node, _SimNode):
                    node.hold = None

    async def run_until(self, done: Callable[[], bool], *, max_rounds: int = 60,
                        reconcile: bool = True) -> int:
        """Step rounds until `done()`; returns how many it took (fails past `max_rounds`)."""
        for n in range(max_rounds):
            if done():
                return n
            await self.round(reconcile=reconcile)
        assert done(), f"not done after {max_rounds} rounds"
        return max_rounds

    # --- observing ------------------------------------------------------------------------

    def ids(self, slug: str) -> set[str]:
        return self.nodes[slug].store.all_ids()

    def converged(self) -> bool:
        sets = [self.ids(slug) for slug in self.nodes]
        return all(s == sets[0] for s in sets)

    def report(self, slug: str, pid: str) -> dict[str, Any]:
        node = self.nodes[slug]
        return node.proposal_report(pid, node.clock())
