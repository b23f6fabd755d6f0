"""What the node says of itself: its status (peers, cursors, reconciliation), and its log
as an export (PROTOCOL §7) that a third party can audit, whole or for one proposal."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ..protocol.charter import Charter
from ..protocol.errors import NotFound
from ..protocol.events import Event
from ..protocol.times import format_ms
from ..store import Store
from .feeds import Feeds
from .proposals import ProposalViews

__all__ = ["export_lines", "status"]


def status(store: Store, peer_urls: Mapping[str, str], reconciled: Mapping[str, tuple[int, int, int]],
           now_ms: int, **identity: Any) -> dict[str, Any]:
    """`identity`: chapter, federation, node_key, feed_epoch (shown as they are)."""
    peers = []
    for slug, url in sorted(peer_urls.items()):
        p = store.peer(slug)
        peers.append({
            "slug": slug, "url": url, "outbox": store.outbox_size(slug, p.push_acked),
            "push_acked": p.push_acked, "pull_checkpoint": p.pull_checkpoint,
            "last_push": format_ms(p.last_push_ms) if p.last_push_ms else None,
            "last_pull": format_ms(p.last_pull_ms) if p.last_pull_ms else None,
            "clock_skew_ms": p.clock_skew_ms, "failures": p.failures,
            "last_error": p.last_error,
            "reconciliation": dict(zip(("rounds", "have", "need"),
                                       reconciled.get(slug, (0, 0, 0)))),
        })
    return {"chapter": identity["chapter"], "federation": identity["federation"],
            "node_key": identity["node_key"], "now": format_ms(now_ms), "events": store.count(),
            "head": store.max_seq(), "feed_epoch": identity["feed_epoch"], "peers": peers}


def export_lines(store: Store, charter: Charter, proposals: ProposalViews, feeds: Feeds,
                 now_ms: int, *, evidence_of: str | None = None) -> Iterator[bytes]:
    """PROTOCOL §7: charter, events (late acts left out), then one sealed line per seal.

    evidence_of: only the lines that decide that proposal, so a browser can recompute it
    without downloading the whole log: the registry's events (members, node moves, every
    proposal with an effect, with its acts and seals), the proposal, the consent proposal
    it escalates, their acts, the global delegations and their seals. Comments, feedback
    requests and other proposals' acts are left out; nothing else changes.
    """
    held = list(store.events_of(types=["proposal"]))
    wanted: set[str] | None = None
    if evidence_of is not None:
        target = next((p for p in held if p.id == evidence_of), None)
        if target is None:
            raise NotFound(f"no proposal {evidence_of} on this node", code="unknown_proposal")
        wanted = {p.id for p in held if p.body.get("effect") is not None}
        wanted.add(target.id)
        if target.body.get("escalated_from"):
            wanted.add(target.body["escalated_from"])
    yield json.dumps({"charter": charter.to_json()}, ensure_ascii=False,
                     separators=(",", ":")).encode()
    late: set[str] = set()
    for proposal in held:
        if wanted is None or proposal.id in wanted:
            late.update(proposals.compute(proposal, now_ms).late_acts)
    seals: list[str] = []
    for event in store.iter_all():
        if event.id in late or (wanted is not None and not _decides(event, wanted)):
            continue
        if event.type == "seal":
            seals.append(event.id)
        yield event.canonical
    for seal_id in seals:
        line = feeds.sealed_line(seal_id)
        if line:
            yield line


def _decides(event: Event, proposals: set[str]) -> bool:
    """Whether `event` is evidence for one of `proposals` (or for the registry they read)."""
    if event.type in ("member", "chapter_url"):
        return True
    if event.type == "proposal":
        return event.id in proposals
    if event.type in ("comment", "feedback_request"):
        return False
    target = event.body.get("proposal")
    return target in proposals or (event.type == "delegation" and target is None)
