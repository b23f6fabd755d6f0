"""Self-authenticating events (PROTOCOL §2): parse strictly, canonicalise, sign, verify.

`parse_event()` is the one door for untrusted bytes: it returns a verified `Event` or raises
`InvalidEvent` with a specific code. The checks run state-independent and cheapest first:
size, JSON, shape, version, encodings, schema, canonical size, federation, signature.
Nothing here mutates its input; signing returns a new `Event`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing
import rfc8785

from .errors import InvalidEvent
from .schema import EVENT_TYPES, SchemaViolation, validate
from .times import parse_ms

__all__ = [
    "Event",
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
    "parse_event",
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
MAX_SAFE_INTEGER = 2**53 - 1


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

    @property
    def proposal(self) -> str | None:
        """The proposal this event refers to (`body.proposal`), or None."""
        value = self.body.get("proposal")
        return value if isinstance(value, str) else None

    @property
    def order_key(self) -> tuple[str, str]:
        """PROTOCOL §5 tie-break: (`created_at`, id); one timestamp spelling sorts as time."""
        return (self.created_at, self.id)

    def to_json(self) -> dict[str, Any]:
        """A fresh dict of the event (a copy: callers may change it freely)."""
        return json.loads(self.canonical)


# --- encodings --------------------------------------------------------------------------


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical bytes (JCS)."""
    return rfc8785.dumps(obj)


def b64url(raw: bytes) -> str:
    """base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, length: int, *, what: str, length_code: str) -> bytes:
    """Strict base64url: alphabet, no padding, canonical trailing bits, exact byte length."""
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


# --- parsing ----------------------------------------------------------------------------


def parse_event(data: bytes | str, *, federation: str | None) -> Event:
    """Untrusted bytes in, verified event out, or `InvalidEvent` with a specific code.

    `federation` is the id this node belongs to; None skips that check (auditing a file
    whose charter is read from the file itself does the check by hand).
    """
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > MAX_RAW_BYTES:
        raise InvalidEvent(f"{size} bytes is far over the 64 KiB event limit", code="too_large")
    return event_from_object(loads_strict(data), federation=federation)


def event_from_object(obj: Any, *, federation: str | None) -> Event:
    """The checks of `parse_event` after JSON decoding (the object must come from `loads_strict`)."""
    if not isinstance(obj, dict):
        raise InvalidEvent("an event is a JSON object", code="not_an_object")
    unknown = sorted(set(obj) - ENVELOPE_FIELDS)
    if unknown:
        raise InvalidEvent(f"unknown field {unknown[0]!r}", code="unknown_field")
    if "v" in obj and obj["v"] != 1:
        raise InvalidEvent(f"unsupported version {obj['v']!r}; this node speaks v 1",
                           code="unsupported_version")
    if isinstance(obj.get("author"), str):
        decode_key(obj["author"], what="author")
    if isinstance(obj.get("sig"), str):
        b64url_decode(obj["sig"], 64, what="sig", length_code="bad_signature_length")
    _validate(obj)
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    try:
        signed_bytes = canonical(obj)
        message = canonical(unsigned)
    except rfc8785.CanonicalizationError as e:  # pragma: no cover - loads_strict prevents it
        raise InvalidEvent(f"cannot canonicalise: {e}", code="bad_number") from e
    if len(signed_bytes) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            f"canonical form is {len(signed_bytes)} bytes; the limit is {MAX_EVENT_BYTES}",
            code="too_large",
        )
    if federation is not None and obj["federation"] != federation:
        raise InvalidEvent("event belongs to another federation", code="wrong_federation")
    author = decode_key(obj["author"], what="author")
    sig = b64url_decode(obj["sig"], 64, what="sig", length_code="bad_signature_length")
    try:
        nacl.signing.VerifyKey(author).verify(message, sig)
    except nacl.exceptions.BadSignatureError as e:
        raise InvalidEvent("signature does not verify for author", code="bad_signature") from e
    return _event(obj, signed_bytes)


def event_from_stored(signed_bytes: bytes) -> Event:
    """An event this node verified before and stored in canonical form: no re-verification."""
    return _event(json.loads(signed_bytes), bytes(signed_bytes))


def _validate(obj: dict[str, Any]) -> None:
    try:
        validate("envelope", obj)
        validate(obj["type"], obj["body"], path_prefix="$.body")
    except SchemaViolation as e:
        code = "unknown_field" if e.keyword == "additionalProperties" else "schema_violation"
        raise InvalidEvent(str(e), code=code) from e
    try:
        parse_ms(obj["created_at"])
    except ValueError as e:
        raise InvalidEvent(f"$.created_at: {e}", code="schema_violation") from e


def _event(obj: Mapping[str, Any], signed_bytes: bytes) -> Event:
    return Event(
        id=event_id(signed_bytes),
        v=obj["v"],
        federation=obj["federation"],
        type=obj["type"],
        chapter=obj["chapter"],
        author=obj["author"],
        created_at=obj["created_at"],
        body=obj["body"],
        sig=obj["sig"],
        created_ms=parse_ms(obj["created_at"]),
        canonical=signed_bytes,
    )


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
