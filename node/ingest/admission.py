"""The admission core: which checked events of a batch are admitted, and in which groups
they must be committed. Pure: it takes the checked lines and a snapshot of the store, and
returns outcomes and groups; it reads no database and no clock (node.ingest.pipeline does).

One `Admission` per batch (peer batch or client group), fed step by step:

    resolve(step, held)   each event's verdict (or, speculating, the event as if it verified);
                          an id held is a duplicate, with no second verification
    wants(resolved)       the proposals the snapshot must hold, and the proposals whose
                          escalation source it must read
    judge(resolved, snap) admission at `created_at` (governance) and the deadline rules of §6;
                          stops right after an event later ones must see in the registry
                          (`Judgement.commit`): commit, read a new snapshot, go on
    restart(kept, ...)    a signature failed in a transaction: judge again from its first
                          event, verdicts known

The outcomes are those of checking each signature first (`speculate=False`), whatever the
order of the lines and whichever signatures fail (tests/test_admission_core.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import governance as gov
from ..protocol.charter import Rules
from ..protocol.errors import ChapterNodeError, NotAdmissible
from ..protocol.events import Event

__all__ = ["Admission", "Context", "Judgement", "Outcome", "Pending", "Resolved", "Snapshot",
           "admissible"]


@dataclass(slots=True)  # not frozen: made once per line, where frozen costs 0.4 µs
class Outcome:
    """What became of one line of a peer batch (or one event of a client group)."""

    id: str | None
    status: str  # "stored" | "duplicate" | "refused"
    code: str | None = None
    message: str | None = None

    # for a client: the refusal to raise, or the event stored or already held
    error: ChapterNodeError | None = field(default=None, compare=False, repr=False)
    event: Event | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.code:
            out["error"] = {"code": self.code, "message": self.message}
        return out

    @classmethod
    def refused(cls, id: str | None, error: ChapterNodeError) -> Outcome:
        return cls(id, "refused", error.code, error.message, error=error)


class Pending(Protocol):
    """A line that passed the §2.1 checks but its signature (node.ingest.PendingEvent)."""

    id: str
    held: bool

    def verdict(self) -> bool: ...
    def event(self) -> Event: ...
    def assumed(self) -> Event: ...


@dataclass(frozen=True, slots=True)
class Context:
    """What stays the same for a whole batch."""

    rules: Rules
    charter_ms: int
    charter_created_at: str
    now_ms: int
    own_chapter: str | None  # a client's node; None for a peer's batch (derived admission)

    @property
    def from_peer(self) -> bool:
        return self.own_chapter is None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the store held when a step (or the rest of it, after a commit) was judged."""

    named: Mapping[str, Event]  # the proposals held that the step's events name
    timeline: gov.Timeline
    escalated: Mapping[str, gov.Escalated | None]  # proposal id -> its escalation source


# (line, pending, event): event None for an id the store holds
Resolved = tuple[int, Pending, Event | None]


@dataclass(slots=True)
class Judgement:
    outcomes: list[tuple[int, Outcome]]  # refusals and duplicates, by line
    group: list[tuple[int, Event, Pending]]  # admitted, to commit in this order
    taken: int  # how many of the resolved events were judged
    commit: bool  # the group ends with a registry event: commit before judging the rest


def admissible(event: Event, *, proposal: Event | None, escalated: gov.Escalated | None,
               registry: gov.Registry, context: Context) -> None:
    """State-dependent checks: governance admissibility, then the deadline rules of §6.
    Raises the refusal (a `ChapterNodeError`)."""
    if event.created_ms < context.charter_ms:
        # Not a governance rule but a sanity bound of this node: nothing predates the
        # federation, and Negentropy items need a non-negative timestamp.
        raise NotAdmissible(f"created_at {event.created_at} is before the charter's "
                            f"{context.charter_created_at}", code="before_charter")
    if context.from_peer:
        # Derived admission (docs/protocol.md §5): what only this node's knowledge refuses
        # is kept, so every node ends with the same set; reads judge it again.
        gov.relayed(event, registry=registry, rules=context.rules, proposal=proposal,
                    escalated=escalated)
    else:
        gov.check(event, registry=registry, rules=context.rules, proposal=proposal,
                  escalated=escalated)
    gov.check_deadline(event, proposal, context.rules, context.now_ms, context.from_peer,
                       own_chapter=context.own_chapter)


