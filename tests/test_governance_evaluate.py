"""`evaluate()`: everything a node reports about one proposal, in one call."""

from __future__ import annotations

import json

import pytest

from node.governance import Escalated, evaluate
from node.protocol.errors import NotAdmissible

from .governance_story import Story, ms
from .test_governance_seals import SEALS_DUE, opened


def split(story: Story, proposal):
    acts = [e for e in story.events if e.type in ("endorse", "veto", "veto_withdraw", "vote", "delegation")]
    seals = [e for e in story.events if e.type == "seal"]
    return acts, seals


def test_a_node_reports_late_acts_missing_seals_and_disagreeing_seals() -> None:
    story, p, withdraw = opened()
    story.seal("paris", p, at=SEALS_DUE)
    story.seal("rome", p, at=SEALS_DUE)
    story.events.append(withdraw)  # arrived after both seals: in no counted seal
    acts, seals = split(story, p)
    result = evaluate(story.timeline(), p, acts, seals, story.sealed, now_ms=ms("2026-12-10 00:00"))
    assert (result.state, result.final, result.tally["outcome"]) == ("final", True, "vetoed")
    assert result.late_acts == [withdraw.id]
    assert result.missing_seals == ["barcelona", "berlin"]
    assert [s["agrees"] for s in result.seals] == [True, True]
    assert result.trace is None  # traces are for votes
    json.dumps([result.tally, result.seals, result.equivocations])  # JSON-ready


def test_without_a_clock_a_proposal_is_judged_as_at_its_close() -> None:
    story, p, _ = opened()
    acts, seals = split(story, p)
    result = evaluate(story.timeline(), p, acts, seals, story.sealed)
    assert (result.state, result.final, result.tally["outcome"]) == ("closed", False, "vetoed")


def test_a_vote_reports_every_connectors_trace() -> None:
    story = Story()
    vote = story.propose("amelie", "vote", at="2026-11-24 10:00", closes="2026-11-27 10:00")
    story.delegate("jonas", "amelie", at="2026-11-25 10:00")
    story.vote("amelie", vote, "no", at="2026-11-25 11:00")
    acts, seals = split(story, vote)
    result = evaluate(story.timeline(), vote, acts, seals, {})
    by_key = {t["connector"]: t for t in result.trace or []}
    assert by_key[Story.key("jonas")]["reason"] == "delegated"
    assert by_key[Story.key("jonas")]["counted_as"] == "no"
    assert len(by_key) == 5


def test_escalation_context_may_be_the_consent_proposal_itself() -> None:
    story = Story()
    fee = story.propose("amelie", "consent", at="2026-11-24 10:00", closes="2026-11-27 10:00")
    action = story.propose("amelie", "action", at="2026-11-24 10:00")
    vote = story.propose("amelie", "vote", at="2026-11-27 11:00", closes="2026-11-30 11:00",
                         escalated_from=fee, keep=False)
    story.check(vote, escalated=Escalated(proposal=fee, outcome="vetoed"))
    wrong = story.propose("amelie", "vote", at="2026-11-27 11:00", closes="2026-11-30 11:00",
                          escalated_from=action, keep=False)
    with pytest.raises(NotAdmissible) as refused:
        story.check(wrong, escalated=Escalated(proposal=action, outcome="vetoed"))
    assert refused.value.code == "bad_escalation"
