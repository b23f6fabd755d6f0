"""Who is who over time: the charter plus adopted effects, member and chapter_url events."""

from __future__ import annotations

import random

from node.governance import Registry, Timeline, is_registry_relevant, registry_relevant

from .governance_story import Story, ms


def appoint(name: str, display: str, chapter: str) -> dict:
    return {"appoint_connector": {"key": Story.key(name), "name": display, "chapter": chapter}}


def test_the_charter_alone_names_chapters_and_connectors() -> None:
    registry = Story().timeline().at(ms("2026-11-24 10:00"))
    assert sorted(registry.chapters) == ["barcelona", "berlin", "paris", "rome"]
    assert registry.is_connector(Story.key("amelie")) and not registry.is_connector(Story.key("chloe"))
    assert registry.chapter_by_node_key(Story.key("node rome")).slug == "rome"  # type: ignore[union-attr]
    assert registry.chapter_by_node_key(Story.key("amelie")) is None


def test_a_member_is_vouched_from_the_instant_of_their_chapters_latest_member_event() -> None:
    story = Story()
    story.vouch("paris", "chloe", at="2026-11-01 09:00")
    story.vouch("paris", "chloe", at="2026-11-10 09:00", active=False)
    story.vouch("paris", "chloe", at="2026-11-20 09:00")
    timeline = story.timeline()
    chloe = Story.key("chloe")
    assert [timeline.at(ms(t)).is_member(chloe) for t in (
        "2026-11-01 08:59", "2026-11-01 09:00", "2026-11-10 09:00", "2026-11-19 23:59",
        "2026-11-20 09:00")] == [False, True, False, False, True]


def test_one_active_chapter_is_enough_and_connectors_count_as_members() -> None:
    story = Story()
    story.vouch("paris", "chloe", at="2026-11-01 09:00", active=False)
    story.vouch("rome", "chloe", at="2026-11-02 09:00")
    registry = story.timeline().at(ms("2026-11-03 00:00"))
    assert registry.is_member(Story.key("chloe")) and registry.is_vouched(Story.key("chloe"))
    assert registry.is_member(Story.key("marco")) and not registry.is_vouched(Story.key("marco"))
    assert registry.member_keys() == {Story.key("chloe")}


def test_only_a_chapters_own_node_key_speaks_for_it() -> None:
    story = Story()
    story.events.append(story._sign("rome", "member", {"key": Story.key("chloe"), "active": True},
                                    "2026-11-01 09:00", chapter="paris", keep=False))
    story.events.append(story._sign("rome", "chapter_url", {"url": "https://evil.example"},
                                    "2026-11-01 09:00", chapter="paris", keep=False))
    registry = story.timeline().at(ms("2026-11-02 00:00"))
    assert not registry.is_member(Story.key("chloe"))
    assert registry.chapter("paris").url == "https://paris.example.org"  # type: ignore[union-attr]


def test_a_chapter_url_replaces_the_url_from_its_created_at_on() -> None:
    story = Story()
    story.move("rome", "https://roma.example.org", at="2026-11-10 09:00")
    story.move("rome", "https://roma2.example.org", at="2026-11-20 09:00")
    timeline = story.timeline()
    urls = [timeline.at(ms(t)).chapter("rome").url  # type: ignore[union-attr]
            for t in ("2026-11-10 08:00", "2026-11-15 00:00", "2026-11-21 00:00")]
    assert urls == ["https://rome.example.org", "https://roma.example.org", "https://roma2.example.org"]


def test_an_admitted_chapter_is_registered_from_the_close_and_may_then_vouch() -> None:
    story = Story()
    lyon = story.propose("amelie", "consent", title="Admit Lyon", at="2026-11-20 10:00",
                         closes="2026-11-23 10:00",
                         effect={"admit_chapter": {"slug": "lyon", "key": Story.key("node lyon"),
                                                   "url": "https://lyon.example.org"}})
    story.vouch("lyon", "nora", at="2026-11-22 10:00")  # before admission: ignored
    story.vouch("lyon", "chloe", at="2026-11-23 10:00")  # at the close instant: counts
    timeline = story.timeline()
    assert "lyon" not in timeline.at(ms("2026-11-23 09:59:59")).chapters
    registry = timeline.at(ms("2026-11-23 10:00"))
    assert registry.chapter("lyon").key == Story.key("node lyon")  # type: ignore[union-attr]
    assert registry.is_member(Story.key("chloe")) and not registry.is_member(Story.key("nora"))
    assert timeline.effect(lyon.id).applied  # type: ignore[union-attr]


