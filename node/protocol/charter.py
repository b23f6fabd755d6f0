"""The charter: the federation's trust root (PROTOCOL §3), loaded once and never mutated.

The federation id is the SHA-256 of the charter's canonical JSON exactly as written: rule
defaults are applied to the loaded `Rules`, never to the document, so every chapter derives
the same id from the same file.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidEvent
from .events import canonical, decode_key, loads_strict
from .schema import SchemaViolation, validate

__all__ = ["Charter", "Chapter", "Connector", "Rules", "load_charter", "charter_from_object"]


@dataclass(frozen=True, slots=True)
class Rules:
    """§3 `rules`, defaults applied. Durations are kept in milliseconds for exact arithmetic."""

    min_open_ms: int = 72 * 3_600_000
    grace_ms: int = 300_000
    seal_timeout_ms: int = 86_400_000
    quorum: Fraction = Fraction(1, 2)
    action_endorsements: int = 3


@dataclass(frozen=True, slots=True)
class Chapter:
    """A registered chapter: its slug, its node key, and the URL peers use."""

    slug: str
    key: str  # the chapter's node key
    url: str  # from the charter or admit_chapter effect, replaced by the latest chapter_url


@dataclass(frozen=True, slots=True)
class Connector:
    """A person holding the org-wide Connector role."""

    key: str
    name: str
    chapter: str


@dataclass(frozen=True, slots=True)
class Charter:
    id: str
    name: str
    created_at: str
    chapters: tuple[Chapter, ...]
    connectors: tuple[Connector, ...]
    rules: Rules
    document: str  # the charter as canonical JSON text, for export and re-checking

    def to_json(self) -> dict[str, Any]:
        return json.loads(self.document)


def exact(number: int | float) -> Fraction:
    """The exact value of a JSON number as its shortest decimal spelling says (no float maths)."""
    return Fraction(repr(number)) if isinstance(number, float) else Fraction(number)


def charter_from_object(doc: Any) -> Charter:
    """Validate a parsed charter; `ConfigError` with the JSON path on any problem."""
    try:
        validate("charter", doc)
    except SchemaViolation as e:
        raise ConfigError(f"charter is invalid at {e}", code="bad_charter") from e
    try:
        for entry in doc["chapters"]:
            decode_key(entry["key"], what=f"key of chapter {entry['slug']}")
        for entry in doc["connectors"]:
            decode_key(entry["key"], what=f"key of Connector {entry['name']}")
    except InvalidEvent as e:
        raise ConfigError(f"charter is invalid: {e.message}", code="bad_charter") from e
    slugs = [c["slug"] for c in doc["chapters"]]
    if len(set(slugs)) != len(slugs):
        raise ConfigError("charter names a chapter slug twice", code="bad_charter")
    node_keys = [c["key"] for c in doc["chapters"]]
    if len(set(node_keys)) != len(node_keys):
        raise ConfigError("charter gives two chapters the same node key", code="bad_charter")
    person_keys = [c["key"] for c in doc["connectors"]]
    if len(set(person_keys)) != len(person_keys):
        raise ConfigError("charter names a Connector key twice", code="bad_charter")
    if set(person_keys) & set(node_keys):
        raise ConfigError("a node key cannot also be a Connector's key", code="bad_charter")
    for c in doc["connectors"]:
        if c["chapter"] not in slugs:
            raise ConfigError(
                f"Connector {c['name']} belongs to unknown chapter {c['chapter']!r}",
                code="bad_charter",
            )
    raw = doc.get("rules", {})
    defaults = Rules()
    rules = Rules(
        min_open_ms=math.ceil(exact(raw["min_open_hours"]) * 3_600_000)
        if "min_open_hours" in raw else defaults.min_open_ms,
        grace_ms=raw.get("grace_seconds", 300) * 1000,
        seal_timeout_ms=raw.get("seal_timeout_seconds", 86_400) * 1000,
        quorum=exact(raw["quorum"]) if "quorum" in raw else defaults.quorum,
        action_endorsements=raw.get("action_endorsements", 3),
    )
    text = canonical(doc)
    return Charter(
        id=hashlib.sha256(text).hexdigest(),
        name=doc["name"],
        created_at=doc["created_at"],
        chapters=tuple(Chapter(c["slug"], c["key"], c["url"]) for c in doc["chapters"]),
        connectors=tuple(Connector(c["key"], c["name"], c["chapter"]) for c in doc["connectors"]),
        rules=rules,
        document=text.decode("utf-8"),
    )


def load_charter(path: str | Path) -> Charter:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read charter {path}: {e.strerror}", code="bad_charter") from e
    try:
        doc = loads_strict(data)
    except InvalidEvent as e:
        raise ConfigError(f"charter {path} is not valid JSON: {e.message}", code="bad_charter") from e
    return charter_from_object(doc)
