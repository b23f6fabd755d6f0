"""The node: one chapter's store, the ingest pipeline, and the views and duties over them.

`ChapterNode` is the wiring: each job lives in a module named for it, and the node answers
for all of them to the federation, the web app and the command line.

    registry   the registry as held (timeline cache), peers and their keys
    ledger     the store as the ingest pipeline reads and writes it (node.ingest)
    proposals  each proposal's report, the listing, what the whole set admits
    duties     seals and finality as time passes
    feeds      the change feed, outboxes, sealed lists in and out, what we lack
    local      the chapter's own members and decisions (subsidiarity)
    export     status and the export
    signer     what the node itself signs

Everything is synchronous and takes `now_ms` as an argument: the HTTP layer and the sync
loops are the only places that await, and the clock is read only where a caller has no time to
give (resolving a peer's key "now" for request verification).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import nacl.signing

from .. import governance as gov
from ..ingest import SignatureVerifier, drive_now, shared_verifier
from ..ingest.admission import Context as AdmissionContext
from ..ingest.admission import Outcome, admissible
from ..ingest.pipeline import ingest_steps
from ..protocol.charter import Charter
from ..protocol.events import Event
from ..protocol.times import parse_ms, wall_clock_ms
from ..store import Store
from . import export
from .duties import Duties
from .feeds import OUTBOX_BATCH_BYTES, Feeds
from .ledger import StoreLedger
from .local import ChapterLocal
from .proposals import ProposalViews
from .registry import HeldRegistry, PeerUrls
from .signer import NodeSigner

__all__ = ["OUTBOX_BATCH_BYTES", "ChapterNode", "Clock", "Outcome", "PeerUrls", "wall_clock_ms"]

# The node's one clock: milliseconds since the epoch. Injectable so a simulation can run many
# nodes on virtual time (and skew them); the running node uses the wall clock.
Clock = Callable[[], int]


class ChapterNode:
    def __init__(self, store: Store, charter: Charter, chapter: str,
                 node_key: nacl.signing.SigningKey, *, clock: Clock = wall_clock_ms) -> None:
        self.store = store
        self.clock = clock  # read only where a caller has no time to give (and by Federation)
        self.charter = charter
        self.chapter = chapter
        self.node_key = node_key
        self.signer = NodeSigner(charter.id, chapter, node_key)
        self.node_public = self.signer.public
        self.on_stored: list[Callable[[], None]] = []  # wakes the push loops
        self.on_events: list[Callable[[list[Event]], None]] = []  # what was stored
        self.on_peer_seen: list[Callable[[str], None]] = []  # a peer reached us: it is up
        self.observers: list[Any] = []  # e.g. NodeMetrics: stored(origin, n), refused_event(code), sealed()
        self._reconciled: dict[str, tuple[int, int, int]] = {}
        epoch = store.get_meta("feed_epoch")
        if epoch is None:
            epoch = secrets.token_hex(8)
            store.set_meta("feed_epoch", epoch)
        self.feed_epoch = epoch
        self._charter_ms = parse_ms(charter.created_at)
        # signatures of big batches are checked on worker processes (None: on this thread)
        self.verifier: SignatureVerifier | None = shared_verifier()
        self.held_registry = HeldRegistry(store, charter, chapter, clock)
        self.views = ProposalViews(store, charter, self.held_registry)
        self.feeds = Feeds(store, self.held_registry)
        self.duties = Duties(store, charter, self.signer, self.held_registry, self.views,
                             self._sealed)
        self.local = ChapterLocal(store, self.signer, self._admit,
                                  lambda event: self._stored([event], "self"))
        self._ledger = StoreLedger(store, self.held_registry, self.views, self.feeds,
                                   self._stored)

    # --- registry -------------------------------------------------------------------------

    def timeline(self) -> gov.Timeline:
        return self.held_registry.timeline()

    def registry(self, at_ms: int) -> gov.Registry:
        return self.held_registry.at(at_ms)

    def peer_urls(self, now_ms: int) -> PeerUrls:
        return self.held_registry.peer_urls(now_ms)

    def own_url(self) -> str:
        return self.held_registry.own_url()

    def peer_key(self, keyid: str) -> bytes | None:
        return self.held_registry.peer_key(keyid)

    def peer_slug(self, keyid: str) -> str:
        return self.held_registry.peer_slug(keyid)

    def peer_seen(self, slug: str) -> None:
        """An authenticated request from `slug` arrived: whoever backs off from it may stop."""
        for callback in self.on_peer_seen:
            callback(slug)

    # --- ingest ---------------------------------------------------------------------------

    def submit(self, raw: bytes, now_ms: int) -> tuple[Event, bool]:
        """One event from a client (a person signing through any node). Raises on refusal."""
        outcome = self.admit_clients([raw], now_ms=now_ms)[0]
        if outcome.error is not None:
            raise outcome.error
        assert outcome.event is not None  # an outcome not refused carries its event
        return outcome.event, outcome.status == "stored"

    def admit_clients(self, bodies: list[bytes], *, now_ms: int) -> list[Outcome]:
        """Client events, each judged alone, the good ones stored in one transaction
        (group commit, node.ingest.ClientGroups). Each outcome carries the refusal to raise
        (`error`) or the event (`event`)."""
        return drive_now(self.admit_clients_steps(bodies, now_ms=now_ms))

    def admit_clients_steps(self, bodies: list[bytes], *,
                            now_ms: int) -> Generator[None, None, list[Outcome]]:
        """`admit_clients`, pausing every `RECEIVE_STEP` events."""
        return (yield from self._ingest_steps(bodies, origin="client", now_ms=now_ms,
                                              from_peer=False))

    def receive(self, lines: list[bytes], *, origin: str, now_ms: int) -> list[Outcome]:
        """A peer batch: events and `sealed` lines, each judged alone; good ones stored."""
        return drive_now(self.receive_steps(lines, origin=origin, now_ms=now_ms))

    def receive_steps(self, lines: list[bytes], *, origin: str,
                      now_ms: int) -> Generator[None, None, list[Outcome]]:
        """`receive`, pausing every `RECEIVE_STEP` lines so a server can answer others meanwhile.

        Nothing is stored before the end (but for registry-relevant events, which later lines
        must see), so a batch lands in one transaction (or one per such event); the batch's
        causal order (§5) is kept across pauses, and an event another request stores meanwhile
        becomes a duplicate.
        """
        return (yield from self._ingest_steps(lines, origin=origin, now_ms=now_ms,
                                              from_peer=True))

    def _ingest_steps(self, lines: list[bytes], *, origin: str, now_ms: int,
                      from_peer: bool) -> Generator[None, None, list[Outcome]]:
        """The one ingest pipeline (node.ingest.pipeline), for a peer batch or a client group."""
        results = yield from ingest_steps(
            lines, self._ledger, self._context(now_ms, from_peer=from_peer),
            federation=self.charter.id, origin=origin, verifier=self.verifier)
        for outcome in results:
            if outcome.code:
                self._notify("refused_event", outcome.code)
        return results

    def _context(self, now_ms: int, *, from_peer: bool) -> AdmissionContext:
        return AdmissionContext(rules=self.charter.rules, charter_ms=self._charter_ms,
                                charter_created_at=self.charter.created_at, now_ms=now_ms,
                                own_chapter=None if from_peer else self.chapter)

    def _admit(self, event: Event, now_ms: int) -> None:
        """Admission of one event this node signs (a client's rules), against the store."""
        ref = gov.needs_proposal(event)
        admissible(event, proposal=self.store.get(ref) if ref is not None else None,
                   escalated=self.views.escalated(event) if event.type == "proposal" else None,
                   registry=self.registry(event.created_ms),
                   context=self._context(now_ms, from_peer=False))

    def _notify(self, what: str, *args: Any) -> None:
        for observer in self.observers:
            getattr(observer, what)(*args)

    def _stored(self, events: list[Event], origin: str) -> None:
        if not events:
            return
        for listener in self.on_events:
            listener(events)
        self._notify("stored", origin, len(events))
        for callback in self.on_stored:
            callback()

    def _sealed(self, seal: Event) -> None:
        self._stored([seal], "self")
        self._notify("sealed")

    def accept_sealed(self, sealed: Any) -> str:
        return self.feeds.accept_sealed(sealed)

    # --- proposals ------------------------------------------------------------------------

    def proposal_report(self, pid: str, now_ms: int) -> dict[str, Any]:
        return self.views.report(pid, now_ms)

    def proposals(self, now_ms: int, *, kind: str | None = None, state: str | None = None,
                  with_missing: bool = False) -> list[dict[str, Any]]:
        return self.views.listing(now_ms, kind=kind, state=state, with_missing=with_missing)

    def not_admitted(self, proposal: Event) -> str | None:
        return self.views.not_admitted(proposal)

    def counts(self, event: Event) -> bool:
        return self.views.counts(event)

    # --- duties ---------------------------------------------------------------------------

    def publish_due_seals(self, now_ms: int) -> list[Event]:
        return self.duties.publish_due_seals(now_ms)

    def record_finality(self, now_ms: int) -> list[tuple[str, dict[str, Any]]]:
        return self.duties.record_finality(now_ms)

    # --- feeds for peers ------------------------------------------------------------------

    def changes(self, after: int, limit: int) -> tuple[list[bytes], int, int]:
        return self.feeds.changes(after, limit)

    def outbox(self, peer: str, acked: int, limit: int,
               max_bytes: int = OUTBOX_BATCH_BYTES) -> tuple[list[bytes], int]:
        return self.feeds.outbox(peer, acked, limit, max_bytes)

    def sealed_line(self, seal_id: str) -> bytes | None:
        return self.feeds.sealed_line(seal_id)

    def lines_for(self, ids: Iterable[str]) -> list[bytes]:
        return self.feeds.lines_for(ids)

    def missing_sealed_lists(self) -> list[tuple[str, str]]:
        return self.feeds.missing_sealed_lists()

    def missing_acts(self, limit: int = 2000) -> list[str]:
        return self.feeds.missing_acts(limit)

    def note_reconciled(self, peer: str, rounds: int, have: int, need: int) -> None:
        self._reconciled[peer] = (rounds, have, need)

    # --- local (chapter-scope) ------------------------------------------------------------

    def move(self, url: str, now_ms: int) -> Event:
        return self.local.move(url, now_ms)

    def member_add(self, person: str, name: str, contact: str, now_ms: int) -> Event:
        return self.local.member_add(person, name, contact, now_ms)

    def member_remove(self, person: str, now_ms: int) -> Event:
        return self.local.member_remove(person, now_ms)

    def decision_add(self, title: str, text: str, now_ms: int) -> int:
        return self.local.decision_add(title, text, now_ms)

    def decision_share(self, decision_id: int, closes_ms: int, now_ms: int) -> Event:
        return self.local.decision_share(decision_id, closes_ms, now_ms)

    def local_decisions(self) -> list[dict[str, Any]]:
        return self.local.decisions()

    def local_members(self) -> list[dict[str, Any]]:
        return self.local.members()

    # --- status and export ----------------------------------------------------------------

    def status(self, now_ms: int) -> dict[str, Any]:
        return export.status(self.store, self.peer_urls(now_ms), self._reconciled, now_ms,
                             chapter=self.chapter, federation=self.charter.id,
                             node_key=self.node_public, feed_epoch=self.feed_epoch)

    def export_lines(self, now_ms: int, *, evidence_of: str | None = None) -> Iterator[bytes]:
        return export.export_lines(self.store, self.charter, self.views, self.feeds, now_ms,
                                   evidence_of=evidence_of)