def test_a_vetoed_effect_changes_nothing() -> None:
    story = Story()
    p = story.propose("amelie", "consent", at="2026-11-20 10:00", closes="2026-11-23 10:00",
                      effect=appoint("chloe", "Chloé", "paris"))
    story.veto("marco", p, at="2026-11-21 10:00")
    timeline = story.timeline()
    assert not timeline.at(ms("2026-12-01 00:00")).is_connector(Story.key("chloe"))
    assert (timeline.effects[0].outcome, timeline.effects[0].applied) == ("vetoed", False)


def test_a_proposal_never_depends_on_its_own_effect() -> None:
    story = Story()
    remove = story.propose("amelie", "consent", title="Jonas steps down", at="2026-11-20 10:00",
                           closes="2026-11-23 10:00",
                           effect={"remove_connector": {"key": Story.key("jonas")}})
    story.veto("jonas", remove, at="2026-11-21 10:00")  # still a Connector until the effect
    assert story.decide(remove).tally.outcome == "vetoed"
    assert story.timeline().at(ms("2026-12-01 00:00")).is_connector(Story.key("jonas"))


def test_a_vetoed_removal_escalated_to_a_vote_applies_when_the_vote_adopts_it() -> None:
    """governance.md §3: the vote copies the effect; adopted, it removes Jonas. Found by the
    browser's second implementation: the timeline took the escalation of a consent proposal
    that has an effect of its own as `bad_escalation`, and Jonas stayed a Connector."""
    story = Story()
    removal = {"remove_connector": {"key": Story.key("jonas")}}
    consent = story.propose("amelie", "consent", title="Jonas steps down",
                            at="2026-11-20 10:00", closes="2026-11-23 10:00", effect=removal)
    story.veto("jonas", consent, at="2026-11-21 10:00")
    vote = story.propose("amelie", "vote", title="Jonas steps down: the vote",
                         at="2026-11-24 10:00", closes="2026-11-27 10:00",
                         escalated_from=consent, effect=removal)
    for who in ("amelie", "marco", "sofia", "lucia"):
        story.vote(who, vote, "yes", at="2026-11-25 10:00")
    timeline = story.timeline()
    assert timeline.effect(vote.id).skipped is None  # type: ignore[union-attr]
    assert timeline.effect(vote.id).applied  # type: ignore[union-attr]
    assert not timeline.at(ms("2026-12-01 00:00")).is_connector(Story.key("jonas"))


def test_two_effects_closing_at_the_same_instant_are_decided_in_id_order() -> None:
    story = Story()
    remove = story.propose("amelie", "consent", title="Marco steps down", at="2026-11-20 10:00",
                           closes="2026-11-23 10:00",
                           effect={"remove_connector": {"key": Story.key("marco")}})
    chloe = story.propose("lucia", "consent", title="Chloé becomes a Connector",
                          at="2026-11-20 11:00", closes="2026-11-23 10:00",
                          effect=appoint("chloe", "Chloé", "paris"))
    story.veto("marco", chloe, at="2026-11-21 10:00")
    timeline = story.timeline()
    first, second = sorted((remove, chloe), key=lambda p: p.id)
    assert [e.proposal for e in timeline.effects] == [first.id, second.id]
    # Marco's veto counts only if the appointment is decided before his removal applies.
    expected = "vetoed" if first is chloe else "adopted"
    assert timeline.effect(chloe.id).outcome == expected  # type: ignore[union-attr]
    assert story.decide(chloe).tally.outcome == expected
    # A proposal without an effect closing at that instant sees both effects applied.
    at_close = timeline.at(ms("2026-11-23 10:00"))
    assert not at_close.is_connector(Story.key("marco"))


def test_an_adopted_effect_that_no_longer_applies_is_skipped_and_said_so() -> None:
    story = Story()
    first = story.propose("amelie", "consent", at="2026-11-20 10:00", closes="2026-11-23 10:00",
                          effect=appoint("chloe", "Chloé", "paris"))
    second = story.propose("lucia", "consent", at="2026-11-20 11:00", closes="2026-11-24 10:00",
                           effect=appoint("chloe", "Chloé D.", "rome"))
    timeline = story.timeline()
    assert timeline.effect(first.id).applied  # type: ignore[union-attr]
    assert timeline.effect(second.id).skipped == "already_connector"  # type: ignore[union-attr]
    assert timeline.at(ms("2026-12-01 00:00")).connectors[Story.key("chloe")].chapter == "paris"


