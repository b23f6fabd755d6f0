"""Properties of the tally that must hold for every set of events (hypothesis).

The tally never verifies signatures (ingest did), so these tests build events directly with
a content-hash id and no real signature: thousands of examples stay fast.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from node.governance import (
    Chapter,
    Connector,
    Registry,
    tally,
    tally_hash,
    vote_resolution,
)
from node.protocol.charter import Rules
from node.protocol.events import Event, canonical
from node.protocol.times import format_ms

CLOSE = 1_800_000_000_000
OPEN = CLOSE - 4 * 86_400_000
PEOPLE = [f"{'abcdefghij'[i]}" * 42 + "A" for i in range(10)]  # valid-looking 43-char keys
CONNECTORS = PEOPLE[:8]  # the last two are members, not Connectors
RULES = Rules()
REGISTRY = Registry(
    CLOSE,
    MappingProxyType({"paris": Chapter("paris", "n" * 42 + "A", "https://paris.example")}),
    MappingProxyType({k: Connector(k, f"C{i}", "paris") for i, k in enumerate(CONNECTORS)}),
)


def fake(type: str, author: str, at_ms: int, body: dict[str, Any]) -> Event:
    obj = {"v": 1, "federation": "f" * 64, "type": type, "chapter": "paris", "author": author,
           "created_at": format_ms(at_ms), "body": body, "sig": "s" * 86}
    raw = canonical(obj)
    return Event(id=hashlib.sha256(raw).hexdigest(), v=1, federation="f" * 64, type=type,
                 chapter="paris", author=author, created_at=obj["created_at"], body=body,
                 sig="s" * 86, created_ms=at_ms, canonical=raw)


def proposal(kind: str) -> Event:
    body: dict[str, Any] = {"title": "P", "text": "", "kind": kind}
    if kind != "action":
        body["closes_at"] = format_ms(CLOSE)
    return fake("proposal", CONNECTORS[0], OPEN, body)


VOTE, CONSENT, ACTION = proposal("vote"), proposal("consent"), proposal("action")

# Times: a handful of instants before the close (collisions on purpose: ties break by id).
before_close = st.sampled_from([OPEN + 60_000 * k for k in (1, 2, 3, 5, 8)] + [CLOSE])
person = st.sampled_from(PEOPLE)


@st.composite
def vote_act(draw: st.DrawFn, at: st.SearchStrategy[int] = before_close) -> Event:
    who, when = draw(person), draw(at)
    what = draw(st.sampled_from(["vote", "vote", "specific", "global"]))
    if what == "vote":
        return fake("vote", who, when, {"proposal": VOTE.id,
                                        "choice": draw(st.sampled_from(["yes", "no", "abstain"]))})
    to = draw(st.one_of(st.none(), person))
    return fake("delegation", who, when,
                {"to": to, "proposal": VOTE.id if what == "specific" else None})


@st.composite
def consent_act(draw: st.DrawFn, at: st.SearchStrategy[int] = before_close) -> Event:
    who, when = draw(person), draw(at)
    kind = draw(st.sampled_from(["veto", "veto_withdraw", "endorse"]))
    body = {"proposal": CONSENT.id} | ({"reason": "no"} if kind == "veto" else {})
    return fake(kind, who, when, body)


vote_acts = st.lists(vote_act(), max_size=40)
after_close = st.integers(CLOSE + 1, CLOSE + 86_400_000)


def oracle(acts: Sequence[Event]) -> dict[str, int]:
    """§5 read literally, with none of the engine's memoisation: the reference to compare to."""
    acts = [a for a in acts if a.created_ms <= CLOSE]
    # §4: only admissible acts are held: a Connector's, delegating to another Connector
    acts = [a for a in acts if a.author in CONNECTORS and (
        a.type != "delegation" or a.body["to"] is None
        or (a.body["to"] != a.author and a.body["to"] in CONNECTORS))]

    def latest(author: str, kind: str, target: str | None) -> Event | None:
        mine = [a for a in acts if a.author == author and a.type == kind
                and a.body.get("proposal") == target]
        return max(mine, key=lambda a: a.order_key, default=None)

    counts = {"yes": 0, "no": 0, "abstain": 0, "not_cast": 0}
    for c in CONNECTORS:
        cur, seen = c, set()
        while True:
            direct = latest(cur, "vote", VOTE.id) if cur in CONNECTORS else None
            if cur not in CONNECTORS or cur in seen:
                counts["not_cast"] += 1
                break
            if direct is not None:
                counts[direct.body["choice"]] += 1
                break
            seen.add(cur)
            d = latest(cur, "delegation", VOTE.id) or latest(cur, "delegation", None)
            if d is None or d.body["to"] is None:
                counts["not_cast"] += 1
                break
            cur = d.body["to"]
    return counts


