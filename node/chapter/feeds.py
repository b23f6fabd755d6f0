"""What flows between this node and its peers besides the ingest: the change feed, each
peer's outbox, sealed id lists in and out (a seal's list always right after the seal), and
what we know we lack (lists of seals held, acts those lists name)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from ..protocol.errors import BadRequest, NotAdmissible, NotFound
from ..protocol.events import is_event_id
from ..protocol.merkle import acts_root
from ..store import Store
from .registry import HeldRegistry, authentic

__all__ = ["Feeds", "OUTBOX_BATCH_BYTES"]

# A peer accepts batches of up to 16 MiB (federation/api.py); stay well under it.
OUTBOX_BATCH_BYTES = 8 * 1024 * 1024


class Feeds:
    __slots__ = ("store", "registry")

    def __init__(self, store: Store, registry: HeldRegistry) -> None:
        self.store, self.registry = store, registry

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
        if not authentic(seal, self.registry.at(self.registry.clock())):
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

    def missing_sealed_lists(self) -> list[tuple[str, str]]:
        """(seal id, sealing chapter) for every authentic seal held whose id list we lack."""
        have = set(self.store.all_sealed())
        registry = self.registry.at(self.registry.clock())
        return [(s.id, s.chapter) for s in self.store.events_of(types=["seal"])
                if s.id not in have and authentic(s, registry)]

    def missing_acts(self, limit: int = 2000) -> list[str]:
        """Act ids listed by sealed lists we hold but not yet the acts themselves."""
        listed: set[str] = set()
        for acts in self.store.all_sealed().values():
            listed.update(acts)
        if not listed:
            return []
        return sorted(listed - self.store.known(listed))[:limit]
