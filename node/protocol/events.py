"""Self-authenticating events (PROTOCOL §2): parse strictly, canonicalise, sign, verify.

`parse_event()` is the one door for untrusted bytes: it returns a verified `Event` or raises
`InvalidEvent` with a specific code. The checks run state-independent and cheapest first:
size, JSON, shape, version, encodings, schema, canonical size, federation, signature.
`precheck_event()` runs all of them but the signature and returns an `UnverifiedEvent`, so a
batch can verify its signatures on every core (`UnverifiedEvent.verified()`); the codes and
their order are the same either way.
Nothing here mutates its input; signing returns a new `Event`.

Speed (see bench/RESULTS.md): text that is already canonical (what peers send, what the CLI
sends) is recognised as such and neither re-parsed strictly nor canonicalised again; RFC 8785
output comes from the C JSON encoder wherever it provably equals JCS, from `rfc8785` elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.signing
import rfc8785

from .errors import InvalidEvent
from .schema import EVENT_TYPES, SchemaViolation, validate
from .times import parse_ms

try:  # optional: without it every input takes the strict parser, only slower
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is missing
    orjson = None

__all__ = [
    "Event",
    "line_too_large",
    "MAX_SEALED_LINE_BYTES",
    "is_event_id",
    "UnverifiedEvent",
    "ENVELOPE_FIELDS",
    "ACT_TYPES",
    "NODE_TYPES",
    "MAX_EVENT_BYTES",
    "MAX_RAW_BYTES",
    "canonical",
    "b64url",
    "b64url_decode",
    "decode_key",
    "loads_strict",
    "load_event_json",
    "parse_event",
    "precheck_event",
    "precheck_object",
    "event_from_object",
    "event_from_stored",
    "sign_event",
    "event_id",
]

ENVELOPE_FIELDS = frozenset(
    {"v", "federation", "type", "chapter", "author", "created_at", "body", "sig"}
)
# Acts are what a tally reads (§6 "Act set"); comments and seals are not acts.
ACT_TYPES = frozenset({"endorse", "veto", "veto_withdraw", "vote", "delegation"})
# Types signed by a chapter's node key rather than a person's key (§4).
NODE_TYPES = frozenset({"member", "seal", "feedback_request", "chapter_url"})

MAX_EVENT_BYTES = 64 * 1024
# Raw input may carry insignificant white space; past this we refuse before parsing at all.
MAX_RAW_BYTES = 4 * MAX_EVENT_BYTES
# A sealed id list is no event: a seal over a busy vote lists tens of thousands of acts at 67
# bytes each. Its line may be as large as a peer batch (federation.endpoints.MAX_BATCH_BYTES).
MAX_SEALED_LINE_BYTES = 16 * 1024 * 1024
MAX_SAFE_INTEGER = 2**53 - 1


def line_too_large(line: bytes) -> bool:
    """Whether a batch or export line is over its limit: MAX_RAW_BYTES for an event,
    MAX_SEALED_LINE_BYTES for a `{"sealed": ...}` line (told apart before any parsing)."""
    if len(line) <= MAX_RAW_BYTES:
        return False
    return len(line) > MAX_SEALED_LINE_BYTES or not line.lstrip().startswith(b'{"sealed"')


@dataclass(frozen=True, slots=True)
class Event:
    """A verified event. `canonical` is the RFC 8785 form *with* `sig`; `id` hashes it."""

    id: str
    v: int
    federation: str
    type: str
    chapter: str
    author: str
    created_at: str
    body: Mapping[str, Any]
    sig: str
    created_ms: int
    canonical: bytes
    # The proposal this event refers to (`body.proposal`), or None. Derived from `body` (so
    # `replace(event, body=...)` derives it again) and kept: ingest reads it ~6 times per event.
    proposal: str | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        value = self.body.get("proposal")
        object.__setattr__(self, "proposal", value if isinstance(value, str) else None)

    @property
    def order_key(self) -> tuple[str, str]:
        """PROTOCOL §5 tie-break: (`created_at`, id); one timestamp spelling sorts as time."""
        return (self.created_at, self.id)

    def to_json(self) -> dict[str, Any]:
        """A fresh dict of the event (a copy: callers may change it freely)."""
        return _loads_trusted(self.canonical)


# --- encodings --------------------------------------------------------------------------

# The C encoder writes RFC 8785 exactly when every number is an integer in the I-JSON range
# (floats need the ECMAScript number form of RFC 8785 §3.2.2.3) and key order by code point
# equals key order by UTF-16 code unit (§3.2.3); it escapes strings as §3.2.2.2 does.
_JCS_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                                allow_nan=False, check_circular=False)


def _jcs_plain(obj: Any) -> bool:
    """True when the C encoder's output for `obj` is its RFC 8785 form (see `_JCS_ENCODER`)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if kind is int:
            if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                continue
            return False
        if kind is dict:
            for key in value:
                # UTF-16 and code point order differ only past U+D7FF (surrogates, U+E000+)
                if type(key) is not str or (not key.isascii() and max(key) >= "\ud800"):
                    return False
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        else:  # floats, tuples, mappings of other types: rfc8785 decides
            return False
    return True


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical bytes (JCS)."""
    if _jcs_plain(obj):
        try:
            return _JCS_ENCODER.encode(obj).encode("utf-8")
        except (UnicodeEncodeError, RecursionError):  # lone surrogates; absurd nesting
            pass
    return rfc8785.dumps(obj)


def b64url(raw: bytes) -> str:
    """base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# The one spelling of 32 and of 64 bytes: the alphabet, the length, and the last character
