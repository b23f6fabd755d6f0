"""The store keeps whole batches only, whatever happens to the process writing them."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from node.protocol.events import sign_event
from node.store import open_store

from .conftest import person_key

FED = "f" * 64


def comments(n: int, label: str, key_name: str = "amelie") -> list:
    return [
        sign_event(federation=FED, type="comment", chapter="paris",
                   created_at=f"2026-11-24T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                   body={"proposal": "a" * 64, "text": f"{label} #{i}"},
                   signing_key=person_key(key_name))
        for i in range(n)
    ]


def test_duplicate_insert_is_a_no_op(tmp_path: Path) -> None:
    store = open_store(tmp_path / "node.db")
    batch = comments(5, "dup")
    assert store.insert_events(batch, origin="client", received_ms=1) == [True] * 5
    assert store.insert_events(batch[2:] + comments(1, "new"), origin="peer", received_ms=2) == [
        False, False, False, True]
    assert store.count() == 6
    assert [seq for seq, _ in store.changes(0, 100)] == [1, 2, 3, 4, 5, 6]
    assert store.get(batch[0].id) == batch[0]


def test_two_connections_cannot_both_store_one_id(tmp_path: Path) -> None:
    """The id index is not unique (node/store.py m005): the insert itself checks for the id."""
    first, second = open_store(tmp_path / "node.db"), open_store(tmp_path / "node.db")
    batch = comments(3, "twice")
    assert first.insert_events(batch, origin="peer", received_ms=1) == [True] * 3
    assert second.insert_events(batch[1:] + comments(1, "other"), origin="client",
                                received_ms=2) == [False, False, True]
    assert first.count() == second.count() == 4


def test_ids_sharing_the_indexed_prefix_are_told_apart(tmp_path: Path) -> None:
    store = open_store(tmp_path / "node.db")
    [real] = comments(1, "real")
    store.insert_events([real], origin="peer", received_ms=1)
    twin = real.id[:12] + "0" * 52  # what no hash gives, but a prefix may well collide
    assert twin != real.id
    assert store.known([twin, real.id]) == {real.id} and not store.has(twin)
    assert store.get(twin) is None and store.get_many([twin]) == []
    with store.db.atomic():  # a row under the twin id, as if an event had hashed to it
        store.db.execute("insert into events (id, type, author, chapter, created_at, created_ms, "
                         "received_ms, origin, canonical) select ?, type, author, chapter, "
                         "created_at, created_ms, 2, origin, canonical from events", [twin])
    assert store.known([twin, real.id]) == {twin, real.id}
    assert store.seqs([real.id, twin]) == {real.id: 1, twin: 2}
    assert store.insert_events([real], origin="peer", received_ms=3) == [False]


def test_look_ups_by_id_use_the_prefix_index(tmp_path: Path) -> None:
    store = open_store(tmp_path / "node.db")
    store.insert_events(comments(50, "plan"), origin="peer", received_ms=1)
    indexes = {r[1] for r in store.db.execute("pragma index_list(events)")}
    assert "events_id_prefix" in indexes and "idx_events_id" not in indexes
    probe = store.db.execute
    from node.store import (  # the clauses every look-up uses
        _BY_ID,
        _INSERT_EVENT,
        _ids_in,
    )
    where, args = _ids_in(["ab" * 32, "cd" * 32])
    one, arg = _ids_in(["ab" * 32])
    for sql, params in ((f"select 1 from events where {_BY_ID}", ["ab" * 32]),
                        (f"select id from events where {where}", args),
                        (f"select id from events where {one}", arg)):
        plan = " ".join(str(r[-1]) for r in probe(f"explain query plan {sql}", params))
        assert "events_id_prefix" in plan, plan
    plan = " ".join(str(r[-1]) for r in probe(f"explain query plan {_INSERT_EVENT}",
                                               ["ab" * 32] + [""] * 10))
    assert "events_id_prefix" in plan, plan


def test_a_batch_interrupted_by_an_exception_leaves_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "node.db")
    batch = comments(10, "interrupted")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with store.db.atomic():
            store.insert_events(batch[:5], origin="client", received_ms=1)
            raise Boom
    assert store.count() == 0
    bad = list(batch)
    bad[7] = None  # type: ignore[call-overload]  # fails mid-batch
    with pytest.raises(AttributeError):
        store.insert_events(bad, origin="client", received_ms=1)
    assert store.count() == 0


def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    store = open_store(tmp_path / "node.db")
    assert store.pending_migrations() == []
    assert store.migrate() == []
    names = [r["name"] for r in store.db.query("select name from _migrations order by name")]
    assert names == sorted(names) and len(names) == len(set(names)) >= 3
    assert store.db.journal_mode == "wal"


WRITER = r"""
import sys, uuid
import nacl.signing
from node.store import open_store
from node.protocol.events import sign_event
store = open_store(sys.argv[1])
key = nacl.signing.SigningKey.generate()
print("ready", flush=True)
while True:  # until killed
    label = uuid.uuid4().hex
    batch = [sign_event(federation="f" * 64, type="comment", chapter="paris",
                        created_at="2026-11-24T10:00:00.000Z",
                        body={"proposal": "a" * 64, "text": f"{label} {i}"}, signing_key=key)
             for i in range(100)]
    store.insert_events(batch, origin="peer", received_ms=0)
"""


def test_kill_9_mid_batch_leaves_only_whole_batches(tmp_path: Path) -> None:
    db = tmp_path / "node.db"
    rng = random.Random(20261125)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for loop in range(24):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.3))
        assert proc.poll() is None, "the writer stopped by itself"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        store = open_store(db)
        assert store.db.execute("pragma integrity_check").fetchone()[0] == "ok"
        counts = Counter(json.loads(raw)["body"]["text"].split()[0]
                         for _, raw in store.changes(0, 1_000_000))
        assert all(c == 100 for c in counts.values()), counts
        store.close()
    assert len(counts) >= 24  # every loop wrote at least one whole batch


def test_peer_state_writes_leave_events_fully_durable(tmp_path) -> None:
    """Peer cursors are committed without an fsync; event commits keep synchronous=FULL."""
    store = open_store(tmp_path / "node.db")
    full = store.db.execute("PRAGMA synchronous").fetchone()[0]
    store.update_peer("rome", push_acked=7, failures=1)
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == full == 2  # FULL
    assert store.peer("rome").push_acked == 7 and store.peer("rome").failures == 1
    store.close()
