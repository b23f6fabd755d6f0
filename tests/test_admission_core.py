"""The admission core and its pipeline (node.ingest.admission, node.ingest.pipeline) without
SQLite: generated federations, generated batches (forged signatures, duplicates, events the
node already holds, any order, any step size), an in-memory store.

The pipeline admits a peer's events before their signatures are verified, commits in groups
and judges again when a signature fails. Whatever happens, every line's outcome and what is
stored must be what the plainest reading of PROTOCOL §2 gives: the lines in §5 order, one at
a time, each signature checked first, each event judged against everything stored before it.
A last test runs the same batches through a real node (`ChapterNode`, SQLite) and asks for
the same outcomes, so the store's look-ups answer as the in-memory ones.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import governance as gov
from node.chapter.chapter_node import ChapterNode
from node.ingest import admission as core
from node.ingest import pipeline
from node.ingest.checks import PendingEvent, check_lines
from node.protocol.errors import ChapterNodeError
from node.protocol.events import Event, b64url, canonical
from node.protocol.times import parse_ms
from node.store import open_store

from .conftest import person_key
from .governance_story import CONNECTORS, Story, ms

NOW = "2026-11-04 10:00"
MEMBERS = ("chloe", "pablo", "giulia", "nora")
PEOPLE = (*CONNECTORS, *MEMBERS)


def forged(event: Event) -> bytes:
    """`event` signed by someone else: well formed, its signature does not verify."""
    obj = json.loads(event.canonical)
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    obj["sig"] = b64url(person_key("mallory").sign(canonical(unsigned)).signature)
    return canonical(obj)


class MemoryLedger:
    """The store as the pipeline asks it, in a dict."""

    def __init__(self, story: Story, held: Iterable[Event] = ()) -> None:
        self.story = story
        self.events: dict[str, Event] = {e.id: e for e in held}
        self.commits = 0

    def head(self) -> int:
        return len(self.events)

    def held(self, ids: list[str]) -> set[str]:
        return {i for i in ids if i in self.events}

    def proposals_named(self, ids: Iterable[str]) -> dict[str, Event]:
        return {i: self.events[i] for i in ids if i in self.events}

    def timeline(self) -> gov.Timeline:
        return gov.Timeline.build(self.story.charter,
                                  gov.registry_relevant(self.events.values()), {})

    def effect_ids(self) -> set[str]:
        effects = [e for e in self.events.values() if gov.has_effect(e)]
        return {e.id for e in effects} | gov.escalation_sources(effects)

    def escalated(self, proposal: Event) -> gov.Escalated | None:
        timeline, rules = self.timeline(), self.story.charter.rules

        def outcome(source: Event) -> str:
            acts = gov.act_set(source, self.events.values())
            return gov.tally(source, list(gov.admitted_acts(acts, timeline)), timeline,
                             rules).outcome

        return gov.escalated_from(proposal, self.events.get, lambda s: True, outcome)

    def commit(self, events: list[Event], origin: str, now_ms: int,
               confirm: Callable[[], bool]) -> list[bool] | None:
        if not confirm():
            return None
        self.commits += 1
        fresh = []
        for event in events:
            fresh.append(event.id not in self.events)
            self.events.setdefault(event.id, event)
        return fresh

    def accept_sealed(self, value: Any) -> str:  # pragma: no cover - no sealed lines here
        raise AssertionError("no sealed lines in these batches")


def context(story: Story, *, client: bool) -> core.Context:
    charter = story.charter
    return core.Context(rules=charter.rules, charter_ms=parse_ms(charter.created_at),
                        charter_created_at=charter.created_at, now_ms=ms(NOW),
                        own_chapter="paris" if client else None)


def run_pipeline(story: Story, held: list[Event], lines: list[bytes], *, client: bool,
                 step: int = pipeline.RECEIVE_STEP) -> tuple[list[core.Outcome], set[str]]:
    ledger = MemoryLedger(story, held)
    with mock.patch.object(pipeline, "RECEIVE_STEP", step):
        steps = pipeline.ingest_steps(lines, ledger, context(story, client=client),
                                      federation=story.charter.id, origin="rome", verifier=None)
        try:
            while True:
                next(steps)
        except StopIteration as done:
            outcomes = done.value
    return outcomes, set(ledger.events)


def one_at_a_time(story: Story, held: list[Event], lines: list[bytes], *,
                  client: bool) -> tuple[list[core.Outcome], set[str]]:
    """PROTOCOL §2 read plainly: §5 order, each signature first, each event alone."""
    ledger = MemoryLedger(story, held)
    ctx = context(story, client=client)
    checked = check_lines(lines, federation=story.charter.id)
    outcomes: list[core.Outcome | None] = [None] * len(lines)
    todo: list[tuple[int, PendingEvent]] = []
    for i, item in enumerate(checked):
        if isinstance(item, PendingEvent):
            todo.append((i, item))
        else:  # no sealed lines in these batches
            outcomes[i] = core.Outcome.refused(None, item)
    for i, item in sorted(todo, key=lambda p: p[1].order_key):
        if item.id in ledger.events:
            outcomes[i] = core.Outcome(item.id, "duplicate")
            continue
        if not item.verdict():
            outcomes[i] = core.Outcome(None, "refused", "bad_signature")
            continue
        event = item.event()
        ref = gov.needs_proposal(event)
        try:
            core.admissible(event, proposal=ledger.events.get(ref) if ref else None,
                            escalated=ledger.escalated(event) if event.type == "proposal"
                            else None,
                            registry=ledger.timeline().at(event.created_ms), context=ctx)
        except ChapterNodeError as e:
            outcomes[i] = core.Outcome(event.id, "refused", e.code)
            continue
        ledger.commit([event], "rome", ctx.now_ms, lambda: True)
        outcomes[i] = core.Outcome(event.id, "stored")
    return [o for o in outcomes if o is not None], set(ledger.events)


def said(outcomes: list[core.Outcome]) -> list[tuple[str | None, str, str | None]]:
    return [(o.id, o.status, o.code) for o in outcomes]


# --- generated federations and batches ---------------------------------------------------

KINDS = ("consent", "vote", "action")


@st.composite
def federations(draw: st.DrawFn, *, client: bool) -> tuple[Story, list[Event]]:
    """A story of 4-28 events: proposals, acts on them (some on proposals left out of every
    batch), delegations, and member vouches that change the registry mid-batch."""
    s = Story()
    proposals: list[Event] = []
    ghosts: list[Event] = []  # proposals no one holds: acts on them are refused
    # a client writes within the grace of now; a peer relays anything, the future included
    day = st.sampled_from(["2026-11-02 10", "2026-11-03 12", "2026-11-04 09", "2026-11-09 10"])
    for _ in range(draw(st.integers(4, 28))):
        if client:
            at = f"2026-11-04 09:{draw(st.integers(56, 59)):02d}:{draw(st.integers(0, 59)):02d}"
        else:
            at = f"{draw(day)}:{draw(st.integers(0, 59)):02d}"
        # a client's node takes its own chapter's events: Amélie, and Chloé once vouched
        who = draw(st.sampled_from(("amelie", "chloe", "chloe", "marco") if client else PEOPLE))
        move = draw(st.sampled_from(["propose", "act", "act", "act", "comment", "delegate",
                                     "vouch", "ghost"]))
        if move == "propose" or not proposals:
            kind = draw(st.sampled_from(KINDS))
            closes = None if kind == "action" else draw(
                st.sampled_from(["2026-11-07 12:00", "2026-11-08 12:00", "2026-11-04 12:00"]))
            proposals.append(s.propose(who, kind, at=at, closes=closes))
        elif move == "ghost":
            ghost = s.propose(who, "consent", at=at, closes="2026-11-08 12:00", keep=False)
            ghosts.append(ghost)
            s.comment(who, ghost, "on a proposal never sent", at=at)
        elif move == "act":
            target = draw(st.sampled_from(proposals))
            act = draw(st.sampled_from(["veto", "endorse", "vote", "withdraw"]))
            if act == "veto":
                s.veto(who, target, at=at)
            elif act == "endorse":
                s.endorse(who, target, at=at)
            elif act == "vote":
                s.vote(who, target, draw(st.sampled_from(["yes", "no", "abstain"])), at=at)
            else:
                s.withdraw(who, target, at=at)
        elif move == "comment":
            s.comment(who, draw(st.sampled_from(proposals)), "a thought", at=at)
        elif move == "delegate":
            to = draw(st.sampled_from([*PEOPLE, None]))
            on = draw(st.sampled_from([*proposals, None]))
            s.delegate(who, to, at=at, proposal=on)
        else:
            member = draw(st.sampled_from(("chloe",) if client else MEMBERS))
            chapter = "paris" if client else draw(st.sampled_from(["paris", "rome", "barcelona"]))
            s.vouch(chapter, member, at=at, active=draw(st.booleans()))
    return s, list(s.events)


@st.composite
def batches(draw: st.DrawFn, *, client: bool
            ) -> tuple[Story, list[Event], list[bytes], int]:
    """(story, events held before, lines in sending order, step size)."""
    s, events = draw(federations(client=client))
    held = [e for e in events if draw(st.integers(0, 5)) == 0]
    lines: list[bytes] = []
    for event in events:
        copies = draw(st.sampled_from([0, 1, 1, 1, 2]))
        for _ in range(copies):
            lines.append(forged(event) if draw(st.integers(0, 6)) == 0 else event.canonical)
    lines = draw(st.permutations(lines))
    return s, held, lines, draw(st.sampled_from([1, 2, 3, 5, 250]))


SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("client", [False, True], ids=["peer batch", "client group"])
@SETTINGS
@given(data=st.data())
def test_a_batch_is_judged_as_one_event_at_a_time_with_signatures_first(client, data) -> None:
    s, held, lines, step = data.draw(batches(client=client))
    got, stored = run_pipeline(s, held, lines, client=client, step=step)
    want, want_stored = one_at_a_time(s, held, lines, client=client)
    assert said(got) == said(want)
    assert stored == want_stored
    if client:  # a client is told the event it sent, or why not
        assert all((o.event is not None) == (o.status != "refused") and
                   (o.error is not None) == (o.status == "refused") for o in got)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(client=False), st.randoms(use_true_random=False))
def test_the_order_of_a_batch_changes_nothing(batch, random) -> None:
    s, held, lines, step = batch
    first, stored = run_pipeline(s, held, lines, client=False, step=step)
    order = list(range(len(lines)))
    random.shuffle(order)
    again, stored_again = run_pipeline(s, held, [lines[k] for k in order], client=False,
                                       step=step)
    assert stored_again == stored
    assert (Counter(zip(lines, said(first)))
            == Counter(zip((lines[k] for k in order), said(again))))


def test_the_generator_makes_what_the_properties_need() -> None:
    """The generated batches reach every path: forged signatures that roll a commit back,
    registry events committed mid-step, refusals by rule, duplicates, events held."""
    seen: Counter[str] = Counter()

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batches(client=False))
    def count(batch) -> None:
        s, held, lines, step = batch
        ledger_commits = []
        original = MemoryLedger.commit

        def counting(self, events, origin, now_ms, confirm):  # type: ignore[no-untyped-def]
            fresh = original(self, events, origin, now_ms, confirm)
            ledger_commits.append(fresh is None)
            return fresh

        with mock.patch.object(MemoryLedger, "commit", counting):
            outcomes, _ = run_pipeline(s, held, lines, client=False, step=step)
        seen["rolled back"] += any(ledger_commits)
        seen["several commits"] += len(ledger_commits) > 2
        for o in outcomes:
            seen[o.code or o.status] += 1

    count()
    for path in ("rolled back", "several commits", "bad_signature", "duplicate", "stored",
                 "unknown_proposal", "after_close"):
        assert seen[path] > 0, (path, seen)
    assert sum(n for code, n in seen.items() if code in gov.REFUSAL_CODES) > 20, seen


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(client=False))
def test_a_node_on_sqlite_gives_the_outcomes_of_the_core(tmp_path_factory, batch) -> None:
    s, held, lines, step = batch
    want, want_stored = run_pipeline(s, held, lines, client=False, step=step)
    path: Path = tmp_path_factory.mktemp("node") / "paris.db"
    node = ChapterNode(open_store(path), s.charter, "paris", person_key("node paris"))
    if held:
        node.store.insert_events(held, origin="rome", received_ms=ms(NOW))
    with mock.patch.object(pipeline, "RECEIVE_STEP", step):
        got = node.receive(lines, origin="rome", now_ms=ms(NOW))
    assert said(got) == said(want)
    assert node.store.known(list(want_stored | {o.id for o in got if o.id})) == want_stored
