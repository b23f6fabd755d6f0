"""Negentropy protocol version 1: range-based set reconciliation between two nodes.

Pure: bytes in, bytes out; no I/O.

Rule: two nodes find which event ids one holds and the other lacks by exchanging
negentropy v1 messages (hoytech/negentropy, `docs/negentropy-protocol-v1.md`, the wire
format Nostr NIP-77 carries). This module produces and consumes those messages byte for byte
as the reference C++ and JavaScript implementations do, so a transcript made here equals the
reference's for the same sets and frame size limit.

- An item is `(timestamp, id)`: timestamp an unsigned 64-bit integer below 2**64-1 (the
  maximum is "infinity", reserved), id exactly 32 raw bytes. Items sort by timestamp, then id.
- A fingerprint of a range is the sum of its ids as 256-bit little-endian integers mod 2**256,
  followed by the varint count, hashed with SHA-256 and cut to 16 bytes (spec "Fingerprint
  Algorithm").
- The initiator (client) calls `initiate()` (the reference's first message) or
  `initiate_whole_set()` (one fingerprint: cheapest when the sets are likely equal), then
  feeds every reply to `reconcile_initiator`, which returns the next message (None once
  done) and the ids it has / needs. The responder
  (server) feeds every message to `reconcile_responder` and sends back what it returns.
  `reconcile()` mirrors the reference's overloaded `reconcile` and dispatches on the role.
- A non-zero `frame_size_limit` (at least 4096, as the reference) caps every message this
  side produces; the reference's 200-byte safety margin is kept so splits happen at the same
  places.

Hostile input: every malformed message raises `NegentropyError` (a `RemoteError`) and nothing
else: truncation, a varint over 64 bits or not minimally encoded, an unknown mode, a protocol
version byte outside 0x60..0x6F, an id prefix over 32 bytes, bounds out of order, an id list
longer than the message, or a message over `max_message_size`. A responder handed a message of
another version in 0x60..0x6F answers with the single byte 0x61, as the spec asks.

Work is bounded by construction: ranges are checked to be non-decreasing, so they cut the
sorted store into disjoint index intervals. Per range the responder does one binary search and
at most one fingerprint; splitting (16 fingerprints) only happens to a range holding 32 or more
of our items, so at most size/32 times per message; id lists sent back cover each of our items
at most once. A message of n bytes therefore costs O(n log N + N) for a store of N items and
the reply is O(n + 32 N) bytes, or at most `frame_size_limit` bytes when one is set.

Misuse by the local caller (wrong role, item added after `seal()`, a 31-byte id) is a bug, not
a remote fault: it raises `ValueError` or `RuntimeError`.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from node.protocol.errors import RemoteError

__all__ = [
    "PROTOCOL_VERSION",
    "ID_SIZE",
    "FINGERPRINT_SIZE",
    "MAX_TIMESTAMP",
    "MIN_FRAME_SIZE_LIMIT",
    "Item",
    "NegentropyError",
    "Storage",
    "VectorStorage",
    "Negentropy",
    "encode_varint",
    "fingerprint_of",
]

PROTOCOL_VERSION = 0x61
"""Version 1 (spec "Message": 0x61 is v1, 0x62 would be v2, ...)."""

ID_SIZE = 32
FINGERPRINT_SIZE = 16
MAX_TIMESTAMP = 2**64 - 1
"""The reserved "infinity" timestamp: an upper bound, never an item's timestamp."""

MIN_FRAME_SIZE_LIMIT = 4096
"""The reference refuses smaller non-zero limits: the 200-byte margin needs room."""

_FRAME_MARGIN = 200  # reference `exceededFrameSizeLimit`: n > limit - 200
_BUCKETS = 16  # reference splitRange: 16 buckets, id list below 2 * 16 items
_MODE_SKIP = 0
_MODE_FINGERPRINT = 1
_MODE_IDLIST = 2
_MASK64 = (1 << 64) - 1
_MASK256 = (1 << 256) - 1
_MAX_VARINT_BYTES = 10  # ceil(64 / 7)
_ZERO_ID = bytes(ID_SIZE)
_INFINITY_ID = b"\xff" * ID_SIZE
_INFINITY_KEY = (MAX_TIMESTAMP, _INFINITY_ID)
_SMALL_VARINTS = [bytes((n,)) for n in range(0x80)]
_sha256 = hashlib.sha256