@settings(max_examples=300, deadline=None)
@given(acts=vote_acts, data=st.data())
def test_any_permutation_or_duplication_gives_the_same_tally_hash(acts: list[Event], data: st.DataObject) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(acts), max_size=10)) if acts else []
    shuffled = data.draw(st.permutations(acts + duplicates))
    first, second = tally(VOTE, acts, REGISTRY, RULES), tally(VOTE, shuffled, REGISTRY, RULES)
    assert tally_hash(first) == tally_hash(second)
    assert (vote_resolution(VOTE, acts, REGISTRY).traces()
            == vote_resolution(VOTE, shuffled, REGISTRY).traces())


@settings(max_examples=300, deadline=None)
@given(acts=vote_acts)
def test_the_engine_agrees_with_the_spec_read_literally(acts: list[Event]) -> None:
    result = tally(VOTE, acts, REGISTRY, RULES)
    expected = oracle(acts)
    assert {k: getattr(result, k) for k in expected} == expected
    assert result.yes + result.no + result.abstain + result.not_cast == result.eligible == 8


@settings(max_examples=200, deadline=None)
@given(acts=vote_acts, choice=st.sampled_from(["yes", "no", "abstain"]), who=st.sampled_from(CONNECTORS))
def test_a_direct_vote_always_overrides_delegation(acts: list[Event], choice: str, who: str) -> None:
    mine = fake("vote", who, CLOSE, {"proposal": VOTE.id, "choice": choice})
    others_at_close = [a for a in acts if not (a.author == who and a.type == "vote")]
    trace = vote_resolution(VOTE, others_at_close + [mine], REGISTRY).trace(who)
    assert (trace.reason, trace.counted_as, trace.hops) == ("direct", choice, 0)


@settings(max_examples=200, deadline=None)
@given(acts=vote_acts, who=st.sampled_from(CONNECTORS), to=st.sampled_from(CONNECTORS))
def test_a_proposal_specific_revoke_beats_a_global_delegation(acts: list[Event], who: str, to: str) -> None:
    acts = [a for a in acts if a.created_ms < CLOSE]
    global_one = fake("delegation", who, CLOSE, {"to": to, "proposal": None})  # the latest global
    revoke = fake("delegation", who, CLOSE - 1, {"to": None, "proposal": VOTE.id})
    trace = vote_resolution(VOTE, acts + [global_one, revoke], REGISTRY).trace(who)
    assert trace.hops == 0 and trace.reason in ("direct", "no_vote")


@st.composite
def with_a_cycle(draw: st.DrawFn) -> tuple[list[Event], list[str], list[Event]]:
    """Random vote acts, plus a ring of 2-5 Connectors who delegate round to each other and
    whom nobody's later act takes out of the ring (none of them votes or re-delegates)."""
    ring = draw(st.lists(st.sampled_from(CONNECTORS), min_size=2, max_size=5, unique=True))
    others = [a for a in draw(vote_acts) if a.author not in ring]
    links = [fake("delegation", a, CLOSE - 1, {"to": b, "proposal": draw(st.sampled_from(
        [VOTE.id, None]))}) for a, b in zip(ring, ring[1:] + ring[:1])]
    return others, ring, links


@settings(max_examples=200, deadline=None)
@given(case=with_a_cycle(), data=st.data())
def test_a_cycle_never_counts(case, data: st.DataObject) -> None:
    others, ring, links = case
    acts = data.draw(st.permutations(others + links))
    resolution = vote_resolution(VOTE, acts, REGISTRY)
    traces = {t.connector: t for t in resolution.traces()}
    cycles = [traces[k] for k in ring if traces[k].reason == "cycle"]
    assert len(cycles) == len(ring)  # every generated ring is found, whatever the order
    assert all(t.counted_as == "not_cast" for t in cycles)
    for trace in traces.values():
        if trace.counted_as != "not_cast":
            assert len(set(trace.path)) == len(trace.path)  # a counted path never repeats a key


