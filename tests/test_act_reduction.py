"""A proposal's report from its essential acts equals the report from every act it holds.

`Store.essential_acts` hands the tally only each author's earliest and latest act per type,
scope and registry segment, so that one Connector signing thousands of acts cannot make
every report read thousands of events (hardening campaign 6, act-set amplification). These
tests check, over random act sets with a Connector appointed and another removed in the
middle, that nothing a node reports changes: tally, tally_hash, state, finality, the
green-light time and the per-Connector vote trace. The acts are stored as a peer keeps them,
admissible or not (sofia after her removal, giulia before her appointment, delegations to
non-Connectors): the reduction must not let an inadmissible act hide an admissible one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import governance as gov
from node.store import open_store

from .governance_story import Story, ms

APPOINTED = "2026-11-05 10:00"  # giulia becomes a Connector
REMOVED = "2026-11-07 10:00"  # sofia stops being one
CLOSE = "2026-11-09 10:00"
INSTANTS = ["2026-11-03 11:00", "2026-11-05 09:59:59", APPOINTED, "2026-11-06 12:00", REMOVED,
            "2026-11-08 00:00", CLOSE, "2026-11-09 10:00:01", "2026-11-10 08:00"]
PEOPLE = ["amelie", "marco", "lucia", "jonas", "sofia", "giulia", "chloe"]


def world() -> tuple[Story, dict[str, object]]:
    story = Story()
    story.propose("marco", "consent", title="Giulia becomes a Connector", at="2026-11-01 10:00",
                  closes=APPOINTED, effect={"appoint_connector": {
                      "key": Story.key("giulia"), "name": "Giulia", "chapter": "rome"}})
    story.propose("amelie", "consent", title="Sofia steps down", at="2026-11-02 10:00",
                  closes=REMOVED, effect={"remove_connector": {"key": Story.key("sofia")}})
    targets = {
        "consent": story.propose("lucia", "consent", at="2026-11-03 10:00", closes=CLOSE),
        "vote": story.propose("jonas", "vote", at="2026-11-03 10:00", closes=CLOSE),
        "action": story.propose("chloe", "action", at="2026-11-03 10:00"),
    }
    return story, targets


act = st.tuples(
    st.sampled_from(["endorse", "endorse", "veto", "withdraw", "vote", "vote", "specific",
                     "global"]),
    st.sampled_from(PEOPLE), st.sampled_from(INSTANTS), st.sampled_from(["consent", "vote", "action"]),
    st.sampled_from(["yes", "no", "abstain"]), st.sampled_from([None, *PEOPLE]),
)


def write(story: Story, targets: dict[str, object], acts: list[tuple]) -> None:
    for what, who, when, target, choice, to in acts:
        p = targets[target]
        if what == "endorse":
            story.endorse(who, p, at=when)
        elif what == "veto":
            story.veto(who, p, at=when)
        elif what == "withdraw":
            story.withdraw(who, p, at=when)
        elif what == "vote":
            story.vote(who, p, choice, at=when)
        else:
            story.delegate(who, to, at=when, proposal=p if what == "specific" else None)


def reports(store, timeline, proposal, now: int) -> tuple[dict, dict]:
    close = gov.closes_ms(proposal)
    chapters, connectors = timeline.ever()
    every = store.events_of(proposal=proposal.id, global_delegations=True)
    essential = store.essential_acts(proposal.id, close_ms=close,
                                     globals_too=gov.kind_of(proposal) != "action",
                                     change_points=timeline.change_points(),
                                     chapters=chapters, connectors=connectors, small=0)
    out = []
    for acts in (every, essential):
        r = gov.evaluate(timeline, proposal, acts, [], {}, now_ms=now, trace=True)
        out.append({"tally": r.tally, "tally_hash": r.tally_hash, "state": r.state,
                    "final": r.final, "adopted_at": r.adopted_at, "trace": r.trace,
                    "late": r.late_acts, "missing": r.missing_seals})
    return out[0], out[1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(acts=st.lists(act, max_size=40), now=st.sampled_from(["2026-11-06 00:00", "2026-12-01 00:00"]))
def test_essential_acts_give_the_same_report_as_every_act(acts: list[tuple], now: str) -> None:
    story, targets = world()
    write(story, targets, acts)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "node.db")
        store.insert_events(story.events, origin="test", received_ms=0)
        timeline = story.timeline()
        assert timeline.change_points() == (ms(APPOINTED), ms(REMOVED))
        for proposal in targets.values():
            every, essential = reports(store, timeline, proposal, ms(now))
            assert essential == every
        store.close()


def test_one_connectors_thousand_endorsements_leave_sqlite_as_two() -> None:
    story, targets = world()
    action = targets["action"]
    for i in range(1000):
        story.endorse("marco", action, at=f"2026-11-05 {10 + i // 3600}:{i // 60 % 60:02d}:{i % 60:02d}")
    story.endorse("marco", action, at="2026-11-06 18:00")  # his last: not when he counted
    story.endorse("lucia", action, at="2026-11-06 12:00")
    story.endorse("giulia", action, at="2026-11-03 11:00")  # not yet a Connector: does not count
    story.endorse("giulia", action, at="2026-11-06 13:00")  # now one: the green light
    story.endorse("giulia", action, at="2026-11-08 00:00")  # again: changes nothing
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "node.db")
        store.insert_events(story.events, origin="test", received_ms=0)
        timeline = story.timeline()
        chapters, connectors = timeline.ever()
        essential = store.essential_acts(action.id, close_ms=None, globals_too=False,
                                         change_points=timeline.change_points(),
                                         chapters=chapters, connectors=connectors, small=0)
        marco = [a for a in essential if a.author == Story.key("marco")]
        assert len(marco) == 2  # his first and his last endorsement, nothing between
        every, reduced = reports(store, timeline, action, ms("2026-12-01 00:00"))
        assert reduced == every
        assert every["tally"]["outcome"] == "adopted"
        assert every["adopted_at"] == "2026-11-06T13:00:00.000Z"
        store.close()
