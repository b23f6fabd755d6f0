"""Campaign 9: deterministic simulation of 3–7 real nodes on the in-memory network.

What runs: real `ChapterNode`s (SQLite memory stores) and their real `Federation` sync code over
`LocalNetwork` (node/federation/local_network.py), on virtual time with a per-node clock skew.
Nothing runs in the background: every step is one action, so a seed is one run.

One seed = one world and one schedule of 6–24 steps drawn by `random.Random(seed)`:

- **people act** through a random running node's client path (`ChapterNode.submit`, that
  node's skewed clock): Connectors and vouched members open consent, vote and action
  proposals (some closing too soon, some by a member who may not open a vote; some consent and
  vote proposals appoint a new Connector, who then acts too, or remove one) and act on them
  (endorse, veto, veto_withdraw, vote, proposal-specific and global delegations, comments),
  dated at the node's clock ± up to grace (sometimes just past it, sometimes exactly at or
  1 ms after a proposal's `closes_at`), sometimes through a node that does not hold the
  proposal yet, sometimes by a member where a Connector is needed;
- **sync**: one node's peer round with one peer (push, pull, Negentropy with p = 0.3), a full
  round of every running node, a node's duty round (seals, sealed lists, finality), or 2–4 peer
  rounds at once with calls yielding a random number of times in between (reordering);
- **faults**: request loss, reply loss and duplication probabilities (0 to 0.5), withholding one
  endpoint (sealed lists, fetch, Negentropy, push or pull) for a while, a random two-sided
  partition or one cut link, heal, crash of a running node (its store survives) and restart;
- **time**: advance 50 ms to 4 s, or jump near an instant that matters (a proposal's
  `closes_at + grace` ± 1.5 s, or `closes_at + grace + seal_timeout` ± 1 s); set a node's skew
  anywhere in [-grace, +grace] (often exactly at an edge), a clock that can step back.

Rules: `min_open_hours` 0.001 (3.6 s), `grace_seconds` 2, `seal_timeout_seconds` 10, the
default quorum and 3 endorsements; one Connector per chapter, a second one in one chapter in
half the worlds, and a vouched member in some chapters.

Checked after every step (cheap): no unexpected exception in any node (the network's 500s);
no node holds an event some client was refused (and no one acknowledged later); every
acknowledged event (`submit` returned) is still in the store of the node that took it, across
crash and restart; no peer batch line is refused yet stored.

Checked at the end, after heal, restart of every crashed node, an advance past every close +
grace (+ the largest skew), every node's duties (its due seals), then rounds in which each node
syncs with 2 of its peers drawn at random (a full mesh costs n(n-1) peer rounds; Negentropy
every other round) until nothing changes (at most 16): every node holds the
same event set (acknowledged acts that no seal covers stay stored: they are late, not lost) and
the same sealed lists; every acknowledged event is held everywhere; each seal lists exactly
the acts its node held, dated by `closes_at`, when it sealed (§6); for every proposal every
node reports the same `tally_hash`, and where every chapter's seal is counted, `final`
everywhere; then, past every `closes_at + grace + seal_timeout` (+ skew), every node reports
`final` with that same `tally_hash`, which must be the tally over the union of the counted
seals' lists (seals created within [close + grace, + seal_timeout]; every act if none counts),
computed here from the seals alone. Seals per node may differ by design; the union may not.

When the sets stay apart, each event some node lacks is offered to it once more: if every
refusal is for a role its author lacks at its created_at or an effect gone stale (while
another node stored it), the
seed counts as the known bug `effect-retroactive-admission` (hardening/known.py) and the
tallies are still compared on the proposals every node holds; anything else is new.

Cost: 3 to 7 nodes, smaller ones more often (3: 30 %, 4: 30 %, 5: 20 %, 6 and 7: 10 % each;
a round costs about n² peer calls), and in a third of the worlds of 5 or more nodes each node
syncs with k = 2 or 3 peers (`SyncSettings.peers`). About 45 ms a seed on an idle core: the
campaign runs seeds in chunks of 250 on two processes, bounded in time.

Replay: `python -m hardening.simulation SEED` runs one seed and prints its steps; the
hypothesis state machine (`machine()`) drives the same actions (shrinking) in the fast slice,
tests/test_hardening_simulation.py. `make hardening` runs ≥ 10,000 seeds on two processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from node.federation.local_network import Delivery
from node.federation.peer_client import PeerUnavailable
from node.federation.sync import SyncSettings
from node.governance import Timeline, act_set, admitted_acts, registry_relevant, tally
from node.protocol.charter import Charter
from node.protocol.errors import ChapterNodeError
from node.protocol.events import Event, event_from_stored
from node.protocol.times import format_ms
from node.store import Store

from .memsim import Simulation, pub, sim_charter
from .report import Failure, Result

__all__ = ["World", "Draws", "RandomDraws", "HypothesisDraws", "machine", "run_seed", "Outcome", "run",
           "SLUGS", "GRACE_MS", "SEAL_TIMEOUT_MS", "MIN_OPEN_MS", "run_loop"]

T = TypeVar("T")
SLUGS = ("paris", "rome", "barcelona", "lisbon", "berlin", "vienna", "prague")
GRACE_MS = 2_000
SEAL_TIMEOUT_MS = 10_000
MIN_OPEN_MS = 3_600  # min_open_hours 0.001
RULES = {"min_open_hours": 0.001, "grace_seconds": GRACE_MS // 1000,
         "seal_timeout_seconds": SEAL_TIMEOUT_MS // 1000}
WITHHELD = ("/federation/v1/sealed", "/federation/v1/fetch", "/federation/v1/negentropy",
            "/federation/v1/events", "/federation/v1/changes")
MAX_PROPOSALS = 3
# refusals that depend on the registry at created_at, which effects change
# (node/governance/refusals.py): a role the author lacks, or an effect gone stale
ROLE_CODES = frozenset({"not_connector", "delegate_not_connector", "not_member",
                        "not_vote_author", "already_connector", "effect_not_connector",
                        "effect_unknown_chapter", "chapter_exists"})
SETTLE_ROUNDS = 16
GOSSIP = 2

_LOOP: asyncio.AbstractEventLoop | None = None


def run_loop(coro: Any) -> Any:
    """Run `coro` on this process's one event loop (a simulation step is synchronous)."""
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    return _LOOP.run_until_complete(coro)


