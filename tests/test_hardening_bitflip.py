"""Campaign 3, fast slice: valid events with one bit flipped in a signed field or in the
signature are all refused, at both doors, and nothing is stored."""

from __future__ import annotations

import random

from hardening.bitflip import flip, run, valid_events
from hardening.kit import Kit
from node.protocol.errors import InvalidEvent
from node.protocol.events import parse_event


def test_every_event_of_the_corpus_is_valid_before_the_flip() -> None:
    kit = Kit()
    events = valid_events(kit, 200, random.Random(3))
    assert {e.type for e in events} >= {"proposal", "comment", "vote", "veto", "delegation",
                                        "member", "seal", "endorse", "chapter_url"}
    for e in events:
        assert parse_event(e.canonical, federation=kit.federation).id == e.id


def test_a_flip_in_a_value_is_caught_by_the_signature() -> None:
    """A value-level flip re-encoded as canonical JSON is well-formed: only the signature
    (or the schema) can tell, and it does."""
    kit = Kit()
    rng = random.Random(5)
    codes = set()
    for e in valid_events(kit, 300, rng):
        where, altered = flip(e, random.Random(rng.random()))
        try:
            got = parse_event(altered, federation=kit.federation)
        except InvalidEvent as err:
            codes.add(err.code)
            continue
        assert got.canonical == e.canonical, where  # only another spelling of the same bytes
    assert "bad_signature" in codes


def test_one_thousand_flipped_events_are_all_refused() -> None:
    result = run(seed=11, scale=0.1)
    assert result.count == 1000
    assert result.failures == [], result.failures
