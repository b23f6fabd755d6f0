"""The packed item set: the same fingerprints, bounds and messages as a plain sorted list.

The story: a node holding 1,000,000 events keeps its Negentropy items as one buffer of 40-byte
records with chunked id sums (node/federation/negentropy.py, `VectorStorage`). Peers must not
be able to tell: for any set and any range it answers exactly what the obvious
implementation (a sorted list of tuples, sums taken item by item) answers, the item set a node
keeps current incrementally equals the one rebuilt from its store, and the whole-set opening
(`initiate_whole_set`) converges to the same differences as the reference's opening.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardening.kit import NOW_MS, InProcessNode, Kit
from node.federation.items import items_of
from node.federation.negentropy import (
    Item,
    Negentropy,
    VectorStorage,
    fingerprint_of,
)


class PlainStorage:
    """The obvious Storage: a sorted list of tuples, every fingerprint summed item by item."""

    def __init__(self, items: list[Item]) -> None:
        self.items = sorted(items)

    def size(self) -> int:
        return len(self.items)

    def get_item(self, i: int) -> Item:
        return self.items[i]

    def iterate(self, begin: int, end: int) -> Iterator[Item]:
        return iter(self.items[begin:end])

    def find_lower_bound(self, begin: int, end: int, bound: Item) -> int:
        return bisect_left(self.items, bound, begin, end)

    def fingerprint(self, begin: int, end: int) -> bytes:
        total = sum(int.from_bytes(id, "little") for _, id in self.items[begin:end])
        return fingerprint_of(total, end - begin)


def _id(rng: random.Random, style: int) -> bytes:
    """Random ids, or ids made of 0x00/0xff bytes: sums that carry across every 64-bit lane."""
    if style == 0:
        return rng.randbytes(32)
    return bytes(rng.choice((0, 0xFF, rng.randrange(256))) for _ in range(32))


@st.composite
def item_sets(draw: st.DrawFn, max_size: int = 700) -> list[Item]:
    """Up to `max_size` distinct items; few timestamps, so ids must break ties. An id appears
    once: it hashes its event, `created_at` included, so it has one timestamp."""
    n = draw(st.integers(0, max_size))
    seed = draw(st.integers(0, 2**32))
    spread = draw(st.sampled_from([1, 3, 50, 2**40]))
    style = draw(st.integers(0, 1))
    rng = random.Random(seed)
    items = {_id(rng, style): rng.randrange(spread) for _ in range(n)}
    return [(t, id) for id, t in items.items()]


def packed(items: list[Item]) -> VectorStorage:
    storage = VectorStorage(items)
    storage.seal()
    return storage


def transcript(client: object, server: object, limit: int, whole_set: bool
               ) -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]]:
    up: list[bytes] = []
    down: list[bytes] = []
    have: list[bytes] = []
    need: list[bytes] = []
    c, s = Negentropy(client, limit), Negentropy(server, limit)  # type: ignore[arg-type]
    msg: bytes | None = c.initiate_whole_set() if whole_set else c.initiate()
    while msg is not None:
        assert len(up) < 1000, "no convergence"
        up.append(msg)
        reply = s.reconcile_responder(msg)
        down.append(reply)
        msg, h, n = c.reconcile_initiator(reply)
        have += h
        need += n
    return up, down, have, need


PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(item_sets(), st.data())
def test_packed_answers_every_range_and_bound_as_the_plain_list(
        items: list[Item], data: st.DataObject) -> None:
    p, plain = packed(items), PlainStorage(items)
    n = plain.size()
    assert p.size() == n
    assert p.fingerprint(0, n) == plain.fingerprint(0, n)
    for _ in range(20):
        begin = data.draw(st.integers(0, n))
        end = data.draw(st.integers(begin, n))
        assert p.fingerprint(begin, end) == plain.fingerprint(begin, end), (begin, end)
        assert list(p.iterate(begin, end)) == plain.items[begin:end]
        assert p.ids(begin, end) == [id for _, id in plain.items[begin:end]]
        # a bound: an item held, or one between items, searched from anywhere
        if n and data.draw(st.booleans()):
            timestamp, id = plain.items[data.draw(st.integers(0, n - 1))]
            cut = data.draw(st.integers(0, 32))
            bound = (timestamp, id[:cut] + bytes(32 - cut))
        else:
            bound = (data.draw(st.integers(0, 2**40)), data.draw(st.binary(min_size=32,
                                                                          max_size=32)))
        assert p.find_lower_bound(begin, end, bound) == plain.find_lower_bound(begin, end, bound)
    for i in range(n):
        assert p.get_item(i) == plain.items[i]


@PROPERTY
@given(item_sets(400), item_sets(400), st.sampled_from([0, 4096]), st.booleans(),
       st.integers(0, 2**32))
def test_packed_and_plain_storages_exchange_the_same_messages(
        a: list[Item], b: list[Item], limit: int, whole_set: bool, seed: int) -> None:
    rng = random.Random(seed)
    shared = rng.sample(a, len(a) // 2)  # some items in common, some not
    # an id both sets drew is one event: the same timestamp on both sides
    at = {id: t for t, id in a}
    client, server = a, list({(at.get(id, t), id) for t, id in b} | set(shared))
    got = transcript(packed(client), packed(server), limit, whole_set)
    want = transcript(PlainStorage(client), PlainStorage(server), limit, whole_set)
    assert got == want
    have, need = set(got[2]), set(got[3])
    assert have == {id for _, id in set(client) - set(server)}
    assert need == {id for _, id in set(server) - set(client)}


@PROPERTY
@given(item_sets(500), item_sets(300), st.integers(0, 2**32))
def test_an_incrementally_merged_set_equals_one_sealed_from_scratch(
        base: list[Item], extra: list[Item], seed: int) -> None:
    rng = random.Random(seed)
    again = rng.sample(base, min(len(base), 5))  # already held: skipped
    merged = packed(base).with_items(extra + again)
    whole = packed(list(set(base) | set(extra)))
    assert merged.size() == whole.size()
    assert list(merged.iterate(0, merged.size())) == list(whole.iterate(0, whole.size()))
    n = whole.size()
    for _ in range(20):
        begin = rng.randrange(n + 1)
        end = rng.randrange(begin, n + 1)
        assert merged.fingerprint(begin, end) == whole.fingerprint(begin, end)


def test_from_sorted_takes_ordered_items_and_refuses_any_other_order() -> None:
    rng = random.Random(1)
    items = sorted((rng.randrange(100), rng.randbytes(32)) for _ in range(1000))
    streamed = VectorStorage.from_sorted(iter(items))
    assert list(streamed.iterate(0, 1000)) == items
    assert streamed.fingerprint(0, 1000) == PlainStorage(items).fingerprint(0, 1000)
    with pytest.raises(ValueError):
        VectorStorage.from_sorted(items[:10] + items[11:12] + items[10:11])
    with pytest.raises(ValueError):
        VectorStorage.from_sorted(items[:10] + items[9:10])  # a duplicate
    with pytest.raises(ValueError):
        VectorStorage.from_sorted([(1, b"short")])


def test_whole_set_opening_is_one_fingerprint_and_equal_sets_finish_in_one_round() -> None:
    rng = random.Random(2)
    items = [(1_700_000_000 + rng.randrange(10_000), rng.randbytes(32)) for _ in range(5000)]
    client = Negentropy(packed(items), 4096)
    opening = client.initiate_whole_set()
    # version, bound (infinity timestamp, empty prefix), mode Fingerprint, 16 bytes
    assert opening[:4] == bytes.fromhex("61000001") and len(opening) == 20
    assert opening[4:] == PlainStorage(items).fingerprint(0, len(items))
    reply = Negentropy(packed(items), 4096).reconcile_responder(opening)
    assert reply == b"\x61"
    assert client.reconcile_initiator(reply) == (None, [], [])
    # the reference's opening is untouched: 16 buckets
    assert len(Negentropy(packed(items)).initiate()) > 16 * 16


# --- the node's item set stays equal to its store ---------------------------------------------


@pytest.fixture(scope="module")
def kit() -> Kit:
    return Kit()


def _store_says_equal(node: InProcessNode) -> bool:
    """Does the node's item set match one rebuilt from its store, both ways?"""
    rebuilt = VectorStorage.from_sorted(node.store.reconciliation_items())
    items = items_of(node.node)
    as_responder = items.respond(Negentropy(rebuilt).initiate_whole_set()) == b"\x61"
    session = items.initiator()
    reply = Negentropy(rebuilt).reconcile_responder(session.initiate_whole_set())
    as_initiator = session.reconcile_initiator(reply) == (None, [], [])
    return as_responder and as_initiator


