"""Proposals as this node reads them: each one's report (governance.evaluate over the acts
held), the listing, and whether the whole set held admits a proposal or an act."""

from __future__ import annotations

from typing import Any

from .. import governance as gov
from ..protocol.charter import Charter
from ..protocol.errors import NotFound
from ..protocol.events import Event
from ..store import Store
from .registry import HeldRegistry

__all__ = ["ProposalViews"]


class ProposalViews:
    __slots__ = ("store", "charter", "registry")

    def __init__(self, store: Store, charter: Charter, registry: HeldRegistry) -> None:
        self.store, self.charter, self.registry = store, charter, registry

    def compute(self, proposal: Event, now_ms: int | None = None,
                trace: bool = False) -> gov.ProposalResult:
        """The proposal's one report, from the acts the store holds."""
        timeline = self.registry.timeline()
        if self.store.seal_marker(proposal.id) == (0, 0):
            # No seal restricts the act set: the acts that can decide it are enough, however
            # many one Connector signed (hardening campaign 6, act-set amplification).
            chapters, connectors = timeline.ever()
            acts = self.store.essential_acts(
                proposal.id, close_ms=gov.closes_ms(proposal),
                globals_too=gov.kind_of(proposal) != "action",
                change_points=timeline.change_points(), chapters=chapters,
                connectors=connectors)
        else:
            acts = self.store.events_of(proposal=proposal.id, global_delegations=True)
        seals = [a for a in acts if a.type == "seal"]
        record = self.store.finality(proposal.id)
        recorded = gov.Recorded(record["final_hash"], record["amended_from"]) if record else None
        return gov.evaluate(timeline, proposal, acts, seals,
                            self.store.sealed_for(proposal.id), now_ms=now_ms,
                            recorded=recorded, trace=trace)

    def report(self, pid: str, now_ms: int) -> dict[str, Any]:
        """PROTOCOL §6, §8: the proposal, its tally, tally_hash, final, seals held and missing."""
        proposal = self.store.get(pid)
        if proposal is None or proposal.type != "proposal":
            raise NotFound(f"no proposal {pid} on this node")
        refused = self.not_admitted(proposal)
        if refused is not None:
            raise NotFound(f"proposal {pid} is held but not admitted ({refused}): it counts "
                           "for nothing", code="not_admitted")
        result = self.compute(proposal, now_ms, trace=True)
        return {"proposal": proposal.to_json(), **result.to_json()}

    def listing(self, now_ms: int, *, kind: str | None = None, state: str | None = None,
                with_missing: bool = False) -> list[dict[str, Any]]:
        out = []
        for proposal in self.store.events_of(types=["proposal"]):
            if kind and proposal.body["kind"] != kind:
                continue
            if self.not_admitted(proposal) is not None:
                continue
            result = self.compute(proposal, now_ms)
            if state and result.state != state:
                continue
            out.append({"id": proposal.id, "title": proposal.body["title"],
                        "kind": proposal.body["kind"], "chapter": proposal.chapter,
                        "closes_at": proposal.body.get("closes_at"), "state": result.state,
                        "outcome": result.tally["outcome"], "final": result.final,
                        "tally_hash": result.tally_hash,
                        **({"missing_seals": result.missing_seals} if with_missing else {})})
        return out

    def not_admitted(self, proposal: Event) -> str | None:
        """Why the whole set held refuses `proposal` (a refusal code), or None.

        A peer's proposal is kept even when this node could not admit it (derived
        admission, docs/protocol.md §5); such a proposal is listed, tallied and sealed by
        no one, here as anywhere else."""
        return gov.refusal(proposal, registry=self.registry.at(proposal.created_ms),
                           rules=self.charter.rules, escalated=self.escalated(proposal))

    def escalated(self, proposal: Event) -> gov.Escalated | None:
        """The consent proposal `proposal` escalates, as step 3 reads it (its current
        outcome here), or None."""
        return gov.escalated_from(
            proposal, self.store.get, lambda source: self.not_admitted(source) is None,
            lambda source: self.compute(source).tally["outcome"])

    def counts(self, event: Event) -> bool:
        """Whether a held proposal or act counts: admitted by the whole set, and an act's
        proposal too (what the chapter is told of, node.notices.webhooks)."""
        if event.type == "proposal":
            return self.not_admitted(event) is None
        ref = gov.needs_proposal(event)
        if ref is not None:
            proposal = self.store.get(ref)
            if proposal is None or (proposal.type == "proposal"
                                    and self.not_admitted(proposal) is not None):
                return False
        if event.type in gov.ACT_TYPES:
            return any(True for _ in gov.admitted_acts([event], self.registry.timeline()))
        return True
