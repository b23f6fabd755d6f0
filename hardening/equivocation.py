"""Campaign 11: equivocation, and replay across scopes.

Cross-scope replay: every signed act of the story (votes, vetoes, withdrawals, endorsements,
delegations, comments, seals) is replayed into another proposal (`body.proposal` swapped,
signature kept), into another chapter (`chapter` swapped), into another federation (the same
bytes to a node of a federation whose charter differs), and again as itself through a second
path (a duplicate must change no tally). Every replay into another scope must be refused.

Equivocation: Rome's node key signs a second, different seal for a proposal it already
sealed. In process: both seals are kept (the proof is the two signed seals) and the proposal
report names the pair. Between real nodes: the second seal is handed to one node only, and
every node must report the equivocation, with both seals retrievable, within one sync round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from node.protocol.events import canonical
from node.protocol.merkle import acts_root
from node.protocol.times import format_ms, parse_ms

from .kit import NOW_MS, InProcessNode, Kit, charter_doc
from .report import Failure, Result

__all__ = ["replays", "judge_replays", "second_seal", "equivocation_in_process",
           "equivocation_between_nodes", "run"]

SCOPED = ("endorse", "veto", "veto_withdraw", "vote", "delegation", "comment", "seal")


def replays(kit: Kit) -> list[tuple[str, str, bytes]]:
    """(scope, event type, bytes) for every act of the story replayed elsewhere."""
    story = kit.story_events
    proposals = [e for e in story if e.type in ("proposal", "feedback_request")]
    out: list[tuple[str, str, bytes]] = []
    for ev in story:
        if ev.type not in SCOPED:
            continue
        obj = ev.to_json()
        if isinstance(obj["body"].get("proposal"), str):
            for target in proposals:
                if target.id != obj["body"]["proposal"]:
                    moved = {**obj, "body": {**obj["body"], "proposal": target.id}}
                    if ev.type == "seal":
                        moved["body"]["tally"] = {**obj["body"]["tally"], "proposal": target.id}
                    out.append(("another proposal", ev.type, canonical(moved)))
        for chapter in ("paris", "rome", "barcelona"):
            if chapter != ev.chapter:
                out.append(("another chapter", ev.type, canonical({**obj, "chapter": chapter})))
        out.append(("another federation", ev.type, ev.canonical))
    return out


def judge_replays(kit: Kit, other: Kit) -> tuple[int, dict[str, int], list[str]]:
    """(replays tried, refusals by code, problems)."""
    codes: dict[str, int] = {}
    problems: list[str] = []
    items = replays(kit)
    with InProcessNode.temporary(kit) as home, InProcessNode.temporary(other) as foreign:
        home.node.receive(kit.story, origin="rome", now_ms=NOW_MS)
        before = {p.id: home.node.proposal_report(p.id, NOW_MS)["tally_hash"]
                  for p in kit.story_events if p.type == "proposal"}
        for scope, type_, raw in items:
            node = foreign if scope == "another federation" else home
            head = node.head()
            outcome = node.node.receive([raw], origin="barcelona", now_ms=NOW_MS)[0]
            if outcome.status != "refused" or node.head() != head:
                problems.append(f"{type_} replayed into {scope}: {outcome.status}")
            else:
                codes[outcome.code or "?"] = codes.get(outcome.code or "?", 0) + 1
        # the same acts again, as themselves, through another peer: duplicates, no effect
        events = [line for line in kit.story if not line.startswith(b'{"sealed"')]
        again = home.node.receive(events, origin="barcelona", now_ms=NOW_MS)
        if {o.status for o in again} != {"duplicate"}:
            problems.append("a second delivery of the story was not all duplicates")
        after = {p: home.node.proposal_report(p, NOW_MS)["tally_hash"] for p in before}
        if after != before:
            problems.append("a duplicate delivery changed a tally")
    return len(items) + len(kit.story), codes, problems


def second_seal(kit_or_sign: Any, first: dict[str, Any], *, by: str,
                created_ms: int) -> tuple[bytes, bytes]:
    """A different seal by the same chapter for the same proposal: (event, sealed line).
    It seals an empty act list with a `vetoed` tally: admissible, and a lie."""
    body = dict(first["body"])
    tally = {**body["tally"], "vetoes": body["tally"]["vetoes"] + 1}
    if tally["kind"] == "consent":
        tally["outcome"] = "vetoed"
    from node.governance import tally_hash

    body.update(acts_root=acts_root([]), acts_count=0, tally=tally, tally_hash=tally_hash(tally))
    obj = {**first, "created_at": format_ms(created_ms), "body": body}
    raw = kit_or_sign(obj, by)
    import hashlib
    import json

    seal_id = hashlib.sha256(raw).hexdigest()
    line = json.dumps({"sealed": {"seal": seal_id, "acts": []}}, separators=(",", ":")).encode()
    return raw, line


def equivocation_in_process(kit: Kit) -> list[str]:
    problems = []
    with InProcessNode.temporary(kit) as node:
        node.node.receive(kit.story, origin="paris", now_ms=NOW_MS)
        first = next(e for e in kit.story_events if e.type == "seal" and e.chapter == "rome")
        raw, line = second_seal(Kit.resign, first.to_json(), by="node rome",
                                created_ms=first.created_ms + 1000)
        outcomes = node.node.receive([raw, line], origin="barcelona", now_ms=NOW_MS)
        if [o.status for o in outcomes] != ["stored", "stored"]:
            problems.append(f"the second seal was not kept: {outcomes}")
        report = node.node.proposal_report(first.proposal, NOW_MS)
        pairs = [e for e in report["equivocations"] if e["chapter"] == "rome"]
        second_id = outcomes[0].id
        if not pairs or set(pairs[0]["seals"]) != {first.id, second_id}:
            problems.append(f"equivocation not reported: {report['equivocations']}")
        for sid in (first.id, second_id):
            if node.store.get(sid) is None:
                problems.append(f"seal {sid[:12]} (the proof) is not kept")
    return problems


def equivocation_between_nodes(progress: Callable[[str], None] = print) -> tuple[float, list[str]]:
    """Seconds until all three nodes report Rome's equivocation (inf if they do not)."""
    from node.protocol.events import sign_event

    from .live import CONNECTORS, federation, peer_request, request

    problems: list[str] = []
    rules = {"min_open_hours": 2 / 3600, "grace_seconds": 1, "seal_timeout_seconds": 6}
    with federation(start=("paris", "rome", "barcelona"), pull_interval=0.3,
                    anti_entropy=2.0, rules=rules) as fed:
        assert fed.charter is not None
        now = int(time.time() * 1000)
        closes = now + 2500
        proposal = sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                              created_at=format_ms(now),
                              body={"title": "Move the summit", "text": "", "kind": "consent",
                                    "closes_at": format_ms(closes)},
                              signing_key=CONNECTORS[0].key)
        assert request(fed.nodes["paris"].port, "POST", "/api/v1/events",
                       proposal.canonical).status == 201
        pid = proposal.id

        def report(slug: str) -> dict[str, Any]:
            return fed.nodes[slug].get(f"/api/v1/proposals/{pid}")

        ok = fed.wait_for(lambda: all(any(s["chapter"] == "rome" for s in report(x)["seals"])
                                      for x in ("paris", "rome", "barcelona")), 30)
        if not ok:
            return float("inf"), ["Rome's honest seal never reached every node"]
        honest = next(s for s in report("paris")["seals"] if s["chapter"] == "rome")
        first = fed.nodes["paris"].get(f"/api/v1/events/{honest['seal']}")
        seed = fed.nodes["rome"].key

        def sign(obj: dict[str, Any], _by: str) -> bytes:
            from node.protocol.events import b64url

            unsigned = {k: v for k, v in obj.items() if k != "sig"}
            return canonical({**unsigned, "sig": b64url(seed.sign(canonical(unsigned)).signature)})

        raw, line = second_seal(sign, first, by="node rome",
                                created_ms=max(parse_ms(first["created_at"]) + 1, int(time.time() * 1000)))
        reply = peer_request(fed, "rome", "paris", "POST", "/federation/v1/events",
                             raw + b"\n" + line)
        if reply.status != 200 or [r["status"] for r in reply.json()["results"]] != ["stored"] * 2:
            return float("inf"), [f"the second seal was refused: {reply.status} {reply.body[:200]!r}"]
        start = time.monotonic()
        seen = fed.wait_for(lambda: all(any(e["chapter"] == "rome" and len(e["seals"]) == 2
                                            for e in report(x)["equivocations"])
                                        for x in ("paris", "rome", "barcelona")), 20, 0.1)
        took = time.monotonic() - start if seen else float("inf")
        if not seen:
            problems.append({x: report(x)["equivocations"] for x in fed.nodes}.__repr__()[:200])
        for x in ("paris", "rome", "barcelona"):
            eq = [e for e in report(x)["equivocations"] if e["chapter"] == "rome"]
            for sid in (eq[0]["seals"] if eq else []):
                if request(fed.nodes[x].port, "GET", f"/api/v1/events/{sid}").status != 200:
                    problems.append(f"{x} does not keep seal {sid[:12]} (the proof)")
        progress(f"equivocation reported by all three nodes in {took:.1f} s")
    return took, problems


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    started = time.monotonic()
    kit = Kit()
    other = Kit(doc={**charter_doc(), "name": "Another Federation"})
    tried, codes, problems = judge_replays(kit, other)
    problems += equivocation_in_process(kit)
    took, live_problems = equivocation_between_nodes(progress)
    problems += live_problems
    bar = 2 * 0.3 + 2.0 + 2.0  # pull interval ×2 + an anti-entropy round + slack
    if took > bar:
        problems.append(f"equivocation took {took:.1f} s to reach every node (bar {bar:.1f} s)")
    top = ", ".join(f"{n} {c}" for c, n in sorted(codes.items(), key=lambda kv: -kv[1]))
    return Result(
        number=11, name="equivocation and cross-scope replay",
        tried=f"{tried - len(kit.story)} replays of the story's {sum(e.type in SCOPED for e in kit.story_events)} "
              "signed acts and seals into another proposal, chapter or federation, plus the "
              "story delivered twice; a second, different seal signed by Rome's node key, in "
              "process and between 3 real nodes",
        count=tried + 2,
        held=(f"100 % of cross-scope replays refused ({top}); duplicates changed no tally; "
              "equivocation kept with both signed seals and reported in process, and by all 3 "
              f"real nodes {took:.1f} s after one node received it") if not problems else
             f"{len(problems)} problems",
        failures=[Failure(p, 1) for p in problems],
        seconds=time.monotonic() - started,
    )
