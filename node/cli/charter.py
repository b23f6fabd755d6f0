"""`chapter-node charter ...`: found a federation with commands, not hand-written JSON.

Each command reads the file, calls one function of node.operations.charter_draft and writes the file
back (or prints): new, add-chapter, add-connector, show, check.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ..operations import charter_draft as draft
from ..protocol.errors import ConfigError
from ..protocol.times import format_ms, is_timestamp, wall_clock_ms
from .options import emit_json, json_option, table

__all__ = ["charter", "COMMANDS"]

_file = click.option("--file", "path", required=True, metavar="FILE",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="The charter file (JSON).")


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{path} does not exist: make one with chapter-node charter new "
                          f"--file {path} --name NAME", code="no_charter") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not a charter file (JSON)", code="bad_charter") from e
    if not isinstance(doc, dict) or not {"chapters", "connectors"} <= set(doc):
        raise ConfigError(f"{path} is not a charter file", code="bad_charter")
    return doc


def _write(path: Path, doc: dict[str, Any], *, new: bool = False) -> None:
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if new:
        try:
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError as e:
            raise ConfigError(f"{path} exists already; refusing to replace a charter",
                              code="charter_exists") from e
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _where_it_stands(doc: dict[str, Any]) -> None:
    problems = draft.draft_problems(doc)
    if problems:
        click.echo(f"draft: {problems[0]}")
    else:
        click.echo(f"federation id {draft.check_draft(doc).id}")
        click.echo("Every founding chapter must init with this exact file: any change to it "
                   "makes another federation.")


@click.group()
def charter() -> None:
    """Found a federation: write its charter (the trust root) with commands.

    \b
    Example:
      chapter-node charter new --file charter.json --name "OuiShare" --rule grace_seconds=300
      chapter-node charter add-chapter paris --key <node key> --url https://paris.example.org --file charter.json
      chapter-node charter add-connector --key <person key> --name "Amélie" --chapter paris --file charter.json
      chapter-node charter show --file charter.json
    """


@charter.command("new")
@_file
@click.option("--name", required=True, help="The federation's name, e.g. \"OuiShare\".")
@click.option("--rule", "rules", multiple=True, metavar="NAME=VALUE",
              help="A decision rule other than its default (repeatable): "
                   + ", ".join(f"{k}={v}" for k, v in draft.RULE_DEFAULTS.items()) + ".")
@click.option("--created-at", metavar="TIMESTAMP", help="Default: now.")
def charter_new(path: Path, name: str, rules: tuple[str, ...], created_at: str | None) -> None:
    """Start a new charter: a name and the rules, every default written out.

    \b
    Example:
      chapter-node charter new --file charter.json --name "OuiShare" --rule min_open_hours=48
    """
    if created_at is not None and not is_timestamp(created_at):
        raise ConfigError("--created-at must be like 2026-11-24T10:00:00.000Z",
                          code="bad_timestamp")
    chosen = dict(draft.parse_rule(r) for r in rules)
    doc = draft.new_draft(name, created_at or format_ms(wall_clock_ms()), chosen)
    _write(path, doc, new=True)
    click.echo(f"wrote {path}: {name}")
    for rule, value in doc["rules"].items():
        click.echo(f"  {rule} = {value}" + ("" if rule in chosen else "  (default)"))
    click.echo("Next: chapter-node charter add-chapter SLUG --key NODE_KEY --url URL "
               f"--file {path}")


@charter.command("add-chapter")
@click.argument("slug")
@click.option("--key", required=True, help="The chapter node's public key (chapter-node keygen).")
@click.option("--url", required=True, help="Where its node answers, e.g. https://paris.example.org")
@_file
def charter_add_chapter(slug: str, key: str, url: str, path: Path) -> None:
    """Add a founding chapter and its node.

    \b
    Example:
      chapter-node charter add-chapter paris --key kX3...Q --url https://paris.example.org --file charter.json
    """
    doc = draft.add_chapter(_read(path), slug, key, url)
    _write(path, doc)
    click.echo(f"chapter {slug} added ({len(doc['chapters'])} chapters)")
    _where_it_stands(doc)


@charter.command("add-connector")
@click.option("--key", required=True,
              help="The Connector's public key (chapter-node keygen, or their browser's).")
@click.option("--name", required=True, help="The Connector's name, as everyone will read it.")
@click.option("--chapter", required=True, help="The chapter they belong to.")
@_file
def charter_add_connector(key: str, name: str, chapter: str, path: Path) -> None:
    """Add a founding Connector.

    \b
    Example:
      chapter-node charter add-connector --key hqJm...p4 --name "Amélie" --chapter paris --file charter.json
    """
    doc = draft.add_connector(_read(path), key, name, chapter)
    _write(path, doc)
    click.echo(f"Connector {name} ({chapter}) added ({len(doc['connectors'])} Connectors)")
    _where_it_stands(doc)


@charter.command("show")
@_file
@json_option
def charter_show(path: Path, as_json: bool) -> None:
    """The federation id, chapters, Connectors and rules a charter sets.

    \b
    Example:
      chapter-node charter show --file charter.json
    """
    doc = _read(path)
    problems = draft.draft_problems(doc)
    federation = None if problems else draft.check_draft(doc).id
    if as_json:
        emit_json({"federation": federation, "problems": problems, "charter": doc})
        return
    click.echo(f"{doc.get('name')} (created {doc.get('created_at')})")
    click.echo(f"federation id: {federation or 'none yet — ' + problems[0]}")
    table("chapters", ["slug", "url", "node key"],
          [[c["slug"], c["url"], c["key"]] for c in doc["chapters"]])
    table("Connectors", ["name", "chapter", "key"],
          [[c["name"], c["chapter"], c["key"]] for c in doc["connectors"]])
    table("rules", ["rule", "value"], [[k, str(v)] for k, v in doc.get("rules", {}).items()])


@charter.command("check")
@_file
def charter_check(path: Path) -> None:
    """Check a charter: valid, and the federation id every chapter will share. Exit 1 if not.

    \b
    Example:
      chapter-node charter check --file charter.json
    """
    doc = _read(path)
    problems = draft.draft_problems(doc)
    if problems:
        for problem in problems:
            click.echo(f"not a valid charter: {problem}", err=True)
        raise SystemExit(1)
    result = draft.check_draft(doc)
    click.echo(f"ok: {result.name}, {len(result.chapters)} chapters, "
               f"{len(result.connectors)} Connectors, federation id {result.id}")




COMMANDS = [charter]