class Violation(AssertionError):
    """An invariant broke: `kind` names it (the campaign counts failures by kind)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


# --- where choices come from -----------------------------------------------------------


class Draws(Protocol):
    def choice(self, options: Sequence[T]) -> T: ...
    def integer(self, lo: int, hi: int) -> int: ...
    def chance(self, p: float) -> bool: ...


class RandomDraws:
    """Choices from `random.Random(seed)`: a seed is one run."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


class HypothesisDraws:
    """Choices from hypothesis (`st.data()`): it explores and shrinks them."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data = data
        self.st = st

    def choice(self, options: Sequence[T]) -> T:
        return self.data.draw(self.st.sampled_from(list(options)))

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))

    def chance(self, p: float) -> bool:
        # shrinks towards 0, i.e. towards "no": the smaller example has fewer faults
        return self.data.draw(self.st.integers(0, 99)) >= round((1 - p) * 100)


# --- the world -------------------------------------------------------------------------


@dataclass
class Acked:
    event: Event
    via: str
    step: int


@dataclass
class World:
    """A simulated federation, what people were told, and the checks."""

    sim: Simulation
    charter: Charter
    connectors: list[str]
    members: list[str]
    proposals: list[Event] = field(default_factory=list)
    acked: dict[str, Acked] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # id -> code, never acked since
    log: list[str] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    step: int = 0
    withheld: dict[str, float] = field(default_factory=dict)  # path prefix -> drop chance
    jitter: random.Random | None = None  # set while calls run concurrently
    concurrent: bool = False
    hook_rng: random.Random = field(default_factory=lambda: random.Random(0))
    problems: list[Violation] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(1))  # settle's peer draws

    # --- building ----------------------------------------------------------------------

    @classmethod
    def build(cls, d: Draws, *, nodes: int | None = None, seed: int = 0) -> World:
        # smaller federations more often: a round costs about n² peer calls
        n = nodes if nodes is not None else d.choice([3, 3, 3, 4, 4, 4, 5, 5, 6, 7])
        slugs = list(SLUGS[:n])
        connectors = {f"connector-{s}": s for s in slugs}
        if d.chance(0.5):
            home = d.choice(slugs)
            connectors[f"second-{home}"] = home
        charter = sim_charter(slugs, connectors, **RULES)
        # every other chapter (the default), or k of them drawn by rendezvous hashing
        peers = d.choice([None, 2, 3]) if n >= 5 else None
        sim = Simulation.build(Path("/nonexistent"), slugs, seed=seed, charter=charter,
                               memory=True, settings=SyncSettings(batch_size=100, peers=peers))
        world = cls(sim, charter, sorted(connectors), [],
                    hook_rng=random.Random(seed ^ 0x5EED), rng=random.Random(seed ^ 0xE11D))
        sim.network.hook = world._hook
        for slug in slugs:
            world._watch(slug)
            sim.clock.skew_ms[slug] = d.choice([0, 0, d.integer(-GRACE_MS, GRACE_MS)])
        for slug in slugs:
            if d.chance(0.3):
                name = f"member-{slug}"
                node = sim.nodes[slug]
                node.member_add(pub(name), name, "", node.clock())
                world.members.append(name)
        world.note(f"world: {n} nodes {slugs}, peers {peers or 'all'}, connectors {sorted(connectors)}, "
                   f"members {world.members}, skews {dict(sim.clock.skew_ms)}")
        return world

    def close(self) -> None:
        self.sim.close()

    def note(self, text: str) -> None:
        self.log.append(f"{self.step:3d} t={self.sim.clock.now_ms - START_MS:>7d} {text}")

    # --- instrumentation ---------------------------------------------------------------

    async def _hook(self, delivery: Delivery) -> None:
        for prefix, p in self.withheld.items():
            if delivery.path.startswith(prefix) and self.hook_rng.random() < p:
                self.stats["withheld"] += 1
                raise PeerUnavailable(f"{delivery.path}: withheld")
        if self.jitter is not None:
            for _ in range(self.jitter.randrange(4)):
                await asyncio.sleep(0)

    def _watch(self, slug: str) -> None:
        """Every peer batch the node judges: a line refused must not be stored."""
        node = self.sim.nodes[slug]
        inner = node.receive_steps

        def steps(lines: list[bytes], *, origin: str, now_ms: int):  # type: ignore[no-untyped-def]
            results = yield from inner(lines, origin=origin, now_ms=now_ms)
            for outcome in results:
                if outcome.status == "refused":
                    self.stats[f"peer refused {outcome.code}"] += 1
                    if outcome.id and not self.concurrent and node.store.has(outcome.id):
                        self.problems.append(Violation(
                            "refused-but-stored", f"{slug} refused {outcome.id[:12]} from "
                            f"{origin} ({outcome.code}) and holds it"))
            return results

        node.receive_steps = steps  # type: ignore[method-assign]

    # --- observing ---------------------------------------------------------------------

    def local(self, slug: str) -> int:
        return self.sim.clock.now_ms + self.sim.clock.skew_ms.get(slug, 0)

    def running(self) -> list[str]:
        return sorted(self.sim.nodes)

    @property
    def grace_ms(self) -> int:
        return self.charter.rules.grace_ms

    @property
    def timeout_ms(self) -> int:
        return self.charter.rules.seal_timeout_ms

    @property
    def slugs(self) -> list[str]:
        return [c.slug for c in self.charter.chapters]

    def store(self, slug: str) -> Store:
        """The store of `slug`, running or crashed (a crashed in-memory node keeps its own)."""
        node = self.sim.nodes.get(slug)
        return node.store if node is not None else self.sim._kept[slug]

    def held(self, slug: str) -> set[str]:
        return {r[0] for r in self.store(slug).db.execute("select id from events")}

    def closes(self, proposal: Event) -> int | None:
        from node.governance import closes_ms

        return closes_ms(proposal)

    # --- actions (each draws what it needs from `d`) -----------------------------------

    def _submit(self, via: str, event: Event, what: str) -> bool:
        node = self.sim.nodes[via]
        try:
            node.submit(event.canonical, node.clock())
        except ChapterNodeError as e:
            if event.id not in self.acked:
                self.refused[event.id] = e.code
            self.stats[f"client refused {e.code}"] += 1
            self.note(f"{what} via {via}: refused {e.code}")
            if node.store.has(event.id) and event.id not in self.acked:
                raise Violation("refused-but-stored", f"{via} refused {what} ({e.code}) and "
                                                      "holds it") from None
            return False
        self.refused.pop(event.id, None)
        self.acked.setdefault(event.id, Acked(event, via, self.step))
        self.stats["acked"] += 1
        self.note(f"{what} via {via}: acked {event.id[:12]}")
        return True

    def _dated(self, d: Draws, via: str, proposal: Event | None = None) -> int:
        now = self.local(via)
        close = self.closes(proposal) if proposal is not None else None
        if close is not None and abs(close - now) <= self.grace_ms and d.chance(0.4):
            return close + d.choice([0, 0, -1, 1])  # at the edge of closes_at
        pick = d.integer(0, 9)
        if pick < 5:
            return now
        if pick < 8:
            return now + d.integer(-self.grace_ms, self.grace_ms)
        return now + d.choice([-self.grace_ms, self.grace_ms, -self.grace_ms - 1, self.grace_ms + 1])

    def propose(self, d: Draws) -> None:
        if len(self.proposals) >= MAX_PROPOSALS:
            return self.act(d)
        via = d.choice(self.running())
        author = d.choice(self.connectors + self.members)
        kind = d.choice(["consent", "consent", "vote", "vote", "action", "effect", "effect"])
        at = self._dated(d, via)
        body: dict[str, Any] = {"title": f"idea {self.step}", "text": "", "kind": kind}
        appointee = None
        if kind == "effect":  # a consent (or vote) proposal that changes the registry
            body["kind"] = d.choice(["consent", "consent", "vote"])
            if d.chance(0.6):
                appointee = f"appointee-{self.step}"
                body["effect"] = {"appoint_connector": {
                    "key": pub(appointee), "name": appointee, "chapter": d.choice(self.slugs)}}
            else:
                body["effect"] = {"remove_connector": {"key": pub(d.choice(self.connectors))}}
        if body["kind"] != "action":
            opened = d.choice([MIN_OPEN_MS - 1, MIN_OPEN_MS, MIN_OPEN_MS,
                               MIN_OPEN_MS + d.integer(0, 12_000)])
            body["closes_at"] = format_ms(at + opened)
        event = self.sim.sign(author, "proposal", body, chapter=via, at_ms=at)
        effect = f" {next(iter(body['effect']))}" if "effect" in body else ""
        if self._submit(via, event, f"{author} proposes {body['kind']}{effect} "
                                    f"(closes {body.get('closes_at', '-')[17:23]})"):
            self.proposals.append(event)
            if effect:
                self.stats[f"effect{effect}"] += 1
            if appointee is not None:
                self.connectors.append(appointee)  # acts before the close are refused

    def act(self, d: Draws) -> None:
        if not self.proposals:
            return self.propose(d)
        proposal = d.choice(self.proposals)
        holding = [s for s in self.running() if self.sim.nodes[s].store.has(proposal.id)]
        via = d.choice(holding if holding and d.chance(0.8) else self.running())
        kind = proposal.body["kind"]
        author = d.choice(self.connectors) if d.chance(0.9) or not self.members \
            else d.choice(self.members)
        types = {"consent": ["veto", "veto", "veto_withdraw", "endorse", "comment", "delegation"],
                 "vote": ["vote", "vote", "vote", "delegation", "delegation", "comment"],
                 "action": ["endorse", "endorse", "comment"]}[kind]
        type_ = d.choice(types)
        pid = proposal.id
        body: dict[str, Any]
        if type_ == "veto":
            body = {"proposal": pid, "reason": "too costly"}
        elif type_ in ("veto_withdraw", "endorse"):
            body = {"proposal": pid}
        elif type_ == "vote":
            body = {"proposal": pid, "choice": d.choice(["yes", "no", "abstain"])}
        elif type_ == "comment":
            body = {"proposal": pid, "text": f"comment {self.step}"}
        else:
            others = [c for c in self.connectors if c != author]
            to = pub(d.choice(others)) if others and d.chance(0.8) else None
            body = {"to": to, "proposal": pid if d.chance(0.7) else None}
        at = self._dated(d, via, proposal)
        event = self.sim.sign(author, type_, body, chapter=via, at_ms=at)
        close = self.closes(proposal)
        edge = "" if close is None else f" at close{at - close:+d}ms"
        self._submit(via, event, f"{author} {type_} {pid[:8]}{edge}")

    def sync(self, d: Draws) -> None:
        a = d.choice(self.running())
        peers = self.sim.federations[a].peers()
        b = d.choice(peers)
        reconcile = d.chance(0.3)
        outcome = run_loop(self.sim.federations[a].peer_round(b, reconcile=reconcile))
        self.note(f"sync {a}->{b}{' +negentropy' if reconcile else ''}: "
                  f"{'ok' if outcome.ok else outcome.error}")

    def round(self, d: Draws) -> None:
        reconcile = d.chance(0.3)
        run_loop(self.sim.round(reconcile=reconcile))
        self.note(f"round{' +negentropy' if reconcile else ''}")

    def duty(self, d: Draws) -> None:
        a = d.choice(self.running())
        run_loop(self.sim.federations[a].duty_round())
        self.note(f"duties of {a}")

    def concurrently(self, d: Draws) -> None:
        pairs = []
        for _ in range(d.integer(2, 4)):
            a = d.choice(self.running())
            pairs.append((a, d.choice(self.sim.federations[a].peers()), d.chance(0.3)))
        self.jitter = random.Random(d.integer(0, 2**31))
        self.concurrent = True

        async def together() -> None:
            await asyncio.gather(*(self.sim.federations[a].peer_round(b, reconcile=r)
                                   for a, b, r in pairs))

        try:
            run_loop(together())
        finally:
            self.jitter = None
            self.concurrent = False
        self.note(f"at once: {', '.join(f'{a}->{b}' for a, b, _ in pairs)}")

    def faults(self, d: Draws) -> None:
        net = self.sim.network
        net.drop_request = d.choice([0.0, 0.0, 0.05, 0.2, 0.5])
        net.drop_reply = d.choice([0.0, 0.0, 0.05, 0.2, 0.5])
        net.duplicate = d.choice([0.0, 0.0, 0.1, 0.3])
        self.withheld = {}
        if d.chance(0.5):
            self.withheld[d.choice(WITHHELD)] = d.choice([0.5, 1.0])
        self.note(f"faults: lose requests {net.drop_request}, replies {net.drop_reply}, "
                  f"duplicate {net.duplicate}, withhold {self.withheld}")

    def partition(self, d: Draws) -> None:
        slugs = self.slugs
        if d.chance(0.3):
            a = d.choice(slugs)
            b = d.choice([s for s in slugs if s != a])
            self.sim.network.cut(a, b)
            self.note(f"cut {a}-{b}")
            return
        side = {s for s in slugs if d.chance(0.5)}
        if not side or side == set(slugs):
            side = {d.choice(slugs)}
        self.sim.network.partition(side, set(slugs) - side)
        self.note(f"partition {sorted(side)} | {sorted(set(slugs) - side)}")

    def heal(self, d: Draws) -> None:
        self.sim.network.heal()
        self.note("heal")

    def crash(self, d: Draws) -> None:
        if len(self.running()) < 2:
            return self.restart(d)
        slug = d.choice(self.running())
        self.sim.crash(slug)
        self.stats["crashes"] += 1
        self.note(f"crash {slug}")

    def restart(self, d: Draws) -> None:
        down = sorted(set(self.slugs) - set(self.sim.nodes))
        if not down:
            return self.crash(d)
        slug = d.choice(down)
        self._start(slug)
        self.note(f"restart {slug}")

    def _start(self, slug: str) -> None:
        self.sim.start(slug)
        self._watch(slug)

    def advance(self, d: Draws) -> None:
        now = self.sim.clock.now_ms
        pick = d.integer(0, 9)
        closing = [c for c in (self.closes(p) for p in self.proposals) if c is not None]
        ms = d.choice([50, 250, 1000, d.integer(1, 4000)])
        if pick >= 6 and closing:
            close = d.choice(closing)
            if pick >= 9:
                target = close + self.grace_ms + self.timeout_ms + d.integer(-1000, 1000)
            else:
                target = close + self.grace_ms + d.integer(-1500, 1500)
            if target > now:
                ms = target - now
        self.sim.clock.advance(ms)
        self.note(f"advance {ms} ms")

    def skew(self, d: Draws) -> None:
        slug = d.choice(self.slugs)
        ms = d.choice([-self.grace_ms, self.grace_ms, 0, d.integer(-self.grace_ms, self.grace_ms)])
        self.sim.clock.skew_ms[slug] = ms
        self.note(f"skew {slug} {ms:+d} ms")

    ACTIONS: ClassVar[dict[str, int]] = {
        "propose": 8, "act": 30, "sync": 14, "round": 6, "duty": 6, "concurrently": 4,
        "advance": 14, "skew": 3, "partition": 4, "heal": 3, "crash": 3, "restart": 3,
        "faults": 4,
    }

    def do(self, name: str, d: Draws) -> None:
        self.step += 1
        getattr(self, name)(d)
        self.check_step()

    # --- invariants --------------------------------------------------------------------

    def check_step(self) -> None:
        """Cheap invariants, after every step."""
        if self.problems:
            raise self.problems[0]
        if self.sim.network.errors:
            e = self.sim.network.errors[0]
            raise Violation("unexpected-exception", f"{type(e).__name__}: {e}")
        stores = {s: self.store(s) for s in self.slugs}
        for eid, code in self.refused.items():
            for slug, store in stores.items():
                if store.has(eid):
                    raise Violation("refused-event-stored",
                                    f"{slug} holds {eid[:12]}, refused to its client ({code})")
        for eid, acked in self.acked.items():
            if not stores[acked.via].has(eid):
                raise Violation("acknowledged-event-lost",
                                f"{acked.via} acknowledged {eid[:12]} at step {acked.step} "
                                "and no longer holds it")

    def settle(self) -> int:
        """Heal, restart everyone, no faults; rounds until every node holds the same events,
        sealed lists and its own due seals. Returns the rounds it took."""
        self.sim.network.heal()
        self.sim.network.drop_request = self.sim.network.drop_reply = 0.0
        self.sim.network.duplicate = 0.0
        self.withheld = {}
        for slug in sorted(set(self.slugs) - set(self.sim.nodes)):
            self._start(slug)
        self.duties()  # the seals that are due first, so one round can spread them all
        for n in range(SETTLE_ROUNDS):
            if n and self.settled():
                return n
            run_loop(self.gossip(reconcile=n % 2 == 1))
            self.check_step()
        if not self.settled():
            raise self.diagnose()
        return SETTLE_ROUNDS

    def diagnose(self) -> Violation:
        """Why the sets stay apart: offer each event some node lacks to one that lacks it.

        Refused for a role its author lacks at its created_at, or as an effect gone stale
        (under the registry every node now agrees on), while another node stored it: the
        known bug `effect-retroactive-admission` (hardening/known.py). Anything else is new."""
        sets = {s: self.held(s) for s in self.slugs}
        codes: Counter[str] = Counter()
        examples = []
        for eid in sorted(set().union(*sets.values())):
            lacking = [s for s in self.slugs if eid not in sets[s]]
            if not lacking:
                continue
            holder = next(s for s in self.slugs if eid in sets[s])
            event = self.store(holder).get(eid)
            node = self.sim.nodes[lacking[0]]
            outcome = node.receive([event.canonical], origin=holder, now_ms=node.clock())[0]
            codes[outcome.code or outcome.status] += 1
            examples.append(f"{event.type} {eid[:12]} on {holder}, {lacking[0]} says "
                            f"{outcome.code or outcome.status}")
        sizes = {s: len(v) for s, v in sets.items()}
        detail = f"after heal and {SETTLE_ROUNDS} rounds the event sets differ: {sizes}; " \
                 + "; ".join(examples[:3])
        if codes and set(codes) & ROLE_CODES and set(codes) <= ROLE_CODES | {"unknown_proposal"}:
            return Violation("effect-retroactive-admission", detail)
        return Violation("no-convergence", detail)

    async def gossip(self, *, reconcile: bool) -> None:
        """A cheaper round: every node, in chapter order, with `GOSSIP` of its peers drawn at
        random (a full mesh costs n(n-1) peer rounds), then its duties."""
        for slug in sorted(self.sim.federations):
            federation = self.sim.federations[slug]
            peers = federation.peers()
            for peer in sorted(self.rng.sample(peers, min(GOSSIP, len(peers)))):
                await federation.peer_round(peer, reconcile=reconcile)
            await federation.duty_round()

    def duties(self) -> None:
        async def every() -> None:
            for slug in sorted(self.sim.federations):
                await self.sim.federations[slug].duty_round()

        run_loop(every())

    def settled(self) -> bool:
        sets = [self.held(s) for s in self.slugs]
        if any(s != sets[0] for s in sets):
            return False
        lists = [self.store(s).all_sealed() for s in self.slugs]
        if any(x != lists[0] for x in lists):
            return False
        # a seal that is due must be out (the next duty round makes it): wait for it
        for slug in self.slugs:
            node = self.sim.nodes[slug]
            for p in self.proposals:
                close = self.closes(p)
                if close is not None and p.id in sets[0] and self.local(slug) >= close + self.grace_ms \
                        and node.not_admitted(p) is None \
                        and not any(s.author == node.node_public for s in
                                    node.store.events_of(types=["seal"], proposal=p.id)):
                    return False
        return True

    def check_end(self) -> None:
        """Heal, settle, and compare what every node reports."""
        max_skew = max(abs(v) for v in self.sim.clock.skew_ms.values()) if self.sim.clock.skew_ms else 0
        closing = [c for c in (self.closes(p) for p in self.proposals) if c is not None]
        if closing:
            target = max(closing) + self.grace_ms + max_skew + 1
            if self.sim.clock.now_ms < target:
                self.sim.clock.advance(target - self.sim.clock.now_ms)
        self.note("end: heal, restart all, settle")
        known: Violation | None = None
        try:
            self.stats["settle rounds"] += self.settle()
        except Violation as v:
            if v.kind != "effect-retroactive-admission":
                raise
            known = v  # a known divergence of the event sets: the tallies must still agree
            self.note(f"end: {v}")
        if known is None:
            lost = set(self.acked) - self.held(self.slugs[0])
            if lost:
                raise Violation("acknowledged-event-lost", f"{len(lost)} acknowledged events "
                                                           "are held nowhere after the heal")
        self.check_seals()
        before = self.compare_reports(final_expected=False, diverged=known is not None)
        self.sim.clock.advance(self.timeout_ms + 2 * max_skew + 1)
        self.note("end: past every seal timeout")
        self.duties()  # finality needs no message: every seal is already everywhere
        self.check_step()
        if known is None and not self.settled():
            raise Violation("no-convergence", "the event sets moved apart after the timeout")
        after = self.compare_reports(final_expected=True, diverged=known is not None)
        for pid, h in before.items():
            if after.get(pid, h) != h:
                raise Violation("tally-changed-after-convergence",
                                f"{pid[:12]}: {h[:12]} before the seal timeout, "
                                f"{after[pid][:12]} after")
        if known is not None:
            raise known

    def check_seals(self) -> None:
        """§6: each node's seal covers exactly the acts it held, dated by closes_at, when it
        sealed (its store's arrival order says what it held)."""
        for slug in self.slugs:
            store = self.store(slug)
            node = self.sim.nodes[slug]
            for p in self.proposals:
                if not store.has(p.id):
                    continue
                for seal in store.events_of(types=["seal"], proposal=p.id):
                    if seal.author != node.node_public:
                        continue
                    self.stats["seals"] += 1
                    seq = store.seqs([seal.id])[seal.id]
                    acts = store.events_of(proposal=p.id, global_delegations=True)
                    arrived = store.seqs(e.id for e in acts)
                    before = [e for e in acts if arrived[e.id] < seq]
                    # the acts the registry it held then admitted (derived admission)
                    then = [event_from_stored(r[0], r[1]) for r in store.db.execute(
                        "select canonical, created_ms from events where seq < ?", [seq])]
                    sealed = {k: v for k, v in store.all_sealed().items()
                              if k in {e.id for e in then}}
                    timeline = Timeline.build(self.charter, registry_relevant(then), sealed)
                    expected = sorted(a.id for a in admitted_acts(act_set(p, before), timeline))
                    listed = store.get_sealed(seal.id)
                    if listed is None or sorted(listed) != expected:
                        raise Violation("seal-not-its-act-set",
                                        f"{slug}'s seal of {p.id[:12]} lists "
                                        f"{None if listed is None else len(listed)} acts, it "
                                        f"held {len(expected)} when it sealed")

    def expected_hash(self, proposal: Event) -> str:
        """§6/§7 from the seals alone: the tally over the acts in the union of the counted
        seals' lists (a seal counts if created within [close + grace, + seal_timeout]), or over
        every act if none counts."""
        store = self.store(self.slugs[0])
        held = act_set(proposal, store.events_of(proposal=proposal.id, global_delegations=True))
        close = self.closes(proposal)
        if close is not None:
            counted = [s for s in store.events_of(types=["seal"], proposal=proposal.id)
                       if close + self.grace_ms <= s.created_ms
                       <= close + self.grace_ms + self.timeout_ms]
            if counted:
                union = set().union(*(store.get_sealed(s.id) or () for s in counted))
                held = tuple(a for a in held if a.id in union)
        node = self.sim.nodes[self.slugs[0]]
        return tally(proposal, held, node.timeline(), self.charter.rules).hash

    def compare_reports(self, *, final_expected: bool, diverged: bool = False) -> dict[str, str]:
        """Every node: the same tally_hash for every proposal; `final` where it must be.

        `diverged`: the event sets differ by the known bug (effect-retroactive-admission):
        proposals some node lacks are skipped, a seal may list an act another node can never
        hold (so `final` is required only past the timeout), and the union is not recomputed."""
        hashes: dict[str, str] = {}
        for p in self.proposals:
            if diverged and not all(self.store(s).has(p.id) for s in self.slugs):
                continue
            # derived admission: a proposal some peer kept though no registry admits it
            verdicts = {s: self.sim.nodes[s].not_admitted(p) for s in self.slugs}
            if len(set(verdicts.values())) != 1:
                raise Violation("admission-divergence", f"{p.body['kind']} {p.id[:12]}: "
                                + ", ".join(f"{s} {v or 'admitted'}" for s, v in verdicts.items()))
            if next(iter(verdicts.values())) is not None:
                self.stats["kept, not admitted"] += 1
                continue
            reports = {s: self.sim.report(s, p.id) for s in self.slugs}
            distinct = {r["tally_hash"] for r in reports.values()}
            if len(distinct) != 1:
                raise Violation("tally-hash-divergence", f"{p.body['kind']} {p.id[:12]}: "
                                + ", ".join(f"{s} {r['tally_hash'][:8]}"
                                            f"{' final' if r['final'] else ''}"
                                            for s, r in reports.items()))
            finals = {r["final"] for r in reports.values()}
            all_sealed = all(not r["missing_seals"] for r in reports.values()) and not diverged
            kind = p.body["kind"]
            if kind == "action" or final_expected or all_sealed:
                if len(finals) != 1:
                    raise Violation("final-flag-divergence", f"{kind} {p.id[:12]}: "
                                    + ", ".join(f"{s} {r['final']}" for s, r in reports.items()))
            if kind != "action" and (final_expected or all_sealed) and finals != {True}:
                raise Violation("not-final", f"{kind} {p.id[:12]} is not final "
                                f"({'past the timeout' if final_expected else 'all sealed'})")
            r0 = next(iter(reports.values()))
            if final_expected and not diverged and r0["tally_hash"] != self.expected_hash(p):
                raise Violation("tally-not-of-the-sealed-union",
                                f"{kind} {p.id[:12]}: every node reports {r0['tally_hash'][:12]}, "
                                f"the counted seals' union gives {self.expected_hash(p)[:12]}")
            if final_expected and kind != "action":
                self.stats["final all sealed" if not r0["missing_seals"] else
                           "final timed out"] += 1
                self.stats["amended"] += sum(bool(r["amended"]) for r in reports.values())
                self.stats["late acts"] += len(r0["late_acts"])
                self.stats[f"outcome {r0['tally']['outcome']}"] += 1
            hashes[p.id] = distinct.pop()
        return hashes


START_MS = 1_769_936_400_000  # VirtualClock's start, 2026-02-01T09:00:00.000Z


# --- one seed --------------------------------------------------------------------------


@dataclass
class Outcome:
    seed: int
    ok: bool
    kind: str = ""
    detail: str = ""
    steps: list[str] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)


