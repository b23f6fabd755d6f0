"""Scale: the real protocol code over the in-memory network, 100 to 10,000 simulated nodes.

Each node is a real `ChapterNode` (its own in-memory SQLite store) whose `Federation` syncs
through `LocalNetwork` (node/dev/devsim.py): the same push, pull and ingest code and the same peer
endpoint core as over HTTP, without sockets or signatures. Every node syncs with k = 3
chapters drawn by the `peers = 3` setting (rendezvous hashing from its node key), so the links
form a random 3-out graph; each link carries events both ways (the node pushes to its peer and
pulls from it).

E action proposals are submitted at random nodes (a chapter's Connector signs each, so every
node takes them at once), then rounds are stepped until every node holds every event.

A round is one hop (`Simulation.hop_round`): every node does one peer round (push, then pull)
with each of its k peers, but each node's feed and outbox are held at what it held when the
round began, so an event received during a round leaves its node only in the next one. So the
order nodes are stepped in does not matter, and the rounds counted are the synchronous rounds
of a gossip flood: the farthest distance, over the link graph, from an event's first node to
any node. The benchmark also computes that distance by breadth-first search over the drawn
graph (what the code should achieve exactly) and gives log_3 N and log_2 N beside it.
Anti-entropy (Negentropy) is off: it is the repair path, measured in anti-entropy.

Messages are the requests nodes send each other (every round each node polls each of its k
peers' feeds, and pushes when it has something new): per event per node over the whole run,
and per node per round. Event copies are event lines moved (pushed or pulled): every node
needs each event once. A push-only flood over a k-out graph sends each event k times per node;
here each link moves an event at most once each way and a node has ~2k links (the k it chose
and ~k that chose it), so a node receives at most ~2k copies of each event.

Each size runs in its own process (`python -m bench.scale N E`), so its peak RSS is its own.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from .common import Context, Row, log

__all__ = ["run", "simulate"]

K = 3


def _eccentricity(adjacency: dict[str, set[str]], source: str) -> int:
    """Hops from `source` to the farthest node (-1 if some node is unreachable)."""
    seen = {source: 0}
    queue = deque([source])
    while queue:
        here = queue.popleft()
        for there in adjacency[here]:
            if there not in seen:
                seen[there] = seen[here] + 1
                queue.append(there)
    return max(seen.values()) if len(seen) == len(adjacency) else -1


async def _simulate(nodes: int, events: int, seed: int) -> dict[str, Any]:
    from node.dev.devsim import Simulation
    from node.federation.sync import SyncSettings

    rng = random.Random(seed)
    slugs = [f"c{i:05d}" for i in range(nodes)]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        sim = Simulation.build(Path(tmp), slugs, seed=seed, memory=True,
                               settings=SyncSettings(peers=K, batch_size=500))
        built = time.perf_counter() - t0
        t_draw = time.perf_counter()
        adjacency: dict[str, set[str]] = {s: set() for s in slugs}
        for slug, federation in sim.federations.items():
            for peer in federation.peers():
                adjacency[slug].add(peer)
                adjacency[peer].add(slug)
        drawn = time.perf_counter() - t_draw  # each node's first peers() draws its k peers
        sources = [rng.choice(slugs) for _ in range(events)]
        for i, via in enumerate(sources):
            sim.submit(via, sim.sign(f"connector-{via}", "proposal",
                                     {"title": f"Action {i}", "text": "", "kind": "action"},
                                     chapter=via, at_ms=sim.clock.now_ms - 60_000 + i))
        predicted = max(_eccentricity(adjacency, s) for s in set(sources))
        stores = [node.store for node in sim.nodes.values()]

        def held() -> list[int]:
            return [s.db.execute("select count(*) from events").fetchone()[0] for s in stores]

        coverage = []  # share of (node, event) pairs held after each round
        t1 = time.perf_counter()
        counts = held()
        max_rounds = 4 * max(predicted, 1) + 10
        while min(counts) < events and sim.rounds < max_rounds:
            await sim.hop_round()
            counts = held()
            coverage.append(sum(counts) / (nodes * events))
        stepped = time.perf_counter() - t1
        traffic = dict(sim.network.traffic)  # type: ignore[attr-defined]
        errors = len(sim.network.errors)
        sim.close()
    return {
        "nodes": nodes, "events": events, "k": K, "rounds": sim.rounds,
        "converged": min(counts) >= events, "predicted_rounds": predicted,
        "coverage": coverage, "traffic": traffic, "errors": errors,
        "build_s": built, "draw_s": drawn, "rounds_s": stepped,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def _peak_rss_bytes() -> int:
    """This process's own peak RSS (VmHWM). Not getrusage: Linux carries ru_maxrss across
    fork and exec, so a child of the bench reported the bench's own peak (~1 GiB)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def simulate(nodes: int, events: int, seed: int = 6) -> dict[str, Any]:
    return asyncio.run(_simulate(nodes, events, seed))


