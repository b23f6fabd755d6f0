"""Campaign 12, fast slice: a poison line never sinks the rest of its peer batch, valid events
that break naive consumers flow through a real outbox, and an outbox of large events keeps
flowing to a peer that enforces its batch limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hardening.kit import NOW_MS, InProcessNode, Kit
from hardening.known import KNOWN_BUGS
from hardening.poison import batch_lands, nasty_bodies, outbox_nasty, poison_lines
from node.federation.api import MAX_BATCH_BYTES
from node.federation.peer_client import PeerReply, PeerUnavailable
from node.federation.sync import Federation, SyncSettings

KIT = Kit()


def _groups() -> list:
    """One test per regression entry (all its lines) and one per other poison line."""
    groups: dict[str, tuple[list[bytes], str | None]] = {}
    for name, line, bug in poison_lines(KIT):
        key = name.split("#")[0]
        groups.setdefault(key, ([], bug))[0].append(line)
    out = []
    for key, (lines, bug) in groups.items():
        known = KNOWN_BUGS.get(bug) if bug else None
        marks = ([pytest.mark.xfail(strict=True, reason=known.id)]
                 if known and known.open and known.crashes else [])
        out.append(pytest.param(lines, id=key, marks=marks))
    return out


@pytest.fixture(scope="module")
def node() -> Iterator[InProcessNode]:
    with InProcessNode.temporary(KIT) as node:
        yield node


@pytest.mark.parametrize("poison", _groups())
def test_a_poison_line_does_not_sink_the_rest_of_its_batch(poison: list[bytes],
                                                            node: InProcessNode) -> None:
    for line in poison:
        landed, what = batch_lands(KIT, node, line)
        assert landed, what


def test_valid_events_that_break_naive_consumers_flow_through_a_real_outbox() -> None:
    sent, reached, _ = outbox_nasty()
    assert sent == 3 * len(nasty_bodies())
    assert reached == sent


class _StrictPeer:
    """A peer client that answers like a node: 413 for a batch over the node's limit."""

    def __init__(self) -> None:
        self.bodies: list[int] = []

    async def call(self, method: str, base_url: str, path: str, body: bytes = b"",
                   content_type: str = "application/json", request_id: str | None = None):
        if len(body) > MAX_BATCH_BYTES:
            raise PeerUnavailable(f"{base_url}: HTTP 413", code="peer_refused")
        self.bodies.append(len(body))
        lines = [line for line in body.split(b"\n") if line.strip()]
        import json

        results = [{"id": None, "status": "stored"} for _ in lines]
        return PeerReply(200, json.dumps({"results": results}).encode(), {}, None)


@pytest.mark.xfail(KNOWN_BUGS["outbox-over-batch-limit"].open, strict=True, reason=KNOWN_BUGS["outbox-over-batch-limit"].id)
async def test_an_outbox_of_large_events_keeps_flowing(tmp_path) -> None:
    """280 events of 62 KB waiting for Rome (it was away): one batch of them all would be 17 MB,
    over the 16 MiB Rome accepts; the push loop must still deliver them all."""
    text = "é" * 29_000 + "x" * 4_000
    with InProcessNode.temporary(KIT, "paris") as paris:
        events = [KIT.sign("proposal", {"title": f"Long {i}", "text": text, "kind": "action"},
                           by="amelie", chapter="paris", at_ms=NOW_MS - 3_600_000 + i)
                  for i in range(280)]
        for i in range(0, len(events), 50):
            paris.node.receive([e.canonical for e in events[i:i + 50]], origin="barcelona",
                               now_ms=NOW_MS)
        assert paris.head() == 280
        peer = _StrictPeer()
        federation = Federation(paris.node, peer, SyncSettings())  # type: ignore[arg-type]
        try:
            await federation.push("rome", "http://rome.example")
        except PeerUnavailable:
            pass
        assert paris.store.peer("rome").push_acked == paris.head()
        assert sum(peer.bodies) > MAX_BATCH_BYTES  # it took more than one batch
