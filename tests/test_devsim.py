"""The simulation the scale benchmark runs: a synchronous round moves an event one link, and
nodes of one process share what they can (one registry timeline, no per-call copies)."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from node.dev.devsim import Simulation
from node.federation.sync import SyncSettings

CHAPTERS = [f"c{i:02d}" for i in range(40)]


def _distances(sim: Simulation, source: str) -> dict[str, int]:
    links: dict[str, set[str]] = {s: set() for s in sim.nodes}
    for slug, federation in sim.federations.items():
        for peer in federation.peers():  # a link carries events both ways: push and pull
            links[slug].add(peer)
            links[peer].add(slug)
    seen, queue = {source: 0}, deque([source])
    while queue:
        here = queue.popleft()
        for there in links[here]:
            if there not in seen:
                seen[there] = seen[here] + 1
                queue.append(there)
    return seen


async def test_a_synchronous_round_moves_an_event_exactly_one_link(tmp_path: Path) -> None:
    sim = Simulation.build(tmp_path, CHAPTERS, seed=3, memory=True,
                           settings=SyncSettings(peers=2))
    try:
        distance = _distances(sim, "c00")
        assert len(distance) == len(CHAPTERS) and max(distance.values()) >= 3  # a long path
        event = sim.sign("connector-c00", "proposal",
                         {"title": "One hop a round", "text": "", "kind": "action"},
                         chapter="c00", at_ms=sim.clock.now_ms - 1000)
        sim.submit("c00", event)
        for hops in range(1, max(distance.values()) + 1):
            await sim.hop_round()
            holding = {s for s in CHAPTERS if event.id in sim.ids(s)}
            assert holding == {s for s, d in distance.items() if d <= hops}, hops
        assert sim.converged()
        # Once the holds are lifted, the node's feed and outbox are whole again.
        node = sim.nodes["c05"]
        assert node.changes(0, 100)[2] == node.store.max_seq() == 1
    finally:
        sim.close()


async def test_the_unsynchronised_round_may_cross_several_links(tmp_path: Path) -> None:
    """Why a benchmark counts `hop_round`s: in `round()` later nodes relay within the round."""
    sim = Simulation.build(tmp_path, CHAPTERS, seed=3, memory=True,
                           settings=SyncSettings(peers=2))
    try:
        far = max(_distances(sim, "c00").values())
        event = sim.sign("connector-c00", "proposal",
                         {"title": "Many hops a round", "text": "", "kind": "action"},
                         chapter="c00", at_ms=sim.clock.now_ms - 1000)
        sim.submit("c00", event)
        assert await sim.run_until(sim.converged) < far
    finally:
        sim.close()


async def test_nodes_with_the_same_registry_share_one_timeline(tmp_path: Path) -> None:
    sim = Simulation.build(tmp_path, CHAPTERS[:4], memory=True)
    try:
        paris, rome = sim.nodes["c00"], sim.nodes["c01"]
        assert paris.timeline() is rome.timeline()
        now = paris.clock()
        assert paris.peer_urls(now) == {s: f"http://{s}.sim" for s in CHAPTERS[1:4]}
        assert "c00" not in paris.peer_urls(now) and len(paris.peer_urls(now)) == 3
        # A URL change reaches one node first: its timeline is its own until the other has it.
        moved = sim.sign("node c01", "chapter_url", {"url": "http://rome.example"},
                         chapter="c01", at_ms=now - 1000)
        sim.submit("c01", moved)
        assert rome.timeline() is not paris.timeline()
        assert rome.registry(now).chapter("c01").url == "http://rome.example"  # type: ignore[union-attr]
        assert paris.registry(now).chapter("c01").url == "http://c01.sim"  # type: ignore[union-attr]
        assert paris.peer_urls(now)["c01"] == "http://c01.sim"
        await sim.run_until(sim.converged)
        assert paris.timeline() is rome.timeline()
        assert paris.peer_urls(now)["c01"] == "http://rome.example"
        assert sim.nodes["c02"].peer_slug(rome.node_public) == "c01"
    finally:
        sim.close()