# leaving the spare bits zero (what the slow path below checks step by step).
_CANONICAL_B64URL = {
    32: re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]"),
    64: re.compile(r"[A-Za-z0-9_-]{85}[AQgw]"),
}


_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")

# Keys already decoded (their canonical spelling only): a batch names the same few hundred
# authors again and again. Bounded: emptied when full.
_KEYS: dict[str, bytes] = {}
_MAX_KEYS = 8192


def b64url_decode(text: str, length: int, *, what: str, length_code: str) -> bytes:
    """Strict base64url: alphabet, no padding, canonical trailing bits, exact byte length."""
    if length == 32 and type(text) is str:
        raw = _KEYS.get(text)
        if raw is not None:
            return raw
    spelling = _CANONICAL_B64URL.get(length)
    if spelling is not None and type(text) is str and spelling.fullmatch(text):
        padded = (text + "=" * (-len(text) % 4)).encode("ascii")
        raw = binascii.a2b_base64(padded.translate(_URLSAFE_TO_STANDARD))
        if length == 32:
            if len(_KEYS) >= _MAX_KEYS:
                _KEYS.clear()
            _KEYS[text] = raw
        return raw
    if not isinstance(text, str) or not text.isascii():
        raise InvalidEvent(f"{what} is not base64url text", code="bad_base64")
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidEvent(f"{what} is not base64url without padding", code="bad_base64") from e
    if "=" in text or "+" in text or "/" in text:
        raise InvalidEvent(f"{what} is not base64url without padding", code="bad_base64")
    if len(raw) != length:
        raise InvalidEvent(
            f"{what} decodes to {len(raw)} bytes, expected {length}", code=length_code
        )
    if b64url(raw) != text:  # non-zero trailing bits: two spellings of one key
        raise InvalidEvent(f"{what} is not in canonical base64url form", code="bad_base64")
    return raw


def decode_key(text: str, *, what: str = "key") -> bytes:
    return b64url_decode(text, 32, what=what, length_code="bad_key_length")


def event_id(canonical_with_sig: bytes) -> str:
    return hashlib.sha256(canonical_with_sig).hexdigest()


# --- strict JSON ------------------------------------------------------------------------


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise InvalidEvent(f"duplicate key {dup!r}", code="duplicate_key")
    return obj


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 16:  # 2^53 has 16 digits; longer ones need no int() (nor its limit)
        raise InvalidEvent(f"integer {text[:30]}… is outside ±(2^53−1) (RFC 7493 I-JSON)",
                           code="integer_out_of_range")
    value = int(text)
    if text.startswith("-0"):
        raise InvalidEvent("negative zero is not allowed", code="bad_number")
    if abs(value) > MAX_SAFE_INTEGER:
        raise InvalidEvent(
            f"integer {text[:30]} is outside ±(2^53−1) (RFC 7493 I-JSON)",
            code="integer_out_of_range",
        )
    return value


def _float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidEvent(f"number {text[:30]} is not finite", code="bad_number")
    if value == 0 and text.lstrip().startswith("-"):
        raise InvalidEvent("negative zero is not allowed", code="bad_number")
    return value


def _constant(text: str) -> Any:
    raise InvalidEvent(f"{text} is not JSON", code="bad_number")


