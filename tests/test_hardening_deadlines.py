"""Campaign 10, fast slice: acts reach nodes with skewed clocks within a second of
closes_at + grace while messages are lost around the sealing instant; every client answer is
the §6 rule at that node's clock, and every node reports the same tally_hash and final flag."""

from __future__ import annotations

from collections import Counter

from hardening.deadlines import race

FIRST = 20261125  # the first races `make hardening` runs


def test_twenty_races_end_with_one_tally_hash_and_no_divergence() -> None:
    outs = [race(s) for s in range(FIRST, FIRST + 20)]
    assert [(o.seed, o.problems[:1]) for o in outs if not o.ok] == []
    assert sum(o.divergences for o in outs) == 0
    stats: Counter[str] = Counter()
    for o in outs:
        stats.update(o.stats)
    # the races raced: acts on both sides of the deadline, nodes sealing different act sets
    assert stats["edge accepted"] and stats["edge created_at_too_old"] and stats["edge after_close"]
    assert stats["proposals whose seals differ before the heal"] > 0
    assert stats["proposals compared"] >= 20


def test_a_race_replays_step_for_step() -> None:
    first, again = race(FIRST + 1, keep_log=True), race(FIRST + 1, keep_log=True)
    assert first.ok and first.log == again.log and len(first.log) > 10