def run_seed(seed: int, *, keep_log: bool = False) -> Outcome:
    """One seed: a world, its schedule, the checks. Deterministic: the same seed, one run."""
    rng = random.Random(seed)
    d = RandomDraws(rng)
    names = list(World.ACTIONS)
    weights = list(World.ACTIONS.values())
    world = World.build(d, seed=seed)
    try:
        for _ in range(rng.randint(6, 24)):
            world.do(rng.choices(names, weights)[0], d)
        world.check_end()
    except Violation as v:
        return Outcome(seed, False, v.kind, str(v), world.log, world.stats)
    except Exception as e:  # a crash of the node's code (or of the campaign) is a finding
        return Outcome(seed, False, f"exception {type(e).__name__}",
                       "".join(traceback.format_exception(e))[-1500:], world.log, world.stats)
    finally:
        world.close()
    return Outcome(seed, True, steps=world.log if keep_log else [], stats=world.stats)


def _chunk(args: tuple[int, int, float]) -> tuple[int, list[Outcome], Counter[str]]:
    """Seeds [first, first + n) until `stop` (time.time()); failures and summed stats."""
    first, n, stop = args
    failures: list[Outcome] = []
    stats: Counter[str] = Counter()
    done = 0
    for seed in range(first, first + n):
        if time.time() > stop:
            break
        out = run_seed(seed)
        stats.update(out.stats)
        done += 1
        if not out.ok:
            failures.append(out)
    return done, failures, stats