def test_a_cycle_with_a_lead_in_is_not_cast_and_the_rest_still_counts() -> None:
    a, b, c, d, e = CONNECTORS[:5]
    acts = [fake("delegation", x, OPEN + 1000, {"to": y, "proposal": None})
            for x, y in ((a, b), (b, c), (c, a), (d, a))]
    acts.append(fake("vote", e, OPEN + 2000, {"proposal": VOTE.id, "choice": "yes"}))
    resolution = vote_resolution(VOTE, acts, REGISTRY)
    assert [resolution.trace(k).reason for k in (a, b, c, d, e)] == ["cycle"] * 4 + ["direct"]
    assert resolution.trace(d).stopped_at == a and resolution.trace(a).stopped_at == a
    assert resolution.trace(d).path == (a, b, c, a)
    assert tally(VOTE, acts, REGISTRY, RULES).yes == 1


@settings(max_examples=200, deadline=None)
@given(acts=vote_acts, late=st.lists(vote_act(at=after_close), min_size=1, max_size=5))
def test_adding_votes_dated_after_the_close_changes_nothing(acts: list[Event], late: list[Event]) -> None:
    assert tally_hash(tally(VOTE, acts, REGISTRY, RULES)) == tally_hash(
        tally(VOTE, acts + late, REGISTRY, RULES))


@settings(max_examples=200, deadline=None)
@given(acts=st.lists(consent_act(), max_size=30), data=st.data(),
       late=st.lists(consent_act(at=after_close), max_size=5))
def test_consent_tallies_ignore_order_duplicates_and_late_acts(
        acts: list[Event], data: st.DataObject, late: list[Event]) -> None:
    shuffled = data.draw(st.permutations(acts + acts[:3] + late))
    assert tally(CONSENT, acts, REGISTRY, RULES) == tally(CONSENT, shuffled, REGISTRY, RULES)


@settings(max_examples=200, deadline=None)
@given(endorsers=st.lists(person, max_size=12), times=st.data())
def test_action_green_light_ignores_order_and_duplicates(endorsers: list[str], times: st.DataObject) -> None:
    acts = [fake("endorse", who, times.draw(before_close), {"proposal": ACTION.id})
            for who in endorsers]
    shuffled = times.draw(st.permutations(acts + acts[:2]))
    result = tally(ACTION, acts, REGISTRY, RULES)
    assert result == tally(ACTION, shuffled, REGISTRY, RULES)
    distinct = {CONNECTORS[0]} | {w for w in endorsers if w in CONNECTORS}
    assert result.endorsements == len(distinct)
    assert (result.outcome == "adopted") == (len(distinct) >= 3)


# --- the whole pipeline, on real signed events --------------------------------------------


def _signed_story():  # built once: signing is the slow part
    from .governance_story import Story

    story = Story()
    story.vouch("rome", "giulia", at="2026-11-01 09:00")
    appoint = story.propose("marco", "consent", at="2026-11-20 10:00", closes="2026-11-23 10:00",
                            effect={"appoint_connector": {"key": Story.key("giulia"),
                                                          "name": "Giulia", "chapter": "rome"}})
    story.veto("jonas", appoint, at="2026-11-21 10:00")
    story.withdraw("jonas", appoint, at="2026-11-21 10:00")  # same instant: the id decides
    vote = story.propose("lucia", "vote", at="2026-11-23 12:00", closes="2026-11-26 12:00")
    story.delegate("sofia", "giulia", at="2026-11-23 09:00")
    story.delegate("jonas", "sofia", at="2026-11-24 09:00", proposal=vote)
    story.vote("giulia", vote, "yes", at="2026-11-24 10:00")
    story.vote("marco", vote, "no", at="2026-11-24 10:00")
    story.vote("marco", vote, "yes", at="2026-11-26 12:00:01")  # late
    story.seal("paris", vote, at="2026-11-26 12:05")
    story.seal("rome", vote, at="2026-11-26 12:06")
    return story, vote


SIGNED, SIGNED_VOTE = _signed_story()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_whole_decision_is_the_same_for_any_arrival_order(data: st.DataObject) -> None:
    from node.governance import Timeline, evaluate

    events = SIGNED.events
    shuffled = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events), max_size=6))))
    decisions = [evaluate(Timeline.build(SIGNED.charter, evs, SIGNED.sealed), SIGNED_VOTE, evs, (),
                          SIGNED.sealed, now_ms=CLOSE).to_json()
                 for evs in (events, shuffled)]
    assert canonical(decisions[0]) == canonical(decisions[1])