def loads_strict(data: bytes | str) -> Any:
    """JSON as RFC 8259 + I-JSON (RFC 7493) want it: UTF-8, no duplicate keys, finite numbers."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidEvent("not UTF-8 text", code="not_json") from e
    else:
        text = data
    try:
        return json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except RecursionError as e:
        raise InvalidEvent("JSON nested too deeply", code="too_deep") from e
    except json.JSONDecodeError as e:
        raise InvalidEvent(f"not JSON: {e.msg} at offset {e.pos}", code="not_json") from e


# A canonical text whose strings hold no escape and no non-ASCII character: with its strings
# cut out, what is left is structure, literals and numbers.
_EVENT_ID = re.compile(r"[0-9a-f]{64}")


def is_event_id(value: object) -> bool:
    """An event id, federation id or hash as the protocol spells it: 64 lowercase hex digits."""
    return isinstance(value, str) and _EVENT_ID.fullmatch(value) is not None


_STRINGS = re.compile(rb'"[^"]*"')
_FLOAT_OR_LONG = re.compile(rb"[0-9][.eE]|[0-9]{16}")
_MAX_PLAIN_NESTING = 64


def load_event_json(data: bytes | str) -> tuple[Any, bytes | None]:
    """`loads_strict(data)`, and `data` itself when it is already a plain canonical text.

    "Plain canonical": ASCII, no escape, no float, no integer of 16 digits or more, and
    byte-equal to the RFC 8785 form of what it parses to. Such a text has no duplicate key,
    no negative zero, no white space and nothing `loads_strict` refuses, so a fast parser
    reads it to the same value; anything else goes to `loads_strict` and its exact codes.
    """
    if orjson is not None and type(data) is bytes and data.isascii() and b"\\" not in data:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = None
        if type(obj) is dict:
            skeleton = _STRINGS.sub(b"", data)
            # With ASCII strings free of escapes, integers only and shallow nesting, orjson's
            # sorted compact output is the RFC 8785 form (tests/test_fast_paths.py).
            if (not _FLOAT_OR_LONG.search(skeleton)
                    and skeleton.count(b"{") + skeleton.count(b"[") <= _MAX_PLAIN_NESTING
                    and orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) == data):
                return obj, data
    return loads_strict(data), None


def _loads_trusted(data: bytes) -> Any:
    """JSON this node wrote itself (canonical bytes it verified before)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:  # e.g. an escaped lone surrogate: json takes it
            pass
    return json.loads(data)


# --- parsing ----------------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: made once per line on ingest, where frozen costs 0.4 µs
class UnverifiedEvent:
    """An event that passed every check of §2.1 but the last: its signature (step 10)."""

    obj: Mapping[str, Any]
    signed_bytes: bytes
    message: bytes
    author_key: bytes
    signature: bytes
    created_ms: int

    def signature_ok(self) -> bool:
        """Does the signature verify? (Releases the GIL: call it from any thread.)"""
        try:
            nacl.bindings.crypto_sign_open(self.signature + self.message, self.author_key)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    def verified(self, signature_ok: bool | None = None, *, id: str | None = None) -> Event:
        """The verified `Event`, or `InvalidEvent("bad_signature")`.

        `signature_ok` is the result of `signature_ok()` if the caller computed it already
        (e.g. on another thread); `id`, `event_id(signed_bytes)` if it did."""
        if signature_ok is None:
            signature_ok = self.signature_ok()
        if not signature_ok:
            raise InvalidEvent("signature does not verify for author", code="bad_signature")
        return _event(self.obj, self.signed_bytes, self.created_ms, id)


def parse_event(data: bytes | str, *, federation: str | None) -> Event:
    """Untrusted bytes in, verified event out, or `InvalidEvent` with a specific code.

    `federation` is the id this node belongs to; None skips that check (auditing a file
    whose charter is read from the file itself does the check by hand).
    """
    return precheck_event(data, federation=federation).verified()


def precheck_event(data: bytes | str, *, federation: str | None) -> UnverifiedEvent:
    """Every check of `parse_event` but the signature's (step 10), in the same order."""
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > MAX_RAW_BYTES:
        raise InvalidEvent(f"{size} bytes is far over the 64 KiB event limit", code="too_large")
    obj, canonical_text = load_event_json(data)
    return precheck_object(obj, federation=federation, canonical_text=canonical_text)


def event_from_object(obj: Any, *, federation: str | None) -> Event:
    """The checks of `parse_event` after JSON decoding (the object must come from `loads_strict`)."""
    return precheck_object(obj, federation=federation).verified()


