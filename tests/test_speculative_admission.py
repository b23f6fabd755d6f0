"""A peer's events are admitted while their signatures are still being verified
(node.ingest.pipeline), and committed only once every verdict is in. These tests
send batches with forged signatures among good events: what is stored, and every outcome,
must be what checking each signature first gives.

The batches are long enough (over `node.ingest.MIN_PARALLEL` lines) for the signatures to go
to the worker processes, as a real peer batch's do.
"""

from __future__ import annotations

import json
from pathlib import Path

from node.chapter.chapter_node import ChapterNode
from node.protocol.events import Event, b64url, canonical
from node.store import open_store

from .conftest import person_key
from .governance_story import Story, ms

NOW = "2026-11-04 10:00"


def forged(event: Event) -> bytes:
    """`event` with a signature by someone other than its author: well formed, not valid."""
    obj = json.loads(event.canonical)
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    obj["sig"] = b64url(person_key("mallory").sign(canonical(unsigned)).signature)
    return canonical(obj)


def node(tmp_path: Path, s: Story) -> ChapterNode:
    return ChapterNode(open_store(tmp_path / "paris.db"), s.charter, "paris",
                       person_key("node paris"))


def padding(s: Story, on: Event, n: int = 40) -> list[Event]:
    return [s.comment("amelie", on, f"note {k}", at=f"2026-11-03 11:{k:02d}") for k in range(n)]


def test_acts_on_a_forged_proposal_are_not_stored_and_everything_else_is(tmp_path: Path) -> None:
    s = Story()
    good = s.propose("marco", "consent", at="2026-11-02 10:00", closes="2026-11-10 10:00")
    fake = s.propose("lucia", "consent", title="Forged", at="2026-11-02 10:05",
                     closes="2026-11-10 10:00")
    on_fake = [s.veto("jonas", fake, at="2026-11-02 10:10"),
               s.comment("sofia", fake, "agreed", at="2026-11-02 10:11")]
    on_good = [s.veto("amelie", good, at="2026-11-02 10:12"), *padding(s, good)]
    lines = [good.canonical, forged(fake), *(e.canonical for e in on_fake + on_good)]
    n = node(tmp_path, s)
    out = n.receive(lines, origin="rome", now_ms=ms(NOW))
    codes = [o.code or o.status for o in out]
    assert codes[0] == "stored"
    assert codes[1] == "bad_signature" and out[1].id is None
    assert codes[2:4] == ["unknown_proposal", "unknown_proposal"]  # it was never stored
    assert codes[4:] == ["stored"] * len(on_good)
    assert n.store.known([good.id, fake.id, *(e.id for e in on_fake + on_good)]) \
        == {good.id, *(e.id for e in on_good)}
    # the same bytes again are duplicates, and the forged one is still refused
    again = n.receive(lines, origin="rome", now_ms=ms(NOW))
    assert [o.code or o.status for o in again][:2] == ["duplicate", "bad_signature"]


def test_a_forged_event_is_refused_for_its_signature_before_any_rule(tmp_path: Path) -> None:
    s = Story()
    proposal = s.propose("marco", "consent", at="2026-11-02 10:00", closes="2026-11-10 10:00")
    # a delegation to oneself is refused by the rules, but its signature fails first
    stranger = s.delegate("marco", "marco", at="2026-11-02 10:30", proposal=proposal)
    n = node(tmp_path, s)
    lines = [proposal.canonical, *(e.canonical for e in padding(s, proposal)), forged(stranger)]
    out = n.receive(lines, origin="rome", now_ms=ms(NOW))
    assert out[-1].code == "bad_signature"
    assert all(o.status == "stored" for o in out[:-1])
    # unforged, the same veto is refused by the rules, not for its signature
    out = n.receive([stranger.canonical], origin="rome", now_ms=ms(NOW))
    assert out[0].code == "self_delegation"


def test_a_forged_registry_event_rolls_back_only_its_own_transaction(tmp_path: Path) -> None:
    """A `member` event is committed at once (later lines must see the new registry): the
    transaction before it stands, the forged vouch and what relied on it do not."""
    s = Story()
    proposal = s.propose("marco", "consent", at="2026-11-02 10:00", closes="2026-11-10 10:00")
    before = padding(s, proposal)
    honest = s.vouch("paris", "chloe", at="2026-11-03 12:00")
    fake = s.vouch("rome", "giulia", at="2026-11-03 12:01")
    after = [s.comment("amelie", proposal, "after", at="2026-11-03 12:02")]
    n = node(tmp_path, s)
    lines = [proposal.canonical, *(e.canonical for e in before), honest.canonical, forged(fake),
             *(e.canonical for e in after)]
    out = n.receive(lines, origin="rome", now_ms=ms(NOW))
    codes = [o.code or o.status for o in out]
    assert codes == ["stored"] * (len(before) + 2) + ["bad_signature", "stored"]
    assert fake.id not in n.store.known([fake.id])
    assert n.store.count() == len(before) + 3
