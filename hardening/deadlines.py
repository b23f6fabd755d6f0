"""Campaign 10: deadline races around `closes_at + grace` between nodes with skewed clocks.

One seed = one race, on the in-memory network (real nodes, real sync code, virtual time):

1. 3–5 nodes, one Connector per chapter and 1–3 more; each node's clock skewed within
   ± grace/2 (in a quarter of the races every node sits at an edge, ± grace/2 exactly, and in a
   tenth one node is at ± grace). Rules: grace 4 s, seal timeout 10 s, min_open 3.6 s.
2. A consent proposal, a vote proposal, or both, closing a few seconds apart; before the close,
   Connectors veto, endorse, vote and delegate (proposal-specific and global, chains of two),
   and everything reaches every node.
3. The race: 4–12 acts sent by clients to random nodes at local times `closes_at + grace`
   ± 1 s, dated exactly at `closes_at`, up to 1 s before it, at the edge of the client window
   (`now - grace`, and 1 ms past it) or 1 ms after `closes_at`: vetoes withdrawn and cast again,
   votes changed, delegations given, moved and revoked at the edge. Time moves in ticks of
   50–250 ms; in each tick nodes run their duties (a node seals when its own clock reaches
   `closes_at + grace`) and random links sync while a fifth of requests and replies are lost,
   so some nodes seal without an act that others include.
4. Then the network heals and settles (campaign 9's `World.settle`), and past every timeout.

Checked: each client's answer is the §6 rule at that node's clock (too old / in the future /
after close / voting closed, in the node's order of checks, else accepted); an act refused
appears on no node; an acknowledged act is on every node; each seal lists exactly the acts its
node held when it sealed; every node reports the same `tally_hash` and the same `final` flag
for each proposal once every seal is in, and again past the seal timeout. A divergence is a
proposal on which two nodes disagree (bar: 0).

Replay: `python -m hardening.deadlines SEED` prints one race step by step.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.federation.sync import SyncSettings
from node.governance import closes_ms
from node.protocol.errors import ChapterNodeError
from node.protocol.events import Event
from node.protocol.times import format_ms

from .memsim import Simulation, pub, sim_charter
from .report import Failure, Result
from .simulation import SLUGS, Acked, Violation, World, run_loop

__all__ = ["race", "Race", "run", "GRACE_MS"]

GRACE_MS = 4_000
TIMEOUT_MS = 10_000
MIN_OPEN_MS = 7_200
RULES = {"min_open_hours": 0.002, "grace_seconds": GRACE_MS // 1000,
         "seal_timeout_seconds": TIMEOUT_MS // 1000}


@dataclass
class Race:
    seed: int
    ok: bool = True
    divergences: int = 0
    problems: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)


def expected_answer(created: int, local: int, close: int | None, grace: int) -> str | None:
    """The §6 client rule for an act at a node whose clock reads `local` (None: accept),
    in the order the node checks it (node/governance/deadlines.py). `close` None: a global
    delegation, which only the client window bounds."""
    if created < local - grace:
        return "created_at_too_old"
    if created > local + grace:
        return "created_at_in_future"
    if close is None:
        return None
    if created > close:
        return "after_close"
    if local >= close + grace:
        return "voting_closed"
    return None


class Racer:
    def __init__(self, seed: int) -> None:
        self.rng = rng = random.Random(seed)
        self.seed = seed
        n = rng.choice([3, 3, 4, 4, 5])
        slugs = list(SLUGS[:n])
        connectors = {f"connector-{s}": s for s in slugs}
        for i in range(rng.randint(1, 3)):
            connectors[f"extra{i}-{slugs[i % n]}"] = rng.choice(slugs)
        charter = sim_charter(slugs, connectors, **RULES)
        sim = Simulation.build(Path("/nonexistent"), slugs, seed=seed, charter=charter,
                               memory=True, settings=SyncSettings(batch_size=100))
        self.world = World(sim, charter, sorted(connectors), [],
                           hook_rng=random.Random(seed ^ 0x5EED), rng=random.Random(seed ^ 0xE11D))
        sim.network.hook = self.world._hook
        for slug in slugs:
            self.world._watch(slug)
        half = GRACE_MS // 2
        edges = rng.random() < 0.25
        for slug in slugs:
            sim.clock.skew_ms[slug] = rng.choice([-half, half]) if edges else rng.randint(-half, half)
        if rng.random() < 0.1:
            sim.clock.skew_ms[rng.choice(slugs)] = rng.choice([-GRACE_MS, GRACE_MS])
        self.sim = sim
        self.out = Race(seed)
        self.world.note(f"race: {n} nodes, connectors {sorted(connectors)}, skews "
                        f"{dict(sim.clock.skew_ms)}")

    @property
    def connectors(self) -> list[str]:
        return self.world.connectors

    def local(self, slug: str) -> int:
        return self.world.local(slug)

    def submit(self, via: str, event: Event, what: str, expect: str | None = None,
               check: bool = False) -> bool:
        node = self.sim.nodes[via]
        try:
            node.submit(event.canonical, node.clock())
            got = None
        except ChapterNodeError as e:
            got = e.code
        if got is None:
            self.world.refused.pop(event.id, None)
            self.world.acked.setdefault(event.id, Acked(event, via, self.world.step))
        elif event.id not in self.world.acked:
            self.world.refused[event.id] = got
        self.out.stats[f"edge {got or 'accepted'}" if check else
                       f"setup {got or 'accepted'}"] += 1
        self.world.note(f"{what} via {via} (local {self.local(via) - self.t0:+d}): "
                        f"{got or 'acked'}")
        if check and got != expect:
            raise Violation("client-deadline-rule", f"{what} via {via}: expected "
                            f"{expect or 'accepted'}, got {got or 'accepted'}")
        return got is None

    def sign(self, who: str, type_: str, body: dict[str, Any], via: str, at: int) -> Event:
        return self.sim.sign(who, type_, body, chapter=via, at_ms=at)

    # --- the race ----------------------------------------------------------------------

    def run(self) -> Race:
        rng, sim, world = self.rng, self.sim, self.world
        self.t0 = sim.clock.now_ms
        kinds = rng.choice([["consent"], ["vote"], ["consent", "vote"], ["vote", "vote"]])
        proposals: list[Event] = []
        for i, kind in enumerate(kinds):
            via = rng.choice(world.slugs)
            at = self.local(via)
            closes = at + MIN_OPEN_MS + rng.randint(0, 3_000)
            body = {"title": f"{kind} {i}", "text": "", "kind": kind,
                    "closes_at": format_ms(closes)}
            p = self.sign(rng.choice(self.connectors), "proposal", body, via, at)
            assert self.submit(via, p, f"{kind} proposal")
            proposals.append(p)
        world.proposals = proposals
        self.spread()
        sim.clock.advance(GRACE_MS + 500)  # past the proposals on every clock (most skews)
        self.before_close(proposals)
        self.spread()
        plan = self.plan(proposals)
        self.race(plan, proposals)
        self.finish()
        return self.out

    def spread(self) -> None:
        for _ in range(3):
            run_loop(sim_round(self.sim))
            if self.sim.converged():
                return
        run_loop(self.sim.round(reconcile=True))

    def before_close(self, proposals: list[Event]) -> None:
        """Early acts, everywhere before the race: standing vetoes, votes, delegations."""
        rng = self.rng
        for p in proposals:
            for who in self.connectors:
                via = rng.choice(self.world.slugs)
                at = self.local(via)
                if p.body["kind"] == "consent":
                    if rng.random() < 0.4:
                        e = self.sign(who, "veto", {"proposal": p.id, "reason": "no"}, via, at)
                    elif rng.random() < 0.3:
                        e = self.sign(who, "endorse", {"proposal": p.id}, via, at)
                    else:
                        continue
                else:
                    r = rng.random()
                    if r < 0.4:
                        e = self.sign(who, "vote", {"proposal": p.id, "choice": rng.choice(
                            ["yes", "no", "abstain"])}, via, at)
                    elif r < 0.8:
                        to = rng.choice([c for c in self.connectors if c != who])
                        scope = p.id if rng.random() < 0.6 else None
                        e = self.sign(who, "delegation", {"to": pub(to), "proposal": scope},
                                      via, at)
                    else:
                        continue
                self.submit(via, e, f"{who} {e.type} early on {p.body['title']}")
                self.sim.clock.advance(rng.randint(1, 30))

    def plan(self, proposals: list[Event]) -> list[tuple[int, str, str, Event, int]]:
        """The racing acts: (global instant, via, what, event, its proposal's close)."""
        rng, world = self.rng, self.world
        out = []
        for _ in range(rng.randint(4, 12)):
            p = rng.choice(proposals)
            close = closes_ms(p)
            assert close is not None
            via = rng.choice(world.slugs)
            # the instant itself and 1 ms before it, or anywhere within ± 1 s
            local = close + GRACE_MS + (rng.choice([-1, 0]) if rng.random() < 0.3
                                        else rng.randint(-1000, 1000))
            mode = rng.choice(["close", "close", "before", "before", "window", "window-1",
                               "after"])
            created = {"close": close, "before": close - rng.randint(0, 1000),
                       "window": local - GRACE_MS, "window-1": local - GRACE_MS - 1,
                       "after": close + 1}[mode]
            who = rng.choice(self.connectors)
            if p.body["kind"] == "consent":
                type_ = rng.choice(["veto", "veto_withdraw", "veto_withdraw", "endorse"])
                body: dict[str, Any] = {"proposal": p.id}
                if type_ == "veto":
                    body["reason"] = "at the last second"
            else:
                type_ = rng.choice(["vote", "vote", "delegation", "delegation"])
                if type_ == "vote":
                    body = {"proposal": p.id, "choice": rng.choice(["yes", "no", "abstain"])}
                else:
                    to = rng.choice([c for c in self.connectors if c != who] + [None])
                    body = {"to": pub(to) if to else None,
                            "proposal": p.id if rng.random() < 0.7 else None}
            event = self.sign(who, type_, body, via, created)
            what = (f"{who} {type_} {body.get('choice', '')} on {p.body['title']} dated "
                    f"close{created - close:+d} at local close+grace{local - close - GRACE_MS:+d}")
            out.append((local - self.sim.clock.skew_ms[via], via, what, event, close))
        out.sort(key=lambda x: (x[0], x[1]))
        return out

    def race(self, plan: list[tuple[int, str, str, Event, int]],
             proposals: list[Event]) -> None:
        rng, sim, world = self.rng, self.sim, self.world
        net = sim.network
        net.drop_request = net.drop_reply = 0.2
        skews = sim.clock.skew_ms.values()
        last_seal = max(closes_ms(p) or 0 for p in proposals) + GRACE_MS - min(skews) + 300
        t = min(plan[0][0], min(closes_ms(p) or 0 for p in proposals) + GRACE_MS
                - max(skews)) - 300
        if t > sim.clock.now_ms:
            sim.clock.advance(t - sim.clock.now_ms)
        i = 0
        while i < len(plan) or sim.clock.now_ms <= last_seal:
            tick = rng.choice([50, 100, 250])
            while i < len(plan) and plan[i][0] <= sim.clock.now_ms + tick:
                at, via, what, event, close = plan[i]
                if at > sim.clock.now_ms:  # the client's call lands at its planned instant
                    tick -= at - sim.clock.now_ms
                    sim.clock.advance(at - sim.clock.now_ms)
                world.step += 1
                if sim.nodes[via].store.has(event.id):
                    expect = None  # the same act again (same second, same body): 200, held
                else:
                    scoped = event.type != "delegation" or event.body["proposal"] is not None
                    expect = expected_answer(event.created_ms, self.local(via),
                                             close if scoped else None, GRACE_MS)
                self.submit(via, event, what, expect, check=True)
                i += 1
            slugs = list(world.slugs)
            rng.shuffle(slugs)
            for a in slugs:
                if rng.random() < 0.7:
                    run_loop(sim.federations[a].duty_round())
                for b in world.slugs:
                    if b != a and rng.random() < 0.2:
                        run_loop(sim.federations[a].peer_round(b, reconcile=False))
            world.check_step()
            sim.clock.advance(max(tick, 1))
        net.drop_request = net.drop_reply = 0.0
        roots = Counter()
        for p in proposals:
            seals = sim.nodes[world.slugs[0]].store.events_of(types=["seal"], proposal=p.id)
            for slug in world.slugs[1:]:
                seals += sim.nodes[slug].store.events_of(types=["seal"], proposal=p.id)
            if len({s.body["acts_root"] for s in seals}) > 1:
                roots["proposals whose seals differ before the heal"] += 1
        self.out.stats.update(roots)

    def finish(self) -> None:
        world = self.world
        max_skew = max(abs(v) for v in self.sim.clock.skew_ms.values())
        world.stats["settle rounds"] += world.settle()
        lost = set(world.acked) - world.held(world.slugs[0])
        if lost:
            raise Violation("acknowledged-event-lost", f"{len(lost)} acknowledged acts held "
                                                       "nowhere after the heal")
        world.check_seals()
        first = self.compare(final_expected=False)
        self.sim.clock.advance(TIMEOUT_MS + 2 * max_skew + 1)
        world.duties()
        world.check_step()
        second = self.compare(final_expected=True)
        for pid, h in first.items():
            if h is not None and second.get(pid) not in (None, h):
                self.out.divergences += 1
                self.out.problems.append(f"tally_hash of {pid[:12]} changed after the timeout")
        self.out.stats.update(world.stats)

    def compare(self, *, final_expected: bool) -> dict[str, str | None]:
        """Per proposal: one tally_hash and one final flag on every node, or a divergence."""
        out: dict[str, str | None] = {}
        for p in self.world.proposals:
            reports = {s: self.sim.report(s, p.id) for s in self.world.slugs}
            hashes = {r["tally_hash"] for r in reports.values()}
            finals = {r["final"] for r in reports.values()}
            all_sealed = all(not r["missing_seals"] for r in reports.values())
            must_be_final = final_expected or all_sealed
            if len(hashes) > 1 or len(finals) > 1 or (must_be_final and finals != {True}):
                self.out.divergences += 1
                self.out.problems.append(
                    f"{p.body['title']} {p.id[:12]} "
                    f"({'past the timeout' if final_expected else 'all sealed'}): "
                    + ", ".join(f"{s} {r['tally_hash'][:8]}{' final' if r['final'] else ''}"
                                for s, r in reports.items()))
                out[p.id] = None
                continue
            out[p.id] = hashes.pop()
            if final_expected and out[p.id] != self.world.expected_hash(p):
                self.out.problems.append(f"tally-not-of-the-sealed-union: {p.id[:12]}")
            if final_expected:
                r0 = next(iter(reports.values()))
                self.out.stats[f"outcome {r0['tally']['outcome']}"] += 1
                self.out.stats["late acts (in no seal)"] += len(r0["late_acts"])
                self.out.stats["proposals compared"] += 1
        return out


async def sim_round(sim: Simulation) -> None:
    await sim.round(reconcile=False)


def race(seed: int, *, keep_log: bool = False) -> Race:
    """One race; deterministic in its seed."""
    racer = Racer(seed)
    try:
        out = racer.run()
    except Violation as v:
        out = racer.out
        out.problems.append(str(v))
        if v.kind in ("tally-hash-divergence", "final-flag-divergence", "not-final"):
            out.divergences += 1
    except Exception as e:
        out = racer.out
        out.problems.append(f"exception {type(e).__name__}: "
                            + "".join(traceback.format_exception(e))[-1200:])
    finally:
        racer.world.close()
    out.ok = not out.problems and out.divergences == 0
    if keep_log or not out.ok:
        out.log = racer.world.log
    return out


def _chunk(args: tuple[int, int, float]) -> tuple[int, list[Race], Counter[str]]:
    first, n, stop = args
    bad: list[Race] = []
    stats: Counter[str] = Counter()
    done = 0
    for seed in range(first, first + n):
        if time.time() > stop:
            break
        out = race(seed)
        done += 1
        stats.update(out.stats)
        stats["divergences"] += out.divergences
        if not out.ok:
            bad.append(out)
    return done, bad, stats


def campaign(first: int, races: int, seconds: float, workers: int = 2,
             progress: Callable[[str], None] = print) -> tuple[int, list[Race], Counter[str]]:
    stop = time.time() + seconds
    jobs = [(s, min(100, first + races - s), stop) for s in range(first, first + races, 100)]
    done, bad, stats = 0, [], Counter()
    if workers <= 1:
        results: Any = map(_chunk, jobs)
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_chunk, jobs)
    try:
        for i, (n, b, s) in enumerate(results):
            done += n
            bad += b
            stats.update(s)
            if i % 5 == 4:
                progress(f"deadline races: {done:,} races, {stats['divergences']} divergences")
    finally:
        if workers > 1:
            pool.shutdown()
    return done, bad, stats


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    started = time.monotonic()
    races = max(50, int(2_000 * scale))
    done, bad, stats = campaign(seed, races, max(30.0, 240 * scale),
                                workers=min(2, os.cpu_count() or 1), progress=progress)
    for b in bad[:5]:
        progress(f"deadline race {b.seed} failed: {b.problems[0][:300]}; replay with "
                 f"`python -m hardening.deadlines {b.seed}`")
    took = time.monotonic() - started
    edge = {k[5:]: v for k, v in stats.items() if k.startswith("edge ")}
    kinds: dict[str, list[Race]] = {}
    for b in bad:
        kind = b.problems[0].split(":")[0] if b.problems else "divergence"
        kinds.setdefault(kind, []).append(b)
    return Result(
        number=10, name="deadline races (skewed clocks)",
        tried=f"{done:,} races (from seed {seed}) of 3–5 in-memory nodes with clocks skewed "
              f"within ± grace/2 (edges in a quarter, one node at ± grace in a tenth): "
              f"{sum(edge.values()):,} acts sent by clients at local closes_at + grace ± 1 s "
              "(dated at, just before or 1 ms after closes_at, and at the client window's "
              "edge), on consent (veto/withdraw flips) and vote proposals (votes changed, "
              "delegations given, moved, revoked), while 20 % of requests and replies were "
              "lost around the sealing instant; then heal, settle, timeout",
        count=done,
        held=(f"{stats['divergences']} divergences: every node reported the same tally_hash "
              f"and final flag for all {stats['proposals compared']:,} proposals, once every "
              f"seal was in and past the timeout; {stats['proposals whose seals differ before the heal']:,} "
              "proposals had seals over different act sets; every client answer was the §6 "
              f"rule at that node's clock ({_fmt(edge)}); no refused act anywhere"
              if not bad else f"{done - len(bad):,} of {done:,} races held; "
              f"{stats['divergences']} divergences"),
        failures=[Failure(k, len(v), [f"seed {b.seed}: {b.problems[0][:200]}" for b in v[:2]])
                  for k, v in kinds.items()],
        seconds=took,
        notes=(f"{done:,} races in {took:.0f} s on 2 processes; replay one with "
               f"`python -m hardening.deadlines SEED`. Outcomes: "
               f"{_fmt({k[8:]: v for k, v in stats.items() if k.startswith('outcome ')})}; "
               f"{stats['late acts (in no seal)']:,} acknowledged acts were in no counted seal "
               "(late, left out alike on every node)."),
    )


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hardening.deadlines",
                                     description="Replay campaign 10 races, step by step.")
    parser.add_argument("seeds", type=int, nargs="+")
    args = parser.parse_args(argv)
    bad = 0
    for seed in args.seeds:
        out = race(seed, keep_log=True)
        print(f"race {seed}: {'held' if out.ok else 'FAILED'} ({out.divergences} divergences)")
        for line in out.log:
            print("   ", line)
        for p in out.problems:
            print("  ", p)
        bad += not out.ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
