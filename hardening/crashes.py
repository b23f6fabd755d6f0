"""Campaign 7: kill -9 during ingest, during concurrent client writes and around sealing.

Peer batches. Loop: start Paris's node; Rome (a registered peer) sends a batch of fresh, valid events
(endorsements of one action proposal: no registry-relevant event, so the batch is one
transaction); at a random moment in the ingest, kill -9; start the node again. Then:
`PRAGMA integrity_check` is `ok`; the batch landed whole or not at all (0 partial batches);
a batch the node acknowledged (200) is all there (0 acknowledged events lost); the peer then
redelivers the batch (as a peer does after a failed push) and the store holds every event
exactly once. Finally Paris pushes its whole store to Rome after one more kill mid-push:
Rome holds every event once.

Registry-relevant batches (`registry_loops`): Rome sends a batch in which its node vouches for
new members, each followed by a proposal of that member's. Each vouching changes the registry
the next line is judged with, so such a batch is stored in several transactions by design
(one per registry-relevant event). kill -9 at a random moment; restart. What landed must be a
prefix of the batch in its causal (created_at, id) order, never a proposal without the
vouching before it; a batch acknowledged is all there; the redelivery stores the rest once,
and then every proposal of the batch is listed (admitted, not only kept).

Client writes (`client_loops`): clients submit fresh acts to Paris concurrently
(`POST /api/v1/events`, which commits concurrent requests together); kill -9 at a random
moment; restart. Every act answered 201 or 200 before the kill is held after it (0
acknowledged acts lost), and integrity_check is ok.

Sealing (`seal_loops`): Paris and Rome hold a consent proposal with a few thousand acts;
Paris is killed at a random moment around closes_at + grace (before, while or after it seals
them), or, every other loop, once both seals are in, around the duty round that records the
final tally_hash, and restarted. Paris then holds exactly one seal of its own for the proposal, with its
sealed id list (a restart must neither lose a seal it published nor sign a second, different
one: that would be equivocation), both nodes report the same final tally_hash, and Paris's
finality record holds that hash, not amended.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable

from node.dev.devcluster import Person
from node.protocol.events import sign_event
from node.protocol.times import format_ms

from .live import CONNECTORS, Reply, federation, peer_request, request
from .report import Failure, Result

__all__ = ["run", "loops", "registry_loops", "client_loops", "seal_loops"]

PEER_TIMEOUT_S = 10.0  # SyncSettings.request_timeout_s: a peer gives up on a batch after this


def _db(fed, slug: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{fed.nodes[slug].data_dir / 'node.db'}?mode=ro", uri=True,
                           timeout=30)


def _count(fed, slug: str, ids: list[str] | None = None) -> int:
    db = _db(fed, slug)
    try:
        if ids is None:
            return db.execute("select count(*) from events").fetchone()[0]
        found = 0
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            found += db.execute(f"select count(*) from events where id in "
                                f"({','.join('?' * len(chunk))})", chunk).fetchone()[0]
        return found
    finally:
        db.close()


def _integrity(fed, slug: str) -> str:
    db = _db(fed, slug)
    try:
        return db.execute("pragma integrity_check").fetchone()[0]
    finally:
        db.close()


def _send(fed, body: bytes, timeout: float) -> tuple[threading.Thread, list[Reply | None]]:
    """Rome pushes `body` to Paris on a thread; the reply (None: cut off) lands in the list."""
    replies: list[Reply | None] = []

    def send() -> None:
        try:
            replies.append(peer_request(fed, "rome", "paris", "POST", "/federation/v1/events",
                                        body, timeout=timeout))
        except OSError:
            replies.append(None)

    sender = threading.Thread(target=send)
    sender.start()
    return sender, replies


def _redeliver(fed, body: bytes, loop: int, problems: list[str]) -> float | None:
    """Rome sends the batch again, as after a failed push: seconds taken, None if it failed.
    Every line must come back stored or duplicate."""
    t0 = time.monotonic()
    try:
        reply = peer_request(fed, "rome", "paris", "POST", "/federation/v1/events", body,
                             timeout=120)
    except OSError as e:
        problems.append(f"loop {loop}: redelivery failed: {type(e).__name__}")
        return None
    statuses = {r["status"] for r in reply.json()["results"]} if reply.status == 200 else set()
    if reply.status != 200 or not statuses <= {"stored", "duplicate"}:
        problems.append(f"loop {loop}: redelivery answered {reply.status} {statuses}")
    return time.monotonic() - t0


RESTART_BAR_S = 20.0  # devcluster's own patience for a node to come up


def _restart(fed, slug: str) -> float:
    """Start `slug` again; seconds until it answers (inf after 120 s)."""
    start = time.monotonic()
    fed.start(slug, wait=False)
    try:
        fed.wait_ready(slug, timeout=120)
    except (TimeoutError, RuntimeError):
        return float("inf")
    return time.monotonic() - start


def _log_tail(fed, slug: str) -> str:
    path = fed.nodes[slug].log_path
    try:
        lines = path.read_text(errors="replace").splitlines() if path else []
    except OSError:
        return "(no log)"
    return " | ".join(lines[-6:])[-600:]


def loops(n_loops: int, batch: int, seed: int,
          progress: Callable[[str], None] = print) -> tuple[dict[str, int], list[str]]:
    rng = random.Random(seed)
    stats = {"loops": 0, "killed_mid_batch": 0, "acked_batches": 0, "whole": 0, "none": 0}
    problems: list[str] = []
    with federation(("paris", "rome"), start=("paris",)) as fed:
        assert fed.charter is not None
        now = int(time.time() * 1000)
        proposal = sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                              created_at=format_ms(now),
                              body={"title": "Target", "text": "", "kind": "action"},
                              signing_key=CONNECTORS[0].key)
        assert request(fed.nodes["paris"].port, "POST", "/api/v1/events",
                       proposal.canonical).status == 201
        # three Connectors give it the green light first: an adopted proposal is final, so
        # the node does not re-tally its (growing) act set every duty round
        green = [sign_event(federation=fed.charter.id, type="endorse", chapter=p.chapter,
                            created_at=format_ms(now + 1), body={"proposal": proposal.id},
                            signing_key=p.key).canonical
                 for p in CONNECTORS if p.chapter in ("paris", "rome") and p is not CONNECTORS[2]]
        reply = peer_request(fed, "rome", "paris", "POST", "/federation/v1/events",
                             b"\n".join(green))
        assert reply.status == 200 and {r["status"] for r in reply.json()["results"]} == {
            "stored"}, reply.body[:300]
        serial = 10
        for loop in range(n_loops):
            lines, ids = [], []
            for _ in range(batch):
                serial += 1
                ev = sign_event(federation=fed.charter.id, type="endorse", chapter="rome",
                                created_at=format_ms(now + serial),
                                body={"proposal": proposal.id}, signing_key=CONNECTORS[2].key)
                lines.append(ev.canonical)
                ids.append(ev.id)
            body = b"\n".join(lines)
            sender, replies = _send(fed, body, timeout=10.0)
            time.sleep(rng.uniform(0.05, 0.25 + batch * 0.00015))  # before, during, after commit
            acked_before_kill = bool(replies) and replies[0] is not None and replies[0].status == 200
            fed.kill("paris")
            sender.join(30)
            stats["loops"] += 1
            took = _restart(fed, "paris")
            stats["slowest_restart_ms"] = max(stats.get("slowest_restart_ms", 0), int(took * 1000))
            if took > RESTART_BAR_S:
                problems.append(f"loop {loop}: the node took {took:.1f} s to answer after the "
                                f"restart; its log ends: {_log_tail(fed, 'paris')}")
            if took == float("inf"):
                break
            check = _integrity(fed, "paris")
            if check != "ok":
                problems.append(f"loop {loop}: integrity_check says {check}")
            held = _count(fed, "paris", ids)
            if held == len(ids):
                stats["whole"] += 1
            elif held == 0:
                stats["none"] += 1
            else:
                problems.append(f"loop {loop}: partial batch, {held}/{len(ids)} stored")
            if acked_before_kill:
                stats["acked_batches"] += 1
                if held != len(ids):
                    problems.append(f"loop {loop}: acknowledged batch lost {len(ids) - held}")
            else:
                stats["killed_mid_batch"] += 1
            # the peer redelivers (its push cursor did not move): each event once
            took = _redeliver(fed, body, loop, problems)
            if took is None:
                continue
            stats["slowest_redelivery_ms"] = max(stats.get("slowest_redelivery_ms", 0),
                                                 int(took * 1000))
            if took > PEER_TIMEOUT_S:
                problems.append(f"loop {loop}: redelivery took {took:.1f} s, over the "
                                f"{PEER_TIMEOUT_S:.0f} s a peer waits for an answer")
            if _count(fed, "paris", ids) != len(ids):
                problems.append(f"loop {loop}: after redelivery {_count(fed, 'paris', ids)} held")
            if loop % 10 == 9:
                progress(f"kill -9: {loop + 1} loops, {stats}")
        # the outbox: Paris pushes everything to Rome, killed once mid-push, then resumes
        total = _count(fed, "paris")
        fed.start("rome")
        time.sleep(rng.uniform(0.2, 1.0))
        fed.kill("paris")
        _restart(fed, "paris")
        ok = fed.wait_for(lambda: _count(fed, "rome") >= total, 120, 0.5)
        db = _db(fed, "rome")
        try:
            dupes = db.execute("select count(*) - count(distinct id) from events").fetchone()[0]
        finally:
            db.close()
        if not ok:
            problems.append(f"outbox: Rome holds {_count(fed, 'rome')}/{total} after the restart")
        if dupes:
            problems.append(f"outbox: {dupes} duplicate events at Rome")
        stats["pushed"] = total
    return stats, problems


def registry_loops(n_loops: int, pairs: int, seed: int,
                   progress: Callable[[str], None] = print) -> tuple[dict[str, int], list[str]]:
    rng = random.Random(seed)
    stats = {"registry_loops": 0, "registry_cut": 0, "registry_acked": 0,
             "registry_events": 0}
    problems: list[str] = []
    with federation(("paris", "rome"), start=("paris",)) as fed:
        assert fed.charter is not None
        rome = fed.nodes["rome"].key
        now = int(time.time() * 1000)
        serial = 0
        for loop in range(n_loops):
            events = []
            for i in range(pairs):
                person = Person(f"member {seed} {loop} {i}", "rome")
                serial += 2
                events.append(sign_event(
                    federation=fed.charter.id, type="member", chapter="rome",
                    created_at=format_ms(now + serial), body={"key": person.public, "active": True},
                    signing_key=rome))
                events.append(sign_event(
                    federation=fed.charter.id, type="proposal", chapter="rome",
                    created_at=format_ms(now + serial + 1),
                    body={"title": f"Idea {loop}.{i}", "text": "", "kind": "action"},
                    signing_key=person.key))
            events.sort(key=lambda e: e.order_key)  # the order the node stores them in
            ids = [e.id for e in events]
            body = b"\n".join(e.canonical for e in reversed(events))  # the node sorts them
            sender, replies = _send(fed, body, timeout=60.0)
            if rng.random() < 0.75:
                time.sleep(rng.uniform(0.02, 0.1 + pairs * 0.0008))  # mid-batch, mostly
            else:
                sender.join(60)  # right after the answer
            acked = bool(replies) and replies[0] is not None and replies[0].status == 200
            fed.kill("paris")
            sender.join(60)
            stats["registry_loops"] += 1
            stats["registry_events"] += len(ids)
            took = _restart(fed, "paris")
            stats["slowest_restart_ms"] = max(stats.get("slowest_restart_ms", 0), int(took * 1000))
            if took == float("inf"):
                problems.append(f"loop {loop}: the node did not come back: {_log_tail(fed, 'paris')}")
                break
            check = _integrity(fed, "paris")
            if check != "ok":
                problems.append(f"loop {loop}: integrity_check says {check}")
            db = _db(fed, "paris")
            try:
                held = {r[0] for r in db.execute(
                    "select id from events where created_ms >= ?", [now])}
            finally:
                db.close()
            flags = [i in held for i in ids]
            cut = flags.index(False) if False in flags else len(flags)
            if any(flags[cut:]):
                problems.append(f"loop {loop}: not a prefix: {sum(flags)} of {len(ids)} held, "
                                f"the first gap at {cut}")
            if acked:
                stats["registry_acked"] += 1
                if cut != len(ids):
                    problems.append(f"loop {loop}: acknowledged batch lost {len(ids) - cut}")
            elif 0 < cut < len(ids):
                stats["registry_cut"] += 1
            if _redeliver(fed, body, loop, problems) is None:
                continue
            if _count(fed, "paris", ids) != len(ids):
                problems.append(f"loop {loop}: after redelivery {_count(fed, 'paris', ids)} "
                                f"of {len(ids)} held")
            listed = {p["id"] for p in request(fed.nodes["paris"].port, "GET",
                                                "/api/v1/proposals").json()["proposals"]}
            unlisted = [e.id for e in events if e.type == "proposal" and e.id not in listed]
            if unlisted:
                problems.append(f"loop {loop}: {len(unlisted)} proposals held but not admitted "
                                "after the redelivery")
            if loop % 5 == 4:
                progress(f"kill -9, registry batches: {loop + 1} loops, {stats}")
    return stats, problems


def client_loops(n_loops: int, clients: int, seed: int,
                 progress: Callable[[str], None] = print) -> tuple[dict[str, int], list[str]]:
    """kill -9 while `clients` threads submit acts; every acknowledged act must survive."""
    rng = random.Random(seed)
    stats = {"client_loops": 0, "client_acked": 0, "client_unanswered": 0}
    problems: list[str] = []
    with federation(("paris", "rome"), start=("paris",)) as fed:
        assert fed.charter is not None
        port = fed.nodes["paris"].port
        proposal = sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                              created_at=format_ms(int(time.time() * 1000)),
                              body={"title": "Target", "text": "", "kind": "action"},
                              signing_key=CONNECTORS[0].key)
        assert request(port, "POST", "/api/v1/events", proposal.canonical).status == 201
        for loop in range(n_loops):
            acked: set[str] = set()  # two clients can sign the same act in the same ms: one id
            unanswered = [0]
            stop = threading.Event()
            lock = threading.Lock()

            def client(who: int) -> None:
                person = CONNECTORS[who % 2]  # Paris's Connectors; any would do
                serial = 0
                while not stop.is_set():
                    serial += 1
                    ev = sign_event(federation=fed.charter.id, type="endorse", chapter="paris",
                                    created_at=format_ms(int(time.time() * 1000)),
                                    body={"proposal": proposal.id}, signing_key=person.key)
                    try:
                        reply = request(port, "POST", "/api/v1/events", ev.canonical, timeout=5)
                    except OSError:
                        with lock:
                            unanswered[0] += 1
                        return  # the node is gone
                    if reply.status in (200, 201):
                        with lock:
                            acked.add(ev.id)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            fed.kill("paris")
            stop.set()
            for t in threads:
                t.join(30)
            stats["client_loops"] += 1
            stats["client_acked"] += len(acked)
            stats["client_unanswered"] += unanswered[0]
            took = _restart(fed, "paris")
            if took == float("inf"):
                problems.append(f"client loop {loop}: the node did not come back; its log "
                                f"ends: {_log_tail(fed, 'paris')}")
                break
            check = _integrity(fed, "paris")
            if check != "ok":
                problems.append(f"client loop {loop}: integrity_check says {check}")
            held = _count(fed, "paris", sorted(acked))
            if held != len(acked):
                problems.append(f"client loop {loop}: {len(acked) - held} of {len(acked)} "
                                "acknowledged acts lost")
            if loop % 5 == 4:
                progress(f"kill -9 during client writes: {loop + 1} loops, {stats}")
    return stats, problems


SEAL_ACTS = 3_000  # enough that sealing (act set, tally, Merkle root) takes a while


def seal_loops(n_loops: int, seed: int,
               progress: Callable[[str], None] = print) -> tuple[dict[str, int], list[str]]:
    """kill -9 around closes_at + grace; one seal per chapter, one final tally_hash."""
    rng = random.Random(seed)
    stats = {"seal_loops": 0, "killed_before_seal": 0, "killed_after_seal": 0,
             "killed_before_final": 0, "killed_after_final": 0}
    problems: list[str] = []
    with federation(("paris", "rome"), start=("paris", "rome")) as fed:
        assert fed.charter is not None
        grace_ms = int(fed.charter.rules.grace_ms)
        paris, rome = fed.nodes["paris"], fed.nodes["rome"]
        for loop in range(n_loops):
            # all dated in the past, so Rome can relay them now whatever the clocks say
            now = int(time.time() * 1000) - 3_000
            close = now + fed.charter.rules.min_open_ms + 2_500
            proposal = sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                                  created_at=format_ms(now),
                                  body={"title": f"Sealed {loop}", "text": "", "kind": "consent",
                                        "closes_at": format_ms(close)},
                                  signing_key=CONNECTORS[0].key)
            acts = [sign_event(federation=fed.charter.id, type="endorse", chapter="rome",
                               created_at=format_ms(now + 1 + i % 1_000),
                               body={"proposal": proposal.id},
                               signing_key=CONNECTORS[2 + i % 2].key).canonical
                    for i in range(SEAL_ACTS)]
            veto = sign_event(federation=fed.charter.id, type="veto", chapter="rome",
                              created_at=format_ms(now + 2_000), body={
                                  "proposal": proposal.id, "reason": "a strong objection"},
                              signing_key=CONNECTORS[2].key).canonical
            reply = peer_request(fed, "rome", "paris", "POST", "/federation/v1/events",
                                 b"\n".join([proposal.canonical, *acts, veto]), timeout=60)
            assert reply.status == 200, reply.body[:200]
            if loop % 2 == 0:
                # the node seals on its first duty round after closes_at + grace
                kill_at = close + grace_ms + rng.uniform(-600, 600)
                time.sleep(max(0.0, kill_at / 1000 - time.time()))
            else:
                # aimed at finality: once both seals are in, the next duty round (1 s apart)
                # records the final tally_hash
                fed.wait_for(lambda: _seal_count(fed, proposal.id) >= 2, 30, 0.01)
                time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.8)]))
            fed.kill("paris")
            stats["seal_loops"] += 1
            if loop % 2 == 0:
                stats["killed_after_seal" if _own_seals(fed, proposal.id)
                      else "killed_before_seal"] += 1
            else:
                stats["killed_after_final" if _recorded(fed, proposal.id)
                      else "killed_before_final"] += 1
            if _restart(fed, "paris") == float("inf"):
                problems.append(f"seal loop {loop}: the node did not come back; its log ends: "
                                f"{_log_tail(fed, 'paris')}")
                break

            def both_final() -> bool:
                return all(fed.proposal(s, proposal.id)["final"] for s in ("paris", "rome"))

            if not fed.wait_for(both_final, 30, 0.3):
                problems.append(f"seal loop {loop}: not final at both nodes after 30 s")
                continue
            reports = {s: fed.proposal(s, proposal.id) for s in ("paris", "rome")}
            hashes = {s: r["tally_hash"] for s, r in reports.items()}
            if len(set(hashes.values())) != 1:
                problems.append(f"seal loop {loop}: final tally_hash differs: {hashes}")
            fed.wait_for(lambda: _recorded(fed, proposal.id) is not None, 10, 0.2)  # next duty
            recorded = _recorded(fed, proposal.id)
            if recorded != (hashes["paris"], None):
                problems.append(f"seal loop {loop}: Paris recorded {recorded} as final, it "
                                f"reports {hashes['paris']}")
            own = _own_seals(fed, proposal.id)
            if len(own) != 1:
                problems.append(f"seal loop {loop}: Paris holds {len(own)} seals of its own")
            elif not own[0][1]:
                problems.append(f"seal loop {loop}: Paris's seal has no sealed id list")
            for s, r in reports.items():
                if r["equivocations"]:
                    problems.append(f"seal loop {loop}: {s} reports equivocation "
                                    f"{r['equivocations']}")
            if _integrity(fed, "paris") != "ok":
                problems.append(f"seal loop {loop}: integrity_check is not ok")
            if loop % 5 == 4:
                progress(f"kill -9 around sealing: {loop + 1} loops, {stats}")
    return stats, problems


def _seal_count(fed, proposal_id: str) -> int:
    db = _db(fed, "paris")
    try:
        return db.execute("select count(*) from events where type = 'seal' and proposal = ?",
                          [proposal_id]).fetchone()[0]
    finally:
        db.close()


def _recorded(fed, proposal_id: str) -> tuple[str, str | None] | None:
    """Paris's finality record: (final_hash, amended_from), or None."""
    db = _db(fed, "paris")
    try:
        row = db.execute("select final_hash, amended_from from finality where proposal = ?",
                         [proposal_id]).fetchone()
        return (row[0], row[1]) if row else None
    finally:
        db.close()


