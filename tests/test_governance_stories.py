"""The organisation's decisions as stories: named people, explicit times, one expected outcome.

Amélie (Paris), Marco and Sofia (Rome), Lucía (Barcelona) and Jonas (Berlin) are the
Connectors of the charter; Chloé (Paris), Pablo (Barcelona) and Giulia (Rome) are members once
their chapter vouches for them. Rules: 72 h minimum open time, 5 min grace, 3 endorsements.
"""

from __future__ import annotations

import pytest

from node.governance import Escalated, effect_of
from node.protocol.errors import NotAdmissible

from .governance_story import Story, ms


def test_paris_proposal_vetoed_by_marco_is_adopted_once_he_withdraws() -> None:
    story = Story()
    lyon = story.propose("amelie", "consent", title="Open a Lyon chapter",
                         at="2026-11-24 10:00", closes="2026-11-27 10:00")
    story.endorse("lucia", lyon, at="2026-11-24 12:00")
    story.veto("marco", lyon, at="2026-11-25 09:00", reason="Rome has not been consulted")
    assert story.decide(lyon, now="2026-11-25 10:00").tally.outcome == "vetoed"

    story.withdraw("marco", lyon, at="2026-11-26 18:30")

    decision = story.decide(lyon, now="2026-11-28 10:00")
    assert decision.tally.to_json() == {
        "proposal": lyon.id, "kind": "consent", "eligible": 5, "yes": 0, "no": 0,
        "abstain": 0, "not_cast": 0, "vetoes": 0, "endorsements": 1, "outcome": "adopted",
    }


def test_a_veto_dated_after_the_close_does_not_block() -> None:
    story = Story()
    lyon = story.propose("amelie", "consent", at="2026-11-24 10:00", closes="2026-11-27 10:00")
    story.veto("marco", lyon, at="2026-11-27 10:00:01")  # one second late (a peer relayed it)
    assert story.decide(lyon).tally.outcome == "adopted"


def test_a_veto_by_the_close_instant_itself_still_counts() -> None:
    story = Story()
    lyon = story.propose("amelie", "consent", at="2026-11-24 10:00", closes="2026-11-27 10:00")
    story.veto("marco", lyon, at="2026-11-27 10:00")
    assert story.decide(lyon).tally.vetoes == 1


def test_vetoing_twice_then_withdrawing_once_leaves_no_veto_standing() -> None:
    story = Story()
    lyon = story.propose("amelie", "consent", at="2026-11-24 10:00", closes="2026-11-27 10:00")
    story.veto("marco", lyon, at="2026-11-24 11:00")
    story.veto("marco", lyon, at="2026-11-24 12:00", reason="still against")
    story.withdraw("marco", lyon, at="2026-11-25 12:00")
    story.veto("sofia", lyon, at="2026-11-25 13:00")
    assert story.decide(lyon).tally.vetoes == 1  # Sofia's stands, Marco's is withdrawn


def test_barcelona_action_gets_its_green_light_on_the_third_distinct_connector() -> None:
    story = Story()
    story.vouch("barcelona", "pablo", at="2026-11-01 09:00")
    market = story.propose("pablo", "action", title="Barcelona sharing-economy market stall",
                           at="2026-11-24 10:00")  # Pablo is a member: he does not count
    story.endorse("lucia", market, at="2026-11-24 11:00")
    story.endorse("marco", market, at="2026-11-24 12:00")
    members_endorsement = story.endorse("pablo", market, at="2026-11-24 12:30", keep=False)
    with pytest.raises(NotAdmissible) as refused:
        story.check(members_endorsement)
    assert refused.value.code == "not_connector"
    story.events.append(members_endorsement)  # even if some node stored it, it never counts
    assert story.decide(market).tally.outcome == "pending"
    green_light = story.endorse("jonas", market, at="2026-11-24 13:00")

    decision = story.decide(market)
    assert (decision.tally.outcome, decision.tally.endorsements, decision.tally.adopted_at) == (
        "adopted", 3, green_light.created_at)
    assert decision.state.state == "adopted" and decision.finality.final

    story.endorse("sofia", market, at="2026-11-24 15:00")  # a fourth Connector
    story.endorse("marco", market, at="2026-11-24 16:00")  # and a repeated endorsement
    after = story.decide(market).tally
    assert (after.outcome, after.adopted_at) == ("adopted", green_light.created_at)
    assert after.endorsements == 4  # §6: an action's tally only grows; the green light stays


def test_an_action_proposed_by_a_connector_counts_its_author() -> None:
    story = Story()
    podcast = story.propose("lucia", "action", title="Start a podcast", at="2026-11-24 10:00")
    story.endorse("lucia", podcast, at="2026-11-24 10:30")  # her own endorsement adds nothing
    story.endorse("marco", podcast, at="2026-11-24 11:00")
    second = story.endorse("amelie", podcast, at="2026-11-24 12:00")
    tally = story.decide(podcast).tally
    assert (tally.outcome, tally.endorsements, tally.adopted_at) == ("adopted", 3, second.created_at)