Item = tuple[int, bytes]
"""`(timestamp, id)`; ordered like the spec orders records: timestamp, then id bytes."""


class NegentropyError(RemoteError):
    """A peer's negentropy message is malformed, or asks for work we refuse to do."""

    code = "negentropy_error"


# --- varints (spec "Varint") -------------------------------------------------------------


def encode_varint(n: int) -> bytes:
    """Base-128, most significant digit first, high bit on every byte but the last."""
    if n < 0x80:
        return _SMALL_VARINTS[n]
    out = bytearray((n & 0x7F,))
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.reverse()
    return bytes(out)


def fingerprint_of(id_sum: int, count: int) -> bytes:
    """Spec "Fingerprint Algorithm": sha256(sum mod 2**256 as 32 LE bytes || varint(count))[:16]."""
    acc = (id_sum & _MASK256).to_bytes(ID_SIZE, "little")
    return hashlib.sha256(acc + encode_varint(count)).digest()[:FINGERPRINT_SIZE]


class _Reader:
    """A cursor over one incoming message; every short read is the peer's fault."""

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._end = len(data)

    def at_end(self) -> bool:
        return self._pos >= self._end

    def remaining(self) -> int:
        return self._end - self._pos

    def byte(self) -> int:
        if self._pos >= self._end:
            raise NegentropyError("negentropy message ends prematurely")
        b = self._data[self._pos]
        self._pos += 1
        return b

    def take(self, n: int) -> bytes:
        start = self._pos
        if n > self._end - start:
            raise NegentropyError("negentropy message ends prematurely")
        self._pos = start + n
        return self._data[start : start + n]

    def varint(self) -> int:
        """Decode one varint; refuse truncation, leading zero digits and values over 64 bits.

        The reference decoders accept non-minimal encodings and silently wrap at 64 bits; no
        conforming encoder produces either, so refusing them only rejects hostile input.
        """
        data, pos, end = self._data, self._pos, self._end
        if pos >= end:
            raise NegentropyError("truncated varint")
        b = data[pos]
        if b < 0x80:  # fast path: one digit
            self._pos = pos + 1
            return b
        if b == 0x80:
            raise NegentropyError("varint not minimally encoded")
        value = 0
        start = pos
        while True:
            if pos >= end:
                raise NegentropyError("truncated varint")
            if pos - start >= _MAX_VARINT_BYTES:
                raise NegentropyError("overlong varint")
            b = data[pos]
            pos += 1
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        if value > _MASK64:
            raise NegentropyError("varint exceeds 64 bits")
        self._pos = pos
        return value


# --- storage --------------------------------------------------------------------------------


@runtime_checkable
class Storage(Protocol):
    """What the reconciler needs from a sealed, sorted set of items (reference StorageBase).

    Indices are positions in the sorted order; ranges are half-open `[begin, end)`.
    """

    def size(self) -> int: ...

    def get_item(self, i: int) -> Item: ...

    def iterate(self, begin: int, end: int) -> Iterable[Item]: ...

    def find_lower_bound(self, begin: int, end: int, bound: Item) -> int:
        """First index in `[begin, end)` whose item is >= `bound`, else `end`."""
        ...

    def fingerprint(self, begin: int, end: int) -> bytes:
        """The 16-byte fingerprint of the items in `[begin, end)`."""
        ...