def campaign(first_seed: int, seeds: int, seconds: float, workers: int = 2,
             progress: Callable[[str], None] = print) -> tuple[int, list[Outcome], Counter[str]]:
    """Run `seeds` seeds from `first_seed` on `workers` processes, stopping at `seconds`."""
    stop = time.time() + seconds
    chunk = 250
    jobs = [(s, min(chunk, first_seed + seeds - s), stop)
            for s in range(first_seed, first_seed + seeds, chunk)]
    done = 0
    failures: list[Outcome] = []
    stats: Counter[str] = Counter()
    if workers <= 1:
        results = map(_chunk, jobs)
        for n, f, s in results:
            done += n
            failures += f
            stats.update(s)
        return done, failures, stats
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, (n, f, s) in enumerate(pool.map(_chunk, jobs)):
            done += n
            failures += f
            stats.update(s)
            if i % 8 == 7:
                progress(f"simulation: {done:,} seeds, {len(failures)} failed")
    return done, failures, stats


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    started = time.monotonic()
    seeds = max(100, int(10_500 * scale))
    seconds = max(30.0, 540 * scale)  # the bound; 10,500 seeds take about 6 min on 2 cores
    done, failures, stats = campaign(seed, seeds, seconds, workers=min(2, os.cpu_count() or 1),
                                     progress=progress)
    kinds: dict[str, list[Outcome]] = {}
    for f in failures:
        kinds.setdefault(f.kind, []).append(f)
    for kind, outs in kinds.items():
        progress(f"simulation failure {kind}: seeds {[o.seed for o in outs[:10]]}; replay with "
                 f"`python -m hardening.simulation {outs[0].seed}`")
    took = time.monotonic() - started
    acked = stats["acked"]
    refused = sum(v for k, v in stats.items() if k.startswith("client refused"))
    return Result(
        number=9, name="deterministic simulation (in-memory network)",
        tried=f"{done:,} seeds (from {seed}), each 3–7 real nodes on the in-memory network with "
              "6–24 random steps: proposals (some appointing or removing a Connector) and acts "
              "through random nodes' client path with "
              "skewed clocks (± grace), peer rounds one by one, all at once and interleaved, "
              "lost/duplicated/withheld messages, partitions and heals, crash-restarts, clock "
              "steps and jumps past close + grace and the seal timeout; then heal and settle",
        count=done,
        held=(f"every seed: acknowledged events never lost ({acked:,}), refused ones "
              f"({refused:,}) stored nowhere, identical event sets and sealed lists after the "
              f"heal, each seal exactly its node's act set, one tally_hash and final flag per "
              f"proposal on every node ({stats['final all sealed']:,} final with every seal, "
              f"{stats['final timed out']:,} by timeout, {stats['amended']:,} amended reports)"
              if not failures else
              f"{done - len(failures):,} of {done:,} seeds held every invariant"
              + (f"; in the {len(failures)} that met the known divergence every node still "
                 "reported one tally_hash and final flag per proposal it held"
                 if set(kinds) == {"effect-retroactive-admission"} else "")),
        failures=[Failure(kind, len(outs), [f"seed {o.seed}: {o.detail[:200]}" for o in outs[:2]])
                  for kind, outs in kinds.items()],
        seconds=took,
        notes=(f"{done:,} seeds in {took:.0f} s on 2 processes ({1000 * took / max(done, 1):.0f} ms "
               f"each, wall); replay one with `python -m hardening.simulation SEED`. Per run: "
               f"{acked:,} client acks, {refused:,} client refusals, {stats['seals']:,} seals, "
               f"{stats['crashes']:,} crashes, {stats['withheld']:,} calls withheld, peer "
               f"refusals {_top(stats, 'peer refused ')}; client refusals "
               f"{_top(stats, 'client refused ')}; outcomes {_top(stats, 'outcome ')}."),
    )


