"""Counted seals, the final act set, finality, equivocation and the lifecycle (§6, §7).

Story: Amélie's consent proposal closes on 27 Nov at 10:00 (grace 5 min, seal timeout 24 h),
so seals are due from 10:05 and count until 28 Nov 10:05.
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from node.governance import (
    INITIAL,
    STATES,
    TRANSITIONS,
    Recorded,
    act_set,
    can_move,
    final_acts,
    finality,
    review_seals,
)
from node.protocol.events import Event

from .governance_story import Story, ms

CLOSE, SEALS_DUE, TIMEOUT = "2026-11-27 10:00", "2026-11-27 10:05", "2026-11-28 10:05"


def opened() -> tuple[Story, Event, Event]:
    """Amélie's proposal with Lucía's endorsement and Marco's veto, withdrawn at the last minute."""
    story = Story()
    p = story.propose("amelie", "consent", title="Lyon", at="2026-11-24 10:00", closes=CLOSE)
    story.endorse("lucia", p, at="2026-11-24 12:00")
    story.veto("marco", p, at="2026-11-25 09:00")
    withdraw = story.withdraw("marco", p, at="2026-11-27 09:59:59", keep=False)
    return story, p, withdraw


def review(story: Story, p: Event):
    timeline = story.timeline()
    return review_seals(p, [e for e in story.events if e.type == "seal"], story.sealed,
                        timeline.at_close(p), story.charter.rules)


def test_every_chapter_seals_the_same_acts_and_the_proposal_is_final() -> None:
    story, p, withdraw = opened()
    story.events.append(withdraw)
    for chapter in ("paris", "rome", "barcelona", "berlin"):
        story.seal(chapter, p, at=SEALS_DUE)
    decision = story.decide(p, now="2026-11-27 10:06")
    assert (decision.finality.final, decision.finality.reason) == (True, "all_sealed")
    assert decision.state.state == "final" and decision.tally.outcome == "adopted"
    assert all(s["agrees"] for s in story.report(p, now="2026-11-27 10:06").seals)


def test_the_final_act_set_is_the_union_of_the_counted_seals() -> None:
    story, p, withdraw = opened()
    story.seal("paris", p, at=SEALS_DUE)  # Paris never saw the withdrawal: vetoed in its view
    story.events.append(withdraw)  # Rome held it (Marco voted through Rome)
    story.seal("rome", p, at=SEALS_DUE)
    assert review(story, p).union == {a.id for a in act_set(p, story.events)}
    assert story.decide(p).tally.outcome == "adopted"
    seals = {s["chapter"]: s["agrees"] for s in story.report(p, now=TIMEOUT + ":01").seals}
    assert seals == {"paris": False, "rome": True}


def test_an_act_in_no_counted_seal_is_left_out() -> None:
    story, p, withdraw = opened()
    for chapter in ("paris", "rome"):
        story.seal(chapter, p, at=SEALS_DUE)
    story.events.append(withdraw)  # reached this node only after both seals were made
    acts = final_acts(p, story.events, review(story, p))
    assert withdraw not in acts
    assert story.decide(p).tally.outcome == "vetoed"


def test_without_counted_seals_every_act_dated_by_close_counts() -> None:
    story, p, withdraw = opened()
    story.events.append(withdraw)
    story.seal("paris", p, at="2026-11-28 10:05:01")  # too late: ignored
    assert review(story, p).counted == ()
    assert withdraw in final_acts(p, story.events, review(story, p))


def test_why_a_seal_does_or_does_not_count() -> None:
    story, p, withdraw = opened()
    story.events.append(withdraw)
    paris = story.seal("paris", p, at=SEALS_DUE)  # counted
    early = story.seal("rome", p, at="2026-11-27 10:04:59")
    late = story.seal("barcelona", p, at="2026-11-28 10:05:01")
    unlisted = story.seal("berlin", p, at=SEALS_DUE)
    del story.sealed[unlisted.id]
    forged = story._sign("rome", "seal", paris.body, SEALS_DUE, chapter="berlin")  # Rome's key
    tampered = story.seal("berlin", p, at="2026-11-27 10:06", listed=[withdraw.id])
    stranger = story._sign("lyon", "seal", paris.body, SEALS_DUE, chapter="lyon")
    story.sealed[stranger.id] = story.sealed[paris.id]
    statuses = {s.seal: s.status for s in review(story, p).seals}
    assert statuses == {
        paris.id: "counted", early.id: "too_early", late.id: "too_late",
        unlisted.id: "list_missing", forged.id: "not_chapter_node", tampered.id: "list_mismatch",
        stranger.id: "not_registered",
    }
    assert [s.seal for s in review(story, p).mismatched] == [tampered.id]


