"""A seal over thousands of acts: its id list travels between nodes and into an export.

One id takes 67 bytes in a sealed line, so an event's 256 KiB line limit would stop a list at
about 3,900 acts: a busy vote's seals would never count, and the audit would refuse its export.
"""

from __future__ import annotations

import hashlib
import json

from node.chapter.chapter_node import ChapterNode
from node.governance import tally_hash
from node.operations.audit import parse_export, tally_report
from node.protocol.charter import charter_from_object
from node.protocol.events import MAX_RAW_BYTES, sign_event
from node.protocol.merkle import acts_root
from node.protocol.times import format_ms, parse_ms
from node.store import open_store

from .conftest import person_key, small_charter

OPENS = parse_ms("2026-06-01T10:00:00.000Z")
CLOSES = OPENS + 2 * 3_600_000


def big_seal(charter, n: int):
    proposal = sign_event(federation=charter.id, type="proposal", chapter="paris",
                          created_at=format_ms(OPENS), signing_key=person_key("amelie"),
                          body={"title": "Adopt the 2027 budget", "text": "", "kind": "vote",
                                "closes_at": format_ms(CLOSES)})
    ids = sorted(hashlib.sha256(f"act {i}".encode()).hexdigest() for i in range(n))
    tally = {"proposal": proposal.id, "kind": "vote", "eligible": 3, "yes": 0, "no": 0,
             "abstain": 0, "not_cast": 3, "vetoes": 0, "endorsements": 0,
             "outcome": "no_quorum"}
    seal = sign_event(federation=charter.id, type="seal", chapter="rome",
                      created_at=format_ms(CLOSES + 600_000), signing_key=person_key("node rome"),
                      body={"proposal": proposal.id, "acts_root": acts_root(ids),
                            "acts_count": n, "tally": tally, "tally_hash": tally_hash(tally)})
    line = json.dumps({"sealed": {"seal": seal.id, "acts": ids}}, separators=(",", ":"))
    return proposal, seal, line.encode()


def test_a_peer_takes_a_sealed_list_of_ten_thousand_acts(tmp_path) -> None:
    charter = charter_from_object(small_charter(min_open_hours=1))
    proposal, seal, line = big_seal(charter, 10_000)
    assert len(line) > MAX_RAW_BYTES  # over an event's limit
    node = ChapterNode(open_store(tmp_path / "node.db"), charter, "paris", person_key("node paris"))
    outcomes = node.receive([proposal.canonical, seal.canonical, line], origin="rome",
                            now_ms=CLOSES + 700_000)
    assert [o.status for o in outcomes] == ["stored", "stored", "stored"], outcomes
    assert node.missing_sealed_lists() == []
    assert len(node.missing_acts(limit=20_000)) == 10_000  # now fetched from the peers


def test_the_audit_reads_an_export_with_a_sealed_list_of_ten_thousand_acts() -> None:
    charter = charter_from_object(small_charter(min_open_hours=1))
    proposal, seal, line = big_seal(charter, 10_000)
    lines = [json.dumps({"charter": charter.to_json()}), proposal.canonical, seal.canonical, line]
    report = tally_report(parse_export(lines), proposal.id, CLOSES + 86_400_000, trace=True)
    assert [s["status"] for s in report["trace"]["seals"]] == ["counted"]
