"""The node's store as the ingest pipeline reads and writes it (node.ingest.pipeline.Ledger):
the look-ups of a snapshot, and the commit that tells whoever listens."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import governance as gov
from ..protocol.events import Event
from ..store import Store
from .feeds import Feeds
from .proposals import ProposalViews
from .registry import HeldRegistry

__all__ = ["StoreLedger"]


class StoreLedger:
    __slots__ = ("store", "registry", "proposals", "feeds", "stored")

    def __init__(self, store: Store, registry: HeldRegistry, proposals: ProposalViews,
                 feeds: Feeds, stored: Callable[[list[Event], str], None]) -> None:
        self.store, self.registry, self.proposals, self.feeds = store, registry, proposals, feeds
        self.stored = stored  # events newly stored, and where from

    def head(self) -> int:
        return self.store.max_seq()

    def held(self, ids: list[str]) -> set[str]:
        return self.store.known(ids)

    def proposals_named(self, ids: Iterable[str]) -> dict[str, Event]:
        return {ev.id: ev for ev in self.store.get_many(ids)}

    def timeline(self) -> gov.Timeline:
        return self.registry.timeline()

    def effect_ids(self) -> set[str]:
        return self.store.effect_proposal_ids()

    def escalated(self, proposal: Event) -> gov.Escalated | None:
        return self.proposals.escalated(proposal)

    def commit(self, events: list[Event], origin: str, now_ms: int,
               confirm: Callable[[], bool]) -> list[bool] | None:
        fresh = self.store.insert_events(events, origin=origin, received_ms=now_ms,
                                         confirm=confirm)
        if fresh is not None:
            self.stored([e for e, new in zip(events, fresh) if new], origin)
        return fresh

    def accept_sealed(self, value: Any) -> str:
        return self.feeds.accept_sealed(value)
