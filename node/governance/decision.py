"""One proposal, everything decided: final act set, tally, seals, finality, state (§5-§7).

Pure decision rules: no I/O, no clock (`now_ms` is passed in). This is the one call the node
and the audit tool make per proposal; each step is also usable on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..protocol.charter import Rules
from ..protocol.events import Event
from .act_set import iter_acts
from .admissibility import admitted_acts
from .lifecycle import ProposalState, Recorded, proposal_state
from .proposals import closes_ms, kind_of
from .registry import RegistrySource
from .seals import Finality, SealReview, final_acts, finality, review_seals
from .tally import Tally, tally, vote_resolution
from .timeline import Timeline

__all__ = ["Decision", "decide", "ProposalResult", "evaluate"]


@dataclass(frozen=True, slots=True)
class Decision:
    proposal: Event
    tally: Tally
    tally_hash: str
    seals: SealReview | None  # None for action proposals (never sealed)
    finality: Finality
    state: ProposalState
    counted_acts: int  # size of the act set the tally read


def decide(proposal: Event, events: Iterable[Event], registry: RegistrySource, rules: Rules,
           sealed_lists: Mapping[str, Sequence[str]], now_ms: int,
           recorded: Recorded | None = None) -> Decision:
    """Decide `proposal` from the events held about it.

    events: at least its acts, the global delegations and its seals (more is harmless).
    registry: the `Timeline` (its `at_close` keeps an effect proposal out of its own tally).
    recorded: what the node stored when the proposal first became final, if it did.
    """
    held = list(events)
    review: SealReview | None = None
    at_close = None
    if kind_of(proposal) != "action":
        at_close = registry.at_close(proposal)
        review = review_seals(proposal, (e for e in held if e.type == "seal"),
                              sealed_lists, at_close, rules)
    acts = final_acts(proposal, held, review)
    result = tally(proposal, acts, registry, rules)
    held_ids = {e.id for e in held}
    done = finality(proposal, review, held_ids, at_close, rules, now_ms, tally=result)
    state = proposal_state(proposal, result, done, now_ms, recorded)
    return Decision(proposal, result, result.hash, review, done, state, len(acts))


# --- the node's one call ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposalResult:
    """The one report of a proposal (§6 "A node reports ...", §8): built once by `evaluate`,
    rendered alike by the API (`to_json`), the CLI and the offline audit. One name per field."""

    proposal: str
    kind: str
    title: str
    state: str  # lifecycle state (node.governance.lifecycle.STATES)
    tally: dict[str, Any]  # the §5 tally object
    tally_hash: str
    final: bool
    adopted_at: str | None  # action: created_at of the green-light endorsement
    seals: list[dict[str, Any]]  # every seal held, judged (status, agrees with final hash)
    missing_seals: list[str]  # chapters registered at closes_at with no counted seal
    equivocations: list[dict[str, Any]]  # {"chapter", "seals"}: one chapter, several seals
    acts_counted: int  # the size of the act set the tally read
    late_acts: list[str]  # acts dated by closes_at but in no counted seal: left out (§6)
    trace: list[dict[str, Any]] | None  # vote: where each Connector's weight went
    amended_from: str | None
    record: Recorded | None  # what the node should store now (first final, or amended)
    decision: Decision

    def to_json(self) -> dict[str, Any]:
        """What `GET /api/v1/proposals/{id}` answers, but the proposal event itself."""
        return {
            "id": self.proposal, "kind": self.kind, "title": self.title, "state": self.state,
            "tally": self.tally, "tally_hash": self.tally_hash, "final": self.final,
            "adopted_at": self.adopted_at, "seals": self.seals,
            "missing_seals": self.missing_seals, "equivocations": self.equivocations,
            "acts_counted": self.acts_counted, "late_acts": self.late_acts,
            "amended": {"from": self.amended_from} if self.amended_from else None,
            "trace": self.trace,
        }


def evaluate(timeline: Timeline, proposal: Event, acts: Iterable[Event], seals: Iterable[Event],
             sealed: Mapping[str, Sequence[str]], *, now_ms: int | None = None,
             recorded: Recorded | None = None, trace: bool = True,
             max_path: int = 100) -> ProposalResult:
    """Everything a node reports about one proposal (§6 "A node reports ...", §8).

    acts: the proposal's acts and the global delegations held; seals: its seals held;
    sealed: seal id -> sealed act ids. now_ms None means "no clock": the proposal is judged
    as at its closes_at (final only if every seal is in), which is enough to read an outcome.
    """
    held = list(acts) + [s for s in seals if s.type == "seal"]
    close = closes_ms(proposal)
    now = now_ms if now_ms is not None else (close if close is not None else proposal.created_ms)
    decision = decide(proposal, held, timeline, timeline.rules, sealed, now, recorded)
    counted = final_acts(proposal, held, decision.seals)
    counted_ids = {a.id for a in counted}
    late = sorted(a.id for a in admitted_acts(iter_acts(proposal, held), timeline)
                  if a.id not in counted_ids)
    weights = None
    if trace and decision.tally.kind == "vote":
        weights = [w.to_json() for w in vote_resolution(proposal, counted, timeline)
                   .traces(max_path=max_path)]
    review = decision.seals
    final_hash = decision.tally_hash if decision.finality.final else None
    return ProposalResult(
        proposal=proposal.id, kind=decision.tally.kind, title=proposal.body.get("title", ""),
        state=decision.state.state,
        tally=decision.tally.to_json(), tally_hash=decision.tally_hash,
        final=decision.state.state in ("final", "amended", "adopted"),
        adopted_at=decision.tally.adopted_at,
        seals=[s.to_json(final_hash) for s in review.seals] if review else [],
        missing_seals=list(decision.finality.missing_chapters),
        equivocations=[{"chapter": e.chapter, "seals": list(e.seals)}
                       for e in review.equivocations] if review else [],
        acts_counted=decision.counted_acts, late_acts=late, trace=weights,
        amended_from=decision.state.amended_from, record=decision.state.record,
        decision=decision,
    )
