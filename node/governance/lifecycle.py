"""A proposal's lifecycle as data: its states, the transitions between them, and what moves it.

Pure decision rules: no I/O, no clock (`now_ms` is passed in). The table is the one place the
lifecycle is defined: `proposal_state()` gathers the facts (clock, finality, green light, the
hash the node recorded when it first saw the proposal final), starts from the kind's initial
state and follows every transition whose condition the facts meet. Change the table and the
states change with it.

    consent, vote:   open --closes_at--> closed --seals or timeout--> final --late seal--> amended
    action:          pending --N-th distinct Connector endorses--> adopted  (final)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from ..protocol.events import Event
from .proposals import closes_ms, kind_of
from .seals import Finality
from .tally import Tally

__all__ = [
    "STATES",
    "INITIAL",
    "TRANSITIONS",
    "Transition",
    "Facts",
    "Recorded",
    "ProposalState",
    "can_move",
    "proposal_state",
]

STATES: Mapping[str, str] = {
    "open": "before closes_at: Connectors act; the tally is provisional",
    "closed": "closes_at passed: the tally is provisional until the seals are in (acts dated "
              "by closes_at still arrive during the grace period and from peers)",
    "final": "a counted seal from every chapter registered at closes_at and every act they "
             "list are held, or closes_at + grace + seal_timeout passed",
    "amended": "a counted seal that arrived after final changed the tally; the earlier "
               "tally_hash is reported",
    "pending": "action proposal without its green light yet",
    "adopted": "action proposal with its green light: final",
}

INITIAL: Mapping[str, str] = {"consent": "open", "vote": "open", "action": "pending"}


class Recorded(NamedTuple):
    """What the node stored when the proposal first became final (and after each amendment)."""

    final_hash: str
    amended_from: str | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """What moves a proposal: all a transition's condition may read."""

    now_ms: int
    closes_ms: int | None  # None for an action proposal
    final: bool  # every seal in, or the time for seals is over (seals.finality)
    adopted: bool  # an action proposal's green light
    current_hash: str  # the tally_hash now
    recorded: Recorded | None  # what the node stored when it first saw the proposal final

    @property
    def changed_since_final(self) -> bool:
        r = self.recorded
        return r is not None and (r.amended_from is not None or r.final_hash != self.current_hash)


@dataclass(frozen=True, slots=True)
class Transition:
    source: str
    target: str
    when: str
    condition: Callable[[Facts], bool]


TRANSITIONS: tuple[Transition, ...] = (
    # once recorded final, a proposal is never provisional again, whatever the clock says
    Transition("open", "closed", "the clock reaches closes_at",
               lambda f: f.recorded is not None or f.now_ms >= f.closes_ms),
    Transition("closed", "final", "a counted seal from every chapter registered at closes_at "
                                  "and every listed act are held, or the clock passes "
                                  "closes_at + grace_seconds + seal_timeout_seconds",
               lambda f: f.recorded is not None or f.final),
    Transition("final", "amended", "a counted seal arriving after final changes the tally_hash",
               lambda f: f.changed_since_final),
    Transition("amended", "amended", "another late counted seal changes the tally_hash again",
               lambda f: f.changed_since_final),
    Transition("pending", "adopted", "the endorsement that brings the distinct endorsing "
                                     "Connectors to rules.action_endorsements",
               lambda f: f.adopted),
)
PROVISIONAL = frozenset({"open", "closed", "pending"})  # states whose tally may still change

_ALLOWED = frozenset((t.source, t.target) for t in TRANSITIONS)


def can_move(source: str, target: str) -> bool:
    """Whether the table allows `source` -> `target` (staying put is always allowed)."""
    return source == target or (source, target) in _ALLOWED


@dataclass(frozen=True, slots=True)
class ProposalState:
    state: str  # one of STATES
    provisional: bool  # the tally may still change
    amended_from: str | None  # the earlier final tally_hash, when amended
    record: Recorded | None  # what the node should store now (None: nothing new)


def walk(kind: str, facts: Facts) -> str:
    """The state the table reaches from `kind`'s initial state under `facts`."""
    state = INITIAL[kind]
    while True:
        step = next((t for t in TRANSITIONS if t.source == state and t.target != state
                     and t.condition(facts)), None)
        if step is None:
            return state
        state = step.target


def proposal_state(proposal: Event, tally: Tally, finality: Finality, now_ms: int,
                   recorded: Recorded | None = None) -> ProposalState:
    """The state of `proposal` at `now_ms` and what, if anything, the node must record."""
    current = tally.hash
    facts = Facts(now_ms, closes_ms(proposal), finality.final, tally.outcome == "adopted",
                  current, recorded)
    state = walk(kind_of(proposal), facts)
    amended_from = None
    record = None
    if state == "amended":
        amended_from = (recorded.final_hash if recorded.final_hash != current
                        else recorded.amended_from)
        if recorded.final_hash != current:
            record = Recorded(current, recorded.final_hash)
    elif state in ("final", "adopted") and recorded is None:
        record = Recorded(current)
    return ProposalState(state, state in PROVISIONAL, amended_from, record)
