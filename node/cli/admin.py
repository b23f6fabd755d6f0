"""Commands for chapter admins: create and run a node, watch it, manage local members, export."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..config import SECRET_SETTINGS
from ..operations.datadir import DataDir, init_data_dir
from ..protocol.charter import load_charter
from ..protocol.errors import Misuse, NotFound
from ..protocol.times import wall_clock_ms
from .options import (
    emit_json,
    json_option,
    node_or_data_dir,
    passphrase_option,
    passphrase_source,
    resolve_id,
    table,
)

__all__ = ["COMMANDS"]

data_dir_option = click.option(
    "--data-dir", required=True, type=click.Path(file_okay=False),
    help="The node's data directory (made by `chapter-node init`).")




def _open_node(data_dir: str, passphrase_env: str | None = None):
    from ..chapter.chapter_node import ChapterNode

    d = DataDir(Path(data_dir))
    store = d.store()
    return ChapterNode(store, d.charter(), d.chapter(store),
                       d.node_key(passphrase_source(passphrase_env)))


@click.command()
@data_dir_option
@click.option("--charter", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The federation's charter file.")
@click.option("--chapter", required=True, help="This node's chapter slug, as the charter names it.")
@click.option("--node-key", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The chapter's node key file (from `chapter-node keygen`).")
@click.option("--peer", metavar="URL",
              help="A chapter admitted after the founding: any chapter's node, whose history "
                   "(checked here) proves the admission; the new node starts with it.")
@click.option("--history", type=click.Path(exists=True, dir_okay=False),
              help="Or that history as an export file (chapter-node export).")
@passphrase_option
def init(data_dir: str, charter: str, chapter: str, node_key: str, peer: str | None,
         history: str | None, passphrase_env: str | None) -> None:
    """Create a node for CHAPTER in DATA_DIR.

    Checks that the charter names this chapter with this node key — or, for a chapter
    admitted later by an adopted admit_chapter proposal, that the federation's history
    (--peer or --history) does — then lays out the data directory (charter, key, store).

    \b
    Example:
      chapter-node init --data-dir /var/lib/chapter-node --charter charter.json \\
          --chapter paris --node-key paris-node.key
      chapter-node init --data-dir /var/lib/chapter-node --charter charter.json \\
          --chapter lisbon --node-key lisbon-node.key --peer https://paris.example.org
    """
    if peer is None and history is None:
        d = init_data_dir(data_dir, charter, chapter, node_key, passphrase_source(passphrase_env))
        click.echo(f"initialised {chapter} in {d.path}")
        return
    from ..operations.joining import admitted_by, history_lines, read_history
    from ..protocol.keys import public_key, read_key_file

    export, path, temporary = read_history(peer, history)
    try:
        now = wall_clock_ms()
        ask = passphrase_source(passphrase_env)
        proposal = admitted_by(load_charter(charter), export, chapter,
                               public_key(read_key_file(node_key, ask)), now)
        d = init_data_dir(data_dir, charter, chapter, node_key, ask, history=export, now_ms=now)
        node = _open_node(data_dir, passphrase_env)
        stored = 0
        for batch in history_lines(path):
            stored += sum(o.status == "stored" for o in node.receive(batch, origin="history",
                                                                     now_ms=now))
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    how = f"admitted by proposal {proposal.id}" if proposal else "named by the charter"
    click.echo(f"initialised {chapter} in {d.path}: {how}; {stored} events of history stored. "
               "Start it with chapter-node run: it syncs with every chapter from there.")


@click.command()
@data_dir_option
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Address to serve on [config: listen; default 127.0.0.1:8400].")
@click.option("--public-url", default=None, help="The URL peers use for this node [config: public_url].")
@click.option("--pull-interval", type=float, default=None,
              help="Seconds between pulls of each peer's feed [config: pull_interval].")
@click.option("--anti-entropy-interval", type=float, default=None,
              help="Seconds between Negentropy rounds per peer [config: anti_entropy_interval].")
@click.option("--log-format", type=click.Choice(["human", "json"]), default=None,
              help="Log lines for people or JSON Lines [config: log_format].")
@passphrase_option
def run(data_dir: str, listen: str | None, public_url: str | None, pull_interval: float | None,
        anti_entropy_interval: float | None, log_format: str | None,
        passphrase_env: str | None) -> None:
    """Serve the node and keep it in sync with the peers the registry names.

    Settings come from DATA_DIR/config.toml, CHAPTER_NODE_* environment variables and these
    flags (highest first: flag, environment, file); `chapter-node config show` explains them.

    \b
    Example:
      chapter-node run --data-dir /var/lib/chapter-node --listen 127.0.0.1:8400
    """
    from ..app import serve
    from ..config import load_config

    DataDir(Path(data_dir)).check()
    config, _ = load_config(data_dir, flags={
        "listen": listen, "public_url": public_url, "pull_interval": pull_interval,
        "anti_entropy_interval": anti_entropy_interval, "log_format": log_format})
    serve(data_dir, config, passphrase_source(passphrase_env))


@click.group()
def config() -> None:
    """Inspect this node's configuration.

    \b
    Example:
      chapter-node config show --data-dir /var/lib/chapter-node
    """


@config.command("show")
@data_dir_option
@json_option
def config_show(data_dir: str, as_json: bool) -> None:
    """Print the effective value of every setting and where it came from.

    \b
    Example:
      CHAPTER_NODE_PULL_INTERVAL=2 chapter-node config show --data-dir ./paris
    """
    from ..config import SETTINGS, load_config

    cfg, sources = load_config(data_dir)
    rows = []
    for key, setting in SETTINGS.items():
        value = getattr(cfg, key)
        if key == "webhooks":
            value = [{"url": w.url, "secret": "***", "events": list(w.events)} for w in value]
        if key in SECRET_SETTINGS and value is not None:
            value = "***"
        rows.append({"key": key, "value": value, "source": sources[key], "help": setting.help})
    if as_json:
        emit_json(rows)
        return
    table(None, ["key", "value", "source", "meaning"],
          [[r["key"], json.dumps(r["value"], ensure_ascii=False), r["source"], r["help"]]
           for r in rows])


@click.command()
@node_or_data_dir
def status(node: str | None, data_dir: str | None, as_json: bool) -> None:
    """Show a node's state: chapter, events held, peers with lag, outbox depth, last sync, skew.

    \b
    Example:
      chapter-node status --node http://127.0.0.1:8400
    """
    info = _status(node, data_dir)
    if as_json:
        emit_json(info)
        return
    click.echo(f"{info['chapter']} · federation {info['federation'][:16]}… · "
               f"{info['events']} events · now {info['now']}")
    _peer_table(info["peers"])


def _status(node: str | None, data_dir: str | None) -> dict[str, Any]:
    if node:
        from ..federation.client import NodeClient

        return NodeClient(node).status()
    if data_dir:
        return _open_node(data_dir).status(wall_clock_ms())
    raise Misuse("give --node URL or --data-dir DIR", code="bad_option")


def _peer_table(peers: list[dict[str, Any]]) -> None:
    table("peers", ["peer", "url", "outbox", "pulled up to", "last push", "last pull",
                    "skew ms", "failures", "last error"],
          [[p["slug"], p["url"] or "-", str(p["outbox"]), str(p["pull_checkpoint"]),
            p["last_push"] or "-", p["last_pull"] or "-",
            "-" if p["clock_skew_ms"] is None else str(p["clock_skew_ms"]),
            str(p["failures"]), (p["last_error"] or "")[:60]] for p in peers])


@click.command()
@node_or_data_dir
def peers(node: str | None, data_dir: str | None, as_json: bool) -> None:
    """List this node's peers and how far each is in sync.

    \b
    Example:
      chapter-node peers --data-dir /var/lib/chapter-node
    """
    info = _status(node, data_dir)
    if as_json:
        emit_json(info["peers"])
    else:
        _peer_table(info["peers"])


@click.group()
def member() -> None:
    """Manage this chapter's members (local data; only their keys are vouched for).

    \b
    Example:
      chapter-node member add --data-dir ./paris --key <base64url> --name "Jeanne" --contact jeanne@example.org
    """


@member.command("add")
@data_dir_option
@click.option("--key", "person", required=True, help="The member's public key (base64url).")
@click.option("--name", required=True, help="Kept on this node only.")
@click.option("--contact", default="", help="Kept on this node only.")
@passphrase_option
def member_add(data_dir: str, person: str, name: str, contact: str,
               passphrase_env: str | None) -> None:
    """Add a member: name and contact stay here; a `member` event vouches for the key only.

    \b
    Example:
      chapter-node member add --data-dir ./paris --key kX3...Q --name Jeanne
    """
    node = _open_node(data_dir, passphrase_env)
    event = node.member_add(person, name, contact, wall_clock_ms())
    click.echo(f"member {person} vouched for by {node.chapter} ({event.id})")


@member.command("remove")
@data_dir_option
@click.option("--key", "person", required=True, help="The member's public key (base64url).")
@passphrase_option
def member_remove(data_dir: str, person: str, passphrase_env: str | None) -> None:
    """Remove a member: the chapter stops vouching for the key (`member` with active false).

    \b
    Example:
      chapter-node member remove --data-dir ./paris --key kX3...Q
    """
    node = _open_node(data_dir, passphrase_env)
    event = node.member_remove(person, wall_clock_ms())
    click.echo(f"member {person} no longer vouched for by {node.chapter} ({event.id})")


@member.command("list")
@data_dir_option
@json_option
def member_list(data_dir: str, as_json: bool) -> None:
    """List this chapter's members (local data, never sent to peers).

    \b
    Example:
      chapter-node member list --data-dir ./paris
    """
    node = _open_node(data_dir)
    rows = node.local_members()
    if as_json:
        emit_json(rows)
        return
    table(None, ["key", "name", "contact", "active"],
          [[r["key"], r["name"], r["contact"] or "", "yes" if r["active"] else "no"]
           for r in rows])


@member.command("mail")
@data_dir_option
@click.option("--key", "person", required=True, help="The member's public key (base64url).")
@click.option("--contact", help="Their email address (kept on this node only).")
@click.option("--mode", type=click.Choice(["each", "digest", "none"]),
              help="each: a mail for every notice; digest: one mail a day; none: no email.")
@click.option("--lang", type=click.Choice(["en", "fr", "es", "it", "pt"]),
              help="The language of their emails.")
def member_mail(data_dir: str, person: str, contact: str | None, mode: str | None,
                lang: str | None) -> None:
    """Set how a member is told by email: address, each notice or none, language.

    \b
    Example:
      chapter-node member mail --data-dir ./paris --key kX3...Q --contact jeanne@example.org --lang fr
    """
    node = _open_node(data_dir)
    if contact is not None:
        if contact and ("@" not in contact or any(c in contact for c in "\r\n <>")):
            raise Misuse(f"{contact!r} is not an email address", code="bad_contact")
        if not node.store.set_contact(person, contact):
            raise NotFound(f"{person} is not a member of {node.chapter}: add them first "
                           "(chapter-node member add)", code="unknown_member")
    elif not any(r["key"] == person for r in node.local_members()):
        raise NotFound(f"{person} is not a member of {node.chapter}", code="unknown_member")
    if mode or lang:
        node.store.set_mail(person, mode=mode, lang=lang, now_ms=wall_clock_ms())
    who = node.store.mail_recipient(person)
    click.echo(f"{person[:8]}: " + (f"{who['mode']} notice by email to {who['address']}, in "
                                    f"{who['lang']}" if who else "no email address"))


@click.command()
@data_dir_option
@json_option
@click.option("--limit", default=20, show_default=True, help="How many notices, newest first.")
def notices(data_dir: str, as_json: bool, limit: int) -> None:
    """What this node told its chapter: each notice, its mails and webhooks sent, waiting
    and failed, and why (addresses shown: this reads the chapter's own data dir).

    \b
    Example:
      chapter-node notices --data-dir ./paris
    """
    node = _open_node(data_dir)
    rows = node.store.notice_report(limit)
    addresses = {f"mail:{r['key']}": r["contact"] for r in node.local_members()}
    for row in rows:
        for problem in row["problems"]:
            problem["address"] = addresses.get(problem["target"])
    if as_json:
        emit_json(rows)
        return
    from ..protocol.times import format_ms as fmt

    table(f"{len(rows)} notice(s)", ["when", "notice", "proposal", "mail sent/waiting/failed",
                                     "webhooks sent/waiting/failed"],
          [[fmt(r["created_ms"]), r["kind"], r["title"][:60],
            "/".join(str(r["mail"][k]) for k in ("sent", "waiting", "failed")),
            "/".join(str(r["webhook"][k]) for k in ("sent", "waiting", "failed"))] for r in rows])
    problems = [(r, p) for r in rows for p in r["problems"]]
    if problems:
        table("problems", ["notice", "to", "state", "attempts", "error"],
              [[r["kind"], p["address"] or p["target"], p["state"], str(p["attempts"]),
                p["error"][:80]] for r, p in problems])


@click.command()
@data_dir_option
@click.option("--url", required=True, help="The node's new public address, e.g. https://paris.example.org")
@passphrase_option
def move(data_dir: str, url: str, passphrase_env: str | None) -> None:
    """Tell every chapter this node now answers at URL (a `chapter_url` event, signed with the
    node key). Serve the new address first: peers switch to it as the event reaches them.

    \b
    Example:
      chapter-node move --data-dir /var/lib/chapter-node --url https://paris.ouishare.net
    """
    from ..operations.charter_draft import check_url

    check_url(url)
    node = _open_node(data_dir, passphrase_env)
    event = node.move(url, wall_clock_ms())
    click.echo(f"{node.chapter} now answers at {url} ({event.id}); set public_url to it too "
               "(chapter-node config) if it is set")


@click.group()
def decision() -> None:
    """Record this chapter's own decisions (they stay on this node) and share one for feedback.

    \b
    Example:
      chapter-node decision add --data-dir ./paris --title "Move the meetup" --text "..."
      chapter-node decision share --data-dir ./paris --id 1 --closes-in 7d
    """


@decision.command("add")
@data_dir_option
@click.option("--title", required=True, help="The decision's title.")
@click.option("--text", default="", help="The decision's text.")
def decision_add(data_dir: str, title: str, text: str) -> None:
    """Record a local (chapter-scope) decision; nothing leaves the node.

    \b
    Example:
      chapter-node decision add --data-dir ./paris --title "Move the meetup to Thursdays"
    """
    node = _open_node(data_dir)
    click.echo(f"local decision {node.decision_add(title, text, wall_clock_ms())} recorded")


@decision.command("list")
@data_dir_option
@json_option
def decision_list(data_dir: str, as_json: bool) -> None:
    """List this chapter's local decisions and which were shared for feedback.

    \b
    Example:
      chapter-node decision list --data-dir ./paris
    """
    rows = _open_node(data_dir).local_decisions()
    if as_json:
        emit_json(rows)
        return
    table(None, ["id", "title", "shared as"],
          [[str(r["id"]), r["title"], r["shared_event"] or "-"] for r in rows])


@decision.command("share")
@data_dir_option
@click.option("--id", "decision_id", required=True, type=int, help="The local decision's id.")
@click.option("--closes-in", required=True, help="How long feedback is open, e.g. 7d.")
@passphrase_option
def decision_share(data_dir: str, decision_id: int, closes_in: str,
                   passphrase_env: str | None) -> None:
    """Share a local decision with the federation as a feedback_request (comments, no veto).

    \b
    Example:
      chapter-node decision share --data-dir ./paris --id 1 --closes-in 7d
    """
    from .acts import parse_duration_ms

    node = _open_node(data_dir, passphrase_env)
    now = wall_clock_ms()
    event = node.decision_share(decision_id, now + parse_duration_ms(closes_in), now)
    click.echo(f"decision {decision_id} shared for feedback as {event.id}")


@click.command()
@data_dir_option
@click.option("--out", type=click.Path(dir_okay=False), default="-", show_default=True,
              help="Where to write the JSON Lines log ('-' for stdout).")
def export(data_dir: str, out: str) -> None:
    """Export the federation log (PROTOCOL §7) for audit: charter, events, sealed lists.

    Anyone can recompute a tally from it with `chapter-node tally --events FILE --proposal ID`.

    \b
    Example:
      chapter-node export --data-dir ./paris --out federation.jsonl
    """
    node = _open_node(data_dir)
    stream = sys.stdout.buffer if out == "-" else open(out, "wb")
    try:
        count = 0
        for line in node.export_lines(wall_clock_ms()):
            stream.write(line + b"\n")
            count += 1
    finally:
        if stream is not sys.stdout.buffer:
            stream.close()
    if out != "-":
        click.echo(f"wrote {count} lines to {out}", err=True)


@click.command()
@data_dir_option
@json_option
def doctor(data_dir: str, as_json: bool) -> None:
    """Check this node and its peers; every finding says what to do. Exit 1 on a failure.

    \b
    Example:
      chapter-node doctor --data-dir /var/lib/chapter-node
    """
    from ..operations.doctor import diagnose

    findings = diagnose(data_dir)
    if as_json:
        emit_json([f.to_json() for f in findings])
    else:
        table = Table("", "check", "finding", "what to do")
        marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
        for f in findings:
            table.add_row(marks[f.level], f.check, f.detail, f.fix)
        Console().print(table)
    if any(f.level == "fail" for f in findings):
        raise SystemExit(1)


@click.command("backup")
@data_dir_option
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the backup (never overwritten).")
def backup_command(data_dir: str, out: str) -> None:
    """Take a consistent copy of the store, also while the node serves.

    The node key and charter are not in it: keep node.key somewhere safe once, separately.

    \b
    Example:
      chapter-node backup --data-dir /var/lib/chapter-node --out /backups/paris-$(date +%F).db
    """
    from ..operations.backup import backup

    click.echo(f"backed up {backup(data_dir, out)} events to {out}")


@click.command("restore")
@data_dir_option
@click.option("--from", "source", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A backup made by `chapter-node backup` for this chapter.")
def restore_command(data_dir: str, source: str) -> None:
    """Put a backup back in place of the store (stop the node first); it then catches up.

    \b
    Example:
      chapter-node restore --data-dir /var/lib/chapter-node --from /backups/paris-2026-11-20.db
    """
    from ..operations.backup import restore

    count = restore(data_dir, source)
    click.echo(f"restored {count} events; start the node and it will catch up from its peers")


@click.command()
@click.argument("event_id")
@node_or_data_dir
def show(event_id: str, node: str | None, data_dir: str | None, as_json: bool) -> None:
    """Show a proposal — its text, discussion, vetoes with their reasons, endorsements, result,
    seals and vote trace — or any other event, by its id or a unique start of it (8+ hex).

    \b
    Example:
      chapter-node show 5e0c1a2b --node http://127.0.0.1:8400
    """
    from ..federation.api import node_info
    from ..notices import activity

    if node:
        from ..federation.client import NodeClient

        client = NodeClient(node)
        eid = resolve_id(event_id, client.ids_with_prefix)
        event = client.event(eid)
        if event["type"] != "proposal":
            emit_json(event)
            return
        report, act = client.proposal(eid), client.activity(eid)
        names = client._call("GET", "/api/v1/node?connectors=true")["connectors"]
    elif data_dir:
        local = _open_node(data_dir)
        eid = resolve_id(event_id, local.store.ids_with_prefix)
        held = local.store.get(eid)
        if held is None:
            raise NotFound(f"no event {eid} on this node")
        if held.type != "proposal":
            emit_json(held.to_json())
            return
        now = wall_clock_ms()
        report = local.proposal_report(eid, now)
        act = activity.activity(local.store.events_of(proposal=eid, types=activity.ACTIVITY_TYPES),
                                local.registry(now))
        names = node_info(local, now)["connectors"]
    else:
        raise Misuse("give --node URL or --data-dir DIR", code="bad_option")
    if as_json:
        emit_json({**report, "activity": act})
    else:
        people = {c["key"]: {"role": "connector", "name": c["name"], "chapter": c["chapter"],
                             "short": c["key"][:8]} for c in names}
        people.update(act["people"])
        print_report(report, act, people)


def _who(people: dict[str, Any], key: str) -> str:
    """A name from the registry beside the short key; a member by chapter and key only."""
    p = people.get(key)
    if p is None:
        return key[:8]
    if p["role"] == "connector":
        return f"{p['name']} ({p['chapter']}, {key[:8]})"
    if p["role"] == "member":
        return f"member of {p['chapter']} ({key[:8]})"
    if p["role"] == "node":
        return f"the {p['chapter']} node"
    return key[:8]


def _state_line(report: dict[str, Any]) -> str:
    """Never reads as decided while the result can still change (PROTOCOL §6)."""
    body, tally, state = report["proposal"]["body"], report["tally"], report["state"]
    outcome = tally["outcome"].replace("_", " ")
    if body["kind"] == "action":
        return (f"green light: {tally['endorsements']} Connectors agree" if state == "adopted"
                else f"waiting for endorsements: {tally['endorsements']} so far")
    if state == "open":
        return f"open until {body['closes_at']} — provisional, as it stands now: {outcome}"
    if state == "closed":
        missing = ", ".join(report["missing_seals"]) or "none"
        return (f"closed {body['closes_at']} — provisional: {outcome} if nothing changes; "
                f"not final until every chapter's seal is in (missing: {missing})")
    if state == "amended":
        return (f"final (amended): {outcome}; the earlier final tally_hash was "
                f"{report['amended']['from']}")
    return f"final: {outcome}"


def print_report(report: dict[str, Any], act: dict[str, Any], people: dict[str, Any]) -> None:
    from ..notices import activity

    p = report["proposal"]
    body = p["body"]
    click.echo(f"{body['title']}")
    click.echo(f"{body['kind']} proposal {report['id']}")
    click.echo(f"proposed by {_who(people, p['author'])} through the {p['chapter']} node, "
               f"{p['created_at']}")
    click.echo(_state_line(report))
    if body.get("text"):
        click.echo("")
        click.echo(body["text"])
    if body.get("effect"):
        click.echo(f"if adopted: {json.dumps(body['effect'], ensure_ascii=False)}")
    stand = activity.positions(act["acts"])
    click.echo("")
    tally = report["tally"]
    table("tally", [k for k in tally if k != "proposal"],
          [[str(v) for k, v in tally.items() if k != "proposal"]])
    click.echo(f"tally_hash {report['tally_hash']}")
    if body["kind"] != "vote":
        for title, rows in (("standing vetoes", stand["vetoes"]), ("withdrawn vetoes", stand["withdrawn"])):
            if rows:
                click.echo(f"\n{title}:")
                for v in rows:
                    click.echo(f"  {_who(people, v['author'])}, {v['created_at']}: {v['body']['reason']}")
        click.echo("\nendorsements: " + (", ".join(_who(people, e["author"])
                                                   for e in stand["endorsements"]) or "none"))
    click.echo(f"\ndiscussion ({len(act['comments'])} comments):")
    from ..web.views import thread

    def comments(nodes: list[Any], depth: int) -> None:
        for c in nodes:
            line = c.line
            pad = "  " * (depth + 1)
            click.echo(f"{pad}{_who(people, line['author'])}, {line['created_at']} [{line['id'][:8]}]")
            for text_line in line["body"]["text"].splitlines() or [""]:
                click.echo(f"{pad}  {text_line}")
            comments(c.replies, depth + 1)

    comments(thread(act["comments"]), 0)
    if report.get("seals"):
        table("seals", ["chapter", "acts", "acts_root", "agrees with final"],
              [[s["chapter"], str(s["acts_count"]), s["acts_root"][:16] + "…",
                {True: "yes", False: "no", None: "-"}[s["agrees"]]] for s in report["seals"]])
    if report.get("missing_seals") and report["state"] != "open":
        click.echo("missing seals: " + ", ".join(report["missing_seals"]))
    if report.get("trace"):
        table("where each Connector's vote went", ["Connector", "counted as", "how", "path"],
              [[_who(people, t["connector"]), (t["counted_as"] or "not_cast").replace("_", " "),
                t["reason"].replace("_", " "),
                " → ".join(_who(people, k) for k in t["path"]) + (" …" if t["truncated"] else "")]
               for t in report["trace"]])


COMMANDS = [init, run, config, status, peers, member, move, notices, decision, export, show, backup_command,
            restore_command, doctor]
