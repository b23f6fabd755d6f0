"""Options shared by several commands: key files and passphrases, output format."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import nacl.signing

from ..errors import ConfigError
from ..keys import read_key_file

__all__ = ["node_or_data_dir", "passphrase_option", "passphrase_source", "load_key", "json_option", "emit_json"]

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
