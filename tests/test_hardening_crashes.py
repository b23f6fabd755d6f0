"""Campaign 7, fast slice: kill -9 in the middle of ingesting a peer batch leaves a sound store
with the batch whole or absent, never a partial one (a batch that changes the registry as it
goes: a prefix of its causal order); redelivery and a resumed push store each event exactly
once."""

from __future__ import annotations

from hardening.crashes import client_loops, loops, registry_loops, seal_loops


def test_kill_9_during_ingest_loses_nothing_acknowledged_and_duplicates_nothing() -> None:
    stats, problems = loops(3, 2_000, seed=7, progress=lambda _: None)
    assert problems == []
    assert stats["loops"] == 3 and stats["whole"] + stats["none"] == 3
    assert stats["pushed"] >= 1 + 2_000 * stats["whole"]


def test_kill_9_during_concurrent_client_writes_loses_no_acknowledged_act() -> None:
    stats, problems = client_loops(2, 8, seed=7, progress=lambda _: None)
    assert problems == []
    assert stats["client_loops"] == 2 and stats["client_acked"] > 0


def test_kill_9_around_sealing_leaves_one_seal_and_one_final_tally() -> None:
    stats, problems = seal_loops(2, seed=11, progress=lambda _: None)
    assert problems == []
    assert stats["seal_loops"] == 2


def test_kill_9_during_a_batch_that_changes_the_registry_leaves_a_causal_prefix() -> None:
    stats, problems = registry_loops(2, 60, seed=7, progress=lambda _: None)
    assert problems == []
    assert stats["registry_loops"] == 2 and stats["registry_events"] == 240
