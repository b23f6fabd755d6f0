"""Long delegation chains resolve iteratively; the benchmark script runs in smoke mode."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType

from node.governance import Connector, Registry, tally, vote_resolution
from node.protocol.charter import Rules

from .test_governance_properties import CLOSE, OPEN, REGISTRY, VOTE, fake

ROOT = Path(__file__).resolve().parent.parent


def _registry(keys: list[str]) -> Registry:
    return Registry(CLOSE, REGISTRY.chapters,
                    MappingProxyType({k: Connector(k, k[:6], "paris") for k in keys}))


def _keys(n: int) -> list[str]:
    return [f"{i:042d}A" for i in range(n)]


def test_a_delegation_chain_ten_thousand_long_resolves_without_recursion() -> None:
    keys = _keys(10_000)
    acts = [fake("delegation", a, OPEN + 1000, {"to": b, "proposal": None})
            for a, b in pairwise(keys)]
    acts.append(fake("vote", keys[-1], OPEN + 2000, {"proposal": VOTE.id, "choice": "yes"}))
    registry = _registry(keys)
    result = tally(VOTE, acts, registry, Rules())
    assert (result.yes, result.not_cast, result.outcome) == (10_000, 0, "adopted")
    first = vote_resolution(VOTE, acts, registry).trace(keys[0], max_path=5)
    assert (first.reason, first.hops, first.stopped_at, first.truncated) == (
        "delegated", 9_999, keys[-1], True)
    assert first.path == tuple(keys[1:6])


def test_a_ten_thousand_long_chain_into_a_cycle_or_a_stranger_is_not_cast() -> None:
    keys = _keys(10_000)
    chain = [fake("delegation", a, OPEN + 1000, {"to": b, "proposal": None})
             for a, b in pairwise(keys)]
    into_cycle = chain + [fake("delegation", keys[-1], OPEN + 1000, {"to": keys[5_000], "proposal": None})]
    into_stranger = chain + [fake("delegation", keys[-1], OPEN + 1000, {"to": "z" * 42 + "A", "proposal": None})]
    registry = _registry(keys)
    assert tally(VOTE, into_cycle, registry, Rules()).not_cast == 10_000
    resolution = vote_resolution(VOTE, into_stranger, registry)
    assert resolution.counts()["not_cast"] == 10_000
    # a delegation to a key that is no Connector is not admitted (§4): the chain's last
    # Connector simply did not vote
    assert resolution.trace(keys[0]).reason == "dead_end"


def test_the_benchmark_runs_in_smoke_mode() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "tally.py"), "--smoke"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert "per Connector" in done.stdout


def test_ten_thousand_connectors_and_a_hundred_thousand_acts_are_all_accounted_for() -> None:
    """At scale every Connector's weight lands somewhere. How fast: `make bench` (tally)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_tally", ROOT / "bench" / "tally.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    vote, events, registry = bench.scenario(10_000, 100_000, 1_000)
    result = tally(vote, events, registry, Rules())
    assert result.yes + result.no + result.abstain + result.not_cast == 10_000
