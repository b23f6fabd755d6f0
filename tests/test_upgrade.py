"""Upgrades: a store made by the earliest schema opens, migrates at start, and loses nothing.

tests/fixtures/store-v0.1-m003.sql is a text dump of a store at migrations m001-m003 (the
first released layout) holding a proposal, a veto, a local member and peer cursors. Every
later migration must carry it forward. Keep the fixture; add a newer one when a release
changes the layout, and test from each.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.protocol.events import parse_event
from node.store import MIGRATIONS, open_store

FIXTURE = Path(__file__).parent / "fixtures" / "store-v0.1-m003.sql"
PROPOSAL = "17b5befd42ae905869fa470e6c3a7c0ecbcabf013b01ecac2848fcc6c4a3a4db"
VETO = "f26a4040fd04e553b26b8e5b77a8e213d6fb3c6768ba86f4b3e2230fa5ea8710"


def test_the_oldest_store_upgrades_without_loss(tmp_path: Path) -> None:
    db_path = tmp_path / "node.db"
    conn = sqlite3.connect(db_path)
    conn.executescript(FIXTURE.read_text(encoding="utf-8"))
    conn.close()
    store = open_store(db_path, migrate=False)
    assert store.pending_migrations() == [name for name, _ in MIGRATIONS[3:]]
    assert store.migrate() == [name for name, _ in MIGRATIONS[3:]]
    assert store.pending_migrations() == []
    assert store.count() == 2
    proposal, veto = store.get(PROPOSAL), store.get(VETO)
    assert proposal is not None and veto is not None
    assert veto.body["reason"] == "Too costly." and veto.proposal == PROPOSAL
    # Stored bytes still verify: nothing was rewritten.
    assert parse_event(proposal.canonical, federation=proposal.federation).id == PROPOSAL
    assert [e.id for e in store.events_of(proposal=PROPOSAL)] == [VETO]
    # the id index was replaced (m005): what is held is still found and not stored twice
    assert store.known([PROPOSAL, VETO, "0" * 64]) == {PROPOSAL, VETO}
    assert store.insert_events([proposal, veto], origin="peer", received_ms=1) == [False, False]
    assert store.get_meta("chapter") == "paris" and store.get_meta("feed_epoch") == "0123456789abcdef"
    assert store.peer("rome").pull_checkpoint == 2 and store.peer("rome").push_acked == 1
    members = list(store.db.query("select name, contact from local_members"))
    assert members == [{"name": "Jeanne", "contact": "jeanne@example.org"}]
    assert store.db.execute("pragma integrity_check").fetchone()[0] == "ok"
    store.close()