def _own_seals(fed, proposal_id: str) -> list[tuple[str, bool]]:
    """(seal id, whether its sealed list is held) for Paris's own seals of the proposal."""
    db = _db(fed, "paris")
    try:
        return [(sid, listed) for sid, listed in db.execute(
            "select e.id, s.seal is not null from events e left join sealed s on s.seal = e.id "
            "where e.type = 'seal' and e.proposal = ? and e.chapter = 'paris'", [proposal_id])]
    finally:
        db.close()


def run(seed: int = 0, scale: float = 1.0, progress: Callable[[str], None] = print) -> Result:
    started = time.monotonic()
    n = max(3, int(50 * scale))
    batch = 10_000 if scale >= 0.5 else 2_000
    # rounds of at most 10 loops, each on a fresh federation: every batch ends up stored
    # (whole, or by its redelivery), and one store of 500,000 acts would measure the cost of
    # a huge act set (campaign 6's business), not crash safety
    stats: dict[str, int] = {}
    problems: list[str] = []

    def add(s: dict[str, int], p: list[str], label: str) -> None:
        problems.extend(f"{label}: {x}" for x in p)
        for k, v in s.items():
            stats[k] = max(stats.get(k, 0), v) if k.startswith("slowest") else stats.get(k, 0) + v

    for r in range(0, n, 10):
        add(*loops(min(10, n - r), batch, seed + r, progress), f"round {r // 10}")
    add(*registry_loops(max(2, int(6 * scale)), 300 if scale >= 0.5 else 60, seed, progress),
        "registry batches")
    add(*client_loops(max(2, int(12 * scale)), 16, seed, progress), "client writes")
    add(*seal_loops(max(2, int(6 * scale)), seed, progress), "sealing")
    return Result(
        number=7, name="kill -9 during ingest, client writes and sealing",
        tried=f"{stats['loops']} loops: a peer batch of {batch:,} fresh events, kill -9 at a "
              "random moment of its ingest, restart, integrity check, redelivery (rounds of 10 "
              "loops on a fresh federation); after each round a push of the whole store "
              f"({stats.get('pushed', 0):,} events in all) killed mid-way and resumed; "
              f"{stats['registry_loops']} loops of a peer batch vouching for members, each "
              "followed by a proposal of theirs (one transaction per vouching), kill -9, "
              "restart, redelivery; "
              f"{stats['client_loops']} loops of 16 clients submitting acts concurrently, "
              f"kill -9 at a random moment; {stats['seal_loops']} loops killing a node around "
              f"closes_at + grace of a proposal with {SEAL_ACTS:,} acts or around the moment it "
              "records finality",
        count=(stats["loops"] + stats["registry_loops"] + stats["client_loops"]
               + stats["seal_loops"]),
        held=(f"integrity_check ok every time; {stats['whole']} batches whole, {stats['none']} "
              f"absent, 0 partial; {stats['acked_batches']} acknowledged batches all kept; "
              f"slowest restart {stats.get('slowest_restart_ms', 0) / 1000:.1f} s; "
              "redelivery stored each event once (slowest "
              f"{stats.get('slowest_redelivery_ms', 0) / 1000:.1f} s); the resumed push left 0 "
              f"duplicates; registry batches: every cut left a prefix of the causal order "
              f"({stats['registry_cut']} cut mid-way, {stats['registry_acked']} acknowledged "
              "and whole), every proposal admitted after the redelivery; "
              f"{stats['client_acked']:,} acknowledged client acts all kept "
              f"({stats['client_unanswered']} cut off unanswered by the kill); "
              f"{stats['killed_before_seal']} kills before and {stats['killed_after_seal']} "
              f"after the node sealed, {stats['killed_before_final']} before and "
              f"{stats['killed_after_final']} after it recorded finality: one seal of its own "
              "with its list each time, one final tally_hash at both nodes, recorded once and "
              "never amended, no equivocation"
              if not problems else f"{len(problems)} problems"),
        failures=[Failure(p, 1) for p in problems],
        seconds=time.monotonic() - started,
    )
