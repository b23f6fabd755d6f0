"""Campaign 11: acts replayed into another proposal, chapter or federation are refused;
a chapter that signs two different seals is caught, with both seals kept as proof, by every
real node within a sync round."""

from __future__ import annotations

from hardening.equivocation import (
    equivocation_between_nodes,
    equivocation_in_process,
    judge_replays,
    replays,
)
from hardening.kit import Kit, charter_doc


def test_acts_replayed_into_another_scope_are_all_refused() -> None:
    kit = Kit()
    other = Kit(doc={**charter_doc(), "name": "Another Federation"})
    assert other.federation != kit.federation
    _, codes, problems = judge_replays(kit, other)
    assert problems == []
    assert sum(codes.values()) == len(replays(kit))
    assert set(codes) == {"bad_signature", "wrong_federation"}


def test_a_second_seal_from_one_chapter_is_kept_and_reported() -> None:
    assert equivocation_in_process(Kit()) == []


def test_every_real_node_reports_the_equivocation_within_a_sync_round() -> None:
    took, problems = equivocation_between_nodes(progress=lambda _: None)
    assert problems == []
    assert took < 2 * 0.3 + 2.0 + 2.0
