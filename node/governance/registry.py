"""Who is who at one instant: chapters, Connectors and vouched members (PROTOCOL §3, §4).

Pure decision rules: no I/O, no clock. A `Registry` is a frozen snapshot at `at_ms`; the
`Timeline` (node.governance.timeline) builds one for any instant from the charter and events.
A `Registry` is also a constant `RegistrySource`: handing one to `tally()` means "use this
registry for every instant" (handy in tests and for callers that already hold it).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from ..protocol.charter import (  # one definition of each, shared with the charter
    Chapter,
    Connector,
)
from ..protocol.events import Event

__all__ = ["Chapter", "Connector", "Registry", "RegistrySource", "MemberIndex",
           "node_key_index"]


@dataclass(frozen=True, slots=True)
class MemberIndex:
    """§4 `member` events per (person key, chapter): (created_ms, active) in (created_at, id) order.

    Built once by the Timeline; queried by bisection so a snapshot never copies the member set.
    """

    history: Mapping[str, Mapping[str, tuple[tuple[int, ...], tuple[bool, ...]]]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def vouched(self, key: str, at_ms: int, chapters: Mapping[str, Chapter]) -> bool:
        """§4: some chapter registered at `at_ms` whose latest `member` event about `key`
        (by (created_at, id), created_at <= at_ms) says active."""
        for slug, (times, active) in self.history.get(key, {}).items():
            if slug not in chapters:
                continue
            i = bisect_right(times, at_ms) - 1
            if i >= 0 and active[i]:
                return True
        return False

    def keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.history))


_EMPTY_MEMBERS = MemberIndex()


@dataclass(frozen=True, slots=True)
class Registry:
    """Chapters, Connectors and members as they stand at `at_ms`."""

    at_ms: int
    chapters: Mapping[str, Chapter]  # slug -> Chapter
    connectors: Mapping[str, Connector]  # person key -> Connector
    members: MemberIndex = field(default=_EMPTY_MEMBERS, repr=False, compare=False)
    # node key -> slug, built once per set of chapters by the Timeline (so a peer request's
    # keyid resolves without scanning 10,000 chapters); None: scan `chapters`
    node_keys: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    # -- questions the rules ask -------------------------------------------------------

    def is_connector(self, key: str) -> bool:
        return key in self.connectors

    def is_vouched(self, key: str) -> bool:
        """A key some registered chapter currently vouches for (§4 `member`)."""
        return self.members.vouched(key, self.at_ms, self.chapters)

    def is_member(self, key: str) -> bool:
        """§4 "member": a vouched key *or* a Connector."""
        return key in self.connectors or self.is_vouched(key)

    def chapter(self, slug: str) -> Chapter | None:
        return self.chapters.get(slug)

    def chapter_by_node_key(self, key: str) -> Chapter | None:
        if self.node_keys is not None:
            slug = self.node_keys.get(key)
            return None if slug is None else self.chapters.get(slug)
        for chapter in self.chapters.values():
            if chapter.key == key:
                return chapter
        return None

    def is_node_key(self, key: str) -> bool:
        return self.chapter_by_node_key(key) is not None

    def member_keys(self) -> frozenset[str]:
        """Every vouched key at `at_ms` (Connectors not included unless also vouched)."""
        return frozenset(k for k in self.members.keys() if self.is_vouched(k))

    # -- a constant RegistrySource -----------------------------------------------------

    def at(self, t_ms: int) -> Registry:
        return self

    def at_close(self, proposal: Event) -> Registry:
        return self

    def to_json(self) -> dict[str, Any]:
        """A deterministic picture of the snapshot (sorted keys), for display and tests."""
        return {
            "at_ms": self.at_ms,
            "chapters": [
                {"slug": c.slug, "key": c.key, "url": c.url}
                for c in sorted(self.chapters.values(), key=lambda c: c.slug)
            ],
            "connectors": [
                {"key": c.key, "name": c.name, "chapter": c.chapter}
                for c in sorted(self.connectors.values(), key=lambda c: c.key)
            ],
            "members": sorted(self.member_keys()),
        }


def node_key_index(chapters: Mapping[str, Chapter]) -> Mapping[str, str]:
    """Node key -> slug over `chapters`; the first chapter in order wins, as a scan would."""
    index: dict[str, str] = {}
    for chapter in chapters.values():
        index.setdefault(chapter.key, chapter.slug)
    return MappingProxyType(index)


class RegistrySource(Protocol):
    """Anything that answers "who was who" at an instant: a `Timeline`, or a `Registry`."""

    def at(self, t_ms: int) -> Registry: ...

    def at_close(self, proposal: Event) -> Registry: ...
