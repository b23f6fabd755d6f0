"""Propagation that survives real networks: push, pull, anti-entropy, and the node's duties.

One task per peer alternates push (the durable outbox: every event after the peer's acked
cursor), pull (the peer's changes feed after our checkpoint) and, now and then, a Negentropy
reconciliation. A failing peer backs off exponentially with jitter and delays nothing but its
own task. A duties task publishes seals when they are due, fetches sealed lists and listed
acts we lack, and records finality.

Cursors live in the store, so a restart resumes where it stopped; redelivery is harmless
because ingest is idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import Webhook
from ..errors import ChapterNodeError
from ..logs import REQUEST_ID, new_request_id
from ..metrics import NodeMetrics
from ..service import ChapterNode
from ..webhooks import Notices, deliver_due
from .peer_client import PeerClient, PeerUnavailable

__all__ = ["SyncSettings", "Federation"]

log = logging.getLogger("chapter_node.sync")
MAX_RECONCILE_ROUNDS = 1_000
MAX_RECONCILE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class SyncSettings:
    pull_interval_s: float = 5.0
    anti_entropy_interval_s: float = 30.0
    duty_interval_s: float = 1.0
    batch_size: int = 500
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    request_timeout_s: float = 10.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class Federation:
    """The background side of a node: keeps it in step with every peer."""

    def __init__(self, node: ChapterNode, client: PeerClient, settings: SyncSettings,
                 *, metrics: NodeMetrics | None = None, webhooks: Sequence[Webhook] = ()) -> None:
        self.node = node
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.webhooks = tuple(webhooks)
        self.notices = Notices(node.store, node.chapter, self.webhooks) if self.webhooks else None
        self._wake: dict[str, asyncio.Event] = {}
        # Set when a peer reaches us: its backoff ends early. Not `_wake`, which local writes
        # set, so a peer that is down is not hammered by every new event.
        self._heard: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._duties: asyncio.Task[None] | None = None
        self._rng = random.Random()
        node.on_stored.append(self.wake_all)
        node.on_peer_seen.append(self._peer_heard)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._refresh_peers()
        self._duties = asyncio.create_task(self._duty_loop(), name="duties")

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *([self._duties] if self._duties else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _peer_heard(self, slug: str) -> None:
        heard = self._heard.get(slug)
        if heard is not None:
            heard.set()

    def wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    def _refresh_peers(self) -> None:
        peers = self.node.peer_urls(_now_ms())
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
        return self.node.peer_urls(_now_ms()).get(slug)

    # --- per-peer loop --------------------------------------------------------------------

    async def _peer_loop(self, slug: str) -> None:
        next_reconcile = time.monotonic() + self._rng.uniform(0, self.settings.anti_entropy_interval_s)
        while True:
            wake = self._wake[slug]
            wake.clear()
            url = self._url(slug)
            REQUEST_ID.set(new_request_id())  # one id per round, sent along to the peer
            try:
                if url is None:
                    raise PeerUnavailable(f"no URL for {slug}")
                await self.push(slug, url)
                await self.pull(slug, url)
                if time.monotonic() >= next_reconcile:
                    await self.reconcile(slug, url)
                    next_reconcile = time.monotonic() + self.settings.anti_entropy_interval_s
                self.node.store.update_peer(slug, failures=0, last_error=None)
                self._count(slug, "ok")
                delay = self.settings.pull_interval_s
            except (ChapterNodeError, ValueError) as e:
                self._count(slug, "failed")
                failures = self.node.store.peer(slug).failures + 1
                delay = min(self.settings.backoff_cap_s,
                            self.settings.backoff_base_s * 2 ** min(failures - 1, 16))
                delay *= self._rng.uniform(0.5, 1.0)  # jitter: peers don't retry in step
                self.node.store.update_peer(slug, failures=failures, last_error=str(e)[:500],
                                            next_attempt_ms=_now_ms() + int(delay * 1000))
                log.info("peer %s: %s (retry in %.1fs)", slug, e, delay)
                heard = self._heard[slug]
                heard.clear()
                try:  # back off, unless the peer shows it is back by reaching us first
                    await asyncio.wait_for(heard.wait(), timeout=delay)
                except TimeoutError:
                    pass
                continue
            try:
                await asyncio.wait_for(wake.wait(), timeout=delay)
            except TimeoutError:
                pass

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
            self.node.store.update_peer(slug, push_acked=last, last_push_ms=_now_ms())
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
                self.node.receive(lines, origin=slug, now_ms=_now_ms())
                got += len(lines)
            nxt = int(reply.headers.get("X-Feed-Next", checkpoint))
            if self.metrics is not None:
                self.metrics.peer_heads[slug] = (head, nxt)
            self.node.store.update_peer(slug, pull_checkpoint=nxt, last_pull_ms=_now_ms(),
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
        session = self.node.reconciliation()
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
            self.node.receive(lines, origin=slug, now_ms=_now_ms())
            got += len(lines)
        return got

    def _count(self, slug: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.peer_requests.labels(slug, outcome).inc()

    # --- duties ---------------------------------------------------------------------------

    async def _duty_loop(self) -> None:
        while True:
            REQUEST_ID.set(new_request_id())
            try:
                self._refresh_peers()
                self.node.publish_due_seals(_now_ms())
                await self._fetch_missing()
                finals = self.node.record_finality(_now_ms())
                if self.notices is not None:
                    self.notices.collect(_now_ms(), finals)
                    await deliver_due(self.node.store, self.client.session, self.webhooks,
                                      _now_ms(), timeout_s=self.settings.request_timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # a duty failing must not stop the others next round
                log.exception("duty round failed")
            await asyncio.sleep(self.settings.duty_interval_s)

    async def _fetch_missing(self) -> None:
        """Sealed lists and listed acts we lack: ask the sealing chapter first, then others."""
        peers = self.node.peer_urls(_now_ms())
        for seal_id, chapter in self.node.missing_sealed_lists():
            for slug in sorted(peers, key=lambda s: s != chapter):
                try:
                    reply = await self.client.call("GET", peers[slug], f"/federation/v1/sealed/{seal_id}")
                except PeerUnavailable:
                    continue
                self.node.receive([reply.body], origin=slug, now_ms=_now_ms())
                break
        missing = self.node.missing_acts()
        if missing:
            for slug, url in peers.items():
                try:
                    await self.fetch(slug, url, missing)
                except PeerUnavailable:
                    continue
                missing = self.node.missing_acts()
                if not missing:
                    break
