"""Options shared by several commands: key files and passphrases, output format."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import nacl.signing

from ..protocol.errors import ConfigError, Misuse, NotFound
from ..protocol.keys import read_key_file

__all__ = ["node_or_data_dir", "passphrase_option", "passphrase_source", "load_key",
           "json_option", "emit_json", "table", "resolve_id"]

F = TypeVar("F", bound=Callable[..., Any])


def passphrase_option(fn: F) -> F:
    return click.option(
        "--passphrase-env", metavar="VAR",
        help="Read the key file's passphrase from environment variable VAR "
             "(otherwise it is asked for at the terminal).",
    )(fn)


def passphrase_source(env_var: str | None, *, confirm: bool = False) -> Callable[[], str | None]:
    """How every command that signs gets a passphrase: from --passphrase-env, else a prompt."""

    def ask() -> str | None:
        if env_var:
            value = os.environ.get(env_var)
            if value is None:
                raise ConfigError(f"environment variable {env_var} is not set",
                                  code="passphrase_required")
            return value
        if not sys.stdin.isatty():
            return None
        return click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm,
                            default="", show_default=False) or None

    return ask


def load_key(path: str, env_var: str | None) -> nacl.signing.SigningKey:
    return read_key_file(path, passphrase_source(env_var))


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON for scripts instead of a table.")(fn)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False))


def node_or_data_dir(fn: F) -> F:
    """`--node URL` (ask a running node) or `--data-dir DIR` (read a local store)."""
    fn = click.option("--data-dir", type=click.Path(file_okay=False),
                      help="Or read a local data dir.")(fn)
    fn = click.option("--node", default=None, metavar="URL",
                      help="Ask a running node (any chapter's).")(fn)
    return json_option(fn)


def table(title: str | None, headers: list[str], rows: list[list[str]]) -> None:
    """A table that fits the terminal; piped, plain tab-separated columns under a header line
    (every cell whole, for grep, cut and awk)."""
    if not sys.stdout.isatty():
        if title:
            click.echo(f"# {title}")
        click.echo("\t".join(headers))
        for row in rows:
            click.echo("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in row))
        return
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=title)
    for header in headers:
        shown.add_column(header, overflow="fold")
    for row in rows:
        shown.add_row(*row)
    Console().print(shown)


_HEX_ID = re.compile(r"[0-9a-f]{8,64}")


def resolve_id(text: str, lookup: Callable[[str], list[str]] | None) -> str:
    """An event id from its whole 64 hex characters or any unique start of 8 or more;
    `lookup(prefix)` lists the held ids that start with it (None: offline, no look-up)."""
    given = text.strip().lower()
    if not _HEX_ID.fullmatch(given):
        raise Misuse(f"{text!r} is not an event id: give its 64 hex characters, or a start of "
                     "8 or more that only it has", code="bad_id")
    if len(given) == 64:
        return given
    if lookup is None:
        raise Misuse(f"{given} is only the start of an id: offline, give all 64 characters "
                     "(or --node URL to look it up)", code="bad_id")
    found = lookup(given)
    if not found:
        raise NotFound(f"no event held there has an id starting with {given}")
    if len(found) > 1:
        raise Misuse(f"{given} is the start of several ids ({', '.join(i[:16] + '…' for i in found[:4])}"
                     f"{', …' if len(found) > 4 else ''}): give more characters",
                     code="ambiguous_id")
    return found[0]
