"""Campaign 8, fast slice: 5 real nodes split 2/3 through the fault proxy, writes on both
sides, then heal: identical event sets, every acknowledged write kept, one tally_hash, within
2 × pull interval + 10 s."""

from __future__ import annotations

from hardening.partitions import PULL_S, campaign


def test_a_split_of_five_nodes_heals_to_identical_state() -> None:
    rounds, acked, times, problems = campaign(seconds=2.5, splits=1, seed=11,
                                              progress=lambda _: None)
    assert problems == []
    assert rounds == 2 and acked > 20
    assert max(times) <= 2 * PULL_S + 10
