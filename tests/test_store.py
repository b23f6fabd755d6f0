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

from node.events import sign_event
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
from node.events import sign_event
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
