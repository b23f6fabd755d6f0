"""Campaign 5, fast slice: every known attack on peer requests is refused by a running node
with 401 and the protocol's code, stores nothing, and the node keeps answering."""

from __future__ import annotations

from hardening.attacks import judge_all
from hardening.live import federation


def test_peer_request_attacks_are_refused_by_a_running_node() -> None:
    with federation(("paris", "rome", "barcelona"), start=("paris",)) as fed:
        sent, codes, problems = judge_all(fed, replays=50)
        assert problems == []
        assert codes["401 replayed_nonce"] == 51  # 50 replays and the nonce under a new signature
        assert sent >= 90  # 38 kinds of attack, the original, 50 replays, one reused nonce
        assert fed.nodes["paris"].get("/api/v1/status")["chapter"] == "paris"
