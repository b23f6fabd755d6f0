"""What people did, read from the events a node holds: a proposal's discussion and positions,
and who a key is. The reading side the API (`/api/v1/proposals/{id}/activity`,
`/api/v1/people/{key}`) and the web pages share.

Everything here is public federation data: a Connector is named as the registry names them; a
member appears by key and chapter only — their name and contact stay in the chapter's local
tables, which nothing here reads (subsidiarity).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..governance import Registry
from ..protocol.events import ACT_TYPES, Event

__all__ = ["ACTIVITY_TYPES", "who", "activity", "positions", "person_acts", "short_key"]

# What people do about a proposal: its discussion and its acts (seals are the nodes').
ACTIVITY_TYPES = ("comment", *sorted(ACT_TYPES))


def short_key(key: str) -> str:
    """How a page names a key it has no name for: its first 8 characters."""
    return key[:8]


def who(registry: Registry, key: str) -> dict[str, Any]:
    """Who the registry says `key` is now: a Connector (with name and chapter), a member (the
    chapter that vouches for it, no name), a chapter's node, or not known."""
    connector = registry.connectors.get(key)
    if connector is not None:
        return {"key": key, "short": short_key(key), "role": "connector",
                "name": connector.name, "chapter": connector.chapter}
    node = registry.chapter_by_node_key(key)
    if node is not None:
        return {"key": key, "short": short_key(key), "role": "node", "name": None,
                "chapter": node.slug}
    chapters = [slug for slug in sorted(registry.members.history.get(key, {}))
                if slug in registry.chapters
                and registry.members.vouched(key, registry.at_ms,
                                             {slug: registry.chapters[slug]})]
    if chapters:
        return {"key": key, "short": short_key(key), "role": "member", "name": None,
                "chapter": chapters[0]}
    return {"key": key, "short": short_key(key), "role": "unknown", "name": None,
            "chapter": None}


def _line(event: Event) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "author": event.author,
            "chapter": event.chapter, "created_at": event.created_at, "body": dict(event.body)}


def activity(events: Iterable[Event], registry: Registry) -> dict[str, Any]:
    """A proposal's comments and acts in (created_at, id) order, and who each author is.

    `events`: the events that name the proposal (seals are left out: the report has them)."""
    comments, acts, people = [], [], {}
    for event in events:
        if event.type == "comment":
            comments.append(_line(event))
        elif event.type in ACT_TYPES:
            acts.append(_line(event))
        else:
            continue
        if event.author not in people:
            people[event.author] = who(registry, event.author)
    return {"comments": comments, "acts": acts, "people": people}


def positions(acts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Each author's standing position from their acts in order (PROTOCOL §5 "latest act"):
    endorsements, vetoes that stand (with their reason), vetoes withdrawn (with the reason
    they had), and each Connector's latest direct vote."""
    endorsed: dict[str, dict[str, Any]] = {}
    veto: dict[str, dict[str, Any]] = {}
    withdrawn: dict[str, dict[str, Any]] = {}
    votes: dict[str, dict[str, Any]] = {}
    for act in acts:  # already in (created_at, id) order
        author = act["author"]
        if act["type"] == "endorse":
            endorsed.setdefault(author, act)
        elif act["type"] == "veto":
            veto[author] = act
            withdrawn.pop(author, None)
        elif act["type"] == "veto_withdraw" and author in veto:
            withdrawn[author] = {**veto.pop(author), "withdrawn_at": act["created_at"],
                                 "withdrawn_by": act["id"]}
        elif act["type"] == "vote":
            votes[author] = act
    return {"endorsements": list(endorsed.values()), "vetoes": list(veto.values()),
            "withdrawn": list(withdrawn.values()), "votes": list(votes.values())}


def person_acts(events: Iterable[Event]) -> dict[str, Any]:
    """One person's latest act of each type per proposal, and their delegations standing now
    (the latest global one, the latest per proposal): what the pages show as "what I did"."""
    latest: dict[str, dict[str, dict[str, Any]]] = {}
    global_delegation: dict[str, Any] | None = None
    per_proposal: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.type == "delegation":
            line = _line(event)
            if event.proposal is None:
                global_delegation = line
            else:
                per_proposal[event.proposal] = line
        if event.proposal is not None:
            latest.setdefault(event.proposal, {})[event.type] = _line(event)
    return {"proposals": latest, "delegation": global_delegation,
            "delegations": per_proposal}
