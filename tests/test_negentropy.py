"""Negentropy v1: convergence at scale, frame limits, the harness, hostile input, reference vectors.

The story: two chapter nodes hold ~100,000 event ids each and must find exactly the ones the
other lacks, within frame limits, never crashing on a hostile peer's bytes, and speaking the
same bytes as the reference implementation (tests/vectors/negentropy/README.md).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.federation.negentropy import (
    MAX_TIMESTAMP,
    PROTOCOL_VERSION,
    Item,
    Negentropy,
    NegentropyError,
    Storage,
    VectorStorage,
    encode_varint,
    fingerprint_of,
)
from node.federation.negentropy_harness import Harness, HarnessError
from node.protocol.errors import RemoteError

ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(__file__).resolve().parent / "vectors" / "negentropy"
BASE_TS = 1_700_000_000


# --- helpers ---------------------------------------------------------------------------------


def random_items(rng: random.Random, n: int, spread: int) -> list[Item]:
    """n items with timestamps in [BASE_TS, BASE_TS + spread): collisions force id prefixes."""
    return [(BASE_TS + rng.randrange(spread), rng.randbytes(32)) for _ in range(n)]


def sealed(items: list[Item]) -> VectorStorage:
    storage = VectorStorage(items)
    storage.seal()
    return storage


class Exchange:
    """Drive an initiator and a responder in memory, recording every message."""

    def __init__(
        self, client: Storage, server: Storage, client_limit: int = 0, server_limit: int = 0
    ) -> None:
        self.client = Negentropy(client, client_limit)
        self.server = Negentropy(server, server_limit)
        self.up: list[bytes] = []
        self.down: list[bytes] = []
        self.have: list[bytes] = []
        self.need: list[bytes] = []

    def run(self, max_rounds: int = 10_000) -> Exchange:
        msg: bytes | None = self.client.initiate()
        while msg is not None:
            assert len(self.up) < max_rounds, "no convergence"
            self.up.append(msg)
            reply = self.server.reconcile_responder(msg)
            self.down.append(reply)
            msg, have, need = self.client.reconcile_initiator(reply)
            self.have += have
            self.need += need
        return self


@pytest.fixture(scope="module")
def base_100k() -> list[Item]:
    return random_items(random.Random(100_000), 100_000, spread=60_000)


# --- (1) 100,000 items, differing by 0 / 1 / 10 / 1,000 --------------------------------------


@pytest.mark.parametrize(
    ("client_only", "server_only"), [(0, 0), (1, 0), (0, 1), (5, 5), (400, 600)]
)
def test_100k_stores_find_exactly_the_symmetric_difference(
    base_100k: list[Item], client_only: int, server_only: int
) -> None:
    rng = random.Random(client_only * 1000 + server_only)
    extra_c = random_items(rng, client_only, spread=60_000)
    extra_s = random_items(rng, server_only, spread=60_000)
    ex = Exchange(sealed(base_100k + extra_c), sealed(base_100k + extra_s)).run()

    # no frame limit: every difference reported exactly once
    assert sorted(ex.have) == sorted(i for _, i in extra_c)
    assert sorted(ex.need) == sorted(i for _, i in extra_s)
    client_ids = {i for _, i in base_100k + extra_c}
    server_ids = {i for _, i in base_100k + extra_s}
    assert client_ids | set(ex.need) == server_ids | set(ex.have)
    if client_only + server_only == 0:
        assert len(ex.up) == 1  # 16 matching fingerprints: one round and done
    assert len(ex.up) <= 4


# --- (2) frame size limits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_limit", "server_limit"), [(4096, 4096), (4096, 0), (0, 4096), (60_000, 500_000)]
)
def test_frame_size_limit_is_respected_and_still_converges(
    base_100k: list[Item], client_limit: int, server_limit: int
) -> None:
    rng = random.Random(7)
    extra_c = random_items(rng, 500, spread=60_000)
    extra_s = random_items(rng, 500, spread=60_000)
    # the client lacks a contiguous block too, so the server must truncate long IdLists
    client = sealed(base_100k[2_000:] + extra_c)
    server = sealed(base_100k + extra_s)
    ex = Exchange(client, server, client_limit, server_limit).run()

    if client_limit:
        assert max(len(m) for m in ex.up) <= client_limit
    if server_limit:
        assert max(len(m) for m in ex.down) <= server_limit
    # with limits an id may be reported twice (spec "Frame Size Limits"), never a wrong one
    assert set(ex.have) == {i for _, i in extra_c}
    assert set(ex.need) == {i for _, i in base_100k[:2_000] + extra_s}


def test_frame_size_limit_below_minimum_is_refused() -> None:
    with pytest.raises(ValueError):
        Negentropy(sealed([]), 4095)
    Negentropy(sealed([]), 4096)


# --- API and storage ----------------------------------------------------------------------------


class IterateOnlyStorage:
    """A Storage without VectorStorage's `ids` fast path: the generic code path."""

    def __init__(self, inner: VectorStorage) -> None:
        self.inner = inner

    def size(self) -> int:
        return self.inner.size()

    def get_item(self, i: int) -> Item:
        return self.inner.get_item(i)

    def iterate(self, begin: int, end: int) -> Iterator[Item]:
        return iter(list(self.inner.iterate(begin, end)))

    def find_lower_bound(self, begin: int, end: int, bound: Item) -> int:
        return self.inner.find_lower_bound(begin, end, bound)

    def fingerprint(self, begin: int, end: int) -> bytes:
        return self.inner.fingerprint(begin, end)


