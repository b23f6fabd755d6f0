"""Derived admission (docs/protocol.md §5): what only a node's current knowledge refuses is
kept when a peer relays it, counts for nothing where the whole set refuses it, and is still
refused to a client.

The story: Sofia, a Connector, is removed by a consent proposal closing 2026-11-07 10:00 and
appointed again by another closing 2026-11-12 10:00. What she signs between the two is
admissible to a node that has not heard of the removal, and to no one who has.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node import governance as gov
from node.chapter.chapter_node import ChapterNode
from node.operations.audit import parse_export, proposals_report
from node.protocol.errors import NotAdmissible, NotFound
from node.store import open_store

from .conftest import person_key
from .governance_story import Story, ms

REMOVED = "2026-11-07 10:00"
BACK = "2026-11-12 10:00"
GAP = "2026-11-08 12:00"  # sofia is no Connector then
NOW = "2026-11-08 12:01"


def story() -> tuple[Story, dict[str, object]]:
    s = Story()
    removal = s.propose("marco", "consent", title="Sofia steps down", at="2026-11-02 10:00",
                        closes=REMOVED, effect={"remove_connector": {"key": Story.key("sofia")}})
    back = s.propose("amelie", "consent", title="Sofia comes back", at="2026-11-08 11:00",
                     closes=BACK, effect={"appoint_connector": {
                         "key": Story.key("sofia"), "name": "Sofia", "chapter": "rome"}})
    target = s.propose("lucia", "consent", title="Join the network", at="2026-11-06 10:00",
                       closes="2026-11-14 10:00")
    return s, {"removal": removal, "back": back, "target": target}


def node_of(s: Story, tmp_path: Path, events, chapter: str = "paris") -> ChapterNode:
    store = open_store(tmp_path / f"{chapter}.db")
    node = ChapterNode(store, s.charter, chapter, person_key(f"node {chapter}"))
    out = node.receive([e.canonical for e in events], origin="rome", now_ms=ms(NOW))
    assert all(o.status == "stored" for o in out), [o.code for o in out]
    return node


def test_relayed_sorts_refusals_into_kept_and_refused() -> None:
    s, p = story()
    timeline = s.timeline()
    veto = s.veto("sofia", p["target"], at=GAP, keep=False)
    at_gap = timeline.at(ms(GAP))
    assert gov.relayed(veto, registry=at_gap, rules=s.charter.rules, proposal=p["target"]) \
        == "not_connector"  # kept: another node may not know of the removal yet
    with pytest.raises(NotAdmissible) as refused:
        gov.check(veto, registry=at_gap, rules=s.charter.rules, proposal=p["target"])
    assert refused.value.code == "not_connector"  # a client is refused as before
    to_herself = s.delegate("sofia", "sofia", at=GAP, keep=False)
    with pytest.raises(NotAdmissible) as refused:  # state-independent: refused even relayed
        gov.relayed(to_herself, registry=at_gap, rules=s.charter.rules)
    assert refused.value.code == "self_delegation"
    stray = s.endorse("sofia", p["target"], at=GAP, keep=False)
    with pytest.raises(NotAdmissible) as refused:  # the proposal is not held: wait for it
        gov.relayed(stray, registry=at_gap, rules=s.charter.rules, proposal=None)
    assert refused.value.code == "unknown_proposal"


def test_a_veto_signed_between_removal_and_return_does_not_count() -> None:
    s, p = story()
    s.veto("sofia", p["target"], at=GAP)  # kept by a peer; she is a Connector again at close
    decision = s.decide(p["target"])
    assert decision.tally.vetoes == 0 and decision.tally.outcome == "adopted"
    s.veto("sofia", p["target"], at="2026-11-13 10:00")  # back by then: this one counts
    assert s.decide(p["target"]).tally.outcome == "vetoed"


def test_a_delegation_to_someone_not_yet_a_connector_is_not_followed() -> None:
    s = Story()
    appoint = s.propose("marco", "consent", at="2026-11-01 10:00", closes="2026-11-05 10:00",
                        effect={"appoint_connector": {"key": Story.key("giulia"),
                                                      "name": "Giulia", "chapter": "rome"}})
    vote = s.propose("jonas", "vote", at="2026-11-03 10:00", closes="2026-11-09 10:00")
    s.vote("giulia", vote, "no", at="2026-11-06 10:00")
    s.delegate("amelie", "marco", at="2026-11-03 11:00", proposal=vote)
    s.delegate("amelie", "giulia", at="2026-11-04 11:00", proposal=vote)  # not one yet
    assert s.timeline().effect(appoint.id).applied
    result = s.decide(vote).tally
    s.vote("marco", vote, "yes", at="2026-11-06 11:00")
    after = s.decide(vote).tally
    # amelie's weight follows her latest *admitted* delegation, to marco: 0 then 1 more yes
    assert (result.yes, result.no) == (0, 1)
    assert (after.yes, after.no) == (2, 1)


def test_an_effect_proposal_nobody_could_make_is_kept_and_never_applied(tmp_path: Path) -> None:
    s = Story()
    # pablo is nobody's member: a peer keeps his proposal, the timeline must not apply it
    sneaky = s.propose("pablo", "consent", title="Pablo is a Connector", at="2026-11-01 10:00",
                       closes="2026-11-05 10:00", effect={"appoint_connector": {
                           "key": Story.key("pablo"), "name": "Pablo", "chapter": "paris"}})
    effect = s.timeline().effect(sneaky.id)
    assert effect is not None and not effect.applied and effect.skipped == "not_member"
    assert not s.timeline().at(ms("2026-11-06 00:00")).is_connector(Story.key("pablo"))
    node = node_of(s, tmp_path, s.events)
    assert node.store.has(sneaky.id)
    assert node.proposals(ms("2026-12-01 00:00")) == []
    with pytest.raises(NotFound) as missing:
        node.proposal_report(sneaky.id, ms("2026-12-01 00:00"))
    assert missing.value.code == "not_admitted"
    assert node.publish_due_seals(ms("2026-12-01 00:00")) == []
    with pytest.raises(NotAdmissible) as refused:  # and a client is refused outright
        node.submit(s.propose("pablo", "consent", at="2026-11-30 23:59",
                              closes="2026-12-04 00:00", keep=False).canonical,
                    ms("2026-11-30 23:59"))
    assert refused.value.code == "not_member"
    report = proposals_report(parse_export(list(node.export_lines(ms("2026-12-01 00:00")))),
                              ms("2026-12-01 00:00"))
    assert report == []  # the audit judges it the same way


def test_a_node_learning_of_the_removal_keeps_the_act_and_stops_counting_it(
        tmp_path: Path) -> None:
    s, p = story()
    veto = s.veto("sofia", p["target"], at=GAP, keep=False)
    without_removal = [e for e in s.events if e.id != p["removal"].id]
    late = node_of(s, tmp_path, [*without_removal, veto], chapter="paris")
    now = ms(NOW)
    assert late.proposal_report(p["target"].id, now)["tally"]["vetoes"] == 1  # as it knows
    # the removal arrives: the veto stays held (so the sets converge), but no longer counts
    assert late.receive([p["removal"].canonical], origin="rome", now_ms=now)[0].status == "stored"
    assert late.store.has(veto.id)
    assert late.proposal_report(p["target"].id, now)["tally"]["vetoes"] == 0
    # a node that held the removal first keeps the veto too, and agrees
    early = node_of(s, tmp_path, [*s.events, veto], chapter="rome")
    assert {r[0] for r in early.store.db.execute("select id from events")} \
        == {r[0] for r in late.store.db.execute("select id from events")}
    assert early.proposal_report(p["target"].id, now)["tally_hash"] \
        == late.proposal_report(p["target"].id, now)["tally_hash"]
    # and its seal lists only what a node refusing the veto would have held
    sealed_at = ms("2026-11-14 10:06")
    seal = next(e for e in early.publish_due_seals(sealed_at) if e.body["proposal"] == p["target"].id)
    assert veto.id not in early.store.get_sealed(seal.id)


def test_the_chapter_is_told_only_of_proposals_and_vetoes_that_count(tmp_path: Path) -> None:
    from node.config import Webhook
    from node.notices.webhooks import Notices

    s, p = story()
    ghost = s.propose("pablo", "consent", title="Nobody's", at="2026-11-06 11:00",
                      closes="2026-11-10 10:00")  # pablo is no member: kept, never admitted
    gap_veto = s.veto("sofia", p["target"], at=GAP, keep=False)
    node = node_of(s, tmp_path, [])
    notices = Notices(node.store, "paris", [Webhook("http://127.0.0.1:9/hook", "s" * 16)],
                      counts=node.counts)
    node.receive([e.canonical for e in [*s.events, gap_veto]], origin="rome", now_ms=ms(NOW))
    notices.collect(ms(NOW))
    told = {(kind, pid) for kind, pid in node.store.db.execute(
        "select kind, proposal from notices")}
    assert ("proposal_opened", p["target"].id) in told
    assert ("proposal_opened", ghost.id) not in told
    assert ("veto_filed", p["target"].id) not in told  # sofia's, signed while removed


def test_a_seal_not_signed_by_its_chapter_is_kept_but_its_list_is_not(tmp_path: Path) -> None:
    from node.protocol.events import sign_event
    from node.protocol.merkle import acts_root
    from node.protocol.times import format_ms

    s, p = story()
    node = node_of(s, tmp_path, s.events)
    target = p["target"]
    tally = s.decide(target).tally.to_json()
    made_up = ["ab" * 32]
    forged = sign_event(federation=s.charter.id, type="seal", chapter="rome",
                        created_at=format_ms(ms("2026-11-14 10:06")),
                        body={"proposal": target.id, "acts_root": acts_root(made_up),
                              "acts_count": 1, "tally": tally,
                              "tally_hash": gov.tally_hash(tally)},
                        signing_key=person_key("sofia"))
    later = ms("2026-11-14 10:07")
    out = node.receive([forged.canonical, json.dumps(
        {"sealed": {"seal": forged.id, "acts": made_up}}).encode()], origin="rome", now_ms=later)
    assert [o.status for o in out] == ["stored", "refused"] and out[1].code == "not_chapter_node"
    assert node.store.get_sealed(forged.id) is None
    assert forged.id not in {sid for sid, _ in node.missing_sealed_lists()}
    assert node.missing_acts() == []  # nothing is fetched for it
    seals = node.proposal_report(target.id, later)["seals"]
    assert [x["status"] for x in seals if x["seal"] == forged.id] == ["not_chapter_node"]
