"""Admissibility: may this valid, verified event enter the federation log? (PROTOCOL §4-§6)

Pure decision rules: no I/O, no clock. Like Synapse's event auth, everything the rules need
is passed in: the registry at the event's created_at, the rules, the referenced proposal,
the escalated proposal's outcome. `check()` returns None or raises `NotAdmissible` with a
stable code (node.governance.refusals). Deadlines, which need the clock, are in `deadlines`.

Rule steps, in order (the first failing step decides the code):
  1. the event's chapter is registered at its created_at                      (§2, §4)
  2. the author holds the role the type needs at created_at                   (§4)
  3. the body makes sense on its own: proposal close and effect, veto reason,
     delegation target, member key, feedback request close                    (§4, §5)
  4. the referenced proposal is held, of a kind the act applies to, and not
     younger than the act; a seal is not early and its tally is well formed   (§4-§6)

Derived admission (docs/protocol.md §5). Some verdicts read derived state (who is a
Connector or member when, which chapters exist, another proposal's outcome): the `DERIVED`
codes. Two nodes holding different events can judge them differently, and knowledge that
takes a role away would otherwise never converge. So a relayed event is refused only for a
state-independent reason (`relayed`); one failing a derived check is kept and exchanged like
any other, and every read that counts events asks again with the registry the whole set
gives (`refusal`, `admitted_acts`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol.charter import Rules
from ..protocol.errors import NotAdmissible
from ..protocol.events import ACT_TYPES, NODE_TYPES, Event
from ..protocol.times import parse_ms
from .proposals import closes_ms, effect_of, kind_of
from .refusals import refuse
from .registry import Registry, RegistrySource
from .tally_object import OUTCOMES, TALLY_FIELDS, tally_hash

__all__ = ["Escalated", "escalated_from", "APPLIES_TO", "DERIVED", "check", "needs_proposal", "relayed",
           "refusal", "admitted_acts", "check_effect"]

CONNECTOR_TYPES = frozenset(ACT_TYPES)  # endorse, veto, veto_withdraw, vote, delegation
PERSON_TYPES = frozenset({"proposal", "comment"})

# Step 4: which kinds of proposal each act applies to (a feedback request takes comments only).
APPLIES_TO: Mapping[str, frozenset[str]] = {
    "endorse": frozenset({"consent", "action"}),
    "veto": frozenset({"consent"}),
    "veto_withdraw": frozenset({"consent"}),
    "vote": frozenset({"vote"}),
    "delegation": frozenset({"vote"}),
    "seal": frozenset({"consent", "vote"}),
    "comment": frozenset({"consent", "action", "vote", "feedback_request"}),
}


# Refusals whose verdict depends on derived state: the registry at created_at (built from
# adopted effects, whose adoption hangs on acts that may still arrive) or the outcome of the
# escalated proposal. Every other refusal follows from the event and the proposal it names
# alone (both immutable), so every node that can judge it judges it the same.
DERIVED: frozenset[str] = frozenset({
    "unknown_chapter", "not_chapter_node", "not_member", "not_connector", "not_vote_author",
    "delegate_not_connector", "node_key_as_person", "already_connector",
    "effect_not_connector", "effect_unknown_chapter", "chapter_exists", "bad_escalation",
})


@dataclass(frozen=True, slots=True)
class Escalated:
    """What step 3 needs to know about the proposal named by `escalated_from`.

    Give its current tally `outcome` (provisional or final) and either the proposal event
    itself (`proposal=`, which also lets the rule check its kind) or its `closes_ms`.
    """

    outcome: str
    closes_ms: int | None = None
    proposal: Event | None = None

    def close(self) -> int | None:
        if self.closes_ms is not None:
            return self.closes_ms
        return closes_ms(self.proposal) if self.proposal is not None else None


def escalated_from(proposal: Event, held: Callable[[str], Event | None],
                   admitted: Callable[[Event], bool],
                   outcome: Callable[[Event], str]) -> Escalated | None:
    """What step 3 reads of the consent proposal `proposal` escalates, or None when the set
    does not hold it as an admitted proposal (then `bad_escalation`). The node and the audit
    both ask this; each gives its own look-up, admission and outcome (from the set held)."""
    source_id = proposal.body.get("escalated_from")
    if source_id is None:
        return None
    source = held(source_id)
    if source is None or source.type != "proposal" or not admitted(source):
        return None
    return Escalated(outcome=outcome(source), proposal=source)


def needs_proposal(event: Event) -> str | None:
    """The id of the proposal (or feedback request) the caller must look up for `check`."""
    return event.proposal if event.type in APPLIES_TO else None


def check(event: Event, *, registry: Registry, rules: Rules, proposal: Event | None = None,
          escalated: Escalated | tuple[str, int] | None = None) -> None:
    """None if `event` is admissible, else `NotAdmissible` with a specific code.

    registry: the registry at `event.created_ms` (`Timeline.at(event.created_ms)`).
    proposal: the event named by `body.proposal` when there is one, None if not held.
    escalated: (outcome, closes_ms) of the proposal named by `body.escalated_from`, if held.
    """
    _steps_1_to_3(event, registry, rules, escalated)
    if needs_proposal(event) is not None:
        _step4_reference(event, proposal, rules)


_ACT_RULES = Rules()  # steps 1-3 read no rule for an act (only a proposal's close does)


def _steps_1_to_3(event: Event, registry: Registry, rules: Rules,
                  escalated: Escalated | tuple[str, int] | None) -> None:
    _step1_chapter(event, registry)
    _step2_role(event, registry)
    _step3_body(event, registry, rules, escalated)


def relayed(event: Event, *, registry: Registry, rules: Rules, proposal: Event | None = None,
            escalated: Escalated | tuple[str, int] | None = None) -> str | None:
    """`check` for an event a peer relays: raise a state-independent refusal; return the
    `DERIVED` code this node's knowledge gives (the event is kept all the same), or None."""
    try:
        check(event, registry=registry, rules=rules, proposal=proposal, escalated=escalated)
        return None
    except NotAdmissible as e:
        if e.code not in DERIVED:
            raise
        derived = e.code
    _independent(event, rules, proposal)  # what the derived step stopped short of
    return derived