def test_any_storage_protocol_implementation_gives_the_same_bytes() -> None:
    rng = random.Random(3)
    base = random_items(rng, 3000, spread=500)
    a = sealed(base[:2900] + random_items(rng, 40, 500))
    b = sealed(base[100:])
    plain = Exchange(a, b, 4096, 4096).run()
    generic = Exchange(IterateOnlyStorage(a), IterateOnlyStorage(b), 4096, 4096).run()
    assert isinstance(IterateOnlyStorage(a), Storage) and isinstance(a, Storage)
    assert (plain.up, plain.down, plain.have, plain.need) == (
        generic.up,
        generic.down,
        generic.have,
        generic.need,
    )


def test_fingerprint_is_sum_mod_2_256_then_count_then_sha256() -> None:
    import hashlib

    ids = [b"\xff" * 32, (2).to_bytes(32, "little")]  # sum wraps to 1
    storage = sealed([(1, ids[0]), (2, ids[1])])
    expected = hashlib.sha256((1).to_bytes(32, "little") + b"\x02").digest()[:16]
    assert storage.fingerprint(0, 2) == expected == fingerprint_of(2**256 + 1, 2)
    assert storage.fingerprint(1, 1) == hashlib.sha256(bytes(32) + b"\x00").digest()[:16]


def test_varint_encoding_is_base_128_most_significant_first() -> None:
    assert encode_varint(0) == b"\x00"
    assert encode_varint(127) == b"\x7f"
    assert encode_varint(128) == b"\x81\x00"
    assert encode_varint(300) == b"\x82\x2c"
    assert encode_varint(2**64 - 1) == b"\x81" + b"\xff" * 8 + b"\x7f"


def test_empty_set_initiates_with_one_empty_idlist_to_infinity() -> None:
    assert Negentropy(sealed([])).initiate() == bytes.fromhex("6100000200")


def test_reconcile_dispatches_on_role_like_the_reference() -> None:
    a, b = sealed([(5, b"\x01" * 32)]), sealed([(6, b"\x02" * 32)])
    client, server = Negentropy(a), Negentropy(b)
    reply = server.reconcile(client.initiate())
    assert isinstance(reply, bytes)
    assert client.reconcile(reply) == (None, [b"\x01" * 32], [b"\x02" * 32])


