"""Page models: the node's JSON views in, what a page shows out. No I/O, no clock (`now_ms`
is given), no HTML but the escaped text with links (`rich_text`).

The pages are built from the same JSON the API serves (`proposal_report`, `activity`,
`node_info`), so what a person reads is what a script reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from ..notices.activity import positions
from ..protocol.times import parse_ms

__all__ = ["CLOSING_SOON_MS", "Group", "group_proposals", "rich_text", "thread", "Comment",
           "result_words", "proposal_page"]

CLOSING_SOON_MS = 24 * 3_600_000  # as the "closing soon" notice (Loomio's default too)

_URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)


def rich_text(text: str) -> Markup:
    """User text escaped, with http(s) links made clickable and nothing else: no markup from
    the author survives, and a link cannot run script (only http and https are linked)."""
    out, last = [], 0
    for m in _URL.finditer(text):
        out.append(escape(text[last:m.start()]))
        url = m.group(0)
        out.append(Markup('<a href="{0}" rel="nofollow noopener noreferrer">{0}</a>')
                   .format(url))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@dataclass(frozen=True)
class Group:
    key: str  # closing_soon / open / closed / decided
    proposals: list[dict[str, Any]]


def group_proposals(proposals: Iterable[Mapping[str, Any]], now_ms: int) -> list[Group]:
    """Proposals as a person looks for them: what closes within a day first (soonest first),
    then the other open ones, then those waiting for seals, then the decided (newest first)."""
    soon, open_, closed, decided = [], [], [], []
    for p in proposals:
        item = dict(p)
        closes = parse_ms(p["closes_at"]) if p.get("closes_at") else None
        item["closes_ms"] = closes
        if p["state"] in ("open", "pending"):
            (soon if closes is not None and closes - now_ms <= CLOSING_SOON_MS else open_).append(item)
        elif p["state"] == "closed":
            closed.append(item)
        else:
            decided.append(item)
    soon.sort(key=lambda p: p["closes_ms"])
    open_.sort(key=lambda p: (p["closes_ms"] is None, p["closes_ms"] or 0))
    closed.sort(key=lambda p: -(p["closes_ms"] or 0))
    decided.sort(key=lambda p: -(p["closes_ms"] or 0))
    return [Group(k, v) for k, v in (("closing_soon", soon), ("open", open_),
                                     ("closed", closed), ("decided", decided))]


@dataclass
class Comment:
    line: dict[str, Any]
    replies: list[Comment] = field(default_factory=list)


def thread(comments: Iterable[Mapping[str, Any]]) -> list[Comment]:
    """Comments as a discussion: replies under what they answer, each level in time order.
    A reply to a comment this node does not hold (yet) stands at the top level."""
    nodes = {c["id"]: Comment(dict(c)) for c in comments}
    top: list[Comment] = []
    for c in nodes.values():
        parent = nodes.get(c.line["body"].get("reply_to") or "")
        (parent.replies if parent is not None and parent is not c else top).append(c)
    return top


def result_words(kind: str, state: str, tally: Mapping[str, Any], final: bool) -> str:
    """Which result sentence the page shows (a message id the template translates)."""
    outcome = tally["outcome"]
    if kind == "action":
        return "green_light" if outcome == "adopted" else "awaiting_endorsements"
    if not final:
        if kind == "consent":
            return "would_be_vetoed" if tally["vetoes"] else "would_be_adopted"
        return "provisional_" + outcome
    return "final_" + outcome


def proposal_page(report: Mapping[str, Any], activity: Mapping[str, Any],
                  info: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """Everything the proposal page shows, from the report, the activity and the node info."""
    proposal = report["proposal"]
    body = proposal["body"]
    kind = body["kind"]
    people = dict(activity["people"])
    for c in info["connectors"]:
        people.setdefault(c["key"], {"key": c["key"], "short": c["key"][:8], "role": "connector",
                                     "name": c["name"], "chapter": c["chapter"]})
    closes = parse_ms(body["closes_at"]) if body.get("closes_at") else None
    grace_ms = int(info["rules"]["grace_seconds"] * 1000)
    stand = positions(activity["acts"])
    endorsements = stand["endorsements"]
    author = proposal["author"]
    if (kind == "action" and people.get(author, {}).get("role") == "connector"
            and author not in {e["author"] for e in endorsements}):
        # the 3-Connectors rule counts the proposer (PROTOCOL §5): the list shows them too
        endorsements = [{"author": author, "created_at": proposal["created_at"],
                         "id": report["id"], "proposer": True}, *endorsements]
    trace = report.get("trace") or []
    return {
        "id": report["id"], "proposal": proposal, "body": body, "kind": kind,
        "state": report["state"], "final": report["final"], "tally": report["tally"],
        "tally_hash": report["tally_hash"], "amended": report.get("amended"),
        "seals": report["seals"], "missing_seals": report["missing_seals"],
        "result": result_words(kind, report["state"], report["tally"], report["final"]),
        "closes_ms": closes,
        # acts are taken from people until closes_at (§6); the grace is for clocks and networks
        "accepting": closes is None and report["state"] == "pending"
                     or closes is not None and now_ms < closes,
        "accept_until_ms": None if closes is None else closes + grace_ms,
        "text": rich_text(body.get("text", "")),
        "comments": thread(activity["comments"]),
        "comment_count": len(activity["comments"]),
        "endorsements": endorsements, "vetoes": stand["vetoes"],
        "withdrawn": stand["withdrawn"], "votes": stand["votes"],
        "trace": trace, "people": people,
        "needed": info["rules"]["action_endorsements"],
        "connectors": len(info["connectors"]),
    }
