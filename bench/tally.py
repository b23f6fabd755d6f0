"""Benchmark: tallying a vote with delegations (PROTOCOL §5).

    python bench/tally.py            # 10,000 Connectors / 100,000 acts, then the 1k-10k-100k series
    python bench/tally.py --smoke    # tiny sizes, for the test suite

What is measured: `node.governance.tally()` on a vote proposal, from a list of events to the
tally object: act-set filtering, latest act per Connector, delegation resolution. Not
measured: building the events. The tally never verifies signatures (ingest did), so this
script constructs `Event` objects directly with a fake signature and a fake id instead of
signing 100,000 events; that keeps set-up short and does not change the work measured.

Shape of the data: every Connector has one final act, made just before the close: a direct
vote (the end of a chain), a proposal-specific delegation (a link in a chain) or a
proposal-specific revoke (a dead end). Chains are random, from 1 up to 1,000 Connectors deep;
some end in a cycle. The other 9 acts per Connector are earlier noise the rules must see
past: re-votes, global and proposal-specific delegations to random Connectors.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from node.governance import Chapter, Connector, Registry, tally
from node.protocol.charter import Rules
from node.protocol.events import Event, b64url
from node.protocol.times import format_ms

CLOSE = 1_800_000_000_000
OPEN = CLOSE - 7 * 86_400_000
FAKE_SIG = "A" * 86


class Maker:
    """Builds unsigned `Event`s quickly: ids from a counter, timestamps from a pool."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.count = 0
        self.noise_times = [(t, format_ms(t)) for t in
                            sorted(rng.randrange(OPEN, CLOSE - 3_600_000) for _ in range(2000))]
        self.final_time = (CLOSE - 60_000, format_ms(CLOSE - 60_000))

    def event(self, type: str, author: str, body: dict[str, Any], final: bool = False) -> Event:
        self.count += 1
        ms, text = self.final_time if final else self.rng.choice(self.noise_times)
        return Event(id=hashlib.sha256(self.count.to_bytes(8, "big")).hexdigest(), v=1,
                     federation="f" * 64, type=type, chapter="paris", author=author,
                     created_at=text, body=body, sig=FAKE_SIG, created_ms=ms, canonical=b"")


def scenario(connectors: int, acts: int, max_depth: int, seed: int = 1) -> tuple[Event, list[Event], Registry]:
    rng = random.Random(seed)
    make = Maker(rng)
    keys = [b64url(rng.randbytes(32)) for _ in range(connectors)]
    registry = Registry(CLOSE, MappingProxyType({"paris": Chapter("paris", b64url(bytes(32)), "https://p")}),
                        MappingProxyType({k: Connector(k, f"C{i}", "paris") for i, k in enumerate(keys)}))
    vote = make.event("proposal", keys[0], {"title": "bench", "text": "", "kind": "vote",
                                            "closes_at": format_ms(CLOSE)})
    pid = vote.id
    choices = [{"proposal": pid, "choice": c} for c in ("yes", "no", "abstain")]
    order = keys[:]
    rng.shuffle(order)
    events: list[Event] = []
    voters: list[str] = []
    i = 0
    while i < len(order):  # cut the Connectors into chains of 1 .. max_depth
        chain = order[i:i + rng.randint(1, max_depth)]
        i += len(chain)
        for a, b in pairwise(chain):
            events.append(make.event("delegation", a, {"to": b, "proposal": pid}, final=True))
        end, ending = chain[-1], rng.random()
        if ending < 0.8:
            events.append(make.event("vote", end, rng.choice(choices), final=True))
            voters.append(end)
        elif ending < 0.9:
            events.append(make.event("delegation", end, {"to": None, "proposal": pid}, final=True))
        else:  # back into the chain: a cycle
            events.append(make.event("delegation", end, {"to": chain[0], "proposal": pid}, final=True))
    while len(events) < acts:  # earlier noise the latest acts override
        roll = rng.random()
        if roll < 0.3 and voters:
            events.append(make.event("vote", rng.choice(voters), rng.choice(choices)))
        else:
            target = None if roll > 0.95 else rng.choice(keys)
            scope = None if roll < 0.65 else pid
            events.append(make.event("delegation", rng.choice(keys), {"to": target, "proposal": scope}))
    rng.shuffle(events)
    return vote, events[:max(acts, len(events))], registry


def _median_seconds(fn: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(connectors: int, acts: int, max_depth: int, runs: int) -> tuple[float, float]:
    """(median tally seconds, median seconds of a bare pass reading every event once).

    The bare pass is the floor any tally must pay: at 1,000,000 events the heap no longer
    fits in the CPU caches and even reading one field per event costs more per event.
    The ratio tally / bare pass staying flat is what shows the tally itself is linear."""
    vote, events, registry = scenario(connectors, acts, max_depth)
    rules = Rules()
    result = tally(vote, events, registry, rules)
    assert result.yes + result.no + result.abstain + result.not_cast == connectors
    eligible = registry.connectors

    def bare_pass() -> int:
        return sum(1 for e in events if e.author in eligible and e.body is not None)

    return (_median_seconds(lambda: tally(vote, events, registry, rules), runs),
            _median_seconds(bare_pass, runs))


def run(ctx: Any) -> list[Any]:
    """The runner's entry (`python -m bench`): the headline tally and the 1k-10k-100k series."""
    from .common import Row, log

    headline, series, depth = (200, [100, 200, 400], 50) if ctx.smoke else (10_000, [1_000, 10_000, 100_000], 1_000)
    runs = 3 if ctx.smoke else 5
    log(f"tally: {headline:,} Connectors, {10 * headline:,} acts")
    seconds, _ = measure(headline, 10 * headline, depth, runs)
    rows = [Row("tally", f"vote, {headline:,} Connectors, {10 * headline:,} acts, chains to "
                         f"{depth:,} (median of {runs})", seconds * 1000, "ms", target="< 500 ms")]
    for n in series:
        log(f"tally: series, {n:,} Connectors")
        seconds, floor = measure(n, 10 * n, min(depth, n), runs)
        rows.append(Row("tally", f"series: {n:,} Connectors, {10 * n:,} acts", seconds / n * 1e6,
                        "µs per Connector", "bare pass over the events", floor / n * 1e6,
                        "linear", ratio_override=f"{seconds / floor:.1f} × bare pass"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (for the test suite)")
    parser.add_argument("--runs", type=int, default=5, help="runs per size; the median is shown")
    args = parser.parse_args()
    headline, series, depth = (200, [100, 200, 400], 50) if args.smoke else (10_000, [1_000, 10_000, 100_000], 1_000)
    runs = 3 if args.smoke else args.runs

    seconds, _ = measure(headline, 10 * headline, depth, runs)
    print(f"vote tally, {headline:,} Connectors, {10 * headline:,} acts, chains up to {depth:,} deep: "
          f"{seconds * 1000:.1f} ms (median of {runs})")
    print(f"{'Connectors':>11} {'acts':>10} {'median ms':>10} {'µs per Connector':>17} "
          f"{'bare pass ms':>13} {'tally / bare pass':>18}")
    for n in series:
        seconds, floor = measure(n, 10 * n, min(depth, n), runs)
        print(f"{n:>11,} {10 * n:>10,} {seconds * 1000:>10.1f} {seconds / n * 1e6:>17.2f} "
              f"{floor * 1000:>13.1f} {seconds / floor:>18.1f}")
    print("(linear: the tally costs a constant multiple of one bare pass over the events; the\n"
          " µs per Connector of both grow together once the events outgrow the CPU caches)")


if __name__ == "__main__":
    main()