def test_a_vote_with_an_effect_counts_global_delegations() -> None:
    story = Story()
    story.delegate("lucia", "amelie", at="2026-11-01 10:00")
    story.delegate("jonas", "amelie", at="2026-11-01 10:00")
    vote = story.propose("amelie", "vote", at="2026-11-20 10:00", closes="2026-11-23 10:00",
                         effect=appoint("chloe", "Chloé", "paris"))
    story.vote("amelie", vote, "yes", at="2026-11-21 10:00")
    story.vote("marco", vote, "no", at="2026-11-21 10:00")
    timeline = story.timeline()
    assert timeline.effect(vote.id).outcome == "adopted"  # type: ignore[union-attr]  # 3 yes, 1 no
    relevant = registry_relevant(story.events)
    assert len(relevant) == len(story.events)  # every event here matters to the registry


def test_the_registry_relevant_events_give_the_same_registry_as_everything() -> None:
    story = Story()
    story.vouch("paris", "chloe", at="2026-11-01 09:00")
    p = story.propose("amelie", "consent", at="2026-11-20 10:00", closes="2026-11-23 10:00",
                      effect=appoint("chloe", "Chloé", "paris"))
    story.veto("marco", p, at="2026-11-21 10:00")
    story.withdraw("marco", p, at="2026-11-22 10:00")
    other = story.propose("lucia", "consent", at="2026-11-20 10:00", closes="2026-11-23 10:00")
    story.veto("marco", other, at="2026-11-21 10:00")
    story.comment("chloe", p, "thank you", at="2026-11-21 11:00")
    relevant = registry_relevant(story.events)
    assert {e.type for e in story.events if e not in relevant} == {"proposal", "veto", "comment"}
    assert not is_registry_relevant(other, {p.id})
    everything, subset = story.timeline(), story.timeline(relevant)
    for t in ("2026-11-22 00:00", "2026-11-23 10:00", "2026-12-01 00:00"):
        assert everything.at(ms(t)).to_json() == subset.at(ms(t)).to_json()


def test_equal_event_sets_give_equal_timelines_whatever_the_order() -> None:
    story = Story()
    story.vouch("paris", "chloe", at="2026-11-01 09:00")
    story.vouch("paris", "chloe", at="2026-11-01 09:00", active=False)  # same instant: id decides
    story.move("rome", "https://roma.example.org", at="2026-11-10 09:00")
    p = story.propose("amelie", "consent", at="2026-11-20 10:00", closes="2026-11-23 10:00",
                      effect=appoint("giulia", "Giulia", "rome"))
    story.veto("marco", p, at="2026-11-21 10:00")
    story.withdraw("marco", p, at="2026-11-21 10:00")  # same instant as the veto: id decides
    reference = story.timeline()
    shuffled = list(story.events) * 2
    random.Random(7).shuffle(shuffled)
    other = Timeline.build(story.charter, shuffled, story.sealed)
    for t in ("2026-11-01 09:00", "2026-11-23 10:00"):
        assert reference.at(ms(t)).to_json() == other.at(ms(t)).to_json()
    assert reference.effects == other.effects


def test_a_node_key_resolves_to_its_chapter_with_moved_urls_and_admitted_chapters() -> None:
    """The node-key index answers as a scan of the chapters would, URL changes included."""
    story = Story()
    story.propose("amelie", "consent", title="Admit Lyon", at="2026-11-20 10:00",
                  closes="2026-11-23 10:00",
                  effect={"admit_chapter": {"slug": "lyon", "key": Story.key("node lyon"),
                                            "url": "https://lyon.example.org"}})
    story.move("rome", "https://roma.example.org", at="2026-11-10 09:00")
    timeline = story.timeline()
    for t in ("2026-11-09 00:00", "2026-11-21 00:00", "2026-11-24 00:00"):
        registry = timeline.at(ms(t))
        scanned = Registry(registry.at_ms, registry.chapters, registry.connectors)  # no index
        for name in ("node rome", "node paris", "node lyon", "amelie", "nobody"):
            key = Story.key(name)
            assert registry.chapter_by_node_key(key) == scanned.chapter_by_node_key(key), (t, name)
            assert registry.is_node_key(key) == scanned.is_node_key(key)
    late = timeline.at(ms("2026-11-24 00:00"))
    assert late.chapter_by_node_key(Story.key("node rome")).url == "https://roma.example.org"  # type: ignore[union-attr]
    assert late.chapter_by_node_key(Story.key("node lyon")).slug == "lyon"  # type: ignore[union-attr]
    assert timeline.at(ms("2026-11-21 00:00")).chapter_by_node_key(Story.key("node lyon")) is None
