"""Deadlines: whether an admissible event arrives inside its window (PROTOCOL §6).

Pure decision rules: no I/O, no clock (`now_ms` is passed in). Raises `DeadlinePassed` (or
`NotAdmissible("not_own_chapter")`) with a stable code; returns None when the event may enter.

From a client (a person sending through this node):
  - every event, not only acts, must be dated within grace_seconds of the node's clock,
    either way: a person cannot backdate a proposal or a comment, nor date one ahead;
  - an act on a consent or vote proposal is taken only while now < closes_at + grace, and
    only if created_at <= closes_at (§6);
  - if `own_chapter` is given, the event's `chapter` must be it (§6).
From a peer (relaying what another node accepted):
  - acts dated after closes_at are refused (`after_close`); acts dated by closes_at are taken
    whenever they arrive (§6). The peer's own clock window is not re-checked.
Both:
  - action proposals have no close, so acts on them have no deadline;
  - a comment on a feedback request must be dated by its closes_at (`feedback_closed`);
  - global delegations name no proposal and have no deadline but the client window.
"""

from __future__ import annotations

from ..protocol.charter import Rules
from ..protocol.events import ACT_TYPES, Event
from .proposals import closes_ms, kind_of
from .refusals import refuse, too_late

__all__ = ["check_deadline"]


def check_deadline(event: Event, proposal: Event | None, rules: Rules, now_ms: int,
                   from_peer: bool, *, own_chapter: str | None = None) -> None:
    """None if `event` is inside its §6 window at `now_ms`, else `DeadlinePassed`.

    proposal: the event named by `body.proposal` (None for events that name none).
    """
    if not from_peer:
        if own_chapter is not None and event.chapter != own_chapter:
            refuse("not_own_chapter", f"this node accepts from clients only events of chapter "
                                      f"{own_chapter!r}; send it to its own chapter's node")
        if event.created_ms < now_ms - rules.grace_ms:
            too_late("created_at_too_old", f"created_at {event.created_at} is more than "
                                           f"{rules.grace_ms // 1000} s behind this node's clock")
        if event.created_ms > now_ms + rules.grace_ms:
            too_late("created_at_in_future", f"created_at {event.created_at} is more than "
                                             f"{rules.grace_ms // 1000} s ahead of this node's clock")
    if proposal is None:
        return
    if event.type == "comment" and proposal.type == "feedback_request":
        close = closes_ms(proposal)
        if close is not None and event.created_ms > close:
            too_late("feedback_closed", "the feedback request has closed")
        return
    if event.type not in ACT_TYPES or proposal.type != "proposal" or kind_of(proposal) == "action":
        return  # comments and seals are not acts; action proposals have no close (§6)
    close = closes_ms(proposal)
    assert close is not None
    if event.created_ms > close:
        too_late("after_close", f"the proposal closed at {proposal.body['closes_at']}")
    if not from_peer and now_ms >= close + rules.grace_ms:
        too_late("voting_closed", "the proposal closed and its grace period is over")
