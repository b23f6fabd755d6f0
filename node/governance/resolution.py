"""Where each eligible Connector's vote goes: direct votes and delegation chains (PROTOCOL §5).

Pure decision rules: no I/O, no clock. Resolution is iterative and memoised: every key is
walked once, so a 10,000-long chain costs 10,000 steps and no recursion. Each key remembers
only (where its chain stopped, why, how many hops); a full path is re-walked on demand for a
trace, so a long chain never costs quadratic memory.

Why a chain stops (the `reason` of a `WeightTrace`):
  direct         the Connector voted themselves (a direct vote overrides any delegation)
  delegated      the chain reached an eligible Connector's direct vote, which carries the weight
  no_vote        the Connector neither voted nor delegated                       -> not_cast
  dead_end       the chain reached an eligible Connector with neither             -> not_cast
  not_connector  the chain reached a key that is not a Connector at closes_at     -> not_cast
  cycle          the chain came back to a Connector already on it                 -> not_cast
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol.events import Event
from .registry import Registry

__all__ = ["REASONS", "CHOICES", "WeightTrace", "Resolution", "resolve"]

CHOICES = ("yes", "no", "abstain")
REASONS = ("direct", "delegated", "no_vote", "dead_end", "not_connector", "cycle")

# What a walk ends on (kept per key): the terminal key, its kind, hops taken to get there.
_DIRECT, _NO_VOTE, _NOT_CONNECTOR, _CYCLE = "direct", "no_vote", "not_connector", "cycle"
_End = tuple[str, str, int]
_Latest = tuple[tuple[str, str], Any, str]  # (order key, value, event id)


@dataclass(frozen=True, slots=True)
class WeightTrace:
    """Where one eligible Connector's weight went, so they can check it themselves."""

    connector: str
    counted_as: str  # yes / no / abstain / not_cast
    reason: str  # one of REASONS
    stopped_at: str  # the key where the chain ended (the Connector's own key when direct)
    hops: int  # delegations followed
    path: tuple[str, ...]  # the keys followed after `connector` (at most max_path of them)
    truncated: bool  # True when `path` shows fewer than `hops` keys
    vote: str | None  # id of the direct vote that counted
    delegation: str | None  # id of the Connector's own delegation the chain started with

    def to_json(self) -> dict[str, Any]:
        return {
            "connector": self.connector, "counted_as": self.counted_as, "reason": self.reason,
            "stopped_at": self.stopped_at, "hops": self.hops, "path": list(self.path),
            "truncated": self.truncated, "vote": self.vote, "delegation": self.delegation,
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    """The resolved vote proposal: direct votes, delegations in force, and every chain's end."""

    proposal: str
    connectors: tuple[str, ...]  # eligible keys, sorted
    direct: Mapping[str, tuple[str, str]]  # Connector -> (choice, vote id)
    delegates: Mapping[str, tuple[str, str]]  # Connector -> (to, delegation id) in force
    ends: Mapping[str, _End]

    @property
    def eligible(self) -> int:
        return len(self.connectors)

    def counts(self) -> dict[str, int]:
        counts = {"yes": 0, "no": 0, "abstain": 0, "not_cast": 0}
        direct, ends = self.direct, self.ends
        for c in self.connectors:
            terminal, kind, _ = ends[c]
            counts[direct[terminal][0] if kind == _DIRECT else "not_cast"] += 1
        return counts

    def trace(self, connector: str, *, max_path: int = 1000) -> WeightTrace:
        """The trace of one eligible Connector (KeyError if not eligible)."""
        terminal, kind, hops = self.ends[connector]
        path: list[str] = []
        cur = connector
        for _ in range(min(hops, max_path)):
            cur = self.delegates[cur][0]
            path.append(cur)
        own = connector == terminal and kind in (_DIRECT, _NO_VOTE)
        reason = {_DIRECT: "direct" if own else "delegated",
                  _NO_VOTE: "no_vote" if own else "dead_end"}.get(kind, kind)
        return WeightTrace(
            connector=connector,
            counted_as=self.direct[terminal][0] if kind == _DIRECT else "not_cast",
            reason=reason,
            stopped_at=terminal,
            hops=hops,
            path=tuple(path),
            truncated=len(path) < hops,
            vote=self.direct[terminal][1] if kind == _DIRECT else None,
            delegation=self.delegates[connector][1] if hops else None,
        )

    def traces(self, *, max_path: int = 1000) -> tuple[WeightTrace, ...]:
        return tuple(self.trace(c, max_path=max_path) for c in self.connectors)


def resolve(proposal: Event, acts: Iterable[Event], at_close: Registry) -> Resolution:
    """Resolve every eligible Connector's weight on `proposal` (acts: its §6 act set)."""
    eligible = at_close.connectors  # §5: eligible voters = Connectors at closes_at
    votes: dict[str, _Latest] = {}
    specific: dict[str, _Latest] = {}
    general: dict[str, _Latest] = {}
    for act in acts:
        author = act.author
        if author not in eligible:
            continue  # a non-Connector's vote or delegation is never followed
        body = act.body
        if act.type == "vote":
            table, value = votes, body["choice"]
        elif act.type == "delegation":
            table = general if body.get("proposal") is None else specific
            value = body.get("to")
        else:
            continue
        # §5 "latest act" of an author: the greatest (created_at, id). Inlined: hot loop.
        order = (act.created_at, act.id)
        seen = table.get(author)
        if seen is None or order > seen[0]:
            table[author] = (order, value, act.id)
    direct = {a: (choice, vid) for a, (_, choice, vid) in votes.items()}
    delegates: dict[str, tuple[str, str]] = {}
    for author in set(specific) | set(general):
        # §5: the latest proposal-specific delegation if any (a revoke `to: null` included:
        # it beats a global delegation), else the latest global one.
        _, to, did = specific.get(author) or general[author]
        if to is not None:
            delegates[author] = (to, did)
    connectors = tuple(sorted(eligible))
    return Resolution(proposal.id, connectors, direct, delegates,
                      _walk(connectors, eligible, direct, delegates))


def _walk(connectors: tuple[str, ...], eligible: Mapping[str, object],
          direct: Mapping[str, object], delegates: Mapping[str, tuple[str, str]]) -> dict[str, _End]:
    """Follow every chain once, iteratively; memoise where each key's chain ends."""
    ends: dict[str, _End] = {}
    for start in connectors:
        if start in ends:
            continue
        path: list[str] = []
        position: dict[str, int] = {}
        cur = start
        while True:
            if cur in ends:
                break
            if cur in position:  # came back: path[j:] is a cycle
                j = position[cur]
                length = len(path) - j
                for member in path[j:]:
                    ends[member] = (member, _CYCLE, length)
                break
            if cur not in eligible:
                ends[cur] = (cur, _NOT_CONNECTOR, 0)
                break
            if cur in direct:
                ends[cur] = (cur, _DIRECT, 0)  # a direct vote overrides delegation
                break
            hop = delegates.get(cur)
            if hop is None:
                ends[cur] = (cur, _NO_VOTE, 0)
                break
            position[cur] = len(path)
            path.append(cur)
            cur = hop[0]
        # Everything walked before `cur` (and not in a cycle) ends where `cur` ends. A lead-in
        # to a cycle stops at the cycle's entry, whichever Connector's walk found the cycle.
        terminal, kind, hops = ends[cur]
        for distance, key in enumerate(reversed(path[: position.get(cur, len(path))]), 1):
            ends[key] = (terminal, kind, hops + distance)
    return ends