class VectorStorage:
    """A sorted vector of items (reference `storage::Vector`), packed.

    The items live in one buffer of fixed 40-byte records `timestamp (8 bytes
    big-endian) || id`, so comparing two records as bytes is the spec's order and a node
    holding 1,000,000 events keeps 40 MB here instead of a Python tuple, int and bytes per
    item (~300 MB). Fingerprints come from the id sums precomputed once per chunk of
    `_CHUNK` items plus the partial items at both ends (fewer than `_CHUNK` each): O(1)
    whatever the range, which keeps large syncs fast in CPython and bounds what a hostile
    peer can make us compute.

    Either `insert` (alias `add`) items, then `seal()` (sorts, refuses duplicates), or build
    a sealed one with `from_sorted` from items already in order (a store's ORDER BY) without
    holding them as Python objects. Sealed storages are read-only: `with_items` returns a new
    one, so a reconciliation in progress keeps the set it started with.
    """

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._pending: list[bytes] = []
        self._sealed = False
        self._buf: bytes | bytearray = bytearray()
        self._n = 0
        self._prefix: bytes | bytearray = bytes(ID_SIZE)  # chunk prefix sums, 32 bytes LE each
        self._samples: list[bytes] = []  # every _SAMPLE-th record, for a C bisect first
        self.add_many(items)

    @classmethod
    def from_sorted(cls, items: Iterable[Item]) -> VectorStorage:
        """A sealed storage from items in strictly increasing order; refuses any other order."""
        storage = cls()
        buf = storage._buf
        prev = b""
        key_of = _key_of
        for timestamp, id in items:
            key = key_of(timestamp, id)
            if key <= prev:
                raise ValueError("items not in strictly increasing order")
            buf += key
            prev = key
        storage._seal_buffer()
        return storage

    def insert(self, timestamp: int, id: bytes) -> None:
        """Queue one item (the reference's name); ids are 32 raw bytes, timestamps below
        the infinity value."""
        if self._sealed:
            raise RuntimeError("VectorStorage already sealed")
        self._pending.append(_key_of(timestamp, id))

    add = insert

    def add_many(self, items: Iterable[Item]) -> None:
        for timestamp, id in items:
            self.insert(timestamp, id)

    def seal(self) -> None:
        """Sort, refuse duplicates, precompute the chunk sums; the storage is read-only after."""
        if self._sealed:
            raise RuntimeError("VectorStorage already sealed")
        keys = sorted(self._pending)
        self._pending = []
        buf = self._buf
        prev = b""
        for key in keys:
            if key == prev:
                raise ValueError("duplicate item inserted")
            buf += key
            prev = key
        del keys
        self._seal_buffer()

    def with_items(self, items: Iterable[Item]) -> VectorStorage:
        """A new sealed storage holding ours plus `items` (those already held are skipped).

        Costs one copy of the buffer and the chunk sums from the first new item on: cheap
        when new items sort last, as events just made do.
        """
        self._check_sealed()
        keys = sorted({_key_of(timestamp, id) for timestamp, id in items})
        buf, n = self._buf, self._n
        cuts: list[tuple[int, bytes]] = []
        lo = 0
        for key in keys:
            i = self._bisect(key, lo, n)
            lo = i
            if i < n and buf[i * _RECORD : (i + 1) * _RECORD] == key:
                continue
            cuts.append((i, key))
        if not cuts:
            return self
        parts: list[bytes | memoryview] = []
        with memoryview(buf) as old:
            prev = 0
            for i, key in cuts:
                parts.append(old[prev * _RECORD : i * _RECORD])
                parts.append(key)
                prev = i
            parts.append(old[prev * _RECORD :])
            merged = VectorStorage()
            merged._buf = b"".join(parts)  # one allocation, no copy of the old buffer first
            del parts
        merged._seal_buffer(bytearray(self._prefix[: (cuts[0][0] // _CHUNK + 1) * ID_SIZE]))
        return merged

    @property
    def sealed(self) -> bool:
        return self._sealed

    def size(self) -> int:
        self._check_sealed()
        return self._n

    def get_item(self, i: int) -> Item:
        if not (self._sealed and 0 <= i < self._n):  # one test on the hot path
            self._check_sealed()
            raise IndexError("item index out of range")
        return _ITEM.unpack_from(self._buf, i * _RECORD)  # type: ignore[return-value]

    def iterate(self, begin: int, end: int) -> Iterator[Item]:
        self._check_range(begin, end)
        records = memoryview(self._buf)[begin * _RECORD : end * _RECORD]
        return _ITEM.iter_unpack(records)  # type: ignore[return-value]

    def ids(self, begin: int, end: int) -> list[bytes]:
        """The ids in `[begin, end)`; a fast path the reconciler uses when present."""
        self._check_range(begin, end)
        buf = self._buf
        out: list[bytes] = []
        for a in range(begin, end, _CHUNK):
            out += _IDS[min(_CHUNK, end - a)].unpack_from(buf, a * _RECORD)
        return out

    def find_lower_bound(self, begin: int, end: int, bound: Item) -> int:
        self._check_range(begin, end)
        timestamp, id = bound
        return self._bisect(timestamp.to_bytes(8, "big") + id, begin, end)

    def fingerprint(self, begin: int, end: int) -> bytes:
        if not (self._sealed and 0 <= begin <= end <= self._n):
            self._check_range(begin, end)
        n = end - begin
        if n <= _CHUNK:
            total = self._sum(begin, end)
        else:
            total = self._sum_to(end) - self._sum_to(begin)
        # fingerprint_of, inlined: this runs 16 times per split
        acc = (total & _MASK256).to_bytes(ID_SIZE, "little")
        count = _SMALL_VARINTS[n] if n < 0x80 else encode_varint(n)
        return _sha256(acc + count).digest()[:FINGERPRINT_SIZE]

    # -- internals --

    def _seal_buffer(self, prefix: bytearray | None = None) -> None:
        """Count the records and extend the chunk prefix sums from `prefix` (those still
        valid): entry c is the sum of the ids before item c * _CHUNK, mod 2**256."""
        self._n = len(self._buf) // _RECORD
        prefix = bytearray(ID_SIZE) if prefix is None else prefix
        acc = int.from_bytes(prefix[-ID_SIZE:], "little")
        chunk_sum = self._sum
        for c in range(len(prefix) // ID_SIZE - 1, self._n // _CHUNK):
            acc = (acc + chunk_sum(c * _CHUNK, (c + 1) * _CHUNK)) & _MASK256
            prefix += acc.to_bytes(ID_SIZE, "little")
        self._prefix = prefix
        buf = self._buf
        self._samples = [bytes(buf[o : o + _RECORD])
                         for o in range(0, self._n * _RECORD, _SAMPLE * _RECORD)]
        self._sealed = True

    def _sum(self, begin: int, end: int) -> int:
        """The plain sum of the ids in `[begin, end)`, at most `_CHUNK` of them."""
        ids = _IDS[end - begin].unpack_from(self._buf, begin * _RECORD)
        return sum(map(int.from_bytes, ids, _LITTLE))

    def _sum_to(self, i: int) -> int:
        """The sum of the ids before index `i` (mod 2**256 up to a multiple of it)."""
        c, r = divmod(i, _CHUNK)
        prefix = self._prefix
        o = c * ID_SIZE
        if r <= _CHUNK // 2 or o + 2 * ID_SIZE > len(prefix):  # no chunk boundary above
            return int.from_bytes(prefix[o : o + ID_SIZE], "little") + self._sum(c * _CHUNK, i)
        return (int.from_bytes(prefix[o + ID_SIZE : o + 2 * ID_SIZE], "little")
                - self._sum(i, (c + 1) * _CHUNK))

    def _bisect(self, key: bytes, lo: int, hi: int) -> int:
        """First index in `[lo, hi)` whose record is >= `key`, else `hi`."""
        # the first record >= key overall lies after sample j - 1 and at or before sample j
        j = bisect_left(self._samples, key)
        first = (j - 1) * _SAMPLE + 1 if j else 0
        last = min(j * _SAMPLE, self._n)
        buf = self._buf
        while first < last:
            mid = (first + last) // 2
            o = mid * _RECORD
            if buf[o : o + _RECORD] < key:
                first = mid + 1
            else:
                last = mid
        return lo if first < lo else hi if first > hi else first

    def _check_sealed(self) -> None:
        if not self._sealed:
            raise RuntimeError("VectorStorage not sealed")

    def _check_range(self, begin: int, end: int) -> None:
        self._check_sealed()
        if not 0 <= begin <= end <= self._n:
            raise IndexError("bad storage range")


_RECORD = 8 + ID_SIZE
_CHUNK = 16  # items per precomputed sum: 1,000,000 items keep 62,500 sums (2 MB)
_SAMPLE = 64  # records per sample: 1,000,000 items keep 15,625 (1.3 MB)
_ITEM = struct.Struct(">Q32s")
# the ids of k consecutive records, timestamps skipped (one C call instead of k slices)
_IDS = [struct.Struct("<" + "8x32s" * k) for k in range(_CHUNK + 1)]
_LITTLE = ["little"] * _CHUNK


def _key_of(timestamp: int, id: bytes) -> bytes:
    """The 40-byte record of one item; refuses what the spec does not allow as an item."""
    if not isinstance(timestamp, int) or not 0 <= timestamp < MAX_TIMESTAMP:
        raise ValueError(f"timestamp out of range: {timestamp!r}")
    if len(id) != ID_SIZE:
        raise ValueError(f"id must be {ID_SIZE} bytes, got {len(id)}")
    return timestamp.to_bytes(8, "big") + bytes(id)


# --- the reconciler --------------------------------------------------------------------------

_Bound = tuple[int, bytes]
"""`(timestamp, id prefix)` as on the wire (spec "Bound"); the prefix keeps its sent length."""

_INFINITY_BOUND: _Bound = (MAX_TIMESTAMP, b"")


def _bound_key(bound: _Bound) -> Item:
    """The item a bound stands for: prefix padded with zero bytes (spec "Bound").

    Every infinity bound maps to the same greatest key, whatever prefix it carries, so that
    the order check treats them as equal (the reference may send two in a row).
    """
    timestamp, prefix = bound
    if timestamp == MAX_TIMESTAMP:
        return _INFINITY_KEY
    return timestamp, prefix + _ZERO_ID[len(prefix) :]


def _minimal_bound(prev: Item, curr: Item) -> _Bound:
    """Shortest bound b with prev < b <= curr (reference getMinimalBound)."""
    if curr[0] != prev[0]:
        return curr[0], b""
    diff = int.from_bytes(prev[1], "big") ^ int.from_bytes(curr[1], "big")
    shared = (ID_SIZE * 8 - diff.bit_length()) // 8
    return curr[0], curr[1][: shared + 1]


class Negentropy:
    """One side of one reconciliation (reference `Negentropy<StorageImpl>`).

    Initiator: `msg = ne.initiate()`, then repeatedly
    `msg, have, need = ne.reconcile_initiator(reply)` until `msg is None`.
    Responder: `reply = ne.reconcile_responder(msg)` for every message received.
    An instance may be reused for several messages of the same session; it holds no state
    between messages beyond its role (the reference resets timestamps per message).
    """

    def __init__(
        self,
        storage: Storage,
        frame_size_limit: int = 0,
        *,
        max_message_size: int = 0,
    ) -> None:
        """`frame_size_limit`: 0 or >= 4096, caps what we send. `max_message_size`: 0 or the
        largest incoming message we parse (a peer with no frame limit may legitimately send
        32 bytes per item it holds, so size it to the peer's store or frame limit)."""
        if frame_size_limit != 0 and frame_size_limit < MIN_FRAME_SIZE_LIMIT:
            raise ValueError("frame_size_limit too small (0 or >= 4096)")
        if frame_size_limit < 0 or max_message_size < 0:
            raise ValueError("limits must be non-negative")
        self._storage = storage
        self._frame_size_limit = frame_size_limit
        self._max_message_size = max_message_size
        self._is_initiator = False
        self._last_timestamp_in = 0
        self._last_timestamp_out = 0
        ids = getattr(storage, "ids", None)
        self._ids = ids if callable(ids) else self._ids_from_iterate

    @property
    def is_initiator(self) -> bool:
        return self._is_initiator

    @property
    def frame_size_limit(self) -> int:
        return self._frame_size_limit

    def initiate(self) -> bytes:
        """The first message: our whole set split over the full range (spec "Algorithm")."""
        if self._is_initiator:
            raise RuntimeError("already initiated")
        self._is_initiator = True
        self._last_timestamp_out = 0
        out = bytearray((PROTOCOL_VERSION,))
        out += self._split_range(0, self._storage.size(), _INFINITY_BOUND)
        return bytes(out)

    def initiate_whole_set(self) -> bytes:
        """A first message of one fingerprint over our whole set (20 bytes, any set size).

        Spec "Algorithm" lets the initiator open with any ranges. Peers already equal answer
        with the bare version byte: one round trip of 21 bytes instead of `initiate()`'s 16
        bucket fingerprints (~340 bytes). When the sets differ the responder splits the range
        into 16 buckets itself, so reconciling costs one round trip more than after
        `initiate()`, and about the same bytes. `initiate()` stays the reference's opening,
        byte for byte; this one is a different but conforming first message.
        """
        if self._is_initiator:
            raise RuntimeError("already initiated")
        self._is_initiator = True
        self._last_timestamp_out = 0
        out = bytearray((PROTOCOL_VERSION,))
        out += self._encode_bound(_INFINITY_BOUND)
        out += _SMALL_VARINTS[_MODE_FINGERPRINT]
        out += self._storage.fingerprint(0, self._storage.size())
        return bytes(out)

    def set_initiator(self) -> None:
        """Take the initiator role without producing a first message (the reference's
        `setInitiator`, for a client that resumes with a message built elsewhere)."""
        self._is_initiator = True

    def reconcile_initiator(self, msg: bytes) -> tuple[bytes | None, list[bytes], list[bytes]]:
        """Process a responder's reply: (next message or None when done, have ids, need ids).

        `have`: ids we hold and the responder lacks; `need`: ids it holds and we lack. With a
        frame size limit on either side an id may be reported in more than one round.
        """
        if not self._is_initiator:
            raise RuntimeError("non-initiator asking for have/need ids")
        have: list[bytes] = []
        need: list[bytes] = []
        out = self._reconcile(msg, have, need)
        return (None if len(out) == 1 else out), have, need

    def reconcile_responder(self, msg: bytes) -> bytes:
        """Process an initiator's message and return the reply to send back."""
        if self._is_initiator:
            raise RuntimeError("initiator not asking for have/need ids")
        return self._reconcile(msg, [], [])

    def reconcile(self, msg: bytes) -> tuple[bytes | None, list[bytes], list[bytes]] | bytes:
        """The reference's overloaded `reconcile`: a tuple as initiator, bytes as responder."""
        if self._is_initiator:
            return self.reconcile_initiator(msg)
        return self.reconcile_responder(msg)

    # -- message processing (spec "Algorithm") --

    def _reconcile(self, msg: bytes, have: list[bytes], need: list[bytes]) -> bytes:
        if not isinstance(msg, bytes):
            msg = bytes(msg)
        if self._max_message_size and len(msg) > self._max_message_size:
            raise NegentropyError("negentropy message too large")
        self._last_timestamp_in = self._last_timestamp_out = 0  # reset for each message
        reader = _Reader(msg)
        full = bytearray((PROTOCOL_VERSION,))

        # spec "Message": version byte; a responder answers an unknown v1.x with 0x61
        version = reader.byte()
        if not 0x60 <= version <= 0x6F:
            raise NegentropyError("invalid negentropy protocol version byte")
        if version != PROTOCOL_VERSION:
            if self._is_initiator:
                raise NegentropyError(f"unsupported negentropy protocol version {version - 0x60}")
            return bytes(full)

        storage = self._storage
        storage_size = storage.size()
        limit = self._frame_size_limit
        budget = limit - _FRAME_MARGIN  # meaningful only when limit != 0
        prev_bound: _Bound = (0, b"")
        prev_key: Item = (0, _ZERO_ID)
        prev_index = 0
        skip = False

        while not reader.at_end():
            o = bytearray()
            curr_bound = self._decode_bound(reader)
            curr_key = _bound_key(curr_bound)
            if curr_key < prev_key:
                raise NegentropyError("negentropy bounds out of order")
            mode = reader.varint()

            lower = prev_index
            if curr_key is _INFINITY_KEY:
                upper = storage_size
            else:
                upper = storage.find_lower_bound(prev_index, storage_size, curr_key)

            if mode == _MODE_SKIP:
                skip = True

            elif mode == _MODE_FINGERPRINT:
                theirs = reader.take(FINGERPRINT_SIZE)
                if theirs != storage.fingerprint(lower, upper):
                    if skip:  # flush the coalesced Skip range before ours
                        skip = False
                        o += self._encode_bound(prev_bound)
                        o += _SMALL_VARINTS[_MODE_SKIP]
                    o += self._split_range(lower, upper, curr_bound)
                else:
                    skip = True

            elif mode == _MODE_IDLIST:
                count = reader.varint()
                if count > reader.remaining() // ID_SIZE:
                    raise NegentropyError("negentropy id list longer than the message")
                blob = reader.take(count * ID_SIZE)
                if self._is_initiator:
                    # IdList is a base case: we now know this range; answer Skip
                    skip = True
                    self._diff_id_list(blob, lower, upper, have, need)
                else:
                    # a responder answers an IdList with its own ids for the range
                    if skip:
                        skip = False
                        o += self._encode_bound(prev_bound)
                        o += _SMALL_VARINTS[_MODE_SKIP]
                    end_bound = curr_bound
                    n = upper - lower
                    if limit:
                        room = budget - len(full)
                        fits = 0 if room < 0 else room // ID_SIZE + 1
                        if fits < n:
                            # frame full: stop at this item, the rest goes in the
                            # trailing fingerprint below
                            end_bound = storage.get_item(lower + fits)
                            upper = lower + fits
                            n = fits
                    o += self._encode_bound(end_bound)
                    o += _SMALL_VARINTS[_MODE_IDLIST]
                    o += encode_varint(n)
                    o += b"".join(self._ids(lower, upper))
                    full += o
                    o = bytearray()

            else:
                raise NegentropyError(f"unexpected negentropy mode {mode}")

            if limit and len(full) + len(o) > budget:
                # spec "Frame Size Limits": stop here, one Fingerprint covers everything left
                full += self._encode_bound(_INFINITY_BOUND)
                full += _SMALL_VARINTS[_MODE_FINGERPRINT]
                full += storage.fingerprint(upper, storage_size)
                break
            full += o

            prev_index = upper
            prev_bound = curr_bound
            prev_key = curr_key

        return bytes(full)

    def _diff_id_list(
        self, blob: bytes, lower: int, upper: int, have: list[bytes], need: list[bytes]
    ) -> None:
        """Initiator side of an IdList: compare the peer's ids with ours in `[lower, upper)`."""
        theirs = dict.fromkeys(blob[i : i + ID_SIZE] for i in range(0, len(blob), ID_SIZE))
        for id in self._ids(lower, upper):
            if id in theirs:
                del theirs[id]
            else:
                have.append(id)
        need.extend(theirs)

    def _split_range(self, lower: int, upper: int, upper_bound: _Bound) -> bytearray:
        """Describe `[lower, upper)`: an IdList below 32 items, else 16 fingerprinted buckets.

        Bucket sizes and bounds follow the reference splitRange exactly, so that our messages
        are byte-identical to its.
        """
        out = bytearray()
        encode_bound = self._encode_bound
        n = upper - lower
        if n < _BUCKETS * 2:
            out += encode_bound(upper_bound)
            out += _SMALL_VARINTS[_MODE_IDLIST]
            out += encode_varint(n)
            out += b"".join(self._ids(lower, upper))
            return out
        fingerprint, get_item = self._storage.fingerprint, self._storage.get_item
        fingerprint_mode = _SMALL_VARINTS[_MODE_FINGERPRINT]
        per_bucket, with_extra = divmod(n, _BUCKETS)
        curr = lower
        for i in range(_BUCKETS):
            size = per_bucket + 1 if i < with_extra else per_bucket
            bucket_fingerprint = fingerprint(curr, curr + size)
            curr += size
            if curr == upper:
                bound = upper_bound
            else:
                bound = _minimal_bound(get_item(curr - 1), get_item(curr))
            out += encode_bound(bound)
            out += fingerprint_mode
            out += bucket_fingerprint
        return out

    def _ids_from_iterate(self, begin: int, end: int) -> list[bytes]:
        return [id for _, id in self._storage.iterate(begin, end)]

    # -- bounds (spec "Bound") --

    def _decode_bound(self, reader: _Reader) -> _Bound:
        """Timestamp: 0 is infinity, else 1 + delta from the previous one, saturating at
        infinity like the reference; then an id prefix of at most 32 bytes."""
        encoded = reader.varint()
        if encoded == 0:
            timestamp = MAX_TIMESTAMP
        else:
            timestamp = min(encoded - 1 + self._last_timestamp_in, MAX_TIMESTAMP)
        self._last_timestamp_in = timestamp
        length = reader.varint()
        if length > ID_SIZE:
            raise NegentropyError("negentropy bound id prefix longer than 32 bytes")
        return timestamp, reader.take(length)

    def _encode_bound(self, bound: _Bound) -> bytes:
        timestamp, prefix = bound
        if timestamp == MAX_TIMESTAMP:
            self._last_timestamp_out = MAX_TIMESTAMP
            return b"\x00" + _SMALL_VARINTS[len(prefix)] + prefix
        # u64 arithmetic as the reference; never wraps here since bounds go out in order
        encoded = ((timestamp - self._last_timestamp_out) + 1) & _MASK64
        self._last_timestamp_out = timestamp
        if encoded < 0x80:
            return _SMALL_VARINTS[encoded] + _SMALL_VARINTS[len(prefix)] + prefix
        return encode_varint(encoded) + _SMALL_VARINTS[len(prefix)] + prefix
