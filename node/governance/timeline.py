"""The registry over time: the charter plus adopted effects, `member` and `chapter_url` events.

Pure decision rules: no I/O, no clock.

When effects apply (PROTOCOL §4 "from its close time on"), precisely:
- Effect-bearing proposals (consent or vote with `effect`) are decided one by one in
  (closes_at, id) order. Tallying proposal P uses the registry with only the effects ordered
  before P applied (`Timeline.at_close(P)`), so no proposal depends on its own effect and two
  proposals closing at the same instant are decided in id order: the second sees the first.
- An adopted effect applies for every instant t >= closes_at (`Timeline.at(t)`): to the
  admissibility of any event created at or after closes_at, and to the tally of any proposal
  without an effect that closes at or after it.
- P's tally follows §7: the acts in the union of its counted seals where there are any,
  otherwise every act with created_at <= closes_at. An effect therefore follows the
  proposal's current (possibly provisional) tally; if late seals amend the tally, the
  registry changes with it.
- An adopted effect that no longer makes sense when it applies is skipped, and the skip is
  recorded (`AppliedEffect.skipped`): appointing someone already a Connector, a node key, or
  into an unregistered chapter; removing a non-Connector; admitting a slug or node key that
  is already registered.

`member` and `chapter_url` events count only when signed by the node key of the chapter they
name, registered at their created_at. Chapters are never removed, so a chapter registered
once stays registered.

Contract with the node: `Timeline.build` needs the *registry-relevant* events
(`is_registry_relevant`): every `member` and `chapter_url` event, every proposal with an
effect and every consent proposal one of them escalates, every act on such a proposal and
every global delegation (a vote proposal with an effect reads them), and the seals of such
proposals, plus the sealed id lists of those seals.

Derived admission: a node keeps relayed events it could not admit (node.governance.
admissibility), so the timeline judges again what it reads. An effect proposal is admitted
or not at its created_at, against the effects decided before it (recorded as `skipped` with
the refusal code); a `member` event vouching for a node key counts for nothing; acts count
only if admitted (node.governance.tally).
Passing more events is harmless; passing fewer gives a different registry.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..protocol.charter import Charter, Rules
from ..protocol.errors import NotAdmissible
from ..protocol.events import ACT_TYPES, Event
from .act_set import dedupe
from .admissibility import Escalated, check_effect, refusal
from .proposals import closes_ms, effect_of, has_effect
from .registry import Chapter, Connector, MemberIndex, Registry, node_key_index
from .seals import final_acts, review_seals
from .tally import tally

__all__ = ["Timeline", "AppliedEffect", "is_registry_relevant", "registry_relevant",
           "escalation_sources"]

_BEFORE_TIME = -(2**63)


@dataclass(frozen=True, slots=True)
class _Segment:
    """Chapters and Connectors from one effect's close until the next effect's."""

    order: tuple[int, str]  # (closes_ms, proposal id) of the effect that opened it
    chapters: Mapping[str, Chapter]  # URLs as admitted; chapter_url events override per instant
    connectors: Mapping[str, Connector]
    node_keys: Mapping[str, str]  # node key -> slug of `chapters` (chapter_url keeps keys)


@dataclass(frozen=True, slots=True)
class AppliedEffect:
    """One effect-bearing proposal as the timeline decided it."""

    proposal: str
    closes_at: str
    effect: str  # appoint_connector / remove_connector / admit_chapter
    fields: Mapping[str, Any]
    outcome: str
    tally_hash: str
    applied: bool  # adopted and applied from closes_at on
    # why an adopted effect changed nothing, or why the proposal is not admitted at all (a
    # refusal code), else None
    skipped: str | None

    def to_json(self) -> dict[str, Any]:
        return {"proposal": self.proposal, "closes_at": self.closes_at, "effect": self.effect,
                "fields": dict(self.fields), "outcome": self.outcome,
                "tally_hash": self.tally_hash, "applied": self.applied, "skipped": self.skipped}


def is_registry_relevant(event: Event, effect_proposal_ids: AbstractSet[str]) -> bool:
    """Whether the node must hand `event` to `Timeline.build` (see the module contract).

    `effect_proposal_ids`: the effect proposals held and the proposals they escalate."""
    if event.type in ("member", "chapter_url"):
        return True
    if event.type == "proposal":
        return has_effect(event) or event.id in effect_proposal_ids
    if event.type == "delegation" and event.body.get("proposal") is None:
        return True  # global delegations count on every vote proposal, effects included
    if event.type in ACT_TYPES or event.type == "seal":
        return event.proposal in effect_proposal_ids
    return False


def registry_relevant(events: Iterable[Event]) -> list[Event]:
    """The registry-relevant subset of `events` (two passes: effect proposals, then the rest)."""
    held = list(events)
    effects = [e for e in held if has_effect(e)]
    ids = {e.id for e in effects} | escalation_sources(effects)
    return [e for e in held if is_registry_relevant(e, ids)]


def escalation_sources(effect_proposals: Iterable[Event]) -> set[str]:
    """The consent proposals effect proposals escalate: whether such a vote is admitted
    depends on the source's outcome, so the timeline decides those too."""
    return {p.body["escalated_from"] for p in effect_proposals if "escalated_from" in p.body}


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Timeline:
    """Who was who at any instant. Build once per event set; query with `at(t_ms)`.

    Immutable, so nodes holding the same registry events can share one (weakly referenced).
    """

    segments: tuple[_Segment, ...]
    members: MemberIndex
    urls: Mapping[str, tuple[tuple[int, ...], tuple[str, ...]]]  # slug -> (times, urls)
    effects: tuple[AppliedEffect, ...]
    rules: Rules  # the charter's rules, for callers holding only the timeline
    # `ever()`, computed once: nodes share a timeline, and 10,000 chapters' slugs per node
    # would not fit (bench/scale.py)
    _ever: tuple[frozenset[str], frozenset[str]] | None = field(
        default=None, init=False, compare=False, repr=False)

    # -- queries -----------------------------------------------------------------------

    def at(self, t_ms: int) -> Registry:
        """The registry at instant `t_ms` (every effect with closes_at <= t_ms applied)."""
        return self._registry(self._segment_at(t_ms), t_ms)

    registry_at = at

    def at_close(self, proposal: Event) -> Registry:
        """The registry a tally of `proposal` uses: at its closes_at, without its own effect
        nor those ordered after it (see the module docstring)."""
        close = closes_ms(proposal)
        if close is None:
            return self.at(proposal.created_ms)
        if not has_effect(proposal):
            return self.at(close)
        i = bisect_right([s.order for s in self.segments], (close, proposal.id)) - 1
        if i >= 0 and self.segments[i].order == (close, proposal.id):
            i -= 1
        return self._registry(self.segments[i], close)

    def change_points(self) -> tuple[int, ...]:
        """The instants at which the chapters or Connectors change (adopted effects' closes),
        ascending. Between two of them, who is a Connector stays the same."""
        return tuple(s.order[0] for s in self.segments[1:])

    def ever(self) -> tuple[frozenset[str], frozenset[str]]:
        """(every chapter slug, every Connector key) registered at some instant: what no
        registry of this timeline can admit names neither."""
        if self._ever is None:
            connectors: set[str] = set()
            for segment in self.segments:
                connectors.update(segment.connectors)
            # chapters stay: the last segment has them all
            object.__setattr__(self, "_ever", (frozenset(self.segments[-1].chapters),
                                               frozenset(connectors)))
        assert self._ever is not None
        return self._ever

    def effect(self, proposal_id: str) -> AppliedEffect | None:
        return next((e for e in self.effects if e.proposal == proposal_id), None)

    def _segment_at(self, t_ms: int) -> _Segment:
        i = bisect_right([s.order[0] for s in self.segments], t_ms) - 1
        return self.segments[max(i, 0)]

    def _registry(self, segment: _Segment, t_ms: int) -> Registry:
        # The segment's chapters are not copied (with 10,000 chapters a copy per query made a
        # round quadratic): URL changes lie over them.
        moved: dict[str, Chapter] = {}
        for slug, (times, urls) in self.urls.items():
            chapter = segment.chapters.get(slug)
            if chapter is not None:
                i = bisect_right(times, t_ms) - 1
                if i >= 0:  # §4: its latest chapter_url replaces the URL peers use
                    moved[slug] = Chapter(slug, chapter.key, urls[i])
        chapters = MappingProxyType(ChainMap(moved, segment.chapters)) if moved else segment.chapters
        return Registry(t_ms, chapters, segment.connectors, self.members, segment.node_keys)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_charter(cls, charter: Charter) -> Timeline:
        """The registry the charter alone defines (no events)."""
        chapters = MappingProxyType({c.slug: c for c in charter.chapters})
        first = _Segment(
            (_BEFORE_TIME, ""), chapters,
            MappingProxyType({c.key: c for c in charter.connectors}), node_key_index(chapters),
        )
        return cls((first,), MemberIndex(), MappingProxyType({}), (), charter.rules)

    @classmethod
    def build(cls, charter: Charter, events: Iterable[Event],
              sealed_lists: Mapping[str, Sequence[str]] | None = None) -> Timeline:
        """The timeline of `charter` plus the registry-relevant `events` (see module contract).

        `sealed_lists`: seal id -> its sealed act id list, for seals of effect proposals.
        Equal sets of events give an equal timeline, whatever their order or duplicates.
        """
        held = dedupe(events)
        lists = sealed_lists or {}
        timeline = cls.from_charter(charter)
        effect_proposals = [e for e in held if has_effect(e) and closes_ms(e) is not None]
        sources = escalation_sources(effect_proposals)
        # Sources are decided after every effect closing at the same instant: a tally without
        # an effect sees them all (`at_close`).
        decided = sorted(
            effect_proposals + [e for e in held if e.id in sources and e.type == "proposal"
                                and not has_effect(e) and closes_ms(e) is not None],
            key=lambda p: (closes_ms(p), not has_effect(p), p.id),
        )
        ids = {p.id for p in decided}
        by_proposal: dict[str, list[Event]] = {pid: [] for pid in ids}
        global_delegations: list[Event] = []
        for e in held:
            if e.type == "delegation" and e.body.get("proposal") is None:
                global_delegations.append(e)
            elif (e.type in ACT_TYPES or e.type == "seal") and e.proposal in ids:
                by_proposal[e.proposal].append(e)
        rules = charter.rules
        outcomes: dict[str, tuple[Event, str]] = {}  # decided so far: for escalations
        people, people_at = timeline, -1  # people indexed over the first `people_at` segments
        for proposal in decided:
            # Decide P with the registry of the effects ordered before it (no circularity).
            at_close = timeline.at_close(proposal)
            related = by_proposal[proposal.id] + global_delegations
            review = review_seals(proposal, (e for e in related if e.type == "seal"),
                                  lists, at_close, rules)
            result = tally(proposal, final_acts(proposal, related, review), timeline, rules)
            # Is P itself admitted? Judged at its created_at, which every effect ordered before
            # it already decides: a peer keeps a proposal it could not admit (admissibility).
            if people_at != len(timeline.segments):  # segments only grow
                people, people_at = timeline._with_people(held), len(timeline.segments)
            source = outcomes.get(proposal.body.get("escalated_from", ""))
            refused = refusal(proposal, registry=people.at(proposal.created_ms), rules=rules,
                              escalated=Escalated(source[1], proposal=source[0]) if source else None)
            if refused is None and proposal.id in sources:  # a vote may escalate it, whether
                outcomes[proposal.id] = (proposal, result.outcome)  # it has an effect or not
            if not has_effect(proposal):
                continue
            timeline = timeline._with_effect(proposal, result.outcome, result.hash, at_close,
                                             refused=refused)
        return timeline._with_people(held)

    def _with_effect(self, proposal: Event, outcome: str, tally_hash: str,
                     before: Registry, *, refused: str | None = None) -> Timeline:
        name, fields = effect_of(proposal) or ("", {})
        close = closes_ms(proposal)
        assert close is not None
        skipped: str | None = refused
        segment: _Segment | None = None
        if outcome == "adopted" and refused is None:
            skipped = _skip_reason(name, fields, before)
            if skipped is None:
                segment = _apply(name, fields, before, (close, proposal.id))
        record = AppliedEffect(
            proposal=proposal.id, closes_at=proposal.body["closes_at"], effect=name,
            fields=MappingProxyType(dict(fields)), outcome=outcome, tally_hash=tally_hash,
            applied=segment is not None, skipped=skipped,
        )
        segments = self.segments + ((segment,) if segment else ())
        return Timeline(segments, self.members, self.urls, self.effects + (record,), self.rules)

    def _with_people(self, held: Sequence[Event]) -> Timeline:
        """Index `member` and `chapter_url` events signed by their chapter's node key."""
        members: dict[str, dict[str, tuple[list[int], list[bool]]]] = {}
        urls: dict[str, tuple[list[int], list[str]]] = {}
        for e in held:  # in (created_at, id) order, so each list is in §5 order
            if e.type not in ("member", "chapter_url"):
                continue
            segment = self._segment_at(e.created_ms)
            chapter = segment.chapters.get(e.chapter)
            if chapter is None or chapter.key != e.author:
                continue  # §4: only the chapter's node key speaks for it
            if e.type == "member":
                if e.body["key"] in segment.node_keys:
                    continue  # §4 node_key_as_person: a peer keeps it, it counts for nothing
                times, active = members.setdefault(e.body["key"], {}).setdefault(e.chapter, ([], []))
                times.append(e.created_ms)
                active.append(bool(e.body["active"]))
            else:
                times_u, values = urls.setdefault(e.chapter, ([], []))
                times_u.append(e.created_ms)
                values.append(e.body["url"])
        index = MemberIndex(MappingProxyType({
            key: MappingProxyType({slug: (tuple(t), tuple(a)) for slug, (t, a) in per.items()})
            for key, per in members.items()
        }))
        frozen_urls = MappingProxyType({slug: (tuple(t), tuple(u)) for slug, (t, u) in urls.items()})
        return Timeline(self.segments, index, frozen_urls, self.effects, self.rules)


def _skip_reason(name: str, fields: Mapping[str, Any], before: Registry) -> str | None:
    """Why an adopted effect cannot apply as it stands at close (a refusal code), or None."""
    try:
        check_effect(name, fields, before)
    except NotAdmissible as e:
        return e.code
    return None


def _apply(name: str, fields: Mapping[str, Any], before: Registry,
           order: tuple[int, str]) -> _Segment:
    chapters = dict(before.chapters)
    connectors = dict(before.connectors)
    node_keys = before.node_keys
    if name == "appoint_connector":
        connectors[fields["key"]] = Connector(fields["key"], fields["name"], fields["chapter"])
    elif name == "remove_connector":
        del connectors[fields["key"]]
    elif name == "admit_chapter":
        chapters[fields["slug"]] = Chapter(fields["slug"], fields["key"], fields["url"])
        node_keys = None
    frozen = MappingProxyType(chapters)
    return _Segment(order, frozen, MappingProxyType(connectors),
                    node_keys if node_keys is not None else node_key_index(frozen))
