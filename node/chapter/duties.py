"""The node's duties as time passes (PROTOCOL §6): seal each closed proposal once, and
record finality (the first final hash, any later amendment) when the lifecycle asks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import governance as gov
from ..protocol.charter import Charter
from ..protocol.events import Event
from ..protocol.merkle import acts_root
from ..protocol.times import parse_ms
from ..store import Store
from .proposals import ProposalViews
from .registry import HeldRegistry
from .signer import NodeSigner

__all__ = ["Duties", "SEAL_HOLD_MS"]

# After a restore (node.operations.backup) the node may lack seals it signed after the backup;
# it waits this long for its peers to hand them back before sealing those proposals again (no
# self-equivocation).
SEAL_HOLD_MS = 60_000


class Duties:
    __slots__ = ("store", "charter", "signer", "registry", "proposals", "published",
                 "_evaluated")

    def __init__(self, store: Store, charter: Charter, signer: NodeSigner,
                 registry: HeldRegistry, proposals: ProposalViews,
                 published: Callable[[Event], None]) -> None:
        self.store, self.charter, self.signer = store, charter, signer
        self.registry, self.proposals = registry, proposals
        self.published = published  # a seal of ours was stored: tell who listens
        self._evaluated: dict[str, tuple[Any, ...]] = {}

    def publish_due_seals(self, now_ms: int) -> list[Event]:
        """At closes_at + grace, seal every closed proposal we have not sealed yet (§6)."""
        made = []
        grace = self.charter.rules.grace_ms
        hold = int(self.store.get_meta("hold_seals_until_ms") or 0)
        for proposal in self.store.events_of(types=["proposal"]):
            closes = proposal.body.get("closes_at")
            if proposal.body["kind"] == "action" or closes is None:
                continue
            if now_ms < parse_ms(closes) + grace:
                continue
            if now_ms < hold and parse_ms(closes) + grace < hold - SEAL_HOLD_MS:
                continue  # restored from a backup: our earlier seal may still come back
            if any(s.author == self.signer.public for s in
                   self.store.events_of(types=["seal"], proposal=proposal.id)):
                continue
            if self.signer.chapter not in self.registry.at(parse_ms(closes)).chapters:
                continue  # a chapter admitted after the close has nothing to seal
            if self.proposals.not_admitted(proposal) is not None:
                continue  # held, not admitted: nothing to seal
            made.append(self._seal(proposal, now_ms))
        return made

    def _seal(self, proposal: Event, now_ms: int) -> Event:
        timeline = self.registry.timeline()
        # the acts this node admits: those a node refusing them at ingest would hold too
        acts = tuple(gov.admitted_acts(gov.act_set(proposal, self.store.events_of(
            proposal=proposal.id, global_delegations=True)), timeline))
        ids = sorted(a.id for a in acts)
        tally = gov.tally(proposal, acts, timeline, self.charter.rules).to_json()
        seal = self.signer.sign("seal", {
            "proposal": proposal.id, "acts_root": acts_root(ids), "acts_count": len(ids),
            "tally": tally, "tally_hash": gov.tally_hash(tally)}, now_ms)
        self.store.insert_own_seal(seal, proposal.id, ids, now_ms)
        self.published(seal)
        return seal

    def record_finality(self, now_ms: int) -> list[tuple[str, dict[str, Any]]]:
        """Store what the lifecycle asks: the first final hash, and any later amendment.

        Returns (proposal id, report) for each proposal recorded now. A proposal is tallied
        again only when something that could change its answer happened: a new event it reads
        or a sealed list (not yet final), the seal timeout passing, or new seals (final: only
        seals can amend it). So a flood of acts on one proposal costs one tally per duty round
        that saw new ones, not one per round forever.
        """
        recorded = []
        rules = self.charter.rules
        for proposal in self.store.events_of(types=["proposal"]):
            closes = proposal.body.get("closes_at")
            if closes is not None and now_ms < parse_ms(closes):
                continue  # still open: it cannot be final yet
            seals = self.store.seal_marker(proposal.id)
            if self.store.finality(proposal.id) is not None:
                marker: tuple[Any, ...] = ("final", *seals)
            else:
                timed_out = closes is not None and now_ms > (
                    parse_ms(closes) + rules.grace_ms + rules.seal_timeout_ms)
                marker = ("open", self.store.proposal_head(proposal.id), *seals, timed_out)
            if self._evaluated.get(proposal.id) == marker:
                continue
            if self.proposals.not_admitted(proposal) is not None:
                continue  # judged again each round: the registry may come to admit it
            result = self.proposals.compute(proposal, now_ms)
            if result.record is not None:
                self.store.record_final(proposal.id, result.record.final_hash, now_ms,
                                        amended_from=result.record.amended_from)
                recorded.append((proposal.id, {
                    "state": result.state, "tally": result.tally,
                    "tally_hash": result.tally_hash, "amended_from": result.amended_from}))
                marker = ("final", *seals)
            self._evaluated[proposal.id] = marker
        return recorded
