"""Counted seals, the final act set and finality (PROTOCOL §6, §7).

Pure decision rules: no I/O, no clock (`now_ms` is passed in). A seal is a chapter node's
signed view of the act set it held at close; the sealed id list travels beside it and must
match its `acts_root` and `acts_count` (node.protocol.merkle). Given the same seals and lists, every
node derives the same final act set, hence the same final `tally_hash`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from ..protocol.charter import Rules
from ..protocol.events import Event
from ..protocol.merkle import acts_root
from .act_set import dedupe, iter_acts
from .proposals import closes_ms, kind_of
from .registry import Registry
from .tally import Tally

__all__ = [
    "SEAL_STATUSES",
    "SealStatus",
    "Equivocation",
    "SealReview",
    "Finality",
    "list_matches",
    "seal_status",
    "review_seals",
    "final_acts",
    "finality",
]

# Why a seal held for a proposal does or does not count (§6 "Counted seals").
SEAL_STATUSES: Mapping[str, str] = {
    "counted": "counts: its act list is part of the final act set",
    "not_registered": "its chapter was not registered at closes_at",
    "not_chapter_node": "not signed by the node key of the chapter it names",
    "too_early": "created before closes_at + grace_seconds (acts could still arrive)",
    "too_late": "created after closes_at + grace_seconds + seal_timeout_seconds",
    "list_missing": "its sealed id list is not held yet",
    "list_mismatch": "its sealed id list does not match its acts_root / acts_count",
}


@dataclass(frozen=True, slots=True)
class SealStatus:
    seal: str  # the seal event's id
    chapter: str
    created_at: str
    acts_count: int
    acts_root: str
    tally_hash: str
    status: str  # one of SEAL_STATUSES

    @property
    def counted(self) -> bool:
        return self.status == "counted"

    def to_json(self, final_hash: str | None = None) -> dict[str, Any]:
        """§6 report line: chapter, acts_count, acts_root, and agreement with the final hash."""
        return {
            "seal": self.seal, "chapter": self.chapter, "created_at": self.created_at,
            "acts_count": self.acts_count, "acts_root": self.acts_root,
            "tally_hash": self.tally_hash, "status": self.status,
            "agrees": None if final_hash is None else self.tally_hash == final_hash,
        }


@dataclass(frozen=True, slots=True)
class Equivocation:
    """One chapter node signed different seals for one proposal. Both count (§6 counts
    seals, not chapters); the pair is reported so people can ask that chapter why."""

    chapter: str
    seals: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SealReview:
    proposal: str
    seals: tuple[SealStatus, ...]  # every seal held, by (chapter, created_at, id)
    union: frozenset[str]  # §6 final act set: union of the counted seals' lists
    equivocations: tuple[Equivocation, ...]

    @property
    def counted(self) -> tuple[SealStatus, ...]:
        return tuple(s for s in self.seals if s.counted)

    @property
    def sealed_chapters(self) -> frozenset[str]:
        return frozenset(s.chapter for s in self.seals if s.counted)

    @property
    def mismatched(self) -> tuple[SealStatus, ...]:
        return tuple(s for s in self.seals if s.status == "list_mismatch")


@dataclass(frozen=True, slots=True)
class Finality:
    final: bool
    missing_chapters: tuple[str, ...]  # registered at closes_at, no counted seal held
    missing_acts: tuple[str, ...]  # listed by a counted seal, not held
    reason: str  # all_sealed | timed_out | waiting | adopted | pending


def list_matches(seal: Event, ids: Sequence[str]) -> bool:
    """§6: anyone can check a sealed list against `acts_root` and `acts_count`."""
    if len(ids) != seal.body["acts_count"] or len(set(ids)) != len(ids):
        return False
    try:
        return bool(acts_root(ids) == seal.body["acts_root"])
    except ValueError:  # an id that is not hex
        return False


def seal_status(seal: Event, proposal: Event, sealed_list: Sequence[str] | None,
                at_close: Registry, rules: Rules) -> str:
    """Whether one seal counts (§6), and if not, why."""
    close = closes_ms(proposal)
    assert close is not None, "only consent and vote proposals are sealed"
    chapter = at_close.chapter(seal.chapter)
    if chapter is None:
        return "not_registered"  # §6: seals from chapters registered at closes_at
    if chapter.key != seal.author:
        return "not_chapter_node"
    if seal.created_ms < close + rules.grace_ms:
        return "too_early"  # §6: its created_at no earlier than closes_at + grace
    if seal.created_ms > close + rules.grace_ms + rules.seal_timeout_ms:
        return "too_late"  # §6: a seal created later is ignored
    if sealed_list is None:
        return "list_missing"
    if not list_matches(seal, sealed_list):
        return "list_mismatch"  # reported, never counted
    return "counted"


def review_seals(proposal: Event, seals: Iterable[Event],
                 sealed_lists: Mapping[str, Sequence[str]], at_close: Registry,
                 rules: Rules) -> SealReview:
    """Which of the seals held for `proposal` count, the union of their lists, equivocations."""
    statuses: list[SealStatus] = []
    union: set[str] = set()
    authentic: dict[str, list[str]] = {}
    for seal in dedupe(s for s in seals if s.type == "seal" and s.proposal == proposal.id):
        ids = sealed_lists.get(seal.id)
        status = seal_status(seal, proposal, ids, at_close, rules)
        if status == "counted":
            union.update(ids or ())
        if status not in ("not_registered", "not_chapter_node"):
            authentic.setdefault(seal.chapter, []).append(seal.id)
        statuses.append(SealStatus(
            seal=seal.id, chapter=seal.chapter, created_at=seal.created_at,
            acts_count=seal.body["acts_count"], acts_root=seal.body["acts_root"],
            tally_hash=seal.body["tally_hash"], status=status,
        ))
    statuses.sort(key=lambda s: (s.chapter, s.created_at, s.seal))
    equivocations = tuple(
        Equivocation(chapter, tuple(sorted(ids)))
        for chapter, ids in sorted(authentic.items()) if len(ids) > 1
    )
    return SealReview(proposal.id, tuple(statuses), frozenset(union), equivocations)


def final_acts(proposal: Event, events: Iterable[Event], review: SealReview | None) -> tuple[Event, ...]:
    """§7 tally rule: where counted seals exist, only acts in the union of their lists;
    otherwise every act with created_at <= closes_at.

    A seal list can only leave acts out, never bring one in: an id in the union still has to
    be an act of this proposal dated by closes_at to count.
    """
    acts = iter_acts(proposal, events)
    if review is not None and review.counted:
        union = review.union
        acts = (a for a in acts if a.id in union)
    return dedupe(acts)


def finality(proposal: Event, review: SealReview | None, held_act_ids: AbstractSet[str],
             at_close: Registry | None, rules: Rules, now_ms: int, *,
             tally: Tally | None = None) -> Finality:
    """§6 finality. Consent/vote: final once a counted seal from every chapter registered at
    closes_at and every act those seals list are held, or once now > closes_at + grace +
    seal_timeout. Action: final once adopted (`tally` required)."""
    if kind_of(proposal) == "action":
        if tally is None:
            raise ValueError("the finality of an action proposal needs its tally")
        adopted = tally.outcome == "adopted"
        return Finality(adopted, (), (), "adopted" if adopted else "pending")
    if review is None or at_close is None:
        raise ValueError("the finality of a consent or vote proposal needs its seals")
    close = closes_ms(proposal)
    assert close is not None
    missing_chapters = tuple(sorted(set(at_close.chapters) - review.sealed_chapters))
    missing_acts = tuple(sorted(review.union - set(held_act_ids)))
    if not missing_chapters and not missing_acts:
        return Finality(True, (), (), "all_sealed")
    if now_ms > close + rules.grace_ms + rules.seal_timeout_ms:
        return Finality(True, missing_chapters, missing_acts, "timed_out")
    return Finality(False, missing_chapters, missing_acts, "waiting")
