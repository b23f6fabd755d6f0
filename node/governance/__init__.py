"""Pure decision rules: no I/O, no clock.

The organisation's rules (PROTOCOL §4-§7) as deterministic functions over the charter and a
set of events. Time is always passed in (`now_ms`); nothing here reads a clock, a file, a
socket or a database, and nothing mutates its input. Equal sets of events give byte-identical
results whatever order they arrived in: every derivation sorts by (created_at, id).

    timeline    who was who when: Timeline.build(charter, events, sealed_lists).at(t_ms)
    admissibility  check(event, registry=..., rules=..., proposal=..., escalated=...);
                relayed() for a peer's event, refusal() and admitted_acts() for reads
    deadlines   check_deadline(event, proposal, rules, now_ms, from_peer)
    act_set     the §6 act set of a proposal
    tally       consent, action (3-Connectors rule), vote (delegations); tally_hash
    resolution  where each Connector's vote went (traces)
    seals       counted seals, final act set, finality, equivocation
    lifecycle   a proposal's states and transitions, as data
    decision    all of the above for one proposal
    refusals    every refusal code
"""

from __future__ import annotations

from ..protocol.events import ACT_TYPES, NODE_TYPES
from .act_set import act_set, dedupe, is_act_of
from .admissibility import (
    APPLIES_TO,
    DERIVED,
    Escalated,
    admitted_acts,
    check,
    escalated_from,
    needs_proposal,
    refusal,
    relayed,
)
from .deadlines import check_deadline
from .decision import Decision, ProposalResult, decide, evaluate
from .lifecycle import (
    INITIAL,
    STATES,
    TRANSITIONS,
    ProposalState,
    Recorded,
    Transition,
    can_move,
    proposal_state,
)
from .proposals import (
    closes_ms,
    effect_of,
    has_effect,
    kind_of,
    quorum_of,
    threshold_of,
)
from .refusals import DEADLINE, NOT_ADMISSIBLE, REFUSAL_CODES
from .registry import Chapter, Connector, Registry, RegistrySource
from .resolution import REASONS, Resolution, WeightTrace
from .seals import (
    SEAL_STATUSES,
    Equivocation,
    Finality,
    SealReview,
    SealStatus,
    final_acts,
    finality,
    list_matches,
    review_seals,
)
from .tally import (
    OUTCOMES,
    TALLY_FIELDS,
    Tally,
    tally,
    tally_hash,
    vote_resolution,
    vote_trace,
)
from .timeline import (
    AppliedEffect,
    Timeline,
    escalation_sources,
    is_registry_relevant,
    registry_relevant,
)

__all__ = [
    # who was who
    "Timeline", "Registry", "RegistrySource", "Chapter", "Connector", "AppliedEffect",
    "is_registry_relevant", "registry_relevant", "escalation_sources",
    # admissibility and deadlines
    "check", "check_deadline", "Escalated", "escalated_from", "APPLIES_TO", "needs_proposal",
    "relayed", "refusal", "admitted_acts", "DERIVED",
    "NOT_ADMISSIBLE", "DEADLINE", "REFUSAL_CODES",
    # act sets and tallies
    "act_set", "dedupe", "is_act_of", "tally", "tally_hash", "Tally", "OUTCOMES", "TALLY_FIELDS",
    "vote_resolution", "vote_trace", "Resolution", "WeightTrace", "REASONS",
    # seals and finality
    "review_seals", "final_acts", "finality", "list_matches", "SealReview", "SealStatus",
    "Equivocation", "Finality", "SEAL_STATUSES",
    # lifecycle
    "proposal_state", "ProposalState", "Recorded", "STATES", "INITIAL", "TRANSITIONS",
    "Transition", "can_move",
    # one proposal, decided
    "decide", "Decision", "evaluate", "ProposalResult",
    # event type groups (re-exported from node.protocol.events)
    "ACT_TYPES", "NODE_TYPES",
    # reading proposals
    "kind_of", "closes_ms", "effect_of", "has_effect", "quorum_of", "threshold_of",
]
