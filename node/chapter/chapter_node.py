"""The node: one ingest pipeline for clients and peers, derived views, and the node's duties.

Everything here is synchronous and takes `now_ms` as an argument: the HTTP layer and the sync
loops are the only places that await, and the clock is read only where a caller has no time to
give (resolving a peer's key "now" for request verification). Governance decisions are delegated
to `node.governance` (pure functions over events); this module fetches what they need from
the store, passes it in, and stores what they accept.

Ingest, in order (PROTOCOL §2, §4, §6): size → JSON → schema → federation → signature
(`parse_event`) → chapter (clients) → admissibility at `created_at` → deadline rules →
atomic store → derived state → fan-out (`on_stored` callbacks wake the push loops).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import Any

import nacl.signing

from .. import governance as gov
from ..federation.negentropy import Negentropy, VectorStorage
from ..ingest import SignatureVerifier, drive_now, shared_verifier
from ..ingest.admission import Context as AdmissionContext
from ..ingest.admission import Outcome, admissible
from ..ingest.pipeline import ingest_steps
from ..operations.backup import SEAL_HOLD_MS
from ..protocol.charter import Charter
from ..protocol.errors import (
    BadRequest,
    Conflict,
    NotAdmissible,
    NotFound,
    Unauthenticated,
)
from ..protocol.events import (
    Event,
    b64url,
    decode_key,
    is_event_id,
    sign_event,
)
from ..protocol.merkle import acts_root
from ..protocol.times import format_ms, parse_ms, wall_clock_ms
from ..store import Store

__all__ = ["ChapterNode", "Clock", "Outcome", "OUTBOX_BATCH_BYTES", "PeerUrls", "wall_clock_ms"]

# The node's one clock: milliseconds since the epoch. Injectable so a simulation can run many
# nodes on virtual time (and skew them); the running node uses the wall clock.
Clock = Callable[[], int]


# Negentropy frames we send (256 KiB); we parse replies up to 4 times that.
NEGENTROPY_FRAME_LIMIT = 256 * 1024
# Events stored since the Negentropy item set was built, merged into it later; past this many
# (~11 MB of tuples, a catch-up) rebuilding from the store is cheaper.
_MAX_PENDING_ITEMS = 65_536
# A peer accepts batches of up to 16 MiB (federation/api.py); stay well under it.
OUTBOX_BATCH_BYTES = 8 * 1024 * 1024


# Timelines by what they were built from (charter id, registry event ids, sealed lists): nodes
# of one process holding the same registry events share one immutable Timeline (a simulation
# of 10,000 nodes would otherwise hold 10,000 copies of a 10,000-chapter registry). Weak: a
# timeline no node holds any more is freed.
_TIMELINES: weakref.WeakValueDictionary[tuple[Any, ...], gov.Timeline] = (
    weakref.WeakValueDictionary())


def _shared_timeline(charter: Charter, events: list[Event],
                     lists: dict[str, list[str]]) -> gov.Timeline:
    key = (charter.id, frozenset(e.id for e in events),
           frozenset((seal, tuple(ids)) for seal, ids in lists.items()))
    timeline = _TIMELINES.get(key)
    if timeline is None:
        timeline = gov.Timeline.build(charter, events, lists)
        _TIMELINES[key] = timeline
    return timeline


class PeerUrls(Mapping[str, str]):
    """Slug -> URL of every chapter of a registry but our own: a view, not a copy.

    `version` is the same object for as long as the set of chapters is unchanged (the
    registry's node-key index), so a caller can tell cheaply that its peer draw still holds.
    """

    __slots__ = ("_chapters", "_own", "version")

    def __init__(self, registry: gov.Registry, own: str) -> None:
        self._chapters = registry.chapters
        self._own = own
        self.version = registry.node_keys

    def __getitem__(self, slug: str) -> str:
        if slug == self._own:
            raise KeyError(slug)
        return self._chapters[slug].url

    def __iter__(self) -> Iterator[str]:
        return (slug for slug in self._chapters if slug != self._own)

    def __len__(self) -> int:
        return len(self._chapters) - (self._own in self._chapters)


class ChapterNode:
    def __init__(self, store: Store, charter: Charter, chapter: str,
                 node_key: nacl.signing.SigningKey, *, clock: Clock = wall_clock_ms) -> None:
        self.store = store
        self.clock = clock  # read only where a caller has no time to give (and by Federation)
        self.charter = charter
        self.chapter = chapter
        self.node_key = node_key
        self.node_public = b64url(bytes(node_key.verify_key))
        self.on_stored: list[Callable[[], None]] = []
        self.on_peer_seen: list[Callable[[str], None]] = []  # a peer reached us: it is up
        self.observers: list[Any] = []  # e.g. NodeMetrics: stored(origin, n), refused_event(code), sealed()
        self._timeline: gov.Timeline | None = None
        self._timeline_key = (-1, -1)
        self._evaluated: dict[str, tuple[Any, ...]] = {}
        self._reconcile_stats: dict[str, tuple[int, int, int]] = {}
        epoch = store.get_meta("feed_epoch")
        if epoch is None:
            epoch = secrets.token_hex(8)
            store.set_meta("feed_epoch", epoch)
        self.feed_epoch = epoch
        self._items_cache: VectorStorage | None = None
        self._items_pending: list[tuple[int, bytes]] = []  # stored since the cache was built
        self._charter_ms = parse_ms(charter.created_at)
        # signatures of big batches are checked on worker processes (None: on this thread)
        self.verifier: SignatureVerifier | None = shared_verifier()

    # --- registry -------------------------------------------------------------------------

    def timeline(self) -> gov.Timeline:
        """The registry over time, rebuilt only when something it reads has changed."""
        head, sealed = self.store.max_seq(), self.store.sealed_count()
        if self._timeline is not None and (head, sealed) == self._timeline_key:
            return self._timeline
        effect_ids = self.store.effect_proposal_ids()
        if (self._timeline is not None and sealed == self._timeline_key[1]
                and not self.store.registry_changed_since(self._timeline_key[0], effect_ids)):
            self._timeline_key = (head, sealed)
            return self._timeline
        lists: dict[str, list[str]] = {}
        for pid in effect_ids:
            lists.update(self.store.sealed_for(pid))
        self._timeline = _shared_timeline(self.charter, self.store.registry_events(effect_ids),
                                          lists)
        self._timeline_key = (head, sealed)
        return self._timeline

    def registry(self, at_ms: int) -> gov.Registry:
        return self.timeline().at(at_ms)

    def peer_urls(self, now_ms: int) -> PeerUrls:
        """Every other chapter registered now, with the URL peers should use."""
        return PeerUrls(self.registry(now_ms), self.chapter)

    def own_url(self) -> str:
        entry = self.registry(self.clock()).chapter(self.chapter)
        return entry.url if entry else "http://127.0.0.1"

    def peer_key(self, keyid: str) -> bytes | None:
        """Resolve a peer request's keyid: the node key of another chapter registered now."""
        chapter = self.registry(self.clock()).chapter_by_node_key(keyid)
        if chapter is None or chapter.slug == self.chapter:
            return None
        return decode_key(keyid)

    def peer_slug(self, keyid: str) -> str:
        chapter = self.registry(self.clock()).chapter_by_node_key(keyid)
        if chapter is None:
            raise Unauthenticated("the signing key belongs to no chapter", code="unknown_key")
        return chapter.slug

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
        assert outcome.event is not None
        return outcome.event, outcome.status == "stored"

    def admit_clients(self, bodies: list[bytes], *, now_ms: int) -> list[Outcome]:
        """Client events, each judged alone, the good ones stored in one transaction.

        The batch pipeline of `receive_steps` with the client rules (own chapter, client
        deadlines): what several concurrent requests sent is admitted together (group commit,
        node.ingest.ClientGroups). Each outcome carries the refusal to raise (`error`) or the
        event (`event`)."""
        return drive_now(self.admit_clients_steps(bodies, now_ms=now_ms))

    def admit_clients_steps(self, bodies: list[bytes], *,
                            now_ms: int) -> Generator[None, None, list[Outcome]]:
        """`admit_clients`, pausing every `RECEIVE_STEP` events."""
        return (yield from self._ingest_steps(bodies, origin="client", now_ms=now_ms,
                                              from_peer=False))

    def _notify(self, what: str, *args: Any) -> None:
        for observer in self.observers:
            getattr(observer, what)(*args)

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
            lines, _NodeLedger(self), self._context(now_ms, from_peer=from_peer),
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
                   escalated=self._escalated(event) if event.type == "proposal" else None,
                   registry=self.timeline().at(event.created_ms),
                   context=self._context(now_ms, from_peer=False))

    def not_admitted(self, proposal: Event) -> str | None:
        """Why the whole set held refuses `proposal` (a refusal code), or None.

        A peer's proposal is kept even when this node could not admit it (derived
        admission, docs/protocol.md §5); such a proposal is listed, tallied and sealed by
        no one, here as anywhere else."""
        return gov.refusal(proposal, registry=self.registry(proposal.created_ms),
                           rules=self.charter.rules, escalated=self._escalated(proposal))

    def _escalated(self, proposal: Event) -> gov.Escalated | None:
        """The consent proposal `proposal` escalates, as step 3 reads it (its current
        outcome here), or None."""
        return gov.escalated_from(
            proposal, self.store.get, lambda source: self.not_admitted(source) is None,
            lambda source: self._compute(source).tally["outcome"])

    def counts(self, event: Event) -> bool:
        """Whether a held proposal or act counts: admitted by the whole set, and an act's
        proposal too (what the chapter is told of, node.notices.webhooks)."""
        if event.type == "proposal":
            return self.not_admitted(event) is None
        ref = gov.needs_proposal(event)
        if ref is not None:
            proposal = self.store.get(ref)
            if proposal is None or (proposal.type == "proposal"
                                    and self.not_admitted(proposal) is not None):
                return False
        if event.type in gov.ACT_TYPES:
            return any(True for _ in gov.admitted_acts([event], self.timeline()))
        return True

    def _stored(self, events: list[Event], origin: str) -> None:
        if not events:
            return
        if self._items_cache is not None:
            # merged into the cached item set when a reconciliation next needs it; a long
            # catch-up would hold too many: then the next one rebuilds from the store
            if len(self._items_pending) + len(events) > _MAX_PENDING_ITEMS:
                self._items_cache = None
                self._items_pending = []
            else:
                # the item Store.reconciliation_items gives for the event
                self._items_pending.extend(
                    (max(0, e.created_ms // 1000), bytes.fromhex(e.id)) for e in events)
        self._notify("stored", origin, len(events))
        for callback in self.on_stored:
            callback()

    def accept_sealed(self, sealed: Any) -> str:
        """Check a sealed id list against its seal's `acts_root` and `acts_count`; keep it."""
        if (not isinstance(sealed, dict) or set(sealed) != {"seal", "acts"}
                or not is_event_id(sealed["seal"]) or not isinstance(sealed["acts"], list)
                or not all(is_event_id(a) for a in sealed["acts"])):
            raise BadRequest('a sealed line is {"sealed": {"seal": id, "acts": [ids]}} with '
                             'lowercase hex ids', code="bad_sealed_line")
        seal = self.store.get(sealed["seal"])
        if seal is None or seal.type != "seal":
            raise NotFound(f"no seal {sealed['seal']} held here yet", code="unknown_seal")
        if not _authentic(seal, self.registry(self.clock())):
            # a peer keeps such a seal (derived admission) but it counts for nothing: keeping
            # its list would only send us fetching acts it names
            raise NotAdmissible("the seal is not signed by the node key of a chapter "
                                "registered here", code="not_chapter_node")
        root = acts_root(sealed["acts"])
        if (root != seal.body["acts_root"] or len(set(sealed["acts"])) != len(sealed["acts"])
                or len(sealed["acts"]) != seal.body["acts_count"]):
            raise NotAdmissible("the id list does not match the seal's acts_root/acts_count",
                                code="sealed_mismatch")
        self.store.put_sealed(seal.id, seal.body["proposal"], sealed["acts"])
        return seal.id

    # --- feeds for peers ------------------------------------------------------------------

    def changes(self, after: int, limit: int) -> tuple[list[bytes], int, int]:
        """(lines, last seq included, head): events in arrival order, sealed lines after seals."""
        rows = self.store.changes(after, limit)
        lines: list[bytes] = []
        for _, raw in rows:
            lines.append(raw)
            lines.extend(self._sealed_after(raw))
        last = rows[-1][0] if rows else after
        return lines, last, self.store.max_seq()

    def outbox(self, peer: str, acked: int, limit: int,
               max_bytes: int = OUTBOX_BATCH_BYTES) -> tuple[list[bytes], int]:
        """Events after `acked` for one peer (not those it sent us), at most `limit` of them and
        about `max_bytes` (always at least one); and the cursor after the last one taken."""
        # what the peer sent us comes as None: it moves the cursor, unread
        rows = self.store.outbox_for(peer, acked, limit)
        lines: list[bytes] = []
        size, cursor = 0, acked
        for seq, raw, origin in rows:
            batch = [raw, *self._sealed_after(raw)] if origin != peer else []
            grown = size + sum(len(line) + 1 for line in batch)
            if lines and grown > max_bytes:
                break  # the peer's batch limit is 16 MiB: the rest goes in the next batch
            lines.extend(batch)
            size, cursor = grown, seq
        return lines, cursor

    def _sealed_after(self, raw: bytes) -> list[bytes]:
        """Every transfer carries a seal's id list right after the seal itself."""
        if b'"type":"seal"' not in raw:
            return []
        line = self.sealed_line(hashlib.sha256(raw).hexdigest())
        return [line] if line else []

    def sealed_line(self, seal_id: str) -> bytes | None:
        acts = self.store.get_sealed(seal_id)
        if acts is None:
            return None
        return json.dumps({"sealed": {"seal": seal_id, "acts": acts}},
                          separators=(",", ":")).encode()

    def lines_for(self, ids: Iterable[str]) -> list[bytes]:
        lines: list[bytes] = []
        for event in self.store.get_many(ids):
            lines.append(event.canonical)
            if event.type == "seal":
                line = self.sealed_line(event.id)
                if line:
                    lines.append(line)
        return lines

    def reconciliation(self) -> Negentropy:
        """A Negentropy initiator over every event held (items: created_at seconds, id)."""
        return Negentropy(self._items(), frame_size_limit=NEGENTROPY_FRAME_LIMIT,
                          max_message_size=4 * NEGENTROPY_FRAME_LIMIT)

    def reconcile(self, message: bytes) -> bytes:
        """Negentropy responder: one message in, one message out (stateless between rounds)."""
        return Negentropy(self._items(), frame_size_limit=NEGENTROPY_FRAME_LIMIT
                          ).reconcile_responder(message)

    def _items(self) -> VectorStorage:
        """Every event held as a packed Negentropy item set (40 bytes per event).

        Built once from the store (sorted by SQLite, streamed into the buffer), then kept
        current by merging what was stored since: a copy of the buffer instead of a rebuild.
        """
        if self._items_cache is None:
            self._items_cache = VectorStorage.from_sorted(self.store.reconciliation_items())
            self._items_pending = []
        elif self._items_pending:
            self._items_cache = self._items_cache.with_items(self._items_pending)
            self._items_pending = []
        return self._items_cache

    def note_reconciled(self, peer: str, rounds: int, have: int, need: int) -> None:
        self._reconcile_stats[peer] = (rounds, have, need)

    # --- proposals ------------------------------------------------------------------------

    def _compute(self, proposal: Event, now_ms: int | None = None,
                 trace: bool = False) -> gov.ProposalResult:
        timeline = self.timeline()
        if self.store.seal_marker(proposal.id) == (0, 0):
            # No seal restricts the act set: the acts that can decide it are enough, however
            # many one Connector signed (hardening campaign 6, act-set amplification).
            chapters, connectors = timeline.ever()
            acts = self.store.essential_acts(
                proposal.id, close_ms=gov.closes_ms(proposal),
                globals_too=gov.kind_of(proposal) != "action",
                change_points=timeline.change_points(), chapters=chapters,
                connectors=connectors)
        else:
            acts = self.store.events_of(proposal=proposal.id, global_delegations=True)
        seals = [a for a in acts if a.type == "seal"]
        record = self.store.finality(proposal.id)
        recorded = gov.Recorded(record["final_hash"], record["amended_from"]) if record else None
        return gov.evaluate(timeline, proposal, acts, seals,
                            self.store.sealed_for(proposal.id), now_ms=now_ms,
                            recorded=recorded, trace=trace)

    def proposal_report(self, pid: str, now_ms: int) -> dict[str, Any]:
        """PROTOCOL §6, §8: the proposal, its tally, tally_hash, final, seals held and missing."""
        proposal = self.store.get(pid)
        if proposal is None or proposal.type != "proposal":
            raise NotFound(f"no proposal {pid} on this node")
        refused = self.not_admitted(proposal)
        if refused is not None:
            raise NotFound(f"proposal {pid} is held but not admitted ({refused}): it counts "
                           "for nothing", code="not_admitted")
        result = self._compute(proposal, now_ms, trace=True)
        return {"proposal": proposal.to_json(), **result.to_json()}

    def proposals(self, now_ms: int, *, kind: str | None = None, state: str | None = None,
                  with_missing: bool = False) -> list[dict[str, Any]]:
        out = []
        for proposal in self.store.events_of(types=["proposal"]):
            if kind and proposal.body["kind"] != kind:
                continue
            if self.not_admitted(proposal) is not None:
                continue
            result = self._compute(proposal, now_ms)
            if state and result.state != state:
                continue
            out.append({"id": proposal.id, "title": proposal.body["title"],
                        "kind": proposal.body["kind"], "chapter": proposal.chapter,
                        "closes_at": proposal.body.get("closes_at"), "state": result.state,
                        "outcome": result.tally["outcome"], "final": result.final,
                        "tally_hash": result.tally_hash,
                        **({"missing_seals": result.missing_seals} if with_missing else {})})
        return out

    # --- duties ---------------------------------------------------------------------------

    def publish_due_seals(self, now_ms: int) -> list[Event]:
        """At closes_at + grace, seal every closed proposal we have not sealed yet (§6)."""
        made = []
        grace = self.charter.rules.grace_ms
        hold = int(self.store.get_meta("hold_seals_until_ms") or 0)
        for proposal in self.store.events_of(types=["proposal"]):
            closes = proposal.body.get("closes_at")
            if proposal.body["kind"] == "action" or closes is None:
                continue
            if now_ms < parse_ms(closes) + grace:
                continue
            if now_ms < hold and parse_ms(closes) + grace < hold - SEAL_HOLD_MS:
                continue  # restored from a backup: our earlier seal may still come back
            if any(s.author == self.node_public for s in
                   self.store.events_of(types=["seal"], proposal=proposal.id)):
                continue
            if self.chapter not in self.registry(parse_ms(closes)).chapters:
                continue  # a chapter admitted after the close has nothing to seal
            if self.not_admitted(proposal) is not None:
                continue  # held, not admitted: nothing to seal
            made.append(self._seal(proposal, now_ms))
        return made

    def _seal(self, proposal: Event, now_ms: int) -> Event:
        timeline = self.timeline()
        # the acts this node admits: those a node refusing them at ingest would hold too
        acts = tuple(gov.admitted_acts(gov.act_set(proposal, self.store.events_of(
            proposal=proposal.id, global_delegations=True)), timeline))
        ids = sorted(a.id for a in acts)
        tally = gov.tally(proposal, acts, timeline, self.charter.rules).to_json()
        seal = sign_event(
            federation=self.charter.id, type="seal", chapter=self.chapter,
            created_at=format_ms(now_ms),
            body={"proposal": proposal.id, "acts_root": acts_root(ids), "acts_count": len(ids),
                  "tally": tally, "tally_hash": gov.tally_hash(tally)},
            signing_key=self.node_key)
        self.store.insert_own_seal(seal, proposal.id, ids, now_ms)
        self._stored([seal], "self")
        self._notify("sealed")
        return seal

    def record_finality(self, now_ms: int) -> list[tuple[str, dict[str, Any]]]:
        """Store what the lifecycle asks: the first final hash, and any later amendment.

        Returns (proposal id, report) for each proposal recorded now. A proposal is tallied
        again only when something that could change its answer happened: a new event it reads
        or a sealed list (not yet final), the seal timeout passing, or new seals (final: only
        seals can amend it). So a flood of acts on one proposal costs one tally per duty round
        that saw new ones, not one per round forever.
        """
        recorded = []
        rules = self.charter.rules
        for proposal in self.store.events_of(types=["proposal"]):
            closes = proposal.body.get("closes_at")
            if closes is not None and now_ms < parse_ms(closes):
                continue  # still open: it cannot be final yet
            seals = self.store.seal_marker(proposal.id)
            if self.store.finality(proposal.id) is not None:
                marker: tuple[Any, ...] = ("final", *seals)
            else:
                timed_out = closes is not None and now_ms > (
                    parse_ms(closes) + rules.grace_ms + rules.seal_timeout_ms)
                marker = ("open", self.store.proposal_head(proposal.id), *seals, timed_out)
            if self._evaluated.get(proposal.id) == marker:
                continue
            if self.not_admitted(proposal) is not None:
                continue  # judged again each round: the registry may come to admit it
            result = self._compute(proposal, now_ms)
            if result.record is not None:
                self.store.record_final(proposal.id, result.record.final_hash, now_ms,
                                        amended_from=result.record.amended_from)
                recorded.append((proposal.id, {
                    "state": result.state, "tally": result.tally,
                    "tally_hash": result.tally_hash, "amended_from": result.amended_from}))
            if result.record is not None:
                marker = ("final", *seals)
            self._evaluated[proposal.id] = marker
        return recorded

    def missing_sealed_lists(self) -> list[tuple[str, str]]:
        """(seal id, sealing chapter) for every authentic seal held whose id list we lack."""
        have = set(self.store.all_sealed())
        registry = self.registry(self.clock())
        return [(s.id, s.chapter) for s in self.store.events_of(types=["seal"])
                if s.id not in have and _authentic(s, registry)]

    def missing_acts(self, limit: int = 2000) -> list[str]:
        """Act ids listed by sealed lists we hold but not yet the acts themselves."""
        listed: set[str] = set()
        for acts in self.store.all_sealed().values():
            listed.update(acts)
        if not listed:
            return []
        return sorted(listed - self.store.known(listed))[:limit]

    # --- local (chapter-scope) ------------------------------------------------------------

    def _as_node(self, type_: str, body: dict[str, Any], now_ms: int) -> Event:
        """Sign `type_` with this chapter's node key, admit and store it: it goes to every peer."""
        event = sign_event(federation=self.charter.id, type=type_, chapter=self.chapter,
                           created_at=format_ms(now_ms), body=body, signing_key=self.node_key)
        self._admit(event, now_ms)
        if self.store.insert_events([event], origin="self", received_ms=now_ms)[0]:
            self._stored([event], "self")
        return event

    def _vouch(self, person: str, active: bool, now_ms: int) -> Event:
        return self._as_node("member", {"key": person, "active": active}, now_ms)

    def move(self, url: str, now_ms: int) -> Event:
        """PROTOCOL §4 `chapter_url`: this chapter's node answers at `url` from now on."""
        return self._as_node("chapter_url", {"url": url}, now_ms)

    def member_add(self, person: str, name: str, contact: str, now_ms: int) -> Event:
        decode_key(person, what="member key")
        self.store.add_member(person, name, contact, now_ms)
        return self._vouch(person, True, now_ms)

    def member_remove(self, person: str, now_ms: int) -> Event:
        if not self.store.deactivate_member(person):
            raise NotFound(f"{person} is not a member of {self.chapter}", code="unknown_member")
        return self._vouch(person, False, now_ms)

    def decision_add(self, title: str, text: str, now_ms: int) -> int:
        """Record a chapter-scope decision: it stays on this node (subsidiarity)."""
        return self.store.add_decision(title, text, now_ms)

    def decision_share(self, decision_id: int, closes_ms: int, now_ms: int) -> Event:
        """Ask the federation for feedback on a local decision: a `feedback_request` carries
        its title and text, nothing else of the chapter's (comments only, no veto)."""
        row = self.store.local_decision(decision_id)
        if row is None:
            raise NotFound(f"no local decision {decision_id}", code="unknown_decision")
        if row[2]:
            raise Conflict(f"decision {decision_id} was already shared as {row[2]}",
                           code="already_shared")
        event = sign_event(federation=self.charter.id, type="feedback_request",
                           chapter=self.chapter, created_at=format_ms(now_ms),
                           body={"title": row[0], "text": row[1], "closes_at": format_ms(closes_ms)},
                           signing_key=self.node_key)
        self._admit(event, now_ms)
        self.store.share_decision(decision_id, event, now_ms)
        self._stored([event], "self")
        return event

    def local_decisions(self) -> list[dict[str, Any]]:
        return self.store.local_decisions()

    def local_members(self) -> list[dict[str, Any]]:
        return self.store.local_members()

    # --- status and export ----------------------------------------------------------------

    def status(self, now_ms: int) -> dict[str, Any]:
        head = self.store.max_seq()
        peers = []
        for slug, url in sorted(self.peer_urls(now_ms).items()):
            p = self.store.peer(slug)
            outbox = self.store.outbox_size(slug, p.push_acked)
            peers.append({
                "slug": slug, "url": url, "outbox": outbox, "push_acked": p.push_acked,
                "pull_checkpoint": p.pull_checkpoint,
                "last_push": format_ms(p.last_push_ms) if p.last_push_ms else None,
                "last_pull": format_ms(p.last_pull_ms) if p.last_pull_ms else None,
                "clock_skew_ms": p.clock_skew_ms, "failures": p.failures,
                "last_error": p.last_error,
                "reconciliation": dict(zip(("rounds", "have", "need"),
                                           self._reconcile_stats.get(slug, (0, 0, 0)))),
            })
        return {"chapter": self.chapter, "federation": self.charter.id,
                "node_key": self.node_public, "now": format_ms(now_ms), "events": self.store.count(),
                "head": head, "feed_epoch": self.feed_epoch, "peers": peers}

    def export_lines(self, now_ms: int, *, evidence_of: str | None = None) -> Iterator[bytes]:
        """PROTOCOL §7: charter, events (late acts left out), then one sealed line per seal.

        evidence_of: only the lines that decide that proposal, so a browser can recompute it
        without downloading the whole log: the registry's events (members, node moves, every
        proposal with an effect, with its acts and seals), the proposal, the consent proposal
        it escalates, their acts, the global delegations and their seals. Comments, feedback
        requests and other proposals' acts are left out; nothing else changes.
        """
        proposals = list(self.store.events_of(types=["proposal"]))
        wanted: set[str] | None = None
        if evidence_of is not None:
            target = next((p for p in proposals if p.id == evidence_of), None)
            if target is None:
                raise NotFound(f"no proposal {evidence_of} on this node", code="unknown_proposal")
            wanted = {p.id for p in proposals if p.body.get("effect") is not None}
            wanted.add(target.id)
            if target.body.get("escalated_from"):
                wanted.add(target.body["escalated_from"])
        yield json.dumps({"charter": self.charter.to_json()}, ensure_ascii=False,
                         separators=(",", ":")).encode()
        late: set[str] = set()
        for proposal in proposals:
            if wanted is None or proposal.id in wanted:
                late.update(self._compute(proposal, now_ms).late_acts)
        seals: list[str] = []
        for event in self.store.iter_all():
            if event.id in late or (wanted is not None and not _decides(event, wanted)):
                continue
            if event.type == "seal":
                seals.append(event.id)
            yield event.canonical
        for seal_id in seals:
            line = self.sealed_line(seal_id)
            if line:
                yield line


def _decides(event: Event, proposals: set[str]) -> bool:
    """Whether `event` is evidence for one of `proposals` (or for the registry they read)."""
    if event.type in ("member", "chapter_url"):
        return True
    if event.type == "proposal":
        return event.id in proposals
    if event.type in ("comment", "feedback_request"):
        return False
    target = event.body.get("proposal")
    return target in proposals or (event.type == "delegation" and target is None)


def _authentic(seal: Event, registry: gov.Registry) -> bool:
    """Signed by the node key of the chapter it names (chapters stay, their keys never
    change, so the registry now answers for any instant)."""
    chapter = registry.chapter(seal.chapter)
    return chapter is not None and chapter.key == seal.author


class _NodeLedger:
    """The node's store as the ingest pipeline reads and writes it (node.ingest.pipeline)."""

    __slots__ = ("node",)

    def __init__(self, node: ChapterNode) -> None:
        self.node = node

    def head(self) -> int:
        return self.node.store.max_seq()

    def held(self, ids: list[str]) -> set[str]:
        return self.node.store.known(ids)

    def proposals(self, ids: Iterable[str]) -> dict[str, Event]:
        return {ev.id: ev for ev in self.node.store.get_many(ids)}

    def timeline(self) -> gov.Timeline:
        return self.node.timeline()

    def effect_ids(self) -> set[str]:
        return self.node.store.effect_proposal_ids()

    def escalated(self, proposal: Event) -> gov.Escalated | None:
        return self.node._escalated(proposal)

    def commit(self, events: list[Event], origin: str, now_ms: int,
               confirm: Callable[[], bool]) -> list[bool] | None:
        fresh = self.node.store.insert_events(events, origin=origin, received_ms=now_ms,
                                              confirm=confirm)
        if fresh is not None:
            self.node._stored([e for e, new in zip(events, fresh) if new], origin)
        return fresh

    def accept_sealed(self, value: Any) -> str:
        return self.node.accept_sealed(value)