def test_a_vetoed_proposal_escalated_to_a_vote_is_decided_through_delegations() -> None:
    story = Story()
    fee = story.propose("amelie", "consent", title="A membership fee",
                        at="2026-11-24 10:00", closes="2026-11-27 10:00")
    story.veto("marco", fee, at="2026-11-25 09:00", reason="fees exclude people")
    assert story.decide(fee).tally.outcome == "vetoed"

    vote = story.propose("amelie", "vote", title="A membership fee (vote)",
                         at="2026-11-27 11:00", closes="2026-11-30 11:00", escalated_from=fee)
    story.check(vote, escalated=Escalated("vetoed", ms("2026-11-27 10:00")))
    story.delegate("lucia", "amelie", at="2026-11-20 08:00")  # global, made long before
    story.delegate("jonas", "lucia", at="2026-11-28 09:00", proposal=vote)
    story.delegate("sofia", "marco", at="2026-11-20 08:00")  # global ...
    story.delegate("sofia", None, at="2026-11-28 10:00", proposal=vote)  # ... revoked for this vote
    story.vote("amelie", vote, "yes", at="2026-11-28 12:00")
    story.vote("marco", vote, "no", at="2026-11-28 13:00")

    decision = story.decide(vote)
    assert decision.tally.to_json() | {"proposal": "-"} == {
        "proposal": "-", "kind": "vote", "eligible": 5, "yes": 3, "no": 1, "abstain": 0,
        "not_cast": 1, "vetoes": 0, "endorsements": 0, "outcome": "adopted",
    }
    trace = story.timeline()
    from node.governance import vote_resolution
    resolution = vote_resolution(vote, story.events, trace)
    jonas = resolution.trace(Story.key("jonas"))
    assert (jonas.reason, jonas.path, jonas.counted_as) == (
        "delegated", (Story.key("lucia"), Story.key("amelie")), "yes")
    assert resolution.trace(Story.key("sofia")).reason == "no_vote"


def test_an_escalation_of_an_adopted_or_open_proposal_is_refused() -> None:
    story = Story()
    fee = story.propose("amelie", "consent", at="2026-11-24 10:00", closes="2026-11-27 10:00")
    vote = story.propose("amelie", "vote", at="2026-11-27 11:00", closes="2026-11-30 11:00",
                         escalated_from=fee, keep=False)
    for escalated in (Escalated("adopted", ms("2026-11-27 10:00")),
                      Escalated("vetoed", ms("2026-11-27 12:00")), None):
        with pytest.raises(NotAdmissible) as refused:
            story.check(vote, escalated=escalated)
        assert refused.value.code == "bad_escalation"


def test_a_connector_appointed_by_consent_can_vote_and_a_removed_one_no_longer_counts() -> None:
    story = Story()
    story.vouch("rome", "giulia", at="2026-11-01 09:00")
    appoint = story.propose("marco", "consent", title="Giulia becomes a Connector",
                            at="2026-11-20 10:00", closes="2026-11-23 10:00",
                            effect={"appoint_connector": {"key": Story.key("giulia"),
                                                          "name": "Giulia", "chapter": "rome"}})
    remove = story.propose("amelie", "consent", title="Jonas steps down",
                           at="2026-11-21 10:00", closes="2026-11-24 10:00",
                           effect={"remove_connector": {"key": Story.key("jonas")}})
    too_soon = story.vote("giulia", appoint, "yes", at="2026-11-22 10:00", keep=False)
    with pytest.raises(NotAdmissible) as refused:
        story.check(too_soon)
    assert refused.value.code == "not_connector"

    budget = story.propose("lucia", "vote", title="2027 budget",
                           at="2026-11-23 12:00", closes="2026-11-26 12:00")
    giulia_votes = story.vote("giulia", budget, "yes", at="2026-11-24 09:00", keep=False)
    story.check(giulia_votes)  # admissible: Connector since 2026-11-23 10:00
    story.events.append(giulia_votes)
    story.vote("jonas", budget, "no", at="2026-11-23 13:00")  # still a Connector then
    story.delegate("sofia", "jonas", at="2026-11-23 14:00")

    timeline = story.timeline()
    assert timeline.at(ms("2026-11-23 09:59")).is_connector(Story.key("giulia")) is False
    assert timeline.at(ms("2026-11-23 10:00")).is_connector(Story.key("giulia")) is True
    assert timeline.at(ms("2026-11-24 10:00")).is_connector(Story.key("jonas")) is False
    assert [e.applied for e in timeline.effects] == [True, True]
    assert effect_of(remove) == ("remove_connector", {"key": Story.key("jonas")})
    tally = story.decide(budget).tally
    # Jonas is not eligible at the close: his vote and Sofia's delegation to him are lost.
    assert (tally.eligible, tally.yes, tally.no, tally.not_cast) == (5, 1, 0, 4)
