"""The JSON Schemas in `schemas/`, loaded and compiled once.

The schema files are the one definition of what a well-formed event, charter or export line
is; ingest, the CLI and the tests all validate through `validate()` here.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

__all__ = ["EVENT_TYPES", "schema_dir", "validator", "validate", "SchemaViolation"]

EVENT_TYPES = (
    "proposal", "comment", "endorse", "veto", "veto_withdraw", "vote",
    "delegation", "member", "seal", "feedback_request", "chapter_url",
)
_BASE = "https://chapter-node.org/schemas/"


class SchemaViolation(ValueError):
    """A schema failure with the JSON path (`$.body.choice`) and the validator that failed."""

    def __init__(self, path: str, message: str, keyword: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.keyword = keyword


def schema_dir() -> Path:
    """`schemas/` beside the package (editable install) or inside it (wheel)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "schemas", here.parent / "schemas"):
        if (candidate / "envelope.json").is_file():
            return candidate
    raise FileNotFoundError("the schemas/ directory is missing from this installation")


@lru_cache(maxsize=1)
def _registry() -> Registry:
    resources = []
    for path in sorted(schema_dir().glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((_BASE + path.name, Resource.from_contents(contents)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """The compiled validator of `schemas/<name>.json`."""
    schema = _registry().contents(_BASE + name + ".json")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


def validate(name: str, instance: Any, *, path_prefix: str = "$") -> None:
    """Raise `SchemaViolation` naming the JSON path of the most relevant failure."""
    error = best_match(validator(name).iter_errors(instance))
    if error is None:
        return
    path = path_prefix + error.json_path[1:]
    raise SchemaViolation(path, error.message, str(error.validator))