def test_finality_waits_for_every_chapter_until_the_seal_timeout() -> None:
    story, p, withdraw = opened()
    story.events.append(withdraw)
    story.seal("paris", p, at=SEALS_DUE)
    story.seal("rome", p, at=SEALS_DUE)
    held = {e.id for e in story.events}
    at_close, rules = story.timeline().at_close(p), story.charter.rules
    seals = review(story, p)
    waiting = finality(p, seals, held, at_close, rules, ms(TIMEOUT))
    assert (waiting.final, waiting.missing_chapters) == (False, ("barcelona", "berlin"))
    done = finality(p, seals, held, at_close, rules, ms(TIMEOUT) + 1)
    assert (done.final, done.reason, done.missing_chapters) == (True, "timed_out", ("barcelona", "berlin"))


def test_finality_needs_every_listed_act() -> None:
    story, p, withdraw = opened()
    for chapter in ("paris", "rome", "barcelona", "berlin"):
        story.seal(chapter, p, at=SEALS_DUE,
                   acts=[a.id for a in act_set(p, story.events)] + [withdraw.id])
    held = {e.id for e in story.events}  # this node never received the withdrawal
    result = finality(p, review(story, p), held, story.timeline().at_close(p),
                      story.charter.rules, ms("2026-11-27 11:00"))
    assert (result.final, result.missing_acts) == (False, (withdraw.id,))


def test_two_different_seals_from_one_chapter_both_count_and_are_reported() -> None:
    story, p, withdraw = opened()
    first = story.seal("paris", p, at=SEALS_DUE)
    story.events.append(withdraw)
    second = story.seal("paris", p, at="2026-11-27 10:07")
    seals = review(story, p)
    assert [(e.chapter, e.seals) for e in seals.equivocations] == [
        ("paris", tuple(sorted((first.id, second.id))))]
    assert len(seals.counted) == 2 and withdraw.id in seals.union


def test_a_late_counted_seal_after_final_amends_the_tally() -> None:
    story, p, withdraw = opened()
    for chapter in ("paris", "barcelona", "berlin"):
        story.seal(chapter, p, at=SEALS_DUE)  # none of them saw the withdrawal
    timeline_of_states = []
    for now in ("2026-11-26 10:00", "2026-11-27 10:06"):
        timeline_of_states.append(story.decide(p, now=now).state.state)
    first_final = story.decide(p, now="2026-11-28 10:06")  # Rome silent: final by timeout
    assert first_final.state.record == Recorded(first_final.tally_hash)
    timeline_of_states.append(first_final.state.state)
    story.events.append(withdraw)
    story.seal("rome", p, at="2026-11-28 10:00")  # made in time, arrives late
    amended = story.decide(p, now="2026-11-28 12:00", recorded=first_final.state.record)
    timeline_of_states.append(amended.state.state)
    assert timeline_of_states == ["open", "closed", "final", "amended"]
    assert (first_final.tally.outcome, amended.tally.outcome) == ("vetoed", "adopted")
    assert amended.state.amended_from == first_final.tally_hash
    assert amended.state.record == Recorded(amended.tally_hash, first_final.tally_hash)
    again = story.decide(p, now="2026-11-29 12:00", recorded=amended.state.record)
    assert (again.state.state, again.state.record) == ("amended", None)


def test_the_lifecycle_table_allows_every_move_a_story_makes() -> None:
    assert set(INITIAL.values()) <= set(STATES)
    assert {t.source for t in TRANSITIONS} | {t.target for t in TRANSITIONS} <= set(STATES)
    for path in (["open", "closed", "final", "amended", "amended"], ["pending", "adopted"]):
        assert all(can_move(a, b) for a, b in pairwise(path))
    assert not can_move("final", "closed") and not can_move("adopted", "pending")


def test_the_table_drives_the_state(monkeypatch) -> None:
    """Take a transition out of the table and no proposal takes that step any more."""
    from node.governance import lifecycle

    story = Story()
    p = story.propose("amelie", "consent", at="2026-11-24 10:00", closes="2026-11-27 10:00")
    assert story.decide(p, now="2026-11-27 10:30").state.state == "closed"
    monkeypatch.setattr(lifecycle, "TRANSITIONS", tuple(
        t for t in lifecycle.TRANSITIONS if (t.source, t.target) != ("open", "closed")))
    assert story.decide(p, now="2026-11-27 10:30").state.state == "open"


def test_an_action_is_final_once_adopted_and_needs_no_seal() -> None:
    story = Story()
    stall = story.propose("lucia", "action", at="2026-11-24 10:00")
    story.endorse("marco", stall, at="2026-11-24 11:00")
    assert story.decide(stall).finality.final is False
    story.endorse("jonas", stall, at="2026-11-24 12:00")
    decision = story.decide(stall)
    assert (decision.finality.final, decision.seals, decision.state.state) == (True, None, "adopted")
    with pytest.raises(ValueError):
        finality(stall, None, set(), None, story.charter.rules, 0)
