"""An in-memory network of nodes: the real sync code and endpoints without sockets or HTTP.

It exists for simulation and tests. Each node is a real `ChapterNode` (its own store); its
`Federation` gets a `LocalTransport` instead of a `PeerClient`. A call is routed by base URL to
the target node's endpoint core (node/federation/endpoints.py, the same code the aiohttp
handlers run), with the caller's chapter as the authenticated peer (resolved through the
target's registry, as a signature's keyid would be). Errors, 4xx and 5xx raise
`PeerUnavailable` as the real client does.

`LocalNetwork` owns the routes and the faults, all drawn from one seeded generator so a run is
reproducible when rounds are stepped in a fixed order: partitions (a link is down both ways),
crashes (a node's URL refuses connections), a request lost, a reply lost (the peer acted on the
request but the caller sees a failure), a request delivered twice, and a per-call hook that can
delay (await) or drop (raise `PeerUnavailable`) any call.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ..chapter.chapter_node import ChapterNode
from ..protocol.errors import ChapterNodeError, PayloadTooLarge, Unauthenticated
from . import endpoints
from .http_errors import status_of
from .peer_client import PeerReply, PeerUnavailable

__all__ = ["LocalNetwork", "LocalTransport", "Delivery"]

log = logging.getLogger("chapter_node.local_network")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One call on its way, as the per-call hook sees it."""

    caller: str  # chapter slug of the calling node
    target: str  # chapter slug the base URL routes to
    method: str
    path: str  # path and query
    body: bytes


Hook = Callable[[Delivery], Awaitable[None]]


class LocalTransport:
    """What `Federation` calls instead of `PeerClient`: same `call`, routed in memory."""

    session = None  # webhooks need real HTTP: a simulated node configures none

    def __init__(self, network: LocalNetwork, slug: str) -> None:
        self.network = network
        self.slug = slug

    async def call(self, method: str, base_url: str, path: str, body: bytes = b"",
                   content_type: str = "application/json",
                   request_id: str | None = None) -> PeerReply:
        return await self.network.deliver(self.slug, method, base_url, path, body)


class LocalNetwork:
    """The nodes' routes and the faults between them; see the module docstring."""

    def __init__(self, seed: int = 0, *, drop_request: float = 0.0, drop_reply: float = 0.0,
                 duplicate: float = 0.0, hook: Hook | None = None) -> None:
        self.rng = random.Random(seed)
        self.drop_request = drop_request
        self.drop_reply = drop_reply
        self.duplicate = duplicate
        self.hook = hook
        self.nodes: dict[str, ChapterNode] = {}  # slug -> node (crashed ones removed)
        self.routes: dict[str, str] = {}  # base URL (no trailing slash) -> slug
        self.down: set[frozenset[str]] = set()  # links cut, both ways
        self.stats: Counter[str] = Counter()
        self.errors: list[BaseException] = []  # unexpected exceptions: a bug, answered with 500

    # --- membership -----------------------------------------------------------------------

    def add(self, node: ChapterNode, url: str | None = None) -> LocalTransport:
        """Attach `node` (or a restarted node of the same chapter) at `url` (default: its
        registry URL); returns the transport its `Federation` should use."""
        self.nodes[node.chapter] = node
        self.routes[(url or node.own_url()).rstrip("/")] = node.chapter
        return LocalTransport(self, node.chapter)

    def crash(self, slug: str) -> None:
        """The node is gone: calls to it fail as a refused connection until `add` again."""
        self.nodes.pop(slug, None)

    # --- links ----------------------------------------------------------------------------

    def cut(self, a: str, b: str) -> None:
        self.down.add(frozenset((a, b)))

    def mend(self, a: str, b: str) -> None:
        self.down.discard(frozenset((a, b)))

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every link between two different groups (links within a group stay as they are)."""
        sets = [set(g) for g in groups]
        for i, left in enumerate(sets):
            for right in sets[i + 1:]:
                for a in left:
                    for b in right:
                        if a != b:
                            self.cut(a, b)

    def heal(self) -> None:
        self.down.clear()

    def linked(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.down

    # --- delivery -------------------------------------------------------------------------

    def _chance(self, p: float) -> bool:
        return p > 0 and self.rng.random() < p

    async def deliver(self, caller: str, method: str, base_url: str, path: str,
                      body: bytes) -> PeerReply:
        url = base_url.rstrip("/") + path
        target_slug = self.routes.get(base_url.rstrip("/"))
        source = self.nodes.get(caller)
        target = self.nodes.get(target_slug) if target_slug is not None else None
        if source is None or target is None:
            self.stats["refused"] += 1
            raise PeerUnavailable(f"{url}: connection refused")
        if not self.linked(caller, target.chapter):
            self.stats["partitioned"] += 1
            raise PeerUnavailable(f"{url}: TimeoutError: partitioned")
        if self.hook is not None:
            await self.hook(Delivery(caller, target.chapter, method, path, body))
        if self._chance(self.drop_request):
            self.stats["dropped_request"] += 1
            raise PeerUnavailable(f"{url}: TimeoutError: request lost")
        reply = await self._answer(source, target, method, path, body)
        if self._chance(self.duplicate):
            self.stats["duplicated"] += 1
            await self._answer(source, target, method, path, body)  # the copy's answer is lost
        if self._chance(self.drop_reply):
            self.stats["dropped_reply"] += 1
            raise PeerUnavailable(f"{url}: TimeoutError: reply lost")
        self.stats["delivered"] += 1
        return reply.accepted(url)

    async def _answer(self, source: ChapterNode, target: ChapterNode, method: str, path: str,
                      body: bytes) -> PeerReply:
        """The target's answer, as its HTTP layer would give it after a valid signature."""
        try:
            limit = endpoints.body_limit(method, path.partition("?")[0])
            if limit is not None and len(body) > limit:
                raise PayloadTooLarge(f"body of {len(body)} bytes is over the {limit}-byte limit")
            if target.peer_key(source.node_public) is None:
                raise Unauthenticated("the signing key belongs to no chapter", code="unknown_key")
            slug = target.peer_slug(source.node_public)
            target.peer_seen(slug)
            answer = await endpoints.dispatch(target, slug, method, path, body)
        except ChapterNodeError as e:
            error = {"error": {"code": e.code, "message": e.message}}
            return PeerReply(status_of(e), json.dumps(error).encode(),
                             {"Content-Type": "application/json; charset=utf-8"}, None)
        except Exception as e:  # the real server logs and answers 500; keep it for the test
            log.exception("unhandled error on %s %s", method, path)
            self.errors.append(e)
            return PeerReply(500, b'{"error":{"code":"internal_error"}}', {}, None)
        return PeerReply(answer.status, answer.body, dict(answer.headers),
                         target.clock() - source.clock())
