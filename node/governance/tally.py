"""Tallies of consent, action and vote proposals (PROTOCOL §5) and their `tally_hash`.

Pure decision rules: no I/O, no clock. A tally is a function of the proposal, the events it
is handed (only its §6 act set is read, so passing more is harmless) and who was who
(`RegistrySource`). "Latest act" of an author = greatest (`created_at`, id) (§5), so arrival
order and duplicates never matter. Arithmetic is exact: integers and `Fraction`s.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from ..protocol.charter import Rules
from ..protocol.events import Event
from .act_set import iter_acts
from .admissibility import admitted_acts
from .proposals import kind_of, quorum_of, threshold_of
from .registry import Registry, RegistrySource
from .resolution import Resolution, WeightTrace, resolve
from .tally_object import OUTCOMES, TALLY_FIELDS, Tally, tally_hash

__all__ = ["Tally", "OUTCOMES", "TALLY_FIELDS", "tally", "tally_hash", "vote_resolution",
           "vote_trace"]

def tally(proposal: Event, events: Iterable[Event], registry: RegistrySource,
          rules: Rules) -> Tally:
    """The §5 tally of `proposal` over the acts among `events`.

    `events` is the final act set (node.governance.seals.final_acts) or simply every event
    held: acts outside the §6 act set are never read, nor acts the registry does not admit
    (a peer keeps those: admissibility.admitted_acts). `registry` answers who was a Connector
    when: a `Timeline`, or one `Registry` used for every instant.
    """
    kind = kind_of(proposal)
    acts = admitted_acts(iter_acts(proposal, events), registry)
    if kind == "consent":
        return _consent(proposal, acts, registry.at_close(proposal))
    if kind == "action":
        return _action(proposal, acts, registry, rules)
    return _vote(proposal, resolve(proposal, acts, registry.at_close(proposal)), rules)


def vote_resolution(proposal: Event, events: Iterable[Event],
                    registry: RegistrySource) -> Resolution:
    """Where every eligible Connector's weight went on a vote proposal (for traces)."""
    return resolve(proposal, admitted_acts(iter_acts(proposal, events), registry),
                   registry.at_close(proposal))


def vote_trace(proposal: Event, events: Iterable[Event], registry: RegistrySource, *,
               max_path: int = 1000) -> tuple[WeightTrace, ...]:
    """For each eligible Connector (sorted by key): where their weight went and why it stopped."""
    return vote_resolution(proposal, events, registry).traces(max_path=max_path)


# --- consent (§5) -----------------------------------------------------------------------


def _consent(proposal: Event, acts: Iterable[Event], at_close: Registry) -> Tally:
    latest: dict[str, tuple[tuple[str, str], bool]] = {}  # author -> (order key, is_veto)
    endorsers: set[str] = set()
    for act in acts:
        if act.type == "endorse":
            endorsers.add(act.author)
        elif act.type in ("veto", "veto_withdraw"):
            key = act.order_key
            seen = latest.get(act.author)
            if seen is None or key > seen[0]:
                latest[act.author] = (key, act.type == "veto")
    # §5: only vetoes by authors who are Connectors at closes_at count; a veto stands if
    # that Connector's latest veto/veto_withdraw is a veto.
    vetoes = sum(1 for a, (_, is_veto) in latest.items() if is_veto and at_close.is_connector(a))
    endorsements = sum(1 for a in endorsers if at_close.is_connector(a))
    return Tally(
        proposal=proposal.id, kind="consent",
        outcome="vetoed" if vetoes else "adopted",
        eligible=len(at_close.connectors), vetoes=vetoes, endorsements=endorsements,
    )


# --- action: the 3-Connectors rule (§5) -------------------------------------------------


def _action(proposal: Event, acts: Iterable[Event], registry: RegistrySource,
            rules: Rules) -> Tally:
    needed = rules.action_endorsements
    endorsing: set[str] = set()
    adopted_at: str | None = None
    # The author counts if a Connector when they propose (§5 "the author included").
    if registry.at(proposal.created_ms).is_connector(proposal.author):
        endorsing.add(proposal.author)
        if len(endorsing) >= needed:
            adopted_at = proposal.created_at
    endorsements = sorted((a for a in acts if a.type == "endorse"), key=lambda e: e.order_key)
    for act in endorsements:
        if act.author in endorsing:
            continue  # a repeated endorsement changes nothing
        # a member's endorsement never counts: `tally` hands over admitted acts only, whose
        # author is a Connector at their created_at (admissibility.admitted_acts)
        endorsing.add(act.author)
        if adopted_at is None and len(endorsing) >= needed:
            adopted_at = act.created_at  # the endorsement that brings the count to N
    return Tally(
        proposal=proposal.id, kind="action",
        outcome="adopted" if adopted_at is not None else "pending",
        endorsements=len(endorsing), adopted_at=adopted_at,
    )


# --- vote with delegations (§5) ---------------------------------------------------------


def _vote(proposal: Event, resolution: Resolution, rules: Rules) -> Tally:
    counts = resolution.counts()
    yes, no, abstain = counts["yes"], counts["no"], counts["abstain"]
    eligible = resolution.eligible
    cast = yes + no + abstain
    # §5: quorum is the share of eligible weight that must be cast; adopted iff the quorum
    # is met and yes > t × (yes + no). Fractions only: 0.1 means exactly 1/10.
    quorum_met = Fraction(cast) >= quorum_of(proposal, rules) * eligible
    if not quorum_met:
        outcome = "no_quorum"
    elif yes > threshold_of(proposal) * (yes + no):
        outcome = "adopted"
    else:
        outcome = "rejected"
    return Tally(
        proposal=proposal.id, kind="vote", outcome=outcome, eligible=eligible,
        yes=yes, no=no, abstain=abstain, not_cast=eligible - cast,
    )
