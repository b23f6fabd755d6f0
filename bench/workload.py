"""Signed workloads for the benchmarks: a federation and a stream of admissible events.

Every event is really signed (Ed25519 over its RFC 8785 signing input) by a deterministic key,
so what the benchmarks feed a node is exactly what a peer or a client would send. Signing is
the slow part of set-up; `signed_events()` spreads it over every core with a process pool.

The federation: three chapters (paris, rome, barcelona), `connectors` Connectors spread over
them, `min_open_hours` small enough for a vote proposal opened in the past to close in the
future. The stream: one vote proposal by a Connector, then acts on it in `created_at` order:
votes (55 %), proposal-specific delegations (25 %), comments (20 %), each by a random Connector,
dated between the proposal's `created_at` and its close. That is the mix a busy vote sees; the
benchmarks measure throughput over it, not the rules' outcome.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import nacl.signing

from node.protocol.charter import Charter, charter_from_object
from node.protocol.events import b64url, canonical, event_id
from node.protocol.times import format_ms

__all__ = ["Workload", "person_key", "node_key", "make_workload", "signed_events"]

CHAPTERS = ("paris", "rome", "barcelona")


def person_key(i: int) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(f"bench connector {i}".encode()).digest())


def node_key(slug: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(f"bench node {slug}".encode()).digest())


@dataclass(frozen=True)
class Workload:
    """A charter document and signed events (canonical bytes) in `created_at` order."""

    charter_doc: dict[str, Any]
    charter: Charter
    events: list[bytes]
    proposal_id: str

    @property
    def raw_bytes(self) -> int:
        return sum(len(e) for e in self.events)


def _charter_doc(connectors: int, created_ms: int, urls: dict[str, str] | None) -> dict[str, Any]:
    urls = urls or {}
    return {
        "name": "Bench federation",
        "created_at": format_ms(created_ms),
        "chapters": [{"slug": s, "key": b64url(bytes(node_key(s).verify_key)),
                      "url": urls.get(s, f"http://127.0.0.1:{9 + i}")}
                     for i, s in enumerate(CHAPTERS)],
        "connectors": [{"key": b64url(bytes(person_key(i).verify_key)), "name": f"Connector {i}",
                        "chapter": CHAPTERS[i % len(CHAPTERS)]} for i in range(connectors)],
        "rules": {"min_open_hours": 1},
    }


def _sign(federation: str, type: str, chapter: str, created_ms: int, body: dict[str, Any],
          key: int | bytes) -> bytes:
    signing = person_key(key) if isinstance(key, int) else nacl.signing.SigningKey(key)
    unsigned = {"v": 1, "federation": federation, "type": type, "chapter": chapter,
                "author": b64url(bytes(signing.verify_key)), "created_at": format_ms(created_ms),
                "body": body}
    sig = signing.sign(canonical(unsigned)).signature
    return canonical({**unsigned, "sig": b64url(sig)})


Spec = tuple[str, str, int, dict[str, Any], "int | bytes"]


def _sign_chunk(args: tuple[str, list[Spec]]) -> list[bytes]:
    federation, specs = args
    return [_sign(federation, *spec) for spec in specs]


def signed_events(federation: str, specs: Sequence[Spec], workers: int | None = None) -> list[bytes]:
    """Sign (type, chapter, created_ms, body, key) specs, in order, on every core.

    `key` is a bench Connector's index or a 32-byte seed."""
    workers = workers or os.cpu_count() or 1
    if len(specs) < 2000 or workers == 1:
        return _sign_chunk((federation, list(specs)))
    step = -(-len(specs) // (workers * 4))
    chunks = [(federation, list(specs[i:i + step])) for i in range(0, len(specs), step)]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return [raw for part in pool.map(_sign_chunk, chunks) for raw in part]


def make_workload(n_acts: int, *, connectors: int = 1000, seed: int = 6,
                  now_ms: int | None = None, urls: dict[str, str] | None = None,
                  charter: Charter | None = None, seeds: Sequence[bytes] | None = None,
                  opened_ago_ms: int = 3_600_000, window_ms: int | None = None,
                  chapter: str | None = None, comment_share: float = 0.20) -> Workload:
    """A charter and 1 + `n_acts` signed events: a vote proposal, then acts on it.

    The proposal opens `opened_ago_ms` before `now_ms` and closes 24 hours after it; acts are
    dated in the `window_ms` before `now_ms` (default: since the proposal opened), which is
    what a peer relays; a client's acts must be within the grace window of the node's clock.
    `charter` and `seeds` (its Connectors' key seeds, in charter order) use an existing
    federation (e.g. `node.dev.devcluster`'s); `chapter` dates every event from one chapter (a
    client may only send its node's chapter); `comment_share` of the events are comments.
    """
    import time

    rng = random.Random(seed)
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    opened = now_ms - opened_ago_ms
    if charter is None:
        doc = _charter_doc(connectors, opened - 86_400_000, urls)
        charter = charter_from_object(doc)
        keys: list[int | bytes] = list(range(connectors))
        homes = [CHAPTERS[i % len(CHAPTERS)] for i in range(connectors)]
    else:
        assert seeds is not None and len(seeds) == len(charter.connectors)
        doc = charter.to_json()
        keys = list(seeds)
        homes = [c.chapter for c in charter.connectors]
        connectors = len(keys)
    fed = charter.id
    closes = now_ms + 24 * 3_600_000
    proposal = _sign(fed, "proposal", chapter or homes[0], opened,
                     {"title": "Adopt the bench budget", "text": "Throughput, measured.",
                      "kind": "vote", "closes_at": format_ms(closes)}, keys[0])
    pid = event_id(proposal)
    window = min(window_ms if window_ms is not None else opened_ago_ms, opened_ago_ms) - 1
    times = sorted(now_ms - rng.randrange(0, window) for _ in range(n_acts))
    publics = [b64url(bytes((person_key(k) if isinstance(k, int) else
                             nacl.signing.SigningKey(k)).verify_key)) for k in keys]
    specs: list[Spec] = []
    used: set[tuple[int, int]] = set()  # (time, author): no two acts are the same event
    for t in times:
        who = rng.randrange(connectors)
        while (t, who) in used:
            who = rng.randrange(connectors)
        used.add((t, who))
        home = chapter or homes[who]
        roll = rng.random() * 0.80 / (1 - comment_share)  # votes : delegations stay 55 : 25
        if roll < 0.55:
            body: dict[str, Any] = {"proposal": pid, "choice": rng.choice(("yes", "no", "abstain"))}
            specs.append(("vote", home, t, body, keys[who]))
        elif roll < 0.80:
            to = rng.randrange(connectors - 1)
            to += to >= who  # never oneself
            specs.append(("delegation", home, t, {"to": publics[to], "proposal": pid}, keys[who]))
        else:
            specs.append(("comment", home, t,
                          {"proposal": pid, "text": f"Point {rng.randrange(10**6)}: agreed, with one caveat."},
                          keys[who]))
    return Workload(doc, charter, [proposal, *signed_events(fed, specs)], pid)
