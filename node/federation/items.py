"""The Negentropy item set of a node (docs/protocol.md, reconciliation): every event held as
(created_at seconds, id), packed 40 bytes an event; built once from the store, then kept
current from what the node stores."""

from __future__ import annotations

import weakref

from ..chapter.chapter_node import ChapterNode
from ..protocol.events import Event
from ..store import Store
from .negentropy import Negentropy, VectorStorage

__all__ = ["NEGENTROPY_FRAME_LIMIT", "ReconciliationItems", "items_of"]

# Negentropy frames we send (256 KiB); we parse replies up to 4 times that.
NEGENTROPY_FRAME_LIMIT = 256 * 1024
# Events stored since the item set was built, merged into it later; past this many
# (~11 MB of tuples, a catch-up) rebuilding from the store is cheaper.
_MAX_PENDING_ITEMS = 65_536


class ReconciliationItems:
    __slots__ = ("store", "_cache", "_pending")

    def __init__(self, store: Store) -> None:
        self.store = store  # not the node: the registry of item sets holds nodes weakly
        self._cache: VectorStorage | None = None
        self._pending: list[tuple[int, bytes]] = []  # stored since the cache was built

    def stored(self, events: list[Event]) -> None:
        """Merged into the cached item set when a reconciliation next needs it; a long
        catch-up would hold too many: then the next one rebuilds from the store."""
        if self._cache is None:
            return
        if len(self._pending) + len(events) > _MAX_PENDING_ITEMS:
            self._cache, self._pending = None, []
        else:  # the item Store.reconciliation_items gives for the event
            self._pending.extend(
                (max(0, e.created_ms // 1000), bytes.fromhex(e.id)) for e in events)

    def items(self) -> VectorStorage:
        """Every event held, as a packed item set: a copy of the buffer with what was
        stored since merged in, instead of a rebuild."""
        if self._cache is None:
            self._cache = VectorStorage.from_sorted(self.store.reconciliation_items())
            self._pending = []
        elif self._pending:
            self._cache = self._cache.with_items(self._pending)
            self._pending = []
        return self._cache

    def initiator(self) -> Negentropy:
        """A Negentropy initiator over every event held."""
        return Negentropy(self.items(), frame_size_limit=NEGENTROPY_FRAME_LIMIT,
                          max_message_size=4 * NEGENTROPY_FRAME_LIMIT)

    def respond(self, message: bytes) -> bytes:
        """Negentropy responder: one message in, one message out (stateless between rounds)."""
        return Negentropy(self.items(), frame_size_limit=NEGENTROPY_FRAME_LIMIT
                          ).reconcile_responder(message)


_ITEMS: weakref.WeakKeyDictionary[ChapterNode, ReconciliationItems] = weakref.WeakKeyDictionary()


def items_of(node: ChapterNode) -> ReconciliationItems:
    """The node's item set, made (and fed from `node.on_events`) at its first reconciliation."""
    items = _ITEMS.get(node)
    if items is None:
        items = _ITEMS[node] = ReconciliationItems(node.store)
        node.on_events.append(items.stored)
    return items
