"""The federation every campaign attacks: fixed keys, a charter, a story of valid events, a node.

Deterministic by construction: keys come from names, times from a fixed clock (`NOW_MS`), so a
campaign's seed replays the same inputs on any machine. `story()` is a causally ordered list
of valid events of every type (proposals of each kind with an effect, every act, comments,
member vouching, a chapter URL change, a feedback request and seals after close) that a
fresh node accepts, in order, from a peer at `NOW_MS`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import nacl.signing

from node.chapter.chapter_node import ChapterNode
from node.protocol.charter import Charter, charter_from_object
from node.protocol.events import Event, b64url, sign_event
from node.protocol.times import format_ms, parse_ms
from node.store import Store, open_store

__all__ = [
    "CHAPTERS", "CONNECTORS", "MEMBERS", "CHARTER_CREATED", "NOW_MS", "HOUR_MS",
    "Kit", "InProcessNode", "signing_key", "public",
]

CHAPTERS = ("paris", "rome", "barcelona")
CONNECTORS = (("amelie", "paris"), ("marco", "rome"), ("lucia", "barcelona"),
              ("jonas", "paris"))
MEMBERS = (("jeanne", "paris"), ("paolo", "rome"))
CHARTER_CREATED = "2026-01-01T00:00:00.000Z"
NOW_MS = parse_ms("2026-03-01T12:00:00.000Z")
HOUR_MS = 3_600_000
GRACE_S = 300


def signing_key(name: str) -> nacl.signing.SigningKey:
    """A person's (or a node's: "node paris") key, derived from the name alone."""
    return nacl.signing.SigningKey(hashlib.sha256(f"chapter-node hardening {name}".encode()).digest())


def public(name: str) -> str:
    return b64url(bytes(signing_key(name).verify_key))


def charter_doc(urls: dict[str, str] | None = None) -> dict[str, Any]:
    urls = urls or {}
    return {
        "name": "Hardening Federation",
        "created_at": CHARTER_CREATED,
        "chapters": [{"slug": s, "key": public(f"node {s}"),
                      "url": urls.get(s, f"http://127.0.0.1:{9 + i}")}
                     for i, s in enumerate(CHAPTERS)],
        "connectors": [{"key": public(n), "name": n.capitalize(), "chapter": c}
                       for n, c in CONNECTORS],
        "rules": {"min_open_hours": 1, "grace_seconds": GRACE_S, "seal_timeout_seconds": 3600},
    }


@dataclass
class Kit:
    """Signs events for the hardening federation."""

    doc: dict[str, Any] = field(default_factory=charter_doc)

    @cached_property
    def charter(self) -> Charter:
        return charter_from_object(self.doc)

    @property
    def federation(self) -> str:
        return self.charter.id

    def sign(self, type: str, body: dict[str, Any], *, by: str, chapter: str, at_ms: int,
             federation: str | None = None) -> Event:
        """`by` signs (a person's name, or "node <slug>" for node-signed types)."""
        return sign_event(federation=federation or self.federation, type=type, chapter=chapter,
                          created_at=format_ms(at_ms), body=body, signing_key=signing_key(by))

    def raw(self, event: Event) -> dict[str, Any]:
        return event.to_json()

    @staticmethod
    def resign(obj: dict[str, Any], by: str) -> bytes:
        """Sign an arbitrary envelope object (no validation): canonical bytes with `sig`."""
        from node.protocol.events import canonical

        unsigned = {k: v for k, v in obj.items() if k != "sig"}
        sig = signing_key(by).sign(canonical(unsigned)).signature
        return canonical({**unsigned, "sig": b64url(sig)})

    @cached_property
    def story(self) -> list[bytes]:
        """Lines (events and sealed lists) a fresh node accepts in order from a peer."""
        with InProcessNode.temporary(self, "rome") as sealer:
            for event in self._story_events():
                out = sealer.node.receive([event.canonical], origin="paris", now_ms=NOW_MS)
                assert out[0].status == "stored", (event.type, out[0])
            sealer.node.publish_due_seals(NOW_MS)
            lines, _, _ = sealer.node.changes(0, 10_000)
        return lines

    @cached_property
    def story_events(self) -> list[Event]:
        from node.protocol.events import event_from_stored

        return [event_from_stored(line) for line in self.story if not line.startswith(b'{"sealed"')]

    def _story_events(self) -> list[Event]:
        t = parse_ms("2026-02-01T09:00:00.000Z")
        out: list[Event] = []

        def add(type: str, body: dict[str, Any], by: str, chapter: str, dt_min: float) -> Event:
            ev = self.sign(type, body, by=by, chapter=chapter, at_ms=t + int(dt_min * 60_000))
            out.append(ev)
            return ev

        add("member", {"key": public("jeanne"), "active": True}, "node paris", "paris", 0)
        add("member", {"key": public("paolo"), "active": True}, "node rome", "rome", 1)
        closed = add("proposal", {"title": "Adopt the 2027 budget", "text": "Numbers inside.",
                                  "kind": "consent", "closes_at": format_ms(t + 2 * HOUR_MS)},
                     "amelie", "paris", 2)
        add("comment", {"proposal": closed.id, "text": "Why so high?"}, "jeanne", "paris", 3)
        add("veto", {"proposal": closed.id, "reason": "Too costly for small chapters."},
            "marco", "rome", 4)
        add("veto_withdraw", {"proposal": closed.id}, "marco", "rome", 5)
        add("endorse", {"proposal": closed.id}, "lucia", "barcelona", 6)
        vote = add("proposal", {"title": "Lisbon for the 2027 summit", "text": "",
                                "kind": "vote", "closes_at": format_ms(t + 3 * HOUR_MS),
                                "quorum": 0.5, "threshold": 0.5},
                   "marco", "rome", 7)
        add("delegation", {"to": public("amelie"), "proposal": None}, "jonas", "paris", 8)
        add("delegation", {"to": public("marco"), "proposal": vote.id}, "lucia", "barcelona", 9)
        add("vote", {"proposal": vote.id, "choice": "yes"}, "amelie", "paris", 10)
        add("vote", {"proposal": vote.id, "choice": "abstain"}, "marco", "rome", 11)
        action = add("proposal", {"title": "Translate the handbook", "text": "Into Catalan.",
                                  "kind": "action"}, "paolo", "rome", 12)
        for i, name in enumerate(("amelie", "marco", "lucia")):
            add("endorse", {"proposal": action.id}, name, CONNECTORS[i][1], 13 + i)
        add("comment", {"proposal": action.id, "text": "¡Vamos! 🎉", "reply_to": action.id},
            "lucia", "barcelona", 17)
        add("proposal", {"title": "Appoint Sofia", "text": "",
                         "kind": "consent", "closes_at": format_ms(NOW_MS + 48 * HOUR_MS),
                         "effect": {"appoint_connector": {"key": public("sofia"), "name": "Sofía",
                                                          "chapter": "rome"}}},
            "lucia", "barcelona", 18)
        add("proposal", {"title": "Admit Lyon", "text": "",
                         "kind": "consent", "closes_at": format_ms(NOW_MS + 48 * HOUR_MS),
                         "effect": {"admit_chapter": {"slug": "lyon", "key": public("node lyon"),
                                                      "url": "https://lyon.example/node"}}},
            "amelie", "paris", 19)
        feedback = add("feedback_request", {"title": "Paris meets on Thursdays", "text": "",
                                            "closes_at": format_ms(NOW_MS + 24 * HOUR_MS)},
                       "node paris", "paris", 20)
        add("comment", {"proposal": feedback.id, "text": "Fine by Rome."}, "marco", "rome", 21)
        add("chapter_url", {"url": "https://barcelona.example/node"}, "node barcelona",
            "barcelona", 22)
        return out

    def lines_of(self, type: str) -> list[bytes]:
        return [e.canonical for e in self.story_events if e.type == type]


class InProcessNode:
    """A `ChapterNode` on its own SQLite file, for campaigns that call the pipeline directly."""

    def __init__(self, kit: Kit, chapter: str, path: Path, *, durable: bool = False) -> None:
        self.kit = kit
        self.chapter = chapter
        self.path = path
        self.store: Store = open_store(path)
        if not durable:  # fuzzing speed; durability is campaign 7's business
            self.store.db.execute("PRAGMA synchronous=OFF")
        self.store.set_meta("chapter", chapter)
        self.store.set_meta("federation", kit.federation)
        self.node = ChapterNode(self.store, kit.charter, chapter, signing_key(f"node {chapter}"))

    @classmethod
    @contextmanager
    def temporary(cls, kit: Kit, chapter: str = "paris",
                  durable: bool = False) -> Iterator[InProcessNode]:
        with tempfile.TemporaryDirectory(prefix="hardening-") as d:
            node = cls(kit, chapter, Path(d) / "node.db", durable=durable)
            try:
                yield node
            finally:
                node.store.close()

    def ids(self) -> set[str]:
        return {r[0] for r in self.store.db.execute("select id from events")}

    def head(self) -> int:
        return self.store.max_seq()

    def rollback_to(self, seq: int, sealed: set[str]) -> None:
        """Forget everything stored after `seq` (and sealed lists not in `sealed`)."""
        with self.store.db.atomic():
            self.store.db.execute("delete from events where seq > ?", [seq])
            for (seal,) in list(self.store.db.execute("select seal from sealed")):
                if seal not in sealed:
                    self.store.db.execute("delete from sealed where seal = ?", [seal])
        self.node = ChapterNode(self.store, self.kit.charter, self.chapter,
                                signing_key(f"node {self.chapter}"))


def dumps(obj: Any) -> bytes:
    """Plain JSON (not canonical): what a sloppy but honest peer might send."""
    return json.dumps(obj, ensure_ascii=False).encode()