def test_local_misuse_is_not_a_remote_error() -> None:
    storage = VectorStorage()
    with pytest.raises(ValueError):
        storage.insert(1, b"short")
    with pytest.raises(ValueError):
        storage.add(MAX_TIMESTAMP, bytes(32))  # infinity is reserved
    storage.insert(1, bytes(32))
    storage.add(1, bytes(32))
    with pytest.raises(ValueError):
        storage.seal()  # duplicate
    ne = Negentropy(sealed([]))
    ne.initiate()
    with pytest.raises(RuntimeError):
        ne.initiate()
    with pytest.raises(RuntimeError):
        ne.reconcile_responder(b"\x61")
    with pytest.raises(RuntimeError):
        Negentropy(sealed([])).reconcile_initiator(b"\x61")


# --- hostile input: specific errors -------------------------------------------------------------

SMALL = sealed(random_items(random.Random(11), 300, spread=20))


def responder(limit: int = 0, **kw: int) -> Negentropy:
    return Negentropy(SMALL, limit, **kw)


def initiator(limit: int = 0) -> Negentropy:
    ne = Negentropy(SMALL, limit)
    ne.set_initiator()
    return ne


@pytest.mark.parametrize(
    ("hexmsg", "why"),
    [
        ("", "empty: no version byte"),
        ("50", "version byte outside 0x60..0x6f"),
        ("61 80", "truncated varint"),
        ("61 8080", "non-minimal varint"),
        ("61 81ffffffffffffffffff7f 00 00", "11-byte varint"),
        ("61 82808080808080808000 00 00", "varint over 64 bits"),
        ("61 00 00 03", "unknown mode 3"),
        ("61 00 21" + "00" * 33 + "00", "id prefix of 33 bytes"),
        ("61 00 05 0102", "id prefix truncated"),
        ("61 00 00 01 0102", "fingerprint truncated"),
        ("61 00 00 02 02" + "11" * 33, "IdList shorter than its count"),
        ("61 00 00 02 8fffffffffffffff7f", "IdList count far beyond the message"),
        ("61 05 00", "bound without a mode"),
        ("61 0a 01 20 00 01 01 10 00", "bounds out of order (same timestamp, smaller prefix)"),
    ],
)
def test_malformed_messages_raise_negentropy_error(hexmsg: str, why: str) -> None:
    msg = bytes.fromhex(hexmsg.replace(" ", ""))
    for ne in (responder(), initiator(), responder(4096), initiator(4096)):
        with pytest.raises(NegentropyError) as caught:
            ne.reconcile(msg)
        assert isinstance(caught.value, RemoteError) and caught.value.code == "negentropy_error"


def test_ranges_after_infinity_saturate_like_the_reference() -> None:
    """Timestamps past infinity saturate (reference decodeTimestampIn): empty ranges, legal."""
    msg = bytes.fromhex("61000000050000000001") + bytes(16)
    reply = responder().reconcile_responder(msg)
    assert reply[0] == PROTOCOL_VERSION


def test_bounds_out_of_order_are_refused() -> None:
    # ts 9 with prefix 0x20, then the same timestamp (delta 0 -> encoded 1) with prefix 0x10
    msg = bytes.fromhex("610a01200001011000")
    with pytest.raises(NegentropyError, match="out of order"):
        responder().reconcile_responder(msg)


def test_responder_answers_unknown_minor_version_with_its_own() -> None:
    assert responder().reconcile_responder(bytes.fromhex("62aabbccddeeff")) == b"\x61"
    with pytest.raises(NegentropyError):
        initiator().reconcile_initiator(bytes.fromhex("62"))


def test_message_size_cap() -> None:
    msg = Negentropy(SMALL).initiate()
    responder(max_message_size=len(msg)).reconcile_responder(msg)
    with pytest.raises(NegentropyError, match="too large"):
        responder(max_message_size=len(msg) - 1).reconcile_responder(msg)


def test_many_ranges_cost_linear_work() -> None:
    """60,000 empty fingerprint ranges after infinity: answered, each range O(1)."""
    msg = b"\x61" + b"\x00\x00\x01" + bytes(16) + (b"\x00\x00\x00") * 60_000
    reply = responder(4096).reconcile_responder(msg)
    assert len(reply) <= 4096


