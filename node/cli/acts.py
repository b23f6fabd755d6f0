"""A person's acts: signed with their own key file, offline (`sign ...`) or sent to any node.

One table (`ACTS`) says, for each act, its event type, its options and how they make the body;
both `chapter-node sign <act>` (prints the event JSON) and `chapter-node <act> --node URL`
(signs, then submits through `POST /api/v1/events`) are generated from it, so the two can never
disagree about what an act contains.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from ..protocol.charter import load_charter
from ..protocol.errors import InvalidEvent, Misuse
from ..protocol.events import Event, sign_event
from ..protocol.times import format_ms, is_timestamp, wall_clock_ms
from .options import emit_json, load_key, resolve_id

__all__ = ["COMMANDS", "ACTS", "ActSpec", "parse_duration_ms"]


def parse_duration_ms(text: str) -> int:
    """'90s', '15m', '72h', '7d' → milliseconds."""
    units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    try:
        value, unit = float(text[:-1]), units[text[-1]]
    except (KeyError, ValueError, IndexError) as e:
        raise Misuse(f"duration {text!r} is not like 90s, 15m, 72h or 7d",
                         code="bad_duration") from e
    if not 0 < value < float("inf"):  # also refuses nan
        raise Misuse(f"duration {text!r} must be a positive number", code="bad_duration")
    return int(value * unit)


def _closes(kw: dict[str, Any], now_ms: int) -> str | None:
    if kw.get("closes_at") and kw.get("closes_in"):
        raise Misuse("give --closes-at or --closes-in, not both", code="bad_option")
    if kw.get("closes_at"):
        if not is_timestamp(kw["closes_at"]):
            raise Misuse("--closes-at must be like 2026-11-24T10:00:00.000Z",
                             code="bad_timestamp")
        return kw["closes_at"]
    if kw.get("closes_in"):
        return format_ms(now_ms + parse_duration_ms(kw["closes_in"]))
    return None


def _proposal_body(kw: dict[str, Any], now_ms: int) -> dict[str, Any]:
    body: dict[str, Any] = {"title": kw["title"], "text": kw["text"] or "", "kind": kw["kind"]}
    closes = _closes(kw, now_ms)
    if closes:
        body["closes_at"] = closes
    effects = [e for e in ("appoint", "remove", "admit") if kw.get(e)]
    if len(effects) > 1:
        raise Misuse("a proposal carries one effect at most", code="bad_option")
    if kw.get("appoint"):
        key, name, chapter = _fields(kw["appoint"], 3, "--appoint KEY:NAME:CHAPTER")
        body["effect"] = {"appoint_connector": {"key": key, "name": name, "chapter": chapter}}
    if kw.get("remove"):
        body["effect"] = {"remove_connector": {"key": kw["remove"]}}
    if kw.get("admit"):
        slug, key, url = _fields(kw["admit"], 3, "--admit SLUG:KEY:URL")
        body["effect"] = {"admit_chapter": {"slug": slug, "key": key, "url": url}}
    for field in ("escalated_from", "quorum", "threshold"):
        if kw.get(field) is not None:
            body[field] = kw[field]
    return body


def _fields(text: str, n: int, usage: str) -> list[str]:
    parts = text.split(":", n - 1)
    if len(parts) != n or not all(parts):
        raise Misuse(f"expected {usage}", code="bad_option")
    return parts


@dataclass(frozen=True)
class ActSpec:
    name: str
    type: str
    help: str
    options: tuple[click.Option, ...]
    body: Callable[[dict[str, Any], int], dict[str, Any]]


def _proposal_opt() -> click.Option:
    return click.Option(["--proposal"], required=True,
                        help="The proposal's id (or any unique start of it, 8+ characters).")


ACTS: tuple[ActSpec, ...] = (
    ActSpec("propose", "proposal", "Open an organisation-wide decision.", (
        click.Option(["--title"], required=True, help="A short title every chapter will see."),
        click.Option(["--text"], default="", help="The proposal's full text."),
        click.Option(["--kind"], required=True, type=click.Choice(["consent", "action", "vote"]),
                     help="consent: strategic, vetoable; action: 3-Connectors rule; vote: last resort."),
        click.Option(["--closes-at"], help="RFC 3339 UTC close time (consent, vote)."),
        click.Option(["--closes-in"], help="Close after this long, e.g. 72h (consent, vote)."),
        click.Option(["--appoint"], metavar="KEY:NAME:CHAPTER", help="Effect: appoint a Connector."),
        click.Option(["--remove"], metavar="KEY", help="Effect: remove a Connector."),
        click.Option(["--admit"], metavar="SLUG:KEY:URL", help="Effect: admit a chapter."),
        click.Option(["--escalated-from"], help="The vetoed consent proposal this vote escalates."),
        click.Option(["--quorum"], type=click.FloatRange(0, 1), help="Share of eligible weight that must be cast."),
        click.Option(["--threshold"], type=click.FloatRange(0, 1), help="Adopted iff yes > threshold × (yes + no)."),
    ), _proposal_body),
    ActSpec("comment", "comment", "Comment on a proposal or a feedback request.", (
        _proposal_opt(), click.Option(["--text"], required=True, help="The comment."),
        click.Option(["--reply-to"], help="The comment this one answers."),
    ), lambda kw, _: {"proposal": kw["proposal"], "text": kw["text"],
                      **({"reply_to": kw["reply_to"]} if kw.get("reply_to") else {})}),
    ActSpec("endorse", "endorse", "Agree with a proposal (counts toward the 3-Connectors rule).",
            (_proposal_opt(),), lambda kw, _: {"proposal": kw["proposal"]}),
    ActSpec("veto", "veto", "Veto a consent proposal, stating the strong objection.", (
        _proposal_opt(), click.Option(["--reason"], required=True, help="The strong objection."),
    ), lambda kw, _: {"proposal": kw["proposal"], "reason": kw["reason"]}),
    ActSpec("withdraw-veto", "veto_withdraw", "Withdraw your veto.", (_proposal_opt(),),
            lambda kw, _: {"proposal": kw["proposal"]}),
    ActSpec("vote", "vote", "Vote directly (overrides any delegation).", (
        _proposal_opt(), click.Option(["--choice"], required=True,
                                      type=click.Choice(["yes", "no", "abstain"]),
                                      help="yes, no, or abstain (counts toward quorum only)."),
    ), lambda kw, _: {"proposal": kw["proposal"], "choice": kw["choice"]}),
    ActSpec("delegate", "delegation",
            "Give your vote to another Connector (transitive); --to none revokes.", (
        click.Option(["--to"], required=True, help="The Connector's key, or 'none' to revoke."),
        click.Option(["--proposal"], default=None, help="One vote proposal (default: all)."),
    ), lambda kw, _: {"to": None if kw["to"] == "none" else kw["to"],
                      "proposal": kw.get("proposal")}),
)




_ID_OPTIONS = ("proposal", "reply_to", "escalated_from")


def build_act(spec: ActSpec, kw: dict[str, Any], *, federation: str, chapter: str,
              created_at: str | None, lookup: Callable[[str], list[str]] | None) -> Event:
    """Sign the act; ids given by a prefix are resolved with `lookup` (None: offline)."""
    now = wall_clock_ms()
    kw = {**kw, **{name: resolve_id(kw[name], lookup) for name in _ID_OPTIONS if kw.get(name)}}
    if created_at is not None and not is_timestamp(created_at):
        raise Misuse("--created-at must be like 2026-11-24T10:00:00.000Z",
                         code="bad_timestamp")
    key = load_key(kw["key"], kw.get("passphrase_env"))
    try:
        return sign_event(federation=federation, type=spec.type, chapter=chapter,
                          created_at=created_at or format_ms(now), body=spec.body(kw, now),
                          signing_key=key)
    except InvalidEvent as e:
        raise Misuse(_in_words(e, spec), code=e.code) from e


def _in_words(error: InvalidEvent, spec: ActSpec) -> str:
    """What the person typed that cannot be signed, by its option, without the schema's path
    or the whole text echoed back."""
    field = re.search(r"\$\.body\.(\w+)", error.message)
    if field is None:
        return f"this {spec.name} cannot be signed: {error.message[:200]}"
    option = "--" + field.group(1).replace("_", "-")
    if "too long" in error.message:
        return f"{option} is too long: a text has at most 60,000 characters, a title 300"
    if "non-empty" in error.message or r"\S'" in error.message:  # minLength, pattern \S
        return f"{option} must say something (it is empty or only spaces)"
    return f"{option} is not acceptable here: {error.message.split(': ', 1)[-1][:160]}"


def _common(with_node: bool) -> list[click.Option]:
    opts = [
        click.Option(["--key"], required=True, type=click.Path(exists=True, dir_okay=False),
                     help="Your own secret key file."),
        click.Option(["--passphrase-env"], metavar="VAR", help="Passphrase from this env var."),
        click.Option(["--created-at"], help="Timestamp to sign (default: now)."),
    ]
    if with_node:
        opts += [
            click.Option(["--node"], required=True, metavar="URL",
                         help="Any chapter node, e.g. https://paris.example.org"),
            click.Option(["--json", "as_json"], is_flag=True, help="Print the node's JSON answer."),
            click.Option(["--quiet", "-q"], is_flag=True,
                         help="Print only the event's id (for scripts: ID=$(chapter-node ...))."),
        ]
    else:
        opts += [
            click.Option(["--charter"], type=click.Path(exists=True, dir_okay=False),
                         help="The federation's charter (gives the federation id)."),
            click.Option(["--federation"], help="The federation id, if no charter file is at hand."),
            click.Option(["--chapter"], help="The chapter whose node will receive it: a node "
                                             "takes from people only its own chapter's events."),
            click.Option(["--node"], metavar="URL",
                         help="Or sign for this node: its federation and chapter, and ids "
                              "given by their start looked up there. Nothing is sent."),
        ]
    return opts


def _sign_command(spec: ActSpec) -> click.Command:
    def callback(**kw: Any) -> None:
        lookup = None
        if kw.get("node"):
            from ..federation.client import NodeClient

            client = NodeClient(kw["node"])
            status = client.status()
            federation, chapter, lookup = status["federation"], status["chapter"], client.ids_with_prefix
            if kw.get("chapter") not in (None, chapter):
                raise Misuse(f"{kw['node']} is the {chapter} node: it takes only {chapter}'s "
                             f"events, not {kw['chapter']}'s", code="bad_option")
        else:
            if kw.get("charter"):
                federation = load_charter(kw["charter"]).id
            elif kw.get("federation"):
                federation = kw["federation"]
            else:
                raise Misuse("give --charter FILE or --federation ID (or --node URL)")
            if not kw.get("chapter"):
                raise Misuse("give --chapter SLUG: the chapter whose node you will send it "
                             "to (or --node URL)")
            chapter = kw["chapter"]
        event = build_act(spec, kw, federation=federation, chapter=chapter,
                          created_at=kw.get("created_at"), lookup=lookup)
        click.echo(event.canonical.decode("utf-8"))
        click.echo(f"signed for the {chapter} node: only it takes this event from a person "
                   f"(PROTOCOL §6); send it with chapter-node submit FILE --node <{chapter}'s "
                   "node URL>", err=True)

    return click.Command(
        spec.name, callback=callback, params=[*spec.options, *_common(False)],
        help=f"{spec.help} Prints the signed event as JSON.\n\n\b\nExample:\n  chapter-node sign "
             f"{spec.name} --key me.key --charter charter.json --chapter paris ...",
    )


def _submit_command(spec: ActSpec) -> click.Command:
    def callback(**kw: Any) -> None:
        from ..federation.client import NodeClient

        client = NodeClient(kw["node"])
        status = client.status()
        event = build_act(spec, kw, federation=status["federation"], chapter=status["chapter"],
                          created_at=kw.get("created_at"), lookup=client.ids_with_prefix)
        answer = client.submit(event.canonical)
        if kw.get("as_json"):
            emit_json(answer)
        elif kw.get("quiet"):
            click.echo(answer["id"])
        else:
            click.echo(f"{spec.type} {answer['id']} accepted by {status['chapter']}"
                       + (" (already held)" if answer.get("duplicate") else ""))

    return click.Command(
        spec.name, callback=callback, params=[*spec.options, *_common(True)],
        help=f"{spec.help} Signs with your key and submits through any node.\n\n\b\nExample:\n"
             f"  chapter-node {spec.name} --node http://127.0.0.1:8400 --key me.key ...",
    )


@click.group()
def sign() -> None:
    """Sign an act offline with your own key file; prints the event JSON.

    \b
    Example:
      chapter-node sign vote --key marco.key --charter charter.json --chapter rome \\
          --proposal 5e0c...a1 --choice yes > vote.json
    """


for _spec in ACTS:
    sign.add_command(_sign_command(_spec))


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option("--charter", type=click.Path(exists=True, dir_okay=False),
              help="Also check that each event belongs to this charter's federation.")
def verify(file: Any, charter: str | None) -> None:
    """Verify events: one JSON event, or JSON Lines of events ('-' reads stdin).

    Prints one line per event: its id, or why it is refused. Exit 1 if any is refused.

    \b
    Example:
      chapter-node sign vote ... > vote.json && chapter-node verify vote.json
    """
    from ..protocol.errors import InvalidEvent
    from ..protocol.events import parse_event

    federation = load_charter(charter).id if charter else None
    data = file.read()
    lines = [data] if data.lstrip().startswith(b"{") and data.count(b"\n{") == 0 else data.splitlines()
    bad = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = parse_event(line, federation=federation)
        except InvalidEvent as e:
            bad += 1
            click.echo(f"line {number}: refused [{e.code}] {e.message}")
        else:
            click.echo(f"line {number}: ok {event.type} {event.id}")
    if bad:
        raise SystemExit(1)


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option("--node", required=True, metavar="URL",
              help="The node of the chapter the event was signed for.")
@click.option("--json", "as_json", is_flag=True, help="Print the node's JSON answer.")
def submit(file: Any, node: str, as_json: bool) -> None:
    """Send an event signed earlier (chapter-node sign ...) to a node ('-' reads stdin).

    A node takes from people only its own chapter's events (PROTOCOL §6): send it to the node
    of the chapter it was signed for. Sending it twice is harmless (the node says so).

    \b
    Example:
      chapter-node sign vote --key marco.key --node http://127.0.0.1:8401 --proposal 5e0c1a2b --choice no > vote.json
      chapter-node submit vote.json --node http://127.0.0.1:8401
    """
    import json

    from ..federation.client import NodeClient

    data = file.read()
    try:
        chapter = json.loads(data)["chapter"]
    except (ValueError, KeyError, TypeError) as e:
        raise Misuse(f"{file.name} is not a signed event (JSON with a chapter)",
                     code="not_an_event") from e
    client = NodeClient(node)
    status = client.status()
    if status["chapter"] != chapter:
        raise Misuse(f"this event was signed for the {chapter} node, and {node} is the "
                     f"{status['chapter']} node: it takes only its own chapter's events. Send "
                     f"it to {chapter}'s node, or sign again with --node {node}",
                     code="not_own_chapter")
    answer = client.submit(data)
    if as_json:
        emit_json(answer)
    else:
        click.echo(f"{answer['id']} accepted by {status['chapter']}"
                   + (" (already held)" if answer.get("duplicate") else ""))


COMMANDS: list[click.Command] = [sign, verify, submit, *(_submit_command(s) for s in ACTS)]
