"""A peer in backoff is retried as soon as it reaches us (once), not when its backoff runs out; and
when neither side reaches the other (both back off after a cut heals), within the cap."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from node.chapter.chapter_node import ChapterNode
from node.federation.peer_client import PeerUnavailable
from node.federation.sync import Federation, SyncSettings
from node.operations.datadir import DataDir, init_data_dir
from node.protocol.keys import write_key_file

from .conftest import person_key, small_charter


class FlakyClient:
    """A peer that is down: every call fails; records when calls were made."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def call(self, method: str, url: str, path: str, *args: object, **kw: object):
        self.calls.append(time.monotonic())
        raise PeerUnavailable("connection refused")


def _node(tmp_path: Path) -> ChapterNode:
    charter = tmp_path / "charter.json"
    charter.write_text(json.dumps(small_charter()))
    key = tmp_path / "paris-node.key"
    write_key_file(key, person_key("node paris"))
    d = init_data_dir(tmp_path / "paris", charter, "paris", key)
    store = DataDir(d.path).store()
    return ChapterNode(store, DataDir(d.path).charter(), "paris", DataDir(d.path).node_key())


async def test_hearing_from_a_peer_ends_its_backoff_once(tmp_path: Path) -> None:
    """Once: a peer that reaches us but cannot be reached (NAT, a wrong URL) pushes a batch
    after another, and each would otherwise cost a failed connection."""
    node = _node(tmp_path)
    client = FlakyClient()
    # A first failure backs off 10-20 s: far longer than this test waits.
    federation = Federation(node, client, SyncSettings(backoff_base_s=20, duty_interval_s=60))
    await federation.start()
    try:
        await asyncio.sleep(0.3)
        before = len(client.calls)
        assert before >= 2  # rome and barcelona each tried once, then backed off
        await asyncio.sleep(0.5)
        assert len(client.calls) == before  # still backing off
        node.peer_seen("rome")  # an authenticated request from Rome arrived
        await asyncio.sleep(0.5)
        assert len(client.calls) == before + 1  # Rome retried at once; Barcelona still waits
        assert node.store.peer("rome").failures == 2 and node.store.peer("barcelona").failures == 1
        for _ in range(20):  # Rome keeps pushing, but still cannot be reached
            node.peer_seen("rome")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert len(client.calls) == before + 1  # it waits out its backoff now
    finally:
        await federation.stop()
        node.store.close()


async def test_a_peer_down_for_long_is_still_retried_within_the_cap(tmp_path: Path) -> None:
    """Both sides of a healed cut may be backing off from each other, so neither hears from
    the other: only the cap bounds how long they take to meet (campaign 8's heal bar is
    2 x pull interval + 10 s)."""
    node = _node(tmp_path)
    settings = SyncSettings()
    federation = Federation(node, FlakyClient(), settings)
    try:
        waits = [(await federation.peer_round("rome")).wait_s for _ in range(30)]
        assert node.store.peer("rome").failures == 30
        assert waits[0] < waits[5]  # exponential at first
        assert max(waits) <= settings.backoff_cap_s <= 2 * settings.pull_interval_s
    finally:
        node.store.close()
