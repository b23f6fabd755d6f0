"""Campaign 9, fast slice: seeded simulations of 3–7 real nodes on the in-memory network
(partitions, loss, duplication, crash-restart, skewed clocks), and the same actions driven by
hypothesis; after the heal every node holds the same events and reports the same tally."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from hardening.simulation import World, machine, run_seed

FIRST = 20261125  # the first seeds `make hardening` runs


def test_forty_seeds_hold_every_invariant() -> None:
    failed = [(o.seed, o.detail) for o in (run_seed(s) for s in range(FIRST, FIRST + 40))
              if not o.ok]
    assert failed == []


def test_a_seed_replays_step_for_step() -> None:
    first, again = run_seed(FIRST + 3, keep_log=True), run_seed(FIRST + 3, keep_log=True)
    assert first.ok and first.steps == again.steps and len(first.steps) > 5


def test_hypothesis_drives_the_same_actions() -> None:
    run_state_machine_as_test(machine(), settings=settings(
        max_examples=15, stateful_step_count=20, deadline=None, database=None,
        derandomize=True, suppress_health_check=list(HealthCheck)))


def test_every_action_is_a_rule() -> None:
    rules = {name for name in World.ACTIONS if hasattr(getattr(machine(), name),
                                                       "hypothesis_stateful_rule")}
    assert rules == set(World.ACTIONS)
