"""The compiled schema validator (jsonschema-rs) and the reference (jsonschema) agree.

`node.protocol.schema.validate()` takes the compiled validator's "valid" only for instances whose
strings hold no character on which the two regex dialects can differ (`_DIALECT_RISK`);
everything else is decided by the reference. These tests check the three things that makes
safe: both validators agree on every schema test case the suite has (replayed from
`vectors/schema_cases.jsonl`), the risk set covers every character where the dialects differ
for the pattern constructs our schemas use, and `validate()` answers exactly as the reference,
message included, on mutated events.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.protocol import schema
from node.protocol.schema import (
    _DIALECT_RISK,
    EVENT_TYPES,
    SchemaViolation,
    fast_validator,
    plain_strings,
    schema_dir,
    validate,
    validator,
)

pytest.importorskip("jsonschema_rs")

CASES = Path(__file__).parent / "vectors" / "schema_cases.jsonl"
NAMES = sorted(p.stem for p in schema_dir().glob("*.json"))


def _unpack(value: Any) -> Any:
    """Long strings are stored as runs of one character: {"$runs": [[char, count], ...]}."""
    if isinstance(value, dict):
        if set(value) == {"$runs"}:
            return "".join(char * count for char, count in value["$runs"])
        return {k: _unpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v) for v in value]
    return value


def _cases() -> list[tuple[str, Any]]:
    with CASES.open(encoding="utf-8") as f:
        return [(c["schema"], _unpack(c["instance"])) for c in map(json.loads, f)]


def _reference(name: str, instance: Any, prefix: str = "$") -> str | None:
    """What the reference alone says: None (valid) or the SchemaViolation text."""
    from jsonschema.exceptions import best_match

    error = best_match(validator(name).iter_errors(instance))
    return None if error is None else f"{prefix}{error.json_path[1:]}: {error.message}"


def _combined(name: str, instance: Any, prefix: str = "$") -> str | None:
    try:
        validate(name, instance, path_prefix=prefix)
    except SchemaViolation as e:
        return str(e)
    return None


def test_both_validators_agree_on_every_recorded_case() -> None:
    cases = _cases()
    assert len(cases) > 3000 and {name for name, _ in cases} >= set(EVENT_TYPES) | {"envelope"}
    valid = invalid = 0
    for name, instance in cases:
        reference = validator(name).is_valid(instance)
        if plain_strings(instance):
            assert fast_validator(name).is_valid(instance) == reference, (name, instance)
        # whatever the strings hold, validate() answers as the reference, message included
        assert _combined(name, instance) == _reference(name, instance), (name, instance)
        valid += reference
        invalid += not reference
    assert valid > 500 and invalid > 500  # both sides are exercised


def test_a_trailing_newline_fails_pattern_in_both_validators() -> None:
    """Python's `$` also matches before a final newline; JSON Schema's (ECMA-262) does not.
    The reference reads patterns the ECMA way, so both refuse "paris\n" as a slug."""
    risky = [(n, i) for n, i in _cases() if not plain_strings(i)]
    assert risky
    from node.protocol.schema import _ecma_regex
    assert not _ecma_regex(r"^[a-z]+$").search("paris\n")
    for n, i in risky:
        if isinstance(i, dict) and any(isinstance(v, str) and v.endswith("\n") for v in i.values()):
            assert fast_validator(n).is_valid(i) == validator(n).is_valid(i), (n, i)


def _patterns() -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in schema_dir().glob("*.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return sorted(set(found))


def test_schema_patterns_use_only_constructs_the_risk_set_covers() -> None:
    """Literals, ASCII classes, `\\s`/`\\S`, anchors, groups and counts: nothing else, so the
    sweep below over `\\s`/`\\S` and `$` covers every way the dialects can differ."""
    allowed = re.compile(r"(\\[sS]|\\[.\-/?#]|\[[^\]]*\]|\(\?:|[()^$?*+|]|\{\d+(,\d+)?\}|[A-Za-z0-9:/_\-])")
    for pattern in _patterns():
        rest = allowed.sub("", pattern)
        assert rest == "", (pattern, rest)
        for cls in re.findall(r"\[[^\]]*\]", pattern):
            assert cls.isascii() and "\\d" not in cls and "\\w" not in cls, pattern


def test_outside_the_risk_set_both_dialects_read_space_alike() -> None:
    import jsonschema_rs

    some_space = jsonschema_rs.validator_for({"type": "string", "pattern": "\\s"})
    no_space = jsonschema_rs.validator_for({"type": "string", "pattern": "^\\S$"})
    ends = jsonschema_rs.validator_for({"type": "string", "pattern": "^a$"})
    for code in range(0x10000):
        char = chr(code)
        if _DIALECT_RISK.search(char):
            continue
        assert some_space.is_valid(char) == bool(re.search(r"\s", char)), hex(code)
        assert no_space.is_valid(char) == bool(re.search(r"^\S$", char)), hex(code)
        assert ends.is_valid("a" + char) == bool(re.search("^a$", "a" + char)), hex(code)
    for code in (0x10000, 0x1F600, 0xE0020, 0x10FFFF):  # no astral character is white space
        assert no_space.is_valid(chr(code)) and not some_space.is_valid(chr(code))


# --- validate() is the reference, message for message, on mutated events ---------------

_VALID_BODIES: dict[str, dict[str, Any]] = {
    "vote": {"proposal": "a" * 64, "choice": "yes"},
    "comment": {"proposal": "a" * 64, "text": "A point of view."},
    "veto": {"proposal": "a" * 64, "reason": "Strong objection."},
    "proposal": {"title": "Adopt the budget", "text": "", "kind": "vote",
                 "closes_at": "2026-03-09T00:00:00.000Z", "quorum": 0.5},
    "delegation": {"to": "A" * 43, "proposal": None},
    "chapter_url": {"url": "https://paris.example.org/node"},
}

_odd_text = st.text(alphabet=st.characters(codec=None), max_size=6) | st.sampled_from(
    ["\n", "a\n", "\x1c", "\x85", "\ufeff", "\u3000", " ", "", "\u2028", "\ud800", "é"])
_values = _odd_text | st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.none() | st.booleans() | st.lists(st.integers(), max_size=2)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(_VALID_BODIES)), st.data())
def test_validate_answers_as_the_reference_on_mutated_bodies(name: str, data: st.DataObject) -> None:
    body = dict(_VALID_BODIES[name])
    key = data.draw(st.sampled_from([*body, "extra"]))
    how = data.draw(st.sampled_from(["replace", "append", "drop"]))
    if how == "drop":
        body.pop(key, None)
    elif how == "append" and isinstance(body.get(key), str):
        body[key] = body[key] + data.draw(_odd_text)
    else:
        body[key] = data.draw(_values)
    assert _combined(name, body, "$.body") == _reference(name, body, "$.body")


def test_without_the_compiled_validator_validate_is_the_reference(monkeypatch) -> None:
    monkeypatch.setattr(schema, "jsonschema_rs", None)
    schema.fast_validator.cache_clear()
    try:
        assert schema.fast_validator("vote") is None
        assert _combined("vote", {"proposal": "a" * 64, "choice": "maybe"}) == \
            _reference("vote", {"proposal": "a" * 64, "choice": "maybe"})
        assert _combined("vote", {"proposal": "a" * 64, "choice": "yes"}) is None
    finally:
        monkeypatch.undo()
        schema.fast_validator.cache_clear()


def test_deep_instances_are_judged_as_the_reference_judges_them() -> None:
    limit = sys.getrecursionlimit()
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    body = {"title": "t", "text": "", "kind": "action", "effect": deep}
    assert _combined("proposal", body) == _reference("proposal", body)
    assert sys.getrecursionlimit() == limit
