"""A proposal's lifecycle as data: its states, the transitions between them, and what moves it.

Pure decision rules: no I/O, no clock (`now_ms` is passed in). The table is the one place the
lifecycle is defined; `proposal_state()` only reads facts (clock, finality, the hash the node
recorded when it first saw the proposal final) and names the state the table allows.

    consent, vote:   open --closes_at--> closed --seals or timeout--> final --late seal--> amended
    action:          pending --N-th distinct Connector endorses--> adopted  (final)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from ..events import Event
from .proposals import closes_ms, kind_of
from .seals import Finality
from .tally import Tally

__all__ = [
    "STATES",
    "INITIAL",
    "TRANSITIONS",
    "Transition",
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


@dataclass(frozen=True, slots=True)
class Transition:
    source: str
    target: str
    when: str


TRANSITIONS: tuple[Transition, ...] = (
    Transition("open", "closed", "the clock reaches closes_at"),
    Transition("closed", "final", "a counted seal from every chapter registered at closes_at "
                                  "and every listed act are held, or the clock passes "
                                  "closes_at + grace_seconds + seal_timeout_seconds"),
    Transition("final", "amended", "a counted seal arriving after final changes the tally_hash"),
    Transition("amended", "amended", "another late counted seal changes the tally_hash again"),
    Transition("pending", "adopted", "the endorsement that brings the distinct endorsing "
                                     "Connectors to rules.action_endorsements"),
)

_ALLOWED = frozenset((t.source, t.target) for t in TRANSITIONS)


def can_move(source: str, target: str) -> bool:
    """Whether the table allows `source` -> `target` (staying put is always allowed)."""
    return source == target or (source, target) in _ALLOWED


class Recorded(NamedTuple):
    """What the node stored when the proposal first became final (and after each amendment)."""

    final_hash: str
    amended_from: str | None = None


@dataclass(frozen=True, slots=True)
class ProposalState:
    state: str  # one of STATES
    provisional: bool  # the tally may still change
    amended_from: str | None  # the earlier final tally_hash, when amended
    record: Recorded | None  # what the node should store now (None: nothing new)


def proposal_state(proposal: Event, tally: Tally, finality: Finality, now_ms: int,
                   recorded: Recorded | None = None) -> ProposalState:
    """The state of `proposal` at `now_ms` and what, if anything, the node must record."""
    current = tally.hash
    if kind_of(proposal) == "action":
        if tally.outcome == "adopted":  # §6: an action proposal is final once adopted
            record = None if recorded is not None else Recorded(current)
            return ProposalState("adopted", False, None, record)
        return ProposalState("pending", True, None, None)
    close = closes_ms(proposal)
    assert close is not None
    if recorded is None:
        if now_ms < close:
            return ProposalState("open", True, None, None)
        if not finality.final:
            return ProposalState("closed", True, None, None)
        return ProposalState("final", False, None, Recorded(current))
    # Once final, never provisional again: only a changed hash moves it (to amended).
    if recorded.final_hash == current:
        state = "amended" if recorded.amended_from else "final"
        return ProposalState(state, False, recorded.amended_from, None)
    return ProposalState("amended", False, recorded.final_hash,
                         Recorded(current, recorded.final_hash))
