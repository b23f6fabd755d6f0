"""Events as PROTOCOL §2 defines them: vectors, tampering, strict parsing, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.protocol.charter import charter_from_object
from node.protocol.errors import InvalidEvent
from node.protocol.events import (
    MAX_EVENT_BYTES,
    b64url,
    canonical,
    event_from_object,
    loads_strict,
    parse_event,
    sign_event,
)
from node.protocol.merkle import merkle_root

from .conftest import person_key

VECTORS = Path(__file__).parent / "vectors"
FED = "f" * 64


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


# --- published vectors ------------------------------------------------------------------


@pytest.mark.parametrize("v", load("rfc8032.json")["vectors"], ids=lambda v: v["name"])
def test_rfc8032_vectors_sign_and_verify(v: dict) -> None:
    key = nacl.signing.SigningKey(bytes.fromhex(v["secret"]))
    assert bytes(key.verify_key).hex() == v["public"]
    signed = key.sign(bytes.fromhex(v["message"]))
    assert signed.signature.hex() == v["signature"]
    nacl.signing.VerifyKey(bytes.fromhex(v["public"])).verify(
        bytes.fromhex(v["message"]), bytes.fromhex(v["signature"]))


@pytest.mark.parametrize("v", load("rfc8785.json")["vectors"], ids=lambda v: v["name"])
def test_rfc8785_examples_canonicalise_exactly(v: dict) -> None:
    assert canonical(loads_strict(v["input"])) == v["canonical"].encode("utf-8")


def test_rfc6962_reference_roots() -> None:
    v = load("rfc6962.json")
    leaves = [bytes.fromhex(x) for x in v["leaves"]]
    for size, root in enumerate(v["roots"]):
        assert merkle_root(leaves[:size]).hex() == root


@pytest.mark.parametrize("v", load("envelope.json")["events"], ids=lambda v: v["type"])
def test_envelope_vectors_replay_byte_for_byte(v: dict) -> None:
    doc = load("envelope.json")
    charter = charter_from_object(doc["charter"])
    assert charter.id == doc["federation"]
    ev = sign_event(federation=charter.id, type=v["type"], chapter=v["chapter"],
                    created_at=v["created_at"], body=v["body"],
                    signing_key=nacl.signing.SigningKey(bytes.fromhex(v["seed"])))
    assert ev.canonical.decode("utf-8") == v["canonical"]
    assert ev.sig == v["sig"] and ev.id == v["id"]
    unsigned = {k: x for k, x in ev.to_json().items() if k != "sig"}
    assert canonical(unsigned).decode("utf-8") == v["signing_input"]
    # and the stored canonical bytes parse back to the same verified event
    assert parse_event(v["canonical"].encode(), federation=charter.id).id == v["id"]


# --- helpers ----------------------------------------------------------------------------


def vote_event(**over: object) -> dict:
    ev = sign_event(federation=FED, type="vote", chapter="paris",
                    created_at="2026-11-24T10:00:00.000Z",
                    body={"proposal": "a" * 64, "choice": "yes"},
                    signing_key=person_key("amelie"))
    obj = ev.to_json()
    obj.update(over)
    return obj


def refusal(data: bytes | str | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data)
    with pytest.raises(InvalidEvent) as info:
        parse_event(data, federation=FED)
    return info.value.code


# --- tampering --------------------------------------------------------------------------


def test_every_bit_of_every_signed_field_matters() -> None:
    good = vote_event()
    parse_event(json.dumps(good), federation=None)
    text = canonical(good).decode()
    flipped = 0
    for field in ("federation", "type", "chapter", "author", "created_at", "body", "sig"):
        start = text.index(f'"{field}":') + len(field) + 3
        value_end = start + len(json.dumps(good[field], separators=(",", ":"), ensure_ascii=False))
        for pos in range(start, value_end):
            for bit in range(7):  # ASCII: flipping the top bit makes invalid UTF-8, refused anyway
                mutated = text[:pos] + chr(ord(text[pos]) ^ (1 << bit)) + text[pos + 1:]
                with pytest.raises(InvalidEvent):
                    parse_event(mutated.encode(), federation=None)
                flipped += 1
    assert flipped > 1000


def test_signing_does_not_touch_the_callers_body() -> None:
    body = {"proposal": "a" * 64, "choice": "yes"}
    before = json.dumps(body)
    sign_event(federation=FED, type="vote", chapter="paris", created_at="2026-11-24T10:00:00.000Z",
               body=body, signing_key=person_key("amelie"))
    assert json.dumps(body) == before


# --- every malformed input has its own code ---------------------------------------------


def test_not_json() -> None:
    assert refusal(b"{not json") == "not_json"
    assert refusal(b"\xff\xfe{}") == "not_json"


def test_duplicate_keys_anywhere() -> None:
    text = canonical(vote_event()).decode()
    assert refusal(text.replace('{"author"', '{"type":"vote","author"', 1)) == "duplicate_key"
    assert refusal(text.replace('"choice":"yes"', '"choice":"yes","choice":"no"')) == "duplicate_key"


def test_nan_infinity_and_negative_zero() -> None:
    text = canonical(vote_event()).decode()
    for bad in ("NaN", "Infinity", "-Infinity", "1e400", "-0", "-0.0"):
        assert refusal(text.replace('"v":1', f'"v":{bad}')) == "bad_number", bad


def test_integers_outside_the_safe_range() -> None:
    text = canonical(vote_event()).decode()
    assert refusal(text.replace('"v":1', '"v":9007199254740992')) == "integer_out_of_range"
    assert refusal(text.replace('"v":1', '"v":-9007199254740992')) == "integer_out_of_range"


def test_too_large_counts_canonical_utf8_bytes() -> None:
    """65,536 canonical bytes pass, 65,537 are refused; multi-byte characters count as bytes."""

    def proposal(text: str):
        return sign_event(federation=FED, type="proposal", chapter="paris",
                          created_at="2026-11-24T10:00:00.000Z",
                          body={"title": "t", "text": text, "kind": "action"},
                          signing_key=person_key("amelie"))

    base = len(proposal("").canonical)
    fits = proposal("é" * ((MAX_EVENT_BYTES - base) // 2) + "x" * ((MAX_EVENT_BYTES - base) % 2))
    assert len(fits.canonical) == MAX_EVENT_BYTES
    with pytest.raises(InvalidEvent) as info:
        proposal("é" * ((MAX_EVENT_BYTES - base) // 2) + "x" * ((MAX_EVENT_BYTES - base) % 2 + 1))
    assert info.value.code == "too_large"
    assert refusal(b" " * (4 * MAX_EVENT_BYTES + 1)) == "too_large"


def test_deep_nesting_is_refused_not_crashing() -> None:
    assert refusal(b"[" * 100_000 + b"]" * 100_000) == "too_deep"


def test_unknown_fields_top_level_and_body() -> None:
    assert refusal(vote_event(extra=1)) == "unknown_field"
    obj = vote_event()
    obj["body"] = {**obj["body"], "weight": 2}
    assert refusal(obj) == "unknown_field"


def test_schema_violation_names_the_json_path() -> None:
    obj = vote_event()
    obj["body"] = {**obj["body"], "choice": "maybe"}
    with pytest.raises(InvalidEvent) as info:
        parse_event(json.dumps(obj), federation=FED)
    assert info.value.code == "schema_violation"
    assert "$.body.choice" in info.value.message
    assert refusal(vote_event(created_at="2026-11-24T10:00:00Z")) == "schema_violation"
    assert refusal(vote_event(created_at="2026-02-30T10:00:00.000Z")) == "schema_violation"
    assert refusal(vote_event(type="poll")) == "schema_violation"


def test_bad_base64_and_lengths() -> None:
    good = vote_event()
    assert refusal(vote_event(author="!" * 43)) == "bad_base64"
    assert refusal(vote_event(author=good["author"] + "=")) == "bad_base64"
    assert refusal(vote_event(author=good["author"][:-1] + "B")) in {"bad_base64", "bad_signature"}
    assert refusal(vote_event(author=b64url(b"x" * 31))) == "bad_key_length"
    assert refusal(vote_event(sig=b64url(b"x" * 63))) == "bad_signature_length"
    assert refusal(vote_event(sig=good["sig"][:-2] + "+/")) == "bad_base64"


def test_bad_signature_wrong_federation_unsupported_version() -> None:
    other = sign_event(federation=FED, type="vote", chapter="paris",
                       created_at="2026-11-24T10:00:00.000Z",
                       body={"proposal": "a" * 64, "choice": "no"}, signing_key=person_key("amelie"))
    assert refusal(vote_event(sig=other.sig)) == "bad_signature"
    assert refusal(vote_event(federation="e" * 64)) == "wrong_federation"
    assert refusal(vote_event(v=2)) == "unsupported_version"
    assert refusal(b"[1, 2]") == "not_an_object"


# --- properties: a verified event or a specific refusal, nothing else -------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_are_refused_cleanly(data: bytes) -> None:
    try:
        parse_event(data, federation=FED)
    except InvalidEvent as e:
        assert e.code and e.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "federation", "type", "chapter", "author",
                                        "created_at", "body", "sig", "x"]), json_values))
def test_random_envelopes_are_refused_cleanly(obj: dict) -> None:
    base = vote_event()
    mixed = {**base, **obj}
    try:
        parse_event(json.dumps(mixed), federation=FED)
    except InvalidEvent as e:
        assert e.code
    else:
        assert mixed == base or all(mixed[k] == base[k] for k in base)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_random_json_is_refused_cleanly(value: object) -> None:
    try:
        event_from_object(loads_strict(json.dumps(value)), federation=FED)
    except InvalidEvent as e:
        assert e.code
