"""docs/governance.md says what the code does: the worked example's numbers, every code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from node.governance import REASONS, REFUSAL_CODES, STATES

from .governance_story import Story

DOC = (Path(__file__).resolve().parent.parent / "docs" / "governance.md").read_text(encoding="utf-8")


def stated(name: str) -> dict:
    """The JSON block the doc gives after `<!-- worked-example: name -->`."""
    match = re.search(rf"<!-- worked-example: {name} -->\s*```json\n(.*?)\n```", DOC, re.DOTALL)
    assert match, f"worked example {name!r} missing from docs/governance.md"
    return json.loads(match.group(1))


def test_the_worked_vote_example_adds_up_as_the_doc_says() -> None:
    story = Story()
    story.delegate("lucia", "amelie", at="2026-12-01 09:00")
    story.delegate("jonas", "sofia", at="2026-12-01 09:00")
    budget = story.propose("amelie", "vote", title="2027 budget",
                           at="2026-12-02 10:00", closes="2026-12-05 10:00")
    story.delegate("sofia", "jonas", at="2026-12-03 09:00", proposal=budget)
    story.vote("amelie", budget, "yes", at="2026-12-03 10:00")
    story.vote("marco", budget, "no", at="2026-12-03 11:00")
    story.vote("marco", budget, "abstain", at="2026-12-04 18:00")
    story.vote("marco", budget, "no", at="2026-12-05 10:00:01")
    tally = story.decide(budget).tally.to_json()
    expected = stated("vote")
    assert {k: tally[k] for k in expected} == expected


def test_the_worked_action_example_adds_up_as_the_doc_says() -> None:
    story = Story()
    story.vouch("barcelona", "pablo", at="2026-11-01 09:00")
    stall = story.propose("pablo", "action", title="A market stall", at="2026-11-24 10:00")
    for who, at in (("lucia", "11:00"), ("marco", "12:00"), ("marco", "12:30"),
                    ("jonas", "13:00"), ("sofia", "15:00")):
        story.endorse(who, stall, at=f"2026-11-24 {at}")
    tally = story.decide(stall).tally
    expected = stated("action")
    assert {k: getattr(tally, k) for k in expected} == expected


def test_every_refusal_code_chain_reason_and_state_is_documented() -> None:
    for word in sorted(REFUSAL_CODES) + list(REASONS) + list(STATES):
        assert f"`{word}`" in DOC, f"docs/governance.md does not explain `{word}`"
