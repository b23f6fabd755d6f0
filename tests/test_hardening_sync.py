"""Sync against a real peer process: what a pull acknowledges, it has stored.

Found while building campaign 6 (a hostile Negentropy responder's 1 MB replies arrived cut):
the peer client reads only what is buffered, so large replies are truncated.
"""

from __future__ import annotations

import time

import aiohttp
import pytest

from hardening.known import KNOWN_BUGS
from hardening.live import CONNECTORS, federation, request
from node.chapter.chapter_node import ChapterNode
from node.federation.peer_client import PeerClient
from node.federation.sync import Federation, SyncSettings
from node.operations.datadir import DataDir
from node.protocol.events import sign_event
from node.protocol.times import format_ms


@pytest.mark.xfail(KNOWN_BUGS["peer-reply-truncated"].open, strict=True, reason=KNOWN_BUGS["peer-reply-truncated"].id)
async def test_a_pull_stores_every_event_the_peer_holds() -> None:
    """Paris holds 300 proposals of 2 KB; Rome (in process, sync off) pulls Paris's feed once.
    Every event the new checkpoint covers must be stored at Rome."""
    with federation(("paris", "rome"), start=("paris",)) as fed:
        assert fed.charter is not None
        for i in range(300):
            ev = sign_event(federation=fed.charter.id, type="proposal", chapter="paris",
                            created_at=format_ms(int(time.time() * 1000)),
                            body={"title": f"Proposal {i}", "text": "x" * 2000, "kind": "action"},
                            signing_key=CONNECTORS[0].key)
            assert request(fed.nodes["paris"].port, "POST", "/api/v1/events",
                           ev.canonical).status == 201
        d = DataDir(fed.nodes["rome"].data_dir)
        store = d.store()
        try:
            rome = ChapterNode(store, d.charter(), "rome", d.node_key())
            async with aiohttp.ClientSession() as session:
                sync = Federation(rome, PeerClient(session, bytes(fed.nodes["rome"].key)),
                                  SyncSettings())
                await sync.pull("paris", f"http://127.0.0.1:{fed.nodes['paris'].port}")
            checkpoint = store.peer("paris").pull_checkpoint
            assert checkpoint == 300
            assert store.count() == checkpoint
        finally:
            store.close()
