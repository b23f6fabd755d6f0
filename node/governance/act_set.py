"""The act set of a proposal (PROTOCOL §6): the events its tally reads.

Pure decision rules: no I/O, no clock. §6: every `endorse`, `veto`, `veto_withdraw`, `vote`
and `delegation` whose `body.proposal` is the proposal's id, plus every global delegation
(`proposal: null`), each with `created_at <= closes_at`. Comments and seals are not acts.
An action proposal has no close: its act set is every act naming it; global delegations are
left out because no action tally reads a delegation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..protocol.events import ACT_TYPES, Event
from .proposals import closes_ms, kind_of

__all__ = ["act_set", "iter_acts", "is_act_of", "dedupe"]


def is_act_of(event: Event, proposal_id: str, close_ms: int | None, *, globals_too: bool) -> bool:
    """Whether `event` belongs to the act set of the proposal `proposal_id` (§6)."""
    if event.type not in ACT_TYPES:
        return False  # §6: comments and seals are not acts
    if close_ms is not None and event.created_ms > close_ms:
        return False  # §6: each with created_at <= closes_at
    target = event.body.get("proposal")
    if target == proposal_id:
        return True
    return globals_too and event.type == "delegation" and target is None


def iter_acts(proposal: Event, events: Iterable[Event]) -> Iterator[Event]:
    """The act set in input order, duplicates included (the tally's fast path)."""
    pid = proposal.id
    close = closes_ms(proposal)
    globals_too = kind_of(proposal) != "action"
    for event in events:
        if is_act_of(event, pid, close, globals_too=globals_too):
            yield event


def dedupe(events: Iterable[Event]) -> tuple[Event, ...]:
    """One event per id, in (created_at, id) order: the order every derivation sees."""
    return tuple(sorted({e.id: e for e in events}.values(), key=lambda e: e.order_key))


def act_set(proposal: Event, events: Iterable[Event]) -> tuple[Event, ...]:
    """§6 act set, one event per id, in (created_at, id) order."""
    return dedupe(iter_acts(proposal, events))
