"""The `chapter-node` command line: a thin shell over library functions.

Each command calls into the library and prints; every `ChapterNodeError` becomes one line on
stderr and a non-zero exit (1: something sent or found was refused; 2: local misuse), never a
traceback. This is the one place errors are mapped to CLI messages.
"""

from __future__ import annotations

import sys

import click

from ..protocol.errors import ChapterNodeError, LocalError

__all__ = ["cli", "main"]


class ErrorMappingGroup(click.Group):
    """Turns domain errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ChapterNodeError as e:
            click.echo(f"error: {e.message} [{e.code}]", err=True)
            ctx.exit(2 if isinstance(e, LocalError) else 1)
        except KeyboardInterrupt:  # pragma: no cover - interactive
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=ErrorMappingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chapter-node")
def cli() -> None:
    """chapter-node: one chapter's node in a federation that governs itself.

    \b
    Example:
      chapter-node keygen --out paris-node.key
      chapter-node init --data-dir ./paris --charter charter.json --chapter paris --node-key paris-node.key
      chapter-node run --data-dir ./paris --listen 127.0.0.1:8400
    """


def _register() -> None:
    from . import acts, admin, audit, charter, keys

    for module in (keys, charter, admin, acts):
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(audit.tally_command, "tally")
    cli.add_command(audit.proposals_command, "proposals")


def main() -> None:
    _register()
    cli(prog_name="chapter-node")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
