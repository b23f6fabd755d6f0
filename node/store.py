"""The embedded store: SQLite in WAL mode through sqlite-utils.

Federation events are kept in canonical form, keyed by id, with the columns queries need and
a local arrival sequence (`seq`) that feeds the changes feed and the push cursors. Chapter-local
data (members' names and contacts, local decisions) lives in `local_*` tables that no
federation code reads: subsidiarity is a property of the schema, not of good intentions.

Every multi-row write is one transaction (`Database.atomic`): a batch lands whole or not at all,
also across `kill -9` (WAL + synchronous=FULL).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlite_utils import Database

from .protocol.errors import StoreError
from .protocol.events import ACT_TYPES, Event, event_from_stored
from .protocol.times import wall_clock_ms

__all__ = ["Store", "MIGRATIONS", "PeerState", "open_store"]


# --- migrations -------------------------------------------------------------------------

Migration = Callable[[Database], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register a migration; its name is its identity forever (never rename one)."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_events(db: Database) -> None:
    db["events"].create(
        {
            "seq": int, "id": str, "type": str, "author": str, "chapter": str,
            "proposal": str, "created_at": str, "created_ms": int, "received_ms": int,
            "origin": str, "effect": int, "canonical": bytes,
        },
        pk="seq",
        not_null=["id", "type", "author", "chapter", "created_at", "created_ms",
                  "received_ms", "origin", "canonical"],
    )
    db["events"].create_index(["id"], unique=True)
    db["events"].create_index(["proposal", "type"])
    db["events"].create_index(["type", "created_at"])
    db["sealed"].create({"seal": str, "proposal": str, "acts": str}, pk="seal")
    db["sealed"].create_index(["proposal"])


@migration
def m002_node(db: Database) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["peers"].create(
        {
            "slug": str, "pull_checkpoint": int, "push_acked": int, "failures": int,
            "next_attempt_ms": int, "last_push_ms": int, "last_pull_ms": int,
            "last_error": str, "clock_skew_ms": int,
        },
        pk="slug",
        defaults={"pull_checkpoint": 0, "push_acked": 0, "failures": 0, "next_attempt_ms": 0},
    )
    db["finality"].create(
        {"proposal": str, "final_hash": str, "final_ms": int, "amended_from": str},
        pk="proposal",
    )


@migration
def m003_local(db: Database) -> None:
    # Chapter-local: never read by node/federation/.
    db["local_members"].create(
        {"key": str, "name": str, "contact": str, "active": int, "added_ms": int}, pk="key"
    )
    db["local_decisions"].create(
        {"id": int, "title": str, "text": str, "decided_ms": int, "shared_event": str}, pk="id"
    )


@migration
def m004_notices(db: Database) -> None:
    # Notices for the chapter's own tools (webhooks): each made once, delivered per target.
    db["notices"].create({"key": str, "kind": str, "proposal": str, "payload": str,
                          "created_ms": int}, pk="key")
    db["deliveries"].create(
        {"id": int, "target": str, "notice": str, "attempts": int, "next_attempt_ms": int,
         "delivered_ms": int, "last_error": str},
        pk="id", defaults={"attempts": 0, "next_attempt_ms": 0})
    db["deliveries"].create_index(["target", "notice"], unique=True)
    db["deliveries"].create_index(["delivered_ms", "next_attempt_ms"])


@migration
def m005_id_prefix_index(db: Database) -> None:
    # Ids are random: a unique index on the whole 64-character id had one leaf page per ~55
    # ids, and a 500-event batch dirtied ~440 of them, each written to the WAL at commit;
    # past ~500,000 events it no longer fit the page cache either. An index on the first 12
    # characters has ~3.5 x fewer pages: a batch dirties fewer, and the cache holds it to
    # millions of events (store cost per event at 1,000,000 events: 35 -> 27 µs, bench
    # notes). It is not unique: every look-up also compares the whole id (`_BY_ID`), and an
    # insert checks for the id itself (`_INSERT_EVENT`), so prefixes that collide, by chance
    # or made on purpose, only cost a second row to compare. The expression is `_ID_PREFIX`,
    # which every look-up names: changing it needs a new migration.
    db.execute("create index if not exists events_id_prefix on events(substr(id, 1, 12))")
    db.execute("drop index if exists idx_events_id")


@migration
def m006_mail(db: Database) -> None:
    # Chapter-local, like local_members: how each person wants to be told by email. Never read
    # by node/federation/. A delivery the mail server refuses for good is marked, not retried.
    db["local_mail"].create({"key": str, "mode": str, "lang": str, "updated_ms": int,
                             "digest_ms": int}, pk="key")
    db.execute("alter table deliveries add column failed_ms integer")


# created_at is RFC 3339 with milliseconds, always this wide: created_at || id sorts as
# (created_at, id), the order of PROTOCOL §5, and the id is what follows it.
_AT_WIDTH = len("2026-11-24T10:00:00.000Z")

# The one indexed expression of the id, and the only ways events are found by id: SQLite
# uses the index when a query names this expression. `+id`, not `id`: SQLite's constant
# propagation would turn `id = ?1` into `substr(?1, ...) = substr(?1, ...)` and scan the
# table (tests/test_store.py reads the query plans).
_ID_PREFIX = "substr(id, 1, 12)"
_BY_ID = f"{_ID_PREFIX} = substr(?1, 1, 12) and +id = ?1"


def _ids_in(ids: Sequence[str]) -> tuple[str, list[str]]:
    """A where-clause matching any of `ids` through the prefix index, and its arguments
    (`+id` as in `_BY_ID`: SQLite reads `id in (?)` as `id = ?`)."""
    marks = ",".join("?" * len(ids))
    return f"({_ID_PREFIX} in ({marks}) and +id in ({marks}))", [i[:12] for i in ids] + list(ids)


def _registry_filter(effect_ids: set[str]) -> tuple[str, list[str]]:
    """The events the registry timeline reads (`Store.registry_events`), as a where-clause
    and its arguments: member and chapter_url events, global delegations, effect proposals,
    and the acts and seals of `effect_ids` (and those proposals themselves)."""
    where = ("type in ('member', 'chapter_url') or (type = 'delegation' and proposal is null) "
             "or effect = 1")
    ids = sorted(effect_ids)
    if not ids:
        return where, []
    by_id, args = _ids_in(ids)
    return f"{where} or proposal in ({','.join('?' * len(ids))}) or {by_id}", ids + args


# Inserts the row unless its id is held: the check runs inside the insert statement, which
# holds the write lock, so two connections cannot both insert one id.
_INSERT_EVENT = ("insert into events (id, type, author, chapter, proposal, created_at, "
                 "created_ms, received_ms, origin, effect, canonical) "
                 "select ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 "
                 f"where not exists (select 1 from events where {_BY_ID})")


class _SomeHeld(Exception):
    """A batch insert met an id already held (internal: triggers the row-by-row redo)."""


class _Unconfirmed(Exception):
    """`insert_events`' confirm said no (internal: rolls the transaction back)."""


