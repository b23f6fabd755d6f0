"""What belongs to the chapter alone (subsidiarity): its members' names and addresses, its
local decisions. Only what the chapter chooses leaves the node: a signed vouch for a member's
key, its node's new address, a decision shared for feedback (title and text, nothing else)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol.errors import Conflict, NotFound
from ..protocol.events import Event, decode_key
from ..protocol.times import format_ms
from ..store import Store
from .signer import NodeSigner

__all__ = ["ChapterLocal"]


class ChapterLocal:
    __slots__ = ("store", "signer", "admit", "published")

    def __init__(self, store: Store, signer: NodeSigner, admit: Callable[[Event, int], None],
                 published: Callable[[Event], None]) -> None:
        self.store, self.signer = store, signer
        self.admit = admit  # the client rules, for an event this node signs (raises)
        self.published = published  # stored: it goes to every peer

    def _as_node(self, type_: str, body: dict[str, Any], now_ms: int) -> Event:
        """Sign `type_` with this chapter's node key, admit and store it."""
        event = self.signer.sign(type_, body, now_ms)
        self.admit(event, now_ms)
        if self.store.insert_events([event], origin="self", received_ms=now_ms)[0]:
            self.published(event)
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
            raise NotFound(f"{person} is not a member of {self.signer.chapter}",
                           code="unknown_member")
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
        event = self.signer.sign("feedback_request", {
            "title": row[0], "text": row[1], "closes_at": format_ms(closes_ms)}, now_ms)
        self.admit(event, now_ms)
        self.store.share_decision(decision_id, event, now_ms)
        self.published(event)
        return event

    def decisions(self) -> list[dict[str, Any]]:
        return self.store.local_decisions()

    def members(self) -> list[dict[str, Any]]:
        return self.store.local_members()
