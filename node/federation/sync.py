"""Propagation that survives real networks: push, pull, anti-entropy, and the node's duties.

One task per peer alternates push (the durable outbox: every event after the peer's acked
cursor), pull (the peer's changes feed after our checkpoint) and, now and then, a Negentropy
reconciliation. A failing peer backs off exponentially with jitter and delays nothing but its
own task. A duties task publishes seals when they are due, fetches sealed lists and listed
acts we lack, and records finality.

Cursors live in the store, so a restart resumes where it stopped; redelivery is harmless
because ingest is idempotent. Time comes from the node's clock; `peer_round` and `duty_round`
are one step each of the two loops, so a simulation can drive them without the timing.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..chapter.chapter_node import ChapterNode
from ..chapter.metrics import NodeMetrics
from ..config import Webhook
from ..logs import REQUEST_ID, new_request_id
from ..notices.webhooks import Notices, deliver_due
from ..protocol.errors import ChapterNodeError
from .items import items_of
from .peer_client import PeerClient, PeerUnavailable

__all__ = ["SyncSettings", "Federation", "PeerRound", "select_peers"]

log = logging.getLogger("chapter_node.sync")
MAX_RECONCILE_ROUNDS = 1_000
MAX_RECONCILE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class SyncSettings:
    pull_interval_s: float = 5.0
    anti_entropy_interval_s: float = 30.0
    duty_interval_s: float = 1.0
    batch_size: int = 1000  # lines per push, and the pull's `limit` (the feed's default)
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 10.0  # see Federation.peer_round: a healed cut waits at most this
    request_timeout_s: float = 10.0
    peers: int | None = None  # None: every registered chapter; k: k of them (`select_peers`)


@dataclass(frozen=True, slots=True)
class PeerRound:
    """How one round with a peer went, and how long its loop waits before the next one."""

    ok: bool
    wait_s: float  # the pull interval after a success, the jittered backoff after a failure
    error: str | None = None


def select_peers(node_key: str, chapters: Iterable[str], k: int | None) -> list[str]:
    """The k chapters a node keyed `node_key` syncs with, sorted; all of them when k is None.

    Rendezvous hashing: each chapter's rank is a hash of (our node key, its slug). So the draw
    is the same after a restart, independent between nodes (a random k-out graph, connected
    with high probability for k >= 2), and a registry change moves at most the choices it must.
    """
    slugs = list(chapters)
    if k is None or k >= len(slugs):
        return sorted(slugs)
    prefix = b"chapter-node peers\0" + node_key.encode() + b"\0"
    sha256 = hashlib.sha256
    # (rank, slug) pairs: ties (never, with SHA-256) would fall to the slug, as in sorted order
    ranked = zip([sha256(prefix + s.encode()).digest() for s in slugs], slugs)
    return sorted(slug for _, slug in heapq.nsmallest(k, ranked))


class Federation:
    """The background side of a node: keeps it in step with every peer."""

    def __init__(self, node: ChapterNode, client: PeerClient, settings: SyncSettings,
                 *, metrics: NodeMetrics | None = None, webhooks: Sequence[Webhook] = (),
                 mail: bool = False, duties: Sequence[Callable[[int], Awaitable[Any]]] = (),
                 rng: random.Random | None = None) -> None:
        """mail: notices also queue a mail per member who wants one; `duties`: what else the
        node does each duty round, given the clock (the app passes the mail delivery)."""
        self.node = node
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.webhooks = tuple(webhooks)
        self.duties = tuple(duties)
        self.notices = (Notices(node.store, node.chapter, self.webhooks, counts=node.counts,
                                mail=mail)
                        if self.webhooks or mail else None)
        self._wake: dict[str, asyncio.Event] = {}
        # Set when a peer reaches us: its backoff ends early. Not `_wake`, which local writes
        # set, so a peer that is down is not hammered by every new event.
        self._heard: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._duties: asyncio.Task[None] | None = None
        # (registry version, digest of the chapter set, the draw): see `peers`
        self._selection: tuple[object, tuple[int, int], list[str]] | None = None
        self._started = False  # without start() (a simulation stepping rounds): no tasks
        self._rng = rng or random.Random()  # jitter; seeded by a simulation
        node.on_stored.append(self.wake_all)
        node.on_peer_seen.append(self._peer_heard)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._started = True
        self._refresh_peers()
        self._duties = asyncio.create_task(self._duty_loop(), name="duties")

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *([self._duties] if self._duties else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._started = False

    def _peer_heard(self, slug: str) -> None:
        heard = self._heard.get(slug)
        if heard is not None:
            heard.set()

    def wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    def peers(self) -> list[str]:
        """The chapters this node syncs with (push, pull, reconcile), sorted: every other
        registered chapter, or the `settings.peers` of them that `select_peers` draws."""
        chapters = self.node.peer_urls(self.node.clock())
        # Drawn again when the set of chapters changes. While the registry's version (its
        # node-key index, one object per set of chapters) is the one drawn from, nothing is
        # recomputed; otherwise a digest of the set is compared, and only it is kept (with
        # 10,000 simulated nodes a set of 10,000 slugs each would be gigabytes).
        version = chapters.version
        chosen = self._selection
        if chosen is not None and chosen[0] is version:
            return list(chosen[2])
        digest = (len(chapters), hash(frozenset(chapters)))
        if chosen is None or chosen[1] != digest:
            chosen = (version, digest, select_peers(self.node.node_public, chapters,
                                                    self.settings.peers))
        self._selection = (version, digest, chosen[2])
        return list(chosen[2])

    def _refresh_peers(self) -> None:
        if not self._started:
            return
        peers = self.peers()
        for slug in peers:
            if slug not in self._tasks:
                self._wake[slug] = asyncio.Event()
                self._wake[slug].set()
                self._heard[slug] = asyncio.Event()
                self._tasks[slug] = asyncio.create_task(self._peer_loop(slug), name=f"peer:{slug}")
        for slug in set(self._tasks) - set(peers):
            self._tasks.pop(slug).cancel()
            self._wake.pop(slug, None)
            self._heard.pop(slug, None)

    def _url(self, slug: str) -> str | None:
        return self.node.peer_urls(self.node.clock()).get(slug)

    # --- per-peer loop --------------------------------------------------------------------

    async def _peer_loop(self, slug: str) -> None:
        next_reconcile = time.monotonic() + self._rng.uniform(0, self.settings.anti_entropy_interval_s)
        deaf = False  # the last retry came from hearing the peer, and failed all the same
        while True:
            wake = self._wake[slug]
            wake.clear()
            due = time.monotonic() >= next_reconcile
            outcome = await self.peer_round(slug, reconcile=due)
            if not outcome.ok:
                heard = self._heard[slug]
                heard.clear()
                if deaf:
                    # It reaches us but we cannot reach it (behind NAT, a wrong URL): hearing
                    # it again tells nothing new, and each of its requests would otherwise
                    # cost a failed connection. Wait out the backoff.
                    deaf = False
                    await asyncio.sleep(outcome.wait_s)
                    continue
                try:  # back off, unless the peer shows it is back by reaching us first
                    await asyncio.wait_for(heard.wait(), timeout=outcome.wait_s)
                    deaf = True
                except TimeoutError:
                    pass
                continue
            deaf = False
            if due:
                next_reconcile = time.monotonic() + self.settings.anti_entropy_interval_s
            try:
                await asyncio.wait_for(wake.wait(), timeout=outcome.wait_s)
            except TimeoutError:
                pass

    async def peer_round(self, slug: str, *, reconcile: bool = False) -> PeerRound:
        """One round with one peer: push, pull, and a Negentropy reconciliation if asked.

        The peer's state records the outcome (failures, last error, next attempt); a failure is
        returned, not raised, with the backoff its loop waits. Callable on its own, so a
        simulation can step peers without the timing loop.
        """
        url = self._url(slug)
        REQUEST_ID.set(new_request_id())  # one id per round, sent along to the peer
        try:
            if url is None:
                raise PeerUnavailable(f"no URL for {slug}")
            await self.push(slug, url)
            await self.pull(slug, url)
            if reconcile:
                await self.reconcile(slug, url)
            self.node.store.update_peer(slug, failures=0, last_error=None)
            self._count(slug, "ok")
            return PeerRound(True, self.settings.pull_interval_s)
        except (ChapterNodeError, ValueError) as e:
            self._count(slug, "failed")
            failures = self.node.store.peer(slug).failures + 1
            delay = min(self.settings.backoff_cap_s,
                        self.settings.backoff_base_s * 2 ** min(failures - 1, 16))
            delay *= self._rng.uniform(0.5, 1.0)  # jitter: peers don't retry in step
            self.node.store.update_peer(slug, failures=failures, last_error=str(e)[:500],
                                        next_attempt_ms=self.node.clock() + int(delay * 1000))
            log.info("peer %s: %s (retry in %.1fs)", slug, e, delay)
            return PeerRound(False, delay, str(e))

    async def push(self, slug: str, url: str) -> int:
        """Send every event after the peer's acked cursor, in batches, oldest first."""
        sent = 0
        while True:
            acked = self.node.store.peer(slug).push_acked
            lines, last = self.node.outbox(slug, acked, self.settings.batch_size)
            if last == acked:
                return sent
            if lines:
                reply = await self.client.call("POST", url, "/federation/v1/events",
                                               b"\n".join(lines), "application/x-ndjson")
                results = reply.json()
                if not isinstance(results, dict) or "results" not in results:
                    raise PeerUnavailable(f"{slug} answered a batch without results")
                sent += len(lines)
            self.node.store.update_peer(slug, push_acked=last, last_push_ms=self.node.clock())
            if lines:
                log.info("pushed %d lines to %s", len(lines), slug, extra={"peer": slug})

    async def pull(self, slug: str, url: str) -> int:
        """Read the peer's changes feed after our checkpoint; ingest what it holds."""
        got = 0
        while True:
            state = self.node.store.peer(slug)
            epoch_key = f"feed_epoch:{slug}"
            checkpoint = state.pull_checkpoint
            reply = await self.client.call(
                "GET", url, f"/federation/v1/changes?after={checkpoint}&limit={self.settings.batch_size}")
            epoch = reply.headers.get("X-Feed-Epoch", "")
            head = int(reply.headers.get("X-Feed-Head", "0"))
            if epoch != self.node.store.get_meta(epoch_key) or head < checkpoint:
                # The peer's feed restarted (restored from a backup): read it again from 0.
                self.node.store.set_meta(epoch_key, epoch)
                if checkpoint:
                    self.node.store.update_peer(slug, pull_checkpoint=0)
                    continue
            lines = [line for line in reply.body.split(b"\n") if line.strip()]
            if lines:
                self.node.receive(lines, origin=slug, now_ms=self.node.clock())
                got += len(lines)
            nxt = int(reply.headers.get("X-Feed-Next", checkpoint))
            if self.metrics is not None:
                self.metrics.peer_heads[slug] = (head, nxt)
            self.node.store.update_peer(slug, pull_checkpoint=nxt, last_pull_ms=self.node.clock(),
                                        clock_skew_ms=reply.skew_ms)
            if nxt >= head or not lines:
                if got:
                    log.info("pulled %d lines from %s", got, slug, extra={"peer": slug})
                return got

    async def reconcile(self, slug: str, url: str) -> tuple[int, int]:
        """Negentropy with one peer: send what it lacks, fetch what we lack.

        Ids are handled as they come, a batch at a time, so a session's memory stays bounded
        whatever the peer answers; rounds and wall time are bounded too.
        """
        session = items_of(self.node).initiator()
        msg: bytes | None = session.initiate_whole_set()  # 21 B when already equal
        have: dict[bytes, None] = {}  # ordered sets: with frame limits an id can come back
        need: dict[bytes, None] = {}
        sent = fetched = rounds = 0
        deadline = time.monotonic() + MAX_RECONCILE_SECONDS
        while msg is not None:
            rounds += 1
            if rounds > MAX_RECONCILE_ROUNDS or time.monotonic() > deadline:
                raise PeerUnavailable(f"reconciliation with {slug} did not finish in "
                                      f"{MAX_RECONCILE_ROUNDS} rounds or {MAX_RECONCILE_SECONDS} s")
            reply = await self.client.call("POST", url, "/federation/v1/negentropy", msg,
                                           "application/octet-stream")
            if self.metrics is not None:
                self.metrics.negentropy_rounds.labels(slug).inc()
                self.metrics.negentropy_bytes.labels("sent").inc(len(msg))
                self.metrics.negentropy_bytes.labels("received").inc(len(reply.body))
            msg, h, n = session.reconcile_initiator(reply.body)
            have.update(dict.fromkeys(h))
            need.update(dict.fromkeys(n))
            if len(have) >= self.settings.batch_size or (msg is None and have):
                sent += await self._send_ids(slug, url, list(have))
                have.clear()
            if len(need) >= self.settings.batch_size or (msg is None and need):
                fetched += len(need)
                await self.fetch(slug, url, [i.hex() for i in need])
                need.clear()
        self.node.note_reconciled(slug, rounds, sent, fetched)
        return sent, fetched

    async def _send_ids(self, slug: str, url: str, ids: list[bytes]) -> int:
        lines = self.node.lines_for([i.hex() for i in ids])
        if lines:
            await self.client.call("POST", url, "/federation/v1/events", b"\n".join(lines),
                                   "application/x-ndjson")
        return len(ids)

    async def fetch(self, slug: str, url: str, ids: list[str]) -> int:
        got = 0
        for start in range(0, len(ids), self.settings.batch_size):
            chunk = ids[start:start + self.settings.batch_size]
            reply = await self.client.call("POST", url, "/federation/v1/fetch",
                                           json.dumps({"ids": chunk}).encode())
            lines = [line for line in reply.body.split(b"\n") if line.strip()]
            self.node.receive(lines, origin=slug, now_ms=self.node.clock())
            got += len(lines)
        return got

    def _count(self, slug: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.peer_requests.labels(slug, outcome).inc()

    # --- duties ---------------------------------------------------------------------------

    async def _duty_loop(self) -> None:
        while True:
            try:
                await self.duty_round()
            except asyncio.CancelledError:
                raise
            except Exception:  # a duty failing must not stop the others next round
                log.exception("duty round failed")
            await asyncio.sleep(self.settings.duty_interval_s)

    async def duty_round(self) -> None:
        """One round of duties: refresh the peer set, publish due seals, fetch sealed lists and
        acts we lack, record finality, deliver webhooks, then the app's own duties (mail).
        Raises what a duty raised."""
        REQUEST_ID.set(new_request_id())
        self._refresh_peers()
        self.node.publish_due_seals(self.node.clock())
        await self._fetch_missing()
        finals = self.node.record_finality(self.node.clock())
        if self.notices is not None:
            self.notices.collect(self.node.clock(), finals)
            await deliver_due(self.node.store, self.client.session, self.webhooks,
                              self.node.clock(), timeout_s=self.settings.request_timeout_s)
        for duty in self.duties:
            await duty(self.node.clock())

    async def _fetch_missing(self) -> None:
        """Sealed lists and listed acts we lack: ask the sealing chapter first, then our peers."""
        urls = self.node.peer_urls(self.node.clock())
        chosen = self.peers()
        for seal_id, chapter in self.node.missing_sealed_lists():
            ask = sorted(chosen, key=lambda s: s != chapter)
            if chapter in urls and chapter not in chosen:
                ask.insert(0, chapter)
            for slug in ask:
                try:
                    reply = await self.client.call("GET", urls[slug], f"/federation/v1/sealed/{seal_id}")
                except PeerUnavailable:
                    continue
                self.node.receive([reply.body], origin=slug, now_ms=self.node.clock())
                break
        missing = self.node.missing_acts()
        if missing:
            for slug in chosen:
                try:
                    await self.fetch(slug, urls[slug], missing)
                except PeerUnavailable:
                    continue
                missing = self.node.missing_acts()
                if not missing:
                    break
