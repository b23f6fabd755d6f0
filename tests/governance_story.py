"""A tiny scenario language for governance tests: named people, explicit times, signed events.

    story = Story()
    p = story.propose("amelie", "consent", at="2026-11-24 10:00", closes="2026-11-27 10:00")
    story.veto("marco", p, at="2026-11-25 09:00", reason="...")
    assert story.decide(p).tally.outcome == "vetoed"

Every event is really signed (fixed-seed keys per name, as in conftest) and goes through the
same validation as received events. The charter: four chapters, five Connectors, two members.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from node.governance import Decision, Recorded, Timeline, check, decide, tally_hash
from node.governance.tally import tally as tally_of
from node.protocol.charter import Charter, charter_from_object
from node.protocol.events import Event, sign_event
from node.protocol.merkle import acts_root
from node.protocol.times import format_ms, parse_ms

from .conftest import person_key, pub

__all__ = ["Story", "T", "ms", "CONNECTORS", "CHAPTERS"]

CHAPTERS = ("paris", "rome", "barcelona", "berlin")
CONNECTORS = {  # name -> (display name, chapter)
    "amelie": ("Amélie", "paris"),
    "marco": ("Marco", "rome"),
    "lucia": ("Lucía", "barcelona"),
    "jonas": ("Jonas", "berlin"),
    "sofia": ("Sofia", "rome"),
}
HOMES = {name: chapter for name, (_, chapter) in CONNECTORS.items()} | {
    "chloe": "paris", "pablo": "barcelona", "giulia": "rome", "nora": "berlin",
}


def T(when: str) -> str:
    """'2026-11-24 10:00' (or with :ss) -> '2026-11-24T10:00:00.000Z'."""
    date, clock = when.split(" ")
    if clock.count(":") == 1:
        clock += ":00"
    return f"{date}T{clock}.000Z"


def ms(when: str) -> int:
    return parse_ms(T(when))


def story_charter(**rules: Any) -> dict[str, Any]:
    return {
        "name": "OuiShare",
        "created_at": "2026-01-01T00:00:00.000Z",
        "chapters": [{"slug": s, "key": pub(f"node {s}"), "url": f"https://{s}.example.org"}
                     for s in CHAPTERS],
        "connectors": [{"key": pub(n), "name": display, "chapter": chapter}
                       for n, (display, chapter) in CONNECTORS.items()],
        "rules": {"min_open_hours": 72, "grace_seconds": 300, "seal_timeout_seconds": 86400,
                  "quorum": 0.5, "action_endorsements": 3, **rules},
    }


class Story:
    """Events of one story, in the order they were written (order never matters to the rules)."""

    def __init__(self, charter: Mapping[str, Any] | None = None, **rules: Any) -> None:
        self.charter: Charter = charter_from_object(dict(charter) if charter else story_charter(**rules))
        self.events: list[Event] = []
        self.sealed: dict[str, list[str]] = {}

    # -- people ------------------------------------------------------------------------

    @staticmethod
    def key(name: str) -> str:
        return pub(name)

    def _sign(self, who: str, type: str, body: dict[str, Any], at: str,
              chapter: str | None = None, keep: bool = True) -> Event:
        signer = person_key(f"node {who}") if type in ("member", "seal", "chapter_url",
                                                        "feedback_request") else person_key(who)
        event = sign_event(federation=self.charter.id, type=type,
                           chapter=chapter or HOMES.get(who, who if who in CHAPTERS else "paris"),
                           created_at=T(at), body=body, signing_key=signer)
        if keep:
            self.events.append(event)
        return event

    # -- person acts -------------------------------------------------------------------

    def propose(self, who: str, kind: str, *, at: str, closes: str | None = None,
                title: str = "A proposal", text: str = "", keep: bool = True,
                **extra: Any) -> Event:
        body: dict[str, Any] = {"title": title, "text": text, "kind": kind}
        if closes is not None:
            body["closes_at"] = T(closes)
        for field, value in extra.items():
            body[field] = value.id if isinstance(value, Event) else value
        return self._sign(who, "proposal", body, at, keep=keep)

    def endorse(self, who: str, proposal: Event, *, at: str, keep: bool = True) -> Event:
        return self._sign(who, "endorse", {"proposal": proposal.id}, at, keep=keep)

    def veto(self, who: str, proposal: Event, *, at: str, reason: str = "a strong objection",
             keep: bool = True) -> Event:
        return self._sign(who, "veto", {"proposal": proposal.id, "reason": reason}, at, keep=keep)

    def withdraw(self, who: str, proposal: Event, *, at: str, keep: bool = True) -> Event:
        return self._sign(who, "veto_withdraw", {"proposal": proposal.id}, at, keep=keep)

    def vote(self, who: str, proposal: Event, choice: str, *, at: str, keep: bool = True) -> Event:
        return self._sign(who, "vote", {"proposal": proposal.id, "choice": choice}, at, keep=keep)

    def delegate(self, who: str, to: str | None, *, at: str, proposal: Event | None = None,
                 keep: bool = True) -> Event:
        body = {"to": pub(to) if to else None, "proposal": proposal.id if proposal else None}
        return self._sign(who, "delegation", body, at, keep=keep)

    def comment(self, who: str, on: Event, text: str, *, at: str, keep: bool = True) -> Event:
        return self._sign(who, "comment", {"proposal": on.id, "text": text}, at, keep=keep)

    # -- chapter node acts -------------------------------------------------------------

    def vouch(self, chapter: str, who: str, *, at: str, active: bool = True,
              keep: bool = True) -> Event:
        return self._sign(chapter, "member", {"key": pub(who), "active": active}, at,
                          chapter=chapter, keep=keep)

    def move(self, chapter: str, url: str, *, at: str, keep: bool = True) -> Event:
        return self._sign(chapter, "chapter_url", {"url": url}, at, chapter=chapter, keep=keep)

    def seal(self, chapter: str, proposal: Event, *, at: str, acts: Iterable[str] | None = None,
             listed: Sequence[str] | None = None, keep: bool = True) -> Event:
        """`chapter` seals `proposal` over `acts` (default: the acts the story holds now).

        `listed` replaces the id list served beside the seal (to tamper with it)."""
        from node.governance import act_set

        ids = sorted(acts) if acts is not None else sorted(a.id for a in act_set(proposal, self.events))
        timeline = self.timeline()
        subset = [e for e in self.events if e.id in set(ids)]
        result = tally_of(proposal, subset, timeline, self.charter.rules)
        body = {"proposal": proposal.id, "acts_root": acts_root(ids), "acts_count": len(ids),
                "tally": result.to_json(), "tally_hash": tally_hash(result)}
        event = self._sign(chapter, "seal", body, at, chapter=chapter, keep=keep)
        if keep:
            self.sealed[event.id] = list(listed if listed is not None else ids)
        return event

    # -- reading the story -------------------------------------------------------------

    def timeline(self, events: Iterable[Event] | None = None) -> Timeline:
        return Timeline.build(self.charter, self.events if events is None else events, self.sealed)

    def decide(self, proposal: Event, *, now: str = "2027-01-01 00:00",
               recorded: Recorded | None = None) -> Decision:
        return decide(proposal, self.events, self.timeline(), self.charter.rules, self.sealed,
                      ms(now), recorded)

    def report(self, proposal: Event, *, now: str = "2027-01-01 00:00",
               recorded: Recorded | None = None):
        """The proposal's one report (governance.evaluate), as the API and the audit give it."""
        from node.governance import evaluate

        return evaluate(self.timeline(), proposal, self.events, (), self.sealed, now_ms=ms(now),
                        recorded=recorded)

    def check(self, event: Event, *, escalated: tuple[str, int] | None = None) -> None:
        """Admissibility of `event` against the story so far (the node's lookups, by hand)."""
        held = {e.id: e for e in self.events}
        proposal = held.get(event.proposal) if event.proposal else None
        return check(event, registry=self.timeline().at(event.created_ms),
                     rules=self.charter.rules, proposal=proposal, escalated=escalated)

    def at(self, when: str) -> str:
        return format_ms(ms(when))
