"""The registry as this node holds it: the timeline of who was who, rebuilt only when an
event it reads arrives, shared between the nodes of one process that hold the same events."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .. import governance as gov
from ..protocol.charter import Charter
from ..protocol.errors import Unauthenticated
from ..protocol.events import Event, decode_key
from ..store import Store

__all__ = ["HeldRegistry", "PeerUrls"]

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


class HeldRegistry:
    """The registry over time from the events the store holds, and who our peers are."""

    __slots__ = ("store", "charter", "chapter", "clock", "_timeline", "_key")

    def __init__(self, store: Store, charter: Charter, chapter: str,
                 clock: Callable[[], int]) -> None:
        self.store, self.charter, self.chapter, self.clock = store, charter, chapter, clock
        self._timeline: gov.Timeline | None = None
        self._key = (-1, -1)

    def timeline(self) -> gov.Timeline:
        """The registry over time, rebuilt only when something it reads has changed."""
        head, sealed = self.store.max_seq(), self.store.sealed_count()
        if self._timeline is not None and (head, sealed) == self._key:
            return self._timeline
        effect_ids = self.store.effect_proposal_ids()
        if (self._timeline is not None and sealed == self._key[1]
                and not self.store.registry_changed_since(self._key[0], effect_ids)):
            self._key = (head, sealed)
            return self._timeline
        lists: dict[str, list[str]] = {}
        for pid in effect_ids:
            lists.update(self.store.sealed_for(pid))
        self._timeline = _shared_timeline(self.charter, self.store.registry_events(effect_ids),
                                          lists)
        self._key = (head, sealed)
        return self._timeline

    def at(self, at_ms: int) -> gov.Registry:
        return self.timeline().at(at_ms)

    def peer_urls(self, now_ms: int) -> PeerUrls:
        """Every other chapter registered now, with the URL peers should use."""
        return PeerUrls(self.at(now_ms), self.chapter)

    def own_url(self) -> str:
        entry = self.at(self.clock()).chapter(self.chapter)
        return entry.url if entry else "http://127.0.0.1"

    def peer_key(self, keyid: str) -> bytes | None:
        """Resolve a peer request's keyid: the node key of another chapter registered now."""
        chapter = self.at(self.clock()).chapter_by_node_key(keyid)
        if chapter is None or chapter.slug == self.chapter:
            return None
        return decode_key(keyid)

    def peer_slug(self, keyid: str) -> str:
        chapter = self.at(self.clock()).chapter_by_node_key(keyid)
        if chapter is None:
            raise Unauthenticated("the signing key belongs to no chapter", code="unknown_key")
        return chapter.slug


def authentic(seal: Event, registry: gov.Registry) -> bool:
    """Signed by the node key of the chapter it names (chapters stay, their keys never
    change, so the registry now answers for any instant)."""
    chapter = registry.chapter(seal.chapter)
    return chapter is not None and chapter.key == seal.author