def refusal(event: Event, *, registry: Registry, rules: Rules, proposal: Event | None = None,
            escalated: Escalated | tuple[str, int] | None = None) -> str | None:
    """The code `check` refuses `event` with, or None: for reads over a held set."""
    try:
        check(event, registry=registry, rules=rules, proposal=proposal, escalated=escalated)
        return None
    except NotAdmissible as e:
        return e.code


def admitted_acts(acts: Iterable[Event], registry: RegistrySource) -> Iterator[Event]:
    """The acts the registry of the whole set admits: steps 1-3 again at each created_at.

    Acts are held once their proposal passed step 4, so only the derived checks can fail
    here; between two change points of a `Timeline` who is a Connector stays the same, so one
    registry serves each stretch."""
    points = getattr(registry, "change_points", None)
    starts: tuple[int, ...] = points() if points is not None else ()
    at: dict[int, Registry] = {}
    only: Registry | None = None if starts else registry.at(0)  # one registry throughout
    for act in acts:
        reg = only
        if reg is None:
            segment = bisect_right(starts, act.created_ms)
            reg = at.get(segment)
            if reg is None:
                reg = at[segment] = registry.at(act.created_ms)
        try:
            _steps_1_to_3(act, reg, _ACT_RULES, None)
        except NotAdmissible:
            continue
        yield act


# --- step 1 -----------------------------------------------------------------------------


def _step1_chapter(event: Event, registry: Registry) -> None:
    if registry.chapter(event.chapter) is None:
        refuse("unknown_chapter", f"chapter {event.chapter!r} is not registered at {event.created_at}")


# --- step 2 (§4 authors) ----------------------------------------------------------------


def _step2_role(event: Event, registry: Registry) -> None:
    author = event.author
    if event.type in NODE_TYPES:
        chapter = registry.chapter(event.chapter)
        if chapter is None or chapter.key != author:
            refuse("not_chapter_node",
                   f"a {event.type} event must be signed by the node key of chapter {event.chapter!r}")
    elif event.type in CONNECTOR_TYPES:
        if not registry.is_connector(author):
            refuse("not_connector", f"only a Connector may {_verb(event.type)} "
                                    f"(the author is not one at {event.created_at})")
    elif event.type == "proposal" and kind_of(event) == "vote":
        if not registry.is_connector(author):
            refuse("not_vote_author", "only a Connector may open a vote (§4)")
    elif event.type in PERSON_TYPES:
        if not registry.is_member(author):
            refuse("not_member", f"the author is neither a member nor a Connector at {event.created_at}")


def _verb(event_type: str) -> str:
    return {"endorse": "endorse", "veto": "veto", "veto_withdraw": "withdraw a veto",
            "vote": "vote", "delegation": "delegate a vote"}.get(event_type, event_type)


# --- step 3 -----------------------------------------------------------------------------


def _step3_body(event: Event, registry: Registry, rules: Rules,
                escalated: Escalated | tuple[str, int] | None) -> None:
    body = event.body
    if event.type == "proposal":
        _proposal_close(event, rules)
        if "escalated_from" in body:
            _escalation(event, escalated)
        _effect(event, registry)
    elif event.type == "veto":
        _veto_reason(event)
    elif event.type == "delegation":
        _self_delegation(event)
        to = body.get("to")
        if to is not None and not registry.is_connector(to):
            refuse("delegate_not_connector",
                   f"a vote can only be given to a Connector (not one at {event.created_at})")
    elif event.type == "member":
        if registry.is_node_key(body["key"]):
            refuse("node_key_as_person", "a chapter node key cannot be vouched for as a member")
    elif event.type == "feedback_request":
        _feedback_close(event)


def _independent(event: Event, rules: Rules, proposal: Event | None) -> None:
    """The checks of steps 3 and 4 that read no derived state, in their order."""
    if event.type == "proposal":
        _proposal_close(event, rules)
    elif event.type == "veto":
        _veto_reason(event)
    elif event.type == "delegation":
        _self_delegation(event)
    elif event.type == "feedback_request":
        _feedback_close(event)
    if needs_proposal(event) is not None:
        _step4_reference(event, proposal, rules)


