"""The JSON Schemas in `schemas/`, loaded and compiled once.

The schema files are the one definition of what a well-formed event, charter or export line
is; ingest, the CLI and the tests all validate through `validate()` here.

Two compilations of the same files: `jsonschema` (pure Python, the reference, and the one that
explains a failure with its JSON path) and, when installed, `jsonschema-rs` (compiled, ~100
times faster). `validate()` asks the compiled validator first and takes its "valid" only where
the two cannot disagree; every other answer comes from `jsonschema`, so the verdicts and the
error messages are exactly the reference's. Where they can disagree: `pattern` is a Python
regex for `jsonschema` and an ECMA-262 regex for `jsonschema-rs`, and the dialects differ on
what `\\s` matches (U+001C..U+001F, U+0085, U+FEFF, ...) and on `$` (Python's also matches
before a final newline). A string holding any such character (`_DIALECT_RISK`) sends the
instance to the reference; `tests/test_schema_fast.py` checks that the set is complete and
that both validators agree on every schema test case the suite has.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

try:  # optional: the hot path works without it, only slower
    import jsonschema_rs
except ImportError:  # pragma: no cover - exercised only where jsonschema-rs is missing
    jsonschema_rs = None

__all__ = [
    "EVENT_TYPES", "schema_dir", "validator", "fast_validator", "validate", "plain_strings",
    "SchemaViolation",
]

EVENT_TYPES = (
    "proposal", "comment", "endorse", "veto", "veto_withdraw", "vote",
    "delegation", "member", "seal", "feedback_request", "chapter_url",
)
_BASE = "https://chapter-node.org/schemas/"

# Characters on which Python's `re` and jsonschema-rs's ECMA-262 regexes may disagree:
# controls (`\n` for `$`; U+001C..U+001F are `\s` for Python only), C1 controls (U+0085),
# every Unicode space separator and line/paragraph separator, and U+FEFF (`\s` for ECMA only),
# plus U+180E, U+200B..U+200D, U+2060 that Unicode versions moved in and out of spaces.
_DIALECT_RISK = re.compile(
    "[\x00-\x1f\x80-\xa0\u1680\u180e\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
    "\ud800-\udfff]"
)


class SchemaViolation(ValueError):
    """A schema failure with the JSON path (`$.body.choice`) and the validator that failed."""

    def __init__(self, path: str, message: str, keyword: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.keyword = keyword


def schema_dir() -> Path:
    """`schemas/` beside the package (editable install) or inside it (wheel)."""
    package = Path(__file__).resolve().parent.parent  # node/
    for candidate in (package / "schemas", package.parent / "schemas"):
        if (candidate / "envelope.json").is_file():
            return candidate
    raise FileNotFoundError("the schemas/ directory is missing from this installation")


@lru_cache(maxsize=1)
def _documents() -> dict[str, Any]:
    return {_BASE + path.name: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(schema_dir().glob("*.json"))}


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resources(
        (uri, Resource.from_contents(contents)) for uri, contents in _documents().items())


@lru_cache(maxsize=None)
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema (ECMA-262) pattern as Python must read it: `$` is the end of the input
    (Python's `$` also matches before a final newline, so "paris\n" would pass `^[a-z]+$`)."""
    out, escaped, in_class = [], False, False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == "[":
            in_class = True
            out.append(ch)
        elif ch == "]":
            in_class = False
            out.append(ch)
        elif ch == "$" and not in_class:
            out.append(r"\Z")
        else:
            out.append(ch)
    return re.compile("".join(out))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# The reference validator with ECMA-262 `$` in `pattern` (JSON Schema 2020-12 §6.3.3).
_Reference = validators.extend(Draft202012Validator, {"pattern": _pattern})


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """The reference validator of `schemas/<name>.json` (`jsonschema`)."""
    schema = _registry().contents(_BASE + name + ".json")
    Draft202012Validator.check_schema(schema)
    return _Reference(schema, registry=_registry())


@lru_cache(maxsize=None)
def fast_validator(name: str) -> Any:
    """The compiled validator of the same file (`jsonschema-rs`), or None if not installed."""
    if jsonschema_rs is None:
        return None
    docs = _documents()
    registry = jsonschema_rs.Registry(list(docs.items()))
    return jsonschema_rs.Draft202012Validator(docs[_BASE + name + ".json"], registry=registry,
                                              offline=True)


def plain_strings(instance: Any) -> bool:
    """True when no string in `instance` (keys included) holds a `_DIALECT_RISK` character."""
    stack = [instance]
    search = _DIALECT_RISK.search
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if search(value):
                return False
        elif isinstance(value, dict):
            for key in value:
                if search(key):
                    return False
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def _fast_says_valid(name: str, instance: Any, plain: bool | None) -> bool:
    fast = fast_validator(name)
    if fast is None:
        return False
    if plain is None:
        plain = plain_strings(instance)
    if not plain:
        return False
    try:
        return bool(fast.is_valid(instance))
    except (ValueError, TypeError, OverflowError):  # e.g. a value it cannot convert
        return False


def validate(name: str, instance: Any, *, path_prefix: str = "$",
             plain: bool | None = None) -> None:
    """Raise `SchemaViolation` naming the JSON path of the most relevant failure.

    `plain=True` is the caller vouching that no string in `instance` holds a `_DIALECT_RISK`
    character (it saw the raw JSON); None makes this function look for itself.
    """
    if _fast_says_valid(name, instance, plain):
        return
    error = best_match(validator(name).iter_errors(instance))
    if error is None:
        return
    path = path_prefix + error.json_path[1:]
    raise SchemaViolation(path, error.message, str(error.validator))
