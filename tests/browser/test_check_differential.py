"""Two implementations that agree: the Python audit and the browser's JavaScript rules.

Both read the same export lines; for every proposal they must agree on whether it is admitted,
its tally object and `tally_hash` byte for byte, its state, every seal's status, the missing
chapters and, for votes, where each Connector's weight went. The inputs: event sets generated
by Hypothesis (permutations, duplicates, delegation chains and cycles, appointments and
removals by effect proposals, late acts, missing, early, late, altered and equivocating
seals, members vouched by the wrong node) and the export of the three real nodes the other
browser tests drive.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.governance import evaluate, tally_hash
from node.operations.audit import not_admitted, parse_export, timeline_of
from node.protocol.errors import ChapterNodeError
from node.protocol.events import sign_event
from node.protocol.merkle import acts_root
from node.protocol.times import format_ms, parse_ms

from ..conftest import person_key, pub
from .conftest import new_page

CHAPTERS = ("paris", "rome", "barcelona")
START = 1_798_761_600_000  # 2027-01-01
HOUR = 3_600_000
RULES = {"min_open_hours": 1, "grace_seconds": 60, "seal_timeout_seconds": 3600,
         "quorum": 0.5, "action_endorsements": 3}
PEOPLE = [f"p{i}" for i in range(9)]  # p0-p4 Connectors at the start, p5-p8 not

JUDGE = """async ([text, now]) => {
  const evidence = await import('/static/js/check/evidence.js');
  const rules = await import('/static/js/check/rules.js');
  const read = await evidence.readEvidence(text);
  const out = {problems: read.problems.map((p) => [p.line, p.code]), proposals: {}};
  for (const event of read.doc.events) {
    if (event.type !== 'proposal') continue;
    const j = rules.judge(read.doc, event.id, now);
    out.proposals[event.id] = j.admitted ? {
      admitted: true, tally: j.tally, tally_hash: j.tally_hash, state: j.state,
      seals: Object.fromEntries((j.seals || []).map((s) => [s.seal, s.status])),
      missing: [...(j.missing_seals || [])].sort(),
      weights: Object.fromEntries((j.weights || []).map((w) => [w.connector, w.counted_as])),
    } : {admitted: false, refusal: j.refusal};
  }
  return out;
}"""


def python_view(lines: list[str], now_ms: int) -> dict[str, Any]:
    """What the Python audit says of every proposal in `lines` (its one report), in the JS
    shape."""
    export = parse_export(lines)
    timeline = timeline_of(export)
    out: dict[str, Any] = {}
    for proposal in export.proposals():
        refused = not_admitted(export, proposal, timeline)
        if refused is not None:
            out[proposal.id] = {"admitted": False, "refusal": refused}
            continue
        r = evaluate(timeline, proposal, export.events, (), export.sealed, now_ms=now_ms)
        out[proposal.id] = {
            "admitted": True, "tally": r.tally, "tally_hash": r.tally_hash, "state": r.state,
            "seals": {s["seal"]: s["status"] for s in r.seals},
            "missing": sorted(r.missing_seals),
            "weights": {w["connector"]: w["counted_as"] for w in r.trace or []}}
    return out


@dataclass
class World:
    """Signed events being generated, and the export lines they make."""

    charter: dict[str, Any]
    events: list[Any] = field(default_factory=list)
    sealed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def federation(self) -> str:
        from node.protocol.charter import charter_from_object

        return charter_from_object(self.charter).id

    def sign(self, who: str, type_: str, body: dict, at_ms: int, chapter: str = "paris",
             *, node: bool = False):
        key = person_key(f"node {who}") if node else person_key(who)
        event = sign_event(federation=self.federation, type=type_, chapter=chapter,
                           created_at=format_ms(at_ms), body=body, signing_key=key)
        self.events.append(event)
        return event

    def lines(self, order: list[int]) -> list[str]:
        head = [json.dumps({"charter": self.charter}, ensure_ascii=False, separators=(",", ":"))]
        body = [self.events[i].canonical.decode() for i in order]
        tail = [json.dumps({"sealed": {"seal": s, "acts": acts}}, separators=(",", ":"))
                for s, acts in self.sealed.items()]
        return head + body + tail


def charter_doc() -> dict[str, Any]:
    return {"name": "Differential federation", "created_at": format_ms(START - 24 * HOUR),
            "chapters": [{"slug": c, "key": pub(f"node {c}"), "url": f"http://127.0.0.1:{i + 1}"}
                         for i, c in enumerate(CHAPTERS)],
            "connectors": [{"key": pub(p), "name": p.upper(), "chapter": CHAPTERS[i % 3]}
                           for i, p in enumerate(PEOPLE[:5])],
            "rules": RULES}


@st.composite
def worlds(draw: st.DrawFn) -> tuple[World, list[int], int]:
    world = World(charter_doc())
    someone = st.sampled_from(PEOPLE)
    acting = st.sampled_from(PEOPLE[:5] * 3 + PEOPLE[5:])  # mostly the charter's Connectors
    chapter = st.sampled_from(CHAPTERS)
    # members vouched for, sometimes by the wrong chapter's node
    for _ in range(draw(st.integers(0, 3))):
        slug = draw(chapter)
        world.sign(slug, "member", {"key": pub(draw(someone)), "active": draw(st.booleans())},
                   START + draw(st.integers(0, HOUR)), chapter=draw(chapter), node=True)
    proposals = []
    # effect proposals closing early: appoint or remove someone, which changes who counts
    for n in range(draw(st.integers(0, 2))):
        who = draw(someone)
        effect = draw(st.sampled_from([
            {"appoint_connector": {"key": pub(who), "name": who.upper(), "chapter": "rome"}},
            {"remove_connector": {"key": pub(who)}}]))
        kind = draw(st.sampled_from(["consent", "vote"]))
        created = START + n * HOUR
        closes = created + HOUR + draw(st.integers(0, 2)) * HOUR
        proposals.append(world.sign(draw(someone), "proposal", {
            "title": f"Effect {n}", "text": "", "kind": kind, "closes_at": format_ms(closes),
            "effect": effect}, created))
    # the main proposals, closing later
    for n in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["consent", "action", "vote"]))
        created = START + (3 + n) * HOUR
        body = {"title": f"Main {n}", "text": "", "kind": kind}
        if kind != "action":
            body["closes_at"] = format_ms(created + HOUR + draw(st.integers(0, 3)) * HOUR)
        if kind == "vote" and draw(st.booleans()):
            body["quorum"] = draw(st.sampled_from([0, 0.1, 0.3, 0.5, 2 / 3, 1]))
            body["threshold"] = draw(st.sampled_from([0.5, 0.6, 2 / 3]))
        proposals.append(world.sign(draw(someone), "proposal", body, created))
    # acts by anyone (Connectors or not), on any proposal, before or after its close
    for _ in range(draw(st.integers(0, 40))):
        target = draw(st.sampled_from(proposals))
        kind = target.body["kind"]
        close = START + 10 * HOUR if kind == "action" else parse_ms(target.body["closes_at"])
        at = draw(st.integers(target.created_ms, close + HOUR // 2))
        who = draw(acting)
        if kind == "vote":
            type_ = draw(st.sampled_from(["vote", "vote", "delegation", "delegation"]))
            if type_ == "vote":
                body = {"proposal": target.id, "choice": draw(st.sampled_from(["yes", "no",
                                                                               "abstain"]))}
            else:
                to = draw(st.one_of(st.none(), someone.filter(lambda p, w=who: p != w)))
                body = {"to": None if to is None else pub(to),
                        "proposal": draw(st.sampled_from([target.id, None]))}
        elif kind == "consent":
            type_ = draw(st.sampled_from(["veto", "veto_withdraw", "endorse"]))
            body = {"proposal": target.id}
            if type_ == "veto":
                body["reason"] = "A strong objection."
        else:
            type_, body = "endorse", {"proposal": target.id}
        world.sign(who, type_, body, at)
    # seals: from some chapters, on time or not, honest, partial, altered or equivocating
    for target in proposals:
        if target.body["kind"] == "action":
            continue
        close = parse_ms(target.body["closes_at"])
        acts = [e.id for e in world.events if e.body.get("proposal") == target.id
                and e.type != "proposal" and e.created_ms <= close]
        for slug in draw(st.lists(chapter, max_size=4)):
            listed = sorted(draw(st.lists(st.sampled_from(acts), unique=True)) if acts else [])
            at = close + draw(st.sampled_from([60_000, 60_000, 120_000, 30_000, 3_700_000]))
            tally = {"proposal": target.id, "kind": target.body["kind"], "eligible": 0,
                     "yes": 0, "no": 0, "abstain": 0, "not_cast": 0, "vetoes": 0,
                     "endorsements": 0, "outcome": "adopted"}
            signer = slug if draw(st.integers(0, 5)) else draw(chapter)  # now and then forged
            seal = world.sign(signer, "seal", {
                "proposal": target.id, "acts_root": acts_root(listed), "acts_count": len(listed),
                "tally": tally, "tally_hash": tally_hash(tally)}, at, chapter=slug, node=True)
            altered = draw(st.integers(0, 3)) == 0 and listed
            if draw(st.integers(0, 7)):  # now and then its list is not held
                world.sealed[seal.id] = listed[1:] if altered else listed
    order = draw(st.permutations(range(len(world.events))))
    order = order + draw(st.lists(st.sampled_from(order), max_size=3)) if order else order
    now = START + draw(st.sampled_from([4 * HOUR, 8 * HOUR, 20 * HOUR]))
    return world, order, now


@pytest.fixture(scope="module")
def judge_page(browser, federation):
    page = new_page(browser)
    page.goto(federation.nodes["paris"].url + "/check")
    page.wait_for_selector("html[data-ready]")
    yield page
    page.context.close()


def compare(page, lines: list[str], now: int) -> None:
    js = page.evaluate(JUDGE, ["\n".join(lines), now])
    assert js["problems"] == []
    try:
        python = python_view(lines, now)
    except ChapterNodeError as e:  # pragma: no cover - the generator makes valid lines
        raise AssertionError(f"the audit refused the file: {e}") from e
    assert set(js["proposals"]) == set(python)
    for pid, mine in python.items():
        theirs = js["proposals"][pid]
        assert theirs == mine, (pid, mine, theirs)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=worlds())
def test_both_implementations_agree_on_generated_federations(judge_page, case) -> None:
    world, order, now = case
    compare(judge_page, world.lines(order), now)


STORY_MODULES = ("test_governance_stories", "test_governance_registry", "test_governance_seals",
                 "test_governance_docs", "test_governance_evaluate", "test_derived_admission")


def governance_stories() -> list[Any]:
    """Every Story the governance tests write: each story test is run once (its own
    assertions hold) and the stories it builds are kept."""
    import importlib
    import inspect

    from .. import governance_story

    made: list[Any] = []
    original = governance_story.Story.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    governance_story.Story.__init__ = keep
    try:
        for name in STORY_MODULES:
            module = importlib.import_module(f"tests.{name}")
            for fname, test in sorted(vars(module).items()):
                if (fname.startswith("test_") and inspect.isfunction(test)
                        and not inspect.signature(test).parameters):
                    test()
    finally:
        governance_story.Story.__init__ = original
    return [story for story in made if story.events]


def test_both_implementations_agree_on_the_governance_stories(judge_page) -> None:
    stories = governance_stories()
    assert len(stories) >= 40
    for story in stories:
        charter = json.loads(story.charter.document)
        lines = [json.dumps({"charter": charter}, ensure_ascii=False, separators=(",", ":"))]
        lines += [e.canonical.decode() for e in {e.id: e for e in story.events}.values()]
        lines += [json.dumps({"sealed": {"seal": s, "acts": a}}, separators=(",", ":"))
                  for s, a in story.sealed.items()]
        times = sorted(e.created_ms for e in story.events)
        for now in (times[len(times) // 2], times[-1] + 1, times[-1] + 400 * 24 * HOUR):
            compare(judge_page, lines, now)


def test_both_implementations_agree_on_the_real_nodes_export(judge_page, federation,
                                                              decided) -> None:
    with urllib.request.urlopen(federation.nodes["rome"].url + "/api/v1/export",
                                timeout=10) as resp:
        lines = resp.read().decode().splitlines()
    proposals = sum(1 for line in lines if '"type":"proposal"' in line)
    assert proposals >= 1
    for now in (START, START + 400 * 24 * HOUR):
        compare(judge_page, lines, now)