@pytest.mark.parametrize("pending_cap", [65_536, 3])
def test_a_node_keeps_its_item_set_equal_to_its_store_as_events_arrive(
        kit: Kit, pending_cap: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from node.federation import items

    monkeypatch.setattr(items, "_MAX_PENDING_ITEMS", pending_cap)
    story = kit.story
    with InProcessNode.temporary(kit) as n:
        third = len(story) // 3
        stored = n.node.receive(story[:third], origin="rome", now_ms=NOW_MS)
        assert {o.status for o in stored} == {"stored"}
        assert _store_says_equal(n)  # the item set is built here
        n.node.receive(story[third:2 * third], origin="rome", now_ms=NOW_MS)
        n.node.receive(story[:third], origin="rome", now_ms=NOW_MS)  # duplicates: no change
        assert _store_says_equal(n)  # merged (or, past the cap, rebuilt)
        n.node.receive(story[2 * third:], origin="rome", now_ms=NOW_MS)
        assert _store_says_equal(n)


# --- the whole-set opening against the reference responder -------------------------------------

VECTORS = Path(__file__).resolve().parent / "vectors" / "negentropy"


def _make_vectors() -> ModuleType:
    if "make_vectors" not in sys.modules:  # its dataclasses look their module up there
        spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["make_vectors"] = module
        spec.loader.exec_module(module)
    return sys.modules["make_vectors"]


@pytest.mark.parametrize("name", ["wholeset-equal", "wholeset-split", "wholeset-framelimit"])
def test_whole_set_opening_converges_against_the_reference_responder(name: str) -> None:
    """Replay the reference C++ responder's recorded replies to our whole-set opening: we send
    exactly the recorded messages and find exactly the difference."""
    mv = _make_vectors()
    scenario = next(s for s in mv.WHOLE_SET_SCENARIOS if s.name == name)
    client_lines, server_lines = mv.items(scenario)

    def parse(lines: list[str]) -> list[Item]:
        return [(int(ts), bytes.fromhex(id)) for _, ts, id in (x.split(",") for x in lines)]

    ours, theirs = parse(client_lines), parse(server_lines)
    sent = [x[4:] for x in (VECTORS / f"{name}.server.in").read_text().splitlines()
            if x.startswith("msg,")]
    replies = [x[4:] for x in (VECTORS / f"{name}.server.out").read_text().splitlines()]
    client = Negentropy(packed(ours), scenario.client_limit)
    msg: bytes | None = client.initiate_whole_set()
    have: set[bytes] = set()
    need: set[bytes] = set()
    for i, reply in enumerate(replies):
        assert msg is not None and msg.hex() == sent[i]
        msg, h, n = client.reconcile_initiator(bytes.fromhex(reply))
        have.update(h)
        need.update(n)
    assert msg is None
    assert have == {id for _, id in ours} - {id for _, id in theirs}
    assert need == {id for _, id in theirs} - {id for _, id in ours}
    if name == "wholeset-equal":
        assert [len(bytes.fromhex(m)) for m in sent] == [20] and replies == ["61"]
