"""Campaign 9, fast slice: seeded simulations of 3–7 real nodes on the in-memory network
(partitions, loss, duplication, crash-restart, skewed clocks), and the same actions driven by
hypothesis; after the heal every node holds the same events and reports the same tally."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from hardening.memsim import Simulation, pub, sim_charter
from hardening.simulation import (
    GRACE_MS,
    MIN_OPEN_MS,
    RULES,
    SEAL_TIMEOUT_MS,
    World,
    machine,
    run_seed,
)
from node.protocol.times import format_ms

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


async def test_an_act_taken_before_its_authors_removal_was_known_reaches_every_node(
        tmp_path) -> None:
    """Campaign 9 with effect proposals: Paris, cut off, takes an endorsement from a Connector
    whose removal closed (adopted) a moment before, on the other side. After the heal every
    node must hold the same events (bug effect-retroactive-admission: Rome and Barcelona
    refused it, `not_connector` at its created_at, and Paris kept it, for good), and on every
    node, Paris included once it learns of the removal, the endorsement counts for nothing."""
    sim = Simulation.build(tmp_path, ["paris", "rome", "barcelona"], memory=True,
                           charter=sim_charter(["paris", "rome", "barcelona"], **RULES))
    try:
        action = sim.sign("connector-rome", "proposal",
                          {"title": "Translate the handbook", "text": "", "kind": "action"},
                          chapter="rome")
        sim.submit("rome", action)
        await sim.run_until(sim.converged)
        sim.network.partition({"paris"}, {"rome", "barcelona"})
        removal = sim.sign("connector-rome", "proposal", {
            "title": "Paris's Connector steps down", "text": "", "kind": "consent",
            "closes_at": format_ms(sim.clock.now_ms + MIN_OPEN_MS),
            "effect": {"remove_connector": {"key": pub("connector-paris")}}}, chapter="rome")
        sim.submit("rome", removal)
        await sim.round()
        sim.clock.advance(MIN_OPEN_MS + 1)  # the removal has closed, adopted (no veto)
        endorse = sim.sign("connector-paris", "endorse", {"proposal": action.id}, chapter="paris")
        sim.submit("paris", endorse)  # Paris knows nothing of the removal: acknowledged
        sim.clock.advance(GRACE_MS + SEAL_TIMEOUT_MS + 1)
        await sim.round()
        sim.network.heal()
        await sim.run_until(sim.converged, max_rounds=10)
        for node in sim.nodes.values():
            assert endorse.id in {e.id for e in node.store.events_of(proposal=action.id)}
            report = node.proposal_report(action.id, sim.clock.now_ms)
            assert report["tally"]["endorsements"] == 1  # the author's own: not the removed one
    finally:
        sim.close()
