"""A proposal's evidence: the export lines that decide it, enough for anyone to recompute it."""

from __future__ import annotations

import json

from node.federation.api import NODE
from node.operations.audit import parse_export, tally_report
from node.protocol.events import sign_event
from node.protocol.times import format_ms

from .conftest import person_key, pub


async def test_the_evidence_alone_recomputes_the_nodes_result_and_holds_nothing_else(client):
    node = client.app[NODE]
    now = node.clock()

    def act(who: str, type_: str, body: dict) -> str:
        event = sign_event(federation=node.charter.id, type=type_, chapter="paris",
                           created_at=format_ms(node.clock()), body=body,
                           signing_key=person_key(who))
        node.submit(event.canonical, node.clock())
        return event.id

    closes = format_ms(now + 2 * 3_600_000)
    pid = act("amelie", "proposal", {"title": "Join the housing coalition", "text": "",
                                     "kind": "vote", "closes_at": closes})
    other = act("amelie", "proposal", {"title": "Paint the door", "text": "", "kind": "action"})
    act("marco", "delegation", {"to": pub("amelie"), "proposal": None})
    act("amelie", "vote", {"proposal": pid, "choice": "yes"})
    act("lucia", "comment", {"proposal": pid, "text": "Bring the statutes."})
    act("lucia", "endorse", {"proposal": other})
    answer = await client.get(f"/api/v1/proposals/{pid}/evidence")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/x-ndjson")
    lines = (await answer.read()).decode().splitlines()
    types = [json.loads(line).get("type") for line in lines[1:]]
    assert sorted(types) == ["delegation", "proposal", "vote"]  # no comment, no other proposal
    report = await (await client.get(f"/api/v1/proposals/{pid}")).json()
    audited = tally_report(parse_export(lines), pid, node.clock())
    assert audited["tally_hash"] == report["tally_hash"]
    assert audited["tally"]["yes"] == 2  # Marco's weight reached Amélie's vote
    missing = await client.get(f"/api/v1/proposals/{'0' * 64}/evidence")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "unknown_proposal"