# --- (4) hypothesis: random input gives a result or NegentropyError ----------------------------


def _varint_any(n: int) -> bytes:
    """Base-128 encoding without the 64-bit cap, to feed oversized values."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


@st.composite
def plausible_messages(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from([0x61] * 8 + [0x60, 0x62, 0x6F, 0x00, 0xFF]))
    parts = [bytes((version,))]
    small_int = st.one_of(st.integers(0, 4), st.integers(0, 2**64 + 3))
    for _ in range(draw(st.integers(0, 10))):
        if draw(st.integers(0, 5)) == 0:
            parts.append(draw(st.binary(max_size=24)))
            continue
        plen = draw(st.integers(0, 34))
        prefix = draw(st.binary(min_size=plen, max_size=plen))
        parts += [_varint_any(draw(small_int)), _varint_any(plen), prefix]
        mode = draw(st.integers(0, 3))
        parts.append(_varint_any(mode))
        if mode == 1:
            parts.append(draw(st.binary(min_size=16, max_size=16)))
        elif mode == 2:
            known = st.sampled_from([i for _, i in SMALL.iterate(0, 40)])
            ids = draw(st.lists(known | st.binary(min_size=32, max_size=32), max_size=5))
            parts.append(_varint_any(len(ids) + draw(st.integers(0, 1))))
            parts += ids
    msg = b"".join(parts)
    if draw(st.booleans()):
        msg = msg[: draw(st.integers(0, len(msg)))]
    return msg


def _genuine_messages() -> list[bytes]:
    rng = random.Random(5)
    other = sealed(random_items(rng, 250, spread=20) + list(SMALL.iterate(0, 150)))
    ex = Exchange(other, SMALL).run()
    return ex.up + ex.down


GENUINE = _genuine_messages()


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    msg = bytearray(draw(st.sampled_from(GENUINE)))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, max(0, len(msg) - 1)))
        op = draw(st.integers(0, 2))
        if op == 0 and msg:
            msg[pos] = draw(st.integers(0, 255))
        elif op == 1:
            msg[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del msg[pos : pos + draw(st.integers(1, 8))]
    return bytes(msg)


def _must_answer_or_refuse(msg: bytes) -> None:
    """A result or NegentropyError; and whatever we answer is itself a valid message."""
    for limit in (0, 4096):
        try:
            out = responder(limit).reconcile_responder(msg)
        except NegentropyError:
            pass
        else:
            assert out[:1] == bytes((PROTOCOL_VERSION,))
            assert not limit or len(out) <= limit
            if len(out) > 1:
                initiator().reconcile_initiator(out)  # parses: bounds in order, lengths right
        try:
            nxt, have, need = initiator(limit).reconcile_initiator(msg)
        except NegentropyError:
            pass
        else:
            assert all(len(i) == 32 for i in have + need)
            if nxt is not None:
                assert nxt[0] == PROTOCOL_VERSION and (not limit or len(nxt) <= limit)
                responder().reconcile_responder(nxt)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_negentropy_error(msg: bytes) -> None:
    _must_answer_or_refuse(msg)
    _must_answer_or_refuse(b"\x61" + msg)


@FUZZ
@given(plausible_messages())
def test_plausible_messages_never_raise_anything_but_negentropy_error(msg: bytes) -> None:
    _must_answer_or_refuse(msg)


@FUZZ
@given(mutated_messages())
def test_mutated_genuine_messages_never_raise_anything_but_negentropy_error(msg: bytes) -> None:
    _must_answer_or_refuse(msg)


# --- (3) the harness, two processes piped together ---------------------------------------------


def _spawn(limit: int) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("FRAMESIZELIMIT", None)
    if limit:
        env["FRAMESIZELIMIT"] = str(limit)
    return subprocess.Popen(
        [sys.executable, "-m", "node.federation.negentropy_harness"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _drive(
    client_items: list[Item], server_items: list[Item], limit: int
) -> tuple[set[str], set[str], int]:
    """The reference driver (test/fuzz.pl) in miniature: forward msg lines until `done`."""
    c, s = _spawn(limit), _spawn(limit)

    def kill_both() -> None:
        c.kill()
        s.kill()

    watchdog = threading.Timer(120, kill_both)
    watchdog.start()
    try:
        assert c.stdin and c.stdout and s.stdin and s.stdout
        for stdin, items in ((c.stdin, client_items), (s.stdin, server_items)):
            stdin.write("".join(f"item,{ts},{i.hex()}\n" for ts, i in items) + "seal\n")
        s.stdin.flush()
        c.stdin.write("initiate\n")
        c.stdin.flush()
        have: set[str] = set()
        need: set[str] = set()
        rounds = 0
        while True:
            line = c.stdout.readline().strip()
            kind, _, value = line.partition(",")
            if kind in ("have", "need"):
                (have if kind == "have" else need).add(value)
                continue
            if kind == "done":
                break
            assert kind == "msg", f"unexpected client line {line!r}"
            assert not limit or len(value) // 2 <= limit
            rounds += 1
            s.stdin.write(line + "\n")
            s.stdin.flush()
            reply = s.stdout.readline().strip()
            assert reply.startswith("msg,"), f"unexpected server line {reply!r}"
            assert not limit or (len(reply) - 4) // 2 <= limit
            c.stdin.write(reply + "\n")
            c.stdin.flush()
        for proc in (c, s):
            if proc.stdin:
                proc.stdin.close()
            assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        return have, need, rounds
    finally:
        watchdog.cancel()
        for proc in (c, s):
            if proc.poll() is None:
                proc.kill()
            for f in (proc.stdin, proc.stdout, proc.stderr):
                if f and not f.closed:
                    f.close()


@pytest.mark.parametrize("limit", [0, 4096])
def test_harness_reconciles_against_itself_over_the_line_protocol(limit: int) -> None:
    rng = random.Random(limit)
    base = random_items(rng, 3000, spread=1000)
    only_c, only_s = random_items(rng, 150, 1000), random_items(rng, 150, 1000)
    have, need, rounds = _drive(base + only_c, base[200:] + only_s, limit)
    assert have == {i.hex() for _, i in only_c + base[:200]}
    assert need == {i.hex() for _, i in only_s}
    assert rounds >= 2


def test_harness_fails_loudly_on_a_bad_line() -> None:
    proc = _spawn(0)
    out, err = proc.communicate("seal\nmsg,61ff\n", timeout=30)
    assert proc.returncode != 0 and "NegentropyError" in err
    with pytest.raises(HarnessError):
        Harness().handle_line("frobnicate")


# --- (5) known-answer transcripts from the reference C++ implementation ------------------------


def _rounds(lines: list[str]) -> list[tuple[frozenset[str], frozenset[str], str]]:
    """Group output lines by round: (have set, need set, closing msg/done line)."""
    rounds = []
    have: set[str] = set()
    need: set[str] = set()
    for line in lines:
        if line.startswith("have,"):
            have.add(line)
        elif line.startswith("need,"):
            need.add(line)
        else:
            rounds.append((frozenset(have), frozenset(need), line))
            have, need = set(), set()
    assert not have and not need, "have/need lines after the last msg"
    return rounds


TRANSCRIPTS = sorted(p.name.removesuffix(".in") for p in VECTORS.glob("*.in"))
FRAME_LIMITS: dict[str, int] = json.loads((VECTORS / "frame_size_limits.json").read_text())


def test_reference_transcripts_are_present() -> None:
    assert len(TRANSCRIPTS) >= 10
    assert set(TRANSCRIPTS) == set(FRAME_LIMITS)


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_reference_transcript_replays_byte_for_byte(name: str) -> None:
    limit = FRAME_LIMITS[name]
    harness = Harness(limit)
    ours: list[str] = []
    for line in (VECTORS / f"{name}.in").read_text().splitlines():
        ours += harness.handle_line(line)
    theirs = (VECTORS / f"{name}.out").read_text().splitlines()
    assert _rounds(ours) == _rounds(theirs)