class Admission:
    """One batch's admission: what it admitted so far and the effect proposals known.

    `speculate`: judge events before their verdicts (a peer's batch; nothing is committed
    before every verdict of its group is in). `effect_ids`: the store's effect proposals
    and the proposals they escalate (what makes an event registry-relevant).
    """

    __slots__ = ("context", "speculate", "admitted", "effect_ids", "unverified_refusals")

    def __init__(self, context: Context, effect_ids: Iterable[str], *, speculate: bool) -> None:
        self.context = context
        self.speculate = speculate
        self.admitted: dict[str, Event] = {}  # committed or pending
        self.effect_ids = set(effect_ids)
        # refused while speculating: the signature, checked last, may refuse them instead
        self.unverified_refusals: list[tuple[int, Pending]] = []

    def resolve(self, step: Sequence[tuple[int, Pending]], held: Iterable[str],
                outcomes: list[tuple[int, Outcome]]) -> list[Resolved]:
        """Each event of `step` as judgement reads it; bad signatures (known verdicts) go
        to `outcomes` as parsing would refuse them."""
        held = held if isinstance(held, set | frozenset) else set(held)
        resolved: list[Resolved] = []
        for line, item in step:
            if item.held or item.id in held:
                resolved.append((line, item, None))  # held: a duplicate
            elif self.speculate:
                resolved.append((line, item, item.assumed()))
            else:
                try:
                    resolved.append((line, item, item.event()))
                except ChapterNodeError as e:
                    outcomes.append((line, Outcome.refused(None, e)))
        return resolved

    def wants(self, resolved: Sequence[Resolved]) -> tuple[set[str], list[Event]]:
        """(the proposals to read from the store, the proposals whose escalation source to
        read) for judging `resolved`."""
        refs: set[str] = set()
        escalating: list[Event] = []
        for _, _, event in resolved:
            if event is None:
                continue
            ref = gov.needs_proposal(event)
            if ref is not None and ref not in self.admitted:
                refs.add(ref)
            if event.type == "proposal" and "escalated_from" in event.body:
                escalating.append(event)
        return refs, escalating

    def judge(self, resolved: Sequence[Resolved], snapshot: Snapshot) -> Judgement:
        """Admit `resolved` in order, up to and including the first admitted event that
        later ones must see in the registry."""
        context, admitted = self.context, self.admitted
        outcomes: list[tuple[int, Outcome]] = []
        group: list[tuple[int, Event, Pending]] = []
        for n, (line, item, event) in enumerate(resolved, 1):
            if event is None or event.id in admitted:
                # a client is told the event; a peer only the status
                outcomes.append((line, Outcome(item.id, "duplicate", event=(
                    None if context.from_peer else event or item.event()))))
                continue
            ref = gov.needs_proposal(event)
            proposal = None if ref is None else (admitted.get(ref) or snapshot.named.get(ref))
            try:
                admissible(event, proposal=proposal,
                           escalated=(snapshot.escalated.get(event.id)
                                      if event.type == "proposal" else None),
                           registry=snapshot.timeline.at(event.created_ms), context=context)
            except ChapterNodeError as e:
                outcomes.append((line, Outcome.refused(event.id, e)))
                if self.speculate:
                    self.unverified_refusals.append((line, item))
                continue
            admitted[event.id] = event
            group.append((line, event, item))
            effect = gov.has_effect(event)
            if effect or gov.is_registry_relevant(event, self.effect_ids):
                if effect:
                    self.effect_ids.add(event.id)
                    self.effect_ids |= gov.escalation_sources([event])
                return Judgement(outcomes, group, n, True)  # later events see the new registry
        return Judgement(outcomes, group, len(resolved), False)

    def restart(self, kept: Iterable[str], effect_ids: Iterable[str],
                again: set[int]) -> None:
        """A signature failed in an uncommitted group: keep what was committed (`kept`),
        and judge the lines `again` with their verdicts known."""
        kept = set(kept)
        self.admitted = {eid: ev for eid, ev in self.admitted.items() if eid in kept}
        self.effect_ids = set(effect_ids)
        self.unverified_refusals = [(line, p) for line, p in self.unverified_refusals
                                    if line not in again]
        self.speculate = False

    def settle(self) -> list[tuple[int, Outcome]]:
        """Signatures are checked before admission (§2.1): an event refused while
        speculating whose signature fails is refused for its signature."""
        out = []
        for line, item in self.unverified_refusals:
            try:
                item.event()
            except ChapterNodeError as e:
                out.append((line, Outcome.refused(None, e)))
        return out
