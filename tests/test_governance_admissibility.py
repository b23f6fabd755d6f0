"""Admissibility (§4-§6) and deadlines (§6): each refusal, with its stable code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from node.governance import (
    DEADLINE,
    NOT_ADMISSIBLE,
    REFUSAL_CODES,
    Escalated,
    check,
    check_deadline,
    tally_hash,
)
from node.protocol.errors import DeadlinePassed, NotAdmissible
from node.protocol.events import Event, sign_event

from .conftest import person_key
from .governance_story import Story, T, ms

OPENS, CLOSES = "2026-11-24 10:00", "2026-11-27 10:00"


@pytest.fixture
def story() -> Story:
    story = Story()
    story.vouch("paris", "chloe", at="2026-11-01 09:00")
    story.vouch("barcelona", "pablo", at="2026-11-01 09:00")
    story.vouch("barcelona", "pablo", at="2026-11-20 09:00", active=False)  # Pablo left
    return story


def _consent(s: Story) -> Event:
    return s.propose("amelie", "consent", at=OPENS, closes=CLOSES)


def _vote(s: Story) -> Event:
    return s.propose("marco", "vote", at=OPENS, closes=CLOSES)


def _action(s: Story) -> Event:
    return s.propose("lucia", "action", at=OPENS)


def _foreign_seal(s: Story) -> Event:
    p = _consent(s)
    return sign_event(federation=s.charter.id, type="seal", chapter="paris",
                      created_at=T("2026-11-27 10:05"),
                      body={"proposal": p.id, "acts_root": "0" * 64, "acts_count": 0,
                            "tally": {"proposal": p.id, "kind": "consent", "eligible": 5, "yes": 0,
                                      "no": 0, "abstain": 0, "not_cast": 0, "vetoes": 0,
                                      "endorsements": 0, "outcome": "adopted"},
                            "tally_hash": "0" * 64},
                      signing_key=person_key("node rome"))


def _bad_seal_hash(s: Story) -> Event:
    p = _consent(s)
    tally = {"proposal": p.id, "kind": "consent", "eligible": 5, "yes": 0, "no": 0, "abstain": 0,
             "not_cast": 0, "vetoes": 0, "endorsements": 0, "outcome": "adopted"}
    return s._sign("paris", "seal", {"proposal": p.id, "acts_root": "0" * 64, "acts_count": 0,
                                     "tally": tally, "tally_hash": "f" * 64},
                   "2026-11-27 10:05", chapter="paris", keep=False)


def _seal_of_other_kind(s: Story) -> Event:
    p = _consent(s)
    tally = {"proposal": p.id, "kind": "vote", "eligible": 5, "yes": 0, "no": 0, "abstain": 0,
             "not_cast": 5, "vetoes": 0, "endorsements": 0, "outcome": "no_quorum"}
    return s._sign("paris", "seal", {"proposal": p.id, "acts_root": "0" * 64, "acts_count": 0,
                                     "tally": tally, "tally_hash": tally_hash(tally)},
                   "2026-11-27 10:05", chapter="paris", keep=False)


def _unregistered_chapter(s: Story) -> Event:
    return sign_event(federation=s.charter.id, type="comment", chapter="lyon",
                      created_at=T(OPENS), body={"proposal": "a" * 64, "text": "hi"},
                      signing_key=person_key("amelie"))


# (name, the refused event built from the story, the code)
REFUSALS: list[tuple[str, Callable[[Story], Event], str]] = [
    ("an event from an unregistered chapter", _unregistered_chapter, "unknown_chapter"),
    ("Chloé (a member) vetoes", lambda s: s.veto("chloe", _consent(s), at="2026-11-25 10:00", keep=False), "not_connector"),
    ("Chloé endorses", lambda s: s.endorse("chloe", _action(s), at="2026-11-25 10:00", keep=False), "not_connector"),
    ("Chloé delegates", lambda s: s.delegate("chloe", "amelie", at="2026-11-25 10:00", keep=False), "not_connector"),
    ("Chloé votes", lambda s: s.vote("chloe", _vote(s), "yes", at="2026-11-25 10:00", keep=False), "not_connector"),
    ("Chloé withdraws a veto", lambda s: s.withdraw("chloe", _consent(s), at="2026-11-25 10:00", keep=False), "not_connector"),
    ("Chloé opens a vote", lambda s: s.propose("chloe", "vote", at=OPENS, closes=CLOSES, keep=False), "not_vote_author"),
    ("Pablo, no longer vouched, proposes", lambda s: s.propose("pablo", "action", at=OPENS, keep=False), "not_member"),
    ("a stranger comments", lambda s: s.comment("nora", _consent(s), "hello", at="2026-11-25 10:00", keep=False), "not_member"),
    ("Rome's node vouches in Paris's name", lambda s: s._sign("rome", "member", {"key": Story.key("chloe"), "active": True}, "2026-11-25 10:00", chapter="paris", keep=False), "not_chapter_node"),
    ("Amélie signs a chapter_url", lambda s: sign_event(federation=s.charter.id, type="chapter_url", chapter="paris", created_at=T(OPENS), body={"url": "https://x.example"}, signing_key=person_key("amelie")), "not_chapter_node"),
    ("Rome's node seals as Paris", _foreign_seal, "not_chapter_node"),
    ("a veto on an unknown proposal", lambda s: s._sign("marco", "veto", {"proposal": "b" * 64, "reason": "no"}, "2026-11-25 10:00", keep=False), "unknown_proposal"),
    ("a veto on an action", lambda s: s.veto("marco", _action(s), at="2026-11-25 10:00", keep=False), "wrong_proposal_kind"),
    ("a veto withdrawal on a vote", lambda s: s.withdraw("marco", _vote(s), at="2026-11-25 10:00", keep=False), "wrong_proposal_kind"),
    ("a vote on a consent proposal", lambda s: s.vote("marco", _consent(s), "yes", at="2026-11-25 10:00", keep=False), "wrong_proposal_kind"),
    ("an endorsement of a vote", lambda s: s.endorse("marco", _vote(s), at="2026-11-25 10:00", keep=False), "wrong_proposal_kind"),
    ("a delegation for an action", lambda s: s.delegate("marco", "amelie", proposal=_action(s), at="2026-11-25 10:00", keep=False), "wrong_proposal_kind"),
    ("a seal on an action", lambda s: s._sign("paris", "seal", {"proposal": _action(s).id, "acts_root": "0" * 64, "acts_count": 0, "tally": {"proposal": "0" * 64, "kind": "action", "eligible": 0, "yes": 0, "no": 0, "abstain": 0, "not_cast": 0, "vetoes": 0, "endorsements": 0, "outcome": "pending"}, "tally_hash": "0" * 64}, "2026-11-27 10:05", chapter="paris", keep=False), "wrong_proposal_kind"),
    ("a backdated endorsement", lambda s: s.endorse("marco", _consent(s), at="2026-11-24 09:59", keep=False), "act_before_proposal"),
    ("Marco delegates to himself", lambda s: s.delegate("marco", "marco", at="2026-11-25 10:00", keep=False), "self_delegation"),
    ("Marco delegates to Chloé", lambda s: s.delegate("marco", "chloe", at="2026-11-25 10:00", keep=False), "delegate_not_connector"),
    ("a consent proposal open 71 h", lambda s: s.propose("amelie", "consent", at=OPENS, closes="2026-11-27 09:00", keep=False), "closes_too_soon"),
    ("a vote open 1 h", lambda s: s.propose("marco", "vote", at=OPENS, closes="2026-11-24 11:00", keep=False), "closes_too_soon"),
    ("a feedback request closing as it opens", lambda s: s._sign("paris", "feedback_request", {"title": "t", "text": "", "closes_at": T(OPENS)}, OPENS, chapter="paris", keep=False), "closes_too_soon"),
    ("an escalation of an unknown proposal", lambda s: s.propose("marco", "vote", at=OPENS, closes=CLOSES, escalated_from="c" * 64, keep=False), "bad_escalation"),
    # The schema already refuses a blank reason; the rule still holds for events built in code.
    ("a veto whose reason is blank", lambda s: replace(s.veto("marco", _consent(s), at="2026-11-25 10:00", keep=False), body={"proposal": "0" * 64, "reason": " \n"}), "empty_reason"),
    ("Paris seals before the grace period ends", lambda s: s.seal("paris", _consent(s), at="2026-11-27 10:04:59", keep=False), "seal_too_early"),
    ("a seal whose tally_hash is wrong", _bad_seal_hash, "bad_seal"),
    ("a seal whose tally is of another kind", _seal_of_other_kind, "bad_seal"),
    ("Paris vouches for Rome's node key", lambda s: s._sign("paris", "member", {"key": Story.key("node rome"), "active": True}, OPENS, chapter="paris", keep=False), "node_key_as_person"),
    ("appointing a node key", lambda s: s.propose("amelie", "consent", at=OPENS, closes=CLOSES, effect={"appoint_connector": {"key": Story.key("node rome"), "name": "Rome", "chapter": "rome"}}, keep=False), "node_key_as_person"),
    ("appointing Marco again", lambda s: s.propose("amelie", "consent", at=OPENS, closes=CLOSES, effect={"appoint_connector": {"key": Story.key("marco"), "name": "Marco", "chapter": "rome"}}, keep=False), "already_connector"),
    ("removing Chloé, no Connector", lambda s: s.propose("amelie", "consent", at=OPENS, closes=CLOSES, effect={"remove_connector": {"key": Story.key("chloe")}}, keep=False), "effect_not_connector"),
    ("appointing into Lyon, not a chapter", lambda s: s.propose("amelie", "consent", at=OPENS, closes=CLOSES, effect={"appoint_connector": {"key": Story.key("chloe"), "name": "Chloé", "chapter": "lyon"}}, keep=False), "effect_unknown_chapter"),
    ("admitting Rome again", lambda s: s.propose("amelie", "consent", at=OPENS, closes=CLOSES, effect={"admit_chapter": {"slug": "rome", "key": Story.key("node lyon"), "url": "https://lyon.example"}}, keep=False), "chapter_exists"),
]


@pytest.mark.parametrize("build, code", [(b, c) for _, b, c in REFUSALS],
                         ids=[name for name, _, _ in REFUSALS])
def test_refusal(story: Story, build: Callable[[Story], Event], code: str) -> None:
    event = build(story)
    with pytest.raises(NotAdmissible) as refused:
        story.check(event)
    assert refused.value.code == code
    assert refused.value.message


def test_every_admissibility_code_is_exercised_above() -> None:
    exercised = {code for _, _, code in REFUSALS} | {"not_own_chapter"}  # tested below
    assert exercised == set(NOT_ADMISSIBLE)


def test_what_each_role_may_do_is_admitted(story: Story) -> None:
    consent, vote, action = _consent(story), _vote(story), _action(story)
    feedback = story._sign("paris", "feedback_request",
                           {"title": "Paris moves office", "text": "", "closes_at": T(CLOSES)},
                           OPENS, chapter="paris")
    for event in (
        story.propose("chloe", "consent", at=OPENS, closes=CLOSES, keep=False),
        story.comment("chloe", consent, "Great idea", at="2026-11-25 10:00", keep=False),
        story.comment("marco", feedback, "Good luck", at="2026-11-25 10:00", keep=False),
        story.endorse("marco", action, at="2026-11-25 10:00", keep=False),
        story.endorse("marco", consent, at="2026-11-25 10:00", keep=False),
        story.veto("marco", consent, at="2026-11-25 10:00", keep=False),
        story.withdraw("marco", consent, at="2026-11-25 10:00", keep=False),
        story.vote("lucia", vote, "abstain", at="2026-11-25 10:00", keep=False),
        story.delegate("lucia", "marco", proposal=vote, at="2026-11-25 10:00", keep=False),
        story.delegate("lucia", None, at="2026-11-25 10:00", keep=False),
        story.vouch("rome", "giulia", at="2026-11-25 10:00", keep=False),
        story.move("rome", "https://roma.example.org", at="2026-11-25 10:00", keep=False),
        story.seal("rome", consent, at="2026-11-27 10:05", keep=False),
    ):
        story.check(event)  # no exception


# --- deadlines (§6) ---------------------------------------------------------------------


def _late(fn: Callable[[], None]) -> str:
    with pytest.raises(DeadlinePassed) as refused:
        fn()
    return refused.value.code


def test_client_acts_only_until_close_plus_grace_and_dated_by_close(story: Story) -> None:
    rules = story.charter.rules
    consent = _consent(story)
    in_time = story.veto("marco", consent, at="2026-11-27 10:00", keep=False)
    check_deadline(in_time, consent, rules, ms("2026-11-27 10:03"), from_peer=False)
    assert _late(lambda: check_deadline(in_time, consent, rules, ms("2026-11-27 10:05"),
                                        from_peer=False)) == "voting_closed"
    after = story.veto("marco", consent, at="2026-11-27 10:01", keep=False)
    assert _late(lambda: check_deadline(after, consent, rules, ms("2026-11-27 10:01"),
                                        from_peer=False)) == "after_close"


def test_client_events_must_be_dated_within_grace_of_the_clock(story: Story) -> None:
    rules = story.charter.rules
    proposal = story.propose("amelie", "consent", at="2026-11-24 10:00",
                             closes="2026-11-28 10:00", keep=False)
    check_deadline(proposal, None, rules, ms("2026-11-24 10:05"), from_peer=False)
    assert _late(lambda: check_deadline(proposal, None, rules, ms("2026-11-24 10:05:01"),
                                        from_peer=False)) == "created_at_too_old"
    assert _late(lambda: check_deadline(proposal, None, rules, ms("2026-11-24 09:54:59"),
                                        from_peer=False)) == "created_at_in_future"
    check_deadline(proposal, None, rules, ms("2026-12-24 09:00"), from_peer=True)  # peers: no window


def test_peers_relay_acts_dated_by_close_whenever_they_arrive(story: Story) -> None:
    rules = story.charter.rules
    consent = _consent(story)
    on_time = story.veto("marco", consent, at="2026-11-27 10:00", keep=False)
    check_deadline(on_time, consent, rules, ms("2026-12-20 10:00"), from_peer=True)
    late = story.veto("marco", consent, at="2026-11-27 10:00:01", keep=False)
    assert _late(lambda: check_deadline(late, consent, rules, ms("2026-11-27 10:00:02"),
                                        from_peer=True)) == "after_close"


def test_action_acts_have_no_deadline_and_feedback_comments_do(story: Story) -> None:
    rules = story.charter.rules
    action = _action(story)
    late = story.endorse("marco", action, at="2027-06-01 10:00", keep=False)
    check_deadline(late, action, rules, ms("2027-06-01 10:00"), from_peer=False)
    feedback = story._sign("paris", "feedback_request",
                           {"title": "t", "text": "", "closes_at": T(CLOSES)}, OPENS, chapter="paris")
    comment = story.comment("marco", feedback, "too late", at="2026-11-27 10:01", keep=False)
    assert _late(lambda: check_deadline(comment, feedback, rules, ms("2026-11-27 10:01"),
                                        from_peer=True)) == "feedback_closed"


def test_a_client_may_only_send_events_of_this_nodes_chapter(story: Story) -> None:
    veto = story.veto("marco", _consent(story), at="2026-11-25 10:00", keep=False)  # chapter rome
    with pytest.raises(NotAdmissible) as refused:
        check_deadline(veto, None, story.charter.rules, ms("2026-11-25 10:00"), from_peer=False,
                       own_chapter="paris")
    assert refused.value.code == "not_own_chapter"
    check_deadline(veto, None, story.charter.rules, ms("2026-11-25 10:00"), from_peer=True,
                   own_chapter="paris")


def test_every_deadline_code_is_exercised() -> None:
    assert set(DEADLINE) == {"after_close", "voting_closed", "created_at_too_old",
                             "created_at_in_future", "feedback_closed"}
    assert REFUSAL_CODES == set(DEADLINE) | set(NOT_ADMISSIBLE)


def test_escalation_accepts_a_vetoed_and_closed_consent_proposal(story: Story) -> None:
    vote = story.propose("marco", "vote", at="2026-11-28 10:00", closes="2026-12-01 10:00",
                         escalated_from="c" * 64, keep=False)
    check(vote, registry=story.timeline().at(vote.created_ms), rules=story.charter.rules,
          escalated=Escalated("vetoed", ms("2026-11-28 10:00")))
