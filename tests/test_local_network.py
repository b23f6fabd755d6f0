"""The real sync code over the in-memory network: nodes converge through partitions, lost and
duplicated messages and crashes, and agree on the outcome (STYLE practice 10: the fast pair)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.federation.peer_client import PeerUnavailable
from node.protocol.times import format_ms

from .support.memnet import Simulation

HOUR = 3_600_000


def _proposals(sim: Simulation, via: str, n: int, title: str) -> list[str]:
    ids = []
    for i in range(n):
        event = sim.sign(f"connector-{via}", "proposal",
                         {"title": f"{title} {i}", "text": "", "kind": "action"}, chapter=via,
                         at_ms=sim.clock.now_ms - 60_000 + i)
        sim.submit(via, event)
        ids.append(event.id)
    return ids


async def test_two_nodes_exchange_everything_by_push_and_pull(tmp_path: Path) -> None:
    sim = Simulation.build(tmp_path, ["paris", "rome"])
    try:
        mine = _proposals(sim, "paris", 40, "Paris")
        theirs = _proposals(sim, "rome", 30, "Rome")
        await sim.run_until(sim.converged, reconcile=False)
        assert sim.ids("paris") == sim.ids("rome") == set(mine) | set(theirs)
        # One more round: each side's push cursor passes what the other sent it (not resent).
        await sim.round(reconcile=False)
        paris, rome = sim.nodes["paris"], sim.nodes["rome"]
        assert paris.store.peer("rome").push_acked == paris.store.max_seq()
        assert rome.store.peer("paris").failures == 0
        assert sim.network.errors == []
    finally:
        sim.close()


async def test_lost_replies_and_duplicates_are_harmless(tmp_path: Path) -> None:
    """Half the replies are lost (the peer stored the batch, we think it failed) and a third of
    the calls arrive twice: the events still arrive once each and the cursors catch up."""
    sim = Simulation.build(tmp_path, ["paris", "rome"], seed=3, drop_reply=0.5, duplicate=0.3)
    try:
        ids = _proposals(sim, "paris", 25, "Paris")
        await sim.run_until(sim.converged)
        assert sim.ids("rome") == set(ids)
        assert sim.network.stats["dropped_reply"] > 0 and sim.network.stats["duplicated"] > 0
        count = sim.nodes["rome"].store.db.execute("select count(*) from events").fetchone()[0]
        assert count == len(ids)
        assert sim.network.errors == []
    finally:
        sim.close()


async def test_refusals_reach_the_caller_as_peer_unavailable(tmp_path: Path) -> None:
    sim = Simulation.build(tmp_path, ["paris", "rome"])
    try:
        transport = sim.federations["paris"].client
        with pytest.raises(PeerUnavailable, match="HTTP 400.*bad_fetch") as info:
            await transport.call("POST", "http://rome.sim", "/federation/v1/fetch", b"{}")
        assert info.value.code == "peer_refused"
        with pytest.raises(PeerUnavailable, match="HTTP 404"):
            await transport.call("GET", "http://rome.sim", "/federation/v1/sealed/" + "0" * 64)
        sim.network.partition({"paris"}, {"rome"})
        with pytest.raises(PeerUnavailable, match="partitioned"):
            await transport.call("GET", "http://rome.sim", "/federation/v1/changes")
        sim.network.heal()
        reply = await transport.call("GET", "http://rome.sim", "/federation/v1/changes?after=0")
        assert reply.headers["X-Feed-Head"] == "0"
        assert reply.headers["X-Feed-Epoch"] == sim.nodes["rome"].feed_epoch
    finally:
        sim.close()


@pytest.mark.parametrize("memory", [False, True], ids=["file-stores", "memory-stores"])
async def test_three_nodes_agree_after_partition_heal_loss_and_a_crash(tmp_path: Path,
                                                                      memory: bool) -> None:
    """Paris is cut off while Rome and Barcelona act on a consent proposal; messages are lost
    and duplicated all along; Barcelona crashes and restarts from its store. After the heal and
    the close, all three hold the same events and the same final tally_hash."""
    sim = Simulation.build(tmp_path, ["paris", "rome", "barcelona"], seed=11, memory=memory,
                           drop_request=0.15, drop_reply=0.15, duplicate=0.2)
    try:
        start = sim.clock.now_ms
        proposal = sim.sign("connector-paris", "proposal",
                            {"title": "Shared travel fund", "text": "", "kind": "consent",
                             "closes_at": format_ms(start + 73 * HOUR)}, chapter="paris")
        sim.submit("paris", proposal)
        await sim.run_until(lambda: all(proposal.id in sim.ids(s) for s in sim.nodes))

        sim.network.partition({"paris"}, {"rome", "barcelona"})
        sim.clock.advance(HOUR)
        veto = sim.sign("connector-rome", "veto", {"proposal": proposal.id, "reason": "cost"},
                        chapter="rome")
        sim.submit("rome", veto)
        extra = _proposals(sim, "paris", 5, "Paris alone")
        await sim.run_until(lambda: veto.id in sim.ids("barcelona"))
        assert veto.id not in sim.ids("paris")

        sim.crash("barcelona")
        sim.clock.advance(HOUR)
        withdraw = sim.sign("connector-rome", "veto_withdraw", {"proposal": proposal.id},
                            chapter="rome")
        sim.submit("rome", withdraw)
        await sim.round()
        sim.start("barcelona")
        sim.network.heal()
        await sim.run_until(sim.converged)
        assert sim.ids("paris") >= {proposal.id, veto.id, withdraw.id, *extra}

        sim.clock.advance(80 * HOUR)  # past closes_at and the grace: every node seals

        def final_everywhere() -> bool:
            reports = [sim.report(s, proposal.id) for s in sim.nodes]
            return sim.converged() and all(r["final"] and not r["missing_seals"] for r in reports)

        await sim.run_until(final_everywhere)
        reports = [sim.report(s, proposal.id) for s in sim.nodes]
        assert len({r["tally_hash"] for r in reports}) == 1
        assert {r["tally"]["outcome"] for r in reports} == {"adopted"}
        assert len(reports[0]["seals"]) == 3
        assert sim.network.stats["dropped_request"] and sim.network.stats["partitioned"]
        assert sim.network.errors == []
    finally:
        sim.close()
