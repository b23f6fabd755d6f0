"""`chapter-node tally` and `chapter-node proposals`: audit an exported log (PROTOCOL §7).

Thin commands over node.operations.audit: read the file, call one library function, print. Errors are
`ChapterNodeError`s; the main CLI group turns them into one line and a non-zero exit.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..operations.audit import proposals_report, read_export, tally_report
from ..protocol.errors import Misuse
from ..protocol.times import is_timestamp, parse_ms, wall_clock_ms
from .options import emit_json, json_option, resolve_id, table

__all__ = ["tally_command", "proposals_command", "COMMANDS"]


def _now_ms(now: str | None) -> int:
    if now is None:
        return wall_clock_ms()
    if not is_timestamp(now):
        raise Misuse("--now must be like 2026-11-24T10:00:00.000Z", code="bad_timestamp")
    return parse_ms(now)


_events_option = click.option(
    "--events", "events_file", required=True, metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An exported federation log (JSON Lines, as `chapter-node export` writes it).")
_now_option = click.option(
    "--now", metavar="TIMESTAMP",
    help="Judge states and finality as of this instant, e.g. 2026-12-01T00:00:00.000Z "
         "(default: this machine's clock).")


@click.command("tally")
@_events_option
@click.option("--proposal", "proposal_id", required=True, metavar="ID",
              help="The proposal's id, or any unique start of it (8+ hex characters).")
@click.option("--trace", is_flag=True,
              help="Also show where each Connector's weight went (votes), the counted acts, "
                   "and how each seal was judged.")
@_now_option
def tally_command(events_file: Path, proposal_id: str, trace: bool, now: str | None) -> None:
    """Recompute one proposal's tally from an export file alone, with no node running.

    Prints {"tally": {...}, "tally_hash": "..."} as JSON. Every event's signature is checked,
    every sealed list is checked against its seal's acts_root, and where counted seals exist
    only the acts they list are counted (PROTOCOL §7).

    \b
    Example:
      chapter-node export --data-dir ./paris --out federation.jsonl
      chapter-node tally --events federation.jsonl \\
          --proposal 5c0f9d2ab3e14c7e8f6a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a --trace
    """
    export = read_export(events_file)
    pid = resolve_id(proposal_id, lambda prefix: sorted(
        e.id for e in export.events if e.id.startswith(prefix) and e.type == "proposal"))
    emit_json(tally_report(export, pid, _now_ms(now), trace=trace))


@click.command("proposals")
@click.option("--events", "events_file", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="An exported federation log (JSON Lines, as `chapter-node export` writes it).")
@click.option("--node", metavar="URL", help="Or ask a running node (any chapter's).")
@json_option
@_now_option
def proposals_command(events_file: Path | None, node: str | None, as_json: bool,
                      now: str | None) -> None:
    """List every proposal: id, kind, title, state and outcome, from an export or a node.

    \b
    Example:
      chapter-node proposals --events federation.jsonl
      chapter-node proposals --events federation.jsonl --json --now 2026-12-01T00:00:00.000Z
      chapter-node proposals --node http://127.0.0.1:8400
    """
    if (events_file is None) == (node is None):
        raise Misuse("give either --events FILE or --node URL", code="bad_option")
    if node is not None:
        from ..federation.client import NodeClient

        rows = [{**row, "problems": []} for row in NodeClient(node).proposals()]
    else:
        rows = proposals_report(read_export(events_file), _now_ms(now))
    if as_json:
        emit_json(rows)
        return
    table(f"{len(rows)} proposal(s)", ["id", "kind", "title", "state", "outcome"],
          [[row["id"][:12], row["kind"], row["title"], row["state"],
            row["outcome"] + ("  ⚠ " + "; ".join(row["problems"]) if row["problems"] else "")]
           for row in rows])


COMMANDS = (tally_command, proposals_command)