def _top(stats: Counter[str], prefix: str, n: int = 6) -> str:
    items = sorted(((k[len(prefix):], v) for k, v in stats.items() if k.startswith(prefix)),
                   key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:,}" for k, v in items[:n]) or "none"


# --- hypothesis ------------------------------------------------------------------------


def machine() -> type:
    """The same world and actions as a hypothesis `RuleBasedStateMachine` (it shrinks)."""
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

    class SimulationMachine(RuleBasedStateMachine):
        world: World | None = None
        broken = False

        @initialize(data=st.data())
        def build(self, data: Any) -> None:
            self.world = World.build(HypothesisDraws(data))

        def _do(self, name: str, data: Any) -> None:
            assert self.world is not None
            try:
                self.world.do(name, HypothesisDraws(data))
            except BaseException:
                self.broken = True
                raise

        @invariant()
        def cheap(self) -> None:
            if self.world is not None and not self.broken:
                self.world.check_step()

        def teardown(self) -> None:
            if self.world is None:
                return
            try:
                if not self.broken:
                    self.world.check_end()
            finally:
                self.world.close()

    for name in World.ACTIONS:
        def action(self: Any, data: Any, _name: str = name) -> None:
            self._do(_name, data)
        action.__name__ = name
        setattr(SimulationMachine, name, rule(data=st.data())(action))
    return SimulationMachine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hardening.simulation",
                                     description="Replay campaign 9 seeds, printing their steps.")
    parser.add_argument("seeds", type=int, nargs="+")
    args = parser.parse_args(argv)
    bad = 0
    for seed in args.seeds:
        out = run_seed(seed, keep_log=True)
        print(f"seed {seed}: {'held' if out.ok else 'FAILED'}")
        for line in out.steps:
            print("   ", line)
        if not out.ok:
            bad += 1
            print(f"  {out.detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