def _in_process(nodes: int, events: int, timeout_s: float) -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONHASHSEED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "bench.scale", str(nodes), str(events)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{nodes} nodes: exit {done.returncode}: {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rows(r: dict[str, Any]) -> list[Row]:
    n, e, k = r["nodes"], r["events"], r["k"]
    t = r["traffic"]
    name = f"{n:,} nodes, k = {k}, {e} events"
    per_event_node = t.get("requests", 0) / (e * n)
    per_round_node = t.get("requests", 0) / (max(r["rounds"], 1) * n)
    copies = t.get("lines", 0) / (e * n)
    moved = t.get("bytes_sent", 0) + t.get("bytes_received", 0)
    coverage = ", ".join(f"{c:.0%}" for c in r["coverage"])
    rounds_figure = f"{name}: rounds (hops) until every node holds every event"
    if not r["converged"]:
        rounds_figure += " (NOT converged)"
    return [
        Row("scale", rounds_figure, r["rounds"], "rounds", "log_3 N", math.log(n, k),
            target="O(log N)",
            note=(f"breadth-first search over the drawn graph predicts {r['predicted_rounds']} "
                  f"(the farthest node from an event's first node); log_2 N = "
                  f"{math.log2(n):.1f}; share of (node, event) pairs held after each round: "
                  f"{coverage}; unexpected endpoint errors: {r['errors']}")),
        Row("scale", f"{name}: messages (requests) per event per node", per_event_node, "",
            "k", k, target="bounded",
            note=(f"{t.get('requests', 0):,} requests in {r['rounds']} rounds: "
                  f"{per_round_node:.2f} per node per round (k feed polls, plus pushes when "
                  f"there is something new); {moved / (e * n):,.0f} bytes per event per node")),
        Row("scale", f"{name}: event copies received per event per node", copies, "",
            "2k (links per node)", 2 * k, target="≤ 2k",
            note=("1 is the least possible (every node but the first needs each event once); "
                  "a node has k links it chose and about k that chose it, and each link moves "
                  "an event at most once each way: by push, or by pull when both ends already "
                  "held it as the round began")),
        Row("scale", f"{name}: wall time, build and rounds",
            r["build_s"] + r["draw_s"] + r["rounds_s"], "s", target="a few minutes",
            note=(f"build (stores, nodes) {r['build_s']:.1f} s; peer draws (N SHA-256 "
                  f"ranks per node) {r['draw_s']:.1f} s; rounds "
                  f"{r['rounds_s']:.1f} s, {r['rounds_s'] / max(r['rounds'], 1):.2f} s per "
                  f"round; one process, one core")),
        Row("scale", f"{name}: peak RSS", r["peak_rss_bytes"] / 2**20, "MiB",
            target="fits the machine",
            note=f"{r['peak_rss_bytes'] / n / 1024:,.0f} KiB per node"),
    ]


def run(ctx: Context) -> list[Row]:
    sizes = [(30, 5), (100, 10)] if ctx.smoke else [(100, 50), (1_000, 20), (10_000, 10)]
    rows: list[Row] = []
    for nodes, events in sizes:
        log(f"scale: {nodes:,} simulated nodes, {events} events")
        rows.extend(_rows(_in_process(nodes, events, timeout_s=ctx.seconds(900, 120))))
    return rows


if __name__ == "__main__":
    print(json.dumps(simulate(int(sys.argv[1]), int(sys.argv[2]))))