@dataclass(frozen=True, slots=True)
class PeerState:
    slug: str
    pull_checkpoint: int = 0
    push_acked: int = 0
    failures: int = 0
    next_attempt_ms: int = 0
    last_push_ms: int | None = None
    last_pull_ms: int | None = None
    last_error: str | None = None
    clock_skew_ms: int | None = None


class Store:
    """One node's database. Not thread-safe: one Store per thread or per event loop."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- lifecycle --------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending migrations, each with its bookkeeping row in one transaction."""
        if "_migrations" not in self.db.table_names():
            with self.db.atomic():
                self.db["_migrations"].create({"name": str, "applied_ms": int}, pk="name")
        done = {r["name"] for r in self.db.query("select name from _migrations")}
        applied = []
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            with self.db.atomic():
                fn(self.db)
                self.db.execute(
                    "insert into _migrations (name, applied_ms) values (?, ?)",
                    [name, wall_clock_ms()],
                )
            applied.append(name)
        return applied

    def pending_migrations(self) -> list[str]:
        if "_migrations" not in self.db.table_names():
            return [name for name, _ in MIGRATIONS]
        done = {r["name"] for r in self.db.query("select name from _migrations")}
        return [name for name, _ in MIGRATIONS if name not in done]

    def close(self) -> None:
        self.db.close()

    def quick_check(self) -> str:
        """SQLite's `pragma quick_check`: "ok", or the first damage it found (`doctor`)."""
        return self.db.execute("pragma quick_check").fetchone()[0]

    def skip_fsync(self) -> None:
        """Commit without waiting for the disk: for simulations only, where a crash is
        simulated, not real, and durability is not what they test."""
        self.db.execute("PRAGMA synchronous=OFF")

    # --- meta -------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("select value from meta where key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db.atomic():
            self.db.execute("insert or replace into meta (key, value) values (?, ?)", [key, value])

    # --- federation events ------------------------------------------------------------

    def insert_events(
        self, events: Sequence[Event], *, origin: str, received_ms: int,
        confirm: Callable[[], bool] | None = None,
    ) -> list[bool] | None:
        """Store a batch atomically; returns, per event, whether it was new (duplicates no-op).

        One `executemany` in one transaction; only when some row was already held (the
        inserted count falls short) is the batch redone row by row to say which.
        `confirm` is asked once the rows are written, just before the commit: if it says
        False, the transaction is rolled back and None returned (ingest writes rows while
        the last signatures are still being verified)."""
        rows = [(ev.id, ev.type, ev.author, ev.chapter, ev.proposal, ev.created_at,
                 ev.created_ms, received_ms, origin,
                 int(ev.type == "proposal" and "effect" in ev.body), ev.canonical)
                for ev in events]
        conn = self.db.conn

        def all_new() -> list[bool]:
            if conn.executemany(_INSERT_EVENT, rows).rowcount != len(rows):
                raise _SomeHeld
            return [True] * len(rows)

        def attempt(write: Callable[[], list[bool]]) -> list[bool] | None:
            try:
                with self.db.atomic():
                    fresh = write()
                    if confirm is not None and not confirm():
                        raise _Unconfirmed
                return fresh
            except _Unconfirmed:
                return None

        try:
            return attempt(all_new)
        except _SomeHeld:  # rolled back: redo it row by row
            return attempt(lambda: [conn.execute(_INSERT_EVENT, row).rowcount == 1
                                    for row in rows])

    def has(self, event_id: str) -> bool:
        return self.db.conn.execute(
            f"select 1 from events where {_BY_ID}", (event_id,)).fetchone() is not None

    def _by_ids(self, columns: str, ids: Iterable[str]) -> Iterator[Any]:
        """`columns` of the events held among `ids`, 500 ids a query."""
        ids = list(ids)
        for i in range(0, len(ids), 500):
            where, args = _ids_in(ids[i : i + 500])
            yield from self.db.conn.execute(f"select {columns} from events where {where}", args)

    def ids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        """Event ids starting with `prefix` (lowercase hex), at most `limit`, through the id
        prefix index (a range over its first 12 characters)."""
        head = prefix[:12]
        upper = head[:-1] + chr(ord(head[-1]) + 1)  # the next prefix of the same length
        rows = self.db.conn.execute(
            f"select id from events where {_ID_PREFIX} >= ? and {_ID_PREFIX} < ? "
            "and id like ? order by id limit ?", (head, upper, prefix + "%", limit))
        return [r[0] for r in rows]

    def all_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("select id from events")}

    def arrived_between(self, after_seq: int, upto_seq: int) -> int:
        """How many events arrived with a seq in (`after_seq`, `upto_seq`]."""
        return self.db.execute("select count(*) from events where seq > ? and seq <= ?",
                               [after_seq, upto_seq]).fetchone()[0]

    def outbox_for(self, peer: str, after_seq: int, limit: int) -> list[tuple[Any, ...]]:
        """(seq, canonical, origin) in arrival order after `after_seq`, canonical None for the
        events `peer` sent us: they move its cursor without being read or sent back."""
        return self.db.execute(
            "select seq, case when origin = ? then null else canonical end, origin from events "
            "where seq > ? order by seq limit ?", [peer, after_seq, limit]).fetchall()

    def outbox_size(self, peer: str, after_seq: int) -> int:
        """How many events after `after_seq` still wait to go to `peer` (not those it sent)."""
        return self.db.execute(
            "select count(*) from events where seq > ? and origin != ?",
            [after_seq, peer]).fetchone()[0]

    def noticeable_after(self, seq: int) -> list[tuple[Any, ...]]:
        """(seq, canonical, created_ms) of the proposals, vetoes and veto withdrawals that
        arrived after `seq`, in arrival order: what may become a notice to the chapter."""
        return self.db.execute(
            "select seq, canonical, created_ms from events where seq > ? and type in "
            "('proposal', 'veto', 'veto_withdraw') order by seq", [seq]).fetchall()

    def raw_proposals(self) -> list[tuple[Any, ...]]:
        """(canonical, created_ms) of every proposal, unordered and unparsed: the closing-soon
        scan reads one field of most and parses only the few that close soon."""
        return self.db.execute(
            "select canonical, created_ms from events where type = 'proposal'").fetchall()

    # --- members and decisions (chapter-local) --------------------------------------------

    def add_member(self, key: str, name: str, contact: str, now_ms: int) -> None:
        """Record (or re-activate, with new details) a member of this chapter."""
        with self.db.atomic():
            self.db.execute(
                "insert or replace into local_members (key, name, contact, active, added_ms) "
                "values (?, ?, ?, 1, ?)", [key, name, contact, now_ms])

    def deactivate_member(self, key: str) -> bool:
        """Mark a member inactive (the row stays); False when the key is no member here."""
        with self.db.atomic():
            cur = self.db.execute("update local_members set active = 0 where key = ?", [key])
        return cur.rowcount != 0

    def local_members(self) -> list[dict[str, Any]]:
        return list(self.db.query(
            "select key, name, contact, active from local_members order by name"))

    def add_decision(self, title: str, text: str, now_ms: int) -> int:
        """Record a chapter-scope decision; returns its local id."""
        with self.db.atomic():
            cur = self.db.execute(
                "insert into local_decisions (title, text, decided_ms) values (?, ?, ?)",
                [title, text, now_ms])
        return int(cur.lastrowid)

    def local_decision(self, decision_id: int) -> tuple[Any, ...] | None:
        """(title, text, shared_event) of one local decision, or None."""
        return self.db.execute("select title, text, shared_event from local_decisions "
                               "where id = ?", [decision_id]).fetchone()

    def share_decision(self, decision_id: int, request: Event, now_ms: int) -> None:
        """Store our `feedback_request` and mark the decision shared as it, in one
        transaction: the decision is marked shared exactly when its request is stored."""
        with self.db.atomic():
            self.insert_events([request], origin="self", received_ms=now_ms)
            self.db.execute("update local_decisions set shared_event = ? where id = ?",
                            [request.id, decision_id])

    def local_decisions(self) -> list[dict[str, Any]]:
        return list(self.db.query(
            "select id, title, text, decided_ms, shared_event from local_decisions order by id"))

    # --- mail (chapter-local) -------------------------------------------------------------

    def mail_recipients(self) -> list[dict[str, Any]]:
        """Active members with an email address, and how they want to be told."""
        return [dict(r) for r in self.db.query(
            "select m.key, m.contact as address, coalesce(p.mode, 'each') as mode, "
            "coalesce(p.lang, 'en') as lang, coalesce(p.digest_ms, p.updated_ms, 0) as digest_ms "
            "from local_members m "
            "left join local_mail p on p.key = m.key "
            "where m.active = 1 and m.contact like '%_@_%'")]

    def mail_recipient(self, key: str) -> dict[str, Any] | None:
        return next((r for r in self.mail_recipients() if r["key"] == key), None)

    def set_mail(self, key: str, *, mode: str | None = None, lang: str | None = None,
                 now_ms: int) -> None:
        with self.db.atomic():
            row = self.db.execute("select mode, lang from local_mail where key = ?",
                                  [key]).fetchone() or ("each", "en")
            self.db.execute("insert into local_mail (key, mode, lang, updated_ms) values "
                            "(?, ?, ?, ?) on conflict(key) do update set mode = excluded.mode, "
                            "lang = excluded.lang, updated_ms = excluded.updated_ms",
                            [key, mode or row[0], lang or row[1], now_ms])

    def mail_updated_ms(self, key: str) -> int | None:
        """When `key`'s mail settings were last applied (a signed statement's created_at), or
        None if never: an older statement must not undo a newer one."""
        row = self.db.execute("select updated_ms from local_mail where key = ?", [key]).fetchone()
        return None if row is None else row[0]

    def digest_sent(self, key: str, now_ms: int) -> None:
        with self.db.atomic():
            self.db.execute("update local_mail set digest_ms = ? where key = ?", [now_ms, key])

    def set_contact(self, key: str, contact: str) -> bool:
        """Change a member's address (local data); False when the key is no member here."""
        with self.db.atomic():
            cur = self.db.execute("update local_members set contact = ? where key = ?",
                                  [contact, key])
        return cur.rowcount == 1

    def notice_report(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest notices, each with its deliveries by channel and state, and the
        deliveries that failed (for the chapter's admin: `chapter-node notices`)."""
        out = []
        for key, kind, proposal, payload, created_ms in self.db.execute(
                "select key, kind, proposal, payload, created_ms from notices "
                "order by created_ms desc, key limit ?", [limit]).fetchall():
            rows = self.db.execute(
                "select target, delivered_ms, failed_ms, attempts, last_error from deliveries "
                "where notice = ?", [key]).fetchall()
            counts = {"mail": {"sent": 0, "waiting": 0, "failed": 0},
                      "webhook": {"sent": 0, "waiting": 0, "failed": 0}}
            failures = []
            for target, delivered, failed, attempts, error in rows:
                channel = "mail" if target.startswith("mail:") else "webhook"
                state = "sent" if delivered else "failed" if failed else "waiting"
                counts[channel][state] += 1
                if state != "sent" and error:
                    failures.append({"target": target, "state": state, "attempts": attempts,
                                     "error": error})
            title = json.loads(payload).get("proposal", {}).get("title", "")
            out.append({"notice": key, "kind": kind, "proposal": proposal, "title": title,
                        "created_ms": created_ms, **counts, "problems": failures})
        return out

    # --- notices and their deliveries (chapter-local) -------------------------------------

    def queue_notice(self, key: str, kind: str, proposal: str, payload: str, now_ms: int,
                     targets: Callable[[], Iterable[str]]) -> bool:
        """Store a notice and one delivery per target, in one transaction; False when a notice
        with `key` was already made (then nothing is queued). `targets` is asked only for a
        new notice, inside the transaction."""
        with self.db.atomic():
            cur = self.db.execute(
                "insert or ignore into notices (key, kind, proposal, payload, created_ms) "
                "values (?, ?, ?, ?, ?)", [key, kind, proposal, payload, now_ms])
            if cur.rowcount != 1:
                return False
            for target in targets():
                self.db.execute(
                    "insert or ignore into deliveries (target, notice, next_attempt_ms) "
                    "values (?, ?, ?)", [target, key, now_ms])
        return True

    def due_webhook_deliveries(self, now_ms: int, limit: int) -> list[tuple[Any, ...]]:
        """(id, target url, attempts, kind, payload) of the webhook deliveries due, oldest
        first."""
        return self.db.execute(
            "select d.id, d.target, d.attempts, n.kind, n.payload from deliveries d "
            "join notices n on n.key = d.notice where d.target not like 'mail:%' and "
            "d.target not like 'digest:%' and "
            "d.delivered_ms is null and "
            "d.next_attempt_ms <= ? order by d.id limit ?", [now_ms, limit]).fetchall()

    def due_mail_deliveries(self, now_ms: int, limit: int) -> list[tuple[Any, ...]]:
        """(id, 'mail:<key>', attempts, notice key, kind, payload) of the mails due one by
        one, oldest first."""
        return self.db.execute(
            "select d.id, d.target, d.attempts, n.key, n.kind, n.payload from deliveries d "
            "join notices n on n.key = d.notice where d.target like 'mail:%' and "
            "d.delivered_ms is null and d.failed_ms is null and d.next_attempt_ms <= ? "
            "order by d.id limit ?", [now_ms, limit]).fetchall()

    def due_digest_deliveries(self, now_ms: int) -> list[tuple[Any, ...]]:
        """(id, 'digest:<key>', attempts, notice key, kind, payload) of every notice waiting
        for a daily digest, oldest first (all of them: a digest carries a whole day)."""
        return self.db.execute(
            "select d.id, d.target, d.attempts, n.key, n.kind, n.payload from deliveries d "
            "join notices n on n.key = d.notice where d.target like 'digest:%' and "
            "d.delivered_ms is null and d.failed_ms is null and d.next_attempt_ms <= ? "
            "order by d.id", [now_ms]).fetchall()

    def webhook_delivered(self, delivery: int, now_ms: int, attempts: int) -> None:
        """A webhook answered 2xx; `attempts` counts this one (its last error is left)."""
        with self.db.atomic():
            self.db.execute("update deliveries set delivered_ms = ?, attempts = ? "
                            "where id = ?", [now_ms, attempts, delivery])

    def mark_delivery(self, delivery: int, outcome: Literal["delivered", "failed"],
                      now_ms: int, attempts: int, error: str | None) -> None:
        """A mail delivery ends: sent, or failed for good (never retried: shown in
        `chapter-node notices`). `attempts` counts this one."""
        column = {"delivered": "delivered_ms", "failed": "failed_ms"}[outcome]
        with self.db.atomic():
            self.db.execute(f"update deliveries set {column} = ?, attempts = ?, last_error = ? "
                            "where id = ?", [now_ms, attempts, error, delivery])

    def digest_delivered(self, key: str, deliveries: Iterable[tuple[int, int]],
                         now_ms: int) -> None:
        """A digest went out: its (delivery id, attempts with this one) all marked sent and
        the person's digest clock reset, in one transaction (no notice is sent twice)."""
        with self.db.atomic():
            for delivery, attempts in deliveries:
                self.mark_delivery(delivery, "delivered", now_ms, attempts, None)
            self.digest_sent(key, now_ms)

    def retry_delivery(self, delivery: int, attempts: int, next_attempt_ms: int,
                       error: str | None) -> None:
        """A delivery failed for now: try again at `next_attempt_ms`; `attempts` counts this
        one."""
        with self.db.atomic():
            self.db.execute("update deliveries set attempts = ?, next_attempt_ms = ?, "
                            "last_error = ? where id = ?",
                            [attempts, next_attempt_ms, error, delivery])

    def has_acted(self, author: str, proposal: str) -> bool:
        """Whether `author` signed any act or comment on `proposal` (the (proposal, type) index)."""
        return self.db.execute(
            "select 1 from events where proposal = ? and type in ('endorse', 'veto', "
            "'veto_withdraw', 'vote', 'delegation', 'comment') and author = ? limit 1",
            [proposal, author]).fetchone() is not None

    def known(self, ids: Iterable[str]) -> set[str]:
        return {r[0] for r in self._by_ids("id", ids)}

    def seqs(self, ids: Iterable[str]) -> dict[str, int]:
        """The arrival seq of each of `ids` held."""
        return dict(self._by_ids("id, seq", ids))

    def get(self, event_id: str) -> Event | None:
        row = self.db.conn.execute(
            f"select canonical, created_ms from events where {_BY_ID}", (event_id,)).fetchone()
        return event_from_stored(row[0], row[1]) if row else None

    def get_many(self, ids: Iterable[str]) -> list[Event]:
        return [event_from_stored(r[0], r[1]) for r in self._by_ids("canonical, created_ms", ids)]

    def events_of(self, *, types: Iterable[str] | None = None, proposal: str | None = None,
                  global_delegations: bool = False) -> list[Event]:
        """Events filtered by type and/or `body.proposal`, in (created_at, id) order."""
        where, args = [], []
        if types is not None:
            types = list(types)
            where.append(f"type in ({','.join('?' * len(types))})")
            args.extend(types)
        if proposal is not None:
            if global_delegations:
                where.append("(proposal = ? or (type = 'delegation' and proposal is null))")
            else:
                where.append("proposal = ?")
            args.append(proposal)
        sql = "select canonical, created_ms from events"
        if where:
            sql += " where " + " and ".join(where)
        sql += " order by created_at, id"
        return [event_from_stored(r[0], r[1]) for r in self.db.execute(sql, args)]

    def events_by(self, author: str, types: Iterable[str]) -> list[Event]:
        """One author's events of the given types, in (created_at, id) order. No index reads
        authors (one would cost every ingest a write): the types index narrows the scan."""
        types = list(types)
        sql = (f"select canonical, created_ms from events where type in "
               f"({','.join('?' * len(types))}) and author = ? order by created_at, id")
        return [event_from_stored(r[0], r[1]) for r in self.db.execute(sql, [*types, author])]

    def essential_acts(self, proposal: str, *, close_ms: int | None, globals_too: bool,
                       change_points: Sequence[int], chapters: Iterable[str],
                       connectors: Iterable[str], small: int = 500) -> list[Event]:
        """The acts of `proposal` that can decide its tally when no seal restricts its act
        set, in (created_at, id) order: for each author, act type, scope (this proposal or
        global), chapter, delegation target and registry segment, its earliest and its latest
        act.

        Why: one Connector may sign any number of acts on a proposal; every rule reads only
        an author's first act of a kind (an endorsement counts once, from the first one made
        as a Connector) or latest one (latest vote, veto/withdrawal, delegation per scope),
        so the rest need not leave SQLite. `change_points` (Timeline.change_points) split the
        groups where the set of Connectors changes. Whether an act is admitted at all (a peer
        keeps acts it cannot admit, governance.admissibility) depends on its author, chapter
        and delegation target in that segment, hence the finer groups; `chapters` and
        `connectors` (every chapter and Connector the timeline ever has) drop the acts no
        registry can admit, so a flood of made-up targets or slugs adds no group.
        tests/test_act_reduction.py checks the tally, report and trace equal those from
        every act. An act set of at most `small` acts is returned whole: reducing it costs
        more than it saves.
        """
        points = [p for p in change_points if close_ms is None or p <= close_ms]
        segment = f", {'+'.join(['(created_ms >= ?)'] * len(points))}" if points else ""
        types = sorted(ACT_TYPES)
        where = f"(proposal = ? and type in ({','.join('?' * len(types))}))"
        tail: list[Any] = [self._json_list(chapters), self._json_list(connectors)]
        if globals_too:
            where += " or (type = 'delegation' and proposal is null)"
        if small:
            plain = f"({where})" + (" and created_ms <= ?" if close_ms is not None else "")
            args = [proposal, *types, *([close_ms] if close_ms is not None else [])]
            rows = self.db.execute(f"select canonical, created_ms from events where {plain} "
                                   f"limit {small + 1}", args).fetchall()
            if len(rows) <= small:
                return sorted((event_from_stored(r[0], r[1]) for r in rows),
                              key=lambda e: e.order_key)
        where = f"({where}) and chapter in (select value from json_each(?))"
        target = "json_extract(cast(canonical as text), '$.body.to')"
        where += (f" and (type != 'delegation' or {target} is null"
                  f" or {target} in (select value from json_each(?)))")
        if close_ms is not None:
            where += " and created_ms <= ?"
            tail.append(close_ms)
        sql = (f"select min(created_at || id), max(created_at || id) from events where {where} "
               f"group by author, type, proposal is null, chapter, "
               f"case when type = 'delegation' then {target} end{segment}")
        ids: set[str] = set()
        for first, last in self.db.execute(sql, [proposal, *types, *tail, *points]):
            ids.update((first[_AT_WIDTH:], last[_AT_WIDTH:]))
        out = self.get_many(sorted(ids))
        out.sort(key=lambda e: e.order_key)
        return out

    @staticmethod
    def _json_list(values: Iterable[str]) -> str:
        """`values` as a JSON array for json_each. Callers pass the same shared sets again
        and again (Timeline.ever, one per registry, shared by every node of a process): the
        last few are kept by identity, for all stores at once."""
        global _JSON_LISTS
        for held, text in _JSON_LISTS:
            if held is values:
                return text
        text = json.dumps(sorted(values))
        _JSON_LISTS = [(values, text), *_JSON_LISTS[:7]]
        return text

    def effect_proposal_ids(self) -> set[str]:
        """The effect proposals held, and the proposals they escalate (governance.timeline)."""
        # effect = 1 only on proposals: asking for the type lets the (type, created_at) index
        # read the proposals alone instead of scanning every event
        ids: set[str] = set()
        for pid, source in self.db.conn.execute(
                "select id, json_extract(cast(canonical as text), '$.body.escalated_from') "
                "from events where type = 'proposal' and effect = 1"):
            ids.add(pid)
            if isinstance(source, str):
                ids.add(source)
        return ids

    def registry_events(self, effect_ids: set[str]) -> list[Event]:
        """What the registry timeline reads (see node.governance.timeline): member and
        chapter_url events, global delegations, effect proposals and their acts and seals."""
        where, args = _registry_filter(effect_ids)
        return [event_from_stored(r[0], r[1]) for r in self.db.execute(
            f"select canonical, created_ms from events where {where} order by created_at, id",
            args)]

    def registry_changed_since(self, seq: int, effect_ids: set[str]) -> bool:
        where, args = _registry_filter(effect_ids)
        return self.db.execute(f"select 1 from events where seq > ? and ({where}) limit 1",
                               [seq, *args]).fetchone() is not None

    def seal_marker(self, proposal: str) -> tuple[int, int]:
        """(seals held, sealed lists held) for a proposal: what can still amend it."""
        seals = self.db.execute("select count(*) from events where type = 'seal' and proposal = ?",
                                [proposal]).fetchone()[0]
        lists = self.db.execute("select count(*) from sealed where proposal = ?",
                                [proposal]).fetchone()[0]
        return seals, lists

    def proposal_head(self, proposal: str) -> int:
        """The arrival seq of the newest event a proposal's tally could read (its own acts and
        seals, and global delegations): unchanged head, unchanged tally."""
        row = self.db.execute(
            "select max(seq) from events where proposal = ? or "
            "(type = 'delegation' and proposal is null)", [proposal]).fetchone()
        return row[0] or 0

    def sealed_count(self) -> int:
        return self.db.execute("select count(*) from sealed").fetchone()[0]

    def changes(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        """The changes feed: (seq, canonical) in arrival order after `after_seq`."""
        return [(r[0], r[1]) for r in self.db.execute(
            "select seq, canonical from events where seq > ? order by seq limit ?",
            [after_seq, limit])]

    def max_seq(self) -> int:
        row = self.db.execute("select max(seq) from events").fetchone()
        return row[0] or 0

    def count(self) -> int:
        return self.db.execute("select count(*) from events").fetchone()[0]

    def iter_all(self) -> Iterator[Event]:
        for r in self.db.execute("select canonical, created_ms from events order by created_at, id"):
            yield event_from_stored(r[0], r[1])

    def reconciliation_items(self) -> Iterator[tuple[int, bytes]]:
        """(created_at in whole seconds, raw id) for every event: the Negentropy item set.

        Streamed in Negentropy's order (timestamp, then id: lowercase hex sorts as the raw
        bytes), sorted by SQLite, so a caller can pack them as they come. Timestamps before
        1970 count as 0 (SQLite's `/` truncates where Python's `//` floors: both give 0 there).
        """
        fromhex = bytes.fromhex
        for timestamp, id in self.db.conn.execute(
                "select max(0, created_ms / 1000) as t, id from events order by t, id"):
            yield timestamp, fromhex(id)

    # --- sealed id lists --------------------------------------------------------------

    def put_sealed(self, seal_id: str, proposal: str, acts: Sequence[str]) -> None:
        with self.db.atomic():
            self.db.execute(
                "insert or ignore into sealed (seal, proposal, acts) values (?, ?, ?)",
                [seal_id, proposal, json.dumps(sorted(acts))],
            )

    def insert_own_seal(self, seal: Event, proposal: str, acts: Sequence[str],
                        now_ms: int) -> None:
        """Store a seal this node made and its id list in one transaction: both or neither."""
        with self.db.atomic():
            self.insert_events([seal], origin="self", received_ms=now_ms)
            self.put_sealed(seal.id, proposal, acts)

    def get_sealed(self, seal_id: str) -> list[str] | None:
        row = self.db.execute("select acts from sealed where seal = ?", [seal_id]).fetchone()
        return json.loads(row[0]) if row else None

    def sealed_for(self, proposal: str) -> dict[str, list[str]]:
        return {r[0]: json.loads(r[1]) for r in self.db.execute(
            "select seal, acts from sealed where proposal = ?", [proposal])}

    def all_sealed(self) -> dict[str, list[str]]:
        return {r[0]: json.loads(r[1]) for r in self.db.execute("select seal, acts from sealed")}

    # --- peers ------------------------------------------------------------------------

    def peer(self, slug: str) -> PeerState:
        row = self.db.execute(
            "select slug, pull_checkpoint, push_acked, failures, next_attempt_ms, last_push_ms, "
            "last_pull_ms, last_error, clock_skew_ms from peers where slug = ?", [slug]
        ).fetchone()
        return PeerState(*row) if row else PeerState(slug)

    def update_peer(self, slug: str, **fields: Any) -> None:
        """Record a peer's sync state, committed without waiting for the disk.

        Every push, pull and failure writes here, several times a second with many peers;
        an fsync each would cost more than the events they carry. A cursor lost to a power
        cut only makes a peer resend, or us re-read, events that ingest then takes as
        duplicates; and the next event commit (synchronous=FULL) syncs these WAL frames too.
        """
        unknown = set(fields) - set(PeerState.__dataclass_fields__)
        if unknown:
            raise StoreError(f"unknown peer fields {sorted(unknown)}")
        relaxed = not self.db.conn.in_transaction  # the pragma is the connection's, not a savepoint's
        if relaxed:
            level = self.db.execute("PRAGMA synchronous").fetchone()[0]
            self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self.db.atomic():
                self.db.execute("insert or ignore into peers (slug) values (?)", [slug])
                if fields:
                    assigns = ", ".join(f"{k} = ?" for k in fields)
                    self.db.execute(f"update peers set {assigns} where slug = ?",
                                    [*fields.values(), slug])
        finally:
            if relaxed:
                self.db.execute(f"PRAGMA synchronous={int(level)}")

    def peers(self) -> list[PeerState]:
        return [self.peer(r[0]) for r in self.db.execute("select slug from peers order by slug")]

    # --- finality records (for `amended`) ---------------------------------------------

    def finality(self, proposal: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from finality where proposal = ?", [proposal]))
        return rows[0] if rows else None

    def record_final(self, proposal: str, tally_hash: str, at_ms: int,
                     amended_from: str | None = None) -> None:
        with self.db.atomic():
            self.db.execute(
                "insert or replace into finality (proposal, final_hash, final_ms, amended_from) "
                "values (?, ?, ?, ?)", [proposal, tally_hash, at_ms, amended_from])


_JSON_LISTS: list[tuple[Iterable[str], str]] = []  # Store._json_list


def open_store(path: str | Path, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at `path` in WAL mode."""
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        db = Database(conn)
        db.enable_wal()
        db.execute("PRAGMA synchronous=FULL")
        # A batch dirties about one page of the random-id index per event: checkpointing
        # every 1,000 WAL pages (the default) wrote those pages to the database file every
        # second batch; 10,000 pages (~40 MiB of WAL) writes each page once per ~20 batches.
        db.execute("PRAGMA wal_autocheckpoint=10000")
        # That index outgrows the default 2 MiB page cache at ~25,000 events; with 32 MiB an
        # insert reads its leaf from the cache instead of the OS (6.5 -> 4.5 µs per row at
        # 100,000 events, bench notes).
        db.execute("PRAGMA cache_size=-32768")
        db.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as e:
        raise StoreError(f"cannot open store {path}: {e}") from e
    store = Store(db)
    if migrate:
        store.migrate()
    return store
