"""Every refusal code the governance rules raise, in one table.

Pure decision rules: no I/O, no clock. The codes are part of the protocol (clients and peers
switch on them); `docs/governance.md` lists the same table, and a test keeps the two equal.
"""

from __future__ import annotations

from typing import NoReturn

from ..protocol.errors import DeadlinePassed, NotAdmissible

__all__ = ["NOT_ADMISSIBLE", "DEADLINE", "REFUSAL_CODES", "refuse", "too_late"]

# code -> when it is raised (NotAdmissible: the rules refuse the event whatever the time)
NOT_ADMISSIBLE: dict[str, str] = {
    "unknown_chapter": "the event's `chapter` is not a chapter registered at its created_at",
    "not_chapter_node": "a node-key event (member, seal, feedback_request, chapter_url) not "
                        "signed by the node key of the chapter it names",
    "not_member": "a proposal or comment whose author is neither a vouched member nor a "
                  "Connector at its created_at",
    "not_connector": "an endorse, veto, veto_withdraw, vote or delegation whose author is not "
                     "a Connector at its created_at",
    "not_vote_author": "a `vote` proposal opened by someone who is not a Connector",
    "unknown_proposal": "the event refers to a proposal (or feedback request) this node does "
                        "not hold",
    "wrong_proposal_kind": "the act does not apply to that kind of proposal (veto on an "
                           "action, vote on a consent proposal, seal on an action, ...)",
    "act_before_proposal": "the act's created_at is earlier than the proposal's",
    "self_delegation": "a delegation to its own author",
    "delegate_not_connector": "a delegation to a key that is not a Connector at its created_at",
    "closes_too_soon": "a consent or vote proposal closing less than rules.min_open_hours "
                       "after its created_at, or a feedback request closing before it opens",
    "bad_escalation": "`escalated_from` does not name a consent proposal that has closed "
                      "(closes_at <= this created_at) with outcome `vetoed`",
    "empty_reason": "a veto whose reason is only white space",
    "seal_too_early": "a seal created before closes_at + grace_seconds",
    "bad_seal": "a seal whose tally is not about its proposal, not of its kind, or whose "
                "tally_hash is not the hash of its tally",
    "node_key_as_person": "a chapter node key used as a person: vouched as a member or "
                          "appointed as a Connector",
    "already_connector": "an appoint_connector effect for a key that is already a Connector",
    "effect_not_connector": "a remove_connector effect for a key that is not a Connector",
    "effect_unknown_chapter": "an appoint_connector effect naming an unregistered chapter",
    "chapter_exists": "an admit_chapter effect whose slug or node key is already registered",
    "not_own_chapter": "a client sent an event whose `chapter` is not this node's slug (§6)",
}

# code -> when it is raised (DeadlinePassed: the event came outside its window, §6)
DEADLINE: dict[str, str] = {
    "after_close": "an act created after its proposal's closes_at",
    "voting_closed": "a client act received at or after closes_at + grace_seconds",
    "created_at_too_old": "a client event created more than grace_seconds before the node's clock",
    "created_at_in_future": "a client event created more than grace_seconds after the node's clock",
    "feedback_closed": "a comment on a feedback request created after its closes_at",
}

REFUSAL_CODES: frozenset[str] = frozenset(NOT_ADMISSIBLE) | frozenset(DEADLINE)


def refuse(code: str, message: str) -> NoReturn:
    """Raise the one admissibility refusal for `code` (a code missing from the table is a bug)."""
    assert code in NOT_ADMISSIBLE, code
    raise NotAdmissible(message, code=code)


def too_late(code: str, message: str) -> NoReturn:
    """Raise the one deadline refusal for `code`."""
    assert code in DEADLINE, code
    raise DeadlinePassed(message, code=code)
