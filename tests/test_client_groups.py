"""Group commit of client events (`POST /api/v1/events`, node.ingest.ClientGroups).

Concurrent requests are admitted and stored together; each must still get exactly the answer
it would get alone: 201 stored, 200 already held (also when two clients send the same event
at once: one 201, one 200), the specific 4xx code when refused, with nothing stored; and no
request is answered before its event is durable (kill -9 right after the answers).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

import aiohttp

from hardening.live import CONNECTORS, federation
from node.ingest import ClientGroups
from node.protocol.events import sign_event
from node.protocol.times import format_ms

RULES = {"min_open_hours": 1}  # the default grace (300 s): events signed here stay in it


def _held(fed, ids: list[str]) -> set[str]:
    db = sqlite3.connect(f"file:{fed.nodes['paris'].data_dir / 'node.db'}?mode=ro", uri=True,
                         timeout=30)
    try:
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            found.update(r[0] for r in db.execute(
                f"select id from events where id in ({','.join('?' * len(chunk))})", chunk))
        return found
    finally:
        db.close()


def _event(fed, type_: str, body: dict, *, who: int = 0, chapter: str = "paris",
           at: int | None = None):
    return sign_event(federation=fed.charter.id, type=type_, chapter=chapter,
                      created_at=format_ms(at if at is not None else int(time.time() * 1000)),
                      body=body, signing_key=CONNECTORS[who].key)


async def _post_all(port: int, work: list[list[bytes]]) -> list[list[tuple[int, dict]]]:
    """One keep-alive client per list, all at once; each posts its bodies in order."""
    url = f"http://127.0.0.1:{port}/api/v1/events"

    async def client(bodies: list[bytes]) -> list[tuple[int, dict]]:
        out = []
        async with aiohttp.ClientSession() as session:
            for body in bodies:
                async with session.post(url, data=body,
                                        headers={"Content-Type": "application/json"}) as resp:
                    out.append((resp.status, json.loads(await resp.read())))
        return out

    return await asyncio.gather(*(client(b) for b in work))


def test_sixteen_concurrent_clients_each_get_the_answer_they_would_get_alone() -> None:
    with federation(("paris", "rome"), start=("paris",), rules=RULES) as fed:
        port = fed.nodes["paris"].port
        now = int(time.time() * 1000)
        proposal = _event(fed, "proposal", {"title": "T", "text": "", "kind": "action"}, at=now)
        held_before = _event(fed, "comment", {"proposal": proposal.id, "text": "first"},
                             at=now + 1)
        first = asyncio.run(_post_all(port, [[proposal.canonical], [held_before.canonical]]))
        assert [r[0][0] for r in first] == [201, 201]

        work: list[list[bytes]] = [[] for _ in range(16)]
        fresh, twice, refused = [], [], []
        serial = 10
        for round_ in range(12):
            for c in range(16):
                serial += 1
                kind = (round_ * 16 + c) % 8
                who = serial % 2  # Amélie or Jonas, both of Paris
                if kind == 0:  # sent by this client and by the next one, at the same time
                    ev = _event(fed, "endorse", {"proposal": proposal.id}, who=who,
                                at=now + serial)
                    work[c].append(ev.canonical)
                    work[(c + 1) % 16].append(ev.canonical)
                    twice.append(ev.id)
                elif kind == 1:  # another chapter's event: not ours to take from a client
                    ev = _event(fed, "endorse", {"proposal": proposal.id}, who=2,
                                chapter="rome", at=now + serial)
                    work[c].append(ev.canonical)
                    refused.append((ev.id, "not_own_chapter"))
                elif kind == 2:  # a signature that does not verify
                    ev = _event(fed, "endorse", {"proposal": proposal.id}, who=who,
                                at=now + serial)
                    obj = json.loads(ev.canonical)
                    obj["sig"] = ("B" if obj["sig"][0] != "B" else "C") + obj["sig"][1:]
                    work[c].append(json.dumps(obj, separators=(",", ":"),
                                              sort_keys=True).encode())
                    refused.append((ev.id, "bad_signature"))
                elif kind == 3:  # an act on a proposal no one has
                    ev = _event(fed, "endorse", {"proposal": "ab" * 32}, who=who,
                                at=now + serial)
                    work[c].append(ev.canonical)
                    refused.append((ev.id, "unknown_proposal"))
                elif kind == 4:  # not even JSON
                    work[c].append(b'{"type": "endorse", "n": %d' % serial)
                    refused.append((None, "not_json"))
                elif kind == 5:  # already held before the test
                    work[c].append(held_before.canonical)
                else:
                    ev = _event(fed, "comment", {"proposal": proposal.id, "text": f"c{serial}"},
                                who=who, at=now + serial)
                    work[c].append(ev.canonical)
                    fresh.append(ev.id)
        sent = [body for bodies in work for body in bodies]
        answers = asyncio.run(_post_all(port, work))

        by_body: dict[bytes, list[tuple[int, dict]]] = {}
        for bodies, replies in zip(work, answers):
            assert len(replies) == len(bodies)
            for body, reply in zip(bodies, replies):
                by_body.setdefault(body, []).append(reply)
        codes = {ev_id: code for ev_id, code in refused if ev_id}
        for body, replies in by_body.items():
            statuses = sorted(s for s, _ in replies)
            ids = {r.get("id") for _, r in replies}
            if body == held_before.canonical:
                assert statuses == [200] * len(replies)
                assert ids == {held_before.id}
                assert all(r.get("duplicate") is True for _, r in replies)
            elif len(replies) == 2:  # the same event from two clients at once
                assert statuses == [200, 201], replies
                assert len(ids) == 1 and ids.pop() in twice
            elif statuses[0] == 201:
                assert ids.pop() in fresh
            else:
                code = replies[0][1]["error"]["code"]
                assert 400 <= statuses[0] < 500, replies
                assert code in {c for _, c in refused}, replies
        refused_codes = sorted(r[1]["error"]["code"] for replies in answers for r in replies
                               if r[0] >= 400)
        assert refused_codes == sorted(c for _, c in refused)
        stored_ids = sorted(r[1]["id"] for replies in answers for r in replies if r[0] == 201)
        assert stored_ids == sorted(fresh + twice)
        # the store holds exactly what was accepted, and nothing that was refused
        assert _held(fed, fresh + twice + [proposal.id, held_before.id]) == set(
            fresh + twice + [proposal.id, held_before.id])
        assert _held(fed, list(codes)) == set()
        assert len(sent) == 16 * 12 + 16 * 12 // 8  # every kind-0 event went out twice


def test_no_acknowledged_client_event_is_lost_to_kill_9() -> None:
    with federation(("paris", "rome"), start=("paris",), rules=RULES) as fed:
        port = fed.nodes["paris"].port
        now = int(time.time() * 1000)
        proposal = _event(fed, "proposal", {"title": "T", "text": "", "kind": "action"}, at=now)
        assert asyncio.run(_post_all(port, [[proposal.canonical]]))[0][0][0] == 201
        for loop in range(2):
            events = [_event(fed, "endorse", {"proposal": proposal.id}, who=i % 2,
                             at=now + 1 + loop * 10_000 + i) for i in range(3_000)]
            acked: list[str] = []
            lock = threading.Lock()
            stop = threading.Event()

            async def client(mine) -> None:
                url = f"http://127.0.0.1:{port}/api/v1/events"
                try:
                    async with aiohttp.ClientSession() as session:
                        for ev in mine:
                            if stop.is_set():
                                return
                            async with session.post(url, data=ev.canonical) as resp:
                                await resp.read()
                                if resp.status in (200, 201):
                                    with lock:
                                        acked.append(ev.id)
                except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    return  # the node is gone

            async def clients() -> None:
                await asyncio.gather(*(client(events[c::16]) for c in range(16)))

            runner = threading.Thread(target=lambda: asyncio.run(clients()))
            runner.start()
            deadline = time.monotonic() + 60
            while len(acked) < 300 and time.monotonic() < deadline and runner.is_alive():
                time.sleep(0.01)
            fed.kill("paris")  # while requests are in flight
            with lock:
                answered = list(acked)
            stop.set()
            runner.join(60)
            assert len(answered) >= 300
            lost = set(answered) - _held(fed, answered)
            assert not lost, f"{len(lost)} acknowledged events lost (loop {loop})"
            fed.start("paris")


# --- in-process: what a group sees ------------------------------------------------------

def _node(tmp_path, cls=None):
    from node.chapter.chapter_node import ChapterNode
    from node.protocol.charter import charter_from_object
    from node.store import open_store

    from .conftest import person_key, small_charter

    store = open_store(tmp_path / "node.db")
    store.set_meta("chapter", "paris")
    return (cls or ChapterNode)(store, charter_from_object(small_charter(min_open_hours=1)),
                                "paris", person_key("node paris"))


def _signed(node, who: str, type_: str, body: dict, at: int):
    from .conftest import person_key

    return sign_event(federation=node.charter.id, type=type_, chapter="paris",
                      created_at=format_ms(at), body=body, signing_key=person_key(who))


def _group(node, bodies: list[bytes], now: int):
    """Submit all bodies at once (they are queued before the writer runs: one group)."""
    async def go():
        groups = ClientGroups(node, clock=lambda: now)
        groups.start()
        try:
            return await asyncio.gather(*(groups.submit(b) for b in bodies)), groups.groups
        finally:
            await groups.stop()
    return asyncio.run(go())


def test_an_act_sees_the_proposal_sent_in_the_same_group(tmp_path) -> None:
    node = _node(tmp_path)
    now = int(time.time() * 1000)
    proposal = _signed(node, "amelie", "proposal", {"title": "T", "text": "", "kind": "action"},
                       now)
    act = _signed(node, "amelie", "endorse", {"proposal": proposal.id}, now + 1)
    alone = node.admit_clients([act.canonical], now_ms=now)[0]
    assert alone.code == "unknown_proposal" and not node.store.has(act.id)
    outcomes, groups = _group(node, [act.canonical, proposal.canonical, act.canonical], now)
    assert groups == 1
    assert [o.status for o in outcomes] == ["stored", "stored", "duplicate"]
    assert [o.id for o in outcomes] == [act.id, proposal.id, act.id]
    assert node.store.has(act.id) and node.store.has(proposal.id)


def test_a_registry_change_in_a_group_is_seen_by_the_events_after_it(tmp_path) -> None:
    from .conftest import person_key, pub

    node = _node(tmp_path)
    now = int(time.time() * 1000)
    proposal = _signed(node, "amelie", "proposal", {"title": "T", "text": "", "kind": "action"},
                       now - 10)
    assert node.submit(proposal.canonical, now)[1]
    comment = _signed(node, "newbie", "comment", {"proposal": proposal.id, "text": "hi"}, now + 1)
    assert node.admit_clients([comment.canonical], now_ms=now)[0].code == "not_member"
    vouch = sign_event(federation=node.charter.id, type="member", chapter="paris",
                       created_at=format_ms(now), body={"key": pub("newbie"), "active": True},
                       signing_key=person_key("node paris"))
    outcomes, _ = _group(node, [comment.canonical, vouch.canonical], now)
    assert [o.status for o in outcomes] == ["stored", "stored"]
    assert node.store.has(comment.id) and node.store.has(vouch.id)


def test_a_body_that_breaks_the_node_costs_only_its_own_request(tmp_path, monkeypatch) -> None:
    from node.ingest import admission

    sound = admission.admissible

    def fragile(event, **kwargs):
        if event.body.get("text") == "poison":
            raise RuntimeError("a bug the poison body finds")
        return sound(event, **kwargs)

    monkeypatch.setattr(admission, "admissible", fragile)
    node = _node(tmp_path)
    now = int(time.time() * 1000)
    proposal = _signed(node, "amelie", "proposal", {"title": "T", "text": "", "kind": "action"},
                       now - 10)
    assert node.submit(proposal.canonical, now)[1]
    good = [_signed(node, "amelie", "comment", {"proposal": proposal.id, "text": f"c{i}"},
                    now + i) for i in range(5)]
    poison = _signed(node, "amelie", "comment", {"proposal": proposal.id, "text": "poison"},
                     now + 9)

    async def go():
        groups = ClientGroups(node, clock=lambda: now)
        groups.start()
        try:
            return await asyncio.gather(*(groups.submit(b) for b in
                                          [good[0].canonical, poison.canonical,
                                           *(g.canonical for g in good[1:])]),
                                        return_exceptions=True)
        finally:
            await groups.stop()

    answers = asyncio.run(go())
    assert isinstance(answers[1], RuntimeError)
    assert [a.status for i, a in enumerate(answers) if i != 1] == ["stored"] * 5
    assert all(node.store.has(g.id) for g in good) and not node.store.has(poison.id)
