"""A charter in the making: what a founding admin builds with `chapter-node charter ...`.

A draft is the charter's JSON document before it is handed to the founding chapters; each
step returns a new document (nothing here changes its input) and checks what it adds, so the
admin never writes JSON by hand. Once every founding chapter has the same file, it must not
change: the federation id is the SHA-256 of its canonical form, and any edit makes another
federation.
"""

from __future__ import annotations

import copy
import re
from fractions import Fraction
from typing import Any

from ..protocol.charter import Charter, Rules, charter_from_object
from ..protocol.errors import ConfigError, InvalidEvent
from ..protocol.events import decode_key
from ..protocol.schema import SchemaViolation, validate

__all__ = ["RULE_DEFAULTS", "new_draft", "parse_rule", "check_url", "add_chapter", "add_connector",
           "check_draft", "draft_problems"]

_DEFAULTS = Rules()
# PROTOCOL §3: every rule and its default, written out in a new charter so the admin sees them
RULE_DEFAULTS: dict[str, int | float] = {
    "min_open_hours": _DEFAULTS.min_open_ms // 3_600_000,
    "grace_seconds": _DEFAULTS.grace_ms // 1000,
    "seal_timeout_seconds": _DEFAULTS.seal_timeout_ms // 1000,
    "quorum": float(_DEFAULTS.quorum),
    "action_endorsements": _DEFAULTS.action_endorsements,
}
_INTEGER_RULES = {"grace_seconds", "seal_timeout_seconds", "action_endorsements"}
_RANGES = {"min_open_hours": (0, 87600), "grace_seconds": (0, 31_536_000),  # schemas/charter.json
           "seal_timeout_seconds": (0, 31_536_000), "quorum": (0, 1),
           "action_endorsements": (1, 1000)}


def parse_rule(text: str) -> tuple[str, int | float]:
    """`grace_seconds=300` → ("grace_seconds", 300), checked against the charter schema."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or name not in RULE_DEFAULTS:
        raise ConfigError(f"--rule {text!r}: write NAME=VALUE, NAME one of "
                          f"{', '.join(RULE_DEFAULTS)}", code="bad_rule")
    try:
        value: int | float = int(raw) if name in _INTEGER_RULES else _number(raw)
    except ValueError as e:
        kind = "a whole number" if name in _INTEGER_RULES else "a number"
        raise ConfigError(f"--rule {name}: {raw!r} is not {kind}", code="bad_rule") from e
    low, high = _RANGES[name]
    if not low <= value <= high:
        raise ConfigError(f"--rule {name} must be between {low} and {high}", code="bad_rule")
    return name, value


def _number(raw: str) -> int | float:
    value = Fraction(raw.strip())  # exact: "0.5" stays 0.5
    return int(value) if value.denominator == 1 else float(raw)


def new_draft(name: str, created_at: str, rules: dict[str, int | float]) -> dict[str, Any]:
    doc = {"name": name, "created_at": created_at, "chapters": [], "connectors": [],
           "rules": {**RULE_DEFAULTS, **rules}}
    _check({"name": name, "created_at": created_at}, "the charter's name")
    return doc


_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_URL = re.compile(r"https?://[^\s/?#]+(?:/\S*)?")


def check_url(url: str) -> None:
    """A node's address as the protocol takes it (schemas/defs.json `url`), said in words."""
    if not _URL.fullmatch(url) or len(url) > 2048:
        raise ConfigError(f"{url!r} is not a node address: give its https:// URL, e.g. "
                          "https://paris.example.org", code="bad_url")


def add_chapter(doc: dict[str, Any], slug: str, key: str, url: str) -> dict[str, Any]:
    if not _SLUG.fullmatch(slug):
        raise ConfigError(f"{slug!r} cannot be a chapter's slug: use lowercase letters, digits "
                          "and hyphens, e.g. paris or sao-paulo", code="bad_slug")
    if not _URL.fullmatch(url) or len(url) > 2048:
        raise ConfigError(f"{url!r} is not a node address: give its https:// URL, e.g. "
                          "https://paris.example.org", code="bad_url")
    _key(key, f"the node key of chapter {slug}")
    entry = {"slug": slug, "key": key, "url": url}
    _check({"chapters": [entry]}, f"chapter {slug}")
    if any(c["slug"] == slug for c in doc["chapters"]):
        raise ConfigError(f"the charter names chapter {slug} already", code="duplicate_chapter")
    if any(key == c["key"] for c in doc["chapters"] + doc["connectors"]):
        raise ConfigError(f"key {key[:8]}… is in the charter already: each chapter's node has "
                          "its own key (chapter-node keygen)", code="duplicate_key")
    out = copy.deepcopy(doc)
    out["chapters"].append(entry)
    return out


def add_connector(doc: dict[str, Any], key: str, name: str, chapter: str) -> dict[str, Any]:
    if not name.strip() or len(name) > 200:
        raise ConfigError("a Connector's name is 1 to 200 characters, not only spaces",
                          code="bad_name")
    _key(key, f"{name}'s key")
    entry = {"key": key, "name": name, "chapter": chapter}
    _check({"connectors": [entry]}, f"Connector {name}")
    if not any(c["slug"] == chapter for c in doc["chapters"]):
        raise ConfigError(f"no chapter {chapter} in the charter yet: add it first "
                          "(chapter-node charter add-chapter)", code="unknown_chapter")
    if any(key == c["key"] for c in doc["connectors"] + doc["chapters"]):
        raise ConfigError(f"key {key[:8]}… is in the charter already", code="duplicate_key")
    out = copy.deepcopy(doc)
    out["connectors"].append(entry)
    return out


def draft_problems(doc: Any) -> list[str]:
    """What keeps the draft from being a charter, in words (empty: it is one)."""
    try:
        charter_from_object(doc)
    except ConfigError as e:
        if isinstance(doc, dict) and doc.get("chapters") == []:
            return ["it names no chapter yet: add one with chapter-node charter add-chapter"]
        return [e.message]
    return []


def check_draft(doc: Any) -> Charter:
    problems = draft_problems(doc)
    if problems:
        raise ConfigError("; ".join(problems), code="bad_charter")
    return charter_from_object(doc)


def _key(key: str, what: str) -> None:
    try:
        decode_key(key, what=what)
    except InvalidEvent as e:
        raise ConfigError(f"{what} is not a public key: {e.message}",
                          code="bad_key") from e


def _check(partial: dict[str, Any], what: str) -> None:
    """Check the fields given against the charter schema, with a readable complaint."""
    doc = {"name": "x", "created_at": "2026-01-01T00:00:00.000Z",
           "chapters": [{"slug": "x", "key": "A" * 43, "url": "https://x.example"}],
           "connectors": [], **partial}
    try:
        validate("charter", doc)
    except SchemaViolation as e:
        raise ConfigError(f"{what} is not valid: {e}", code="bad_charter") from e