def _veto_reason(event: Event) -> None:
    if not str(event.body.get("reason", "")).strip():
        refuse("empty_reason", "a veto needs a reason: the strong objection (§4)")


def _self_delegation(event: Event) -> None:
    if event.body.get("to") == event.author:
        refuse("self_delegation", "a Connector cannot delegate to themselves")


def _feedback_close(event: Event) -> None:
    if parse_ms(event.body["closes_at"]) <= event.created_ms:
        refuse("closes_too_soon", "a feedback request must close after it opens")


def _proposal_close(event: Event, rules: Rules) -> None:
    close = closes_ms(event)
    if close is not None and close < event.created_ms + rules.min_open_ms:
        # §5: closes_at at least rules.min_open_hours after created_at (votes too: see docs)
        refuse("closes_too_soon",
               f"closes_at must be at least {rules.min_open_ms // 60_000} minutes after created_at")


def _effect(event: Event, registry: Registry) -> None:
    effect = effect_of(event)
    if effect is not None:
        check_effect(*effect, registry)


def check_effect(name: str, fields: Mapping[str, Any], registry: Registry) -> None:
    """Whether an effect makes sense against `registry`: when proposed (step 3, at
    created_at) and again when it would apply (the Timeline, at closes_at)."""
    if name == "appoint_connector":
        if registry.is_node_key(fields["key"]):
            refuse("node_key_as_person", "a chapter node key cannot be appointed a Connector")
        if registry.chapter(fields["chapter"]) is None:
            refuse("effect_unknown_chapter", f"chapter {fields['chapter']!r} is not registered")
        if registry.is_connector(fields["key"]):
            refuse("already_connector", "that key is already a Connector")
    elif name == "remove_connector":
        if not registry.is_connector(fields["key"]):
            refuse("effect_not_connector", "that key is not a Connector")
    elif name == "admit_chapter":
        if registry.chapter(fields["slug"]) is not None or registry.is_node_key(fields["key"]):
            refuse("chapter_exists", f"chapter {fields['slug']!r} or its node key is already registered")
        if registry.is_connector(fields["key"]):
            refuse("node_key_as_person", "a Connector's key cannot become a node key")


def _escalation(event: Event, escalated: Escalated | tuple[str, int] | None) -> None:
    """§5: a vote may escalate a consent proposal that closed vetoed."""
    if escalated is None:
        refuse("bad_escalation", "escalated_from names a proposal this node does not hold")
    if not isinstance(escalated, Escalated):
        escalated = Escalated(outcome=escalated[0], closes_ms=escalated[1])
    source = escalated.proposal
    if source is not None and (source.id != event.body["escalated_from"]
                               or source.type != "proposal" or kind_of(source) != "consent"):
        refuse("bad_escalation", "escalated_from must name a consent proposal")
    close = escalated.close()
    if close is None or close > event.created_ms:
        refuse("bad_escalation", "the escalated proposal has not closed yet")
    if escalated.outcome != "vetoed":
        refuse("bad_escalation", f"only a vetoed consent proposal can be escalated "
                                 f"(its outcome is {escalated.outcome!r})")


# --- step 4 -----------------------------------------------------------------------------


def _step4_reference(event: Event, proposal: Event | None, rules: Rules) -> None:
    target = event.proposal
    if target is None:
        return  # a global delegation names no proposal
    if proposal is None or proposal.id != target or proposal.type not in ("proposal", "feedback_request"):
        refuse("unknown_proposal", f"proposal {target} is not held here")
    kind = "feedback_request" if proposal.type == "feedback_request" else kind_of(proposal)
    if kind not in APPLIES_TO[event.type]:
        allowed = " or ".join(sorted(APPLIES_TO[event.type]))
        refuse("wrong_proposal_kind", f"a {event.type} applies to {allowed} proposals, not {kind}")
    if event.created_ms < proposal.created_ms:
        refuse("act_before_proposal", "the event is dated before the proposal it refers to")
    if event.type == "seal":
        _seal(event, proposal, rules)


def _seal(seal: Event, proposal: Event, rules: Rules) -> None:
    close = closes_ms(proposal)
    assert close is not None
    if seal.created_ms < close + rules.grace_ms:
        refuse("seal_too_early", "a seal is published at closes_at + grace_seconds, not before (§6)")
    body = seal.body
    tally = body["tally"]
    kind = kind_of(proposal)
    if tally["proposal"] != proposal.id or tally["kind"] != kind:
        refuse("bad_seal", "the sealed tally is not about this proposal")
    if tally["outcome"] not in OUTCOMES[kind] or set(tally) != set(TALLY_FIELDS):
        refuse("bad_seal", f"outcome {tally['outcome']!r} is not one a {kind} proposal can have")
    if body["tally_hash"] != tally_hash(tally):
        refuse("bad_seal", "tally_hash is not the hash of the sealed tally")