def precheck_object(obj: Any, *, federation: str | None,
                    canonical_text: bytes | None = None) -> UnverifiedEvent:
    """Steps 3-9 of §2.1 on a decoded object (from `loads_strict` or `load_event_json`).

    `canonical_text`: the raw text, when `load_event_json` found it plain canonical; it is
    then the signed bytes as they are, and its strings are known to be plain.
    """
    if not isinstance(obj, dict):
        raise InvalidEvent("an event is a JSON object", code="not_an_object")
    if not obj.keys() <= ENVELOPE_FIELDS:
        unknown = sorted(set(obj) - ENVELOPE_FIELDS)
        raise InvalidEvent(f"unknown field {unknown[0]!r}", code="unknown_field")
    if "v" in obj and (isinstance(obj["v"], bool) or obj["v"] != 1):  # true == 1 in Python
        raise InvalidEvent(f"unsupported version {obj['v']!r}; this node speaks v 1",
                           code="unsupported_version")
    author = sig = None
    if isinstance(obj.get("author"), str):
        author = decode_key(obj["author"], what="author")
    if isinstance(obj.get("sig"), str):
        sig = b64url_decode(obj["sig"], 64, what="sig", length_code="bad_signature_length")
    created_ms = _validate(obj, plain=True if canonical_text is not None else None)
    if author is None or sig is None:  # the schema requires both strings: never reached
        raise InvalidEvent("author and sig are required", code="schema_violation")
    try:
        signed_bytes = canonical_text if canonical_text is not None else canonical(obj)
        message = _signing_input(obj, signed_bytes)
    except rfc8785.CanonicalizationError as e:  # a lone surrogate escape in a string
        # I-JSON (RFC 7493 §2.1) forbids lone surrogates: the text was not acceptable JSON.
        raise InvalidEvent(f"not I-JSON text: {e}", code="not_json") from e
    if len(signed_bytes) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            f"canonical form is {len(signed_bytes)} bytes; the limit is {MAX_EVENT_BYTES}",
            code="too_large",
        )
    if federation is not None and obj["federation"] != federation:
        raise InvalidEvent("event belongs to another federation", code="wrong_federation")
    return UnverifiedEvent(obj, signed_bytes, message, author, sig, created_ms)


def _signing_input(obj: Mapping[str, Any], signed_bytes: bytes) -> bytes:
    """The JCS bytes of the event without `sig`, cut out of the JCS bytes with it.

    Keys sort as author, body, chapter, created_at, federation, sig, type, v (RFC 8785 §3.2.3),
    and after the schema `sig` is base64url, `type` one of EVENT_TYPES and `v` one: the signed
    form ends `,"sig":"…","type":"…","v":1}` and the signing input is it without the sig.
    """
    tail = f',"type":"{obj["type"]}","v":1}}'.encode("ascii")
    with_sig = f',"sig":"{obj["sig"]}"'.encode("ascii") + tail
    if signed_bytes.endswith(with_sig):
        return signed_bytes[: len(signed_bytes) - len(with_sig)] + tail
    return canonical({k: v for k, v in obj.items() if k != "sig"})  # pragma: no cover


def event_from_stored(signed_bytes: bytes, created_ms: int | None = None) -> Event:
    """An event this node verified before and stored in canonical form: no re-verification."""
    obj = _loads_trusted(signed_bytes)
    return _event(obj, bytes(signed_bytes),
                  created_ms if created_ms is not None else parse_ms(obj["created_at"]))


def _validate(obj: dict[str, Any], *, plain: bool | None = None) -> int:
    """The envelope and body schemas, then the instant; returns `created_at` in ms."""
    try:
        validate("envelope", obj, plain=plain)
        validate(obj["type"], obj["body"], path_prefix="$.body", plain=plain)
    except SchemaViolation as e:
        code = "unknown_field" if e.keyword == "additionalProperties" else "schema_violation"
        raise InvalidEvent(str(e), code=code) from e
    except RecursionError as e:  # nesting the parser held but the validator cannot
        raise InvalidEvent("JSON nested too deeply", code="too_deep") from e
    closes = obj["body"].get("closes_at")
    try:
        if closes is not None:
            parse_ms(closes)  # a real instant, like created_at (2026-02-30 is not one)
    except ValueError as e:
        raise InvalidEvent(f"$.body.closes_at: {e}", code="schema_violation") from e
    try:
        return parse_ms(obj["created_at"])
    except ValueError as e:
        raise InvalidEvent(f"$.created_at: {e}", code="schema_violation") from e


def _event(obj: Mapping[str, Any], signed_bytes: bytes, created_ms: int,
           id: str | None = None) -> Event:
    # positional, in field order: the frozen dataclass's __init__ is on the hot path
    return Event(id or event_id(signed_bytes), obj["v"], obj["federation"], obj["type"],
                 obj["chapter"], obj["author"], obj["created_at"], obj["body"], obj["sig"],
                 created_ms, signed_bytes)


# --- signing ----------------------------------------------------------------------------


def sign_event(
    *,
    federation: str,
    type: str,
    chapter: str,
    created_at: str,
    body: Mapping[str, Any],
    signing_key: nacl.signing.SigningKey,
) -> Event:
    """Build, sign and check a new event; the author is the signing key's public key.

    The result goes through the same validation as any received event, so a node never
    signs what its peers would refuse.
    """
    if type not in EVENT_TYPES:
        raise InvalidEvent(f"unknown event type {type!r}", code="schema_violation")
    unsigned = {
        "v": 1,
        "federation": federation,
        "type": type,
        "chapter": chapter,
        "author": b64url(bytes(signing_key.verify_key)),
        "created_at": created_at,
        "body": json.loads(json.dumps(body)),  # a private copy: the caller's dict stays theirs
    }
    sig = signing_key.sign(canonical(unsigned)).signature
    return event_from_object({**unsigned, "sig": b64url(sig)}, federation=federation)
