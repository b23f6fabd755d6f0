"""`peers = k`: each node syncs with k chapters drawn from its own key, and relaying still
brings every event to every node (in-memory federation of real nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import load_config
from node.federation.sync import SyncSettings, select_peers
from node.protocol.errors import ConfigError

from .support.memnet import Simulation

CHAPTERS = [f"chapter{i:02d}" for i in range(10)]


def test_the_draw_is_stable_and_moves_little_when_the_registry_grows() -> None:
    drawn = select_peers("key-of-paris", CHAPTERS, 3)
    assert len(drawn) == 3 and set(drawn) <= set(CHAPTERS)
    assert select_peers("key-of-paris", reversed(CHAPTERS), 3) == drawn  # order does not matter
    grown = select_peers("key-of-paris", [*CHAPTERS, "newcomer"], 3)
    assert len(set(grown) - set(drawn)) <= 1  # only the newcomer can displace one choice
    assert select_peers("key-of-paris", CHAPTERS, None) == sorted(CHAPTERS)
    assert select_peers("key-of-paris", CHAPTERS[:2], 3) == CHAPTERS[:2]
    # Other nodes draw other peers: not everyone picks the same few.
    draws = {tuple(select_peers(f"key {i}", CHAPTERS, 2)) for i in range(10)}
    assert len(draws) > 3


@pytest.mark.parametrize("k", [2, 3])
async def test_events_reach_every_node_with_k_peers_each(tmp_path: Path, k: int) -> None:
    sim = Simulation.build(tmp_path, CHAPTERS, seed=5, settings=SyncSettings(peers=k),
                           drop_reply=0.1, duplicate=0.1)
    try:
        assert all(len(f.peers()) == k for f in sim.federations.values())
        ids = set()
        for slug in CHAPTERS:
            event = sim.sign(f"connector-{slug}", "proposal",
                             {"title": f"From {slug}", "text": "", "kind": "action"},
                             chapter=slug, at_ms=sim.clock.now_ms - 1000)
            sim.submit(slug, event)
            ids.add(event.id)
        await sim.run_until(sim.converged)
        assert all(sim.ids(slug) == ids for slug in CHAPTERS)
        # Nobody talked to more than its k chosen peers on its own initiative.
        for slug, federation in sim.federations.items():
            talked = {p.slug for p in _peer_rows(sim, slug)
                      if p.last_pull_ms or p.last_push_ms or p.failures}
            assert talked and talked <= set(federation.peers())
    finally:
        sim.close()


async def test_the_draw_survives_a_restart(tmp_path: Path) -> None:
    sim = Simulation.build(tmp_path, CHAPTERS[:8], settings=SyncSettings(peers=3))
    try:
        before = sim.federations["chapter03"].peers()
        sim.crash("chapter03")
        sim.start("chapter03")
        assert sim.federations["chapter03"].peers() == before
    finally:
        sim.close()


def _peer_rows(sim: Simulation, slug: str):
    store = sim.nodes[slug].store
    return [store.peer(other) for other in CHAPTERS if other != slug]


def test_the_setting_takes_all_or_a_positive_count(tmp_path: Path) -> None:
    assert load_config(tmp_path, env={})[0].peers == "all"
    assert load_config(tmp_path, env={"CHAPTER_NODE_PEERS": "3"})[0].peers == 3
    (tmp_path / "config.toml").write_text("peers = 2\n")
    assert load_config(tmp_path, env={})[0].peers == 2
    for bad in ("0", "-1", "two", "2.5", "٣"):
        with pytest.raises(ConfigError, match="peers"):
            load_config(tmp_path, env={"CHAPTER_NODE_PEERS": bad})
